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
    // the frames whose bytes the damage touches, from ffprobe's packet
    // positions in the intact file (a frame's bytes run to the next one's)
    let damaged: Vec<u64> = {
        let o = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v", "-show_entries"])
            .args(["packet=pos", "-of", "json", s(&ts)])
            .output()
            .expect("ffprobe is installed (.ci/deps installs ffmpeg)");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let pos: Vec<usize> = v["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pos"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(pos.len(), 75);
        (0..75)
            .filter(|&i| {
                let end = pos.get(i + 1).copied().unwrap_or(bytes.len());
                pos[i] < mid + 6000 && end > mid
            })
            .map(|i| i as u64)
            .collect()
    };
    assert!(!damaged.is_empty() && damaged.len() < 5, "{damaged:?}");
    let o = vqm(&[&r, s(&bad), "-m", "psnr", "--log", "-"]);
    let err = outcome(&o).2;
    let recs = records_ok(&o);
    let errors = events(&recs, "decode_error");
    assert!(!errors.is_empty(), "the damage is reported");
    assert!(err.contains("warning"), "{err}");
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["decode_errors"].as_u64().unwrap(), errors.len() as u64);
    // every reference frame is measured or counted unpaired, and each
    // dropped one is a damaged frame
    let frames = of_type(&recs, "frame");
    let unpaired = sum["unpaired"]["reference"].as_u64().unwrap();
    assert_eq!(frames.len() as u64 + unpaired, 75, "{sum}");
    assert_eq!(sum["unpaired"]["distorted"], 0, "{sum}");
    let dropped: Vec<u64> = events(&recs, "dropped")
        .iter()
        .map(|e| e["ref_frame"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sum["dropped_frames"].as_u64().unwrap(),
        dropped.len() as u64
    );
    assert_eq!(
        dropped.len() as u64,
        unpaired,
        "the only unpaired frames are dropped ones"
    );
    for d in &dropped {
        assert!(damaged.contains(d), "dropped {d}, damaged {damaged:?}");
    }
    // every pair outside the damage is the same picture (60 dB, the cap):
    // a frame lost to the damage never shifts the pairs after it
    let measured: Vec<u64> = frames
        .iter()
        .map(|f| f["ref_frame"].as_u64().unwrap())
        .collect();
    for i in 0..75u64 {
        assert!(
            measured.contains(&i) || dropped.contains(&i),
            "reference frame {i} lost"
        );
    }
    for f in &frames {
        let i = f["ref_frame"].as_u64().unwrap();
        if !damaged.contains(&i) {
            assert_eq!(
                f["psnr_avg"], 60,
                "an intact frame is paired with its copy: {f}"
            );
        }
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
    // a log that fills a small tmpfs half-way through the run
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let log = mnt.join("log.ndjson");
    let copy = dir.path().join("copy.ndjson");
    let bin = env!("CARGO_BIN_EXE_vqm");
    let run = format!("'{bin}' '{r}' '{d}' -m psnr,ssim --log '{}'", log.display());
    let keep = format!("cp '{}' '{}'", log.display(), copy.display());
    let (code, _, err) = outcome(&in_small_tmpfs(&mnt, 24, &run, &keep));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("No space left") && err.contains("log.ndjson"),
        "{err}"
    );
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(text.ends_with('\n'), "the log ends with a whole line");
    let recs = ndjson(&text);
    // the disk filled half-way: the header and some frames were written,
    // and the file holds as many whole lines as 24 KiB can
    assert_eq!(recs[0]["type"], "header");
    let frames = of_type(&recs, "frame").len();
    assert!(frames > 5 && frames < 75, "{frames} frames written");
    assert!(
        text.len() <= 24 * 1024 && text.len() > 24 * 1024 - 1024,
        "{}",
        text.len()
    );
}

/// Runs shell command `run` with a tmpfs of `kib` KiB mounted at `mnt`
/// (created here), then `after` (while it is still mounted), and returns
/// `run`'s exit code and output. Mounted directly as root, else inside a
/// user and mount namespace (`unshare -rm`); a machine allowing neither
/// fails the test, saying so.
fn in_small_tmpfs(mnt: &std::path::Path, kib: u32, run: &str, after: &str) -> std::process::Output {
    std::fs::create_dir(mnt).unwrap();
    let script = format!(
        "mount -t tmpfs -o size={kib}k tmpfs '{m}' || exit 97; {run}; code=$?; \
         {after}; umount '{m}'; exit $code",
        m = mnt.display(),
    );
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let o = if root {
        Command::new("sh").args(["-c", &script]).output().unwrap()
    } else {
        Command::new("unshare")
            .args(["-rm", "sh", "-c", &script])
            .output()
            .expect("this test needs util-linux's unshare (bash .ci/deps installs it)")
    };
    assert_ne!(
        o.status.code(),
        Some(97),
        "this test needs to mount a small tmpfs: run it as root or where \
         unprivileged user namespaces are allowed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Outputs written whole at the end (the report, the worst frames' PNGs)
/// on a disk too small for them: exit 1 naming the output, and no partial
/// file left where they were to go.
#[test]
fn a_full_disk_leaves_no_partial_report_or_png() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let bin = env!("CARGO_BIN_EXE_vqm");
    for (flag, target) in [("--report", "report.html"), ("--dump-worst", "worst")] {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("small");
        let listing = dir.path().join("listing");
        let out = mnt.join(target);
        let run = format!("'{bin}' '{r}' '{d}' -q {flag} '{}'", out.display());
        let after = format!(
            "find '{}' -type f -printf '%P %s\\n' > '{}'",
            mnt.display(),
            listing.display()
        );
        let o = in_small_tmpfs(&mnt, 8, &run, &after);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 1, "{flag}: {err}");
        assert!(
            err.contains("No space left") && err.contains(target),
            "{flag}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{flag}: {err}");
        let left = std::fs::read_to_string(&listing).unwrap();
        assert_eq!(left, "", "{flag}: files left on the full disk: {left}");
    }
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
