//! Per-frame values against independent implementations: FFmpeg's `psnr`
//! filter and scikit-image's `structural_similarity`, through the golden
//! files that tests/golden.py writes from them.

mod common;

use common::*;
use serde_json::Value;

fn golden(clip: &str) -> Value {
    let p = root().join("tests/golden").join(format!("{clip}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).expect("golden file")).expect("golden json")
}

fn run_clip(clip: &str) -> Vec<Value> {
    let o = vqm(&[
        &fixture(&format!("{clip}.ref.mkv")),
        &fixture(&format!("{clip}.dist.mkv")),
        "--metrics",
        "psnr,mse,ssim",
        "--log",
        "-",
        "-q",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    ndjson(&out)
}

fn check_clip(clip: &str) {
    let g = golden(clip);
    let recs = run_clip(clip);
    let frames = of_type(&recs, "frame");
    let gf = g["frames"].as_array().unwrap();
    assert_eq!(frames.len(), gf.len(), "{clip}: frame count");
    for (i, (ours, want)) in frames.iter().zip(gf).enumerate() {
        for (key, w) in want.as_object().unwrap() {
            let w = w.as_f64().unwrap();
            let o = ours[key.as_str()]
                .as_f64()
                .unwrap_or_else(|| panic!("{clip} frame {i}: no {key}"));
            if key.starts_with("psnr") {
                assert!(
                    (o - w).abs() <= 1e-3,
                    "{clip} frame {i} {key}: {o} vs FFmpeg {w}"
                );
            } else if key.starts_with("mse") {
                // FFmpeg stores the value as float32 printed with %f: allow
                // 1e-6 relative, or its printed resolution for small values.
                assert!(
                    rel(o, w) <= 1e-6 || (o - w).abs() <= 6e-7,
                    "{clip} frame {i} {key}: {o} vs FFmpeg {w}"
                );
            } else if key.starts_with("ssim") {
                assert!(
                    (o - w).abs() <= 1e-4,
                    "{clip} frame {i} {key}: {o} vs scikit-image {w}"
                );
            }
        }
    }
    // FFmpeg's pooled PSNR (PSNR of the mean MSE) equals psnr_global.
    let summary = of_type(&recs, "summary")[0];
    for (k, w) in g["psnr_global"].as_object().unwrap() {
        let o = summary["psnr_global"][k.as_str()].as_f64().unwrap();
        assert!(
            (o - w.as_f64().unwrap()).abs() <= 1e-3,
            "{clip} psnr_global {k}: {o} vs {w}"
        );
    }
}

#[test]
fn eight_bit_420_matches_ffmpeg_and_scikit_image() {
    check_clip("c420");
}

#[test]
fn eight_bit_444_odd_size_matches_ffmpeg_and_scikit_image() {
    check_clip("c444odd");
}

#[test]
fn ten_bit_422_matches_ffmpeg_and_scikit_image() {
    check_clip("c422p10");
}
