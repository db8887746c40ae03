//! Bad and damaged inputs, skewed inputs, failing outputs: the exit code
//! SPEC gives, a clear message, and every record kept whole.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn events<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["type"] == "event" && r["kind"] == kind)
        .collect()
}

#[test]
fn damaged_stream_measures_what_decodes_and_never_mispairs() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample("ref.mp4");
    // a lossless, all-intra copy of the reference as MPEG-TS...
    let ts = dir.path().join("copy.ts");
    lossless_intra_ts(&r, s(&ts));
    // ...with random bytes written over its middle
    let mut bytes = std::fs::read(&ts).unwrap();
    let mid = bytes.len() / 2;
    let mut seed = 12345u64;
    for b in &mut bytes[mid..mid + 6000] {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        *b = (seed >> 56) as u8;
    }
    let bad = dir.path().join("damaged.ts");
    std::fs::write(&bad, &bytes).unwrap();
    let o = vqm(&[&r, s(&bad), "-m", "psnr", "--log", "-"]);
    let err = outcome(&o).2;
    let recs = records_ok(&o);
    let errors = events(&recs, "decode_error");
    assert!(!errors.is_empty(), "the damage is reported");
    assert!(err.contains("warning"), "{err}");
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["decode_errors"].as_u64().unwrap(), errors.len() as u64);
    // every pair of intact pictures is the same picture (60 dB, the cap):
    // a frame lost to the damage never shifts the pairs after it
    let frames = of_type(&recs, "frame");
    let last = frames.last().unwrap();
    assert_eq!(
        last["ref_frame"], 74,
        "pairing reaches the end of the reference"
    );
    let exact = frames.iter().filter(|f| f["psnr_avg"] == 60).count();
    assert!(
        exact + 8 >= frames.len(),
        "{exact} of {} pairs exact",
        frames.len()
    );
    for f in frames.iter().rev().take(10) {
        assert_eq!(
            f["psnr_avg"], 60,
            "after the damage pairs are aligned again: {f}"
        );
    }
}

#[test]
fn tiny_pictures_run_the_metrics_that_fit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("8x8.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=8x8:d=0.2",
        "-pix_fmt",
        "yuv444p",
        "-c:v",
        "ffv1",
        s(&p),
    ]);
    let (code, _, err) = outcome(&vqm(&[s(&p), s(&p)]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plane y is 8x8"), "{err}");
    let (code, out, err) = outcome(&vqm(&[s(&p), s(&p), "-m", "psnr", "--log", "-", "-q"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(of_type(&ndjson(&out), "frame").len(), 5);
}

#[test]
fn skewed_inputs_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let r = fixture("c420.ref.mkv");
    // another frame rate: paired by index, with a warning
    let fast = dir.path().join("fast.mkv");
    ffmpeg(&["-i", &r, "-r", "50", "-c:v", "ffv1", s(&fast)]);
    let (code, _, err) = outcome(&vqm(&[&r, s(&fast), "-m", "psnr"]));
    assert_eq!(code, 0);
    assert!(
        err.contains("50.000 fps") && err.contains("--align pts"),
        "{err}"
    );
    // full range against limited range
    let lim = dir.path().join("lim.mkv");
    let full = dir.path().join("full.mkv");
    ffmpeg(&[
        "-i",
        &r,
        "-color_range",
        "tv",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        s(&lim),
    ]);
    ffmpeg(&[
        "-i",
        &r,
        "-vf",
        "scale=out_range=full",
        "-color_range",
        "pc",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        s(&full),
    ]);
    let (code, out, err) = outcome(&vqm(&[s(&lim), s(&full), "-m", "psnr", "--log", "-"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("full range and the reference limited range"),
        "{err}"
    );
    let h = &ndjson(&out)[0];
    assert_eq!(h["reference"]["range"], "limited");
    assert_eq!(h["distorted"][0]["range"], "full");
    // interlaced content
    let inter = dir.path().join("inter.mkv");
    ffmpeg(&[
        "-i",
        &r,
        "-c:v",
        "mpeg2video",
        "-flags",
        "+ilme+ildct",
        "-top",
        "1",
        "-q:v",
        "2",
        s(&inter),
    ]);
    let (code, out, err) = outcome(&vqm(&[&r, s(&inter), "-m", "psnr", "--log", "-"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("interlaced"), "{err}");
    assert_eq!(ndjson(&out)[0]["distorted"][0]["interlaced"], true);
}

#[test]
fn a_full_disk_is_exit_1_and_keeps_whole_lines() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let (code, _, err) = outcome(&vqm(&[&r, &d, "-m", "psnr", "--log", "/dev/full"]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/dev/full") && err.contains("No space left"),
        "{err}"
    );
    // a small tmpfs, where this machine lets us mount one
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: cannot mount a tmpfs here; /dev/full covered the disk-full case");
        return;
    }
    let log = mnt.join("log.ndjson");
    let (code, _, err) = outcome(&vqm(&[&r, &d, "-m", "psnr,ssim", "--log", s(&log)]));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let unmounted = Command::new("umount")
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(unmounted);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert!(!text.is_empty());
    assert!(text.ends_with('\n'), "the log ends with a whole line");
    let recs = ndjson(&text);
    assert!(recs.len() > 5);
}

#[test]
fn unwritable_locations_are_exit_2_before_decoding() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    for flag in ["--log", "--summary-json", "--csv", "--report"] {
        let (code, _, err) = outcome(&vqm(&[&r, &d, flag, "/proc/vqm-cannot-write"]));
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(flag), "{err}");
    }
}
