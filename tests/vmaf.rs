//! VMAF against FFmpeg's `libvmaf` filter (libvmaf inside FFmpeg, through
//! the golden file tests/golden_vmaf.py writes): per frame and pooled, on
//! 8- and 10-bit 4:2:0, 4:2:2 and 4:4:4 clips (odd sizes included) and the
//! bundled samples; and what vqm refuses.

mod common;

use common::*;
use serde_json::Value;

fn goldens() -> Value {
    let text = std::fs::read_to_string(root().join("tests/golden/vmaf.json"))
        .expect("tests/golden/vmaf.json (python3 tests/golden_vmaf.py)");
    serde_json::from_str(&text).unwrap()
}

/// FFmpeg's log prints six decimals: its values are within 5e-7 of
/// libvmaf's, and vqm's must be within that of them.
const TOLERANCE: f64 = 1e-6;

/// Runs vqm on a golden entry's pair with `args` and compares every frame
/// and the pooled figures with FFmpeg's.
fn check_against(name: &str, want: &Value, args: &[&str]) -> Vec<Value> {
    let r = root().join(want["reference"].as_str().unwrap());
    let d = root().join(want["distorted"].as_str().unwrap());
    let mut all = vec![s(&r), s(&d), "-m", "psnr,vmaf", "--vmaf-features"];
    all.extend(["--log", "-", "-q"]);
    all.extend(args);
    let recs = records_ok(&vqm(&all));
    let frames = of_type(&recs, "frame");
    let gold = want["frames"].as_array().unwrap();
    assert_eq!(frames.len(), gold.len(), "{name}");
    for (i, (f, w)) in frames.iter().zip(gold).enumerate() {
        let (got, w) = (f["vmaf"].as_f64().unwrap(), w.as_f64().unwrap());
        assert!(
            (got - w).abs() <= TOLERANCE,
            "{name} frame {i}: vmaf {got}, FFmpeg's libvmaf {w}"
        );
    }
    // every elementary feature, under libvmaf's names
    let feats = want["features"].as_object().unwrap();
    let keys: Vec<&str> = recs[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str().filter(|k| k.starts_with("integer_")))
        .collect();
    let mut expected: Vec<&str> = feats.keys().map(|k| k.as_str()).collect();
    let mut listed = keys.clone();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected, "{name}: the feature keys");
    for (key, values) in feats {
        for (i, (f, w)) in frames.iter().zip(values.as_array().unwrap()).enumerate() {
            let (got, w) = (f[key].as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (got - w).abs() <= TOLERANCE,
                "{name} frame {i}: {key} {got}, FFmpeg's libvmaf {w}"
            );
        }
    }
    let summary = of_type(&recs, "summary")[0];
    let pooled = &summary["metrics"]["vmaf"];
    for key in ["mean", "harmonic_mean", "min", "max"] {
        let (got, w) = (
            pooled[key].as_f64().unwrap(),
            want["pooled"][key].as_f64().unwrap(),
        );
        assert!(
            (got - w).abs() <= TOLERANCE,
            "{name} pooled {key}: {got}, FFmpeg's libvmaf {w}"
        );
    }
    recs
}

#[test]
fn vmaf_matches_ffmpegs_libvmaf_filter_frame_by_frame_and_pooled() {
    let g = goldens();
    let pairs = g["pairs"].as_object().unwrap();
    assert_eq!(pairs.len(), 6);
    for (name, want) in pairs {
        let recs = check_against(name, want, &[]);
        let header = &recs[0]["vmaf"];
        assert_eq!(header["model"], "vmaf_v0.6.1", "{name}");
        assert_eq!(header["libvmaf"], "2.3.1", "{name}");
    }
}

#[test]
fn every_model_and_option_matches_ffmpegs_libvmaf_filter() {
    let g = goldens();
    let models = g["models"].as_object().unwrap();
    assert_eq!(models.len(), 5);
    for (name, want) in models {
        let args: Vec<&str> = want["vqm_args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let recs = check_against(name, want, &args);
        let header = &recs[0]["vmaf"];
        if let Some(i) = args.iter().position(|a| *a == "--vmaf-model") {
            assert_eq!(header["model"], args[i + 1], "{name}");
        }
        assert_eq!(
            header["enable_transform"],
            args.contains(&"--vmaf-enable-transform"),
            "{name}"
        );
        assert_eq!(
            header["disable_clip"],
            args.contains(&"--vmaf-disable-clip"),
            "{name}"
        );
    }
    // the options matter on these samples: clipping shows on identical
    // pictures, the transform everywhere
    let max = |n: &str| models[n]["pooled"]["max"].as_f64().unwrap();
    assert_eq!(max("identical"), 100.0);
    assert!(max("identical_no_clip") > 100.5);
}

#[test]
fn vmaf_is_asked_for_by_name_and_refuses_rgb() {
    let (r, d) = c420();
    let recs = records_ok(&vqm(&[&r, &d, "-m", "all", "--log", "-", "-q"]));
    let frame = of_type(&recs, "frame")[0];
    assert!(frame.get("psnr_y").is_some() && frame.get("vmaf").is_none());
    let r = fixture("cgbrpodd.ref.mkv");
    let d = fixture("cgbrpodd.dist.mkv");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "-m", "vmaf", "-q"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("vmaf") && err.contains("RGB"), "{err}");
}

#[test]
fn a_model_that_cannot_be_loaded_is_a_usage_error_naming_it() {
    let (r, d) = c420();
    for (model, says) in [
        ("vmaf_v9", "no built-in model 'vmaf_v9'"),
        (
            "/nonexistent/model.json",
            "cannot load the model file '/nonexistent/model.json'",
        ),
    ] {
        let (code, _, err) = outcome(&vqm(&[&r, &d, "-m", "vmaf", "--vmaf-model", model, "-q"]));
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// vqm's metric name for a libvmaf extractor's name.
fn metric_of(extractor: &str) -> &str {
    match extractor {
        "ciede" => "ciede2000",
        x => x,
    }
}

/// Compares every key of `want["frames"]` per frame, and `want["pooled"]`,
/// with vqm's records.
fn check_keys(name: &str, recs: &[Value], want: &Value) {
    let frames = of_type(recs, "frame");
    let summary = of_type(recs, "summary")[0];
    let keys = want["frames"].as_object().unwrap();
    assert!(!keys.is_empty(), "{name}");
    for (key, values) in keys {
        let values = values.as_array().unwrap();
        assert_eq!(frames.len(), values.len(), "{name} {key}");
        for (i, (f, w)) in frames.iter().zip(values).enumerate() {
            let got = f[key.as_str()].as_f64().unwrap_or(f64::NAN);
            let w = w.as_f64().unwrap();
            assert!(
                (got - w).abs() <= TOLERANCE,
                "{name} frame {i}: {key} {got}, libvmaf {w}"
            );
        }
        for stat in ["mean", "harmonic_mean", "min", "max"] {
            let got = summary["metrics"][key.as_str()][stat]
                .as_f64()
                .unwrap_or(f64::NAN);
            let w = want["pooled"][key.as_str()][stat].as_f64().unwrap();
            assert!(
                (got - w).abs() <= TOLERANCE,
                "{name} pooled {key} {stat}: {got}, libvmaf {w}"
            );
        }
    }
}

#[test]
fn libvmafs_other_extractors_match_ffmpegs_filter() {
    let g = goldens();
    let entries = g["extractors"].as_object().unwrap();
    assert_eq!(entries.len(), 4);
    for (name, want) in entries {
        let r = root().join(want["reference"].as_str().unwrap());
        let d = root().join(want["distorted"].as_str().unwrap());
        let metrics: Vec<&str> = want["extractors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| metric_of(x.as_str().unwrap()))
            .collect();
        let metrics = metrics.join(",");
        let recs = records_ok(&vqm(&[s(&r), s(&d), "-m", &metrics, "--log", "-", "-q"]));
        // the record keys are libvmaf's names, in the registry's order
        let listed: Vec<&str> = recs[0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let mut sorted = listed.clone();
        sorted.sort();
        let mut expected: Vec<&str> = want["frames"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        expected.sort();
        assert_eq!(sorted, expected, "{name}: the keys");
        check_keys(name, &recs, want);
    }
}

#[test]
fn a_bootstrap_model_gives_libvmafs_confidence_interval() {
    let g = goldens();
    let entries = g["bootstrap"].as_object().unwrap();
    assert_eq!(entries.len(), 2);
    for (name, want) in entries {
        let r = root().join(want["reference"].as_str().unwrap());
        let d = root().join(want["distorted"].as_str().unwrap());
        let model = want["model"].as_str().unwrap();
        let recs = records_ok(&vqm(&[
            s(&r),
            s(&d),
            "-m",
            "vmaf",
            "--vmaf-model",
            model,
            "--log",
            "-",
            "-q",
        ]));
        assert_eq!(recs[0]["vmaf"]["model"], model, "{name}");
        check_keys(name, &recs, want);
        // the interval holds the bagging score on every frame
        for f in of_type(&recs, "frame") {
            let v = |k: &str| f[k].as_f64().unwrap();
            assert!(v("vmaf_ci_p95_lo") <= v("vmaf_bagging"), "{name}: {f}");
            assert!(v("vmaf_bagging") <= v("vmaf_ci_p95_hi"), "{name}: {f}");
        }
    }
}

#[test]
fn a_model_file_given_by_path_scores_as_the_built_in_one() {
    let g = goldens();
    let want = &g["models"]["neg"];
    assert_eq!(want["vqm_args"][1], "vmaf_v0.6.1neg");
    let file = root().join("tests/fixtures/models/vmaf_v0.6.1neg.json");
    let path = s(&file);
    let recs = check_against("neg by path", want, &["--vmaf-model", path]);
    assert_eq!(recs[0]["vmaf"]["model"], path);
}

#[test]
fn libvmafs_extractors_refuse_what_libvmaf_cannot_measure_before_any_frame() {
    let gray = (fixture("cgrayodd.ref.mkv"), fixture("cgrayodd.dist.mkv"));
    let c444 = (fixture("c444odd.ref.mkv"), fixture("c444odd.dist.mkv"));
    let c422 = (fixture("c422p10.ref.mkv"), fixture("c422p10.dist.mkv"));
    for ((r, d), metric, says) in [
        (&c444, "cambi", "at least 320 px"),
        (&c422, "float_ms_ssim", "at least 176x176"),
        (&c444, "ciede2000", "4:4:4"),
        (&gray, "psnr_hvs", "gray"),
        (&gray, "ciede2000", "gray"),
    ] {
        let (code, out, err) = outcome(&vqm(&[r, d, "-m", metric, "--log", "-", "-q"]));
        assert_eq!(code, 2, "{metric}: {err}");
        assert_eq!(err.lines().count(), 1, "{metric}: {err}");
        assert!(
            err.contains(metric) && err.contains(says),
            "{metric}: {err}"
        );
        assert!(!out.contains("\"frame\""), "{metric}: {out}");
    }
    // and `all` leaves them out, as it does VMAF
    let (r, d) = c420();
    let recs = records_ok(&vqm(&[&r, &d, "-m", "all", "--log", "-", "-q"]));
    let frame = of_type(&recs, "frame")[0];
    assert!(frame.get("cambi").is_none() && frame.get("psnr_hvs").is_none());
}

#[test]
fn vmaf_gates_the_run_and_ranks_the_worst_frames_in_every_output() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let dir = tempfile::tempdir().unwrap();
    let (csv, worst) = (dir.path().join("v.csv"), dir.path().join("worst"));
    let o = vqm(&[
        &r,
        &d,
        "-m",
        "vmaf",
        "--log",
        "-",
        "--csv",
        s(&csv),
        "--worst",
        "3",
        "--worst-gap",
        "0",
        "--dump-worst",
        s(&worst),
        "--fail-if",
        "mean(vmaf)<99",
        "-q",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("mean(vmaf)<99"), "{err}");
    let recs = ndjson(&out);
    let frames = of_type(&recs, "frame");
    assert_eq!(frames.len(), 75);
    // the CSV's vmaf column is the records' (shortest round-trip text)
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = head.iter().position(|h| *h == "vmaf").unwrap();
    for (line, f) in lines.zip(&frames) {
        let cell: f64 = line.split(',').nth(col).unwrap().parse().unwrap();
        assert_eq!(cell, f["vmaf"].as_f64().unwrap(), "{line}");
    }
    // the worst frames are the lowest scores (higher is better)
    let mut by_score: Vec<(f64, u64)> = frames
        .iter()
        .map(|f| (f["vmaf"].as_f64().unwrap(), f["frame"].as_u64().unwrap()))
        .collect();
    by_score.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut names: Vec<String> = std::fs::read_dir(&worst)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = by_score[..3]
        .iter()
        .enumerate()
        .map(|(i, (_, n))| format!("worst-0-{:02}-frame{n}.png", i + 1))
        .collect();
    assert_eq!(names, want);
    // a gate that holds passes
    let o = vqm(&[&r, &d, "-m", "vmaf", "--fail-if", "mean(vmaf)<50", "-q"]);
    assert_eq!(outcome(&o).0, 0);
}
