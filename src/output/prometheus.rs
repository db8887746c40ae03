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
//! - `vqm_up` (the run), `vqm_input_up` (each input, 0 while it is lost),
//!   `vqm_sync_pending`, `vqm_sync_offset_frames`, `vqm_sync_psnr_db`,
//!   `vqm_pts_seconds`, `vqm_lag_seconds`, `vqm_alignment_delay_seconds`;
//! - counters, present at 0 from the start: `vqm_frames_total`,
//!   `vqm_events_total{kind}` (every kind), `vqm_reconnects_total`.

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
    latest: Vec<f64>,
    window: [Vec<f64>; 3],
    frames: u64,
    last_pts: f64,
    lag: f64,
    align: f64,
    pending: bool,
    lost: bool,
    sync: Option<(f64, f64)>,
    events: [u64; EVENT_KINDS.len()],
    reconnects: u64,
}

impl Series {
    fn new(input: String, stream: String, role: Role, keys: usize) -> Self {
        Series {
            input,
            stream,
            role,
            latest: vec![f64::NAN; keys],
            window: std::array::from_fn(|_| vec![f64::NAN; keys]),
            frames: 0,
            last_pts: f64::NAN,
            lag: f64::NAN,
            align: f64::NAN,
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
        };
    }
    if let Some(stat) = key.strip_prefix("vmaf_") {
        // a bootstrap model's figures (vmaf_ci_p95_lo, ...)
        return KeySeries {
            family: "vqm_vmaf_bootstrap".to_string(),
            label: "figure",
            plane: stat.to_string(),
        };
    }
    if key == "psnr_hvs" {
        return KeySeries {
            family: "vqm_psnr_hvs_db".to_string(),
            label: "plane",
            plane: "all".to_string(),
        };
    }
    if key.starts_with("integer_") {
        return KeySeries {
            family: "vqm_vmaf_feature".to_string(),
            label: "feature",
            plane: key.to_string(),
        };
    }
    let (metric, plane) = key.rsplit_once('_').unwrap_or((key, ""));
    let unit = if metric.starts_with("psnr") {
        "_db"
    } else {
        ""
    };
    let clean: String = metric
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    KeySeries {
        family: format!("vqm_{clean}{unit}"),
        label: "plane",
        plane: plane.to_string(),
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
            "Latest per-frame value by plane (absent while the input is lost or its sync is pending).",
        );
        for s in st.distorted().filter(|s| scored(s)) {
            for (k, v) in st.keys.iter().zip(&s.latest) {
                if k.family == fam {
                    let _w = writeln!(
                        out,
                        "{fam}{{{},{}=\"{}\"}} {}",
                        s.labels(),
                        k.label,
                        escape(&k.plane),
                        num(*v)
                    );
                }
            }
        }
        let wname = format!("{fam}_window");
        family(
            &mut out,
            &wname,
            "gauge",
            "Mean, minimum and maximum over the rolling window, by plane.",
        );
        for s in st.distorted().filter(|s| scored(s)) {
            for (stat, values) in ["mean", "min", "max"].iter().zip(&s.window) {
                for (k, v) in st.keys.iter().zip(values) {
                    if k.family == fam {
                        let _w = writeln!(
                            out,
                            "{wname}{{{},{}=\"{}\",stat=\"{stat}\"}} {}",
                            s.labels(),
                            k.label,
                            escape(&k.plane),
                            num(*v)
                        );
                    }
                }
            }
        }
    }
    type Value = fn(&Series) -> String;
    let per_input: [(&str, &str, &str, Value); 7] = [
        (
            "vqm_alignment_delay_seconds",
            "gauge",
            "Live: between the arrivals of the latest pair's two frames (one input held back to meet the other's delay).",
            |s| num(s.align),
        ),
        (
            "vqm_lag_seconds",
            "gauge",
            "Live: from the later frame's arrival (on its input's real-time schedule) to the latest record.",
            |s| num(s.lag),
        ),
        (
            "vqm_frames_total",
            "counter",
            "Frame pairs measured (pending ones included).",
            |s| s.frames.to_string(),
        ),
        (
            "vqm_sync_pending",
            "gauge",
            "1 while the input's offset is not known for sure (its pairs are not scored as quality).",
            |s| u8::from(s.pending).to_string(),
        ),
        (
            "vqm_sync_offset_frames",
            "gauge",
            "Reference frame minus distorted frame of the offset found by the last sync (NaN before one).",
            |s| num(s.sync.map_or(f64::NAN, |x| x.0)),
        ),
        (
            "vqm_sync_psnr_db",
            "gauge",
            "Mean thumbnail luma PSNR of the last sync: its confidence (NaN before one).",
            |s| num(s.sync.map_or(f64::NAN, |x| x.1)),
        ),
        (
            "vqm_pts_seconds",
            "gauge",
            "Reference presentation time of the latest pair.",
            |s| num(s.last_pts),
        ),
    ];
    for (name, kind, help, value) in per_input {
        family(&mut out, name, kind, help);
        for s in st.distorted() {
            let _w = writeln!(out, "{name}{{{}}} {}", s.labels(), value(s));
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
        self.with(|st| {
            let n = h.keys.len();
            st.keys = h.keys.iter().map(|k| key_series(k)).collect();
            st.inputs =
                std::iter::once(Series::new(
                    "reference".to_string(),
                    h.reference.path.clone(),
                    Role::Reference,
                    n,
                ))
                .chain(h.distorted.iter().enumerate().map(|(i, d)| {
                    Series::new(i.to_string(), d.info.path.clone(), Role::Distorted, n)
                }))
                .collect();
        });
        Ok(())
    }
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        self.with(|st| {
            if let Some(s) = st.inputs.get_mut(f.input + 1) {
                // a pending pair may not be the right one: not a value
                if !f.pending {
                    for (d, v) in s.latest.iter_mut().zip(f.values) {
                        *d = *v;
                    }
                }
                s.pending = f.pending;
                s.lag = f.lag_ms.map_or(f64::NAN, |ms| ms / 1000.0);
                s.align = f.align_ms.map_or(f64::NAN, |ms| ms / 1000.0);
                s.frames += 1;
                s.last_pts = f.pts;
            }
        });
        Ok(())
    }
    fn window(&mut self, w: &WindowRecord<'_>, _json: &str) -> Result<(), Error> {
        self.with(|st| {
            if let Some(s) = st.inputs.get_mut(w.input + 1) {
                for (i, ws) in w.stats.iter().enumerate() {
                    for (series, v) in s.window.iter_mut().zip([ws.mean, ws.min, ws.max]) {
                        if let Some(m) = series.get_mut(i) {
                            *m = v;
                        }
                    }
                }
            }
        });
        Ok(())
    }
    fn event(&mut self, e: &Event, _json: &str) -> Result<(), Error> {
        self.with(|st| {
            let at = e.input.map_or(0, |i| i + 1);
            let Some(s) = st.inputs.get_mut(at) else {
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
        });
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
        for key in ["integer_adm2", "integer_vif_scale3", "integer_adm2_egl_1"] {
            let k = key_series(key);
            assert_eq!(
                (k.family.as_str(), k.label, k.plane.as_str()),
                ("vqm_vmaf_feature", "feature", key)
            );
        }
    }
}
