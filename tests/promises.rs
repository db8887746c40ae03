//! README promises that no other test holds: the CSV's empty cells and
//! input/path columns, the libvmaf-layout summary, the HTML report's
//! 600-point envelopes and its "higher is worse" ranking for errors, the
//! `alerts` and `window_every = 0` config keys, `--threads`, `--ref-opt`,
//! `--input-format`, yuvj* compared without a range conversion, and `pts`
//! as index / rate for frames without timestamps. Every check runs the real
//! binary on decoded video; expected values come from the test's own
//! arithmetic on other records, or from the ffmpeg CLI.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn run_ok(args: &[&str]) -> Vec<Value> {
    let (code, out, err) = outcome(&vqm(args));
    assert_eq!(code, 0, "{args:?}: {err}");
    ndjson(&out)
}

fn frames(recs: &[Value]) -> Vec<&Value> {
    of_type(recs, "frame")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The frame record's metric values (every key but the pair's identity).
fn values(f: &Value) -> BTreeMap<String, Value> {
    f.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            !["type", "input", "frame", "ref_frame", "dist_frame", "pts"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The header's record keys.
fn keys(recs: &[Value]) -> Vec<String> {
    recs[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// A testsrc clip of `n` frames at 25 fps, `size`, through `vf`, encoded
/// with `codec` at `dst` (pixel format `pix`).
fn testsrc(dst: &Path, size: &str, n: u32, vf: &str, pix: &str, codec: &[&str]) {
    let n = n.to_string();
    let src = format!("testsrc=size={size}:rate=25");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-frames:v", &n];
    if !vf.is_empty() {
        args.extend(["-vf", vf]);
    }
    args.extend(["-pix_fmt", pix]);
    args.extend(codec);
    args.push(s(dst));
    ffmpeg(&args);
}

/// A 25 fps testsrc reference of `n` frames and a distorted copy with
/// temporal noise (a different error every frame), both FFV1 in Matroska.
fn noisy_pair(dir: &tempfile::TempDir, size: &str, n: u32) -> (String, String) {
    let r = dir.path().join("ref.mkv");
    let d = dir.path().join("dist.mkv");
    testsrc(&r, size, n, "", "yuv420p", &["-c:v", "ffv1"]);
    testsrc(
        &d,
        size,
        n,
        "noise=alls=24:allf=t",
        "yuv420p",
        &["-c:v", "ffv1"],
    );
    (s(&r).to_string(), s(&d).to_string())
}

// ---------------------------------------------------------------- 1. CSV

/// README: `--csv`: "a header row, then one row per frame: `input, path,
/// frame, pts, ref_frame, dist_frame` and every metric key (empty cell for
/// a value that cannot exist)"; "every record carries `input`".
///
/// A value that cannot exist: the binary cross-entropy of a frame whose
/// distorted luma holds a sample above the 10-bit peak (ŷ > 1: ln(1 − ŷ) has
/// no value), which the frame record writes as `null`.
#[test]
fn csv_has_input_and_path_per_distorted_input_and_empty_cells_for_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("ref.yuv");
    let d = dir.path().join("dist.yuv");
    let other = dir.path().join("other.yuv");
    let raw = ["-f", "rawvideo"];
    testsrc(&r, "32x32", 4, "", "yuv420p10le", &raw);
    testsrc(
        &other,
        "32x32",
        4,
        "noise=alls=12:allf=t",
        "yuv420p10le",
        &raw,
    );
    // dist: `other` with the first luma sample of frame 2 at 0xffff
    let mut bytes = std::fs::read(&other).unwrap();
    let frame_len = 32 * 32 * 2 + 2 * (16 * 16 * 2);
    assert_eq!(bytes.len(), 4 * frame_len);
    bytes[2 * frame_len] = 0xff;
    bytes[2 * frame_len + 1] = 0xff;
    std::fs::write(&d, bytes).unwrap();
    let csv = dir.path().join("frames.csv");
    let args = [
        s(&r),
        s(&d),
        s(&other),
        "--size",
        "32x32",
        "--pix-fmt",
        "yuv420p10le",
        "-m",
        "psnr,bce",
        "--csv",
        s(&csv),
        "--log",
        "-",
        "-q",
    ];
    let recs = run_ok(&args);
    let keys = keys(&recs);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut want = vec!["input", "path", "frame", "pts", "ref_frame", "dist_frame"];
    want.extend(keys.iter().map(String::as_str));
    assert_eq!(header, want);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let recs_f = frames(&recs);
    assert_eq!(rows.len(), 8, "4 pairs for each of 2 distorted inputs");
    assert_eq!(recs_f.len(), 8);
    let paths = [s(&d), s(&other)];
    let mut seen = Vec::new();
    let mut empty = Vec::new();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        let input: usize = row[0].parse().unwrap();
        let frame: u64 = row[2].parse().unwrap();
        assert_eq!(row[1], paths[input], "the path of distorted input {input}");
        let rec = recs_f
            .iter()
            .find(|f| f["input"] == input && f["frame"] == frame)
            .unwrap_or_else(|| panic!("no frame record for {row:?}"));
        assert_eq!(row[3].parse::<f64>().unwrap(), num(&rec["pts"]));
        assert_eq!(row[4].parse::<u64>().unwrap(), rec["ref_frame"]);
        assert_eq!(row[5].parse::<u64>().unwrap(), rec["dist_frame"]);
        for (h, cell) in header.iter().zip(row).skip(6) {
            if rec[*h].is_null() {
                assert_eq!(*cell, "", "{h} of input {input} frame {frame}");
                empty.push((input, frame, h.to_string()));
            } else {
                assert_eq!(cell.parse::<f64>().unwrap(), num(&rec[*h]), "{h}");
            }
        }
        seen.push((input, frame));
    }
    seen.sort();
    let all: Vec<(usize, u64)> = (0..2).flat_map(|i| (0..4).map(move |f| (i, f))).collect();
    assert_eq!(seen, all, "one row per pair of every input");
    // the one value that cannot exist: bce_y of input 0, frame 2
    assert_eq!(empty, [(0, 2, "bce_y".to_string())]);
}

// ------------------------------------------------------ 2. libvmaf layout

/// README: `--summary-format vmaf`: "`--summary-json` in libvmaf's layout
/// (`version`, `fps`, `frames[].frameNum/metrics`,
/// `pooled_metrics.KEY.{min,max,mean,harmonic_mean}`), one document: a JSON
/// array of one object per input"; libvmaf's names for PSNR's chroma
/// planes; `harmonic_mean` is `n / Σ 1/(s+1) − 1`.
#[test]
fn vmaf_layout_summary_per_input_pools_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = noisy_pair(&dir, "64x64", 30);
    let log = dir.path().join("log.ndjson");
    let o = vqm(&[
        &r,
        &d,
        &r,
        "-m",
        "psnr,mse",
        "--log",
        s(&log),
        "--summary-json",
        "-",
        "--summary-format",
        "vmaf",
        "-q",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let recs = ndjson(&std::fs::read_to_string(&log).unwrap());
    let keys = keys(&recs);
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    let objs = doc
        .as_array()
        .expect("an array with several inputs")
        .clone();
    assert_eq!(objs.len(), 2, "one object per distorted input");
    // libvmaf's name for a key vqm also computes
    let named = |k: &str| match k {
        "psnr_u" => "psnr_cb".to_string(),
        "psnr_v" => "psnr_cr".to_string(),
        k => k.to_string(),
    };
    assert!(keys.iter().any(|k| k == "psnr_u"));
    // the clips are 25 fps (ffprobe)
    let rate = ffprobe(&[
        "-show_entries",
        "stream=avg_frame_rate",
        "-of",
        "csv=p=0",
        &r,
    ]);
    assert_eq!(rate, ["25/1"]);
    for (input, v) in objs.iter().enumerate() {
        let version = v["version"].as_str().expect("version is a string");
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
        assert_eq!(num(&v["fps"]), 25.0);
        let mine: Vec<&Value> = frames(&recs)
            .into_iter()
            .filter(|f| f["input"] == input)
            .collect();
        assert_eq!(mine.len(), 30);
        let fr = v["frames"].as_array().unwrap();
        assert_eq!(fr.len(), mine.len(), "input {input}");
        for (e, f) in fr.iter().zip(&mine) {
            assert_eq!(e["frameNum"], f["frame"]);
            let m = e["metrics"].as_object().unwrap();
            assert_eq!(m.len(), keys.len());
            for k in &keys {
                assert_eq!(m[&named(k)], f[k], "input {input} frame {} {k}", f["frame"]);
            }
        }
        let pooled = v["pooled_metrics"].as_object().unwrap();
        assert_eq!(pooled.len(), keys.len());
        for k in &keys {
            let vals: Vec<f64> = mine.iter().map(|f| num(&f[k])).collect();
            let n = vals.len() as f64;
            let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = vals.iter().sum::<f64>() / n;
            let hm = n / vals.iter().map(|s| 1.0 / (s + 1.0)).sum::<f64>() - 1.0;
            let p = &pooled[&named(k)];
            assert_eq!(num(&p["min"]), min, "input {input} {k} min");
            assert_eq!(num(&p["max"]), max, "input {input} {k} max");
            assert!(
                rel(num(&p["mean"]), mean) < 1e-12 || (mean == 0.0 && num(&p["mean"]) == 0.0),
                "input {input} {k} mean"
            );
            let got = num(&p["harmonic_mean"]);
            assert!(
                (got - hm).abs() <= 1e-12 * hm.abs().max(1.0),
                "input {input} {k} harmonic_mean {got} vs {hm}"
            );
        }
    }
    // input 1 is the reference itself: PSNR at the cap, MSE 0
    assert_eq!(num(&objs[1]["pooled_metrics"]["psnr_y"]["min"]), 60.0);
    assert_eq!(num(&objs[1]["pooled_metrics"]["mse_y"]["max"]), 0.0);
}

// ------------------------------------------------------------- 3. report

struct Chart {
    key: String,
    /// The plot area: left, top, width, height.
    area: (f64, f64, f64, f64),
    /// Per input line: points (x, y) of the polygon.
    lines: Vec<Vec<(f64, f64)>>,
}

fn attr(tag: &str, name: &str) -> String {
    let at = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("{name} in {tag}"))
        + name.len()
        + 3;
    tag[at..at + tag[at..].find('"').unwrap()].to_string()
}

fn charts(html: &str) -> Vec<Chart> {
    html.split("<svg class=\"chart\"")
        .skip(1)
        .map(|svg| {
            let svg = &svg[..svg.find("</svg>").unwrap()];
            let key = attr(svg, "aria-label");
            let rect = &svg[svg.find("<rect").unwrap()..];
            let rect = &rect[..rect.find('>').unwrap()];
            let f = |n: &str| attr(rect, n).parse::<f64>().unwrap();
            let area = (f("x"), f("y"), f("width"), f("height"));
            let lines = svg
                .split("<polygon class=\"series\"")
                .skip(1)
                .map(|p| {
                    attr(p, "points")
                        .split_whitespace()
                        .map(|xy| {
                            let (x, y) = xy.split_once(',').unwrap();
                            (x.parse().unwrap(), y.parse().unwrap())
                        })
                        .collect()
                })
                .collect();
            Chart { key, area, lines }
        })
        .collect()
}

/// Checks one chart line of `n` frames against the frame values `v`: at
/// most 600 points, each the min/max envelope of a run of consecutive
/// frames (the runs cover every frame once, in order); returns the points.
fn check_envelope(c: &Chart, line: &[(f64, f64)], v: &[f64], lo: f64, hi: f64) -> usize {
    let n = v.len();
    let (left, top, width, height) = c.area;
    assert_eq!(line.len() % 2, 0, "{}", c.key);
    let pts = line.len() / 2;
    assert!(pts <= 600, "{}: {pts} points", c.key);
    let upper = &line[..pts];
    let lower: Vec<(f64, f64)> = line[pts..].iter().rev().copied().collect();
    // where each point's run starts, from its x
    let starts: Vec<usize> = upper
        .iter()
        .zip(&lower)
        .map(|(u, l)| {
            assert_eq!(u.0, l.0, "{}: upper and lower edge at the same x", c.key);
            let f = (u.0 - left) * (n - 1) as f64 / width;
            let r = f.round();
            assert!(
                (f - r).abs() < 0.2,
                "{}: x {} is not at a frame",
                c.key,
                u.0
            );
            r as usize
        })
        .collect();
    assert_eq!(starts[0], 0, "{}: the first run starts at frame 0", c.key);
    let y = |val: f64| top + height - height * (val - lo) / (hi - lo);
    for j in 0..pts {
        let end = if j + 1 < pts { starts[j + 1] } else { n };
        assert!(end > starts[j], "{}: runs in order, none empty", c.key);
        let run = &v[starts[j]..end];
        let mx = run.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mn = run.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            (upper[j].1 - y(mx)).abs() <= 0.0501,
            "{} point {j} (frames {}..{end}): top {} is not the run's max {mx} (y {})",
            c.key,
            starts[j],
            upper[j].1,
            y(mx)
        );
        assert!(
            (lower[j].1 - y(mn)).abs() <= 0.0501,
            "{} point {j} (frames {}..{end}): bottom {} is not the run's min {mn} (y {})",
            c.key,
            starts[j],
            lower[j].1,
            y(mn)
        );
    }
    pts
}

/// README: `--report`: "a chart per metric key over time (one line per
/// input; past 600 frames each point is the min/max envelope of a run of
/// frames)".
#[test]
fn report_charts_keep_at_most_600_points_as_min_max_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = noisy_pair(&dir, "32x32", 1300);
    for (count, envelope) in [(1300usize, true), (600, false)] {
        let html = dir.path().join(format!("r{count}.html"));
        let log = dir.path().join(format!("r{count}.ndjson"));
        let n = count.to_string();
        let o = vqm(&[
            &r,
            &d,
            "-m",
            "psnr",
            "--frames",
            &n,
            "--report",
            s(&html),
            "--log",
            s(&log),
            "-q",
        ]);
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
        let recs = ndjson(&std::fs::read_to_string(&log).unwrap());
        let f = frames(&recs);
        assert_eq!(f.len(), count);
        let charts = charts(&std::fs::read_to_string(&html).unwrap());
        assert_eq!(
            charts.iter().map(|c| c.key.clone()).collect::<Vec<_>>(),
            keys(&recs)
        );
        for c in &charts {
            assert_eq!(c.lines.len(), 1, "one line per input");
            let v: Vec<f64> = f.iter().map(|x| num(&x[c.key.as_str()])).collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!(hi > lo);
            let pts = check_envelope(c, &c.lines[0], &v, lo, hi);
            if envelope {
                assert!(pts < count, "{}: {pts} points for {count} frames", c.key);
            } else {
                assert_eq!(pts, count, "{}: up to 600 frames, a point per frame", c.key);
            }
        }
    }
}

/// README: `--report`: "the `--worst N` (default 10) worst frames by the
/// first metric key with their times. Worse means lower for PSNR, SSIM and
/// MS-SSIM, higher for errors and divergences."
#[test]
fn report_ranks_errors_and_divergences_worst_when_highest() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("ref.mkv");
    let d = dir.path().join("dist.mkv");
    testsrc(&r, "64x64", 40, "", "yuv420p", &["-c:v", "ffv1"]);
    testsrc(
        &d,
        "64x64",
        40,
        "noise=alls=30:allf=t+u",
        "yuv420p",
        &["-c:v", "ffv1"],
    );
    for (metric, higher_is_worse) in [
        ("mse", true),
        ("mae", true),
        ("smooth-l1", true),
        ("bce", true),
        ("kl", true),
        ("xent", true),
        ("psnr", false),
        ("ssim", false),
    ] {
        let html = dir.path().join(format!("{metric}.html"));
        let log = dir.path().join(format!("{metric}.ndjson"));
        let o = vqm(&[
            s(&r),
            s(&d),
            "-m",
            metric,
            "--report",
            s(&html),
            "--log",
            s(&log),
            "--worst-gap",
            "0",
            "-q",
        ]);
        assert_eq!(outcome(&o).0, 0, "{metric}: {}", outcome(&o).2);
        let recs = ndjson(&std::fs::read_to_string(&log).unwrap());
        let key = keys(&recs)[0].clone();
        let f = frames(&recs);
        let text = std::fs::read_to_string(&html).unwrap();
        let title = format!("<h2>Worst frames by {key}</h2>");
        let table = &text[text.find(&title).unwrap_or_else(|| panic!("{title}")) + title.len()..];
        let table = &table[..table.find("</table>").unwrap()];
        let rows: Vec<Vec<String>> = table
            .split("<tr>")
            .skip(2)
            .map(|row| {
                row.split("<td")
                    .skip(1)
                    .map(|c| c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()].to_string())
                    .collect()
            })
            .collect();
        // the 10 worst values, worst first, by the test's own ranking
        let mut vals: Vec<f64> = f.iter().map(|x| num(&x[key.as_str()])).collect();
        vals.sort_by(|a, b| {
            if higher_is_worse {
                b.total_cmp(a)
            } else {
                a.total_cmp(b)
            }
        });
        let want: Vec<String> = vals[..10].iter().map(|v| format!("{v:.6}")).collect();
        let got: Vec<String> = rows.iter().map(|r| r[3].clone()).collect();
        assert_eq!(
            got,
            want,
            "{key}: worst first ({})",
            if higher_is_worse { "highest" } else { "lowest" }
        );
        for row in &rows {
            assert!(
                row[0].starts_with("0: ") && row[0].ends_with("dist.mkv"),
                "{}",
                row[0]
            );
            let frame: u64 = row[1].parse().unwrap();
            let rec = f
                .iter()
                .find(|x| x["frame"] == frame)
                .unwrap_or_else(|| panic!("{key}: no frame {}", row[1]));
            assert_eq!(
                row[3],
                format!("{:.6}", num(&rec[key.as_str()])),
                "{key} frame {}",
                row[1]
            );
            assert_eq!(
                row[2],
                format!("{:.3}", num(&rec["pts"])),
                "{key}: its time"
            );
        }
    }
}

// ----------------------------------------------------- 4. alerts in config

fn events(recs: &[Value]) -> Vec<Value> {
    recs.iter()
        .filter(|r| r["type"] == "event" && (r["kind"] == "alert" || r["kind"] == "recovered"))
        .cloned()
        .collect()
}

/// README: "Rules come from `--alert` (repeatable) and the config key
/// `alerts`"; a rule fires an `alert` event when its condition has held
/// for the duration, a `recovered` when it stops holding; exit 3 if any
/// fired, and the summary lists them.
#[test]
fn alerts_from_the_config_fire_like_alert_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = noisy_pair(&dir, "64x64", 60);
    let base = run_ok(&[&r, &d, "-m", "psnr", "--log", "-", "-q"]);
    let y: Vec<f64> = frames(&base).iter().map(|f| num(&f["psnr_y"])).collect();
    let mut sorted = y.clone();
    sorted.sort_by(f64::total_cmp);
    let t = (sorted[sorted.len() / 2] * 100.0).round() / 100.0;
    let rule = format!("psnr_y<{t:.2} for 2f");
    // the events the rule must give, by the test's own reading of it
    let mut want = Vec::new();
    let (mut held, mut active) = (0, false);
    for (i, v) in y.iter().enumerate() {
        if *v < t {
            held += 1;
            if held == 2 && !active {
                want.push(("alert", i as u64));
                active = true;
            }
        } else {
            held = 0;
            if active {
                want.push(("recovered", i as u64));
                active = false;
            }
        }
    }
    assert!(want.len() >= 2, "the rule fires on the samples: {want:?}");
    let cfg = dir.path().join("alerts.toml");
    std::fs::write(&cfg, format!("alerts = [\"{rule}\", \"psnr_avg>100\"]\n")).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![r.as_str(), d.as_str(), "-m", "psnr", "--log", "-", "-q"];
        args.extend(extra);
        let (code, out, err) = outcome(&vqm(&args));
        assert_eq!(code, 3, "{extra:?}: an alert fired: {err}");
        ndjson(&out)
    };
    let from_cfg = run(&["--config", s(&cfg)]);
    let from_flags = run(&["--alert", &rule, "--alert", "psnr_avg>100"]);
    let cfg_events = events(&from_cfg);
    let got: Vec<(&str, u64)> = cfg_events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["frame"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want);
    for e in &cfg_events {
        assert_eq!(e["rule"], rule.as_str());
    }
    assert_eq!(
        events(&from_cfg),
        events(&from_flags),
        "config rules act as --alert rules"
    );
    let sum = of_type(&from_cfg, "summary")[0];
    assert_eq!(sum["alerts"], serde_json::json!([rule]));
    // both sources at once: the config's rule and the flag's rule both fire
    let both = run(&["--config", s(&cfg), "--alert", "psnr_avg<100"]);
    let fired: Vec<&str> = of_type(&both, "summary")[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        fired.contains(&rule.as_str()) && fired.contains(&"psnr_avg<100"),
        "{fired:?}"
    );
    assert_eq!(fired.len(), 2, "{fired:?}");
}

// --------------------------------------------------- 5. window_every = 0

/// README: `window_every`: "a window record every N pairs per input (0:
/// never)".
#[test]
fn window_every_zero_writes_no_window_record() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = noisy_pair(&dir, "64x64", 40);
    let run = |every: u32| {
        let cfg = dir.path().join(format!("w{every}.toml"));
        std::fs::write(&cfg, format!("window = 5\nwindow_every = {every}\n")).unwrap();
        run_ok(&[
            &r,
            &d,
            &r,
            "-m",
            "psnr",
            "--config",
            s(&cfg),
            "--log",
            "-",
            "-q",
        ])
    };
    let never = run(0);
    assert_eq!(frames(&never).len(), 80, "40 pairs for each input");
    assert!(
        of_type(&never, "window").is_empty(),
        "window_every = 0: no window record"
    );
    // the same run with window_every = 5: one every 5 pairs of each input
    let five = run(5);
    for input in 0..2 {
        let w: Vec<u64> = of_type(&five, "window")
            .iter()
            .filter(|w| w["input"] == input)
            .map(|w| w["end_frame"].as_u64().unwrap())
            .collect();
        assert_eq!(w, (0..8).map(|i| i * 5 + 4).collect::<Vec<u64>>());
    }
    // and nothing else changes
    let strip = |recs: &[Value]| -> Vec<Value> { frames(recs).into_iter().cloned().collect() };
    assert_eq!(strip(&never), strip(&five));
}

// ----------------------------------------------------------- 6. --threads

/// Threads of process `pid` named as metric workers.
fn metric_threads(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("vqm-metric"))
        })
        .count()
}

/// README: `--threads N`: "metric worker threads (default: one per core)".
/// The records do not depend on it.
#[test]
fn threads_set_the_metric_workers_and_leave_the_records_alone() {
    let (r, d) = c420();
    let strip = |recs: &[Value]| -> Vec<Value> {
        recs.iter()
            .filter(|x| x["type"] != "header")
            .map(|x| {
                let mut x = x.clone();
                if let Some(o) = x.as_object_mut() {
                    o.remove("latency_ms");
                }
                x
            })
            .collect()
    };
    let m = "psnr,mse,ssim,ms-ssim,mae,smooth-l1,bce,entropy,kl,xent";
    let run = |n: &str| {
        run_ok(&[
            &r,
            &d,
            "-m",
            m,
            "--frames",
            "2",
            "--threads",
            n,
            "--log",
            "-",
            "-q",
        ])
    };
    let (one, three) = (run("1"), run("3"));
    assert_eq!(frames(&one).len(), 2);
    assert_eq!(
        strip(&one),
        strip(&three),
        "--threads 1 and 3 give the same records"
    );

    // the worker count, seen while vqm waits for more distorted frames on
    // a pipe held open
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("ref.mkv");
    let df = dir.path().join("dist.nut");
    // (150 frames: more than the 5 s FFmpeg's probe reads of a pipe)
    testsrc(&rf, "32x32", 300, "", "yuv420p", &["-c:v", "ffv1"]);
    testsrc(
        &df,
        "32x32",
        150,
        "",
        "yuv420p",
        &["-c:v", "ffv1", "-f", "nut"],
    );
    let bytes = std::fs::read(&df).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    for (flag, want) in [(Some("1"), 1), (Some("3"), 3), (None, cores)] {
        let mut args = vec![s(&rf), "-", "-m", "psnr", "-q"];
        if let Some(n) = flag {
            args.extend(["--threads", n]);
        }
        let err_path = dir.path().join("stderr.txt");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vqm"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // (a failed write means vqm ended early: its exit code says why)
        let _ = stdin.write_all(&bytes).and_then(|()| stdin.flush());
        let deadline = Instant::now() + Duration::from_secs(20);
        while metric_threads(child.id()) < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        let seen = metric_threads(child.id());
        drop(stdin);
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        assert_eq!(seen, want, "--threads {flag:?}: metric worker threads");
    }
}

// ---------------------------------------------------------- 7. --ref-opt

/// README: "`--ref-opt KEY=VALUE` ... pass FFmpeg demuxer options to the
/// reference ... (they win over `--size`/`--pix-fmt`/`--rate`)".
#[test]
fn ref_opt_passes_demuxer_options_to_the_reference_and_wins_over_raw_flags() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("ref.yuv");
    let d = dir.path().join("dist.yuv");
    let rn = dir.path().join("ref.nut");
    let dn = dir.path().join("dist.nut");
    let raw = ["-f", "rawvideo"];
    let nut = ["-c:v", "rawvideo", "-f", "nut"];
    testsrc(&r, "64x48", 6, "", "yuv420p", &raw);
    testsrc(&rn, "64x48", 6, "", "yuv420p", &nut);
    testsrc(&d, "64x48", 6, "scale=32:24", "yuv420p", &raw);
    testsrc(&dn, "64x48", 6, "scale=32:24", "yuv420p", &nut);
    // the same pictures in containers: the values to find
    let want = run_ok(&[s(&rn), s(&dn), "-m", "psnr,mae", "--log", "-", "-q"]);
    // --size is the distorted input's; the reference's own size and rate
    // come from --ref-opt
    let recs = run_ok(&[
        s(&r),
        s(&d),
        "--size",
        "32x24",
        "--pix-fmt",
        "yuv420p",
        "--rate",
        "25",
        "--ref-opt",
        "video_size=64x48",
        "--ref-opt",
        "framerate=10",
        "-m",
        "psnr,mae",
        "--log",
        "-",
        "-q",
    ]);
    let h = &recs[0];
    assert_eq!(
        (
            h["reference"]["width"].clone(),
            h["reference"]["height"].clone()
        ),
        (64.into(), 48.into())
    );
    assert_eq!(num(&h["reference"]["frame_rate"]), 10.0);
    assert_eq!(num(&h["distorted"][0]["frame_rate"]), 25.0);
    assert_eq!(
        (
            h["distorted"][0]["width"].clone(),
            h["distorted"][0]["height"].clone()
        ),
        (32.into(), 24.into())
    );
    let (a, b) = (frames(&want), frames(&recs));
    assert_eq!(b.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(values(x), values(y), "frame {}", x["frame"]);
        // 10 frames per second in the reference
        let t = num(&y["ref_frame"]) / 10.0;
        assert!((num(&y["pts"]) - t).abs() < 1e-12, "{y}");
    }
}

// ------------------------------------------------------ 8. --input-format

/// README: "`--input-format FMT` forces a demuxer for every input": raw
/// pictures in files whose names say MP4 are read as raw video, and give
/// the values of the same pictures in a container.
#[test]
fn input_format_forces_the_demuxer_of_every_input() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("ref.mp4");
    let d = dir.path().join("dist.mp4");
    let rn = dir.path().join("ref.nut");
    let dn = dir.path().join("dist.nut");
    let raw = ["-f", "rawvideo"];
    let nut = ["-c:v", "rawvideo", "-f", "nut"];
    let noise = "noise=alls=20:allf=t";
    testsrc(&r, "64x48", 6, "", "yuv420p", &raw);
    testsrc(&rn, "64x48", 6, "", "yuv420p", &nut);
    testsrc(&d, "64x48", 6, noise, "yuv420p", &raw);
    testsrc(&dn, "64x48", 6, noise, "yuv420p", &nut);
    let m = "psnr,ssim,mae";
    let want = run_ok(&[s(&rn), s(&dn), "-m", m, "--log", "-", "-q"]);
    let got = run_ok(&[
        s(&r),
        s(&d),
        "--input-format",
        "rawvideo",
        "--size",
        "64x48",
        "--pix-fmt",
        "yuv420p",
        "--rate",
        "25",
        "-m",
        m,
        "--log",
        "-",
        "-q",
    ]);
    let (a, b) = (frames(&want), frames(&got));
    assert_eq!(b.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(values(x), values(y), "frame {}", x["frame"]);
        assert_eq!(x["frame"], y["frame"]);
        assert!((num(&x["pts"]) - num(&y["pts"])).abs() < 1e-12);
    }
    // without it the ".mp4" files are not MP4 and cannot be opened
    let (code, _, err) = outcome(&vqm(&[s(&r), s(&d), "-m", m]));
    assert_eq!(code, 1, "{err}");
}

// ---------------------------------------------------------------- 9. yuvj

/// README: "`yuvj420p` and `yuv420p` have the same planes and are compared
/// as they are, without a range conversion"; header and summary say when
/// a conversion happens.
#[test]
fn yuvj_and_yuv_of_the_same_planes_are_compared_without_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.mkv");
    let planes = dir.path().join("planes.yuv");
    let plain = dir.path().join("plain.nut");
    let dist = dir.path().join("dist.nut");
    // MJPEG decodes to yuvj420p; its planes, byte for byte, as yuv420p
    testsrc(
        &full,
        "64x48",
        6,
        "",
        "yuvj420p",
        &["-c:v", "mjpeg", "-q:v", "3"],
    );
    ffmpeg(&["-i", s(&full), "-f", "rawvideo", s(&planes)]);
    let wrap = |vf: &str, out: &Path| {
        let mut a = vec![
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-s",
            "64x48",
            "-r",
            "25",
            "-i",
            s(&planes),
        ];
        if !vf.is_empty() {
            a.extend(["-vf", vf]);
        }
        a.extend(["-c:v", "rawvideo", "-f", "nut", s(out)]);
        ffmpeg(&a);
    };
    wrap("", &plain);
    wrap("noise=alls=20:allf=t", &dist);
    let fmt = |p: &Path| ffprobe(&["-show_entries", "stream=pix_fmt", "-of", "csv=p=0", s(p)]);
    assert_eq!(fmt(&full), ["yuvj420p"]);
    assert_eq!(fmt(&plain), ["yuv420p"]);
    let md5 = |p: &Path| {
        let o = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                s(p),
                "-f",
                "framemd5",
                "-",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(md5(&full), md5(&plain), "the same planes");
    assert_eq!(md5(&full).len(), 6);

    let m = "psnr,mse,ssim";
    let j = run_ok(&[s(&full), s(&dist), "-m", m, "--log", "-", "-q"]);
    let p = run_ok(&[s(&plain), s(&dist), "-m", m, "--log", "-", "-q"]);
    assert_eq!(j[0]["reference"]["pix_fmt"], "yuvj420p");
    for recs in [&j, &p] {
        assert_eq!(recs[0]["distorted"][0]["conversion"], Value::Null);
        assert_eq!(of_type(recs, "summary")[0]["conversion"], Value::Null);
    }
    let (a, b) = (frames(&j), frames(&p));
    assert_eq!(a.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            values(x),
            values(y),
            "frame {}: yuvj420p reference vs yuv420p one",
            x["frame"]
        );
    }
    // the other way round: a yuvj420p distorted input of the reference's
    // very planes differs from it in nothing
    let rev = run_ok(&[s(&plain), s(&full), "-m", m, "--log", "-", "-q"]);
    assert_eq!(rev[0]["distorted"][0]["pix_fmt"], "yuvj420p");
    assert_eq!(rev[0]["distorted"][0]["conversion"], Value::Null);
    assert_eq!(of_type(&rev, "summary")[0]["conversion"], Value::Null);
    for f in frames(&rev) {
        for k in ["mse_y", "mse_u", "mse_v"] {
            assert_eq!(num(&f[k]), 0.0, "{k} of frame {}", f["frame"]);
        }
        assert_eq!(num(&f["ssim_all"]), 1.0);
    }
}

// ------------------------------------------------------- 10. pts fallback

/// README: "`pts` in frame records is the reference frame's presentation
/// time in seconds ... `index / frame rate` when a frame has none".
#[test]
fn pts_is_index_over_rate_for_frames_without_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("ref.h264");
    let d = dir.path().join("dist.h264");
    // raw H.264 elementary streams: no container, no timestamps
    testsrc(
        &r,
        "64x64",
        12,
        "",
        "yuv420p",
        &["-c:v", "libx264", "-qp", "10", "-bf", "0"],
    );
    testsrc(
        &d,
        "64x64",
        12,
        "",
        "yuv420p",
        &["-c:v", "libx264", "-qp", "40", "-bf", "0"],
    );
    let ts = ffprobe(&[
        "-show_entries",
        "frame=best_effort_timestamp",
        "-of",
        "csv=p=0",
        s(&r),
    ]);
    assert_eq!(ts.len(), 12);
    assert!(
        ts.iter().all(|t| t == "N/A"),
        "frames without timestamps: {ts:?}"
    );
    let rate = ffprobe(&[
        "-show_entries",
        "stream=avg_frame_rate",
        "-of",
        "csv=p=0",
        s(&r),
    ]);
    assert_eq!(rate, ["25/1"]);
    let recs = run_ok(&[s(&r), s(&d), "-m", "psnr", "--log", "-", "-q"]);
    assert_eq!(num(&recs[0]["reference"]["frame_rate"]), 25.0);
    let f = frames(&recs);
    assert_eq!(f.len(), 12);
    for x in &f {
        let i = x["ref_frame"].as_u64().unwrap();
        assert_eq!(num(&x["pts"]), i as f64 / 25.0, "{x}");
    }
    // and with an offset: the reference frame's own index
    let recs = run_ok(&[
        s(&r),
        s(&d),
        "-m",
        "psnr",
        "--ref-offset",
        "3",
        "--log",
        "-",
        "-q",
    ]);
    let f = frames(&recs);
    assert_eq!(f.len(), 9);
    for x in &f {
        let i = x["ref_frame"].as_u64().unwrap();
        assert_eq!(i, x["frame"].as_u64().unwrap() + 3);
        assert_eq!(num(&x["pts"]), i as f64 / 25.0, "{x}");
    }
}
