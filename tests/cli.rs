//! The `vqm` command end to end: records, summary, stdin, conversions,
//! mismatches, config, and every bad input the core contract names.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[test]
fn log_holds_header_frames_windows_and_summary_in_order() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("frames.ndjson");
    let sum = dir.path().join("summary.json");
    let o = vqm(&[
        &r,
        &d,
        "--log",
        s(&log),
        "--summary-json",
        s(&sum),
        "--window",
        "3",
        "--config",
        &write_cfg(&dir, "window_every = 2\n"),
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "stdout must stay clean: {out}");
    assert!(
        err.contains("frame(s) compared"),
        "summary table on stderr: {err}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(": ") && !text.contains(", "), "compact JSON");
    let recs = ndjson(&text);
    assert_eq!(recs[0]["type"], "header");
    assert_eq!(recs[0]["schema"], 1);
    assert_eq!(recs.last().unwrap()["type"], "summary");
    let keys: Vec<&str> = recs[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "psnr_y",
            "psnr_u",
            "psnr_v",
            "psnr_avg",
            "psnr_yuv611",
            "ssim_y",
            "ssim_u",
            "ssim_v",
            "ssim_all"
        ]
    );
    let frames = of_type(&recs, "frame");
    assert_eq!(frames.len(), 4);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame"], i as u64);
        assert_eq!(f["ref_frame"], i as u64);
        assert_eq!(f["dist_frame"], i as u64);
        // 25 fps clip, pts from the reference's first frame
        assert!(
            (f["pts"].as_f64().unwrap() - i as f64 * 0.04).abs() < 1e-9,
            "{f}"
        );
        for k in &keys {
            assert!(f[*k].as_f64().unwrap().is_finite());
        }
    }
    // window_every = 2, window 3: records after pairs 2 and 4 (frames 1, 3)
    let windows = of_type(&recs, "window");
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0]["frames"], 2);
    assert_eq!(windows[1]["end_frame"], 3);
    assert_eq!(windows[1]["frames"], 3);
    let last3: Vec<f64> = frames[1..]
        .iter()
        .map(|f| f["psnr_y"].as_f64().unwrap())
        .collect();
    let mean = last3.iter().sum::<f64>() / 3.0;
    assert!((windows[1]["psnr_y"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert_eq!(
        windows[1]["psnr_y"]["min"].as_f64().unwrap(),
        last3.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    // the summary file is the summary record, one object
    let sfile = std::fs::read_to_string(&sum).unwrap();
    assert_eq!(sfile.lines().count(), 1);
    let summary: Value = serde_json::from_str(sfile.trim()).unwrap();
    assert_eq!(&summary, recs.last().unwrap());
}

fn write_cfg(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("vqm.toml");
    std::fs::write(&p, text).unwrap();
    s(&p).to_string()
}

/// numpy's default percentile (linear interpolation), written out here as
/// the independent check of the summary's pooling.
fn percentile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

#[test]
fn summary_pools_the_frame_values() {
    let (r, d) = c420();
    let o = vqm(&[&r, &d, "-m", "psnr,mse,ssim", "--log", "-", "-q"]);
    let recs = records_ok(&o);
    let frames = of_type(&recs, "frame");
    let summary = of_type(&recs, "summary")[0];
    assert_eq!(summary["frames"], 4);
    for key in ["psnr_y", "mse_avg", "ssim_all", "ssim_u"] {
        let v: Vec<f64> = frames.iter().map(|f| f[key].as_f64().unwrap()).collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let hm = n / v.iter().map(|x| 1.0 / (x + 1.0)).sum::<f64>() - 1.0;
        let m = &summary["metrics"][key];
        let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(&m["mean"], mean), "{key} mean");
        assert!(close(&m["stddev"], sd), "{key} stddev");
        assert!(close(&m["harmonic_mean"], hm), "{key} harmonic");
        assert!(close(
            &m["min"],
            v.iter().cloned().fold(f64::INFINITY, f64::min)
        ));
        assert!(close(
            &m["max"],
            v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        ));
        assert!(close(&m["median"], percentile(&v, 0.5)), "{key} median");
        assert!(close(&m["p5"], percentile(&v, 0.05)), "{key} p5");
        assert!(close(&m["p95"], percentile(&v, 0.95)), "{key} p95");
    }
    // psnr_global is PSNR of the mean per-frame MSE
    let mse_y: Vec<f64> = frames
        .iter()
        .map(|f| f["mse_y"].as_f64().unwrap())
        .collect();
    let mean_mse = mse_y.iter().sum::<f64>() / mse_y.len() as f64;
    let want = 10.0 * (255.0f64 * 255.0 / mean_mse).log10();
    assert!((summary["psnr_global"]["y"].as_f64().unwrap() - want).abs() < 1e-9);
}

#[test]
fn identical_inputs_give_the_psnr_cap_and_ssim_one() {
    let (r, _) = c420();
    let o = vqm(&[&r, &r, "-m", "psnr,mse,ssim", "--log", "-", "-q"]);
    let (code, out, _) = outcome(&o);
    assert_eq!(code, 0);
    for f in of_type(&ndjson(&out), "frame") {
        assert!(f.as_object().unwrap().values().all(|v| !v.is_null()), "{f}");
        assert_eq!(f["psnr_y"], 60);
        assert_eq!(f["psnr_avg"], 60);
        assert_eq!(f["mse_avg"], 0);
        assert_eq!(f["ssim_all"], 1);
    }
    let o = vqm(&[
        &r,
        &r,
        "-m",
        "psnr",
        "--psnr-max",
        "100",
        "--log",
        "-",
        "-q",
    ]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(of_type(&recs, "frame")[0]["psnr_y"], 100);
    assert_eq!(of_type(&recs, "summary")[0]["psnr_global"]["avg"], 100);
}

#[test]
fn ten_bit_identical_inputs_cap_at_72_db() {
    let r = fixture("c422p10.ref.mkv");
    let o = vqm(&[&r, &r, "-m", "psnr", "--log", "-", "-q"]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(recs[0]["bit_depth"], 10);
    assert_eq!(of_type(&recs, "frame")[0]["psnr_y"], 72);
}

#[test]
fn stdin_input_gives_the_same_values_as_the_file() {
    let (r, d) = c420();
    let from_file = vqm(&[&r, &d, "-m", "psnr,ssim", "--log", "-", "-q"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args([r.as_str(), "-", "-m", "psnr,ssim", "--log", "-", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&d).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let piped = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(
        piped.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let a = of_type(
        &ndjson(&String::from_utf8_lossy(&from_file.stdout)),
        "frame",
    )
    .into_iter()
    .cloned()
    .collect::<Vec<_>>();
    let b = of_type(&ndjson(&String::from_utf8_lossy(&piped.stdout)), "frame")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
}

#[test]
fn distorted_of_another_size_and_format_is_converted_and_said_so() {
    let (r, _) = c420();
    let dir = tempfile::tempdir().unwrap();
    let nv12 = dir.path().join("nv12.nut");
    ffmpeg(&["-i", &r, "-pix_fmt", "nv12", "-c:v", "rawvideo", s(&nv12)]);
    // nv12 is the same pictures in another layout: converted exactly.
    let o = vqm(&[&r, s(&nv12), "-m", "psnr", "--log", "-"]);
    let err = outcome(&o).2;
    let recs = records_ok(&o);
    let conv = recs[0]["distorted"][0]["conversion"].as_str().unwrap();
    assert!(
        conv.starts_with("nv12 336x324 -> yuv420p 336x324"),
        "{conv}"
    );
    assert!(err.contains("converted"), "{err}");
    assert_eq!(
        of_type(&recs, "summary")[0]["conversion"].as_str().unwrap(),
        conv
    );
    for f in of_type(&recs, "frame") {
        assert_eq!(f["psnr_avg"], 60, "lossless layout change must be exact");
    }
    // another size: scaled to the reference's size (bicubic)
    let small = dir.path().join("small.mkv");
    ffmpeg(&["-i", &r, "-vf", "scale=80:48", "-c:v", "ffv1", s(&small)]);
    let o = vqm(&[&r, s(&small), "-m", "psnr,ssim", "--log", "-", "-q"]);
    let recs = records_ok(&o);
    assert!(
        recs[0]["distorted"][0]["conversion"]
            .as_str()
            .unwrap()
            .contains("80x48 -> yuv420p 336x324")
    );
    assert_eq!(of_type(&recs, "frame").len(), 4);
    // a packed RGB reference is measured in planar r, g, b
    let rgb = dir.path().join("rgb.nut");
    ffmpeg(&["-i", &r, "-pix_fmt", "rgb24", "-c:v", "rawvideo", s(&rgb)]);
    let o = vqm(&[s(&rgb), s(&rgb), "-m", "psnr", "--log", "-", "-q"]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(recs[0]["measured_format"], "gbrp");
    assert!(of_type(&recs, "frame")[0].get("psnr_r").is_some());
    // gray keeps one plane, y
    let gray = dir.path().join("gray.mkv");
    ffmpeg(&["-i", &r, "-pix_fmt", "gray", "-c:v", "ffv1", s(&gray)]);
    let o = vqm(&[s(&gray), s(&gray), "-m", "psnr,ssim", "--log", "-", "-q"]);
    let recs = ndjson(&outcome(&o).1);
    let f = of_type(&recs, "frame")[0];
    assert!(f.get("psnr_y").is_some() && f.get("psnr_u").is_none() && f.get("ssim_all").is_some());
}

#[test]
fn shorter_distorted_pairs_up_to_its_end_and_reports_the_rest() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.mkv");
    ffmpeg(&["-i", &d, "-frames:v", "2", "-c:v", "ffv1", s(&short)]);
    let o = vqm(&[&r, s(&short), "-m", "psnr", "--log", "-"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning") && err.contains("2 more frame(s)"),
        "{err}"
    );
    let recs = ndjson(&out);
    assert_eq!(of_type(&recs, "frame").len(), 2);
    let ev = of_type(&recs, "event");
    let mm: Vec<_> = ev.iter().filter(|e| e["kind"] == "mismatch").collect();
    assert_eq!(mm.len(), 1);
    assert_eq!(mm[0]["unpaired_reference"], 2);
    assert_eq!(mm[0]["unpaired_distorted"], 0);
    let sm = of_type(&recs, "summary")[0];
    assert_eq!(sm["unpaired"]["reference"], 2);
    // the other way round: the distorted input is longer
    let o = vqm(&[s(&short), &r, "-m", "psnr", "--log", "-", "-q"]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(of_type(&recs, "frame").len(), 2);
    assert_eq!(of_type(&recs, "summary")[0]["unpaired"]["distorted"], 2);
}

/// ffprobe's figures for `path`'s video stream: the byte position of each
/// packet, and the number of frames FFmpeg decodes.
fn probe_packets(path: &str) -> (Vec<usize>, usize) {
    let o = Command::new("ffprobe")
        .args(["-v", "quiet", "-count_frames", "-select_streams", "v"])
        .args(["-show_entries", "packet=pos:stream=nb_read_frames"])
        .args(["-show_packets", "-of", "json", path])
        .output()
        .expect("ffprobe is installed (.ci/deps installs ffmpeg)");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let pos = v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pos"].as_str().unwrap().parse().unwrap())
        .collect();
    let n = v["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (pos, n)
}

#[test]
fn truncated_mpegts_measures_every_frame_before_the_cut() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("d.ts");
    lossless_intra_ts(&d, s(&ts));
    let bytes = std::fs::read(&ts).unwrap();
    let full = records_ok(&vqm(&[&r, s(&ts), "-m", "psnr", "--log", "-", "-q"]));
    let full = of_type(&full, "frame");
    assert_eq!(full.len(), 4);
    let (pos, _) = probe_packets(s(&ts));
    assert_eq!(pos.len(), 4);
    for tenths in [3, 5, 6, 8] {
        let at = bytes.len() * tenths / 10;
        let cut = dir.path().join(format!("cut{tenths}.ts"));
        std::fs::write(&cut, &bytes[..at]).unwrap();
        // the frames whose bytes all lie before the cut (each runs to the
        // next packet), and what FFmpeg decodes of the cut file: those and,
        // when the cut falls inside a frame, that frame as far as it came
        let whole = (0..4)
            .filter(|&i| pos.get(i + 1).is_some_and(|&e| e <= at))
            .count();
        let (_, decoded) = probe_packets(s(&cut));
        assert!(
            whole >= 1 && decoded >= whole,
            "{tenths}: {whole} {decoded}"
        );
        let o = vqm(&[&r, s(&cut), "-m", "psnr", "--log", "-", "-q"]);
        let recs = records_ok(&o);
        let frames = of_type(&recs, "frame");
        assert_eq!(frames.len(), decoded, "cut at {tenths}/10");
        // every frame wholly before the cut is measured as in the whole file
        for i in 0..whole {
            assert_eq!(frames[i], full[i], "cut at {tenths}/10, frame {i}");
        }
        let sm = of_type(&recs, "summary")[0];
        assert_eq!(
            sm["unpaired"]["reference"].as_u64().unwrap(),
            4 - decoded as u64
        );
        let mismatch = of_type(&recs, "event")
            .iter()
            .filter(|e| e["kind"] == "mismatch")
            .count();
        assert_eq!(mismatch, usize::from(decoded < 4), "cut at {tenths}/10");
    }
}

fn assert_input_error(args: &[&str], name: &str, cause: &str) {
    let t0 = Instant::now();
    let o = vqm(args);
    let took = t0.elapsed();
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 1, "{name}: {err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(name) && err.contains(cause), "{name}: {err}");
    assert!(!err.contains("panicked"));
    // README: "within a second"
    assert!(took < Duration::from_secs(1), "{name} took {took:?}");
}

#[test]
fn bad_inputs_are_one_line_errors_with_exit_1() {
    let (r, _) = c420();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    assert_input_error(&[&r, &p("missing.mp4")], "missing.mp4", "No such file");
    std::fs::create_dir(p("adir")).unwrap();
    assert_input_error(&[&r, &p("adir")], "adir", "is a directory");
    std::fs::write(p("empty.mp4"), b"").unwrap();
    assert_input_error(&[&r, &p("empty.mp4")], "empty.mp4", "empty");
    std::fs::write(p("text.mp4"), b"this is not a video\n").unwrap();
    assert_input_error(&[&r, &p("text.mp4")], "text.mp4", "Invalid data");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=d=0.5",
        "-c:a",
        "aac",
        &p("audio.mp4"),
    ]);
    assert_input_error(&[&r, &p("audio.mp4")], "audio.mp4", "no video stream");
    // an mp4 whose moov atom (written at the end) is cut off
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x48:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        &p("full.mp4"),
    ]);
    let full = std::fs::read(p("full.mp4")).unwrap();
    let moov = full.windows(4).rposition(|w| w == b"moov").unwrap();
    std::fs::write(p("nomoov.mp4"), &full[..moov - 4]).unwrap();
    assert_input_error(&[&r, &p("nomoov.mp4")], "nomoov.mp4", "moov");
    // every coded byte zeroed: the container opens, no frame decodes
    let mut zeroed = full.clone();
    let mdat = zeroed.windows(4).position(|w| w == b"mdat").unwrap();
    for b in &mut zeroed[mdat + 4..moov - 4] {
        *b = 0;
    }
    std::fs::write(p("zeroed.mp4"), &zeroed).unwrap();
    assert_input_error(
        &[&r, &p("zeroed.mp4")],
        "zeroed.mp4",
        "no decodable video frame",
    );
    // the reference is checked the same way
    assert_input_error(
        &[&p("missing-ref.mkv"), &r],
        "missing-ref.mkv",
        "No such file",
    );
}

#[test]
fn unknown_metric_and_bad_flags_are_exit_2() {
    let (r, d) = c420();
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--metrics", "psnr,vmfa"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown metric 'vmfa'") && err.contains("psnr, mse, ssim"),
        "{err}"
    );
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--no-such-flag"]));
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
    let (code, _, _) = outcome(&vqm(&[&r]));
    assert_eq!(code, 2, "a distorted input is required");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--window", "0"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--psnr-max", "-3"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unwritable_outputs_fail_before_decoding_with_exit_2() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/log.ndjson");
    let t0 = Instant::now();
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--log", s(&missing)]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--log") && err.contains("does not exist"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--summary-json", s(dir.path())]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a directory"), "{err}");
    // even with a missing input, the output path is reported first
    let (code, _, _) = outcome(&vqm(&["/nonexistent.mkv", &d, "--log", s(&missing)]));
    assert_eq!(code, 2);
}

#[test]
fn config_file_overrides_and_malformed_config_is_exit_2_with_line() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_cfg(
        &dir,
        "# mine\nmetrics = [\"mse\"]\nwindow = 2\nwindow_every = 1\n",
    );
    let o = vqm(&[&r, &d, "--config", &cfg, "--log", "-", "-q"]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(recs[0]["metrics"][0], "mse");
    let w = of_type(&recs, "window");
    assert_eq!(w.len(), 4);
    assert_eq!(w[3]["frames"], 2);
    // flags beat the file
    let o = vqm(&[
        &r, &d, "--config", &cfg, "-m", "psnr", "--window", "4", "--log", "-", "-q",
    ]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(recs[0]["metrics"][0], "psnr");
    assert_eq!(recs[0]["window"], 4);
    for (text, line, what) in [
        ("window = 2\nwindw = 3\n", 2, "windw"),
        ("\n\nqueue_depth = 0\n", 3, "queue_depth"),
        ("metrics = [\"psnr\",\n  \"bogus\"]\n", 1, "bogus"),
        ("window = \"ten\"\n", 1, "window"),
        ("psnr_max = \"high\"\n", 1, "psnr_max"),
        ("[section\n", 1, ""),
    ] {
        let cfg = write_cfg(&dir, text);
        let (code, _, err) = outcome(&vqm(&[&r, &d, "--config", &cfg]));
        assert_eq!(code, 2, "{text}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("vqm.toml:{line}:")), "{text}: {err}");
        assert!(err.contains(what), "{text}: {err}");
    }
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--config", "/no/such/file.toml"]));
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/file.toml"));
}

#[test]
fn ssim_on_a_picture_under_the_window_is_exit_2_naming_plane_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=16x16:d=0.2",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "ffv1",
        s(&tiny),
    ]);
    let (code, _, err) = outcome(&vqm(&[s(&tiny), s(&tiny)]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ssim") && err.contains("plane u is 8x8") && err.contains("psnr, mse"),
        "{err}"
    );
    let (code, _, err) = outcome(&vqm(&[s(&tiny), s(&tiny), "-m", "psnr", "-q"]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn stdout_closed_early_is_a_quiet_success() {
    // 75 frames of records are far more than a pipe holds: vqm is still
    // writing when the reader goes
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args([r.as_str(), d.as_str(), "-m", "all", "--log", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read the header line, then close the pipe
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.starts_with("{\"type\":\"header\""), "{line}");
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
    // it stopped early: no summary table was printed
    assert!(!err.contains("psnr_y"), "{err}");
}

#[test]
fn bundled_samples_run() {
    let o = vqm(&[&sample("ref.mp4"), &sample("dist.mp4")]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("psnr_avg") && err.contains("ssim_all") && err.contains("fps"),
        "{err}"
    );
}

#[test]
fn metrics_impossible_at_the_size_are_exit_2_with_what_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, size: &str| {
        let p = dir.path().join(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=s={size}:d=0.2"),
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "ffv1",
            s(&p),
        ]);
        s(&p).to_string()
    };
    let tiny = make("tiny.mkv", "16x16");
    // MS-SSIM needs 161 px per side
    let (code, _, err) = outcome(&vqm(&[&tiny, &tiny, "-m", "psnr,ms-ssim"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ms-ssim") && err.contains("plane y is 16x16") && err.contains("161"),
        "{err}"
    );
    let can = err.split("can run at this size:").nth(1).unwrap_or("");
    assert!(can.contains("psnr") && !can.contains("ms-ssim"), "{err}");
    // FFmpeg-mode SSIM needs 8 px: 16x16 luma and 8x8 chroma fit, 7x7 does not
    let (code, _, err) = outcome(&vqm(&[
        &tiny,
        &tiny,
        "-m",
        "ssim",
        "--ssim-mode",
        "ffmpeg",
        "-q",
    ]));
    assert_eq!(code, 0, "{err}");
    let tiny14 = make("tiny14.mkv", "14x14");
    let (code, _, err) = outcome(&vqm(&[
        &tiny14,
        &tiny14,
        "-m",
        "ssim",
        "--ssim-mode",
        "ffmpeg",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("plane u is 7x7") && err.contains("ffmpeg mode"),
        "{err}"
    );
    // zero padding fits any size
    let (code, out, err) = outcome(&vqm(&[
        &tiny14,
        &tiny14,
        "-m",
        "ssim",
        "--ssim-mode",
        "zero-pad",
        "--log",
        "-",
        "-q",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(of_type(&ndjson(&out), "frame")[0]["ssim_all"], 1);
}

#[test]
fn metrics_all_runs_every_metric_with_finite_values() {
    let o = vqm(&[
        &sample("ref.mp4"),
        &sample("dist.mp4"),
        "--metrics",
        "all",
        "--log",
        "-",
        "-q",
    ]);
    let recs = records_ok(&o);
    let names: Vec<&str> = recs[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "psnr",
            "mse",
            "ssim",
            "ms-ssim",
            "mae",
            "smooth-l1",
            "bce",
            "entropy",
            "kl",
            "xent"
        ]
    );
    let frames = of_type(&recs, "frame");
    assert_eq!(frames.len(), 75);
    for k in [
        "psnr_yuv611",
        "ms_ssim_v",
        "mae_u",
        "smooth_l1_y",
        "bce_v",
        "entropy_ref_y",
        "entropy_dist_v",
        "kl_u",
        "xent_y",
    ] {
        assert!(frames[0][k].as_f64().is_some(), "{k}: {}", frames[0]);
    }
    for f in &frames {
        for (k, v) in f.as_object().unwrap() {
            assert!(
                v.is_string() || v.as_f64().is_some_and(f64::is_finite),
                "{k} = {v}"
            );
        }
    }
}

#[test]
fn ssim_mode_and_beta_come_from_config_too() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_cfg(&dir, "ssim_mode = \"zero-pad\"\nsmooth_l1_beta = 0.5\n");
    let o = vqm(&[&r, &d, "--config", &cfg, "-m", "ssim", "--log", "-", "-q"]);
    assert_eq!(ndjson(&outcome(&o).1)[0]["ssim_mode"], "zero-pad");
    let o = vqm(&[
        &r,
        &d,
        "--config",
        &cfg,
        "--ssim-mode",
        "ffmpeg",
        "-m",
        "ssim",
        "--log",
        "-",
        "-q",
    ]);
    assert_eq!(ndjson(&outcome(&o).1)[0]["ssim_mode"], "ffmpeg");
    let cfg = write_cfg(&dir, "ssim_mode = \"fast\"\n");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--config", &cfg]));
    assert_eq!(code, 2);
    assert!(err.contains("vqm.toml:1:") && err.contains("fast"), "{err}");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--smooth-l1-beta", "-1"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn twelve_and_sixteen_bit_inputs_keep_their_planes() {
    let dir = tempfile::tempdir().unwrap();
    let r = fixture("c420.ref.mkv");
    for (fmt, depth, planes, cap) in [("yuv444p12le", 12, 3, 84), ("gray16le", 16, 1, 108)] {
        let p = dir.path().join(format!("{fmt}.mkv"));
        ffmpeg(&["-i", &r, "-pix_fmt", fmt, "-c:v", "ffv1", s(&p)]);
        let o = vqm(&[s(&p), s(&p), "-m", "psnr,ssim", "--log", "-", "-q"]);
        let (code, out, err) = outcome(&o);
        assert_eq!(code, 0, "{fmt}: {err}");
        let recs = ndjson(&out);
        assert_eq!(recs[0]["bit_depth"], depth, "{fmt}");
        assert_eq!(recs[0]["measured_format"], fmt);
        assert_eq!(recs[0]["distorted"][0]["conversion"], Value::Null);
        let f = of_type(&recs, "frame")[0];
        assert_eq!(f["psnr_y"], cap, "{fmt}");
        assert_eq!(f["ssim_all"], 1, "{fmt}");
        assert_eq!(
            f.as_object()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with("psnr_") && *k != "psnr_avg" && *k != "psnr_yuv611")
                .count(),
            planes,
            "{fmt}"
        );
    }
}

#[test]
fn a_prometheus_address_that_cannot_be_used_is_exit_2() {
    let (r, d) = c420();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--prometheus", &addr]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--prometheus") && err.contains("cannot listen"),
        "{err}"
    );
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--prometheus", "not-an-address"]));
    assert_eq!(code, 2, "{err}");
    drop(busy);
}

#[test]
fn conflicting_or_impossible_flags_are_exit_2() {
    let (r, d) = c420();
    for (args, says) in [
        (vec!["--start=-1"], "--start"),
        (vec!["--stall-timeout", "0"], "--stall-timeout"),
        (
            vec!["--log", "-", "--summary-json", "-"],
            "cannot both write to standard output",
        ),
        (vec!["--report", "-"], "--report needs a file path"),
        (
            vec!["--input-format", "nosuchdemuxer"],
            "--input-format 'nosuchdemuxer'",
        ),
        (vec!["--sync", "auto", "--align", "pts"], "--align pts"),
    ] {
        let mut a = vec![r.as_str(), d.as_str()];
        a.extend(&args);
        let (code, _, err) = outcome(&vqm(&a));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let (code, _, err) = outcome(&vqm(&["-", "-"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("only one input can read standard input"),
        "{err}"
    );
}

#[test]
fn bad_live_and_sync_values_are_usage_errors() {
    let (r, d) = c420();
    for (args, says) in [
        (vec!["--max-lag", "0"], "--max-lag: must be above 0"),
        (vec!["--max-lag", "-2"], "--max-lag: must be above 0"),
        (vec!["--max-lag", "nan"], "--max-lag"),
        (vec!["--live-timeout", "-1"], "--live-timeout: must be"),
        (vec!["--sync", "auto:0s"], "N must be above 0"),
        (
            vec!["--sync", "auto:61s"],
            "N must be above 0 and at most 60",
        ),
        (
            vec!["--sync", "auto:3x"],
            "is not auto, auto:K (frames) or auto:Ns",
        ),
        (vec!["--sync", "auto:1001"], "K must be between 1 and 1000"),
        (
            vec!["--sync", "auto", "--align", "pts"],
            "with --align pts it applies to live inputs only",
        ),
    ] {
        let mut all = vec![r.as_str(), d.as_str()];
        all.extend(&args);
        let (code, _, err) = outcome(&vqm(&all));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn bad_sync_confidence_in_a_config_is_named_with_its_line() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (
            "sync_floor_db = -1.0\n",
            "sync_floor_db must be between 0 and 100 dB",
        ),
        (
            "\nsync_margin_db = 500.0\n",
            "sync_margin_db must be between 0 and 100 dB",
        ),
    ] {
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, text).unwrap();
        let (code, _, err) = outcome(&vqm(&[&r, &d, "--config", s(&cfg)]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(says), "{err}");
        let line = if text.starts_with('\n') { ":2:" } else { ":1:" };
        assert!(err.contains(line), "{err}");
    }
}

#[test]
fn a_shifted_distorted_input_gets_the_offset_sync_auto_would_pick() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let cut = |src: &str, first: u32, frames: Option<u32>, name: &str| {
        let out = dir.path().join(name);
        let sel = format!("select=gte(n\\,{first}),setpts=N/25/TB");
        let mut args = vec!["-i", src, "-vf", &sel, "-c:v", "libx264", "-crf", "20"];
        let n = frames.map(|n| n.to_string());
        if let Some(n) = &n {
            args.extend(["-frames:v", n]);
        }
        args.push(s(&out));
        ffmpeg(&args);
        out
    };
    // the distorted input lost its first 5 frames: j+5 pairs with j
    let late = cut(&d, 5, None, "late.mp4");
    let (code, _, err) = outcome(&vqm(&[&r, s(&late), "-m", "psnr"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("--sync auto would pair reference frame j+5 with distorted frame j"),
        "{err}"
    );
    // the reference lost its first 4: j-4 pairs with j
    let ref_late = cut(&r, 4, None, "ref_late.mp4");
    let (_, _, err) = outcome(&vqm(&[s(&ref_late), &d, "-m", "psnr"]));
    assert!(
        err.contains("--sync auto would pair reference frame j-4 with distorted frame j"),
        "{err}"
    );
    // frames cut at the end only: counts differ, no shift, no hint
    let short = cut(&d, 0, Some(60), "short.mp4");
    let (_, _, err) = outcome(&vqm(&[&r, s(&short), "-m", "psnr"]));
    assert!(err.contains("15 more frame(s)"), "{err}");
    assert!(!err.contains("--sync auto would"), "{err}");
    // an offset given by the user: no second guess
    let (_, _, err) = outcome(&vqm(&[&r, s(&late), "-m", "psnr", "--ref-offset", "5"]));
    assert!(!err.contains("--sync auto would"), "{err}");
}
