//! A run never destroys what the user has: an output that is an input, two
//! outputs on one file, and a run that fails before measuring leave every
//! existing file exactly as it was.

mod common;

use std::path::Path;

use common::*;

/// The bytes of every file in `dir`, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_output_that_is_an_input_is_exit_2_and_the_input_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let copy = dir.path().join("d.mkv");
    std::fs::copy(&d, &copy).unwrap();
    let link = dir.path().join("l.mkv");
    std::os::unix::fs::symlink(&copy, &link).unwrap();
    let before = snapshot(dir.path());
    for flag in ["--log", "--summary-json", "--csv", "--report"] {
        for out in [&copy, &link] {
            let (code, _, err) = outcome(&vqm(&[&r, s(&copy), flag, s(out), "-q"]));
            assert_eq!(code, 2, "{flag} {out:?}: {err}");
            assert!(err.contains("is the input") && err.contains(flag), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn two_outputs_on_one_file_or_both_on_stdout_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let x = dir.path().join("x");
    std::fs::write(&x, b"previous\n").unwrap();
    let link = dir.path().join("y");
    std::os::unix::fs::symlink(&x, &link).unwrap();
    let new = dir.path().join("new.out");
    let before = snapshot(dir.path());
    let cases: Vec<Vec<&str>> = vec![
        vec!["--log", s(&x), "--summary-json", s(&x)],
        vec!["--log", s(&x), "--csv", s(&link)],
        vec!["--csv", s(&new), "--report", s(&new)],
        vec!["--csv", "-", "--log", "-"],
        vec!["--summary-json", "-", "--csv", "-"],
    ];
    for args in cases {
        let mut a = vec![r.as_str(), d.as_str(), "-q"];
        a.extend(&args);
        let (code, _, err) = outcome(&vqm(&a));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("same file") || err.contains("standard output"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(snapshot(dir.path()), before);
    assert!(!new.exists());
}

#[test]
fn a_run_that_fails_before_measuring_leaves_previous_outputs_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let names = ["keep.ndjson", "keep.json", "keep.csv", "keep.html"];
    for n in names {
        std::fs::write(dir.path().join(n), format!("previous {n}\n")).unwrap();
    }
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let outs = [
        "--log",
        &p(names[0]),
        "--summary-json",
        &p(names[1]),
        "--csv",
        &p(names[2]),
        "--report",
        &p(names[3]),
    ]
    .map(String::from);
    let before = snapshot(dir.path());
    let missing = dir.path().join("missing.mkv");
    let empty = tempfile::NamedTempFile::new().unwrap();
    for (args, want) in [
        // a missing input, an empty one (exit 1), a gate on no key, an
        // alert on no key (exit 2)
        (vec![r.clone(), s(&missing).to_string()], 1),
        (vec![r.clone(), s(empty.path()).to_string()], 1),
        (
            vec![
                r.clone(),
                d.clone(),
                "--fail-if".into(),
                "mean(nosuch)<1".into(),
            ],
            2,
        ),
        (
            vec![r.clone(), d.clone(), "--alert".into(), "nosuch<1".into()],
            2,
        ),
    ] {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(outs.iter().map(String::as_str));
        a.push("-q");
        let (code, _, err) = outcome(&vqm(&a));
        assert_eq!(code, want, "{args:?}: {err}");
        assert_eq!(snapshot(dir.path()), before, "{args:?} touched a file");
    }
    // a run that measures replaces them, and leaves no temporary file
    let mut a = vec![r.as_str(), d.as_str(), "-q"];
    a.extend(outs.iter().map(String::as_str));
    let (code, _, err) = outcome(&vqm(&a));
    assert_eq!(code, 0, "{err}");
    let after = snapshot(dir.path());
    assert_eq!(
        after.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["keep.csv", "keep.html", "keep.json", "keep.ndjson"]
    );
    for (n, bytes) in &after {
        assert!(!bytes.starts_with(b"previous"), "{n} was not replaced");
    }
    let log = ndjson(&String::from_utf8_lossy(&after[3].1));
    assert_eq!(log.first().unwrap()["type"], "header");
    assert_eq!(log.last().unwrap()["type"], "summary");
}

#[test]
fn an_endless_config_file_is_refused_at_once() {
    let (r, d) = c420();
    let start = std::time::Instant::now();
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--config", "/dev/zero", "-q"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("larger than 1024 KiB"),
        "{err}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_path_that_looks_like_a_formula_is_neutralised_in_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let evil = dir.path().join("=cmd|' -C calc'!A0.mkv");
    std::fs::copy(&d, &evil).unwrap();
    let csv = dir.path().join("out.csv");
    let (code, _, err) = outcome(&vqm(&[&r, s(&evil), "--csv", s(&csv), "-q"]));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let row = text.lines().nth(1).unwrap();
    // the path cell holds the path whole; no cell starts a formula (a path
    // cell that would is prefixed with ', see output::csv's unit test)
    let cells: Vec<&str> = row.split(',').collect();
    assert!(cells[1].ends_with("=cmd|' -C calc'!A0.mkv"), "{row}");
    for c in &cells {
        assert!(!c.starts_with(['=', '+', '@', '\t', '\r']), "{row}");
    }
}

#[test]
fn inclusive_alert_rules_fire_at_the_threshold() {
    // identical inputs: every frame is exactly at the PSNR cap (60 dB at 8 bits)
    let (r, _) = c420();
    for (rule, fires) in [
        ("psnr_y>=60", true),
        ("psnr_y>60", false),
        ("psnr_y<=60", true),
    ] {
        let (code, out, err) = outcome(&vqm(&[&r, &r, "--alert", rule, "--log", "-", "-q"]));
        let alerts = ndjson(&out)
            .into_iter()
            .filter(|v| v["kind"] == "alert")
            .count();
        assert_eq!(alerts > 0, fires, "{rule}: {err}");
        assert_eq!(code, if fires { 3 } else { 0 }, "{rule}: {err}");
    }
}

#[test]
fn dump_worst_at_a_file_says_so_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let f = dir.path().join("notadir");
    std::fs::write(&f, b"keep me\n").unwrap();
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--dump-worst", s(&f), "-q"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a file, not a directory"), "{err}");
    assert_eq!(std::fs::read(&f).unwrap(), b"keep me\n");
}

/// Outputs written through a temporary file get the permissions of a new
/// file (not a temporary file's 0600), or keep those of the file they
/// replace.
#[test]
fn outputs_written_whole_keep_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let new_file = mode(&plain);
    let kept = dir.path().join("kept.csv");
    std::fs::write(&kept, b"old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    let summary = dir.path().join("s.json");
    let worst = dir.path().join("worst");
    let (code, _, err) = outcome(&vqm(&[
        &r,
        &d,
        "-q",
        "--summary-json",
        s(&summary),
        "--csv",
        s(&kept),
        "--worst",
        "1",
        "--dump-worst",
        s(&worst),
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&summary), new_file);
    assert_eq!(mode(&kept), 0o640);
    let png = std::fs::read_dir(&worst)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&png), new_file, "{png:?}");
}
