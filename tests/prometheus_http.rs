//! The `/metrics` server as an HTTP client sees it: GET and HEAD, other
//! methods and paths refused, keep-alive, and idle connections that do not
//! hold a scrape back. vqm waits on a FIFO nobody writes (or one that went
//! silent half way), so the server is up for as long as the test needs.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Guard, ffmpeg, free_tcp_port, ndjson, s, sample};
use serde_json::Value;
use std::time::{Duration, Instant};

/// vqm serving `/metrics` on a free port, its distorted input a FIFO
/// that stays silent.
fn serving(dir: &Path) -> (Guard, u16) {
    let fifo = dir.join("silent.fifo");
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let port = free_tcp_port();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(root.join("samples/ref.mp4"))
            .arg(&fifo)
            .args(["--prometheus", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no server");
        std::thread::sleep(Duration::from_millis(20));
    }
    (vqm, port)
}

/// Sends `request` on `conn` and reads one response: status line, headers
/// (lower-case names) and a body of the announced length (none for HEAD).
fn exchange(
    conn: &mut TcpStream,
    request: &str,
    head: bool,
) -> (String, Vec<(String, String)>, String) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).expect("an answer within 5 s");
        assert_eq!(
            n,
            1,
            "closed before the headers ended: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    let text = String::from_utf8(got).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; if head { 0 } else { len }];
    conn.read_exact(&mut body).unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn metrics_answers_get_and_head_with_keep_alive() {
    let dir = tempfile::tempdir().unwrap();
    let (_vqm, port) = serving(dir.path());
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let get = "GET /metrics HTTP/1.1\r\nHost: vqm\r\n\r\n";
    let (status, headers, body) = exchange(&mut conn, get, false);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(body.contains("# TYPE vqm_up gauge\nvqm_up 1\n"), "{body}");
    // the same connection serves the next requests
    let (status, headers, _) = exchange(
        &mut conn,
        "HEAD /metrics HTTP/1.1\r\nHost: vqm\r\n\r\n",
        true,
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    let len: usize = header(&headers, "content-length").unwrap().parse().unwrap();
    assert_eq!(len, body.len(), "HEAD announces the GET body's length");
    let (status, _, again) = exchange(&mut conn, get, false);
    assert_eq!(
        status, "HTTP/1.1 200 OK",
        "HEAD sent no body: the stream stays in step"
    );
    assert!(again.contains("vqm_up 1"));
    let (status, headers, _) = exchange(
        &mut conn,
        "POST /metrics HTTP/1.1\r\nHost: vqm\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    let (status, _, body) = exchange(&mut conn, "GET / HTTP/1.1\r\nHost: vqm\r\n\r\n", false);
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert!(body.contains("/metrics"));
}

#[test]
fn idle_connections_do_not_hold_a_scrape_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_vqm, port) = serving(dir.path());
    // 200 connections that send nothing, and one that sent half a request
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"GET /metr").unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (status, _, body) = exchange(
        &mut conn,
        "GET /metrics HTTP/1.1\r\nHost: vqm\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("vqm_up 1"));
    drop(idle);
}

/// The page's samples, by series as served (labels in the page's order).
fn samples(page: &str) -> BTreeMap<&str, &str> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}")))
        .collect()
}

/// The page of a run whose distorted input (MPEG-TS through a FIFO) went
/// silent half way, once the log stops growing: promtool accepts it, no
/// sample is NaN, the gauges a run of files never knows (sync, lag,
/// alignment) are absent, and each key's histogram counts the log's
/// frame values: cumulative buckets, `+Inf` and `_count` the frames,
/// `_sum` their sum; the latest gauge is the last frame's value.
#[test]
fn the_histograms_count_every_frame_of_the_log_and_no_gauge_is_nan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dist.ts");
    ffmpeg(&[
        "-i",
        &sample("dist.mp4"),
        "-c",
        "copy",
        "-f",
        "mpegts",
        s(&d),
    ]);
    let fifo = dir.path().join("dist.fifo");
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let data = std::fs::read(&d).unwrap();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = w.write_all(&data[..data.len() / 2]);
        // silent, but open, until the test is done
        let _ = hold_rx.recv();
    });
    let port = free_tcp_port();
    let log = dir.path().join("log.ndjson");
    let _vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(sample("ref.mp4"))
            .arg(&fifo)
            .args(["-m", "psnr,ssim", "-q", "--window", "10"])
            .args(["--prometheus", &format!("127.0.0.1:{port}"), "--log"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // the log stops growing once the half that arrived is measured; the
    // page is read between two equal reads of it
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let t0 = Instant::now();
    let (text, page) = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the log keeps growing"
        );
        std::thread::sleep(Duration::from_millis(500));
        let before = read();
        if before
            .lines()
            .filter(|l| l.contains("\"type\":\"frame\""))
            .count()
            < 10
        {
            continue;
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let get = "GET /metrics HTTP/1.1\r\nHost: vqm\r\nConnection: close\r\n\r\n";
        let (status, _, page) = exchange(&mut conn, get, false);
        assert_eq!(status, "HTTP/1.1 200 OK");
        if read() == before {
            break (before, page);
        }
    };
    hold_tx.send(()).unwrap();
    writer.join().unwrap();
    let recs = ndjson(&text);
    let keys: Vec<&str> = recs[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let frames: Vec<&Value> = recs.iter().filter(|r| r["type"] == "frame").collect();
    assert!(recs.iter().any(|r| r["type"] == "window"), "{text}");
    // a run of files: every pair is trusted
    assert!(frames.iter().all(|f| f.get("sync").is_none()));
    let got = samples(&page);
    assert!(!page.contains("NaN"), "{page}");
    let l = format!("input=\"0\",stream=\"{}\"", fifo.display());
    for name in [
        "vqm_sync_offset_frames",
        "vqm_sync_psnr_db",
        "vqm_lag_seconds",
        "vqm_alignment_delay_seconds",
        "vqm_stream_delay_seconds",
    ] {
        assert!(page.contains(&format!("# TYPE {name} gauge\n")), "{page}");
        assert!(!page.contains(&format!("\n{name}{{")), "{name}: {page}");
    }
    assert_eq!(
        got.get(format!("vqm_frames_total{{{l}}}").as_str()),
        Some(&frames.len().to_string().as_str())
    );
    for key in &keys {
        let (metric, plane) = key.rsplit_once('_').unwrap();
        let (fam, bounds): (&str, &[f64]) = match metric {
            "psnr" => (
                "psnr_db",
                &[
                    20.0, 25.0, 30.0, 32.0, 34.0, 36.0, 38.0, 40.0, 45.0, 50.0, 60.0,
                ],
            ),
            "ssim" => (
                "ssim",
                &[0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0],
            ),
            _ => panic!("{key}"),
        };
        let values: Vec<f64> = frames.iter().filter_map(|f| f[*key].as_f64()).collect();
        let lp = format!("{l},plane=\"{plane}\"");
        let served = |series: String| -> f64 {
            got.get(series.as_str())
                .unwrap_or_else(|| panic!("{series} not served: {page}"))
                .parse()
                .unwrap()
        };
        for b in bounds {
            let below = values.iter().filter(|v| *v <= b).count() as f64;
            let series = format!("vqm_frame_{fam}_bucket{{{lp},le=\"{b}\"}}");
            assert_eq!(served(series), below, "{key} le={b}");
        }
        let n = values.len() as f64;
        assert_eq!(
            served(format!("vqm_frame_{fam}_bucket{{{lp},le=\"+Inf\"}}")),
            n
        );
        assert_eq!(served(format!("vqm_frame_{fam}_count{{{lp}}}")), n);
        let sum = values.iter().fold(0.0, |s, v| s + v);
        assert_eq!(served(format!("vqm_frame_{fam}_sum{{{lp}}}")), sum, "{key}");
        let last = frames.last().unwrap()[*key].as_f64().unwrap();
        assert_eq!(served(format!("vqm_{fam}{{{lp}}}")), last, "{key}");
    }
    // a page that promtool accepts
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
        .write_all(page.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{page}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
