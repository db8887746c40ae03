//! The metric kernels called in-process on the fidelity clips' decoded
//! planes, against the goldens of tests/golden.py: every clip, every SSIM
//! convention and precision, every CPU level the machine has. The same
//! references as tests/fidelity.rs without the binary around them, so it
//! runs in seconds: the test that mutation testing runs for each mutant
//! (TESTING.md).

mod common;

use std::process::Command;

use common::*;
use serde_json::{Map, Value};
use vqm::cpu::{CpuLevel, available_levels, cpu_level, detected_level, force_level};
use vqm::frame::Frame;
use vqm::metrics::ssim::Precision;
use vqm::metrics::{Layout, MetricOptions, MetricSet, SsimMode, resolve_names};

/// A fidelity clip's decoded frames and layout.
struct Clip {
    name: &'static str,
    layout: Layout,
    refs: Vec<Frame>,
    dists: Vec<Frame>,
    golden: Value,
}

/// Plane sizes, bit depth, record names and the raw plane holding each
/// record plane, for the pixel formats of the fidelity clips.
fn geometry(pix_fmt: &str, w: usize, h: usize) -> (Vec<(usize, usize)>, u32, Layout, Vec<usize>) {
    let depth = if pix_fmt.contains("p12") {
        12
    } else if pix_fmt.contains("p10") {
        10
    } else {
        8
    };
    let (names, order, sub): (Vec<&'static str>, Vec<usize>, (u32, u32)) = if pix_fmt == "gray" {
        (vec!["y"], vec![0], (0, 0))
    } else if pix_fmt == "gbrp" {
        // FFmpeg stores G, B, R; records say r, g, b
        (vec!["r", "g", "b"], vec![2, 0, 1], (0, 0))
    } else if pix_fmt.starts_with("yuv420") {
        (vec!["y", "u", "v"], vec![0, 1, 2], (1, 1))
    } else if pix_fmt.starts_with("yuv422") {
        (vec!["y", "u", "v"], vec![0, 1, 2], (1, 0))
    } else if pix_fmt.starts_with("yuv444") {
        (vec!["y", "u", "v"], vec![0, 1, 2], (0, 0))
    } else {
        panic!("no geometry for {pix_fmt}")
    };
    let chroma = (w.div_ceil(1 << sub.0), h.div_ceil(1 << sub.1));
    let raw: Vec<(usize, usize)> = (0..names.len())
        .map(|i| if i == 0 { (w, h) } else { chroma })
        .collect();
    let layout = Layout {
        plane_names: names,
        plane_dims: order.iter().map(|&i| raw[i]).collect(),
        bit_depth: depth,
    };
    (raw, depth, layout, order)
}

/// The frames of `path` decoded by the ffmpeg CLI to raw `pix_fmt`.
fn decode(
    path: &str,
    pix_fmt: &str,
    raw: &[(usize, usize)],
    depth: u32,
    order: &[usize],
) -> Vec<Frame> {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i", path, "-f", "rawvideo"])
        .args(["-pix_fmt", pix_fmt, "-"])
        .output()
        .expect("ffmpeg CLI is installed (.ci/deps installs it)");
    assert!(
        o.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = if depth > 8 { 2 } else { 1 };
    let frame_len: usize = raw.iter().map(|(w, h)| w * h * bytes).sum();
    assert!(
        !o.stdout.is_empty() && o.stdout.len().is_multiple_of(frame_len),
        "{path}"
    );
    o.stdout
        .chunks_exact(frame_len)
        .map(|chunk| {
            let mut planes = Vec::new();
            let mut at = 0;
            for &(w, h) in raw {
                planes.push((w, h, &chunk[at..at + w * h * bytes]));
                at += w * h * bytes;
            }
            let ordered = order.iter().map(|&i| planes[i]);
            if depth > 8 {
                Frame::from_u16(
                    depth,
                    ordered
                        .map(|(w, h, b)| {
                            let v = b.chunks_exact(2).map(|s| u16::from_le_bytes([s[0], s[1]]));
                            (w, h, v.collect())
                        })
                        .collect(),
                )
            } else {
                Frame::from_u8(ordered.map(|(w, h, b)| (w, h, b.to_vec())).collect())
            }
        })
        .collect()
}

fn load(name: &'static str) -> Clip {
    let golden = golden(name);
    let pix_fmt = golden["pix_fmt"].as_str().unwrap().to_string();
    let r = fixture(&format!("{name}.ref.mkv"));
    let (w, h) = picture_size(&r);
    let (raw, depth, layout, order) = geometry(&pix_fmt, w, h);
    let refs = decode(&r, &pix_fmt, &raw, depth, &order);
    let dists = decode(
        &fixture(&format!("{name}.dist.mkv")),
        &pix_fmt,
        &raw,
        depth,
        &order,
    );
    assert_eq!(refs.len(), dists.len(), "{name}");
    Clip {
        name,
        layout,
        refs,
        dists,
        golden,
    }
}

/// Each pair of `clip` measured with `metrics` and `options`, as records.
fn rows(clip: &Clip, metrics: &str, options: MetricOptions) -> Vec<Value> {
    let selected = resolve_names(&[metrics.to_string()]).unwrap();
    let set = MetricSet::new(&selected, options, &clip.layout).unwrap();
    clip.refs
        .iter()
        .zip(&clip.dists)
        .map(|(r, d)| {
            let row = set.compute(r, d).unwrap();
            let obj: Map<String, Value> = set
                .keys()
                .iter()
                .zip(&row.values)
                .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                .collect();
            Value::Object(obj)
        })
        .collect()
}

fn golden_frames(g: &Value, member: &str, keep: impl Fn(&str) -> bool) -> Vec<Value> {
    g[member]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let kept = f.as_object().unwrap().iter().filter(|(k, _)| keep(k));
            Value::Object(kept.map(|(k, v)| (k.clone(), v.clone())).collect())
        })
        .collect()
}

fn check_clip(clip: &Clip, level: CpuLevel) {
    let g = &clip.golden;
    let at = |what: &str| format!("{what} at {level:?} (in-process)");
    let opts = |mode: SsimMode, beta: f64| MetricOptions {
        psnr_max: None,
        ssim_mode: mode,
        smooth_l1_beta: beta,
        precision: Precision::Fast,
        ..MetricOptions::default()
    };
    fn refs(r: &[Value]) -> Vec<&Value> {
        r.iter().collect()
    }
    // every metric, Gaussian SSIM in single precision, held to 1e-5
    let all = rows(clip, "all", opts(SsimMode::Gaussian, 1.0));
    let want = golden_frames(g, "frames", |_| true);
    compare(clip.name, &at("all"), &refs(&all), &want, |k| {
        if k.starts_with("ssim") || k.starts_with("ms_ssim") {
            (1e-5, false)
        } else {
            tolerance(k)
        }
    });
    // each metric alone gives the values it gives beside the others
    for m in ["psnr", "mse", "ssim", "ms-ssim", "entropy", "kl", "xent"] {
        for (alone, with) in rows(clip, m, opts(SsimMode::Gaussian, 1.0))
            .iter()
            .zip(&all)
        {
            for (k, v) in alone.as_object().unwrap() {
                assert_eq!(&with[k.as_str()], v, "{} {m} alone: {k}", clip.name);
            }
        }
    }
    // FFmpeg's convention, alone and fused with PSNR/MSE
    let ff = rows(clip, "ssim", opts(SsimMode::Ffmpeg, 1.0));
    let want_ff = golden_frames(g, "ssim_ffmpeg", |_| true);
    compare(clip.name, &at("ffmpeg ssim"), &refs(&ff), &want_ff, |_| {
        (2e-6, false)
    });
    let fused = rows(clip, "psnr,mse,ssim", opts(SsimMode::Ffmpeg, 1.0));
    compare(
        clip.name,
        &at("ffmpeg fused"),
        &refs(&fused),
        &want_ff,
        |_| (2e-6, false),
    );
    let want_psnr = golden_frames(g, "frames", |k| {
        k.starts_with("psnr") || k.starts_with("mse")
    });
    compare(
        clip.name,
        &at("ffmpeg fused psnr"),
        &refs(&fused),
        &want_psnr,
        tolerance,
    );
    // zero padding
    let zp = rows(clip, "ssim", opts(SsimMode::ZeroPad, 1.0));
    let want_zp = golden_frames(g, "ssim_zero_pad", |_| true);
    compare(
        clip.name,
        &at("zero-pad ssim"),
        &refs(&zp),
        &want_zp,
        |_| (1e-5, false),
    );
    // the linear branch of Smooth L1
    let beta = g["smooth_l1_small_beta"].as_f64().unwrap();
    let sl = rows(clip, "smooth-l1", opts(SsimMode::Gaussian, beta));
    let want_sl = golden_frames(g, "smooth_l1_small_beta_frames", |_| true);
    compare(
        clip.name,
        &at("smooth-l1 small beta"),
        &refs(&sl),
        &want_sl,
        |_| (1e-6, false),
    );
    // double precision to rounding
    let dbl = rows(
        clip,
        "ssim,ms-ssim",
        MetricOptions {
            precision: Precision::Double,
            ..opts(SsimMode::Gaussian, 1.0)
        },
    );
    let want_ssim = golden_frames(g, "frames", |k| {
        k.starts_with("ssim") || k.starts_with("ms_ssim")
    });
    compare(clip.name, &at("double"), &refs(&dbl), &want_ssim, |_| {
        (1e-9, false)
    });
    // a different cap: PSNR follows it where the golden is above it
    let capped = rows(
        clip,
        "psnr",
        MetricOptions {
            psnr_max: Some(30.0),
            ..opts(SsimMode::Gaussian, 1.0)
        },
    );
    for (c, w) in capped.iter().zip(&want_psnr) {
        for (k, v) in c.as_object().unwrap() {
            let capped = |s: &str| w[s].as_f64().unwrap().min(30.0);
            let want = if k == "psnr_yuv611" {
                // the codec-comparison weighting of the capped planes
                (6.0 * capped("psnr_y") + capped("psnr_u") + capped("psnr_v")) / 8.0
            } else {
                capped(k)
            };
            assert!(
                (v.as_f64().unwrap() - want).abs() <= 1e-3,
                "{} cap 30 {k}: {v} vs {want}",
                clip.name
            );
        }
    }
}

#[test]
fn kernels_match_the_goldens_at_every_cpu_level() {
    // one test: the CPU level and SSIM precision are process-wide settings
    let clips: Vec<Clip> = CLIPS.iter().map(|c| load(c)).collect();
    let levels = available_levels();
    // never an empty loop: the portable path at least, up to the best level
    assert_eq!(levels.first(), Some(&CpuLevel::Scalar));
    assert_eq!(levels.last(), Some(&detected_level()));
    for level in levels {
        force_level(Some(level));
        assert_eq!(cpu_level(), level, "the kernels run at the level forced");
        for clip in &clips {
            check_clip(clip, level);
        }
    }
    force_level(None);
    assert_eq!(cpu_level(), detected_level(), "no cap: the best level");
}
