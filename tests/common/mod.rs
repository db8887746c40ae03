//! Helpers shared by the integration tests: run the real binary, parse its
//! NDJSON, make small inputs with the ffmpeg CLI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The scheduler variables a batch reads: cleared for every run so that a
/// suite run inside a job array is not sharded by accident.
pub const SCHEDULER_VARS: [&str; 6] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "JOB_COMPLETION_INDEX",
    "VQM_SHARDS",
];

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture under tests/fixtures.
pub fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The 8-bit 4:2:0 fidelity pair (reference, distorted).
pub fn c420() -> (String, String) {
    (fixture("c420.ref.mkv"), fixture("c420.dist.mkv"))
}

/// A bundled sample.
pub fn sample(name: &str) -> String {
    root()
        .join("samples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Runs vqm with `args`, no stdin, and returns its output.
pub fn vqm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("vqm runs")
}

/// Exit code, stdout and stderr as text.
pub fn outcome(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The records a successful run printed (panics with its stderr if the
/// run did not exit 0).
pub fn records_ok(o: &Output) -> Vec<Value> {
    let (code, out, err) = outcome(o);
    assert_eq!(code, 0, "{err}");
    ndjson(&out)
}

/// Re-encodes `src` as lossless, all-intra H.264 in MPEG-TS at `dst` (a
/// stream whose every frame decodes on its own).
pub fn lossless_intra_ts(src: &str, dst: &str) {
    ffmpeg(&[
        "-i", src, "-c:v", "libx264", "-qp", "0", "-g", "1", "-f", "mpegts", dst,
    ]);
}

/// Parses NDJSON: every line must be one whole JSON object.
pub fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Records of one type.
pub fn of_type<'a>(recs: &'a [Value], t: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == t).collect()
}

/// Runs the ffmpeg CLI quietly; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg CLI is installed (.ci/run installs it)");
    assert!(
        o.status.success(),
        "ffmpeg {:?} failed: {}",
        args,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `ffprobe -v error ARGS`: its output lines, trimmed, without empty ones.
pub fn ffprobe(args: &[&str]) -> Vec<String> {
    let o = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .output()
        .expect("ffprobe (installed with the ffmpeg CLI)");
    assert!(
        o.status.success(),
        "ffprobe {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The picture size of `path`'s first video stream, by ffprobe.
pub fn picture_size(path: &str) -> (usize, usize) {
    let size = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0",
        path,
    ]);
    let mut wh = size[0].split(',').map(|v| v.parse::<usize>().unwrap());
    (wh.next().unwrap(), wh.next().unwrap())
}

/// `p` as a str.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Relative difference.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

/// The fidelity clips of tests/fixtures, each with a golden file in
/// tests/golden written by tests/golden.py.
pub const CLIPS: [&str; 7] = [
    "c420",
    "c444odd",
    "c422p10",
    "c444p10odd",
    "c420p12",
    "cgbrpodd",
    "cgrayodd",
];

/// The golden values of `clip`.
pub fn golden(clip: &str) -> Value {
    let p = root().join("tests/golden").join(format!("{clip}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).expect("golden file")).expect("golden json")
}

/// The tolerance SPEC holds each key to, and whether it is relative.
pub fn tolerance(key: &str) -> (f64, bool) {
    match key {
        k if k.starts_with("mse") => (1e-6, true),
        k if k.starts_with("psnr") => (1e-3, false),
        k if k.starts_with("ms_ssim") => (2e-4, false),
        k if k.starts_with("ssim") => (1e-4, false),
        k if k.starts_with("bce") => (1e-5, false),
        k if k.starts_with("mae") || k.starts_with("smooth_l1") => (1e-6, false),
        k if k.starts_with("entropy") || k.starts_with("kl") || k.starts_with("xent") => {
            (1e-6, false)
        }
        other => panic!("no tolerance for {other}"),
    }
}

/// Compares frame records (or rows) with golden frames, key by key, each
/// within `tol(key)` (absolute, or relative when it says so).
pub fn compare(
    clip: &str,
    what: &str,
    ours: &[&Value],
    want: &[Value],
    tol: impl Fn(&str) -> (f64, bool),
) {
    assert_eq!(ours.len(), want.len(), "{clip} {what}: frame count");
    for (i, (o, w)) in ours.iter().zip(want).enumerate() {
        for (key, wv) in w.as_object().unwrap() {
            let wv = wv.as_f64().unwrap();
            let ov = o[key.as_str()]
                .as_f64()
                .unwrap_or_else(|| panic!("{clip} {what} frame {i}: no {key} in {o}"));
            let (t, relative) = tol(key);
            let ok = if relative {
                // FFmpeg stores MSE as float32 printed with %f: its printed
                // resolution bounds small values.
                rel(ov, wv) <= t || (ov - wv).abs() <= 6e-7
            } else {
                (ov - wv).abs() <= t
            };
            assert!(
                ok,
                "{clip} {what} frame {i} {key}: vqm {ov} vs reference {wv} (tolerance {t})"
            );
        }
    }
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _reaped = self.0.wait();
        }
    }
}

/// A TCP port that no socket uses now: see [`free_port`].
pub fn free_tcp_port() -> u16 {
    free_port()
}

/// A UDP port that no socket uses now: see [`free_port`].
pub fn free_udp_port() -> u16 {
    free_port()
}

/// A loopback port for a child to bind: below the kernel's ephemeral range
/// (so no outgoing connection takes it meanwhile), not in use by any TCP or
/// UDP socket (read from `/proc/net`), and never handed out twice by this
/// process. Probing by binding a socket ourselves would race: a child that
/// another test thread forks at that moment inherits the probe until its
/// `exec`, so the port is briefly held (or answers a connect) for the
/// wrong process.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|v| v.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let (lo, hi) = if range.0 >= 12_000 {
        (range.0 - 10_000, range.0 - 1)
    } else {
        (range.1 + 1, 65_535)
    };
    let span = hi - lo + 1;
    let used: std::collections::HashSet<u32> = ["tcp", "tcp6", "udp", "udp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(format!("/proc/net/{f}")).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let local = l.split_whitespace().nth(1)?;
                    u32::from_str_radix(local.rsplit(':').next()?, 16).ok()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // each test binary starts elsewhere in the range, so two running at once
    // rarely meet
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = lo + (start + n) % span;
        if !used.contains(&port) {
            return u16::try_from(port).unwrap();
        }
    }
    panic!("no free loopback port in {lo}..={hi}");
}

/// The series names a PromQL expression reads: identifiers outside quotes,
/// braces, ranges and `by (…)`-style label lists that are neither
/// functions (followed by `(`) nor keywords or aggregations.
pub fn promql_series(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut quote, mut braces, mut parens_by) = (0, None, 0, false);
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == '\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => {
                // a range or an offset: skip to its end
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
                // keywords, and the aggregations (which may come before
                // their `by` rather than their parenthesis)
                let keyword = matches!(
                    word.as_str(),
                    "by" | "without"
                        | "on"
                        | "ignoring"
                        | "group_left"
                        | "group_right"
                        | "and"
                        | "or"
                        | "unless"
                        | "offset"
                        | "bool"
                        | "sum"
                        | "min"
                        | "max"
                        | "avg"
                        | "count"
                        | "group"
                        | "stddev"
                        | "stdvar"
                        | "topk"
                        | "bottomk"
                        | "quantile"
                        | "count_values"
                );
                if matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    parens_by = true;
                } else if braces == 0 && !keyword && !parens_by && next != Some('(') {
                    out.push(word);
                }
                continue;
            }
            ')' => parens_by = false,
            _ => {}
        }
        i += 1;
    }
    out
}

/// The names the recording rules of deploy/prometheus/vqm-rules.yml record.
pub fn recorded_series() -> Vec<String> {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/vqm-rules.yml")).unwrap();
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Checks that every series `expr` reads is one a vqm `/metrics` `body`
/// serves (a family with a `# TYPE` line, or the `_bucket`, `_sum` or
/// `_count` of a histogram), one the fleet's recording rules record, or
/// Prometheus' own `up`.
pub fn assert_served(expr: &str, body: &str, what: &str) {
    let recorded = recorded_series();
    let series = promql_series(expr);
    assert!(!series.is_empty(), "{what}: no series in {expr}");
    for name in series {
        let histogram = ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|f| body.contains(&format!("\n# TYPE {f} histogram\n")))
        });
        let ok = name == "up"
            || histogram
            || recorded.contains(&name)
            || body
                .lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} ")));
        assert!(
            ok,
            "{what} reads {name} ({expr}), which /metrics does not serve"
        );
    }
}

/// `clip` in real time to `port`, looped `loops` more times (-1: forever).
pub fn sender_looping(clip: &Path, port: u16, loops: &str) -> Guard {
    Guard(
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
            .arg(clip)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg CLI"),
    )
}

/// A 2 s live test pair (reference, distorted at CRF 35) of 320x180 at 25
/// fps in MPEG-TS, looping well: a key frame every 10 frames, so a
/// restarted stream decodes again quickly.
pub fn make_clips(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
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
