//! The ordered aggregator: restores frame order, writes frame, window and
//! event records, keeps the rolling windows, runs what needs the previous
//! frame (frozen and black detection, alert rules) and pools the summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::alert::{Change, Rule, Tracker};
use crate::error::Error;
use crate::frame::{Frame, Samples};
use crate::gate::{Gate, GateResult};
use crate::metrics::psnr::psnr_from_mse;
use crate::metrics::{Layout, Row};
use crate::pair::PairCounts;
use crate::record::{Event, FrameRecord, Header, Record, Summary, WindowRecord};
use crate::sink::Sink;
use crate::stats::{PooledKey, Rolling, WindowSpec};

/// Called with each warning (one line, no prefix).
pub type Warn = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// What the detectors need of a pair, computed by the worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signature {
    /// Hash of the reference luma.
    pub ref_hash: u64,
    /// Hash of the distorted luma.
    pub dist_hash: u64,
    /// The reference looks black.
    pub ref_black: bool,
    /// The distorted picture looks black.
    pub dist_black: bool,
}

/// A luma plane is "black" when its mean is at most this share of peak…
pub const BLACK_MEAN: f64 = 0.125;
/// …and its standard deviation at most this share of peak.
pub const BLACK_STDDEV: f64 = 0.02;

/// Accumulates a luma plane's identity hash and exact sums, row by row
/// (the decoder feeds each row right after copying it, while it is hot in
/// cache).
#[derive(Debug, Clone, Copy)]
pub struct SigAcc {
    h: u64,
    sum: u64,
    sq: u64,
    n: u64,
}

impl Default for SigAcc {
    fn default() -> Self {
        SigAcc {
            h: 0x243f_6a88_85a3_08d3,
            sum: 0,
            sq: 0,
            n: 0,
        }
    }
}

#[inline(always)]
fn mix(h: u64, a: u64, b: u64) -> u64 {
    let h = (h ^ a).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
    (h ^ b).wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(29)
}

impl SigAcc {
    /// Feeds one row of 8-bit samples: per chunk the sum, the sum of
    /// squares and a position-weighted sum (so moved samples change it),
    /// mixed into the hash in order.
    #[inline(always)]
    pub fn feed_u8(&mut self, row: &[u8]) {
        let level = crate::metrics::simd::cpu_level();
        for c in row.chunks(1024) {
            let (s1, s2, sw) = chunk_sums_u8(c, level);
            self.h = mix(self.h, s1 as u64 | ((sw as u64) << 32), s2 as u64);
            self.sum += s1 as u64;
            self.sq += s2 as u64;
        }
        self.n += row.len() as u64;
    }

    /// Feeds one row of 9–16-bit samples.
    #[inline(always)]
    pub fn feed_u16(&mut self, row: &[u16]) {
        for c in row.chunks(1024) {
            let (mut s1, mut s2, mut sw) = (0u64, 0u64, 0u64);
            for (k, x) in c.iter().enumerate() {
                let x = *x as u64;
                s1 += x;
                s2 += x * x;
                sw = sw.wrapping_add(x * (k as u64 + 1));
            }
            self.h = mix(self.h, s1 ^ (sw << 20), s2);
            self.sum += s1;
            self.sq += s2;
        }
        self.n += row.len() as u64;
    }

    /// The hash and whether the plane is black (dark and nearly flat).
    pub fn finish(&self, peak: f64) -> (u64, bool) {
        let n = self.n.max(1) as f64;
        let mean = self.sum as f64 / n;
        let var = (self.sq as f64 / n - mean * mean).max(0.0);
        let black = mean <= BLACK_MEAN * peak && var.sqrt() <= BLACK_STDDEV * peak;
        (self.h, black)
    }
}

/// Σx, Σx² and Σx·(k + 1) over a chunk of at most 1024 samples (k: the
/// position in the chunk). 1024 × 255 × 1024 < 2^32: no sum can overflow.
#[inline(always)]
fn chunk_sums_u8(c: &[u8], level: crate::metrics::simd::CpuLevel) -> (u32, u32, u32) {
    use crate::metrics::simd::CpuLevel;
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: these levels are only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe { chunk_sums_u8_avx2(c) },
        _ => chunk_sums_u8_scalar(c, 0),
    }
}

/// [`chunk_sums_u8`] in plain code, positions counted from `k0`.
#[inline(always)]
fn chunk_sums_u8_scalar(c: &[u8], k0: usize) -> (u32, u32, u32) {
    let (mut s1, mut s2, mut sw) = (0u32, 0u32, 0u32);
    for (k, x) in c.iter().enumerate() {
        let x = *x as u32;
        s1 += x;
        s2 += x * x;
        sw = sw.wrapping_add(x * ((k0 + k) as u32 + 1));
    }
    (s1, s2, sw)
}

/// [`chunk_sums_u8`] with AVX2: 16 samples widened to 16-bit lanes, and
/// the three sums as pairwise 16 × 16 → 32-bit multiply-adds (exact: every
/// product and pair sum is far below 2^31).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunk_sums_u8_avx2(c: &[u8]) -> (u32, u32, u32) {
    use std::arch::x86_64::*;
    debug_assert!(c.len() <= 1024);
    let whole = c.len() / 16 * 16;
    let (mut a1, mut a2, mut aw) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    let ones = _mm256_set1_epi16(1);
    let step = _mm256_set1_epi16(16);
    let mut pos = _mm256_setr_epi16(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    for chunk in c[..whole].chunks_exact(16) {
        // SAFETY: `chunk` holds 16 bytes.
        let x = _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) });
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, x));
        aw = _mm256_add_epi32(aw, _mm256_madd_epi16(x, pos));
        pos = _mm256_add_epi16(pos, step);
    }
    let lanes = |v: __m256i| {
        let mut l = [0u32; 8];
        // SAFETY: `l` holds 32 bytes.
        unsafe { _mm256_storeu_si256(l.as_mut_ptr().cast(), v) };
        l.iter().fold(0u32, |s, x| s.wrapping_add(*x))
    };
    let (t1, t2, tw) = chunk_sums_u8_scalar(&c[whole..], whole);
    (
        lanes(a1).wrapping_add(t1),
        lanes(a2).wrapping_add(t2),
        lanes(aw).wrapping_add(tw),
    )
}

fn luma_facts(f: &Frame) -> (u64, bool) {
    if let Some(s) = f.luma_sig {
        return s;
    }
    let Some(p) = f.planes.first() else {
        return (0, false);
    };
    let mut acc = SigAcc::default();
    match &p.samples {
        Samples::U8(v) => v.chunks(p.width.max(1)).for_each(|r| acc.feed_u8(r)),
        Samples::U16(v) => v.chunks(p.width.max(1)).for_each(|r| acc.feed_u16(r)),
    }
    acc.finish(f.peak())
}

impl Signature {
    /// The signature of a pair.
    pub fn of(reference: &Frame, distorted: &Frame) -> Self {
        let (ref_hash, ref_black) = luma_facts(reference);
        let (dist_hash, dist_black) = luma_facts(distorted);
        Signature {
            ref_hash,
            dist_hash,
            ref_black,
            dist_black,
        }
    }
}

/// Messages to the aggregator, each with a sequence number: it writes them
/// in sequence order.
pub enum AggMsg {
    /// A measured pair.
    Row {
        /// Sequence number.
        seq: u64,
        /// Distorted input index.
        input: usize,
        /// Pair index of that input.
        frame: u64,
        /// Reference frame index.
        ref_frame: u64,
        /// Distorted frame index.
        dist_frame: u64,
        /// Reference pts in seconds.
        pts: f64,
        /// The values.
        row: Row,
        /// When measuring started.
        started: Instant,
        /// When it ended.
        finished: Instant,
        /// When the later of the two frames was decoded.
        decoded_at: Option<Instant>,
        /// For the detectors.
        signature: Signature,
    },
    /// An event to log (and count).
    Event {
        /// Sequence number.
        seq: u64,
        /// The event.
        event: Event,
        /// Distorted inputs whose summary counts it as a decode error.
        decode_error_for: Vec<usize>,
    },
    /// A pair could not be measured: the run fails.
    Failed {
        /// Sequence number.
        seq: u64,
        /// Why.
        error: Error,
    },
    /// Pairing is over: write the summaries.
    Finish {
        /// Sequence number.
        seq: u64,
        /// Per-input counts from pairing.
        counts: Vec<PairCounts>,
        /// Reference frames decoded.
        reference_frames: u64,
        /// Reference decoder busy time.
        reference_decode: Duration,
        /// Stopped by a signal.
        interrupted: bool,
    },
}

impl AggMsg {
    fn seq(&self) -> u64 {
        match self {
            AggMsg::Row { seq, .. }
            | AggMsg::Event { seq, .. }
            | AggMsg::Failed { seq, .. }
            | AggMsg::Finish { seq, .. } => *seq,
        }
    }
}

/// Timing of a run, for the speed line of the summary table.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// Wall-clock time of the whole run.
    pub wall: Duration,
    /// Frames the reference decoder delivered.
    pub reference_frames: u64,
    /// Time the reference decoder spent working (not waiting on queues).
    pub reference_decode: Duration,
    /// Pairs measured over all inputs.
    pub pairs: u64,
    /// Time during which at least one pair was being measured (the union
    /// of the jobs' intervals): the worker pool's busy time.
    pub compute: Duration,
    /// Metric worker threads.
    pub threads: usize,
}

struct InputState {
    path: String,
    conversion: Option<String>,
    sync: Option<(i64, f64)>,
    pairs: u64,
    pooled: Vec<PooledKey>,
    mse_sum: Vec<f64>,
    mse_frames: u64,
    rolling: Rolling,
    since_window: usize,
    decode_errors: u64,
    reconnects: u64,
    prev: Option<Signature>,
    frozen_run: bool,
    black_run: bool,
    frozen_frames: u64,
    black_frames: u64,
    alerts: Vec<Tracker>,
    latency: PooledKey,
}

/// What the aggregator is set up with.
pub struct AggSettings {
    /// A window record every this many pairs per input (0: never).
    pub window_every: usize,
    /// Rolling window.
    pub window: WindowSpec,
    /// Alert rules.
    pub alerts: Vec<Rule>,
    /// Quality gates.
    pub gates: Vec<Gate>,
    /// The reference frame rate, if known.
    pub frame_rate: Option<f64>,
}

/// The aggregator's state.
pub struct Aggregator {
    keys: Vec<String>,
    layout: Layout,
    inputs: Vec<InputState>,
    window_every: usize,
    rules: Vec<(Rule, usize)>,
    gates: Vec<(Gate, usize)>,
    frame_step: f64,
    pending: BTreeMap<u64, AggMsg>,
    next: u64,
    compute: Duration,
    busy_until: Option<Instant>,
    pairs: u64,
    warn: Warn,
    reference_path: String,
    decode_warnings: u64,
    psnr_cap: f64,
}

/// What the aggregator hands back at the end.
pub struct AggResult {
    /// One summary per distorted input.
    pub summaries: Vec<Summary>,
    /// Timing figures.
    pub timing: Timing,
    /// Whether any alert rule fired.
    pub alerts_fired: bool,
    /// Whether any quality gate failed.
    pub gates_failed: bool,
}

impl Aggregator {
    /// Sets up for the inputs of `header`; `keys` are the record keys.
    /// Fails if an alert names a key no frame record has.
    pub fn new(
        settings: AggSettings,
        header: &Header,
        keys: Vec<String>,
        layout: Layout,
        warn: Warn,
    ) -> Result<Self, Error> {
        let mut rules = Vec::new();
        for r in settings.alerts {
            match keys.iter().position(|k| *k == r.key) {
                Some(i) => rules.push((r, i)),
                None => {
                    return Err(Error::Usage(format!(
                        "--alert '{}': no frame-record key '{}'; keys: {}",
                        r.text,
                        r.key,
                        keys.join(", ")
                    )));
                }
            }
        }
        let mut gates = Vec::new();
        for g in settings.gates {
            match keys.iter().position(|k| *k == g.key) {
                Some(i) => gates.push((g, i)),
                None => {
                    return Err(Error::Usage(format!(
                        "--fail-if '{}': no record key '{}'; keys: {}",
                        g.text,
                        g.key,
                        keys.join(", ")
                    )));
                }
            }
        }
        let planes = layout.plane_names.len();
        let inputs = header
            .distorted
            .iter()
            .map(|d| InputState {
                path: d.info.path.clone(),
                conversion: d.info.conversion.clone(),
                sync: d.sync,
                pairs: 0,
                pooled: keys.iter().map(|_| PooledKey::new()).collect(),
                mse_sum: vec![0.0; planes + 1],
                mse_frames: 0,
                rolling: Rolling::for_spec(settings.window, settings.frame_rate, keys.len()),
                since_window: 0,
                decode_errors: 0,
                reconnects: 0,
                prev: None,
                frozen_run: false,
                black_run: false,
                frozen_frames: 0,
                black_frames: 0,
                alerts: rules.iter().map(|_| Tracker::default()).collect(),
                latency: PooledKey::new(),
            })
            .collect();
        Ok(Aggregator {
            inputs,
            keys,
            layout,
            window_every: settings.window_every,
            rules,
            gates,
            frame_step: settings
                .frame_rate
                .filter(|r| *r > 0.0)
                .map(|r| 1.0 / r)
                .unwrap_or(0.0),
            pending: BTreeMap::new(),
            next: 0,
            compute: Duration::ZERO,
            busy_until: None,
            pairs: 0,
            warn,
            reference_path: header.reference.path.clone(),
            decode_warnings: 0,
            psnr_cap: header.psnr_max,
        })
    }

    fn emit(sinks: &mut [Box<dyn Sink>], rec: Record<'_>, json: &str) -> Result<(), Error> {
        for s in sinks.iter_mut() {
            s.write(&rec, json)?;
        }
        Ok(())
    }

    fn emit_event(sinks: &mut [Box<dyn Sink>], event: &Event) -> Result<(), Error> {
        Self::emit(sinks, Record::Event(event), &event.to_json())
    }

    /// Runs until the final message (or until every sender is gone).
    pub fn run(
        mut self,
        rx: Receiver<AggMsg>,
        sinks: &mut [Box<dyn Sink>],
    ) -> Result<Option<AggResult>, Error> {
        while let Ok(msg) = rx.recv() {
            self.pending.insert(msg.seq(), msg);
            while let Some(msg) = self.pending.remove(&self.next) {
                self.next += 1;
                if let Some(done) = self.handle(msg, sinks)? {
                    for s in sinks.iter_mut() {
                        s.finish()?;
                    }
                    return Ok(Some(done));
                }
            }
        }
        // Senders gone before the end: the run failed elsewhere; keep what
        // was written and flush it.
        for s in sinks.iter_mut() {
            s.finish()?;
        }
        Ok(None)
    }

    fn detect(
        &mut self,
        input: usize,
        frame: u64,
        ref_frame: u64,
        sig: Signature,
        sinks: &mut [Box<dyn Sink>],
    ) -> Result<(), Error> {
        let st = &mut self.inputs[input];
        let black = sig.dist_black && !sig.ref_black;
        // a run of black pictures is reported as black, not also as frozen
        let frozen = !sig.dist_black
            && st
                .prev
                .is_some_and(|p| p.dist_hash == sig.dist_hash && p.ref_hash != sig.ref_hash);
        st.prev = Some(sig);
        let mut events = Vec::new();
        if frozen {
            st.frozen_frames += 1;
            if !st.frozen_run {
                events.push(Event {
                    kind: "frozen",
                    input: Some(input),
                    source: Some(("distorted".to_string(), st.path.clone())),
                    counts: vec![("frame", frame as i64), ("ref_frame", ref_frame as i64)],
                    value: None,
                    rule: None,
                    message: format!(
                        "'{}' repeats its previous picture while the reference moves",
                        st.path
                    ),
                });
            }
        }
        st.frozen_run = frozen;
        if black {
            st.black_frames += 1;
            if !st.black_run {
                events.push(Event {
                    kind: "black",
                    input: Some(input),
                    source: Some(("distorted".to_string(), st.path.clone())),
                    counts: vec![("frame", frame as i64), ("ref_frame", ref_frame as i64)],
                    value: None,
                    rule: None,
                    message: format!("'{}' is black while the reference is not", st.path),
                });
            }
        }
        st.black_run = black;
        for e in &events {
            (self.warn)(&e.message);
            Self::emit_event(sinks, e)?;
        }
        Ok(())
    }

    fn check_alerts(
        &mut self,
        input: usize,
        frame: u64,
        pts: f64,
        values: &[f64],
        sinks: &mut [Box<dyn Sink>],
    ) -> Result<(), Error> {
        let mut events = Vec::new();
        let st = &mut self.inputs[input];
        for ((rule, key), tracker) in self.rules.iter().zip(st.alerts.iter_mut()) {
            let v = values.get(*key).copied().unwrap_or(f64::NAN);
            if let Some(change) = tracker.observe(rule, v, frame, pts, self.frame_step) {
                let (kind, what) = match change {
                    Change::Fired => ("alert", "holds"),
                    Change::Recovered => ("recovered", "no longer holds"),
                };
                events.push(Event {
                    kind,
                    input: Some(input),
                    source: Some(("distorted".to_string(), st.path.clone())),
                    counts: vec![("frame", frame as i64)],
                    value: Some(("value", v)),
                    rule: Some(rule.text.clone()),
                    message: format!("'{}': {} {what} ({} = {v})", st.path, rule.text, rule.key),
                });
            }
        }
        for e in &events {
            (self.warn)(&e.message);
            // the rule is named in the message; the JSON carries it too
            Self::emit_event(sinks, e)?;
        }
        Ok(())
    }

    fn handle(
        &mut self,
        msg: AggMsg,
        sinks: &mut [Box<dyn Sink>],
    ) -> Result<Option<AggResult>, Error> {
        match msg {
            AggMsg::Row {
                input,
                frame,
                ref_frame,
                dist_frame,
                pts,
                row,
                started,
                finished,
                decoded_at,
                signature,
                ..
            } => {
                // Union of job intervals; jobs arrive in start order.
                let from = match self.busy_until {
                    Some(b) if b > started => b,
                    _ => started,
                };
                if finished > from {
                    self.compute += finished - from;
                    self.busy_until = Some(finished);
                }
                self.pairs += 1;
                let rec = FrameRecord {
                    input,
                    path: &self.inputs[input].path,
                    frame,
                    ref_frame,
                    dist_frame,
                    pts,
                    keys: &self.keys,
                    values: &row.values,
                };
                Self::emit(sinks, Record::Frame(&rec), &rec.to_json())?;
                let shares = self.layout.plane_shares();
                {
                    let st = &mut self.inputs[input];
                    if let Some(t) = decoded_at {
                        st.latency.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    st.pairs += 1;
                    for (p, v) in st.pooled.iter_mut().zip(&row.values) {
                        p.push(*v);
                    }
                    if let Some(mse) = &row.plane_mse {
                        let mut avg = 0.0;
                        for (i, m) in mse.iter().enumerate() {
                            st.mse_sum[i] += m;
                            avg += m * shares.get(i).copied().unwrap_or(0.0);
                        }
                        if let Some(last) = st.mse_sum.last_mut() {
                            *last += avg;
                        }
                        st.mse_frames += 1;
                    }
                    st.rolling.push(pts, &row.values);
                    st.since_window += 1;
                }
                self.detect(input, frame, ref_frame, signature, sinks)?;
                self.check_alerts(input, frame, pts, &row.values, sinks)?;
                let st = &mut self.inputs[input];
                if self.window_every > 0 && st.since_window >= self.window_every {
                    st.since_window = 0;
                    let stats = st.rolling.stats();
                    let rec = WindowRecord {
                        input,
                        end_frame: frame,
                        frames: st.rolling.len() as u64,
                        keys: &self.keys,
                        stats: &stats,
                    };
                    Self::emit(sinks, Record::Window(&rec), &rec.to_json())?;
                }
                Ok(None)
            }
            AggMsg::Failed { error, .. } => Err(error),
            AggMsg::Event {
                event,
                decode_error_for,
                ..
            } => {
                for i in decode_error_for {
                    if let Some(st) = self.inputs.get_mut(i) {
                        st.decode_errors += 1;
                    }
                }
                if event.kind == "stream_restored" {
                    match event.input {
                        Some(i) => {
                            if let Some(st) = self.inputs.get_mut(i) {
                                st.reconnects += 1;
                            }
                        }
                        None => self.inputs.iter_mut().for_each(|s| s.reconnects += 1),
                    }
                }
                if let (true, Some(st)) = (
                    event.kind == "sync",
                    event.input.and_then(|i| self.inputs.get_mut(i)),
                ) {
                    {
                        // the in-run sync result, for the summary
                        let off = event.counts.first().map(|c| c.1).unwrap_or(0);
                        let psnr = event.value.map(|v| v.1).unwrap_or(f64::NAN);
                        st.sync = Some((off, psnr));
                    }
                }
                if event.kind == "decode_error" {
                    self.decode_warnings += 1;
                    if self.decode_warnings <= 5 {
                        let who = event
                            .source
                            .as_ref()
                            .map(|(_, p)| p.as_str())
                            .unwrap_or("?");
                        (self.warn)(&format!("'{who}': {}", event.message));
                    } else if self.decode_warnings == 6 {
                        (self.warn)(
                            "more decode errors follow; each is a decode_error event in the log",
                        );
                    }
                } else if event.kind != "dropped" {
                    (self.warn)(&event.message);
                }
                Self::emit_event(sinks, &event)?;
                Ok(None)
            }
            AggMsg::Finish {
                counts,
                reference_frames,
                reference_decode,
                interrupted,
                ..
            } => self
                .finish(
                    sinks,
                    counts,
                    reference_frames,
                    reference_decode,
                    interrupted,
                )
                .map(Some),
        }
    }

    fn finish(
        &mut self,
        sinks: &mut [Box<dyn Sink>],
        counts: Vec<PairCounts>,
        reference_frames: u64,
        reference_decode: Duration,
        interrupted: bool,
    ) -> Result<AggResult, Error> {
        let mut summaries = Vec::new();
        for (i, c) in counts.iter().enumerate() {
            let (ur, ud) = (c.unpaired_reference, c.unpaired_distorted);
            if (ur > 0 || ud > 0) && !interrupted {
                let path = self.inputs[i].path.clone();
                let message = if ud == 0 {
                    format!(
                        "reference '{}' has {ur} more frame(s) than distorted '{path}'; they were not measured",
                        self.reference_path
                    )
                } else if ur == 0 {
                    format!(
                        "distorted '{path}' has {ud} more frame(s) than reference '{}'; they were not measured",
                        self.reference_path
                    )
                } else {
                    format!(
                        "{ur} frame(s) of reference '{}' and {ud} of distorted '{path}' were left unpaired and not measured",
                        self.reference_path
                    )
                };
                (self.warn)(&message);
                let event = Event {
                    kind: "mismatch",
                    input: Some(i),
                    source: None,
                    counts: vec![
                        ("unpaired_reference", ur as i64),
                        ("unpaired_distorted", ud as i64),
                    ],
                    value: None,
                    rule: None,
                    message,
                };
                Self::emit_event(sinks, &event)?;
            }
        }
        let mut alerts_fired = false;
        let mut gates_failed = false;
        for (i, st) in self.inputs.iter().enumerate() {
            let psnr_global = (st.mse_frames > 0).then(|| {
                let peak = self.layout.peak();
                let mut names: Vec<String> = self
                    .layout
                    .plane_names
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                names.push("avg".to_string());
                names
                    .into_iter()
                    .zip(&st.mse_sum)
                    .map(|(n, s)| {
                        (
                            n,
                            psnr_from_mse(s / st.mse_frames as f64, peak, self.psnr_cap),
                        )
                    })
                    .collect()
            });
            let fired: Vec<String> = self
                .rules
                .iter()
                .zip(&st.alerts)
                .filter(|(_, t)| t.fired)
                .map(|((r, _), _)| r.text.clone())
                .collect();
            alerts_fired |= !fired.is_empty();
            let pooled: Vec<Option<crate::stats::Pooled>> =
                st.pooled.iter().map(|p| p.finish()).collect();
            let gate_results: Vec<GateResult> = self
                .gates
                .iter()
                .map(|(g, k)| g.check(pooled.get(*k).and_then(|p| p.as_ref())))
                .collect();
            for r in gate_results.iter().filter(|r| r.failed) {
                gates_failed = true;
                (self.warn)(&format!(
                    "'{}': quality gate failed: {} (value {})",
                    st.path,
                    r.gate,
                    r.value
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "missing".to_string())
                ));
            }
            let c = counts.get(i).cloned().unwrap_or_default();
            let latency = match (
                st.latency.quantile(0.5),
                st.latency.quantile(0.99),
                st.latency.finish(),
            ) {
                (Some(a), Some(b), Some(p)) => Some((a, b, p.max)),
                _ => None,
            };
            let summary = Summary {
                input: i,
                path: st.path.clone(),
                frames: st.pairs,
                metrics: self.keys.iter().cloned().zip(pooled).collect(),
                gates: gate_results,
                psnr_global,
                unpaired_reference: c.unpaired_reference,
                unpaired_distorted: c.unpaired_distorted,
                decode_errors: st.decode_errors,
                conversion: st.conversion.clone(),
                offset: c.offset,
                sync: st.sync,
                frozen_frames: st.frozen_frames,
                black_frames: st.black_frames,
                dropped_frames: c.dropped,
                reconnects: st.reconnects,
                alerts: fired,
                latency_ms: latency,
                interrupted,
            };
            Self::emit(sinks, Record::Summary(&summary), &summary.to_json())?;
            summaries.push(summary);
        }
        Ok(AggResult {
            summaries,
            timing: Timing {
                wall: Duration::ZERO,
                reference_frames,
                reference_decode,
                pairs: self.pairs,
                compute: self.compute,
                threads: 0,
            },
            alerts_fired,
            gates_failed,
        })
    }
}

#[cfg(test)]
mod sig_tests {
    use super::*;
    use crate::metrics::simd::{CpuLevel, available_levels};

    #[test]
    fn chunk_sums_are_the_same_on_every_code_path() {
        let mut seed = 0x9e37_79b9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for len in [0usize, 1, 15, 16, 17, 31, 100, 1023, 1024] {
            for fill in [None, Some(0u8), Some(255u8)] {
                let c: Vec<u8> = (0..len)
                    .map(|_| fill.unwrap_or_else(|| next() as u8))
                    .collect();
                let want = chunk_sums_u8_scalar(&c, 0);
                for level in available_levels() {
                    assert_eq!(chunk_sums_u8(&c, level), want, "len {len} {level:?}");
                }
                assert_eq!(chunk_sums_u8(&c, CpuLevel::Scalar), want);
            }
        }
        // the extremes: every sum at its largest
        let c = vec![255u8; 1024];
        let (s1, s2, sw) = chunk_sums_u8_scalar(&c, 0);
        assert_eq!(
            (s1, s2, sw),
            (255 * 1024, 255 * 255 * 1024, 255 * 1024 * 1025 / 2)
        );
    }
}
