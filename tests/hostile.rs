//! What a hostile name or file cannot turn against the user: the jobs
//! `vqm batch --emit` prints run nothing but vqm whatever the manifest and
//! the output directory are called, and `vqm batch` and `vqm merge` never
//! write over a file they read nor read without bound.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Runs vqm in `dir` with `args`, no scheduler variables, stdin closed.
fn vqm_in(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vqm"));
    for k in SCHEDULER_VARS {
        c.env_remove(k);
    }
    c.current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("vqm runs")
}

/// A one-row manifest (5 frames of the samples) at `dir/name`.
fn manifest(dir: &Path, name: &str) -> PathBuf {
    let m = dir.join(name);
    std::fs::write(
        &m,
        format!(
            "id,reference,distorted,frames\nrow1,{},{},5\n",
            sample("ref.mp4"),
            sample("dist.mp4")
        ),
    )
    .unwrap();
    m
}

/// Every file under `dir` whose name starts with `PWN`: what an injected
/// command would have made.
fn markers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("PWN") {
                found.push(p.clone());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    found
}

/// The hostile parts of names: each is put inside a manifest name and an
/// output directory name. The first two can end a line.
const HOSTILE: [&str; 13] = [
    "\ntouch PWN1\n",
    "\rtouch PWN2\r",
    "%j%A%a%%",
    "it's",
    "say \"hi\"",
    "$(touch PWN3)",
    "`touch PWN4`",
    "back\\slash",
    "#hash",
    "key: value",
    "-lead",
    "uni✓ü",
    "tab\there",
];

fn breaks_a_line(part: &str) -> bool {
    part.chars().any(char::is_control)
}

#[test]
fn emitted_jobs_refuse_line_breaks_and_quote_every_other_name() {
    use yaml_rust2::YamlLoader;
    for part in HOSTILE {
        let t = tempfile::tempdir().unwrap();
        // the name as a user could give it: the hostile part leads
        let name = format!("{part}m.csv");
        manifest(t.path(), &name);
        let out = format!("{part}out");
        // `./` and `=` keep a leading `-` from being read as an option
        let (m_arg, out_arg) = (format!("./{name}"), format!("--out={out}"));
        for kind in ["slurm", "k8s"] {
            let o = vqm_in(
                t.path(),
                &["batch", &m_arg, &out_arg, "--emit", kind, "-m", "psnr"],
            );
            let (code, text, err) = outcome(&o);
            if breaks_a_line(part) {
                assert_eq!(code, 2, "{kind} {part:?}: {err}");
                assert!(text.is_empty(), "{kind} {part:?}: {text}");
                assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
                assert!(
                    err.contains("the manifest path") && err.contains("control character"),
                    "{kind} {part:?}: {err}"
                );
                continue;
            }
            if kind == "slurm" && part.contains('\\') {
                assert_eq!(code, 2, "{part:?}: {err}");
                assert!(err.contains("--out") && err.contains("backslash"), "{err}");
                continue;
            }
            assert_eq!(code, 0, "{kind} {part:?}: {err}");
            if kind == "k8s" {
                let job = YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{part:?}: {e}: {text}"))
                    .remove(0);
                let command: Vec<&str> =
                    job["spec"]["template"]["spec"]["containers"][0]["command"]
                        .as_vec()
                        .unwrap_or_else(|| panic!("{part:?}: {text}"))
                        .iter()
                        .map(|w| w.as_str().unwrap())
                        .collect();
                let lead = |p: &str| {
                    if p.starts_with('-') {
                        format!("./{p}")
                    } else {
                        p.to_string()
                    }
                };
                assert_eq!(
                    command[..5],
                    ["vqm", "batch", &m_arg, "--out", &lead(&out)],
                    "{part:?}"
                );
                continue;
            }
            // the script parses, and each task runs vqm alone
            let script = t.path().join("job.sbatch");
            std::fs::write(&script, &text).unwrap();
            let o = Command::new("bash")
                .arg("-n")
                .arg(&script)
                .output()
                .unwrap();
            assert_eq!(outcome(&o).0, 0, "{part:?}: {}", outcome(&o).2);
            let o = Command::new("bash")
                .arg(&script)
                .current_dir(t.path())
                .envs(SCHEDULER_VARS.map(|k| (k, "")))
                .env("SLURM_ARRAY_TASK_ID", "0")
                .output()
                .unwrap();
            assert_eq!(outcome(&o).0, 0, "{part:?}: {}\n{text}", outcome(&o).2);
            assert!(
                t.path().join(&out).join("row1.summary.json").is_file(),
                "{part:?}: the row's results are in --out"
            );
            let output = text
                .lines()
                .find_map(|l| l.strip_prefix("#SBATCH --output="))
                .unwrap();
            assert!(
                output.starts_with('"') && output.ends_with("/slurm-%A_%a.out\""),
                "{output}"
            );
            if part.contains('%') {
                assert!(output.contains("%%j%%A%%a%%%%"), "{output}");
            }
        }
        assert_eq!(markers(t.path()), Vec::<PathBuf>::new(), "{part:?}");
    }
}

#[test]
fn emitted_jobs_refuse_a_line_break_in_any_option_they_carry() {
    let t = tempfile::tempdir().unwrap();
    manifest(t.path(), "m.csv");
    for (kind, extra, field) in [
        (
            "slurm",
            &["--ref-opt", "probesize=32\ntouch PWN"][..],
            "the option",
        ),
        ("k8s", &["--image", "vqm:1\nkind: Pod"][..], "--image"),
        ("k8s", &["--claim", "data\u{2028}x"][..], "--claim"),
        ("k8s", &["--out", "res\u{85}x"][..], "--out"),
    ] {
        let mut args = vec!["batch", "m.csv", "--emit", kind];
        if !extra.contains(&"--out") {
            args.extend(["--out", "res"]);
        }
        args.extend(extra);
        let o = vqm_in(t.path(), &args);
        let (code, text, err) = outcome(&o);
        assert_eq!(code, 2, "{kind} {extra:?}: {err}");
        assert!(text.is_empty(), "{text}");
        assert!(
            err.contains(field) && err.contains("control character"),
            "{err}"
        );
    }
    // a manifest read from standard input cannot be a job's
    let o = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .current_dir(t.path())
        .args(["batch", "-", "--out", "res", "--emit", "slurm"])
        .stdin(std::fs::File::open(t.path().join("m.csv")).unwrap())
        .output()
        .unwrap();
    refused(&o, &["standard input"]);
    assert_eq!(markers(t.path()), Vec::<PathBuf>::new());
}

/// A finished batch in `dir/ok` of two rows (`k0`, `-2`) of 5 frames, its
/// manifest `dir/m.csv`.
fn finished_batch(dir: &Path) -> (PathBuf, PathBuf) {
    let m = dir.join("m.csv");
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    std::fs::write(
        &m,
        format!("id,reference,distorted,frames\nk0,{r},{d},5\n-2,{r},{d},5\n"),
    )
    .unwrap();
    let ok = dir.join("ok");
    let o = vqm_in(dir, &["batch", s(&m), "--out", s(&ok), "-m", "psnr", "-q"]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    (m, ok)
}

/// Asserts a refusal: exit 2, one line on stderr holding every `want`.
fn refused(o: &Output, want: &[&str]) {
    let (code, _, err) = outcome(o);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} in {err}");
    }
}

#[test]
fn merge_never_writes_over_a_file_it_reads() {
    let t = tempfile::tempdir().unwrap();
    let (m, ok) = finished_batch(t.path());
    let summary = ok.join("k0.summary.json");
    let (m_before, s_before) = (std::fs::read(&m).unwrap(), std::fs::read(&summary).unwrap());
    let o = vqm_in(
        t.path(),
        &["merge", s(&ok), "--manifest", s(&m), "--out", s(&m)],
    );
    refused(&o, &["--out", "is the manifest"]);
    let o = vqm_in(t.path(), &["merge", s(&ok), "--out", s(&summary)]);
    refused(&o, &["--out", "is the summary"]);
    // through a link too
    let link = t.path().join("link.csv");
    std::os::unix::fs::symlink(&m, &link).unwrap();
    let o = vqm_in(
        t.path(),
        &["merge", s(&ok), "--manifest", s(&m), "--out", s(&link)],
    );
    refused(&o, &["is the manifest"]);
    assert_eq!(std::fs::read(&m).unwrap(), m_before);
    assert_eq!(std::fs::read(&summary).unwrap(), s_before);
    // a merge into JSON keeps the ids as they are: the prefix that keeps
    // a spreadsheet from running '-2' as a formula is CSV's alone
    let json = t.path().join("all.json");
    let o = vqm_in(
        t.path(),
        &["merge", s(&ok), "--manifest", s(&m), "--out", s(&json)],
    );
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v[0]["id"], "k0");
    assert_eq!(v[1]["id"], "-2");
    let csv = t.path().join("all.csv");
    let o = vqm_in(
        t.path(),
        &["merge", s(&ok), "--manifest", s(&m), "--out", s(&csv)],
    );
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.lines().nth(2).unwrap().starts_with("'-2,"), "{text}");
}

#[test]
fn a_batch_never_writes_a_rows_file_over_its_manifest_or_an_input() {
    let t = tempfile::tempdir().unwrap();
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    // a JSON Lines manifest whose row 'catalog' would write catalog.ndjson
    let m = t.path().join("catalog.ndjson");
    let text = format!(
        "{{\"id\":\"catalog\",\"reference\":\"{r}\",\"distorted\":\"{d}\",\"frames\":5}}\n"
    );
    std::fs::write(&m, &text).unwrap();
    for extra in [&[][..], &["--check"][..], &["--emit", "slurm"][..]] {
        let mut args = vec!["batch", "catalog.ndjson", "--out", "."];
        args.extend(extra);
        let o = vqm_in(t.path(), &args);
        refused(&o, &["row 'catalog'", "catalog.ndjson", "the manifest"]);
    }
    assert_eq!(std::fs::read_to_string(&m).unwrap(), text);
    // an input of one row named like another row's log
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let input = out.join("b.ndjson");
    std::fs::copy(&d, &input).unwrap();
    let m = t.path().join("m.csv");
    std::fs::write(
        &m,
        format!(
            "id,reference,distorted,frames\na,{r},{},5\nb,{r},{d},5\n",
            s(&input)
        ),
    )
    .unwrap();
    let o = vqm_in(t.path(), &["batch", "m.csv", "--out", "out"]);
    refused(&o, &["row 'b'", "b.ndjson", "the input", "line 2"]);
    assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(&d).unwrap());
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "nothing written"
    );
}

#[test]
fn ids_that_differ_only_in_case_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    std::fs::write(
        t.path().join("m.csv"),
        format!("id,reference,distorted\nok1,{r},{d}\nOK1,{r},{d}\n"),
    )
    .unwrap();
    for extra in [&["--check"][..], &["--out", "out"][..]] {
        let mut args = vec!["batch", "m.csv"];
        args.extend(extra);
        let o = vqm_in(t.path(), &args);
        refused(&o, &["line 3", "'OK1'", "'ok1'", "only in case"]);
    }
    assert!(!t.path().join("out").exists());
}

/// Runs vqm with `args` in `dir`, killing it if it takes over 10 s (a
/// hang is a failure, not a stuck suite).
fn vqm_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vqm"));
    for k in SCHEDULER_VARS {
        c.env_remove(k);
    }
    let mut child = c
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("vqm {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(p: &Path) {
    let o = Command::new("mkfifo").arg(p).output().unwrap();
    assert!(o.status.success());
}

#[test]
fn manifests_and_summaries_are_regular_files_of_bounded_size() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // a manifest that is a device, a FIFO, a directory, or too large
    mkfifo(&dir.join("fifo.csv"));
    let big = dir.join("big.csv");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    for (m, want) in [
        ("/dev/zero", "a device"),
        ("fifo.csv", "a FIFO"),
        (".", "a directory"),
        ("big.csv", "larger than 64 MiB"),
    ] {
        for extra in [&["--check"][..], &["--out", "x"][..]] {
            let mut args = vec!["batch", m];
            args.extend(extra);
            let o = vqm_bounded(dir, &args);
            refused(&o, &[&format!("manifest '{m}'"), want]);
        }
        let o = vqm_bounded(dir, &["merge", ".", "--manifest", m, "--out", "-"]);
        refused(&o, &[&format!("manifest '{m}'"), want]);
    }
    // summaries in a merged directory: a link to /dev/zero, a FIFO
    for (name, make) in [
        (
            "zero",
            &(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()) as &dyn Fn(&Path),
        ),
        ("fifo", &mkfifo),
    ] {
        let d = dir.join(format!("merge-{name}"));
        std::fs::create_dir(&d).unwrap();
        make(&d.join("x.summary.json"));
        let o = vqm_bounded(dir, &["merge", s(&d), "--out", "-"]);
        refused(&o, &["x.summary.json", "not a regular file"]);
    }
    assert!(!dir.join("x").exists());
}

/// Whether process `pid` has a handler for SIGTERM (its code is running).
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

fn sigterm(pid: u32) {
    let o = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success());
}

/// Waits for `child` at most `secs` seconds; its output.
fn wait_bounded(mut child: std::process::Child, secs: u64) -> Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            child.kill().unwrap();
            panic!("not ended {secs} s after the signal");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_as_soon_as_vqm_runs_is_exit_130_with_nothing_written() {
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("keep.ndjson");
    std::fs::write(&log, "kept\n").unwrap();
    let fifo = t.path().join("ref.y4m");
    mkfifo(&fifo);
    // a reference that never opens (a FIFO with no writer), and files
    for reference in [s(&fifo).to_string(), sample("ref.mp4")] {
        let args = [&reference, &sample("dist.mp4"), "-q", "--log", s(&log)];
        let o = terminated_when(&args, catches_sigterm);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 130, "{reference}: {err}");
        assert!(err.contains("interrupted while"), "{err}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "kept\n");
    }
}

/// Runs vqm with `args`, sends it SIGTERM as soon as `ready` says so of
/// its pid, and returns its output (failing if it takes over 5 s more).
fn terminated_when(args: &[&str], ready: impl Fn(u32) -> bool) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = std::time::Instant::now();
    while !ready(pid) {
        assert!(start.elapsed().as_secs() < 10, "{args:?}: never ready");
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    sigterm(pid);
    wait_bounded(child, 5)
}

#[test]
fn a_batch_on_sigterm_ends_its_runs_keeps_finished_rows_and_exits_130() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("live.y4m");
    mkfifo(&fifo);
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    // row 'a' finishes; row 'b' waits on a FIFO no one writes
    std::fs::write(
        t.path().join("m.csv"),
        format!(
            "id,reference,distorted,frames\na,{r},{d},5\nb,{},{d},5\n",
            s(&fifo)
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    let mut c = Command::new(env!("CARGO_BIN_EXE_vqm"));
    for k in SCHEDULER_VARS {
        c.env_remove(k);
    }
    let child = c
        .current_dir(t.path())
        .args([
            "batch", "m.csv", "--out", "out", "--jobs", "1", "-m", "psnr",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let running = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|e| {
            e.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".vqm-run-"))
        })
    };
    // row 'a' is done and row 'b''s run has started
    while !(out.join("a.summary.json").exists() && running(&out)) {
        assert!(
            start.elapsed().as_secs() < 30,
            "the batch did not start 'b'"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sigterm(child.id());
    let o = wait_bounded(child, 10);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["a.ndjson", "a.summary.json"],
        "no working directory, no error for 'b'"
    );
}

#[test]
fn an_output_that_is_a_symlink_is_written_through_to_its_target() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::create_dir(dir.join("real")).unwrap();
    let mut args = vec![
        sample("ref.mp4"),
        sample("dist.mp4"),
        "--frames".into(),
        "5".into(),
        "-q".into(),
    ];
    for (flag, name) in [
        ("--summary-json", "s.json"),
        ("--csv", "f.csv"),
        ("--summary-csv", "t.csv"),
        ("--log", "l.ndjson"),
        ("--report", "r.html"),
    ] {
        // a link to an existing file, and one (relative) to a file to come
        let target = dir.join("real").join(name);
        if flag != "--log" {
            std::fs::write(&target, "old").unwrap();
        }
        let link = dir.join(format!("link-{name}"));
        std::os::unix::fs::symlink(format!("real/{name}"), &link).unwrap();
        args.extend([flag.to_string(), s(&link).to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = vqm(&args);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    for name in ["s.json", "f.csv", "t.csv", "l.ndjson", "r.html"] {
        let link = dir.join(format!("link-{name}"));
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{name}: the link stays a link"
        );
        let text = std::fs::read_to_string(dir.join("real").join(name)).unwrap();
        assert!(text.len() > 10 && text != "old", "{name}: {text}");
    }
}

#[test]
fn a_picture_over_ffmpegs_size_limit_is_named_as_such() {
    let t = tempfile::tempdir().unwrap();
    let y4m = t.path().join("big.y4m");
    let mut bytes = b"YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".to_vec();
    bytes.extend([0u8; 1000]);
    std::fs::write(&y4m, bytes).unwrap();
    let o = vqm(&[s(&y4m), s(&y4m), "-q"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("input '") && err.contains("100000x100000") && err.contains("over the limit"),
        "{err}"
    );
    assert!(err.contains("16255x16255"), "the limit is said: {err}");
    let raw = t.path().join("raw.yuv");
    std::fs::write(&raw, [0u8; 1000]).unwrap();
    let o = vqm(&[
        "--input-format",
        "rawvideo",
        "--size",
        "65535x65535",
        "--pix-fmt",
        "yuv420p",
        s(&raw),
        s(&raw),
    ]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--size 65535x65535") && err.contains("over the limit"),
        "{err}"
    );
    // the largest square picture FFmpeg takes is not refused for its size
    let o = vqm(&[
        "--input-format",
        "rawvideo",
        "--size",
        "16255x16255",
        "--pix-fmt",
        "gray",
        s(&raw),
        s(&raw),
    ]);
    assert!(
        !outcome(&o).2.contains("over the limit"),
        "{}",
        outcome(&o).2
    );
}

/// The top-level boxes of an MP4 file: (type, offset, size).
fn boxes(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((
            String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned(),
            at,
            size,
        ));
        if size < 8 {
            break;
        }
        at += size;
    }
    out
}

#[test]
fn the_missing_moov_hint_is_given_only_when_the_moov_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample("dist.mp4")).unwrap();
    let top = boxes(&good);
    let (_, moov_at, moov_size) = top.iter().find(|(k, ..)| k == "moov").unwrap().clone();
    // the moov is there, its sample tables damaged
    let mut damaged = good.clone();
    for table in [&b"stsz"[..], &b"stco"[..]] {
        let i = moov_at
            + damaged[moov_at..moov_at + moov_size]
                .windows(4)
                .position(|w| w == table)
                .unwrap();
        damaged[i + 4..i + 64].fill(0xff);
    }
    let damaged_path = t.path().join("damaged.mp4");
    std::fs::write(&damaged_path, &damaged).unwrap();
    // the moov box's type overwritten: no moov at the top level
    let mut lost = good.clone();
    lost[moov_at + 4..moov_at + 8].copy_from_slice(b"skip");
    let lost_path = t.path().join("lost.mp4");
    std::fs::write(&lost_path, &lost).unwrap();
    let r = sample("ref.mp4");
    let hint = "moov atom is missing";
    let o = vqm(&[&r, s(&damaged_path), "-q"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("damaged.mp4") && !err.contains(hint), "{err}");
    let o = vqm(&["--input-format", "mpegts", &r, &sample("dist.mp4"), "-q"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains(hint), "{err}");
    let o = vqm(&[&r, s(&lost_path), "-q"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("lost.mp4") && err.contains(hint), "{err}");
}

#[test]
fn sigterm_ends_a_wait_on_a_fifo_output_or_config_with_130() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("nobody-reads");
    mkfifo(&fifo);
    for (flag, value) in [("--log", s(&fifo)), ("--config", s(&fifo))] {
        let args = [&sample("ref.mp4"), &sample("dist.mp4"), "-q", flag, value];
        // blocked on the FIFO, with no one at its other end
        let o = terminated_when(&args, |pid| {
            std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                .is_ok_and(|w| w == "wait_for_partner")
        });
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 130, "{flag}: {err}");
        assert!(err.contains("interrupted"), "{err}");
    }
}

#[test]
fn a_value_with_a_line_break_still_gets_a_one_line_error() {
    let t = tempfile::tempdir().unwrap();
    let o = vqm_in(
        t.path(),
        &[
            &sample("ref.mp4"),
            &sample("dist.mp4"),
            "--alert",
            "psnr_y<30\ntouch x",
        ],
    );
    refused(&o, &["--alert", "psnr_y<30\\ntouch x"]);
    // a manifest row whose metrics cell holds a line break (CSV quoting)
    std::fs::write(
        t.path().join("m.csv"),
        format!(
            "id,reference,distorted,metrics\na,{},{},\"psnr\nbogus\"\n",
            sample("ref.mp4"),
            sample("dist.mp4")
        ),
    )
    .unwrap();
    let o = vqm_in(t.path(), &["batch", "m.csv", "--check"]);
    refused(&o, &["line 2", "psnr\\nbogus"]);
}
