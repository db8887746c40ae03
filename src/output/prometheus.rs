//! `--prometheus ADDR:PORT`: serves `/metrics` in the Prometheus text
//! exposition format (version 0.0.4) from a small HTTP server on its own
//! thread. The sink side keeps the latest and rolling values of every key,
//! and counters of frames, events and reconnects.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::Sink;
use crate::error::Error;
use crate::output::records::{Event, EventKind, FrameRecord, Header, WindowRecord};

#[derive(Default)]
struct InputSeries {
    stream: String,
    latest: Vec<f64>,
    window_mean: Vec<f64>,
    window_min: Vec<f64>,
    window_max: Vec<f64>,
    frames: u64,
    last_pts: f64,
    /// The latest pair was measured while the sync was pending.
    pending: bool,
}

#[derive(Default)]
struct State {
    keys: Vec<String>,
    inputs: Vec<InputSeries>,
    events: BTreeMap<(String, String), u64>,
    reconnects: BTreeMap<(String, String), u64>,
    finished: bool,
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

fn render(st: &State) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _w = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "vqm_up",
        "gauge",
        "1 while vqm runs, 0 once its inputs have ended.",
    );
    let _w = writeln!(out, "vqm_up {}", if st.finished { 0 } else { 1 });
    type Pick = fn(&InputSeries) -> &Vec<f64>;
    let gauges: [(&str, &str, Pick); 4] = [
        (
            "vqm_metric",
            "Latest per-frame value of each record key.",
            |s| &s.latest,
        ),
        (
            "vqm_metric_window_mean",
            "Mean of each key over the rolling window.",
            |s| &s.window_mean,
        ),
        (
            "vqm_metric_window_min",
            "Minimum of each key over the rolling window.",
            |s| &s.window_min,
        ),
        (
            "vqm_metric_window_max",
            "Maximum of each key over the rolling window.",
            |s| &s.window_max,
        ),
    ];
    for (name, help, get) in gauges {
        family(&mut out, name, "gauge", help);
        for (i, s) in st.inputs.iter().enumerate() {
            for (k, v) in st.keys.iter().zip(get(s)) {
                let _w = writeln!(
                    out,
                    "{name}{{input=\"{i}\",stream=\"{}\",key=\"{}\"}} {}",
                    escape(&s.stream),
                    escape(k),
                    num(*v)
                );
            }
        }
    }
    family(
        &mut out,
        "vqm_frames_total",
        "counter",
        "Frame pairs measured.",
    );
    for (i, s) in st.inputs.iter().enumerate() {
        let _w = writeln!(
            out,
            "vqm_frames_total{{input=\"{i}\",stream=\"{}\"}} {}",
            escape(&s.stream),
            s.frames
        );
    }
    family(
        &mut out,
        "vqm_sync_pending",
        "gauge",
        "1 while the input's offset is not known for sure (its pairs are not scored as quality).",
    );
    for (i, s) in st.inputs.iter().enumerate() {
        let _w = writeln!(
            out,
            "vqm_sync_pending{{input=\"{i}\",stream=\"{}\"}} {}",
            escape(&s.stream),
            u8::from(s.pending)
        );
    }
    family(
        &mut out,
        "vqm_pts_seconds",
        "gauge",
        "Reference presentation time of the latest pair.",
    );
    for (i, s) in st.inputs.iter().enumerate() {
        let _w = writeln!(
            out,
            "vqm_pts_seconds{{input=\"{i}\",stream=\"{}\"}} {}",
            escape(&s.stream),
            num(s.last_pts)
        );
    }
    family(
        &mut out,
        "vqm_events_total",
        "counter",
        "Events by kind (alert, recovered, stream_lost, frozen, ...).",
    );
    for ((input, kind), n) in &st.events {
        let _w = writeln!(
            out,
            "vqm_events_total{{input=\"{}\",kind=\"{}\"}} {n}",
            escape(input),
            escape(kind)
        );
    }
    family(
        &mut out,
        "vqm_reconnects_total",
        "counter",
        "Times a lost live input was restored.",
    );
    for ((role, stream), n) in &st.reconnects {
        let _w = writeln!(
            out,
            "vqm_reconnects_total{{role=\"{}\",stream=\"{}\"}} {n}",
            escape(role),
            escape(stream)
        );
    }
    out
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    // A misbehaving client must not hold the server: short timeouts.
    if conn.set_read_timeout(Some(Duration::from_secs(2))).is_err()
        || conn
            .set_write_timeout(Some(Duration::from_secs(2)))
            .is_err()
    {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut req = Vec::new();
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&req);
    let first = line.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) =
        if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
            let st = state.lock().unwrap_or_else(PoisonError::into_inner);
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                render(&st),
            )
        } else {
            (
                "404 Not Found",
                "text/plain; charset=utf-8",
                "vqm serves /metrics\n".to_string(),
            )
        };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The scraper may have gone; nothing to do about a failed write.
    if conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(body.as_bytes()))
        .is_err()
    {
        // dropped connection
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
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::Builder::new()
            .name("vqm-prometheus".to_string())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    serve(conn, &st);
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the metrics server: {e}")))?;
        Ok((PrometheusSink { state }, local))
    }
}

impl Sink for PrometheusSink {
    fn header(&mut self, h: &Header, _json: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        {
            st.keys = h.keys.clone();
            let n = h.keys.len();
            st.inputs = h
                .distorted
                .iter()
                .map(|d| InputSeries {
                    stream: d.info.path.clone(),
                    latest: vec![f64::NAN; n],
                    window_mean: vec![f64::NAN; n],
                    window_min: vec![f64::NAN; n],
                    window_max: vec![f64::NAN; n],
                    frames: 0,
                    last_pts: f64::NAN,
                    pending: false,
                })
                .collect();
        }
        Ok(())
    }
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        {
            if let Some(s) = st.inputs.get_mut(f.input) {
                // a pending pair may not be the right one: the quality
                // gauges keep their last trusted values
                if !f.pending {
                    for (d, v) in s.latest.iter_mut().zip(f.values) {
                        *d = *v;
                    }
                }
                s.pending = f.pending;
                s.frames += 1;
                s.last_pts = f.pts;
            }
        }
        Ok(())
    }
    fn window(&mut self, w: &WindowRecord<'_>, _json: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        {
            if let Some(s) = st.inputs.get_mut(w.input) {
                for (i, ws) in w.stats.iter().enumerate() {
                    if let Some(m) = s.window_mean.get_mut(i) {
                        *m = ws.mean;
                    }
                    if let Some(m) = s.window_min.get_mut(i) {
                        *m = ws.min;
                    }
                    if let Some(m) = s.window_max.get_mut(i) {
                        *m = ws.max;
                    }
                }
            }
        }
        Ok(())
    }
    fn event(&mut self, e: &Event, _json: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let input = match e.input {
                Some(i) => i.to_string(),
                None => "reference".to_string(),
            };
            *st.events
                .entry((input, e.kind.name().to_string()))
                .or_insert(0) += 1;
            if let (EventKind::StreamRestored { .. }, Some((role, path))) = (&e.kind, &e.source) {
                let (role, path) = (role.name().to_string(), path.clone());
                *st.reconnects.entry((role, path)).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished = true;
        Ok(())
    }
}
