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
