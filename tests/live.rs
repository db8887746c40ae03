//! Live monitoring with real streams on loopback: the ffmpeg CLI sends two
//! MPEG-TS streams over UDP in real time; vqm watches them, survives the
//! distorted sender being killed and restarted, serves Prometheus metrics,
//! and on SIGINT writes its summary. Ports are picked at run time. The
//! tests in this binary run one at a time.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

/// The distorted sample in real time as MPEG-TS on a pipe, looped `loops`
/// more times (`-1`: forever); the guard and the pipe's read end.
fn realtime_feeder(loops: &str) -> (Guard, std::process::ChildStdout) {
    let mut feeder = Guard(
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-re",
                "-stream_loop",
                loops,
                "-i",
            ])
            .arg(sample("dist.mp4"))
            .args(["-c", "copy", "-f", "mpegts", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pipe = feeder.0.stdout.take().unwrap();
    (feeder, pipe)
}

fn sender(clip: &Path, port: u16) -> Guard {
    sender_looping(clip, port, "-1")
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

/// Polls the log every 20 ms until `pred` holds, for at most `limit`, and
/// brackets when the deciding line was written: after the first instant
/// returned (the start of the last read that did not see it; `None` if the
/// first read saw it) and before the second (the end of the read that did).
fn wait_timed(
    path: &Path,
    limit: Duration,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> (Vec<Value>, Option<Instant>, Instant) {
    let t0 = Instant::now();
    let mut not_yet = None;
    loop {
        let start = Instant::now();
        let recs = log_records(path);
        if pred(&recs) {
            return (recs, not_yet, Instant::now());
        }
        not_yet = Some(start);
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(recs: &[Value], t: &str, kind: Option<&str>) -> usize {
    recs.iter()
        .filter(|r| r["type"] == t && kind.is_none_or(|k| r["kind"] == k))
        .count()
}

fn frames_of(recs: &[Value]) -> Vec<&Value> {
    recs.iter().filter(|r| r["type"] == "frame").collect()
}

fn int(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v} is not a whole number"))
}

/// `name{k="v",…}` with the labels sorted, as the series of a scrape and
/// the expected series are compared.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    l.sort();
    if l.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", l.join(","))
    }
}

/// Every event kind: `/metrics` counts each from 0.
use vqm::output::records::EVENT_KINDS;

/// A record key's family and plane on `/metrics`, and the bucket bounds of
/// its histogram: `psnr_y` is `vqm_psnr_db{plane="y"}` (PSNR in dB, the
/// rest unitless), its histogram `vqm_frame_psnr_db`.
fn prom_family(key: &str) -> (String, String, &'static [f64]) {
    const DB: &[f64] = &[
        20.0, 25.0, 30.0, 32.0, 34.0, 36.0, 38.0, 40.0, 45.0, 50.0, 60.0,
    ];
    const UNIT: &[f64] = &[0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0];
    const VMAF: &[f64] = &[
        10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0,
    ];
    if key == "vmaf" {
        return ("vqm_vmaf".to_string(), String::new(), VMAF);
    }
    let (metric, plane) = key.rsplit_once('_').unwrap();
    let (unit, buckets) = match metric {
        "psnr" => ("_db", DB),
        "ssim" | "ms_ssim" => ("", UNIT),
        _ => panic!("{key}: the test knows the buckets of psnr, ssim and vmaf"),
    };
    (format!("vqm_{metric}{unit}"), plane.to_string(), buckets)
}

/// The samples of a Prometheus text page, by series (labels sorted).
fn prom_samples(body: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (sample, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let v = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")),
        };
        let (name, labels) = match sample.split_once('{') {
            None => (sample, Vec::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                let mut labels = Vec::new();
                let mut chars = inner.chars();
                loop {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    if key.is_empty() {
                        break;
                    }
                    assert_eq!(chars.next(), Some('"'), "{line:?}");
                    let mut val = String::new();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some('n') => val.push('\n'),
                                Some(c) => val.push(c),
                                None => panic!("{line:?}"),
                            },
                            Some(c) => val.push(c),
                            None => panic!("{line:?}"),
                        }
                    }
                    labels.push((key, val));
                    match chars.next() {
                        Some(',') => {}
                        None => break,
                        Some(c) => panic!("{line:?}: {c:?} after a label"),
                    }
                }
                (name, labels)
            }
        };
        assert!(name.starts_with("vqm_"), "{line:?}");
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let key = series(name, &labels);
        assert!(out.insert(key, v).is_none(), "{line:?} served twice");
    }
    out
}

/// What `/metrics` must serve once the sinks have seen exactly `recs` (a
/// prefix of the log, header first): each input's state (up or lost, sync
/// pending or found), the last trusted frame record's values (absent while
/// the input or the reference is lost or its sync pending), the last
/// window record's statistics, a histogram per key of every trusted value
/// (neither `"sync": "pending"` nor `"damaged": true`), and counts of
/// frames, events (every kind, from 0) and restored streams. A gauge not
/// known yet (no trusted frame, no window, no sync, a `null`) is absent.
fn prom_expected(recs: &[Value]) -> BTreeMap<String, f64> {
    let header = &recs[0];
    assert_eq!(header["type"], "header");
    let keys: Vec<&str> = header["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    // the reference first (input "reference"), then the distorted inputs
    let mut inputs: Vec<(String, String, &str)> = vec![(
        "reference".to_string(),
        header["reference"]["path"].as_str().unwrap().to_string(),
        "reference",
    )];
    for (i, d) in header["distorted"].as_array().unwrap().iter().enumerate() {
        let path = d["path"].as_str().unwrap().to_string();
        inputs.push((i.to_string(), path, "distorted"));
    }
    let n = inputs.len();
    let mut latest: Vec<Vec<Option<f64>>> = vec![vec![None; keys.len()]; n];
    let mut stats = vec![[(); 3].map(|_| vec![None::<f64>; keys.len()]); n];
    // every trusted value, in order
    let mut observed = vec![vec![Vec::<f64>::new(); keys.len()]; n];
    let mut frames = vec![0u64; n];
    let mut pts = vec![None::<f64>; n];
    let mut lag = vec![None::<f64>; n];
    let mut align = vec![None::<f64>; n];
    let mut pending = vec![false; n];
    let mut lost = vec![false; n];
    let mut sync = vec![None::<(f64, f64)>; n];
    let mut delay = vec![None::<f64>; n];
    let mut every = vec![1.0f64; n];
    let mut events = vec![BTreeMap::<String, u64>::new(); n];
    let mut reconnects = vec![0u64; n];
    let at = |r: &Value| r["input"].as_u64().map_or(0, |i| i as usize + 1);
    for r in &recs[1..] {
        match r["type"].as_str().unwrap() {
            "frame" => {
                let i = at(r);
                pending[i] = r["sync"] == "pending";
                if !pending[i] && r["damaged"] != true {
                    for (j, k) in keys.iter().enumerate() {
                        latest[i][j] = r[*k].as_f64();
                        observed[i][j].extend(r[*k].as_f64());
                    }
                }
                frames[i] += 1;
                pts[i] = r["pts"].as_f64();
                lag[i] = r["lag_ms"].as_f64().map(|ms| ms / 1000.0);
                align[i] = r["alignment_delay_ms"].as_f64().map(|ms| ms / 1000.0);
            }
            "window" => {
                let i = at(r);
                for (j, k) in keys.iter().enumerate() {
                    for (s, what) in ["mean", "min", "max"].iter().enumerate() {
                        stats[i][s][j] = r[*k][*what].as_f64();
                    }
                }
            }
            "event" => {
                let i = at(r);
                let kind = r["kind"].as_str().unwrap();
                *events[i].entry(kind.to_string()).or_insert(0) += 1;
                match kind {
                    "stream_lost" => lost[i] = true,
                    "stream_restored" => {
                        lost[i] = false;
                        reconnects[i] += 1;
                    }
                    "sync" => {
                        pending[i] = false;
                        if let Some(p) = r["psnr"].as_f64() {
                            sync[i] = Some((r["offset"].as_f64().unwrap(), p));
                            delay[i] = r["delay_s"].as_f64().or(delay[i]);
                        }
                    }
                    "overload" => every[i] = r["every"].as_f64().unwrap(),
                    "sync_uncertain" => pending[i] = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    // a series' sample, if its value is known
    let mut sample = |name: &str, labels: &[(&str, &str)], v: Option<f64>| {
        if let Some(v) = v {
            out.insert(series(name, labels), v);
        }
    };
    sample("vqm_up", &[], Some(1.0));
    for (i, (input, stream, role)) in inputs.iter().enumerate() {
        let l = [("input", input.as_str()), ("stream", stream.as_str())];
        let lr = [l[0], l[1], ("role", *role)];
        sample("vqm_input_up", &lr, Some(if lost[i] { 0.0 } else { 1.0 }));
        sample("vqm_reconnects_total", &lr, Some(reconnects[i] as f64));
        for kind in EVENT_KINDS {
            let c = events[i].get(kind).copied().unwrap_or(0);
            sample(
                "vqm_events_total",
                &[l[0], l[1], ("kind", kind)],
                Some(c as f64),
            );
        }
        let kinds_seen: Vec<&String> = events[i]
            .keys()
            .filter(|k| !EVENT_KINDS.contains(&k.as_str()))
            .collect();
        assert!(
            kinds_seen.is_empty(),
            "kinds the test does not know: {kinds_seen:?}"
        );
        if i == 0 {
            continue;
        }
        sample("vqm_frames_total", &l, Some(frames[i] as f64));
        sample("vqm_pts_seconds", &l, pts[i]);
        sample("vqm_lag_seconds", &l, lag[i]);
        sample("vqm_alignment_delay_seconds", &l, align[i]);
        sample(
            "vqm_sync_pending",
            &l,
            Some(if pending[i] { 1.0 } else { 0.0 }),
        );
        sample("vqm_sync_offset_frames", &l, sync[i].map(|s| s.0));
        sample("vqm_sync_psnr_db", &l, sync[i].map(|s| s.1));
        sample("vqm_stream_delay_seconds", &l, delay[i]);
        sample("vqm_measured_every", &l, Some(every[i]));
        // the histograms: from the header on, whatever the input's state
        for (j, k) in keys.iter().enumerate() {
            let (fam, plane, buckets) = prom_family(k);
            let hist = format!("vqm_frame_{}", fam.strip_prefix("vqm_").unwrap());
            let lp = [l[0], l[1], ("plane", plane.as_str())];
            let values = &observed[i][j];
            for b in buckets.iter().copied().chain([f64::INFINITY]) {
                let le = if b.is_finite() {
                    format!("{b}")
                } else {
                    "+Inf".to_string()
                };
                let below = values.iter().filter(|v| **v <= b).count();
                sample(
                    &format!("{hist}_bucket"),
                    &[lp[0], lp[1], lp[2], ("le", &le)],
                    Some(below as f64),
                );
            }
            let sum = values.iter().fold(0.0, |s, v| s + v);
            sample(&format!("{hist}_sum"), &lp, Some(sum));
            sample(&format!("{hist}_count"), &lp, Some(values.len() as f64));
        }
        if lost[i] || lost[0] || pending[i] {
            continue;
        }
        for (j, k) in keys.iter().enumerate() {
            let (fam, plane, _) = prom_family(k);
            let lp = [l[0], l[1], ("plane", plane.as_str())];
            sample(&fam, &lp, latest[i][j]);
            for (s, stat) in ["mean", "min", "max"].iter().enumerate() {
                let ls = [l[0], l[1], ("plane", plane.as_str()), ("stat", *stat)];
                sample(&format!("{fam}_window"), &ls, stats[i][s][j]);
            }
        }
    }
    out
}

/// The same samples: no `NaN` is ever served, so plain equality.
fn same_samples(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> bool {
    a == b
}

/// Scrapes `/metrics` between two reads of the log and checks that the
/// page is exactly what the sinks had after some prefix of the log: the
/// Prometheus sink sees every record right after the log sink wrote it, so
/// the prefix holds every record of the read before the scrape but its
/// last, and none beyond the read after. Returns the page.
fn scrape_matching_log(log: &Path, port: u16) -> String {
    let before = log_records(log);
    let body = scrape(port);
    let after = log_records(log);
    assert_eq!(&after[..before.len()], &before[..], "the log only grows");
    let got = prom_samples(&body);
    let lo = before.len().saturating_sub(1).max(1);
    let matched = (lo..=after.len()).find(|m| same_samples(&prom_expected(&after[..*m]), &got));
    if matched.is_none() {
        panic!(
            "the scrape matches no prefix of the log of {lo} to {} records\nscraped: {got:?}\nexpected after the last: {:?}",
            after.len(),
            prom_expected(&after)
        );
    }
    body
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

/// Starts `cmd` with stdin and stdout closed and its stderr read all
/// along (so it never waits on a full pipe), returned when it ends.
fn spawn_reading_stderr(cmd: &mut Command) -> (Guard, std::thread::JoinHandle<String>) {
    let mut child = Guard(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = child.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        err
    });
    (child, reader)
}

fn interrupt(child: &mut Child) -> i32 {
    signal(child, "-INT")
}

fn signal(child: &mut Child, sig: &str) -> i32 {
    signal_within(child, sig, Duration::from_secs(20))
}

fn send(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Sends `sig` and waits at most `limit` for the process to end; returns
/// its exit code (-1 if a signal ended it).
fn signal_within(child: &mut Child, sig: &str, limit: Duration) -> i32 {
    send(child, sig);
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            t0.elapsed() < limit,
            "vqm did not stop within {limit:?} of {sig}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks the summary's `latency_ms` (time from both frames of a pair
/// decoded to its record written): present, finite, ordered, at least 0,
/// its median at most `median_ms` and its maximum at most `max_ms`.
fn check_latency(summary: &Value, median_ms: f64, max_ms: f64) {
    let l = &summary["latency_ms"];
    let get = |k: &str| {
        l[k].as_f64()
            .unwrap_or_else(|| panic!("latency_ms.{k} is not a number: {l}"))
    };
    let (median, p99, max) = (get("median"), get("p99"), get("max"));
    assert!([median, p99, max].iter().all(|v| v.is_finite()), "{l}");
    assert!(0.0 <= median && median <= p99 && p99 <= max, "{l}");
    assert!(
        median <= median_ms,
        "latency_ms.median above {median_ms} ms: {l}"
    );
    assert!(max <= max_ms, "latency_ms.max above {max_ms} ms: {l}");
}

/// Every frame the pairing took from an input is either measured (a frame
/// record) or counted unpaired, so with the last pair measured the last
/// frame record's index in each input is paired + unpaired − 1; frame
/// records number their pairs 0, 1, 2… in order, and the summary counts
/// them.
fn check_counts(all: &[Value], summary: &Value) {
    let frames = frames_of(all);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(int(&f["frame"]), i as u64, "{f}");
    }
    let paired = frames.len() as u64;
    // every frame record is in the statistics, or was measured while the
    // sync was pending and left out (counted)
    assert_eq!(
        int(&summary["frames"]) + int(&summary["sync_pending"]),
        paired
    );
    let pending = frames.iter().filter(|f| f["sync"] == "pending").count() as u64;
    assert!(int(&summary["sync_pending"]) <= pending, "{summary}");
    assert!(
        frames
            .iter()
            .all(|f| f.get("sync").is_none() || f["sync"] == "pending"),
        "sync is only ever \"pending\""
    );
    let last = frames.last().expect("frames measured");
    let unpaired = &summary["unpaired"];
    assert_eq!(
        paired + int(&unpaired["reference"]),
        int(&last["ref_frame"]) + 1,
        "reference frames taken = paired + unpaired; last pair {last}, summary {summary}"
    );
    assert_eq!(
        paired + int(&unpaired["distorted"]),
        int(&last["dist_frame"]) + 1,
        "distorted frames taken = paired + unpaired; last pair {last}, summary {summary}"
    );
    // every unpaired frame has its cause
    for side in ["reference", "distorted"] {
        let causes = unpaired["by_cause"][side].as_object().unwrap();
        let mut keys: Vec<&str> = causes.keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["end", "lag", "offset", "outage", "timing"],
            "{summary}"
        );
        let sum: u64 = causes.values().map(int).sum();
        assert_eq!(sum, int(&unpaired[side]), "{side}: {summary}");
    }
    assert_eq!(
        int(&unpaired["by_cause"]["reference"]["lag"]),
        int(&summary["lag_drops"])
    );
    // a stopped run is not a frame-count mismatch
    assert_eq!(count(all, "event", Some("mismatch")), 0);
    assert_eq!(
        int(&summary["dropped_frames"]),
        count(all, "event", Some("dropped")) as u64
    );
    assert_eq!(
        int(&summary["decode_errors"]),
        count(all, "event", Some("decode_error")) as u64
    );
}

/// MPEG-TS clips for a live test: `reference` from the lavfi source `src`
/// (H.264, GOP `gop`, no B-frames) and `distorted` its re-encode at `crf`.
fn encode_pair(src: &str, gop: &str, crf: &str, reference: &Path, distorted: &Path) {
    let enc = [
        "-c:v", "libx264", "-g", gop, "-bf", "0", "-pix_fmt", "yuv420p",
    ];
    let mut args = vec!["-f", "lavfi", "-i", src];
    args.extend(enc);
    args.extend(["-f", "mpegts", s(reference)]);
    ffmpeg(&args);
    let mut args = vec!["-i", s(reference), "-crf", crf];
    args.extend(enc);
    args.extend(["-f", "mpegts", s(distorted)]);
    ffmpeg(&args);
}

/// The stall timeout of the live test, and how late after it the loss may
/// be written: the decoder's read is interrupted on a 100 ms clock (FFmpeg's
/// UDP reader wakes up every 100 ms), the event then crosses the pairing
/// and the ordered aggregator (milliseconds), and the log is polled every
/// 20 ms; the rest is room for a loaded two-core machine (measured: 20 to
/// 60 ms late, also with a core kept busy).
const STALL: Duration = Duration::from_secs(2);
const STALL_LATE: Duration = Duration::from_secs(1);
/// How early: the sender's MPEG-TS muxer packs 1316-byte datagrams, so its
/// last datagram can leave a few frames (well under 0.5 s at this rate)
/// before it is killed, and silence is timed from the last datagram.
const STALL_EARLY: Duration = Duration::from_millis(500);
/// Latency bounds, ms. A pair is measured as soon as the later of its two
/// frames is decoded, in milliseconds here, so a record is written within a
/// few 40 ms frame intervals of its frames: the median within 250 ms, and
/// without a sync search (the pipe runs) the maximum within 1 s, room for a
/// loaded machine and the unoptimised test build (measured: at most 80 ms).
const LATENCY_MEDIAN_MS: f64 = 250.0;
const LATENCY_MAX_MS: f64 = 1000.0;
/// A live run synchronises its inputs in the run: the pairing thread
/// searches 121 offsets over 30 thumbnail pairs and takes no frame
/// meanwhile, so the frames decoded during the search wait for it (about
/// 1.5 s in the unoptimised test build here, measured up to 2.6 s on a
/// loaded machine).
const LIVE_LATENCY_MAX_MS: f64 = 5000.0;

#[test]
fn udp_streams_survive_a_sender_restart_and_stop_cleanly_on_sigint() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, dist_clip) = make_clips(dir.path());
    let (rp, dp, pp) = (free_udp_port(), free_udp_port(), free_tcp_port());
    let _ref_sender = sender(&ref_clip, rp);
    let mut dist_sender = sender(&dist_clip, dp);
    let log = dir.path().join("live.ndjson");
    let started = Instant::now();
    let (mut vqm, stderr) = spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args([
                "-m",
                "psnr,ssim",
                "--stall-timeout",
                &STALL.as_secs().to_string(),
                "--alert",
                "psnr_y<10 for 5f",
                // ±4 s: the 2 s loop repeats inside the range
                "--sync",
                "auto:4s",
            ])
            .args(["--prometheus", &format!("127.0.0.1:{pp}"), "--log"])
            .arg(&log),
    );
    // the inputs open together and pairs are measured (pending) while the
    // offset is searched: the first frame record comes at once (the
    // benchmark's figure is 0.83 s; generous here for a loaded machine
    // and the unoptimised build)
    let (_, _, first) = wait_timed(&log, Duration::from_secs(20), "a frame record", |r| {
        !frames_of(r).is_empty()
    });
    let first = first.duration_since(started);
    assert!(
        first <= Duration::from_secs(3),
        "first frame record after {first:?}"
    );
    // frames flow, after the live sync, up to the first window record
    let recs = wait_for(&log, Duration::from_secs(40), "a window record", |r| {
        count(r, "window", None) >= 1
    });
    assert_eq!(recs[0]["type"], "header");
    assert_eq!(recs[0]["live"], true);
    assert_eq!(count(&recs, "event", Some("sync")), 1);
    // Prometheus: every gauge and counter is what the log says
    let body = scrape_matching_log(&log, pp);
    assert!(body.contains("vqm_frames_total{input=\"0\""), "{body}");
    assert!(
        body.contains("vqm_psnr_db{input=\"0\",stream=\"udp://127.0.0.1:"),
        "{body}"
    );
    // a scrape that promtool accepts
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
    // every series the Grafana dashboard plots is served (or recorded by
    // the fleet's rules from served ones: tests/fleet.rs)
    let dash = std::fs::read_to_string(root().join("config/grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&dash).unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            assert_served(t["expr"].as_str().unwrap(), &body, "the dashboard");
        }
    }
    // kill the distorted sender: stream_lost, once the stall timeout has
    // passed and not much later
    let killing = Instant::now();
    dist_sender.0.kill().unwrap();
    dist_sender.0.wait().unwrap();
    let dead = Instant::now();
    let (lost, not_yet, seen) = wait_timed(&log, STALL * 10, "stream_lost", |r| {
        count(r, "event", Some("stream_lost")) >= 1
    });
    let late = seen.duration_since(killing);
    let early = not_yet.map_or(Duration::ZERO, |t| t.saturating_duration_since(dead));
    assert!(
        late <= STALL + STALL_LATE,
        "stream_lost written {late:?} after the sender was killed (stall timeout {STALL:?})"
    );
    assert!(
        early + STALL_EARLY >= STALL,
        "stream_lost written only {early:?} after the sender died (stall timeout {STALL:?})"
    );
    let at = lost
        .iter()
        .position(|r| r["kind"] == "stream_lost")
        .unwrap();
    assert_eq!(count(&lost, "event", Some("stream_lost")), 1);
    let lost_ev = &lost[at];
    assert_eq!(lost_ev["role"], "distorted");
    assert_eq!(lost_ev["input"], 0);
    assert_eq!(lost_ev["path"], format!("udp://127.0.0.1:{dp}"));
    // the loss counts every distorted frame received, the paired ones too
    let paired_before = frames_of(&lost[..at]);
    assert!(
        int(&lost_ev["after_frames"]) > int(&paired_before.last().unwrap()["dist_frame"]),
        "{lost_ev}"
    );
    // restart it: stream_restored, re-sync, and frame records go on
    let _dist_sender2 = sender(&dist_clip, dp);
    // measured again at once (pending), re-synchronised, and scored
    let recs = wait_for(
        &log,
        Duration::from_secs(40),
        "frames after the re-sync",
        |r| match r.iter().position(|x| x["kind"] == "stream_restored") {
            Some(i) => match r[i..].iter().position(|x| x["kind"] == "sync") {
                Some(j) => r[i + j..].iter().filter(|x| x["type"] == "frame").count() >= 10,
                None => false,
            },
            None => false,
        },
    );
    let restored = recs
        .iter()
        .position(|x| x["kind"] == "stream_restored")
        .unwrap();
    let uncertain = restored
        + recs[restored..]
            .iter()
            .position(|x| x["kind"] == "sync_uncertain")
            .expect("the restore starts a search");
    let synced = restored
        + recs[restored..]
            .iter()
            .position(|x| x["kind"] == "sync")
            .unwrap();
    assert_eq!(recs[uncertain]["reason"], "searching");
    assert!(uncertain < synced);
    let between = frames_of(&recs[uncertain..synced]);
    assert!(!between.is_empty(), "measured while searching");
    assert!(between.iter().all(|f| f["sync"] == "pending"));
    // re-synchronised pairs are the right pictures: the encode scores well
    let after: Vec<f64> = frames_of(&recs[synced..])
        .iter()
        .map(|x| {
            assert!(x.get("sync").is_none(), "{x}");
            x["psnr_y"].as_f64().unwrap()
        })
        .collect();
    assert!(after.iter().all(|p| *p > 25.0), "{after:?}");
    // Prometheus again: the loss and the restore are counted as logged
    let prom = scrape_matching_log(&log, pp);
    assert!(
        prom.contains(&format!(
            "vqm_reconnects_total{{input=\"0\",stream=\"udp://127.0.0.1:{dp}\",role=\"distorted\"}} 1"
        )),
        "{prom}"
    );
    // SIGINT: clean stop, exit 0, summary last, every line whole
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let all = ndjson(&text);
    let last = all.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(count(&all, "summary", None), 1);
    assert_eq!(last["interrupted"], true);
    assert_eq!(
        int(&last["reconnects"]),
        count(&all, "event", Some("stream_restored")) as u64
    );
    assert!(int(&last["reconnects"]) >= 1);
    assert!(int(&last["frames"]) >= 20);
    // the outage left reference frames without a partner, said as such
    assert!(
        int(&last["unpaired"]["by_cause"]["reference"]["outage"]) > 0,
        "{last}"
    );
    assert_eq!(count(&all, "event", Some("alert")), 0);
    assert_eq!(last["alerts"], serde_json::json!([]));
    check_counts(&all, last);
    check_latency(last, LATENCY_MEDIAN_MS, LIVE_LATENCY_MAX_MS);
    assert!(err.contains("frame(s) compared"), "{err}");
    // live: the arrival rate and the lag, not the decoder's busy rate
    assert!(
        err.contains("speed: arrival ") && err.contains(" (reference), lag p99 "),
        "{err}"
    );
}

#[test]
fn sigint_on_a_pipe_writes_the_summary_of_the_frames_done() {
    stop_a_pipe_run_with("-INT", None);
}

#[test]
fn sigterm_on_a_pipe_writes_the_summary_of_the_frames_done() {
    stop_a_pipe_run_with("-TERM", None);
}

#[test]
fn sigint_after_an_alert_exits_3_with_the_summary() {
    stop_a_pipe_run_with("-INT", Some("psnr_y<99"));
}

/// A run whose distorted input arrives in real time through a pipe, stopped
/// by `sig` once frames flow; with `alert`, a rule that holds from the
/// first frame (PSNR is capped at 60 dB).
fn stop_a_pipe_run_with(sig: &str, alert: Option<&str>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipe.ndjson");
    let sum = dir.path().join("sum.json");
    // the distorted input arrives in real time through a pipe
    let (_feeder, pipe) = realtime_feeder("5");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vqm"));
    cmd.arg(sample("ref.mp4"))
        .arg("-")
        .args(["-m", "psnr", "-q", "--log"])
        .arg(&log)
        .arg("--summary-json")
        .arg(&sum);
    if let Some(rule) = alert {
        cmd.args(["--alert", rule]);
    }
    let mut vqm = Guard(
        cmd.stdin(Stdio::from(pipe))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&log, Duration::from_secs(40), "frames from the pipe", |r| {
        count(r, "frame", None) >= 5
    });
    let code = signal(&mut vqm.0, sig);
    assert_eq!(code, if alert.is_some() { 3 } else { 0 });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let all = ndjson(&text);
    let last = all.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["interrupted"], true);
    // one pipe, no offset: every pair is frame i of both inputs, and
    // nothing was left unpaired
    for f in frames_of(&all) {
        assert_eq!(f["ref_frame"], f["frame"], "{f}");
        assert_eq!(f["dist_frame"], f["frame"], "{f}");
    }
    assert_eq!(int(&last["unpaired"]["reference"]), 0);
    assert_eq!(int(&last["unpaired"]["distorted"]), 0);
    check_counts(&all, last);
    check_latency(last, LATENCY_MEDIAN_MS, LATENCY_MAX_MS);
    let alerts: Vec<&Value> = all.iter().filter(|r| r["kind"] == "alert").collect();
    match alert {
        None => {
            assert!(alerts.is_empty());
            assert_eq!(last["alerts"], serde_json::json!([]));
        }
        Some(rule) => {
            // fired on the first frame, held to the end: one alert, no recovery
            let first = frames_of(&all)[0];
            assert_eq!(alerts.len(), 1, "{alerts:?}");
            let a = alerts[0];
            assert_eq!(a["rule"], rule);
            assert_eq!(a["input"], 0);
            assert_eq!(a["frame"], 0);
            assert_eq!(a["value"], first["psnr_y"]);
            assert_eq!(count(&all, "event", Some("recovered")), 0);
            assert_eq!(last["alerts"], serde_json::json!([rule]));
        }
    }
    let s: Value = serde_json::from_str(std::fs::read_to_string(&sum).unwrap().trim()).unwrap();
    assert_eq!(&s, last);
}

/// Makes a FIFO with the `mkfifo` command.
fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// `O_NONBLOCK` on Linux (x86, arm, riscv), where these tests run.
const O_NONBLOCK: i32 = 0o4000;

#[test]
fn a_second_sigint_ends_a_stop_that_cannot_finish_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // The log is a FIFO this test holds open and stops reading: once the
    // pipe is full, no record and no summary can be written, so the clean
    // stop of the first SIGINT cannot finish.
    let fifo = dir.path().join("log.fifo");
    mkfifo(&fifo);
    let mut end = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let (_feeder, pipe) = realtime_feeder("-1");
    let mut vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(sample("ref.mp4"))
            .arg("-")
            .args(["-m", "psnr", "-q", "--log"])
            .arg(&fifo)
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // read the log until frames flow
    let t0 = Instant::now();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while count(&ndjson_prefix(&text), "frame", None) < 5 {
        match end.read(&mut buf) {
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "no frames in the log"
                );
                assert!(vqm.0.try_wait().unwrap().is_none(), "vqm ended early");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("reading the log FIFO: {e}"),
        }
    }
    // fill the pipe: vqm's next write blocks
    let mut filled = 0usize;
    for chunk in [4096usize, 1] {
        let fill = vec![b'\n'; chunk];
        loop {
            match end.write(&fill) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the log FIFO: {e}"),
            }
        }
    }
    assert!(filled > 0);
    send(&vqm.0, "-INT");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        vqm.0.try_wait().unwrap().is_none(),
        "vqm ended on the first SIGINT though its log could not take the summary: this test needs a stop that cannot finish"
    );
    // the second signal ends the process at once, with 130
    let t1 = Instant::now();
    let code = signal_within(&mut vqm.0, "-INT", Duration::from_secs(2));
    assert_eq!(code, 130, "after {:?}", t1.elapsed());
}

/// The whole lines of a growing NDJSON text.
fn ndjson_prefix(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn sigint_on_a_stalled_pipe_writes_the_summary_of_the_frames_done() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stalled.ndjson");
    // a 45-frame reference file, and 50 frames of the distorted input (FFmpeg
    // probes a pipe's first 20-odd frames before the first is decoded)
    // through a pipe whose writer then stays but sends nothing more (a
    // stalled upstream): vqm pairs 45 frames, takes the rest of the pipe as
    // unpaired and waits for its end
    let r = dir.path().join("ref.mkv");
    let d = dir.path().join("dist.ts");
    for (path, n, crf) in [(&r, "45", "0"), (&d, "50", "35")] {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x180:r=25",
            "-frames:v",
            n,
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-crf",
            crf,
            "-pix_fmt",
            "yuv420p",
            s(path),
        ]);
    }
    let bytes = std::fs::read(&d).unwrap();
    let mut vqm = Guard(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(&r)
            .arg("-")
            .args(["-m", "psnr", "-q", "--log"])
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = vqm.0.stdin.take().unwrap();
    stdin.write_all(&bytes).expect("vqm reads its input");
    stdin.flush().unwrap();
    let recs = wait_for(&log, Duration::from_secs(30), "the 45 pairs", |r| {
        count(r, "frame", None) >= 45
    });
    assert_eq!(count(&recs, "summary", None), 0, "the pipe has not ended");
    // the last five frames are decoded and taken within milliseconds; then
    // the only thing vqm waits for is a read from the silent pipe
    std::thread::sleep(Duration::from_millis(500));
    // The pairing notices a stop within 100 ms; 5 s is ample for the clean
    // stop.
    let code = signal_within(&mut vqm.0, "-INT", Duration::from_secs(5));
    assert_eq!(code, 0);
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    let last = all.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(int(&last["frames"]), 45);
    assert_eq!(count(&all, "frame", None), 45);
    drop(stdin);
}

#[test]
fn an_input_silent_at_start_up_is_waited_for() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, dist_clip) = make_clips(dir.path());
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let _ref_sender = sender(&ref_clip, rp);
    let log = dir.path().join("waited.ndjson");
    let (mut vqm, stderr) = watch_udp(rp, dp, &log);
    // the distorted sender starts 3 s after vqm: longer than the stall
    // timeout, which no longer ends the run at start-up
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        vqm.0.try_wait().unwrap().is_none(),
        "vqm gave up on a silent input"
    );
    let _dist_sender = sender(&dist_clip, dp);
    let recs = wait_for(&log, Duration::from_secs(30), "frames", |r| {
        frames_of(r).len() >= 5
    });
    let waiting: Vec<&Value> = recs
        .iter()
        .filter(|r| r["kind"] == "stream_waiting")
        .collect();
    assert_eq!(waiting.len(), 1, "{recs:?}");
    assert_eq!(waiting[0]["role"], "distorted");
    assert_eq!(waiting[0]["input"], 0);
    assert_eq!(waiting[0]["path"], format!("udp://127.0.0.1:{dp}"));
    let waited = waiting[0]["waited"].as_f64().unwrap();
    assert!((2.0..30.0).contains(&waited), "waited {waited} s");
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("'udp://127.0.0.1:{dp}': no data yet; waiting")),
        "{err}"
    );
}

#[test]
fn live_timeout_ends_the_wait_for_a_silent_input() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, _) = make_clips(dir.path());
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let _ref_sender = sender(&ref_clip, rp);
    let log = dir.path().join("never.ndjson");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .arg(format!("udp://127.0.0.1:{rp}"))
        .arg(format!("udp://127.0.0.1:{dp}"))
        .args(["--stall-timeout", "0.5", "--live-timeout", "2", "--log"])
        .arg(&log)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "input 'udp://127.0.0.1:{dp}': no data arrived within --live-timeout (2 s)"
        )),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(!log.exists(), "no log for a run that never started");
}

#[test]
fn a_monitor_that_falls_behind_sheds_pairs_and_keeps_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, dist_clip) = make_clips(dir.path());
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let _ref_sender = sender(&ref_clip, rp);
    let _dist_sender = sender(&dist_clip, dp);
    let log = dir.path().join("lag.ndjson");
    // every pair takes 150 ms to measure, two at a time: 13 pairs a
    // second against 25 frames a second: the monitor falls behind and
    // measures one pair in two or more
    let (mut vqm, stderr) = spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .env("VQM_TEST_SLOW_METRICS_MS", "150")
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args(["-m", "psnr", "--sync", "auto:1s", "--max-lag", "1"])
            .arg("--log")
            .arg(&log),
    );
    let recs = wait_for(
        &log,
        Duration::from_secs(40),
        "pairs after shedding",
        |r| match r
            .iter()
            .position(|x| x["kind"] == "overload" && x["every"].as_u64() > Some(1))
        {
            Some(i) => frames_of(&r[i..]).len() >= 20,
            None => false,
        },
    );
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    // said once it sheds, and measured pairs keep coming, each saying
    // how many pairs it stands for
    assert!(
        err.contains("cannot measure every pair in real time"),
        "{err}"
    );
    let at = recs
        .iter()
        .position(|x| x["kind"] == "overload" && x["every"].as_u64() > Some(1))
        .unwrap();
    for f in frames_of(&recs[at..]) {
        assert!(f["measured_every"].as_u64().unwrap_or(1) >= 1, "{f}");
    }
    assert!(
        frames_of(&recs[at..])
            .iter()
            .any(|f| f["measured_every"].as_u64() > Some(1)),
        "records say they are sampled"
    );
    // what is measured stays within the bound (plus one pair's time and
    // room for a loaded machine)
    for f in frames_of(&recs) {
        let lag = f["lag_ms"].as_f64().unwrap();
        assert!((0.0..2500.0).contains(&lag), "{f}");
    }
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    let summary = all.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert!(int(&summary["shed_pairs"]) > 0, "{summary}");
    assert!(int(&summary["max_every"]) > 1, "{summary}");
    assert!(
        int(&summary["unpaired"]["reference"])
            >= int(&summary["lag_drops"]) + int(&summary["shed_pairs"]),
        "{summary}"
    );
    let lag = &summary["lag_ms"];
    assert!(lag["p99"].as_f64().unwrap() < 2500.0, "{summary}");
    assert!(
        summary["alignment_delay_ms"]["max"].as_f64().is_some(),
        "{summary}"
    );
}

#[test]
fn a_delayed_distorted_stream_is_found_without_a_false_alert() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // 20 s of content that does not repeat within the search range
    let r = dir.path().join("long_ref.ts");
    let d = dir.path().join("long_dist.ts");
    encode_pair("testsrc2=s=160x90:r=25:d=20", "25", "30", &r, &d);
    let (rp, dp) = (free_udp_port(), free_udp_port());
    // the distorted stream shows what the reference showed 2 s earlier
    let _ref_sender = sender(&r, rp);
    std::thread::sleep(Duration::from_secs(2));
    let _dist_sender = sender(&d, dp);
    std::thread::sleep(Duration::from_secs(1));
    let log = dir.path().join("delayed.ndjson");
    let (mut vqm, stderr) = spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args(["-m", "psnr", "--sync", "auto:3s"])
            .args(["--alert", "psnr_y<25"])
            .arg("--log")
            .arg(&log),
    );
    let recs = wait_for(
        &log,
        Duration::from_secs(40),
        "pairs after the sync",
        |r| match r.iter().position(|x| x["kind"] == "sync") {
            Some(i) => frames_of(&r[i..]).len() >= 25,
            None => false,
        },
    );
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let sync = recs.iter().find(|x| x["kind"] == "sync").unwrap();
    // 2 s is 50 frames; the offset counts frames from each input's first
    // decodable keyframe (GOP 1 s), which may come up to 25 frames later
    // on either side, so it lies in -75..=-25
    let offset = sync["offset"].as_i64().unwrap();
    assert!((-75..=-25).contains(&offset), "{sync}");
    let runner = sync["runner_up_psnr"].as_f64().unwrap();
    assert!(sync["psnr"].as_f64().unwrap() > runner + 1.0, "{sync}");
    assert!(sync["psnr"].as_f64().unwrap() > 30.0, "{sync}");
    let at = recs.iter().position(|x| x["kind"] == "sync").unwrap();
    for f in frames_of(&recs[at..]) {
        assert!(f["psnr_y"].as_f64().unwrap() > 25.0, "{f}");
        assert!(f.get("sync").is_none(), "{f}");
    }
    assert_eq!(count(&recs, "event", Some("alert")), 0, "no false alert");
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(count(&all, "event", Some("alert")), 0, "no false alert");
    let summary = all.last().unwrap();
    assert_eq!(summary["alerts"], serde_json::json!([]));
    // the reference is held back to meet the distorted stream: 2 s apart
    let delay = summary["alignment_delay_ms"]["median"].as_f64().unwrap();
    assert!((1500.0..2500.0).contains(&delay), "{summary}");
}

#[test]
fn pts_pairing_learns_each_senders_timeline_again_after_a_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (ref_clip, dist_clip) = make_clips(dir.path());
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let _ref_sender = sender(&ref_clip, rp);
    let mut dist_sender = sender(&dist_clip, dp);
    let log = dir.path().join("pts.ndjson");
    let (mut vqm, stderr) = spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args(["-m", "psnr", "--align", "pts", "--sync", "auto:1s"])
            .args(["--stall-timeout", "1", "--log"])
            .arg(&log),
    );
    let synced = |r: &[Value], from: &str| match r
        .iter()
        .position(|x| x["kind"] == from || x["type"] == from)
    {
        Some(i) => match r[i..].iter().position(|x| x["kind"] == "sync") {
            Some(j) => frames_of(&r[i + j..]).len() >= 15,
            None => false,
        },
        None => false,
    };
    wait_for(&log, Duration::from_secs(40), "pairs after the sync", |r| {
        synced(r, "header")
    });
    dist_sender.0.kill().unwrap();
    dist_sender.0.wait().unwrap();
    wait_for(&log, Duration::from_secs(20), "stream_lost", |r| {
        count(r, "event", Some("stream_lost")) >= 1
    });
    // the new sender's timestamps start again where the first one's did
    let _dist_sender2 = sender(&dist_clip, dp);
    let recs = wait_for(
        &log,
        Duration::from_secs(40),
        "pairs after the re-sync",
        |r| synced(r, "stream_restored"),
    );
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let restored = recs
        .iter()
        .position(|x| x["kind"] == "stream_restored")
        .unwrap();
    let resync = restored
        + recs[restored..]
            .iter()
            .position(|x| x["kind"] == "sync")
            .unwrap();
    let after = frames_of(&recs[resync..]);
    for f in &after {
        assert!(f.get("sync").is_none(), "{f}");
        assert!(
            f["psnr_y"].as_f64().unwrap() > 25.0,
            "the right pictures: {f}"
        );
    }
    // paired by the learnt timelines: no frame refused for its timestamp
    let dropped = recs[resync..]
        .iter()
        .filter(|x| x["kind"] == "dropped")
        .count();
    assert!(dropped <= 2, "{dropped} dropped after the re-sync");
}

#[test]
fn still_pictures_never_raise_a_false_alert() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // colour bars: every offset pairs the same pictures
    let r = dir.path().join("bars.ts");
    let d = dir.path().join("bars_dist.ts");
    encode_pair("smptebars=s=320x180:r=25:d=2", "10", "28", &r, &d);
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let _ref_sender = sender(&r, rp);
    let _dist_sender = sender(&d, dp);
    let log = dir.path().join("bars.ndjson");
    let (mut vqm, stderr) = spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args(["-m", "psnr", "--sync", "auto:2s"])
            .args(["--alert", "psnr_y<30"])
            .arg("--log")
            .arg(&log),
    );
    let recs = wait_for(
        &log,
        Duration::from_secs(40),
        "pairs after the sync",
        |r| match r.iter().position(|x| x["kind"] == "sync") {
            Some(i) => frames_of(&r[i..]).len() >= 20,
            None => false,
        },
    );
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let sync = recs.iter().find(|x| x["kind"] == "sync").unwrap();
    assert!(sync["psnr"].as_f64().unwrap() > 30.0, "{sync}");
    for f in frames_of(&recs) {
        assert!(f["psnr_y"].as_f64().unwrap() > 30.0, "{f}");
    }
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(count(&all, "event", Some("alert")), 0, "no false alert");
}

/// vqm on two loopback UDP ports, psnr, a 1 s stall timeout and search
/// range, logging to `log`.
fn watch_udp(rp: u16, dp: u16, log: &Path) -> (Guard, std::thread::JoinHandle<String>) {
    spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args(["-m", "psnr", "--stall-timeout", "1", "--sync", "auto:1s"])
            .arg("--log")
            .arg(log),
    )
}

/// Waits until something else holds UDP port `port` (vqm's receiver).
fn wait_until_bound(port: u16) {
    let t0 = Instant::now();
    while UdpSocket::bind(("0.0.0.0", port)).is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "port {port} never bound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 320x180 testsrc2 clip of `secs` seconds in MPEG-TS (H.264 with
/// `bframes` B-frames) and its re-encode at `crf`, in `dir`.
fn testsrc_ts_pair(
    dir: &Path,
    stem: &str,
    bframes: &str,
    secs: &str,
    crf: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (r, d) = (
        dir.join(format!("{stem}.ts")),
        dir.join(format!("{stem}_dist.ts")),
    );
    let enc = [
        "-c:v", "libx264", "-g", "25", "-bf", bframes, "-pix_fmt", "yuv420p",
    ];
    let src = format!("testsrc2=s=320x180:r=25:d={secs}");
    let mut args = vec!["-f", "lavfi", "-i", &src];
    args.extend(enc);
    args.extend(["-f", "mpegts", s(&r)]);
    ffmpeg(&args);
    let mut args = vec!["-i", s(&r), "-crf", crf];
    args.extend(enc);
    args.extend(["-f", "mpegts", s(&d)]);
    ffmpeg(&args);
    (r, d)
}

#[test]
fn the_pictures_a_decoder_holds_at_a_loss_are_measured() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // B-frames: the decoder holds pictures back to reorder them, so the
    // last ones come out only when it is drained
    let (r, d) = testsrc_ts_pair(dir.path(), "b", "3", "2", "30");
    let (rp, dp) = (free_udp_port(), free_udp_port());
    let log = dir.path().join("drain.ndjson");
    let (mut vqm, stderr) = watch_udp(rp, dp, &log);
    wait_until_bound(rp);
    wait_until_bound(dp);
    // each sender sends its 50 frames once, then falls silent
    let (_a, _b) = (sender_looping(&r, rp, "0"), sender_looping(&d, dp, "0"));
    let recs = wait_for(&log, Duration::from_secs(30), "both losses", |r| {
        count(r, "event", Some("stream_lost")) >= 2
    });
    // the pairs of the flushed pictures are written before the losses
    std::thread::sleep(Duration::from_millis(500));
    let code = interrupt(&mut vqm.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    let frames = frames_of(&all);
    let refs: Vec<u64> = frames.iter().map(|f| int(&f["ref_frame"])).collect();
    let dists: Vec<u64> = frames.iter().map(|f| int(&f["dist_frame"])).collect();
    assert_eq!(refs, (0..50).collect::<Vec<u64>>(), "{recs:?}");
    assert_eq!(dists, (0..50).collect::<Vec<u64>>());
    assert_eq!(count(&all, "event", Some("decode_error")), 0, "{all:?}");
}

#[test]
fn a_udp_port_another_program_holds_is_a_clear_error() {
    let held = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_vqm"))
        .arg(format!("udp://127.0.0.1:{port}"))
        .arg(format!("udp://127.0.0.1:{}", free_udp_port()))
        .args(["-m", "psnr", "--live-timeout", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("'udp://127.0.0.1:{port}': cannot open: ")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn live_vmaf_scores_every_pair_as_the_file_run_alerts_and_is_served() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // coarse enough that VMAF stays below 97, not so coarse that the
    // sync search cannot match the streams
    let (r, d) = testsrc_ts_pair(dir.path(), "v", "2", "4", "36");
    let (rp, dp, pp) = (free_udp_port(), free_udp_port(), free_tcp_port());
    let log = dir.path().join("vmaf.ndjson");
    let rule = "vmaf<97 for 0.2s";
    let (mut monitor, stderr) = spawn_reading_stderr(
        Command::new(env!("CARGO_BIN_EXE_vqm"))
            .arg(format!("udp://127.0.0.1:{rp}"))
            .arg(format!("udp://127.0.0.1:{dp}"))
            .args(["-m", "psnr,vmaf", "--stall-timeout", "1", "--alert", rule])
            .args(["--sync", "auto:1s"])
            .args(["--prometheus", &format!("127.0.0.1:{pp}"), "--log"])
            .arg(&log),
    );
    wait_until_bound(rp);
    wait_until_bound(dp);
    let (_a, _b) = (sender_looping(&r, rp, "0"), sender_looping(&d, dp, "0"));
    wait_for(
        &log,
        Duration::from_secs(30),
        "the sync and VMAF frames",
        |r| count(r, "event", Some("sync")) >= 1 && count(r, "frame", None) >= 40,
    );
    // the page serves the latest frame's VMAF, as the log has it
    let page = scrape_matching_log(&log, pp);
    assert!(page.contains("vqm_vmaf{"), "{page}");
    wait_for(&log, Duration::from_secs(30), "both losses", |r| {
        count(r, "event", Some("stream_lost")) >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let code = interrupt(&mut monitor.0);
    let err = stderr.join().unwrap();
    assert_eq!(code, 3, "the alert: {err}");
    let all = ndjson(&std::fs::read_to_string(&log).unwrap());
    let frames = frames_of(&all);
    // every pair, in order, each with its score (the last one given when
    // libvmaf is flushed at the end)
    let refs: Vec<u64> = frames.iter().map(|f| int(&f["ref_frame"])).collect();
    assert_eq!(refs, (0..100).collect::<Vec<u64>>());
    // the same scores as a run on the files
    let file = records_ok(&vqm(&[s(&r), s(&d), "-m", "psnr,vmaf", "--log", "-", "-q"]));
    let want = frames_of(&file);
    assert_eq!(want.len(), 100);
    for (f, w) in frames.iter().zip(&want) {
        let got = f["vmaf"].as_f64().unwrap_or_else(|| panic!("{f}"));
        assert_eq!(got, w["vmaf"].as_f64().unwrap(), "{f}");
    }
    let alerts: Vec<&Value> = all.iter().filter(|r| r["kind"] == "alert").collect();
    assert!(!alerts.is_empty(), "{all:?}");
    assert_eq!(alerts[0]["rule"], rule);
    assert!(alerts[0]["value"].as_f64().unwrap() < 97.0);
    let last = all.last().unwrap();
    assert_eq!(last["type"], "summary");
    let mean = want
        .iter()
        .map(|f| f["vmaf"].as_f64().unwrap())
        .sum::<f64>()
        / 100.0;
    let got = last["metrics"]["vmaf"]["mean"].as_f64().unwrap();
    assert!((got - mean).abs() < 1e-9, "{got} vs {mean}");
}
