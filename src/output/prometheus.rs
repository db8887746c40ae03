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
    /// Live: the delay between the inputs' arrivals the last sync found.
    delay: Option<f64>,
    /// Live: one pair in this many is measured (1 unless overloaded).
    every: f64,
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
            delay: None,
            every: 1.0,
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
                delay,
                ..
            } => {
                s.sync = Some((*offset as f64, *p));
                s.delay = delay.or(s.delay);
                s.pending = false;
            }
            EventKind::Overload { every, .. } => s.every = *every as f64,
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
    let per_input: [(&str, &str, Value); 8] = [
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
            "vqm_stream_delay_seconds",
            "Live: how much later the distorted input's pictures arrive than the same reference pictures, as the last sync found (absent before one).",
            |s| s.delay,
        ),
        (
            "vqm_measured_every",
            "Live: one pair in this many is measured (1 unless the monitor cannot keep real time).",
            |s| Some(s.every),
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

mod series;

use series::{Histogram, KeySeries, key_series};

#[cfg(test)]
mod tests;
