//! `vqm batch`, `vqm merge` and `--emit`: a manifest's rows give what
//! their own runs give, shards (from the flag, Slurm's and Kubernetes'
//! environment) cover the manifest once, a killed shard resumes without
//! redoing rows or leaving half results, and the emitted jobs run.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

/// Runs vqm with `args` and the scheduler variables `env` (only those).
fn vqm_env(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vqm"));
    for k in SCHEDULER_VARS {
        c.env_remove(k);
    }
    c.envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("vqm runs")
}

/// The rows of the test manifest: (id, reference, distorted, metrics
/// column). Four rungs share the reference (one run), one row has another
/// reference, one its own metrics.
fn rows() -> Vec<(&'static str, String, String, &'static str)> {
    let r = sample("ref.mp4");
    vec![
        ("dist", r.clone(), sample("dist.mp4"), ""),
        ("r180", r.clone(), sample("ladder/r180.mp4"), ""),
        ("r270", r.clone(), sample("ladder/r270.mp4"), ""),
        (
            "r360-vs-r270",
            sample("ladder/r360.mp4"),
            sample("ladder/r270.mp4"),
            "",
        ),
        ("r360", r.clone(), sample("ladder/r360.mp4"), ""),
        ("dist-psnr", r, sample("dist.mp4"), "psnr"),
    ]
}

/// Writes the manifest of `rows` to `dir/m.csv`.
fn write_manifest(dir: &Path, rows: &[(&str, String, String, &str)]) -> String {
    let mut text = String::from("id,reference,distorted,metrics\n");
    for (id, r, d, m) in rows {
        text.push_str(&format!("{id},{r},{d},\"{m}\"\n"));
    }
    let p = dir.join("m.csv");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Drops what differs from one run to the next (timings) and what the
/// batch adds (the header's `batch`), everywhere in `v`.
fn comparable(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "latency_ms" | "lag_ms" | "alignment_delay_ms" | "batch"
                    )
                })
                .map(|(k, v)| (k.clone(), comparable(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(comparable).collect()),
        other => other.clone(),
    }
}

/// The summaries in `dir`, by id.
fn summaries(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".summary.json") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.insert(id.to_string(), serde_json::from_str(&text).unwrap());
        }
    }
    out
}

/// Every name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The files a batch of `ids` leaves: a summary and a log per row.
fn complete(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids
        .iter()
        .flat_map(|id| [format!("{id}.ndjson"), format!("{id}.summary.json")])
        .collect();
    v.sort();
    v
}

fn ids() -> Vec<&'static str> {
    rows().iter().map(|r| r.0).collect()
}

#[test]
fn each_row_gives_what_its_own_run_gives() {
    let t = tempfile::tempdir().unwrap();
    let m = write_manifest(t.path(), &rows());
    let out = t.path().join("out");
    let o = vqm_env(
        &[
            "batch",
            &m,
            "--out",
            s(&out),
            "-m",
            "psnr,ssim",
            "--jobs",
            "2",
        ],
        &[],
    );
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names(&out),
        complete(&ids()),
        "nothing else, no temporary left"
    );
    for (line, (id, r, d, metrics)) in rows().iter().enumerate() {
        let own = t.path().join(id);
        std::fs::create_dir(&own).unwrap();
        let (sum, log) = (own.join("s.json"), own.join("l.ndjson"));
        // the row's metrics column stands for the command line's -m
        let metrics = if metrics.is_empty() {
            "psnr,ssim"
        } else {
            metrics
        };
        let mut args = vec![r.as_str(), d.as_str(), "-m", metrics, "-q"];
        args.extend(["--summary-json", s(&sum), "--log", s(&log)]);
        let o = vqm(&args);
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
        let got: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{id}.summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(comparable(&got), comparable(&want), "row {id}: summary");
        let want = ndjson(&std::fs::read_to_string(&log).unwrap());
        let got = ndjson(&std::fs::read_to_string(out.join(format!("{id}.ndjson"))).unwrap());
        assert_eq!(got.len(), want.len(), "row {id}: records");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(comparable(g), comparable(w), "row {id}");
        }
        let header = &got[0];
        assert_eq!(header["type"], "header");
        assert_eq!(header["batch"]["id"], *id);
        assert_eq!(header["batch"]["line"], line + 2);
        assert_eq!(header["batch"]["manifest"], m.as_str());
        assert_eq!(header["batch"]["shard"], Value::Null);
    }
}

#[test]
fn done_rows_are_skipped_and_force_measures_them_again() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let m = write_manifest(t.path(), &rows()[..2]);
    let out = t.path().join("out");
    let run = |extra: &[&str]| {
        let mut a = vec!["batch", &m, "--out", s(&out), "-m", "psnr"];
        a.extend(extra);
        let o = vqm_env(&a, &[]);
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
        outcome(&o).2
    };
    let inode = |id: &str| {
        std::fs::metadata(out.join(format!("{id}.summary.json")))
            .unwrap()
            .ino()
    };
    run(&[]);
    let before = (inode("dist"), inode("r180"));
    let err = run(&[]);
    assert!(err.contains("0 to measure, 2 done already"), "{err}");
    assert_eq!((inode("dist"), inode("r180")), before, "nothing rewritten");
    std::fs::remove_file(out.join("r180.summary.json")).unwrap();
    let err = run(&[]);
    assert!(err.contains("1 to measure, 1 done already"), "{err}");
    assert_eq!(inode("dist"), before.0);
    run(&["--force"]);
    assert_ne!(inode("dist"), before.0, "--force measures done rows");
    assert_eq!(names(&out), complete(&["dist", "r180"]));
}

#[test]
fn a_row_that_cannot_run_fails_alone_and_the_others_go_on() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("garbage.mp4");
    std::fs::write(&bad, b"this is not a video\n".repeat(100)).unwrap();
    let r = sample("ref.mp4");
    let mut list = rows()[..3].to_vec();
    list.insert(1, ("garbage", r.clone(), bad.display().to_string(), ""));
    list.push((
        "missing",
        r,
        t.path().join("none.mp4").display().to_string(),
        "",
    ));
    let m = write_manifest(t.path(), &list);
    let out = t.path().join("out");
    let o = vqm_env(&["batch", &m, "--out", s(&out), "-m", "psnr"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 6: cannot open"), "{err}");
    let mut want = complete(&["dist", "r180", "r270"]);
    want.extend([
        "garbage.error.json".to_string(),
        "missing.error.json".to_string(),
    ]);
    want.sort();
    assert_eq!(names(&out), want);
    let error = |id: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{id}.error.json"))).unwrap(),
        )
        .unwrap()
    };
    let g = error("garbage");
    assert_eq!(g["line"], 3);
    assert_eq!(g["input"], bad.display().to_string());
    assert_eq!(g["exit_code"], 1);
    assert!(g["cause"].as_str().unwrap().contains("garbage.mp4"), "{g}");
    let miss = error("missing");
    assert_eq!(miss["line"], 6);
    assert!(
        miss["cause"].as_str().unwrap().contains("No such file"),
        "{miss}"
    );
    // the merge says why a row has no summary
    let o = vqm_env(&["merge", s(&out), "--manifest", &m, "--out", "-"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("row 'missing' (manifest line 6) has no summary: it failed: cannot open"),
        "{err}"
    );
    // the file appears: a rerun measures that row and removes its error
    std::fs::copy(sample("dist.mp4"), t.path().join("none.mp4")).unwrap();
    std::fs::remove_file(&bad).unwrap();
    let o = vqm_env(&["batch", &m, "--out", s(&out), "-m", "psnr"], &[]);
    assert_eq!(outcome(&o).0, 1, "garbage.mp4 is gone: still a failure");
    assert!(out.join("missing.summary.json").exists());
    assert!(!out.join("missing.error.json").exists());
    // a failed gate is exit 3, every row measured
    let out3 = t.path().join("gate");
    let m3 = write_manifest(t.path(), &rows()[..3]);
    let o = vqm_env(
        &[
            "batch",
            &m3,
            "--out",
            s(&out3),
            "-m",
            "psnr",
            "--fail-if",
            "mean(psnr_y)<40",
        ],
        &[],
    );
    assert_eq!(outcome(&o).0, 3, "{}", outcome(&o).2);
    assert_eq!(names(&out3), complete(&["dist", "r180", "r270"]));
    // and so is a fired alert
    let out4 = t.path().join("alert");
    let o = vqm_env(
        &[
            "batch",
            &m3,
            "--out",
            s(&out4),
            "-m",
            "psnr",
            "--alert",
            "psnr_y<36",
        ],
        &[],
    );
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("2 with a failed gate or a fired alert"),
        "{err}"
    );
}

/// Runs the shards of the manifest `m` into one directory per shard and
/// returns the directories.
fn run_shards(
    t: &Path,
    m: &str,
    name: &str,
    shards: &[Vec<(&str, String)>],
    flag: &[&str],
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for (k, env) in shards.iter().enumerate() {
        let d = t.join(format!("{name}-{k}"));
        let mut a = vec!["batch", m, "--out", s(&d), "-m", "psnr,ssim"];
        let shard = format!("{k}/{}", shards.len());
        if env.is_empty() {
            a.extend(["--shard", &shard]);
        }
        a.extend(flag);
        let o = vqm_env(&a, env);
        assert_eq!(outcome(&o).0, 0, "{name} {k}: {}", outcome(&o).2);
        dirs.push(d);
    }
    dirs
}

#[test]
fn shards_from_the_flag_slurm_and_kubernetes_cover_the_manifest_once() {
    let t = tempfile::tempdir().unwrap();
    let m = write_manifest(t.path(), &rows());
    let whole = t.path().join("whole");
    let o = vqm_env(&["batch", &m, "--out", s(&whole), "-m", "psnr,ssim"], &[]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let want: BTreeMap<String, Value> = summaries(&whole)
        .iter()
        .map(|(k, v)| (k.clone(), comparable(v)))
        .collect();
    let v = |x: u64| x.to_string();
    let slurm_count: Vec<Vec<(&str, String)>> = (0..4)
        .map(|i| {
            vec![
                ("SLURM_ARRAY_TASK_ID", v(i)),
                ("SLURM_ARRAY_TASK_COUNT", v(4)),
            ]
        })
        .collect();
    // an array 1-3: SLURM_ARRAY_TASK_MIN/MAX and no count (older Slurm)
    let slurm_minmax: Vec<Vec<(&str, String)>> = (1..=3)
        .map(|i| {
            vec![
                ("SLURM_ARRAY_TASK_ID", v(i)),
                ("SLURM_ARRAY_TASK_MIN", v(1)),
                ("SLURM_ARRAY_TASK_MAX", v(3)),
            ]
        })
        .collect();
    let k8s: Vec<Vec<(&str, String)>> = (0..5)
        .map(|i| vec![("JOB_COMPLETION_INDEX", v(i)), ("VQM_SHARDS", v(5))])
        .collect();
    let k8s_flag: Vec<Vec<(&str, String)>> = (0..2)
        .map(|i| vec![("JOB_COMPLETION_INDEX", v(i))])
        .collect();
    let flag: Vec<Vec<(&str, String)>> = vec![Vec::new(); 3];
    for (name, shards, extra) in [
        ("flag", &flag, &[][..]),
        ("slurm", &slurm_count, &[][..]),
        ("slurm-minmax", &slurm_minmax, &[][..]),
        ("k8s", &k8s, &[][..]),
        ("k8s-flag", &k8s_flag, &["--shards", "2"][..]),
    ] {
        let dirs = run_shards(t.path(), &m, name, shards, extra);
        let mut union: BTreeMap<String, Value> = BTreeMap::new();
        let mut seen = Vec::new();
        for (k, d) in dirs.iter().enumerate() {
            let got = summaries(d);
            assert!(
                got.len() <= rows().len().div_ceil(shards.len()),
                "{name} {k}"
            );
            for (id, sum) in got {
                let log = ndjson(&std::fs::read_to_string(d.join(format!("{id}.ndjson"))).unwrap());
                assert_eq!(
                    log[0]["batch"]["shard"],
                    format!("{k}/{}", shards.len()),
                    "{name}: the header records the shard"
                );
                seen.push(id.clone());
                union.insert(id, comparable(&sum));
            }
        }
        assert_eq!(
            seen.len(),
            rows().len(),
            "{name}: no row twice, none missing: {seen:?}"
        );
        assert_eq!(
            union, want,
            "{name}: the union of the shards is the whole run"
        );
        // merging the shards' directories gives the whole run's table
        let merged = t.path().join(format!("{name}.csv"));
        let mut a = vec!["merge"];
        a.extend(dirs.iter().map(|d| s(d)));
        a.extend(["--manifest", &m, "--out", s(&merged)]);
        let o = vqm_env(&a, &[]);
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
        let whole_csv = t.path().join("whole.csv");
        let o = vqm_env(&["merge", s(&whole), "--out", s(&whole_csv)], &[]);
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
        let lines = |p: &Path| -> Vec<String> {
            let mut l: Vec<String> = std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            l[1..].sort();
            l
        };
        assert_eq!(lines(&merged), lines(&whole_csv), "{name}: merged table");
    }
    // a task outside the array is an error, not a silent empty shard
    let o = vqm_env(
        &["batch", &m, "--out", s(&t.path().join("x"))],
        &[
            ("SLURM_ARRAY_TASK_ID", v(4)),
            ("SLURM_ARRAY_TASK_COUNT", v(4)),
        ],
    );
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("outside the array"), "{err}");
    let o = vqm_env(
        &["batch", &m, "--out", s(&t.path().join("x"))],
        &[("JOB_COMPLETION_INDEX", v(0))],
    );
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--shards N or VQM_SHARDS"), "{err}");
}

/// The processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&c).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_shard_killed_mid_row_resumes_without_redoing_rows_or_half_results() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    // one run per row (each its own metrics), a row takes a few tenths of a second
    let r = sample("ref.mp4");
    let list: Vec<(&str, String, String, &str)> = [
        ("a", "psnr,vmaf"),
        ("b", "ssim,vmaf"),
        ("c", "mse,vmaf"),
        ("d", "mae,vmaf"),
        ("e", "psnr,ssim,vmaf"),
    ]
    .into_iter()
    .map(|(id, m)| (id, r.clone(), sample("dist.mp4"), m))
    .collect();
    let m = write_manifest(t.path(), &list);
    let out = t.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args(["batch", &m, "--out", s(&out), "--jobs", "1", "-q"])
        .envs(SCHEDULER_VARS.map(|k| (k, "")))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // kill it once a row is complete and the next one's run is under way
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        let listed = if out.exists() {
            names(&out)
        } else {
            Vec::new()
        };
        let done = listed
            .iter()
            .filter(|n| n.ends_with(".summary.json"))
            .count();
        let running = listed.iter().any(|n| n.starts_with(".vqm-run-"));
        if done >= 1 && running && n > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch ended before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no row completed: {listed:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // its run dies with it (no orphan working on), within a moment
    let needle = out.display().to_string();
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        processes_with(&needle).is_empty()
    });
    assert!(
        gone,
        "a run outlived the killed batch: {:?}",
        processes_with(&needle)
    );
    let after_kill = names(&out);
    let done: Vec<String> = after_kill
        .iter()
        .filter_map(|n| n.strip_suffix(".summary.json").map(str::to_string))
        .collect();
    assert!(
        !done.is_empty() && done.len() < list.len(),
        "{after_kill:?}"
    );
    for n in &after_kill {
        // complete rows (a log and its summary) and the dead run's working
        // directory, nothing else
        let id = n.split('.').next().unwrap();
        assert!(
            n.starts_with(".vqm-run-") || done.iter().any(|d| d == id),
            "half result {n} in {after_kill:?}"
        );
    }
    let inodes = |done: &[String]| -> Vec<u64> {
        done.iter()
            .map(|id| {
                std::fs::metadata(out.join(format!("{id}.summary.json")))
                    .unwrap()
                    .ino()
            })
            .collect()
    };
    let before = inodes(&done);
    let o = vqm_env(&["batch", &m, "--out", s(&out), "--jobs", "1"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let want = format!(
        "{} to measure, {} done already",
        list.len() - done.len(),
        done.len()
    );
    assert!(err.contains(&want), "{want}: {err}");
    assert_eq!(inodes(&done), before, "completed rows are not redone");
    let all: Vec<&str> = list.iter().map(|r| r.0).collect();
    assert_eq!(
        names(&out),
        complete(&all),
        "the dead run's leftovers are removed"
    );
}

#[test]
fn merge_writes_csv_and_json_lists_missing_rows_and_refuses_conflicts() {
    let t = tempfile::tempdir().unwrap();
    let m = write_manifest(t.path(), &rows());
    let out = t.path().join("out");
    // every row but the last
    let first = t.path().join("first.csv");
    let list = rows();
    let mut text = String::from("id,reference,distorted,metrics\n");
    for (id, r, d, mm) in &list[..list.len() - 1] {
        text.push_str(&format!("{id},{r},{d},{mm}\n"));
    }
    std::fs::write(&first, text).unwrap();
    let o = vqm_env(
        &["batch", s(&first), "--out", s(&out), "-m", "psnr,ssim"],
        &[],
    );
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let sums = summaries(&out);
    // CSV on stdout, in manifest order with --manifest, missing rows named
    let o = vqm_env(&["merge", s(&out), "--manifest", &m, "--out", "-"], &[]);
    let (code, csv, err) = outcome(&o);
    assert_eq!(code, 1, "a missing row fails: {err}");
    assert!(
        err.contains("row 'dist-psnr' (manifest line 7) has no summary"),
        "{err}"
    );
    let table: Vec<Vec<String>> = csv
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let header = &table[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let order: Vec<&str> = table[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(order, ids()[..ids().len() - 1]);
    for r in &table[1..] {
        let s = &sums[&r[0]];
        for (key, stat) in [
            ("psnr_y", "mean"),
            ("ssim_y", "harmonic_mean"),
            ("psnr_avg", "p5"),
        ] {
            let cell: f64 = r[col(&format!("{key}_{stat}"))].parse().unwrap();
            let want = s["metrics"][key][stat].as_f64();
            assert_eq!(Some(cell), want, "{} {key} {stat}: {s}", r[0]);
        }
        assert_eq!(r[col("frames")], s["frames"].to_string());
        assert_eq!(r[col("resolution")], s["resolution"].as_str().unwrap());
        assert_eq!(r[col("codec")], s["codec"].as_str().unwrap());
        assert_eq!(r[col("bitrate")], s["bitrate"].to_string());
        assert_eq!(r[col("unpaired_distorted")], "0");
    }
    let o = vqm_env(
        &[
            "merge",
            s(&out),
            "--manifest",
            &m,
            "--allow-missing",
            "--out",
            "-",
        ],
        &[],
    );
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    // JSON: an array of objects, numbers as numbers
    let json = t.path().join("r.json");
    let o = vqm_env(&["merge", s(&out), "--out", s(&json)], &[]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), sums.len());
    for o in a {
        let s = &sums[o["id"].as_str().unwrap()];
        assert_eq!(o["psnr_y_mean"], s["metrics"]["psnr_y"]["mean"]);
        assert_eq!(o["frames"], s["frames"]);
        assert_eq!(o["resolution"], s["resolution"]);
    }
    // the same row in two directories: fine when equal, an error when not
    let copy = t.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(
        out.join("dist.summary.json"),
        copy.join("dist.summary.json"),
    )
    .unwrap();
    let o = vqm_env(&["merge", s(&out), s(&copy), "--out", "-"], &[]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let mut changed = sums["dist"].clone();
    changed["metrics"]["psnr_y"]["mean"] = Value::from(1.0);
    std::fs::write(copy.join("dist.summary.json"), changed.to_string()).unwrap();
    let o = vqm_env(&["merge", s(&out), s(&copy), "--out", "-"], &[]);
    let (code, stdout, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(stdout.is_empty());
    assert!(
        err.contains("row 'dist' has two different results")
            && err.contains(s(&out.join("dist.summary.json")))
            && err.contains(s(&copy.join("dist.summary.json"))),
        "{err}"
    );
    for (args, want) in [
        (
            vec!["merge", s(&out), "--out", "r.txt"],
            "give a .csv or .json",
        ),
        (
            vec!["merge", "/nonexistent-dir", "--out", "-"],
            "'/nonexistent-dir': cannot read",
        ),
    ] {
        let o = vqm_env(&args, &[]);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want) && err.lines().count() == 1, "{err}");
    }
}

#[test]
fn check_names_every_bad_row_by_line_and_batch_refuses_per_run_outputs() {
    let t = tempfile::tempdir().unwrap();
    let r = sample("ref.mp4");
    let d = sample("dist.mp4");
    let write = |name: &str, text: String| {
        let p = t.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let good = write(
        "good.csv",
        format!("id,reference,distorted\na,{r},{d}\nb,{r},dist-rel.mp4\n"),
    );
    std::fs::copy(&d, t.path().join("dist-rel.mp4")).unwrap();
    let o = vqm_env(&["batch", &good, "--check"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(
        code, 0,
        "relative paths resolve against the manifest: {err}"
    );
    assert!(err.contains("2 row(s), all readable"), "{err}");
    let jsonl = write(
        "good.jsonl",
        format!("{{\"id\":\"a\",\"reference\":\"{r}\",\"distorted\":\"{d}\",\"dist_offset\":0}}\n"),
    );
    assert_eq!(outcome(&vqm_env(&["batch", &jsonl, "--check"], &[])).0, 0);
    let unreadable = write(
        "u.csv",
        format!("id,reference,distorted\na,{r},{d}\nb,{r},nope.mp4\nc,/no/ref.mp4,{d}\n"),
    );
    let o = vqm_env(&["batch", &unreadable, "--check"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 3: cannot open") && err.contains("nope.mp4"),
        "{err}"
    );
    assert!(err.contains("line 4: cannot open '/no/ref.mp4'"), "{err}");
    for (text, want) in [
        (format!("id,reference\na,{r}\n"), "line 2: no distorted"),
        (
            format!("id,reference,distorted\na,{r},{d}\na,{r},{d}\n"),
            "line 3: id 'a' is also on line 2",
        ),
        (
            format!("id,reference,distorted,crf\na,{r},{d},23\n"),
            "line 2: unknown column 'crf'",
        ),
        (
            format!("id,reference,distorted\na/b,{r},{d}\n"),
            "line 2: id 'a/b' cannot name files",
        ),
        (
            format!("id,reference,distorted\na,{r},{d},x\n"),
            "line 2: 4 field(s)",
        ),
    ] {
        let p = write("bad.csv", text);
        let o = vqm_env(&["batch", &p, "--check"], &[]);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(want) && err.contains("bad.csv"),
            "{want}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // options a run would refuse: a row's own, by line; the command
    // line's, once
    let opts = write(
        "opts.csv",
        format!(
            "id,reference,distorted,metrics,sync\na,{r},{d},psnr,\nb,{r},{d},\"psnr,nope\",\nc,{r},{d},,auto:0s\n"
        ),
    );
    let o = vqm_env(&["batch", &opts, "--check"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 3: --metrics: unknown metric 'nope'"),
        "{err}"
    );
    assert!(err.contains("line 4: --sync: 'auto:0s'"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    let out = t.path().join("opts-out");
    let o = vqm_env(&["batch", &opts, "--out", s(&out), "-m", "psnr"], &[]);
    assert_eq!(outcome(&o).0, 1, "{}", outcome(&o).2);
    assert_eq!(
        names(&out),
        ["a.ndjson", "a.summary.json", "b.error.json", "c.error.json"]
    );
    let o = vqm_env(&["batch", &good, "--check", "--alert", "psnr_y<<3"], &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("vqm batch: --alert") && err.lines().count() == 1,
        "{err}"
    );
    let out = t.path().join("out");
    for flag in [
        &["--log", "x.ndjson"][..],
        &["--summary-json", "s.json"],
        &["--csv", "f.csv"],
        &["--report", "r.html"],
        &["--summary-format", "vmaf"],
    ] {
        let mut a = vec!["batch", &good, "--out", s(&out)];
        a.extend(flag);
        let o = vqm_env(&a, &[]);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 2, "{flag:?}: {err}");
        assert!(err.contains("is not for a batch"), "{err}");
    }
    assert!(!out.exists(), "a refused batch writes nothing");
    let o = vqm_env(&["batch", &good], &[]);
    assert_eq!(outcome(&o).0, 2, "--out is needed");
}

/// What `vqm batch m.csv --out res --emit KIND -m psnr,ssim EXTRA` prints
/// in `dir` (relative paths, as a user would type them).
fn emit_in(dir: &Path, kind: &str, extra: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .current_dir(dir)
        .args(["batch", "m.csv", "--out", "res", "--emit", kind])
        .args(["-m", "psnr,ssim"])
        .args(extra)
        .output()
        .unwrap();
    let (code, text, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    text
}

/// The value of `#SBATCH --NAME=` in a script.
fn sbatch_option(script: &str, name: &str) -> Option<String> {
    script.lines().find_map(|l| {
        l.strip_prefix(&format!("#SBATCH --{name}="))
            .map(str::to_string)
    })
}

#[test]
fn the_emitted_slurm_script_runs_each_task_on_its_shard() {
    let t = tempfile::tempdir().unwrap();
    let m = write_manifest(t.path(), &rows());
    // emitted from another directory, with relative paths: the script
    // names the binary, the manifest and the output by absolute paths
    let script = emit_in(
        t.path(),
        "slurm",
        &["--rows-per-task", "4", "--threads", "1"],
    );
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    assert_eq!(
        sbatch_option(&script, "array").as_deref(),
        Some("0-1"),
        "6 rows, 4 per task"
    );
    assert_eq!(
        sbatch_option(&script, "cpus-per-task").as_deref(),
        Some("1")
    );
    assert!(!script.contains("--mem"), "{script}");
    let res = t.path().join("res");
    let exec = script.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        exec.contains(env!("CARGO_BIN_EXE_vqm")) && exec.contains(&m) && exec.contains(s(&res)),
        "{exec}"
    );
    let o = vqm_env(&["batch", &m, "--out", s(&res), "--emit", "slurm"], &[]);
    let plain = outcome(&o).1;
    assert_eq!(
        sbatch_option(&plain, "array").as_deref(),
        Some("0-5"),
        "a row per task by default"
    );
    let o = vqm_env(
        &[
            "batch",
            &m,
            "--out",
            s(&res),
            "--emit",
            "slurm",
            "--parallelism",
            "2",
        ],
        &[],
    );
    let throttled = outcome(&o).1;
    assert_eq!(
        sbatch_option(&throttled, "array").as_deref(),
        Some("0-5%2"),
        "2 tasks at a time"
    );
    assert_eq!(
        sbatch_option(&plain, "cpus-per-task"),
        None,
        "no CPUs asked without --threads"
    );
    // each task as Slurm would start it
    let file = t.path().join("job.sbatch");
    std::fs::write(&file, &script).unwrap();
    for task in 0..2 {
        let o = Command::new("bash")
            .arg(&file)
            .current_dir("/")
            .envs(SCHEDULER_VARS.map(|k| (k, "")))
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .output()
            .unwrap();
        assert_eq!(outcome(&o).0, 0, "task {task}: {}", outcome(&o).2);
    }
    let whole = t.path().join("whole");
    let o = vqm_env(
        &[
            "batch",
            &m,
            "--out",
            s(&whole),
            "-m",
            "psnr,ssim",
            "--threads",
            "1",
        ],
        &[],
    );
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let both = |d: &Path| -> BTreeMap<String, Value> {
        summaries(d)
            .iter()
            .map(|(k, v)| (k.clone(), comparable(v)))
            .collect()
    };
    assert_eq!(both(&res), both(&whole));
}

#[test]
fn the_emitted_kubernetes_job_is_an_indexed_job_whose_pods_cover_the_manifest() {
    use yaml_rust2::{Yaml, YamlLoader};
    let t = tempfile::tempdir().unwrap();
    write_manifest(t.path(), &rows());
    let emit = |extra: &[&str]| {
        let text = emit_in(t.path(), "k8s", extra);
        YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{e}: {text}"))
            .remove(0)
    };
    let job = emit(&[
        "--rows-per-task",
        "2",
        "--threads",
        "2",
        "--image",
        "registry.example/vqm:1.0",
        "--parallelism",
        "2",
    ]);
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(spec["completions"].as_i64(), Some(3));
    assert_eq!(spec["parallelism"].as_i64(), Some(2));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    let c = &pod["containers"][0];
    assert_eq!(c["image"].as_str(), Some("registry.example/vqm:1.0"));
    assert_eq!(c["resources"]["requests"]["cpu"].as_str(), Some("2"));
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        c["workingDir"].as_str(),
        Some(mount),
        "relative paths are on the volume"
    );
    let volume = c["volumeMounts"][0]["name"].as_str().unwrap();
    let v = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some(volume))
        .unwrap();
    assert_eq!(
        v["persistentVolumeClaim"]["claimName"].as_str(),
        Some("vqm-data")
    );
    let command: Vec<String> = c["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[..2], ["vqm", "batch"]);
    assert!(!command.iter().any(|w| w == "--shard"));
    // each pod as the Job would start it: the command in the working
    // directory with its completion index
    for index in 0..3 {
        let o = Command::new(env!("CARGO_BIN_EXE_vqm"))
            .current_dir(t.path())
            .args(&command[1..])
            .envs(SCHEDULER_VARS.map(|k| (k, "")))
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        assert_eq!(outcome(&o).0, 0, "pod {index}: {}", outcome(&o).2);
    }
    assert_eq!(names(&t.path().join("res")), complete(&ids()));
    // contradictory requests are usage errors
    for (kind, extra, want) in [
        (
            "k8s",
            &["--shards", "2", "--rows-per-task", "3"][..],
            "not both",
        ),
        ("slurm", &["--shard", "0/2"][..], "leave --shard out"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_vqm"))
            .current_dir(t.path())
            .args(["batch", "m.csv", "--out", "res", "--emit", kind])
            .args(extra)
            .output()
            .unwrap();
        let (code, out, err) = outcome(&o);
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty() && err.contains(want), "{err}");
    }
    let job = emit(&["--shards", "4"]);
    assert_eq!(job["spec"]["completions"].as_i64(), Some(4));
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["resources"],
        Yaml::BadValue
    );
}
