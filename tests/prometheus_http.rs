//! The `/metrics` server as an HTTP client sees it: GET and HEAD, other
//! methods and paths refused, keep-alive, and idle connections that do not
//! hold a scrape back. vqm waits on a FIFO nobody writes, so the server is
//! up for as long as the test needs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Guard, free_tcp_port};
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
