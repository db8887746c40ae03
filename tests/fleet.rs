//! The fleet configuration in deploy/prometheus: promtool accepts the
//! scrape configuration and the rules, the rules' unit tests pass, and a
//! real Prometheus with that configuration scrapes two live vqm monitors
//! found by file-based service discovery, each with its `channel` label,
//! records the per-channel series and raises the input-lost alert of the
//! channel whose stream dies. Loopback only.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn deploy() -> PathBuf {
    root().join("deploy/prometheus")
}

/// Runs promtool with `args` in deploy/prometheus and fails with its output
/// unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let o = Command::new("promtool")
        .args(args)
        .current_dir(deploy())
        .output()
        .expect("promtool (Debian package prometheus; .ci/deps installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "promtool {args:?}: {text}");
    text
}

#[test]
fn promtool_accepts_the_fleet_configuration_and_the_rules_pass_their_tests() {
    let out = promtool(&["check", "config", "prometheus.yml"]);
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    let out = promtool(&["check", "rules", "vqm-rules.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&["test", "rules", "vqm-rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    // the example targets are file-SD's format, every target a channel
    let text = std::fs::read_to_string(deploy().join("targets/channels.json.example")).unwrap();
    let groups: Value = serde_json::from_str(&text).unwrap();
    let groups = groups.as_array().unwrap();
    assert!(!groups.is_empty());
    for g in groups {
        assert!(!g["targets"].as_array().unwrap().is_empty(), "{g}");
        assert!(g["labels"]["channel"].is_string(), "{g}");
    }
}

#[test]
fn the_series_reader_finds_series_and_skips_labels_functions_and_keywords() {
    assert_eq!(
        promql_series(
            r#"min by (channel) (avg_over_time(vqm_ssim{plane="all",x=~"a b"}[1m])) < 0.9"#
        ),
        ["vqm_ssim"]
    );
    assert_eq!(
        promql_series(
            "channel:vqm_frames:rate1m == 0 and on (channel) channel:vqm_input_up:min == 1"
        ),
        ["channel:vqm_frames:rate1m", "channel:vqm_input_up:min"]
    );
    assert_eq!(
        promql_series(r#"increase(vqm_events_total{stream=~"$stream"}[1m]) > 0 or up{job="vqm"}"#),
        ["vqm_events_total", "up"]
    );
}

/// A percent-encoded query string value.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Prometheus' answer to an instant query: its result vector (empty while
/// Prometheus is not answering yet).
fn query(port: u16, q: &str) -> Vec<Value> {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Vec::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // HTTP/1.0: the whole body, no chunked encoding
    let req = format!(
        "GET /api/v1/query?query={} HTTP/1.0\r\nHost: localhost\r\n\r\n",
        encode(q)
    );
    if s.write_all(req.as_bytes()).is_err() {
        return Vec::new();
    }
    let mut resp = String::new();
    if s.read_to_string(&mut resp).is_err() {
        return Vec::new();
    }
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Polls `q` until `ok` holds for its result, or fails after `limit`.
fn wait_query(port: u16, q: &str, limit: Duration, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let r = query(port, q);
        if ok(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{q}: {r:?} after {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The value of a result's sample, and its `channel` label.
fn by_channel(r: &[Value]) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = r
        .iter()
        .map(|x| {
            (
                x["metric"]["channel"].as_str().unwrap_or("").to_string(),
                x["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_real_prometheus_scrapes_two_channels_records_them_and_alerts_on_a_lost_input() {
    let t = tempfile::tempdir().unwrap();
    let (reference, distorted) = make_clips(t.path());
    // two channels, each a monitor of its own reference and distorted stream
    let mut monitors = Vec::new();
    let mut senders = Vec::new();
    let mut targets = Vec::new();
    for channel in ["news", "sport"] {
        let (rp, dp, mp) = (free_udp_port(), free_udp_port(), free_tcp_port());
        senders.push(sender_looping(&reference, rp, "-1"));
        senders.push(sender_looping(&distorted, dp, "-1"));
        monitors.push(Guard(
            Command::new(env!("CARGO_BIN_EXE_vqm"))
                .arg(format!("udp://127.0.0.1:{rp}"))
                .arg(format!("udp://127.0.0.1:{dp}"))
                .args(["-m", "psnr,ssim,vmaf", "--stall-timeout", "1", "-q"])
                .args(["--prometheus", &format!("127.0.0.1:{mp}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        targets.push(serde_json::json!({
            "targets": [format!("127.0.0.1:{mp}")],
            "labels": {"channel": channel},
        }));
    }
    // the fleet's configuration as shipped, at a test's pace (1 s scrapes
    // and rule evaluations), with the two monitors as its targets
    let conf = t.path().join("prometheus");
    std::fs::create_dir_all(conf.join("targets")).unwrap();
    let shipped = std::fs::read_to_string(deploy().join("prometheus.yml")).unwrap();
    assert!(shipped.contains("scrape_interval: 5s") && shipped.contains("evaluation_interval: 5s"));
    let fast = shipped
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("evaluation_interval: 5s", "evaluation_interval: 1s")
        .replace("scrape_timeout: 4s", "scrape_timeout: 1s")
        .replace("refresh_interval: 30s", "refresh_interval: 1s");
    std::fs::write(conf.join("prometheus.yml"), fast).unwrap();
    std::fs::copy(deploy().join("vqm-rules.yml"), conf.join("vqm-rules.yml")).unwrap();
    std::fs::write(
        conf.join("targets/test.json"),
        Value::Array(targets).to_string(),
    )
    .unwrap();
    let port = free_tcp_port();
    let _prometheus = Guard(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                conf.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                t.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus; .ci/deps installs it)"),
    );
    let limit = Duration::from_secs(60);
    // both monitors are found and scraped, each with its channel
    let up = wait_query(port, r#"up{job="vqm"}"#, limit, |r| {
        by_channel(r) == [("news".to_string(), 1.0), ("sport".to_string(), 1.0)]
    });
    assert_eq!(up.len(), 2);
    // the recording rules give one series per channel: quality and state
    let psnr = wait_query(port, "channel:vqm_psnr_db:min", limit, |r| r.len() == 2);
    for (channel, v) in by_channel(&psnr) {
        assert!(v.is_finite() && v > 10.0 && v < 100.0, "{channel}: {v}");
    }
    let ssim = wait_query(port, "channel:vqm_ssim:min", limit, |r| r.len() == 2);
    for (channel, v) in by_channel(&ssim) {
        assert!(v > 0.0 && v <= 1.0, "{channel}: {v}");
    }
    let vmaf = wait_query(port, "channel:vqm_vmaf:min", limit, |r| r.len() == 2);
    for (channel, v) in by_channel(&vmaf) {
        assert!((0.0..=100.0).contains(&v), "{channel}: {v}");
    }
    wait_query(port, "channel:vqm_input_up:min", limit, |r| {
        by_channel(r) == [("news".to_string(), 1.0), ("sport".to_string(), 1.0)]
    });
    wait_query(port, "channel:vqm_frames:rate1m", limit, |r| {
        r.len() == 2 && by_channel(r).iter().all(|(_, v)| *v > 0.0)
    });
    // every series the rules read is one the monitors serve
    let body = {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /api/v1/label/__name__/values HTTP/1.0\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let names: Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        names["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| format!("# TYPE {} gauge\n", n.as_str().unwrap()))
            .collect::<String>()
    };
    let rules = std::fs::read_to_string(deploy().join("vqm-rules.yml")).unwrap();
    for l in rules.lines() {
        if let Some(expr) = l.trim().strip_prefix("expr:") {
            assert_served(expr.trim(), &body, "the rules");
        }
    }
    // the sport channel's distorted stream dies: its input is lost (1 s
    // stall timeout), the channel's state drops, the alert is pending
    senders.truncate(3);
    wait_query(port, "channel:vqm_input_up:min", limit, |r| {
        by_channel(r) == [("news".to_string(), 1.0), ("sport".to_string(), 0.0)]
    });
    let alerts = wait_query(port, r#"ALERTS{alertname="VqmInputLost"}"#, limit, |r| {
        !r.is_empty()
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["metric"];
    assert_eq!(a["channel"], "sport");
    assert_eq!(a["role"], "distorted");
    assert_eq!(a["alertstate"], "pending", "for: 30s has not passed");
    assert_eq!(a["severity"], "critical");
    drop(monitors);
}
