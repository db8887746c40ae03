//! What a hostile name or file cannot turn against the user: the jobs
//! `vqm batch --emit` prints run nothing but vqm whatever the manifest and
//! the output directory are called, and `vqm batch` and `vqm merge` never
//! write over a file they read nor read without bound.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// The scheduler variables a batch reads, cleared for every run.
const SCHEDULER_VARS: [&str; 6] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "JOB_COMPLETION_INDEX",
    "VQM_SHARDS",
];

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
    assert_eq!(markers(t.path()), Vec::<PathBuf>::new());
}
