//! `--prometheus ADDR:PORT`: serves `/metrics` in the Prometheus text
//! exposition format (version 0.0.4) over HTTP/1.1 (hyper on a
//! single-threaded tokio runtime of its own thread: many connections at
//! once, keep-alive, GET and HEAD, bounded request size and header time).
//!
//! The series, every one labelled with its `input` and `stream`:
//! - one family per metric, the plane as a label and the unit in the name:
//!   `vqm_psnr_db{plane="y"}`, `vqm_ssim{plane="all"}`, …: the latest
//!   trusted frame value; `…_window{stat="mean|min|max"}` the rolling
//!   statistics. They are absent while the input or the reference is lost
//!   and while the input's sync is pending (no value is scored then).
//! - one histogram per metric, `vqm_frame_psnr_db{plane="y"}`, …: every
//!   trusted frame value (neither pending nor damaged), so that a dip
//!   between two scrapes still shows; fixed buckets by the metric's scale.
//! - `vqm_up` (the run), `vqm_input_up` (each input, 0 while it is lost),
//!   `vqm_sync_pending`, `vqm_sync_offset_frames`, `vqm_sync_psnr_db`,
//!   `vqm_pts_seconds`, `vqm_lag_seconds`, `vqm_alignment_delay_seconds`;
//! - counters, present at 0 from the start: `vqm_frames_total`,
//!   `vqm_events_total{kind}` (every kind), `vqm_reconnects_total`.
//!
//! A gauge whose value is not known (nothing trusted measured yet, no sync
//! found yet, a figure that is not a number) has no sample at all, never
//! `NaN`: its family keeps its `# HELP` and `# TYPE` lines.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};

use super::Sink;
use crate::error::Error;
use crate::output::records::{
    EVENT_KINDS, Event, EventKind, FrameRecord, Header, Role, WindowRecord,
};

/// Longest a client may take to send a request's headers.
const HEADER_TIME: Duration = Duration::from_secs(10);
/// Largest request buffer (a scrape's request is a few hundred bytes).
const MAX_REQUEST: usize = 16 * 1024;

/// One input's series.
struct Series {
    input: String,
    stream: String,
    role: Role,
    /// The latest trusted value per key (NaN: none yet).
    latest: Vec<f64>,
    window: [Vec<f64>; 3],
    /// Every trusted value per key.
    hist: Vec<Histogram>,
    frames: u64,
    last_pts: Option<f64>,
    lag: Option<f64>,
    align: Option<f64>,
    pending: bool,
    lost: bool,
    sync: Option<(f64, f64)>,
    events: [u64; EVENT_KINDS.len()],
    reconnects: u64,
}

impl Series {
    fn new(input: String, stream: String, role: Role, keys: &[KeySeries]) -> Self {
        let n = keys.len();
        Series {
            input,
            stream,
            role,
            latest: vec![f64::NAN; n],
            window: std::array::from_fn(|_| vec![f64::NAN; n]),
            hist: keys.iter().map(|k| Histogram::new(k.buckets)).collect(),
            frames: 0,
            last_pts: None,
            lag: None,
            align: None,
            pending: false,
            lost: false,
            sync: None,
            events: [0; EVENT_KINDS.len()],
            reconnects: 0,
        }
    }

    fn labels(&self) -> String {
        format!(
            "input=\"{}\",stream=\"{}\"",
            escape(&self.input),
            escape(&self.stream)
        )
    }
}

/// A Prometheus histogram: counts per bucket (each bucket's own, made
/// cumulative when served), their total and the sum of the values.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    /// Counts `v` in the first bucket whose bound is at least `v` (none:
    /// only in `+Inf`, the total).
    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

/// Bucket bounds of the per-frame histograms, by a key's scale.
/// PSNR-like figures in dB.
const DB_BUCKETS: &[f64] = &[
    20.0, 25.0, 30.0, 32.0, 34.0, 36.0, 38.0, 40.0, 45.0, 50.0, 60.0,
];
/// SSIM-like figures, 1 for identical pictures.
const UNIT_BUCKETS: &[f64] = &[0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0];
/// VMAF scores, 0 to 100.
const VMAF_BUCKETS: &[f64] = &[
    10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0,
];
/// Everything else (errors, divergences, entropies, CAMBI, VMAF's
/// elementary features): 1-2-5 steps over six decades.
const WIDE_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    200.0, 500.0, 1000.0,
];

/// A record key as a family and a label: `psnr_y` is `vqm_psnr_db` with
/// `plane="y"`; `vmaf` is `vqm_vmaf`, and VMAF's elementary features
/// (`--vmaf-features`) are `vqm_vmaf_feature` with `feature="integer_adm2"`.
struct KeySeries {
    family: String,
    /// The label's name: `plane`, `feature` for VMAF's features, `figure`
    /// for a bootstrap model's (`bagging`, `ci_p95_lo`, ...).
    label: &'static str,
    /// Its value.
    plane: String,
    /// The bounds of its histogram's buckets.
    buckets: &'static [f64],
}

impl KeySeries {
    /// The family of the per-frame histogram: `vqm_psnr_db` is
    /// `vqm_frame_psnr_db` (the unit stays last).
    fn histogram(&self) -> String {
        format!("vqm_frame_{}", self.family.trim_start_matches("vqm_"))
    }
}

fn key_series(key: &str) -> KeySeries {
    // libvmaf's figures that are not split into planes: a family each
    if matches!(
        key,
        "vmaf" | "cambi" | "ciede2000" | "float_ssim" | "float_ms_ssim"
    ) {
        return KeySeries {
            family: format!("vqm_{key}"),
            label: "plane",
            plane: String::new(),
            buckets: match key {
                "vmaf" => VMAF_BUCKETS,
                // 45 - 20·log10(ΔE): a decibel scale
                "ciede2000" => DB_BUCKETS,
                "cambi" => WIDE_BUCKETS,
                _ => UNIT_BUCKETS,
            },
        };
    }
    if let Some(stat) = key.strip_prefix("vmaf_") {
        // a bootstrap model's figures (vmaf_ci_p95_lo, ...)
        return KeySeries {
            family: "vqm_vmaf_bootstrap".to_string(),
            label: "figure",
            plane: stat.to_string(),
            buckets: if stat == "stddev" {
                WIDE_BUCKETS
            } else {
                VMAF_BUCKETS
            },
        };
    }
    if key == "psnr_hvs" {
        return KeySeries {
            family: "vqm_psnr_hvs_db".to_string(),
            label: "plane",
            plane: "all".to_string(),
            buckets: DB_BUCKETS,
        };
    }
    if key.starts_with("integer_") {
        return KeySeries {
            family: "vqm_vmaf_feature".to_string(),
            label: "feature",
            plane: key.to_string(),
            buckets: WIDE_BUCKETS,
        };
    }
    let (metric, plane) = key.rsplit_once('_').unwrap_or((key, ""));
    let (unit, buckets) = if metric.starts_with("psnr") {
        ("_db", DB_BUCKETS)
    } else if matches!(metric, "ssim" | "ms_ssim") {
        ("", UNIT_BUCKETS)
    } else {
        ("", WIDE_BUCKETS)
    };
    let clean: String = metric
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    KeySeries {
        family: format!("vqm_{clean}{unit}"),
        label: "plane",
        plane: plane.to_string(),
        buckets,
    }
}

#[derive(Default)]
struct State {
    keys: Vec<KeySeries>,
    /// The reference first, then the distorted inputs.
    inputs: Vec<Series>,
    finished: bool,
}

impl State {
    fn distorted(&self) -> impl Iterator<Item = &Series> {
        self.inputs.iter().skip(1)
    }

    fn header(&mut self, h: &Header) {
        self.keys = h.keys.iter().map(|k| key_series(k)).collect();
        let keys = &self.keys;
        self.inputs =
            std::iter::once(Series::new(
                "reference".to_string(),
                h.reference.path.clone(),
                Role::Reference,
                keys,
            ))
            .chain(h.distorted.iter().enumerate().map(|(i, d)| {
                Series::new(i.to_string(), d.info.path.clone(), Role::Distorted, keys)
            }))
            .collect();
    }

    fn frame(&mut self, f: &FrameRecord<'_>) {
        let Some(s) = self.inputs.get_mut(f.input + 1) else {
            return;
        };
        // a pending pair may not be the right one, a picture decoded from
        // damaged data says nothing of the encode: neither is a value
        if !f.pending && !f.damaged {
            for ((d, h), v) in s.latest.iter_mut().zip(&mut s.hist).zip(f.values) {
                *d = *v;
                if v.is_finite() {
                    h.observe(*v);
                }
            }
        }
        s.pending = f.pending;
        s.lag = f.lag_ms.map(|ms| ms / 1000.0);
        s.align = f.align_ms.map(|ms| ms / 1000.0);
        s.frames += 1;
        s.last_pts = Some(f.pts);
    }

    fn window(&mut self, w: &WindowRecord<'_>) {
        if let Some(s) = self.inputs.get_mut(w.input + 1) {
            for (i, ws) in w.stats.iter().enumerate() {
                for (series, v) in s.window.iter_mut().zip([ws.mean, ws.min, ws.max]) {
                    if let Some(m) = series.get_mut(i) {
                        *m = v;
                    }
                }
            }
        }
    }

    fn event(&mut self, e: &Event) {
        let at = e.input.map_or(0, |i| i + 1);
        let Some(s) = self.inputs.get_mut(at) else {
            return;
        };
        s.events[e.kind.index()] += 1;
        match &e.kind {
            EventKind::StreamLost { .. } => s.lost = true,
            EventKind::StreamRestored { .. } => {
                s.lost = false;
                s.reconnects += 1;
            }
            EventKind::Sync {
                offset,
                psnr: Some(p),
                ..
            } => {
                s.sync = Some((*offset as f64, *p));
                s.pending = false;
            }
            EventKind::Sync { .. } => s.pending = false,
            EventKind::SyncUncertain { .. } => s.pending = true,
            _ => {}
        }
    }
}

/// The sink that feeds the `/metrics` page.
pub struct PrometheusSink {
    state: Arc<Mutex<State>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".to_string()
    } else if v > 0.0 {
        "+Inf".to_string()
    } else {
        "-Inf".to_string()
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _w = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A gauge's sample, or nothing while its value is not known (not a
/// number): a series is absent rather than `NaN`.
fn gauge(out: &mut String, series: &str, v: Option<f64>) {
    if let Some(v) = v.filter(|v| v.is_finite()) {
        let _w = writeln!(out, "{series} {}", num(v));
    }
}

fn render(st: &State) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "vqm_up",
        "gauge",
        "1 while vqm runs, 0 once its inputs have ended.",
    );
    let _w = writeln!(out, "vqm_up {}", u8::from(!st.finished));
    family(
        &mut out,
        "vqm_input_up",
        "gauge",
        "1 while the input delivers, 0 while it is lost (reconnecting) or once the run has ended.",
    );
    for s in &st.inputs {
        let up = !s.lost && !st.finished;
        let _w = writeln!(
            out,
            "vqm_input_up{{{},role=\"{}\"}} {}",
            s.labels(),
            s.role.name(),
            u8::from(up)
        );
    }
    let ref_lost = st.inputs.first().is_some_and(|r| r.lost);
    // per-metric families, in key order, each written once
    let mut families: Vec<&str> = Vec::new();
    for k in &st.keys {
        if !families.contains(&k.family.as_str()) {
            families.push(&k.family);
        }
    }
    for fam in families {
        let scored = |s: &Series| !s.lost && !ref_lost && !s.pending;
        family(
            &mut out,
            fam,
            "gauge",
            "Latest trusted per-frame value by plane (absent before one, while the input is lost or its sync is pending).",
        );
        for s in st.distorted().filter(|s| scored(s)) {
            for (k, v) in st.keys.iter().zip(&s.latest) {
                if k.family == fam {
                    let series = format!(
                        "{fam}{{{},{}=\"{}\"}}",
                        s.labels(),
                        k.label,
                        escape(&k.plane)
                    );
                    gauge(&mut out, &series, Some(*v));
                }
            }
        }
        let wname = format!("{fam}_window");
        family(
            &mut out,
            &wname,
            "gauge",
            "Mean, minimum and maximum over the rolling window, by plane (absent before the first window).",
        );
        for s in st.distorted().filter(|s| scored(s)) {
            for (stat, values) in ["mean", "min", "max"].iter().zip(&s.window) {
                for (k, v) in st.keys.iter().zip(values) {
                    if k.family == fam {
                        let series = format!(
                            "{wname}{{{},{}=\"{}\",stat=\"{stat}\"}}",
                            s.labels(),
                            k.label,
                            escape(&k.plane)
                        );
                        gauge(&mut out, &series, Some(*v));
                    }
                }
            }
        }
        let hname = st
            .keys
            .iter()
            .find(|k| k.family == fam)
            .map_or_else(String::new, KeySeries::histogram);
        family(
            &mut out,
            &hname,
            "histogram",
            "Per-frame values of the trusted pairs (neither sync-pending nor damaged), by plane: a dip between scrapes shows in the low buckets.",
        );
        for s in st.distorted() {
            for (k, h) in st.keys.iter().zip(&s.hist) {
                if k.family != fam {
                    continue;
                }
                let labels = format!("{},{}=\"{}\"", s.labels(), k.label, escape(&k.plane));
                let mut below = 0;
                for (b, n) in h.bounds.iter().zip(&h.counts) {
                    below += n;
                    let _w = writeln!(out, "{hname}_bucket{{{labels},le=\"{}\"}} {below}", num(*b));
                }
                let _w = writeln!(
                    out,
                    "{hname}_bucket{{{labels},le=\"+Inf\"}} {}\n{hname}_sum{{{labels}}} {}\n{hname}_count{{{labels}}} {}",
                    h.count,
                    num(h.sum),
                    h.count
                );
            }
        }
    }
    type Value = fn(&Series) -> Option<f64>;
    let per_input: [(&str, &str, Value); 6] = [
        (
            "vqm_alignment_delay_seconds",
            "Live: between the arrivals of the latest pair's two frames (one input held back to meet the other's delay).",
            |s| s.align,
        ),
        (
            "vqm_lag_seconds",
            "Live: from the later frame's arrival (on its input's real-time schedule) to the latest record.",
            |s| s.lag,
        ),
        (
            "vqm_sync_pending",
            "1 while the input's offset is not known for sure (its pairs are not scored as quality).",
            |s| Some(f64::from(u8::from(s.pending))),
        ),
        (
            "vqm_sync_offset_frames",
            "Reference frame minus distorted frame of the offset found by the last sync (absent before one).",
            |s| s.sync.map(|x| x.0),
        ),
        (
            "vqm_sync_psnr_db",
            "Mean thumbnail luma PSNR of the last sync: its confidence (absent before one).",
            |s| s.sync.map(|x| x.1),
        ),
        (
            "vqm_pts_seconds",
            "Reference presentation time of the latest pair (absent before one).",
            |s| s.last_pts,
        ),
    ];
    family(
        &mut out,
        "vqm_frames_total",
        "counter",
        "Frame pairs measured (pending ones included).",
    );
    for s in st.distorted() {
        let _w = writeln!(out, "vqm_frames_total{{{}}} {}", s.labels(), s.frames);
    }
    for (name, help, value) in per_input {
        family(&mut out, name, "gauge", help);
        for s in st.distorted() {
            gauge(&mut out, &format!("{name}{{{}}}", s.labels()), value(s));
        }
    }
    family(
        &mut out,
        "vqm_events_total",
        "counter",
        "Events by kind (alert, recovered, stream_lost, sync, ...), by the input they concern.",
    );
    for s in &st.inputs {
        for (kind, n) in EVENT_KINDS.iter().zip(&s.events) {
            let _w = writeln!(
                out,
                "vqm_events_total{{{},kind=\"{kind}\"}} {n}",
                s.labels()
            );
        }
    }
    family(
        &mut out,
        "vqm_reconnects_total",
        "counter",
        "Times a lost live input was restored.",
    );
    for s in &st.inputs {
        let _w = writeln!(
            out,
            "vqm_reconnects_total{{{},role=\"{}\"}} {}",
            s.labels(),
            s.role.name(),
            s.reconnects
        );
    }
    out
}

/// The answer to one request: `/metrics` to GET and HEAD (hyper sends no
/// body to HEAD), 405 to other methods there, 404 elsewhere.
fn respond(req: &Request<hyper::body::Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    let path = req.uri().path();
    let mut r = if path != "/metrics" {
        text(StatusCode::NOT_FOUND, "vqm serves /metrics\n".to_string())
    } else if req.method() == Method::GET || req.method() == Method::HEAD {
        let body = render(&state.lock().unwrap_or_else(PoisonError::into_inner));
        let mut r = text(StatusCode::OK, body);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return r;
    } else {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "/metrics answers GET and HEAD\n".to_string(),
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        r
    };
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Accepts connections for ever, each served on its own task.
async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // out of descriptors, say: let connections close first
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let st = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let r = respond(&req, &st);
                async move { Ok::<_, Infallible>(r) }
            });
            // a client that breaks off is no concern of the run
            let _closed = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIME)
                .max_buf_size(MAX_REQUEST)
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

impl PrometheusSink {
    /// Binds `addr` now (a bad address is a usage error before decoding)
    /// and serves `/metrics` on a background thread.
    pub fn bind(addr: &str) -> Result<(Self, std::net::SocketAddr), Error> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| Error::Usage(format!("--prometheus '{addr}': cannot listen: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("--prometheus '{addr}': {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Usage(format!("--prometheus '{addr}': {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the metrics server: {e}")))?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::Builder::new()
            .name("vqm-prometheus".to_string())
            .spawn(move || runtime.block_on(serve(listener, st)))
            .map_err(|e| Error::Internal(format!("cannot start the metrics server: {e}")))?;
        Ok((PrometheusSink { state }, local))
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl Sink for PrometheusSink {
    fn header(&mut self, h: &Header, _json: &str) -> Result<(), Error> {
        self.with(|st| st.header(h));
        Ok(())
    }
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        self.with(|st| st.frame(f));
        Ok(())
    }
    fn window(&mut self, w: &WindowRecord<'_>, _json: &str) -> Result<(), Error> {
        self.with(|st| st.window(w));
        Ok(())
    }
    fn event(&mut self, e: &Event, _json: &str) -> Result<(), Error> {
        self.with(|st| st.event(e));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.with(|st| st.finished = true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's state after its header: the reference and one distorted
    /// input, `keys` measured.
    fn state(keys: &[&str]) -> State {
        let keys: Vec<KeySeries> = keys.iter().map(|k| key_series(k)).collect();
        let inputs = vec![
            Series::new("reference".into(), "r.ts".into(), Role::Reference, &keys),
            Series::new("0".into(), "d.ts".into(), Role::Distorted, &keys),
        ];
        State {
            keys,
            inputs,
            finished: false,
        }
    }

    fn frame(st: &mut State, values: &[f64], pending: bool, damaged: bool) {
        let keys: Vec<String> = Vec::new();
        st.frame(&FrameRecord {
            input: 0,
            path: "d.ts",
            frame: 0,
            ref_frame: 0,
            dist_frame: 0,
            pts: 1.5,
            keys: &keys,
            values,
            lag_ms: None,
            align_ms: None,
            pending,
            damaged,
        });
    }

    /// The page's samples by series.
    fn samples(page: &str) -> Vec<(String, String)> {
        page.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn value<'a>(page: &'a [(String, String)], series: &str) -> Option<&'a str> {
        page.iter()
            .find(|(k, _)| k == series)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_histogram_counts_trusted_values_cumulatively() {
        let mut st = state(&["psnr_y", "ssim_y"]);
        // 25 is in its own bucket (le), 70 only in +Inf
        for v in [29.0, 31.0, 70.0, 25.0] {
            frame(&mut st, &[v, 0.96], false, false);
        }
        // pending, damaged, not a number: not counted
        frame(&mut st, &[10.0, 0.1], true, false);
        frame(&mut st, &[11.0, 0.1], false, true);
        frame(&mut st, &[f64::NAN, 0.1], false, false);
        let page = render(&st);
        let got = samples(&page);
        let l = "input=\"0\",stream=\"d.ts\",plane=\"y\"";
        let bucket = |le: &str| {
            value(
                &got,
                &format!("vqm_frame_psnr_db_bucket{{{l},le=\"{le}\"}}"),
            )
            .unwrap()
        };
        for (le, n) in [
            ("20", "0"),
            ("25", "1"),
            ("30", "2"),
            ("32", "3"),
            ("45", "3"),
            ("60", "3"),
            ("+Inf", "4"),
        ] {
            assert_eq!(bucket(le), n, "le={le}\n{page}");
        }
        assert_eq!(
            value(&got, &format!("vqm_frame_psnr_db_count{{{l}}}")),
            Some("4")
        );
        assert_eq!(
            value(&got, &format!("vqm_frame_psnr_db_sum{{{l}}}")),
            Some("155")
        );
        // the other key: its own buckets, 0.1 below the first
        let ssim =
            |le: &str| value(&got, &format!("vqm_frame_ssim_bucket{{{l},le=\"{le}\"}}")).unwrap();
        assert_eq!((ssim("0.5"), ssim("0.95"), ssim("0.97")), ("1", "1", "5"));
        assert_eq!(ssim("+Inf"), "5");
        assert!(
            page.contains("# TYPE vqm_frame_psnr_db histogram\n"),
            "{page}"
        );
        // the bounds rise, and every bucket holds the ones below
        let counts: Vec<u64> = got
            .iter()
            .filter(|(k, _)| k.starts_with("vqm_frame_psnr_db_bucket"))
            .map(|(_, v)| v.parse().unwrap())
            .collect();
        assert_eq!(counts.len(), DB_BUCKETS.len() + 1);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        // the latest gauge: the last frame's value was not a number
        assert_eq!(value(&got, &format!("vqm_psnr_db{{{l}}}")), None);
        assert_eq!(value(&got, &format!("vqm_ssim{{{l}}}")), Some("0.1"));
    }

    #[test]
    fn gauges_are_absent_until_known_never_nan() {
        let mut st = state(&["psnr_y"]);
        let l = "input=\"0\",stream=\"d.ts\"";
        let lp = format!("{l},plane=\"y\"");
        let check = |st: &State, present: &[&str], absent: &[&str]| {
            let page = render(st);
            assert!(!page.contains("NaN"), "{page}");
            let got = samples(&page);
            for s in present {
                assert!(value(&got, s).is_some(), "{s} missing:\n{page}");
            }
            for s in absent {
                assert!(value(&got, s).is_none(), "{s} served:\n{page}");
            }
            // every family keeps its HELP and TYPE
            for name in ["vqm_psnr_db", "vqm_sync_offset_frames", "vqm_lag_seconds"] {
                assert!(page.contains(&format!("# TYPE {name} gauge\n")), "{page}");
            }
        };
        let psnr = format!("vqm_psnr_db{{{lp}}}");
        let mean = format!("vqm_psnr_db_window{{{lp},stat=\"mean\"}}");
        let offset = format!("vqm_sync_offset_frames{{{l}}}");
        let confidence = format!("vqm_sync_psnr_db{{{l}}}");
        let pts = format!("vqm_pts_seconds{{{l}}}");
        let lag = format!("vqm_lag_seconds{{{l}}}");
        let align = format!("vqm_alignment_delay_seconds{{{l}}}");
        let count = format!("vqm_frame_psnr_db_count{{{lp}}}");
        let frames = format!("vqm_frames_total{{{l}}}");
        // the header only: counters and histograms at 0, no gauge of a value
        check(
            &st,
            &[&count, &frames],
            &[&psnr, &mean, &offset, &confidence, &pts, &lag, &align],
        );
        // a pair measured while the sync is pending
        st.event(&Event {
            kind: EventKind::SyncUncertain {
                reason: "searching",
                offset: 0,
                psnr: None,
                runner_up: None,
            },
            input: Some(0),
            source: None,
            message: String::new(),
        });
        frame(&mut st, &[30.0], true, false);
        check(&st, &[&pts, &count], &[&psnr, &mean, &offset, &confidence]);
        // the sync accepted, no trusted pair yet: still nothing to show
        st.event(&Event {
            kind: EventKind::Sync {
                offset: 2,
                psnr: Some(41.5),
                runner_up: None,
                keeps_pending: false,
                delay: None,
                shift: None,
            },
            input: Some(0),
            source: None,
            message: String::new(),
        });
        check(&st, &[&offset, &confidence], &[&psnr, &mean]);
        // a damaged picture is not a value either
        frame(&mut st, &[12.0], false, true);
        check(&st, &[&offset], &[&psnr, &mean]);
        // the first trusted pair
        frame(&mut st, &[33.0], false, false);
        check(&st, &[&psnr], &[&mean, &lag, &align]);
        assert_eq!(value(&samples(&render(&st)), &psnr), Some("33"));
        assert_eq!(value(&samples(&render(&st)), &count), Some("1"));
    }

    #[test]
    fn keys_become_a_family_with_its_unit_and_a_plane() {
        let k = key_series("psnr_y");
        assert_eq!((k.family.as_str(), k.plane.as_str()), ("vqm_psnr_db", "y"));
        let k = key_series("ms_ssim_all");
        assert_eq!(
            (k.family.as_str(), k.plane.as_str()),
            ("vqm_ms_ssim", "all")
        );
        let k = key_series("entropy_ref_u");
        assert_eq!(
            (k.family.as_str(), k.plane.as_str()),
            ("vqm_entropy_ref", "u")
        );
        let k = key_series("psnr_yuv611");
        assert_eq!(
            (k.family.as_str(), k.plane.as_str()),
            ("vqm_psnr_db", "yuv611")
        );
        let k = key_series("vmaf");
        assert_eq!((k.family.as_str(), k.plane.as_str()), ("vqm_vmaf", ""));
        // libvmaf's extractors keep to families of their own, apart from
        // vqm's PSNR and SSIM
        for (key, family, label, plane) in [
            ("float_ssim", "vqm_float_ssim", "plane", ""),
            ("float_ms_ssim", "vqm_float_ms_ssim", "plane", ""),
            ("cambi", "vqm_cambi", "plane", ""),
            ("ciede2000", "vqm_ciede2000", "plane", ""),
            ("psnr_hvs", "vqm_psnr_hvs_db", "plane", "all"),
            ("psnr_hvs_cb", "vqm_psnr_hvs_db", "plane", "cb"),
            (
                "vmaf_ci_p95_lo",
                "vqm_vmaf_bootstrap",
                "figure",
                "ci_p95_lo",
            ),
            ("vmaf_bagging", "vqm_vmaf_bootstrap", "figure", "bagging"),
        ] {
            let k = key_series(key);
            assert_eq!(
                (k.family.as_str(), k.label, k.plane.as_str()),
                (family, label, plane),
                "{key}"
            );
        }
        // the histogram: its family, with the unit last, and the buckets
        // of the key's scale
        for (key, histogram, buckets) in [
            ("psnr_avg", "vqm_frame_psnr_db", DB_BUCKETS),
            ("psnr_hvs_cb", "vqm_frame_psnr_hvs_db", DB_BUCKETS),
            ("ciede2000", "vqm_frame_ciede2000", DB_BUCKETS),
            ("ssim_all", "vqm_frame_ssim", UNIT_BUCKETS),
            ("ms_ssim_y", "vqm_frame_ms_ssim", UNIT_BUCKETS),
            ("float_ssim", "vqm_frame_float_ssim", UNIT_BUCKETS),
            ("vmaf", "vqm_frame_vmaf", VMAF_BUCKETS),
            ("vmaf_ci_p95_lo", "vqm_frame_vmaf_bootstrap", VMAF_BUCKETS),
            ("vmaf_stddev", "vqm_frame_vmaf_bootstrap", WIDE_BUCKETS),
            ("mse_y", "vqm_frame_mse", WIDE_BUCKETS),
            ("cambi", "vqm_frame_cambi", WIDE_BUCKETS),
            ("integer_adm2", "vqm_frame_vmaf_feature", WIDE_BUCKETS),
        ] {
            let k = key_series(key);
            assert_eq!((k.histogram().as_str(), k.buckets), (histogram, buckets));
        }
        for b in [DB_BUCKETS, UNIT_BUCKETS, VMAF_BUCKETS, WIDE_BUCKETS] {
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        }
        for key in ["integer_adm2", "integer_vif_scale3", "integer_adm2_egl_1"] {
            let k = key_series(key);
            assert_eq!(
                (k.family.as_str(), k.label, k.plane.as_str()),
                ("vqm_vmaf_feature", "feature", key)
            );
        }
    }
}
