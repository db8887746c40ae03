//! Live monitoring that never cries wolf: two real-time MPEG-TS streams on
//! loopback UDP, disturbed as networks and operators disturb them (a sender
//! restarted, datagrams lost, a second sender on the port, a delayed
//! stream, a long GOP joined between keyframes). In every scenario no alert
//! may fire and every trusted frame record (neither pending nor damaged)
//! must measure the pair of pictures it names: its luma PSNR within 1 dB of
//! the same pair measured from the files by FFmpeg's `psnr` filter.
//!
//! The clips are 40 s of testsrc2 with a large box moving on a path that
//! does not repeat within them, so no two moments look alike. The
//! reference's frame in the file is known from the record's time up to the
//! moment the record's segment began (senders already running when vqm
//! starts, a restart from a later position): each run of records between
//! two sync events is matched to the file with one starting frame, the one
//! that explains the most records, and then every record must agree.

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Frames per second of the clips.
const FPS: f64 = 25.0;

/// The clips, made once for every test of this binary.
struct Clips {
    _dir: tempfile::TempDir,
    reference: PathBuf,
    distorted: PathBuf,
    /// A 10 s GOP pair.
    long_gop: (PathBuf, PathBuf),
    /// Luma PSNR of distorted frame k against reference frame k.
    golden: Vec<f64>,
    golden_long_gop: Vec<f64>,
}

fn clips() -> &'static Clips {
    static CLIPS: OnceLock<Clips> = OnceLock::new();
    CLIPS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let src = "testsrc2=s=320x180:r=25:d=40[a];\
                   color=c=white:s=80x60:r=25:d=40[b];\
                   [a][b]overlay=x='mod(t*53,240)':y='mod(t*31,120)'";
        let make = |stem: &str, gop: &str| {
            let r = dir.path().join(format!("{stem}.ts"));
            let d = dir.path().join(format!("{stem}_dist.ts"));
            let enc = [
                "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-pix_fmt", "yuv420p",
            ];
            let mut a = vec!["-filter_complex", src, "-g", gop, "-keyint_min", gop];
            a.extend(["-sc_threshold", "0", "-crf", "18"]);
            a.extend(enc);
            a.extend(["-f", "mpegts", s(&r)]);
            ffmpeg(&a);
            let mut a = vec![
                "-i",
                s(&r),
                "-g",
                gop,
                "-keyint_min",
                gop,
                "-sc_threshold",
                "0",
            ];
            a.extend(["-crf", "32"]);
            a.extend(enc);
            a.extend(["-f", "mpegts", s(&d)]);
            ffmpeg(&a);
            let g = golden_psnr(&r, &d, dir.path());
            (r, d, g)
        };
        let (reference, distorted, golden) = make("clip", "25");
        let (lr, ld, golden_long_gop) = make("gop10", "250");
        Clips {
            reference,
            distorted,
            long_gop: (lr, ld),
            golden,
            golden_long_gop,
            _dir: dir,
        }
    })
}

/// Per-frame luma PSNR of `d` against `r` by FFmpeg's `psnr` filter.
fn golden_psnr(r: &Path, d: &Path, dir: &Path) -> Vec<f64> {
    let stats = dir.join(format!("{}.psnr", d.file_stem().unwrap().to_string_lossy()));
    let filter = format!("[1][0]psnr=stats_file={}", s(&stats));
    ffmpeg(&["-i", s(r), "-i", s(d), "-lavfi", &filter, "-f", "null", "-"]);
    std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .map(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("psnr_y:"))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// A real-time sender of `clip` to `port`, looping; from `at` seconds
/// into the clip.
fn send(clip: &Path, port: u16, at: Option<f64>) -> Guard {
    send_in(clip, port, at, 1316)
}

/// As [`send`], in datagrams of `size` bytes.
fn send_in(clip: &Path, port: u16, at: Option<f64>, size: usize) -> Guard {
    let mut c = Command::new("ffmpeg");
    c.args([
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-stream_loop",
        "-1",
    ]);
    if let Some(t) = at {
        c.args(["-ss", &format!("{t:.2}")]);
    }
    c.arg("-i")
        .arg(clip)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(format!("udp://127.0.0.1:{port}?pkt_size={size}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    Guard(c.spawn().unwrap())
}

/// A loopback relay from `from` to `to` that drops datagrams: every
/// `every`-th, and each with probability `loss` (a fixed seed).
struct Relay {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Relay {
    fn start(from: u16, to: u16, every: u64, loss: f64) -> Relay {
        let rx = UdpSocket::bind(("127.0.0.1", from)).unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let (mut n, mut dropped, mut seed) = (0u64, 0u64, 0x2545_f491_4f6c_dd1du64);
            while !halt.load(Ordering::Relaxed) {
                let Ok(len) = rx.recv(&mut buf) else {
                    continue;
                };
                n += 1;
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let chance = (seed >> 11) as f64 / (1u64 << 53) as f64;
                if (every > 0 && n % every == 0) || chance < loss {
                    dropped += 1;
                    continue;
                }
                let _ = tx.send_to(&buf[..len], ("127.0.0.1", to));
            }
            dropped
        });
        Relay {
            stop,
            thread: Some(thread),
        }
    }

    fn dropped(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// vqm watching two loopback ports with psnr and an alert rule no right
/// pair of these clips comes near, logging to `log`.
fn watch(rp: u16, dp: u16, log: &Path, extra: &[&str]) -> Guard {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vqm"));
    c.arg(format!("udp://127.0.0.1:{rp}"))
        .arg(format!("udp://127.0.0.1:{dp}"))
        .args(["-m", "psnr", "--alert", "psnr_y<27", "--log"])
        .arg(log)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let g = Guard(c.spawn().unwrap());
    wait_bound(rp);
    wait_bound(dp);
    g
}

/// Waits until vqm's receiver holds UDP port `port`.
fn wait_bound(port: u16) {
    let t0 = Instant::now();
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "port {port} never bound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Ends vqm with SIGINT and returns its whole log.
fn stop(vqm: Guard, log: &Path) -> Vec<Value> {
    stop_with(vqm, log, 1)
}

/// Ends vqm with `signals` SIGINTs sent at once and returns its whole log.
fn stop_with(mut vqm: Guard, log: &Path, signals: usize) -> Vec<Value> {
    let pid = vqm.0.id() as libc::pid_t;
    for _ in 0..signals {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
    let t0 = Instant::now();
    loop {
        if let Some(status) = vqm.0.try_wait().unwrap() {
            assert!(
                matches!(status.code(), Some(0)),
                "vqm ended with {status:?} (exit 3: an alert fired)"
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "vqm did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let recs = records(log);
    assert_eq!(recs.last().unwrap()["type"], "summary");
    recs
}

fn trusted(f: &Value) -> bool {
    f.get("sync").is_none() && f.get("damaged").is_none()
}

/// No alert, and every trusted frame record measures the pair it names:
/// each run of records between sync events is matched to the files with
/// one starting frame, and every trusted record of it must be within 1 dB
/// of the golden PSNR of its reference frame. Returns the trusted count.
fn check_pairs(recs: &[Value], golden: &[f64], what: &str) -> usize {
    let alerts: Vec<_> = recs.iter().filter(|r| r["kind"] == "alert").collect();
    assert!(alerts.is_empty(), "{what}: false alerts {alerts:?}");
    let n = golden.len() as i64;
    let mut segments: Vec<Vec<&Value>> = vec![Vec::new()];
    for r in recs {
        if r["kind"] == "sync" || r["kind"] == "stream_restored" {
            segments.push(Vec::new());
        } else if r["type"] == "frame" && trusted(r) {
            segments.last_mut().unwrap().push(r);
        }
    }
    let mut total = 0;
    for seg in segments.iter().filter(|s| !s.is_empty()) {
        let frame_of = |f: &Value, k0: i64| -> usize {
            let k = (f["pts"].as_f64().unwrap() * FPS).round() as i64;
            (k0 + k).rem_euclid(n) as usize
        };
        let off =
            |f: &Value, k0: i64| (f["psnr_y"].as_f64().unwrap() - golden[frame_of(f, k0)]).abs();
        let best = (0..n)
            .min_by_key(|&k0| seg.iter().filter(|f| off(f, k0) > 1.0).count())
            .unwrap();
        let wrong: Vec<_> = seg.iter().filter(|f| off(f, best) > 1.0).collect();
        assert!(
            wrong.is_empty(),
            "{what}: {} of {} trusted records measure another pair than theirs, e.g. {} (the files give {:.2} dB)",
            wrong.len(),
            seg.len(),
            wrong[0],
            golden[frame_of(wrong[0], best)]
        );
        total += seg.len();
    }
    total
}

fn frames(recs: &[Value]) -> usize {
    recs.iter().filter(|r| r["type"] == "frame").count()
}

/// Polls the log until `pred` holds, for at most `limit`.
fn wait_until(log: &Path, limit: Duration, what: &str, pred: impl Fn(&[Value]) -> bool) -> Instant {
    let t0 = Instant::now();
    loop {
        if pred(&records(log)) {
            return Instant::now();
        }
        assert!(t0.elapsed() < limit, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sleep(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

#[test]
fn aligned_streams_are_trusted_within_two_seconds() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("aligned.ndjson");
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let vqm = watch(rp, dp, &log, &[]);
    let _r = send(&c.reference, rp, None);
    let _d = send(&c.distorted, dp, None);
    let flowing = Instant::now();
    let first = wait_until(&log, Duration::from_secs(20), "a trusted record", |r| {
        r.iter().any(|f| f["type"] == "frame" && trusted(f))
    });
    let took = first.duration_since(flowing);
    sleep(4.0);
    // two SIGINTs at once (as `timeout -s INT` sends to a process and its
    // group) are one request: the summary is written
    let recs = stop_with(vqm, &log, 2);
    assert!(
        took < Duration::from_secs(2),
        "first trusted record after {took:?}"
    );
    let sync = recs.iter().find(|r| r["kind"] == "sync").unwrap();
    assert!(sync["delay_s"].as_f64().unwrap().abs() < 0.5, "{sync}");
    assert!(check_pairs(&recs, &c.golden, "aligned") > 100);
}

#[test]
fn a_distorted_sender_restarted_within_the_stall_timeout_is_never_mispaired() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("restart.ndjson");
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let vqm = watch(rp, dp, &log, &[]);
    let _r = send(&c.reference, rp, None);
    let started = Instant::now();
    let d = send(&c.distorted, dp, None);
    sleep(6.0);
    drop(d);
    // 3 s of silence (under the 5 s stall timeout), then the sender comes
    // back from where the reference is by then: a timeline of its own
    sleep(3.0);
    let _d2 = send(&c.distorted, dp, Some(started.elapsed().as_secs_f64()));
    let back = Instant::now();
    let seen = wait_until(
        &log,
        Duration::from_secs(25),
        "trusted records after the restart",
        |r| {
            let from = r
                .iter()
                .rposition(|x| x["kind"] == "sync")
                .unwrap_or(r.len());
            r.iter().filter(|x| x["kind"] == "sync").count() >= 2
                && r[from..]
                    .iter()
                    .filter(|f| f["type"] == "frame" && trusted(f))
                    .count()
                    >= 25
        },
    );
    let recs = stop(vqm, &log);
    let n = check_pairs(&recs, &c.golden, "restart");
    assert!(n > 100, "{n} trusted records");
    // trusted again soon after the stream came back (its first keyframe
    // follows within the 1 s GOP)
    assert!(
        seen.duration_since(back) < Duration::from_secs(8),
        "{:?}",
        seen.duration_since(back)
    );
    let summary = recs.last().unwrap();
    assert!(
        summary["metrics"]["psnr_y"]["mean"].as_f64().unwrap() > 30.0,
        "{summary}"
    );
}

#[test]
fn a_reference_sender_restarted_after_the_stall_timeout_is_never_mispaired() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ref_restart.ndjson");
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let vqm = watch(rp, dp, &log, &["--stall-timeout", "2"]);
    let started = Instant::now();
    let r = send(&c.reference, rp, None);
    let _d = send(&c.distorted, dp, None);
    sleep(6.0);
    drop(r);
    sleep(4.0);
    let _r2 = send(&c.reference, rp, Some(started.elapsed().as_secs_f64()));
    wait_until(
        &log,
        Duration::from_secs(25),
        "trusted records after the restore",
        |r| match r.iter().position(|x| x["kind"] == "stream_restored") {
            Some(i) => {
                r[i..]
                    .iter()
                    .filter(|f| f["type"] == "frame" && trusted(f))
                    .count()
                    >= 25
            }
            None => false,
        },
    );
    let recs = stop(vqm, &log);
    assert!(check_pairs(&recs, &c.golden, "reference restart") > 100);
}

#[test]
fn lost_datagrams_damage_pictures_but_never_shift_the_pairs() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    for (what, every, loss) in [("every 200th", 200, 0.0), ("0.5% at random", 0, 0.005)] {
        let log = dir.path().join("loss.ndjson");
        let _ = std::fs::remove_file(&log);
        let (rp, dp, relay_port) = (free_udp_port(), free_udp_port(), free_udp_port());
        let vqm = watch(rp, dp, &log, &[]);
        let relay = Relay::start(relay_port, dp, every, loss);
        let _r = send(&c.reference, rp, None);
        // one transport packet a datagram: about 1,000 in the run
        let _d = send_in(&c.distorted, relay_port, None, 188);
        sleep(14.0);
        let recs = stop(vqm, &log);
        assert!(relay.dropped() >= 3, "{what}: the relay dropped nothing");
        let n = check_pairs(&recs, &c.golden, what);
        let summary = recs.last().unwrap();
        // the damage is told, and most pictures are still measured
        assert!(
            summary["damaged_frames"].as_u64().unwrap() > 0,
            "{what}: {summary}"
        );
        assert!(
            n > frames(&recs) / 3,
            "{what}: {n} trusted of {}",
            frames(&recs)
        );
        assert!(
            recs.iter().any(|r| r["kind"] == "decode_error"),
            "{what}: the loss is an event"
        );
    }
}

#[test]
fn a_second_sender_on_the_distorted_port_raises_no_false_alert() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("interfere.ndjson");
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let vqm = watch(rp, dp, &log, &[]);
    let _r = send(&c.reference, rp, None);
    let _d = send(&c.distorted, dp, None);
    sleep(5.0);
    // 2 s of another program's stream mixed into the distorted port
    let intruder = send(&c.reference, dp, Some(20.0));
    sleep(2.0);
    drop(intruder);
    sleep(9.0);
    let recs = stop(vqm, &log);
    check_pairs(&recs, &c.golden, "interference");
    // trusted records again once the intruder is gone
    let last_sync = recs.iter().rposition(|r| r["kind"] == "sync").unwrap();
    let after = recs[last_sync..]
        .iter()
        .filter(|f| f["type"] == "frame" && trusted(f))
        .count();
    assert!(after > 50, "{after} trusted records after the intruder");
}

#[test]
fn delayed_distorted_streams_are_found_and_their_delay_reported() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    // (delay, vqm starts after both senders)
    for (delay, late_start) in [(3.0, false), (12.0, false), (7.0, true)] {
        let what = format!(
            "{delay} s delay{}",
            if late_start { ", vqm started last" } else { "" }
        );
        let log = dir.path().join("delay.ndjson");
        let _ = std::fs::remove_file(&log);
        let (rp, dp) = (free_udp_port(), free_udp_port());
        let early = (!late_start).then(|| watch(rp, dp, &log, &[]));
        let _r = send(&c.reference, rp, None);
        sleep(delay);
        let _d = send(&c.distorted, dp, None);
        let vqm = early.unwrap_or_else(|| watch(rp, dp, &log, &[]));
        wait_until(&log, Duration::from_secs(45), "trusted records", |r| {
            r.iter()
                .filter(|f| f["type"] == "frame" && trusted(f))
                .count()
                >= 50
        });
        let recs = stop(vqm, &log);
        check_pairs(&recs, &c.golden, &what);
        let sync = recs.iter().rev().find(|r| r["kind"] == "sync").unwrap();
        let found = sync["delay_s"].as_f64().unwrap();
        assert!((found - delay).abs() < 0.5, "{what}: {sync}");
        let summary = recs.last().unwrap();
        let median = summary["alignment_delay_ms"]["median"].as_f64().unwrap();
        assert!((median / 1000.0 - delay).abs() < 0.5, "{what}: {summary}");
        // vqm's own lag stays small: the delay is the streams', not its
        let lag = summary["lag_ms"]["median"].as_f64().unwrap();
        assert!(lag < 1000.0, "{what}: {summary}");
    }
}

#[test]
fn a_long_gop_joined_between_keyframes_is_waited_for_without_false_errors() {
    let c = clips();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gop.ndjson");
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let (lr, ld) = &c.long_gop;
    let _r = send(lr, rp, None);
    let _d = send(ld, dp, None);
    // join 3 s into the first 10 s GOP
    sleep(3.0);
    let vqm = watch(rp, dp, &log, &[]);
    let joined = Instant::now();
    let first = wait_until(&log, Duration::from_secs(30), "a trusted record", |r| {
        r.iter().any(|f| f["type"] == "frame" && trusted(f))
    });
    sleep(3.0);
    let recs = stop(vqm, &log);
    // the next keyframe comes 7 s after joining; trusted within 2 s of it
    let took = first.duration_since(joined);
    assert!(
        took < Duration::from_secs(10),
        "first trusted record after {took:?}"
    );
    check_pairs(&recs, &c.golden_long_gop, "10 s GOP");
    let errors: Vec<_> = recs
        .iter()
        .filter(|r| r["kind"] == "decode_error")
        .collect();
    assert!(
        errors.is_empty(),
        "joining between keyframes is no decode error: {errors:?}"
    );
}
