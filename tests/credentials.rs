//! Credentials in an input's URL (userinfo, `passphrase`, `token`, `key`,
//! `password`, `auth` options) and in echoed options never reach an
//! output: every file a run writes, the `/metrics` page while it runs,
//! stderr, and the files of `vqm batch` and `vqm merge` show `***` in
//! their place. The streams are sent on loopback to ports picked at run
//! time; the failing inputs point at ports nobody serves.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Asserts that `text` (what `what` wrote) holds none of `secrets`.
fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

/// The log's whole lines as they are now.
fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(str::to_string)
        .collect()
}

/// `GET /metrics` on `port`, the body.
fn scrape(port: u16) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("the /metrics server");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: vqm\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).unwrap();
    let (_, body) = page.split_once("\r\n\r\n").expect("an HTTP answer");
    body.to_string()
}

#[test]
fn a_measured_live_run_shows_no_credential_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, dist_clip) = make_clips(dir.path());
    let (rp, dp, pp) = (free_udp_port(), free_udp_port(), free_tcp_port());
    let secrets = [
        "RefToken0001",
        "viewer",
        "UserPass0002",
        "Phrase0003xyz",
        "ApiKey0004",
        "Auth0005",
        "Pw0006",
    ];
    let reference = format!("udp://127.0.0.1:{rp}?token={}", secrets[0]);
    let distorted = format!(
        "udp://{}:{}@127.0.0.1:{dp}?passphrase={}&api_key={}&auth={}&password={}",
        secrets[1], secrets[2], secrets[3], secrets[4], secrets[5], secrets[6]
    );
    let out = |name: &str| dir.path().join(name);
    // the streams flow before vqm listens, as a broadcast does
    let _senders = (
        sender_looping(&ref_clip, rp, "-1"),
        sender_looping(&dist_clip, dp, "-1"),
    );
    let mut vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .args([&reference, &distorted])
            .args(["-m", "psnr"])
            .args(["--prometheus", &format!("127.0.0.1:{pp}")])
            .arg("--log")
            .arg(out("log.ndjson"))
            .arg("--summary-json")
            .arg(out("summary.json"))
            .arg("--summary-csv")
            .arg(out("summary.csv"))
            .arg("--csv")
            .arg(out("frames.csv"))
            .arg("--report")
            .arg(out("report.html"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = vqm.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        err
    });
    let t0 = Instant::now();
    while log_lines(&out("log.ndjson"))
        .iter()
        .filter(|l| l.contains("\"type\":\"frame\""))
        .count()
        < 10
    {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "no frames measured: {:?}",
            log_lines(&out("log.ndjson"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // the page names each input in its `stream` label
    let page = scrape(pp);
    assert_hidden("/metrics", &page, &secrets);
    assert!(
        page.contains(&format!(
            "stream=\"udp://***@127.0.0.1:{dp}?passphrase=***&api_key=***&auth=***&password=***\""
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("stream=\"udp://127.0.0.1:{rp}?token=***\"")),
        "{page}"
    );
    let ok = Command::new("kill")
        .args(["-INT", &vqm.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT");
    let t0 = Instant::now();
    while vqm.0.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no end after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = reader.join().unwrap();
    assert_hidden("stderr", &err, &secrets);
    // the summary table names the inputs
    assert!(err.contains("udp://***@127.0.0.1"), "{err}");
    for name in [
        "log.ndjson",
        "summary.json",
        "summary.csv",
        "frames.csv",
        "report.html",
    ] {
        let text = std::fs::read_to_string(out(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_hidden(name, &text, &secrets);
        assert!(
            text.contains("passphrase=***"),
            "{name} names the distorted input:\n{text}"
        );
    }
    // the header and the events name both inputs
    let log = std::fs::read_to_string(out("log.ndjson")).unwrap();
    let header: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(
        header["reference"]["path"],
        format!("udp://127.0.0.1:{rp}?token=***")
    );
}

#[test]
fn an_input_that_cannot_be_opened_is_named_without_its_credentials() {
    let reference = sample("ref.mp4");
    // a listener nobody calls, and a server that is not there
    let srt = format!(
        "srt://127.0.0.1:{}?mode=listener&passphrase=SrtPhrase0007x&latency=20",
        free_udp_port()
    );
    let http = format!(
        "http://watcher:HttpPass0008@127.0.0.1:{}/live.ts?Token=HttpTok0009",
        free_tcp_port()
    );
    for (input, secrets, shown) in [
        (
            srt.as_str(),
            &["SrtPhrase0007x"][..],
            "passphrase=***&latency=20",
        ),
        (
            http.as_str(),
            &["watcher", "HttpPass0008", "HttpTok0009"][..],
            "http://***@127.0.0.1:",
        ),
    ] {
        let o = vqm(&[&reference, input, "-m", "psnr", "--live-timeout", "1"]);
        let (code, out, err) = outcome(&o);
        assert_eq!(code, 1, "{input}: {err}");
        assert_hidden("stderr", &err, secrets);
        assert_hidden("stdout", &out, secrets);
        assert!(err.contains(shown), "{input}: {err}");
    }
}

#[test]
fn an_option_echoed_in_an_error_shows_no_secret() {
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    let o = vqm(&[&r, &d, "--dist-opt", "3:passphrase=OptPhrase0010"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert_hidden("stderr", &err, &["OptPhrase0010"]);
    assert!(err.contains("'3:passphrase=***'"), "{err}");
}

#[test]
fn a_batch_row_that_fails_keeps_its_credentials_out_of_its_files() {
    let t = tempfile::tempdir().unwrap();
    let secrets = ["rowuser", "BatchPass0011", "BatchTok0012"];
    let url = format!(
        "http://{}:{}@127.0.0.1:{}/x.ts?access_token={}",
        secrets[0],
        secrets[1],
        free_tcp_port(),
        secrets[2]
    );
    let manifest = t.path().join("m.csv");
    std::fs::write(
        &manifest,
        format!("id,reference,distorted\nrow,{},{url}\n", sample("ref.mp4")),
    )
    .unwrap();
    let out = t.path().join("out");
    let o = vqm(&[
        "batch",
        s(&manifest),
        "--out",
        s(&out),
        "-m",
        "psnr",
        "--live-timeout",
        "1",
    ]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert_hidden("batch stderr", &err, &secrets);
    let text = std::fs::read_to_string(out.join("row.error.json")).unwrap();
    assert_hidden("row.error.json", &text, &secrets);
    let e: serde_json::Value = serde_json::from_str(&text).unwrap();
    let input = e["input"].as_str().unwrap();
    assert!(input.starts_with("http://***@127.0.0.1:"), "{e}");
    assert!(input.ends_with("/x.ts?access_token=***"), "{e}");
    // the merge says why the row has no summary, still without them
    let o = vqm(&["merge", s(&out), "--manifest", s(&manifest), "--out", "-"]);
    let (_, stdout, err) = outcome(&o);
    assert_hidden("merge stderr", &err, &secrets);
    assert_hidden("merge stdout", &stdout, &secrets);
}
