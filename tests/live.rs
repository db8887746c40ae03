//! Live monitoring with real streams on loopback: the ffmpeg CLI sends two
//! MPEG-TS streams over UDP in real time; vqm watches them, survives the
//! distorted sender being killed and restarted, serves Prometheus metrics,
//! and on SIGINT writes its summary. Ports are picked at run time. The
//! tests in this binary run one at a time.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

/// Kills its child when dropped, so a failing test leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _reaped = self.0.wait();
        }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sender(clip: &Path, port: u16) -> Guard {
    Guard(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(clip)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg CLI"),
    )
}

fn log_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // only whole lines: the last one may still be being written
    text.lines()
        .filter(|l| l.ends_with('}'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls the log until `pred` holds, for at most `limit`.
fn wait_for(
    path: &Path,
    limit: Duration,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let recs = log_records(path);
        if pred(&recs) {
            return recs;
        }
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(recs: &[Value], t: &str, kind: Option<&str>) -> usize {
    recs.iter()
        .filter(|r| r["type"] == t && kind.is_none_or(|k| r["kind"] == k))
        .count()
}

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

fn interrupt(child: &mut Child) -> i32 {
    signal(child, "-INT")
}

fn signal(child: &mut Child, sig: &str) -> i32 {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "vqm did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn make_clips(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    // 2 s loops with a key frame every 10 frames, so a restarted stream
    // decodes again quickly
    let r = dir.join("ref.ts");
    let d = dir.join("dist.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=2",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-bf",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "mpegts",
        s(&r),
    ]);
    ffmpeg(&[
        "-i",
        s(&r),
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-bf",
        "0",
        "-crf",
        "35",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "mpegts",
        s(&d),
    ]);
    (r, d)
}

#[test]
fn udp_streams_survive_a_sender_restart_and_stop_cleanly_on_sigint() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, dist_clip) = make_clips(dir.path());
    let (rp, dp, pp) = (free_udp_port(), free_udp_port(), free_tcp_port());
    let _ref_sender = sender(&ref_clip, rp);
    let mut dist_sender = sender(&dist_clip, dp);
    let log = dir.path().join("live.ndjson");
    let mut vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args([
                "-m",
                "psnr",
                "--stall-timeout",
                "2",
                "--alert",
                "psnr_y<10 for 5f",
            ])
            .args(["--prometheus", &format!("127.0.0.1:{pp}"), "--log"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // frames flow, after the live sync
    let recs = wait_for(&log, Duration::from_secs(40), "first frames", |r| {
        count(r, "frame", None) >= 10
    });
    assert_eq!(recs[0]["type"], "header");
    assert_eq!(recs[0]["live"], true);
    assert_eq!(count(&recs, "event", Some("sync")), 1);
    // Prometheus: a scrape that promtool accepts
    let body = scrape(pp);
    assert!(body.contains("vqm_frames_total{input=\"0\""), "{body}");
    assert!(
        body.contains("vqm_metric{input=\"0\",stream=\"udp://127.0.0.1:"),
        "{body}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/deps installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // every series the Grafana dashboard plots is served
    let dash = std::fs::read_to_string(root().join("config/grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&dash).unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let name: String = expr[expr.find("vqm_").unwrap()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let served = body
                .lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} ")));
            assert!(
                served,
                "dashboard plots {name}, which /metrics does not serve"
            );
        }
    }
    // kill the distorted sender: stream_lost
    dist_sender.0.kill().unwrap();
    dist_sender.0.wait().unwrap();
    wait_for(&log, Duration::from_secs(30), "stream_lost", |r| {
        count(r, "event", Some("stream_lost")) >= 1
    });
    let lost = log_records(&log);
    let lost_ev = lost.iter().find(|r| r["kind"] == "stream_lost").unwrap();
    assert_eq!(lost_ev["role"], "distorted");
    assert_eq!(lost_ev["input"], 0);
    // restart it: stream_restored, re-sync, and frame records go on
    let _dist_sender2 = sender(&dist_clip, dp);
    let recs = wait_for(
        &log,
        Duration::from_secs(60),
        "frames after the restore",
        |r| match r.iter().position(|x| x["kind"] == "stream_restored") {
            Some(i) => r[i..].iter().filter(|x| x["type"] == "frame").count() >= 10,
            None => false,
        },
    );
    let restored = recs
        .iter()
        .position(|x| x["kind"] == "stream_restored")
        .unwrap();
    assert!(
        recs[restored..].iter().any(|x| x["kind"] == "sync"),
        "re-synchronised after the restore"
    );
    // re-synchronised pairs are the right pictures: the encode scores well
    let after: Vec<f64> = recs[restored..]
        .iter()
        .filter(|x| x["type"] == "frame")
        .map(|x| x["psnr_y"].as_f64().unwrap())
        .collect();
    assert!(after.iter().all(|p| *p > 25.0), "{after:?}");
    let prom = scrape(pp);
    assert!(
        prom.contains("vqm_reconnects_total{role=\"distorted\""),
        "{prom}"
    );
    // SIGINT: clean stop, exit 0, summary last, every line whole
    let code = interrupt(&mut vqm.0);
    let mut err = String::new();
    vqm.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let all = ndjson(&text);
    let last = all.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["interrupted"], true);
    assert!(last["reconnects"].as_u64().unwrap() >= 1);
    assert!(last["frames"].as_u64().unwrap() >= 20);
    assert!(err.contains("frame(s) compared"), "{err}");
}

#[test]
fn sigint_on_a_pipe_writes_the_summary_of_the_frames_done() {
    stop_a_pipe_run_with("-INT");
}

#[test]
fn sigterm_on_a_pipe_writes_the_summary_of_the_frames_done() {
    stop_a_pipe_run_with("-TERM");
}

fn stop_a_pipe_run_with(sig: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipe.ndjson");
    let sum = dir.path().join("sum.json");
    // the distorted input arrives in real time through a pipe
    let mut feeder = Guard(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "5", "-i"])
            .arg(sample("dist.mp4"))
            .args(["-c", "copy", "-f", "mpegts", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pipe = feeder.0.stdout.take().unwrap();
    let mut vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(sample("ref.mp4"))
            .arg("-")
            .args(["-m", "psnr", "-q", "--log"])
            .arg(&log)
            .arg("--summary-json")
            .arg(&sum)
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for(&log, Duration::from_secs(40), "frames from the pipe", |r| {
        count(r, "frame", None) >= 5
    });
    let code = signal(&mut vqm.0, sig);
    assert_eq!(code, 0);
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    let frames = count(&all, "frame", None) as u64;
    let last = all.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["frames"].as_u64().unwrap(), frames);
    assert_eq!(last["interrupted"], true);
    let s: Value = serde_json::from_str(std::fs::read_to_string(&sum).unwrap().trim()).unwrap();
    assert_eq!(&s, last);
}
