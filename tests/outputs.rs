//! What encoding engineers use: several encodes in one run, quality gates,
//! raw YUV, input control, CSV, libvmaf JSON, the HTML report, worst-frame
//! pictures, help and completions.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

#[test]
fn several_encodes_against_one_reference() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let sum = dir.path().join("s.json");
    let o = vqm(&[
        &r,
        &d,
        &r,
        "-m",
        "psnr",
        "--log",
        "-",
        "--summary-json",
        s(&sum),
    ]);
    let err = outcome(&o).2;
    let recs = records_ok(&o);
    assert_eq!(recs[0]["distorted"].as_array().unwrap().len(), 2);
    let f = of_type(&recs, "frame");
    assert_eq!(f.iter().filter(|x| x["input"] == 0).count(), 4);
    assert_eq!(f.iter().filter(|x| x["input"] == 1).count(), 4);
    assert!(
        f.iter()
            .filter(|x| x["input"] == 1)
            .all(|x| x["psnr_avg"] == 60)
    );
    // one JSON document: an array of the summaries, in input order
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    let lines = doc.as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["input"].as_u64(), lines[1]["input"].as_u64()),
        (Some(0), Some(1))
    );
    // a summary table block per input
    assert_eq!(err.matches("frame(s) compared").count(), 2, "{err}");
}

#[test]
fn quality_gates_fail_with_exit_3_and_say_which() {
    let (r, d) = c420();
    let o = vqm(&[
        &r,
        &d,
        &r,
        "-m",
        "psnr,ssim",
        "--fail-if",
        "mean(psnr_avg)<38",
        "--fail-if",
        "p5(ssim_y)<0.5",
        "--log",
        "-",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("quality gate failed: mean(psnr_avg)<38"),
        "{err}"
    );
    let sums = of_type(&ndjson(&out), "summary")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    // input 0 (the encode) fails the PSNR gate; input 1 (the reference itself) passes both
    assert_eq!(sums[0]["gates"][0]["failed"], true);
    assert_eq!(sums[0]["gates"][1]["failed"], false);
    assert!(
        sums[1]["gates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["failed"] == false)
    );
    let mean = sums[0]["metrics"]["psnr_avg"]["mean"].as_f64().unwrap();
    assert_eq!(sums[0]["gates"][0]["value"].as_f64().unwrap(), mean);
    // -q silences the warnings and the table, not why the exit code is 3
    let o = vqm(&[&r, &d, "-m", "psnr", "--fail-if", "mean(psnr_avg)<38", "-q"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty(), "{out}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!("vqm: '{d}': quality gate failed: mean(psnr_avg)<38 (value {mean})").as_str(),
            "vqm: a quality gate failed (exit 3)"
        ],
        "{err}"
    );
    // passing gates: exit 0
    let (code, _, _) = outcome(&vqm(&[
        &r,
        &r,
        "-m",
        "psnr",
        "--fail-if",
        "min(psnr_y)<59",
        "-q",
    ]));
    assert_eq!(code, 0);
    for (gate, why) in [
        ("psnr_avg<38", "expected STAT(KEY)"),
        ("avg(psnr_avg)<38", "unknown statistic"),
        ("mean(vmaf)<90", "no record key 'vmaf'"),
    ] {
        let (code, _, err) = outcome(&vqm(&[&r, &d, "-m", "psnr", "--fail-if", gate]));
        assert_eq!(code, 2, "{gate}: {err}");
        assert!(err.contains(gate) && err.contains(why), "{gate}: {err}");
    }
}

#[test]
fn raw_yuv_inputs_with_size_format_and_rate() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let ry = dir.path().join("ref.yuv");
    let dy = dir.path().join("dist.yuv");
    ffmpeg(&["-i", &r, "-f", "rawvideo", "-pix_fmt", "yuv420p", s(&ry)]);
    ffmpeg(&["-i", &d, "-f", "rawvideo", "-pix_fmt", "yuv420p", s(&dy)]);
    let from_mkv = ndjson(&outcome(&vqm(&[&r, &d, "-m", "psnr,ssim", "--log", "-", "-q"])).1);
    let o = vqm(&[
        s(&ry),
        s(&dy),
        "--size",
        "336x324",
        "--pix-fmt",
        "yuv420p",
        "--rate",
        "25",
        "-m",
        "psnr,ssim",
        "--log",
        "-",
        "-q",
    ]);
    let from_raw = records_ok(&o);
    let a: Vec<&Value> = of_type(&from_mkv, "frame");
    let b: Vec<&Value> = of_type(&from_raw, "frame");
    assert_eq!(a, b, "the same pictures give the same values");
    // a raw input without its size is a clear usage error
    let (code, _, err) = outcome(&vqm(&[s(&ry), s(&dy), "-m", "psnr"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ref.yuv") && err.contains("--size"), "{err}");
    // per-input demuxer options: a half-size distorted raw input
    let small = dir.path().join("small.yuv");
    ffmpeg(&[
        "-i",
        &d,
        "-vf",
        "scale=168:162",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        s(&small),
    ]);
    let o = vqm(&[
        s(&ry),
        s(&small),
        "--size",
        "336x324",
        "--pix-fmt",
        "yuv420p",
        "--dist-opt",
        "video_size=168x162",
        "-m",
        "psnr",
        "--log",
        "-",
        "-q",
    ]);
    let recs = records_ok(&o);
    assert!(
        recs[0]["distorted"][0]["conversion"]
            .as_str()
            .unwrap()
            .contains("168x162 -> yuv420p 336x324")
    );
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--dist-opt", "novalue"]));
    assert_eq!(code, 2, "{err}");
    // options for one distorted input: the second raw input is half size
    let o = vqm(&[
        s(&ry),
        s(&dy),
        s(&small),
        "--size",
        "336x324",
        "--pix-fmt",
        "yuv420p",
        "--dist-opt",
        "1:video_size=168x162",
        "-m",
        "psnr",
        "--log",
        "-",
        "-q",
    ]);
    let recs = records_ok(&o);
    assert_eq!(recs[0]["distorted"][0]["conversion"], Value::Null);
    assert!(
        recs[0]["distorted"][1]["conversion"]
            .as_str()
            .unwrap()
            .contains("168x162")
    );
    let (code, _, err) = outcome(&vqm(&[s(&ry), s(&dy), "--dist-opt", "3:video_size=1x1"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no distorted input 3"), "{err}");
}

#[test]
fn frames_start_every_and_stream_select_what_is_measured() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let recs = ndjson(
        &outcome(&vqm(&[
            &r, &d, "-m", "psnr", "--frames", "10", "--log", "-", "-q",
        ]))
        .1,
    );
    assert_eq!(of_type(&recs, "frame").len(), 10);
    assert!(
        of_type(&recs, "event")
            .iter()
            .all(|e| e["kind"] != "mismatch")
    );
    let recs = ndjson(
        &outcome(&vqm(&[
            &r, &d, "-m", "psnr", "--every", "10", "--log", "-", "-q",
        ]))
        .1,
    );
    let frames: Vec<u64> = of_type(&recs, "frame")
        .iter()
        .map(|f| f["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(frames, [0, 10, 20, 30, 40, 50, 60, 70]);
    let recs = ndjson(
        &outcome(&vqm(&[
            &r, &d, "-m", "psnr", "--start", "2", "--log", "-", "-q",
        ]))
        .1,
    );
    let f = of_type(&recs, "frame");
    assert_eq!(f.len(), 25);
    assert_eq!(f[0]["ref_frame"], 50);
    assert!((f[0]["pts"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    // a file with two video streams: --stream 1 measures the second
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.mkv");
    ffmpeg(&[
        "-i",
        &d,
        "-i",
        &r,
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-c",
        "copy",
        s(&two),
    ]);
    let recs = ndjson(
        &outcome(&vqm(&[
            &r,
            s(&two),
            "-m",
            "psnr",
            "--stream",
            "1",
            "--log",
            "-",
            "-q",
        ]))
        .1,
    );
    let f = of_type(&recs, "frame");
    assert_eq!(f.len(), 75);
    assert!(
        f.iter().all(|f| f["psnr_avg"] == 60),
        "stream 1 is the reference itself"
    );
    let recs = ndjson(&outcome(&vqm(&[&r, s(&two), "-m", "psnr", "--log", "-", "-q"])).1);
    assert!(
        of_type(&recs, "frame").iter().all(|f| f["psnr_avg"] != 60),
        "without --stream: stream 0"
    );
    let (code, _, err) = outcome(&vqm(&[&r, s(&two), "-m", "psnr", "--stream", "2"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 video stream(s)"), "{err}");
}

#[test]
fn csv_rows_match_the_frame_records() {
    let (r, d) = c420();
    let o = vqm(&[&r, &d, &r, "-m", "psnr,ssim", "--csv", "-", "-q"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..6],
        ["input", "path", "frame", "pts", "ref_frame", "dist_frame"]
    );
    assert!(header.contains(&"ssim_all"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 8);
    let recs = ndjson(&outcome(&vqm(&[&r, &d, &r, "-m", "psnr,ssim", "--log", "-", "-q"])).1);
    for (row, rec) in rows.iter().zip(of_type(&recs, "frame")) {
        assert_eq!(row.len(), header.len());
        for (h, v) in header.iter().zip(row).skip(6) {
            assert_eq!(v.parse::<f64>().unwrap(), rec[*h].as_f64().unwrap(), "{h}");
        }
    }
}

#[test]
fn summary_in_libvmaf_layout() {
    let (r, d) = c420();
    let o = vqm(&[
        &r,
        &d,
        "-m",
        "psnr,ssim",
        "--summary-json",
        "-",
        "--summary-format",
        "vmaf",
        "-q",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let frames = v["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[2]["frameNum"], 2);
    assert!(frames[0]["metrics"]["psnr_y"].as_f64().is_some());
    for stat in ["min", "max", "mean", "harmonic_mean"] {
        assert!(
            v["pooled_metrics"]["ssim_y"][stat].as_f64().is_some(),
            "{stat}"
        );
    }
    let mean: f64 = frames
        .iter()
        .map(|f| f["metrics"]["ssim_y"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    assert!((v["pooled_metrics"]["ssim_y"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
}

#[test]
fn worst_frames_are_drawn_as_pngs() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/worst");
    let o = vqm(&[
        &r,
        &d,
        "-m",
        "psnr",
        "--worst",
        "2",
        "--worst-gap",
        "0",
        "--dump-worst",
        s(&out),
        "--log",
        "-",
        "-q",
    ]);
    let (code, log, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    // the worst by psnr_y is the frame with the lowest psnr_y
    let recs = ndjson(&log);
    let worst = of_type(&recs, "frame")
        .into_iter()
        .min_by(|a, b| {
            a["psnr_y"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["psnr_y"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(names[0], format!("worst-0-01-frame{}.png", worst["frame"]));
    let bytes = std::fs::read(out.join(&names[0])).unwrap();
    let dec = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    // three 336x324 panels between a title band and a band of scores
    let (w, h) = (dec.info().width, dec.info().height);
    assert_eq!(w, 3 * 336);
    assert!(h > 324 + 30 && h < 324 + 120, "{h}");
    // with the chroma planes: two rows more, of 168x162 panels
    let chroma = dir.path().join("chroma");
    let (code, _, err) = outcome(&vqm(&[
        &r,
        &d,
        "--worst",
        "1",
        "--worst-chroma",
        "--dump-worst",
        s(&chroma),
        "-q",
    ]));
    assert_eq!(code, 0, "{err}");
    let file = std::fs::read_dir(&chroma).unwrap().next().unwrap().unwrap();
    let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(file.path()).unwrap()))
        .read_info()
        .unwrap();
    assert_eq!(dec.info().width, w);
    assert!(
        dec.info().height >= h + 2 * 162,
        "{} vs {h}",
        dec.info().height
    );
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--worst-chroma"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--worst-chroma"), "{err}");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--dump-worst", "/proc/vqm-worst"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn every_output_path_is_checked_before_decoding() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--csv", "--report", "--log", "--summary-json"] {
        let p = dir.path().join("missing/dir/file");
        let (code, _, err) = outcome(&vqm(&[&r, &d, flag, s(&p)]));
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(flag), "{err}");
        let (code, _, _) = outcome(&vqm(&[&r, &d, flag, s(dir.path())]));
        assert_eq!(code, 2, "{flag} on a directory");
    }
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--csv", "/proc/vqm.csv"]));
    assert_eq!(code, 2, "{err}");
}

fn out_of(args: &[&str]) -> String {
    outcome(&vqm(args)).1
}

#[test]
fn help_groups_options_and_completions_are_generated() {
    let (code, out, _) = outcome(&vqm(&["--help"]));
    assert_eq!(code, 0);
    for h in [
        "Inputs:",
        "Metrics:",
        "Outputs:",
        "Alignment:",
        "Live:",
        "Alerts:",
        "Examples:",
    ] {
        assert!(out.contains(h), "{h} missing from --help");
    }
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = outcome(&vqm(&["completions", shell]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("dump-worst"), "{shell}");
    }
    let (code, _, err) = outcome(&vqm(&["completions", "tcsh"]));
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
    // a clap subcommand: listed in the help, with help of its own
    let commands = out_of(&["--help"]);
    let commands = commands.split("Commands:").nth(1).unwrap();
    assert!(
        commands.trim_start().starts_with("completions"),
        "{commands}"
    );
    let (code, out, _) = outcome(&vqm(&["completions", "--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("Usage: vqm completions <SHELL>"), "{out}");
    assert!(out.contains("bash, elvish, fish, powershell, zsh"), "{out}");
    // a subcommand and a run's options do not mix
    let (code, _, err) = outcome(&vqm(&["completions", "bash", "-m", "psnr"]));
    assert_eq!(code, 2, "{err}");
    // the inputs come first under Inputs, the reference before the others
    let (_, help, _) = outcome(&vqm(&["--help"]));
    let inputs = help.split("Inputs:").nth(1).unwrap();
    let (r, d) = (inputs.find("<REFERENCE>"), inputs.find("<DISTORTED>"));
    assert!(r.is_some() && d.is_some() && r < d, "{inputs}");
    assert!(inputs.trim_start().starts_with("<REFERENCE>"), "{inputs}");
    // -m's help names every metric, so they need not be guessed
    let (_, help, _) = outcome(&vqm(&["--help"]));
    let words: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || "\"(),.[]:".contains(c))
        .collect();
    for m in vqm::metrics::REGISTRY {
        assert!(words.contains(&m.name), "-m's help lacks {}", m.name);
    }
}

#[test]
fn progress_is_drawn_only_on_a_terminal() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    // not a terminal: no progress, no control characters
    let (_, _, err) = outcome(&vqm(&[&r, &d, "-m", "psnr"]));
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    // a pseudo-terminal (util-linux `script`, which .ci/deps installs):
    // the bar is drawn
    let bin = env!("CARGO_BIN_EXE_vqm");
    let o = Command::new("script")
        .args(["-qec", &format!("{bin} {r} {d} -m psnr,ssim"), "/dev/null"])
        .output()
        .expect("this test needs util-linux's `script` (bash .ci/deps installs it)");
    assert!(o.status.success(), "script or vqm failed: {o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("75/75 frames"), "{text}");
    assert!(
        text.contains('\r') || text.contains('\u{1b}'),
        "drawn in place: {text:?}"
    );
    // the rate to one decimal, in frames per second ("11.6 fps")
    let rate = text
        .split("frames  ")
        .nth(1)
        .and_then(|t| t.split(" fps").next())
        .unwrap_or_else(|| panic!("no rate: {text:?}"));
    let (whole, tenths) = rate.split_once('.').unwrap_or_else(|| panic!("{rate:?}"));
    assert!(
        whole.parse::<u64>().is_ok() && tenths.len() == 1,
        "{rate:?}"
    );
}

#[test]
fn html_report_is_self_contained_and_chromium_draws_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let o = vqm(&[
        &r,
        &d,
        &r,
        "-m",
        "psnr,ssim",
        "--report",
        s(&html),
        "--worst",
        "5",
        "--worst-gap",
        "0.2",
        "-q",
    ]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "http://", "https://", "<link", "@import"] {
        assert!(
            !text.contains(banned),
            "the report must not load anything: found {banned}"
        );
    }
    // the only sources are the worst moments' pictures, embedded: 5 per
    // input, each a PNG of the three panels with its bands
    let sources: Vec<&str> = text.split("src=\"").skip(1).collect();
    assert_eq!(sources.len(), 10);
    for src in &sources {
        let data = src.split('"').next().unwrap();
        let b64 = data
            .strip_prefix("data:image/png;base64,")
            .expect("an embedded PNG");
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        assert_eq!(dec.info().width, 3 * 640);
        assert!(dec.info().height > 360);
    }
    assert!(
        text.contains("<figcaption>") && text.contains("worst #1 at frame "),
        "each picture has its caption"
    );
    // a chart per key, a line (envelope) per input in each
    assert_eq!(text.matches("<svg class=\"chart\"").count(), 9);
    assert_eq!(text.matches("<polygon class=\"series\"").count(), 18);
    assert!(text.contains("Worst frames by psnr_y"));
    assert_eq!(
        text.matches("<tr><td class=\"l\">0: ").count(),
        5,
        "5 worst frames of input 0"
    );
    // worst moments: 0.2 s (5 frames at 25 fps) apart at least
    let frames: Vec<u64> = text
        .split("<tr><td class=\"l\">0: ")
        .skip(1)
        .map(|t| {
            let cell = t.split("<td>").nth(1).unwrap();
            cell.split('<').next().unwrap().parse().unwrap()
        })
        .collect();
    for (i, a) in frames.iter().enumerate() {
        for b in &frames[i + 1..] {
            assert!(a.abs_diff(*b) >= 5, "{frames:?}");
        }
    }
    // inputs named with their size, codec and bitrate, in the legend and
    // a table of their means
    assert!(text.contains("input 0: ") && text.contains("(640x360, h264, "));
    assert!(text.contains("<h2>Inputs</h2>") && text.contains("<th>mean psnr_y</th>"));
    // every chart has real axes: value ticks with gridlines, frame ticks
    // with their times (25 fps: the tick at frame 10 is 0.40 s), and hover
    // values
    for chart in text.split("<svg class=\"chart\"").skip(1) {
        let chart = chart.split("</svg>").next().unwrap();
        let head: String = chart.chars().take(300).collect();
        assert!(chart.matches("class=\"tick y\"").count() >= 3, "{head}");
        assert!(chart.matches("class=\"tick x\"").count() >= 3, "{head}");
        assert!(chart.matches("class=\"grid\"").count() >= 6, "{head}");
        assert!(chart.contains(">10</text><text class=\"tick t\""), "{head}");
        assert!(chart.contains(">0.40 s</text>"), "{head}");
        assert!(
            chart.matches("<circle class=\"pt\"").count() >= 150,
            "{head}"
        );
        assert!(chart.contains("<title>input 0, frame 3: "), "{head}");
    }
    assert!(
        text.contains("width:100%"),
        "the charts follow the window's width"
    );
    // headless Chromium renders it; the charts' pixels are there
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or("chromium");
    let st = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1000,900",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (Debian package; .ci/deps installs it)");
    let log = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{log}");
    // no console message from the page (errors would show as CONSOLE lines)
    assert!(
        !log.lines()
            .any(|l| l.contains("CONSOLE") || l.contains("Uncaught")),
        "{log}"
    );
    let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&shot).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let near = |p: &[u8], c: [u8; 3]| {
        p.iter()
            .zip(c)
            .all(|(a, b)| (*a as i32 - b as i32).abs() < 40)
    };
    let (mut blue, mut red) = (0, 0);
    for p in buf[..info.buffer_size()].chunks(px) {
        blue += near(p, [31, 119, 180]) as usize;
        red += near(p, [214, 39, 40]) as usize;
    }
    // input 1 is the reference itself: a flat line at the top of each chart
    assert!(
        blue > 500 && red > 50,
        "chart lines not drawn: {blue} blue, {red} red pixels"
    );
}

#[test]
fn the_worst_frames_are_moments_a_second_apart() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("worst");
    let o = vqm(&[
        &r,
        &d,
        "-m",
        "psnr",
        "--worst",
        "3",
        "--dump-worst",
        s(&out),
        "--log",
        "-",
        "-q",
    ]);
    let (code, log, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let recs = ndjson(&log);
    let v: Vec<f64> = of_type(&recs, "frame")
        .iter()
        .map(|f| f["psnr_y"].as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 75);
    // by definition: the worst frame of each second (frames 0-24, 25-49,
    // 50-74 at 25 fps), then greedily the worst at least 25 frames apart
    let mut best: Vec<usize> = (0..3)
        .map(|b| {
            (b * 25..b * 25 + 25)
                .min_by(|x, y| v[*x].total_cmp(&v[*y]).then(x.cmp(y)))
                .unwrap()
        })
        .collect();
    best.sort_by(|x, y| v[*x].total_cmp(&v[*y]).then(x.cmp(y)));
    let mut want: Vec<usize> = Vec::new();
    for f in best {
        if want.iter().all(|p| p.abs_diff(f) >= 25) {
            want.push(f);
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expect: Vec<String> = want
        .iter()
        .enumerate()
        .map(|(i, f)| format!("worst-0-{:02}-frame{f}.png", i + 1))
        .collect();
    assert_eq!(names, expect);
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--worst-gap", "-1"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--worst-gap"), "{err}");
}

/// The figures of the table's speed line: (metrics fps, overall fps).
fn speeds(stderr: &str) -> (f64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("speed:"))
        .unwrap_or_else(|| panic!("no speed line: {stderr}"));
    let fps_after = |word: &str| -> f64 {
        let rest = &line[line.find(word).unwrap_or_else(|| panic!("{line}")) + word.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (fps_after("metrics "), fps_after("overall "))
}

/// The speed line counts every metric's time, a temporal one's (VMAF,
/// computed in pair order off the worker pool) too: its metrics figure
/// cannot be many times the whole run's rate when the metric is most of
/// the run's work.
#[test]
fn the_speed_line_counts_the_time_of_temporal_metrics() {
    let o = vqm(&[&sample("ref.mp4"), &sample("dist.mp4"), "-m", "vmaf"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let (metrics, overall) = speeds(&err);
    assert!(
        metrics < 10.0 * overall,
        "metrics {metrics} fps against {overall} fps overall: {err}"
    );
}
