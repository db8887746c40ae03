//! Alignment, alerts, detectors and rolling windows on files.

mod common;

use common::*;
use serde_json::Value;

fn frames(recs: &[Value]) -> Vec<&Value> {
    of_type(recs, "frame")
}

fn events<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["type"] == "event" && r["kind"] == kind)
        .collect()
}

fn run_ok(args: &[&str]) -> Vec<Value> {
    let (code, out, err) = outcome(&vqm(args));
    assert_eq!(code, 0, "{args:?}: {err}");
    ndjson(&out)
}

#[test]
fn sync_auto_finds_a_cut_in_either_direction() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let cut = |src: &str, n: u32, name: &str| {
        let p = dir.path().join(name);
        ffmpeg(&[
            "-i",
            src,
            "-vf",
            &format!("select=gte(n\\,{n}),setpts=PTS-STARTPTS"),
            "-c:v",
            "ffv1",
            s(&p),
        ]);
        s(&p).to_string()
    };
    // the distorted clip lost its first 7 frames
    let d7 = cut(&d, 7, "d7.mkv");
    let recs = run_ok(&[&r, &d7, "--sync", "auto", "-m", "psnr", "--log", "-", "-q"]);
    assert_eq!(recs[0]["distorted"][0]["sync"]["offset"], 7);
    assert_eq!(recs[0]["distorted"][0]["reference_offset"], 7);
    let f = frames(&recs);
    assert_eq!(f.len(), 68);
    for x in &f {
        assert_eq!(
            x["ref_frame"].as_u64().unwrap(),
            x["dist_frame"].as_u64().unwrap() + 7
        );
    }
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["sync"]["offset"], 7);
    assert_eq!(sum["offset"], 7);
    // aligned pairs score like the uncut clip does
    assert!(
        sum["metrics"]["psnr_y"]["min"].as_f64().unwrap() > 33.0,
        "{sum}"
    );
    // the reference lost its first 5 frames
    let r5 = cut(&r, 5, "r5.mkv");
    let recs = run_ok(&[
        &r5, &d, "--sync", "auto:20", "-m", "psnr", "--log", "-", "-q",
    ]);
    assert_eq!(recs[0]["sync_range"], 20);
    assert_eq!(recs[0]["distorted"][0]["sync"]["offset"], -5);
    for x in frames(&recs) {
        assert_eq!(
            x["dist_frame"].as_u64().unwrap(),
            x["ref_frame"].as_u64().unwrap() + 5
        );
    }
    assert_eq!(of_type(&recs, "summary")[0]["offset"], -5);
    // bad spellings are usage errors
    for bad in ["manual", "auto:0", "auto:x"] {
        let (code, _, err) = outcome(&vqm(&[&r, &d, "--sync", bad]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--sync"), "{err}");
    }
}

#[test]
fn offsets_skip_frames_at_the_start() {
    let (r, d) = (fixture("c420.ref.mkv"), fixture("c420.dist.mkv"));
    let recs = run_ok(&[
        &r,
        &d,
        "--ref-offset",
        "1",
        "-m",
        "psnr",
        "--log",
        "-",
        "-q",
    ]);
    let f = frames(&recs);
    assert_eq!(f.len(), 3);
    assert_eq!(
        (
            f[0]["frame"].as_u64(),
            f[0]["ref_frame"].as_u64(),
            f[0]["dist_frame"].as_u64()
        ),
        (Some(0), Some(1), Some(0))
    );
    let recs = run_ok(&[
        &r,
        &d,
        "--dist-offset",
        "2",
        "-m",
        "psnr",
        "--log",
        "-",
        "-q",
    ]);
    let f = frames(&recs);
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0]["ref_frame"].as_u64(), f[0]["dist_frame"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(recs[0]["distorted"][0]["offset"], 2);
}

#[test]
fn align_pts_never_pairs_a_dropped_frame_with_the_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample("ref.mp4");
    let drop = dir.path().join("drop.mkv");
    // a lossless copy of the reference missing frames 10, 11 and 30, with
    // the timestamps of the frames that remain
    ffmpeg(&[
        "-i",
        &r,
        "-vf",
        "select='not(eq(n\\,10)+eq(n\\,11)+eq(n\\,30))'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "ffv1",
        s(&drop),
    ]);
    let recs = run_ok(&[
        &r,
        s(&drop),
        "--align",
        "pts",
        "-m",
        "psnr",
        "--log",
        "-",
        "-q",
    ]);
    assert_eq!(recs[0]["align"], "pts");
    let dropped = events(&recs, "dropped");
    let which: Vec<u64> = dropped
        .iter()
        .map(|e| e["ref_frame"].as_u64().unwrap())
        .collect();
    assert_eq!(which, [10, 11, 30]);
    let f = frames(&recs);
    assert_eq!(f.len(), 72);
    // every pair is the same picture: lossless copy, correctly paired
    assert!(
        f.iter().all(|x| x["psnr_avg"] == 60),
        "a frame was paired with the wrong one"
    );
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["dropped_frames"], 3);
    assert_eq!(sum["unpaired"]["reference"], 3);
    // paired by index, the timestamps (same frame rate on both sides) still
    // catch the gaps: no pair is shifted
    let recs = run_ok(&[&r, s(&drop), "-m", "psnr", "--log", "-", "-q"]);
    assert!(frames(&recs).iter().all(|x| x["psnr_avg"] == 60));
    assert_eq!(events(&recs, "dropped").len(), 3);
    let (code, _, err) = outcome(&vqm(&[&r, s(&drop), "--align", "pts", "--sync", "auto"]));
    assert_eq!(code, 2, "{err}");
}

/// FFmpeg's MD5 of each frame's luma plane, in order.
fn luma_md5s(path: &str) -> Vec<String> {
    let o = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-i",
            path,
            "-vf",
            "extractplanes=y",
        ])
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg CLI is installed (.ci/deps installs it)");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

fn freeze_black_fixture(dir: &tempfile::TempDir) -> String {
    // frames 20-29 are cut and the gap filled by FFmpeg's frame-rate
    // filter (with repeats); frames 40-44 are black
    let p = dir.path().join("fz.mkv");
    ffmpeg(&[
        "-i",
        &sample("ref.mp4"),
        "-vf",
        "select='not(between(n,20,29))',drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,1.6,1.76)'",
        "-fps_mode",
        "cfr",
        "-r",
        "25",
        "-c:v",
        "ffv1",
        s(&p),
    ]);
    s(&p).to_string()
}

#[test]
fn alerts_fire_recover_and_set_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let fz = freeze_black_fixture(&dir);
    let r = sample("ref.mp4");
    let o = vqm(&[
        &r,
        &fz,
        "-m",
        "psnr",
        "--alert",
        "psnr_y<30 for 3f",
        "--alert",
        "psnr_avg>100",
        "--log",
        "-",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 3, "{err}");
    let recs = ndjson(&out);
    let fired = events(&recs, "alert");
    let recovered = events(&recs, "recovered");
    assert_eq!(fired.len(), 2, "the frozen run and the black run");
    assert_eq!(recovered.len(), 2);
    assert!(fired.iter().all(|e| e["rule"] == "psnr_y<30 for 3f"));
    // 3 frames: the alert comes on the third consecutive low frame
    let f = frames(&recs);
    let first_low = f
        .iter()
        .position(|x| x["psnr_y"].as_f64().unwrap() < 30.0)
        .unwrap() as u64;
    assert_eq!(fired[0]["frame"].as_u64().unwrap(), first_low + 2);
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["alerts"][0], "psnr_y<30 for 3f");
    // seconds: 0.2 s at 25 fps is 5 frames
    let o = vqm(&[
        &r,
        &fz,
        "-m",
        "psnr",
        "--alert",
        "psnr_y<30 for 0.2s",
        "--log",
        "-",
        "-q",
    ]);
    let recs = ndjson(&outcome(&o).1);
    assert_eq!(
        events(&recs, "alert")[0]["frame"].as_u64().unwrap(),
        first_low + 4
    );
    // no alert fired: exit 0
    let (code, _, _) = outcome(&vqm(&[&r, &r, "-m", "psnr", "--alert", "psnr_y<30", "-q"]));
    assert_eq!(code, 0);
    // malformed rules and unknown keys are usage errors naming the rule
    for (rule, why) in [
        ("psnr_y 30", "expected"),
        ("psnr_y<thirty", "not a number"),
        ("psnr_y<30 for 2x", "not a duration"),
        ("vmaf<90", "no frame-record key 'vmaf'"),
    ] {
        let (code, _, err) = outcome(&vqm(&[&r, &fz, "-m", "psnr", "--alert", rule]));
        assert_eq!(code, 2, "{rule}: {err}");
        assert!(err.contains(rule) && err.contains(why), "{rule}: {err}");
    }
}

#[test]
fn frozen_and_black_pictures_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let fz = freeze_black_fixture(&dir);
    let recs = run_ok(&[&sample("ref.mp4"), &fz, "-m", "psnr", "--log", "-", "-q"]);
    let frozen = events(&recs, "frozen");
    let black = events(&recs, "black");
    assert_eq!(black.len(), 1);
    assert_eq!(black[0]["frame"], 40);
    let sum = of_type(&recs, "summary")[0];
    assert_eq!(sum["black_frames"], 5);
    // the frozen frames, from FFmpeg's per-frame MD5 of each luma plane:
    // the distorted picture repeats its previous one while the reference's
    // changed, outside the black run (frames 40-44, reported as black)
    let (rl, dl) = (luma_md5s(&sample("ref.mp4")), luma_md5s(&fz));
    assert_eq!(rl.len(), dl.len());
    let frozen_at: Vec<usize> = (1..dl.len())
        .filter(|&i| dl[i] == dl[i - 1] && rl[i] != rl[i - 1] && !(40..45).contains(&i))
        .collect();
    // (FFmpeg's frame-rate filter fills the 10-frame gap with copies of
    // frame 19 and one of frame 30: two runs of 9 and 1)
    assert_eq!(frozen_at.len(), 10, "{frozen_at:?}");
    assert_eq!(
        sum["frozen_frames"].as_u64().unwrap(),
        frozen_at.len() as u64,
        "{sum}"
    );
    // one event at the start of each run of frozen frames
    let run_starts: Vec<u64> = frozen_at
        .iter()
        .enumerate()
        .filter(|&(k, &i)| k == 0 || frozen_at[k - 1] + 1 != i)
        .map(|(_, &i)| i as u64)
        .collect();
    let starts: Vec<u64> = frozen
        .iter()
        .map(|e| e["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, run_starts, "{frozen:?}");
    for e in &frozen {
        assert_eq!(e["ref_frame"], e["frame"], "{e}");
    }
    // the reference against itself: nothing to report
    let recs = run_ok(&[
        &sample("ref.mp4"),
        &sample("ref.mp4"),
        "-m",
        "psnr",
        "--log",
        "-",
        "-q",
    ]);
    assert!(events(&recs, "frozen").is_empty() && events(&recs, "black").is_empty());
}

#[test]
fn window_in_seconds_covers_that_much_time() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "window_every = 10\n").unwrap();
    let recs = run_ok(&[
        &r,
        &d,
        "-m",
        "psnr",
        "--window",
        "1s",
        "--config",
        s(&cfg),
        "--log",
        "-",
        "-q",
    ]);
    assert_eq!(recs[0]["window_seconds"], 1.0);
    let w = of_type(&recs, "window");
    assert_eq!(w.len(), 7);
    assert_eq!(w[0]["frames"], 10);
    // 25 fps: one second is 25 frames
    assert_eq!(w[6]["frames"], 25);
    let f = frames(&recs);
    let last: Vec<f64> = f[45..70]
        .iter()
        .map(|x| x["psnr_y"].as_f64().unwrap())
        .collect();
    let mean = last.iter().sum::<f64>() / 25.0;
    assert!((w[6]["psnr_y"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--window", "1x"]));
    assert_eq!(code, 2, "{err}");
}

/// A flapping rule: every change is an event in the log, but stderr shows
/// the first five of each rule (with frame and time) and then a count.
#[test]
fn flapping_alerts_are_limited_on_stderr_not_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample("ref.mp4");
    // noise on two frames of every four: the quality goes up and down
    let fz = dir.path().join("flap.mkv");
    ffmpeg(&[
        "-i",
        &r,
        "-vf",
        "noise=alls=40:allf=t:enable='lt(mod(n,4),2)'",
        "-c:v",
        "ffv1",
        s(&fz),
    ]);
    let fz = s(&fz).to_string();
    let recs = records_ok(&vqm(&[&r, &fz, "-m", "psnr", "--log", "-", "-q"]));
    let values: Vec<f64> = frames(&recs)
        .iter()
        .map(|f| f["psnr_y"].as_f64().unwrap())
        .collect();
    // the threshold among the values that makes the rule change most
    let changes = |t: f64| {
        let mut low = false;
        let mut n = 0;
        for v in &values {
            if (*v < t) != low {
                low = !low;
                n += 1;
            }
        }
        n
    };
    let t = values.iter().copied().max_by_key(|t| changes(*t)).unwrap();
    let n = changes(t);
    assert!(n > 7, "the clip must flap: {n} changes");
    let rule = format!("psnr_y<{t}");
    let (code, out, err) = outcome(&vqm(&[
        &r, &fz, "-m", "psnr", "--alert", &rule, "--log", "-",
    ]));
    assert_eq!(code, 3, "{err}");
    let recs = ndjson(&out);
    let logged = events(&recs, "alert").len() + events(&recs, "recovered").len();
    assert_eq!(logged, n);
    let shown: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains(&rule)
                && (l.contains(" holds at frame ") || l.contains(" no longer holds at frame "))
        })
        .collect();
    assert_eq!(shown.len(), 5, "{err}");
    assert!(shown.iter().all(|l| l.contains(" s; psnr_y = ")), "{err}");
    assert!(
        err.contains(&format!(
            "{rule} changed {} more time(s), not shown here",
            n - 5
        )),
        "{err}"
    );
}
