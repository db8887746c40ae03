//! Timelines that index pairing would get wrong: a stream cut mid-GOP
//! (frames lost at its start), a variable frame rate, and pictures that
//! change size mid-stream. Never a silent shift, never decode errors that
//! did not happen.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn events<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["type"] == "event" && r["kind"] == kind)
        .collect()
}

/// `seconds` of FFmpeg's testsrc2 at `size` and 25 fps, encoded with
/// libx264 and `extra` options into `out`.
fn testsrc(size: &str, seconds: &str, extra: &[&str], out: &Path) {
    let src = format!("testsrc2=size={size}:rate=25");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-t", seconds, "-c:v", "libx264"];
    args.extend(extra);
    args.push(s(out));
    ffmpeg(&args);
}

/// Presentation times of the frames ffprobe decodes from `p`.
fn frame_times(p: &Path) -> Vec<f64> {
    ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "frame=pts_time",
        "-of",
        "csv=p=0",
        s(p),
    ])
    .iter()
    .map(|l| l.parse::<f64>().unwrap())
    .collect()
}

/// A lossless 8 s MPEG-TS with a GOP of 2 s, and the same stream with its
/// first eighth cut off at a TS packet boundary (mid-GOP).
fn cut_stream(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let full = dir.join("full.ts");
    testsrc(
        "160x120",
        "8",
        &["-qp", "0", "-g", "50", "-bf", "2", "-f", "mpegts"],
        &full,
    );
    let bytes = std::fs::read(&full).unwrap();
    let skip = bytes.len() / 188 / 8 * 188;
    let cut = dir.join("cut.ts");
    std::fs::write(&cut, &bytes[skip..]).unwrap();
    (full, cut)
}

#[test]
fn a_stream_cut_mid_gop_is_paired_by_time_with_its_lost_frames_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (full, cut) = cut_stream(dir.path());
    let full_t = frame_times(&full);
    let cut_t = frame_times(&cut);
    let first = cut_t[0];
    // the reference frames before the cut stream's first picture
    let lost = full_t.iter().filter(|t| **t < first - 0.02).count() as u64;
    assert!(lost >= 25, "the cut loses over a second: {lost}");

    let o = vqm(&[s(&full), s(&cut), "-m", "psnr", "--log", "-"]);
    let (_, _, err) = outcome(&o);
    let recs = records_ok(&o);
    let timeline = events(&recs, "timeline");
    assert_eq!(timeline.len(), 1, "{err}");
    assert_eq!(timeline[0]["paired_by"], "pts");
    assert!(timeline[0]["difference"].as_f64().unwrap() > 0.9);
    assert!(err.contains("paired by timestamp"), "{err}");
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["frames"].as_u64().unwrap(), cut_t.len() as u64, "{sum}");
    assert_eq!(sum["dropped_frames"].as_u64().unwrap(), lost, "{sum}");
    assert_eq!(events(&recs, "dropped").len() as u64, lost);
    // the packets the decoder refused before the first keyframe
    assert!(sum["decode_errors"].as_u64().unwrap() >= 1, "{sum}");
    // lossless and paired right: every frame identical
    for f in of_type(&recs, "frame") {
        assert_eq!(f["psnr_y"], 60.0, "{f}");
    }
    let frames = of_type(&recs, "frame");
    assert_eq!(frames[0]["ref_frame"].as_u64().unwrap(), lost);
    assert_eq!(frames[0]["dist_frame"].as_u64().unwrap(), 0);

    // --align index is the user's choice: no check, pairs by order
    let o = vqm(&[
        s(&full),
        s(&cut),
        "-m",
        "psnr",
        "--align",
        "index",
        "--log",
        "-",
    ]);
    let recs = records_ok(&o);
    assert!(events(&recs, "timeline").is_empty());
}

#[test]
fn a_cut_stream_in_another_container_is_warned_about_with_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let (full, cut) = cut_stream(dir.path());
    // the reference remuxed to Matroska: its timeline starts elsewhere,
    // so timestamps cannot pair the two, and vqm says what would
    let mkv = dir.path().join("full.mkv");
    ffmpeg(&["-i", s(&full), "-c", "copy", s(&mkv)]);
    let o = vqm(&[s(&mkv), s(&cut), "-m", "psnr", "--log", "-"]);
    let (_, _, err) = outcome(&o);
    let recs = records_ok(&o);
    let timeline = events(&recs, "timeline");
    assert_eq!(timeline.len(), 1, "{err}");
    assert_eq!(timeline[0]["paired_by"], "index");
    let m = timeline[0]["message"].as_str().unwrap();
    assert!(
        m.contains("--align pts") && m.contains("--sync auto"),
        "{m}"
    );
    assert!(err.contains("--sync auto"), "{err}");
}

#[test]
fn a_variable_frame_rate_is_paired_by_time_without_invented_decode_errors() {
    // Matroska declares 25 fps for the variable-rate stream (paired by
    // time through the timestamp check); MP4 declares its average, 20 fps
    // (index pairing turns to time at the first jump)
    for ext in ["mkv", "mp4"] {
        variable_frame_rate(ext);
    }
}

fn variable_frame_rate(ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join(format!("ref.{ext}"));
    let v = dir.path().join(format!("vfr.{ext}"));
    testsrc("160x120", "4", &["-qp", "0"], &r);
    // every fifth frame left out: steps of one and two frame intervals
    ffmpeg(&[
        "-i",
        s(&r),
        "-vf",
        "select='not(eq(mod(n\\,5)\\,2))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        s(&v),
    ]);
    let kept = frame_times(&v).len() as u64;
    assert_eq!(kept, 80);
    let o = vqm(&[s(&r), s(&v), "-m", "psnr", "--log", "-"]);
    let (_, _, err) = outcome(&o);
    let recs = records_ok(&o);
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["decode_errors"], 0, "{ext}: {err}");
    assert!(events(&recs, "decode_error").is_empty());
    assert_eq!(sum["frames"].as_u64().unwrap(), 80);
    assert_eq!(sum["dropped_frames"].as_u64().unwrap(), 20, "{ext}: {err}");
    let timeline = events(&recs, "timeline");
    assert_eq!(timeline.len(), 1, "said once: {err}");
    assert_eq!(timeline[0]["paired_by"], "pts");
    assert!(timeline[0]["difference"].is_null());
    assert!(err.contains("variable frame rate"), "{err}");
    for f in of_type(&recs, "frame") {
        assert_eq!(f["psnr_y"], 60.0, "{ext}: paired right: {f}");
        // the frame left out of every five is never a distorted one
        assert_ne!(f["ref_frame"].as_u64().unwrap() % 5, 2, "{f}");
    }
}

#[test]
fn a_size_change_mid_stream_is_an_event_and_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ts");
    let b = dir.path().join("b.ts");
    let r = dir.path().join("r.ts");
    testsrc("160x120", "2", &["-g", "25", "-f", "mpegts"], &a);
    testsrc(
        "80x60",
        "2",
        &["-g", "25", "-output_ts_offset", "2", "-f", "mpegts"],
        &b,
    );
    testsrc("160x120", "4", &["-g", "25", "-f", "mpegts"], &r);
    let ab = dir.path().join("ab.ts");
    let mut bytes = std::fs::read(&a).unwrap();
    bytes.extend(std::fs::read(&b).unwrap());
    std::fs::write(&ab, bytes).unwrap();
    let o = vqm(&[s(&r), s(&ab), "-m", "psnr", "--log", "-"]);
    let (_, _, err) = outcome(&o);
    let recs = records_ok(&o);
    let changes = events(&recs, "format_change");
    assert_eq!(changes.len(), 1, "{err}");
    assert_eq!(changes[0]["from"], "yuv420p 160x120");
    assert_eq!(changes[0]["to"], "yuv420p 80x60");
    assert_eq!(changes[0]["after_frames"], 50);
    assert!(err.contains("80x60"), "{err}");
    let sum = of_type(&recs, "summary")[0];
    let conv = sum["conversion"].as_str().unwrap();
    assert!(
        conv.contains("frame 50") && conv.contains("80x60"),
        "{conv}"
    );
}
