//! YUV4MPEG2 files are read directly (one copy per frame); the frames and
//! figures must be exactly those of reading them through FFmpeg.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

/// vqm with `VQM_Y4M_READER` set to `reader` (`ffmpeg` forces FFmpeg's
/// demuxer), records on stdout.
fn run(reader: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args(args)
        .args(["--log", "-", "-q"])
        .env("VQM_Y4M_READER", reader)
        .stdin(Stdio::null())
        .output()
        .expect("vqm runs")
}

fn frames(o: &Output) -> Vec<Value> {
    let recs = records_ok(o);
    of_type(&recs, "frame").into_iter().cloned().collect()
}

/// `src` (a fixture) as a y4m file in `pix_fmt`.
fn to_y4m(src: &str, pix_fmt: &str, dst: &std::path::Path) {
    // 9-16-bit y4m needs -strict -1 in FFmpeg's muxer
    ffmpeg(&[
        "-i",
        src,
        "-pix_fmt",
        pix_fmt,
        "-strict",
        "-1",
        "-f",
        "yuv4mpegpipe",
        s(dst),
    ]);
}

/// Offsets of the frame markers of a y4m file.
fn markers(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len() - 6)
        .filter(|&i| &bytes[i..i + 6] == b"FRAME\n")
        .collect()
}

#[test]
fn direct_reading_gives_ffmpegs_frames_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("c420", "yuv420p"),
        ("c420", "gray"),
        ("c422p10", "yuv422p10le"),
        ("c444odd", "yuv444p"),
        ("c444p10odd", "yuv444p10le"),
    ];
    for (name, pix) in cases {
        let r = dir.path().join(format!("{name}.{pix}.ref.y4m"));
        let d = dir.path().join(format!("{name}.{pix}.dist.y4m"));
        to_y4m(&fixture(&format!("{name}.ref.mkv")), pix, &r);
        to_y4m(&fixture(&format!("{name}.dist.mkv")), pix, &d);
        let args = [s(&r), s(&d), "-m", "psnr,ssim,mae,entropy,kl"];
        let direct = frames(&run("direct", &args));
        let through = frames(&run("ffmpeg", &args));
        assert!(!direct.is_empty(), "{name} {pix}: no frame measured");
        assert_eq!(direct, through, "{name} {pix}");
        // the luma signatures too: a distorted file whose third picture
        // repeats the second is frozen there, read either way
        let mut bytes = std::fs::read(&d).unwrap();
        let m = markers(&bytes);
        let len = m[1] - m[0];
        let second = bytes[m[1]..m[1] + len].to_vec();
        bytes[m[2]..m[2] + len].copy_from_slice(&second);
        std::fs::write(&d, &bytes).unwrap();
        let a = records_ok(&run("direct", &args));
        let b = records_ok(&run("ffmpeg", &args));
        let frozen = |recs: &[Value]| -> Vec<Value> {
            recs.iter()
                .filter(|r| r["type"] == "event" && r["kind"] == "frozen")
                .cloned()
                .collect()
        };
        assert_eq!(frozen(&a).len(), 1, "{name} {pix}");
        assert_eq!(frozen(&a), frozen(&b), "{name} {pix}");
    }
}

#[test]
fn a_damaged_frame_marker_is_reported_and_the_frames_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let ry = dir.path().join("r.y4m");
    let dy = dir.path().join("d.y4m");
    to_y4m(&r, "yuv420p", &ry);
    to_y4m(&d, "yuv420p", &dy);
    let mut bytes = std::fs::read(&dy).unwrap();
    let markers = markers(&bytes);
    assert!(markers.len() >= 3, "fixture too short");
    // the file keeps its size: the damage is found while reading
    bytes[markers[2] + 4] = b'X';
    std::fs::write(&dy, &bytes).unwrap();
    let o = run("direct", &[s(&ry), s(&dy), "-m", "psnr"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let recs = ndjson(&out);
    assert_eq!(of_type(&recs, "frame").len(), 2);
    let errors: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "event" && r["kind"] == "decode_error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let msg = errors[0].to_string();
    assert!(
        msg.contains("frame 2") && msg.contains("FRAME marker"),
        "{msg}"
    );
    // the frames before the damage are those FFmpeg reads
    let through = frames(&run("ffmpeg", &[s(&ry), s(&dy), "-m", "psnr"]));
    assert_eq!(of_type(&recs, "frame"), through.iter().collect::<Vec<_>>());
}

#[test]
fn the_direct_reader_is_required_when_asked_so_the_comparisons_above_prove_it_ran() {
    // VQM_Y4M_READER=direct refuses what the direct reader cannot take, so
    // a silent fallback to FFmpeg cannot make the equality above trivial.
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let o = run("direct", &[&r, &d, "-m", "psnr"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&r) && err.contains("VQM_Y4M_READER=direct"),
        "{err}"
    );
    // a y4m file with frame parameters on its markers is left to FFmpeg
    // by default, and refused when the direct reader is required
    let ry = dir.path().join("r.y4m");
    to_y4m(&r, "yuv420p", &ry);
    let bytes = std::fs::read(&ry).unwrap();
    let mut with_params = Vec::new();
    let m = markers(&bytes);
    with_params.extend_from_slice(&bytes[..m[0]]);
    for (i, &at) in m.iter().enumerate() {
        let end = m.get(i + 1).copied().unwrap_or(bytes.len());
        with_params.extend_from_slice(b"FRAME Ip\n");
        with_params.extend_from_slice(&bytes[at + 6..end]);
    }
    let py = dir.path().join("params.y4m");
    std::fs::write(&py, &with_params).unwrap();
    let through = frames(&run("ffmpeg", &[s(&ry), s(&py), "-m", "psnr"]));
    assert_eq!(through.len(), 4);
    assert!(through.iter().all(|f| f["psnr_avg"] == 60), "same pictures");
    let (code, _, err) = outcome(&run("direct", &[s(&ry), s(&py), "-m", "psnr"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("params.y4m"), "{err}");
    // and the plain file is read directly
    let direct = frames(&run("direct", &[s(&ry), s(&ry), "-m", "psnr"]));
    assert_eq!(direct.len(), 4);
}
