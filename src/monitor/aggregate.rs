//! The ordered aggregator: restores sequence order, writes frame, window
//! and event records, and hands each pair in order to what needs the
//! previous one (the detectors, alert rules, rolling windows); at the end
//! it writes the summaries ([`super::summary`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::error::{Error, Warn};
use crate::metrics::{Layout, TemporalSlot};
use crate::monitor::alert::{Change, Rule};
use crate::monitor::gate::Gate;
use crate::monitor::ladder;
use crate::monitor::messages::{AggMsg, Measured, PairCounts};
use crate::monitor::sequence::Sequencer;
use crate::monitor::summary::{InputTally, PairTimes};
use crate::monitor::worst::WorstCapture;
use crate::output::Sinks;
use crate::output::records::{
    Event, EventKind, FrameRecord, Header, Role, Summary, SyncResult, Timing, WindowRecord,
};
use crate::stats::{Rolling, WindowSpec};

/// Alert changes (fired, recovered) of one rule on one input written to
/// stderr; the rest are counted there at the end (the log has them all).
const ALERT_LINES: u64 = 5;

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
    /// Each distorted input's temporal metric states (none: empty).
    pub temporal: Vec<Vec<TemporalSlot>>,
    /// `--dump-worst`: the monitor offers the pairs when the ranking key
    /// is a temporal metric's (the workers offer the others).
    pub capture: Option<Arc<WorstCapture>>,
    /// Live: per distorted input, the pairs whose record is written (the
    /// last pair index + 1), for pairing to see the lag after it.
    pub recorded: Option<Arc<Vec<AtomicU64>>>,
}

/// The aggregator's state.
pub struct Aggregator {
    /// The worst moments' capture, whose pictures go to the sinks at the
    /// end.
    pictures: Option<Arc<WorstCapture>>,
    keys: Vec<String>,
    layout: Layout,
    /// Each plane's share of the samples (the layout's, computed once).
    shares: Vec<f64>,
    inputs: Vec<InputTally>,
    window_every: usize,
    rules: Vec<(Rule, usize)>,
    gates: Vec<(Gate, usize)>,
    frame_step: f64,
    pending: BTreeMap<u64, AggMsg>,
    next: u64,
    /// Feeds the temporal metrics in order; holds rows until they are full.
    sequencer: Sequencer,
    /// Each distorted input's resolution, codec and bitrate.
    facts: Vec<(String, String, Option<u64>)>,
    /// Per input and rule, the alert changes so far (stderr shows the
    /// first [`ALERT_LINES`]).
    alert_lines: Vec<Vec<u64>>,
    compute: Duration,
    busy_until: Option<Instant>,
    pairs: u64,
    warn: Warn,
    reference_path: String,
    decode_warnings: u64,
    psnr_cap: f64,
    recorded: Option<Arc<Vec<AtomicU64>>>,
    /// Per distorted input: one pair in this many is measured (live
    /// overload), as the last `overload` event said.
    every: Vec<u64>,
    overload_said: bool,
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

/// The position of `key` among the record keys, or a usage error naming
/// the flag and listing the keys.
fn key_index(keys: &[String], key: &str, flag: &str, text: &str) -> Result<usize, Error> {
    keys.iter().position(|k| k == key).ok_or_else(|| {
        let what = if flag == "--alert" {
            "no frame-record key"
        } else {
            "no record key"
        };
        Error::Usage(format!(
            "{flag} '{text}': {what} '{key}'; keys: {}",
            keys.join(", ")
        ))
    })
}

impl Aggregator {
    /// Sets up for the inputs of `header`; `keys` are the record keys.
    /// Fails if an alert or a gate names a key no frame record has.
    pub fn new(
        settings: AggSettings,
        header: &Header,
        keys: Vec<String>,
        layout: Layout,
        warn: Warn,
    ) -> Result<Self, Error> {
        let temporal = settings.temporal;
        let capture = settings.capture;
        let pictures = capture.clone();
        let mut rules = Vec::new();
        for r in settings.alerts {
            let i = key_index(&keys, &r.key, "--alert", &r.text)?;
            rules.push((r, i));
        }
        let mut gates = Vec::new();
        for g in settings.gates {
            let i = key_index(&keys, &g.key, "--fail-if", &g.text)?;
            gates.push((g, i));
        }
        let inputs = header
            .distorted
            .iter()
            .map(|d| {
                InputTally::new(
                    d.info.path.clone(),
                    d.info.conversion.clone(),
                    d.sync,
                    keys.len(),
                    Rolling::for_spec(settings.window, settings.frame_rate, keys.len()),
                    rules.len(),
                    &layout,
                )
            })
            .collect();
        Ok(Aggregator {
            sequencer: Sequencer::new(temporal).with_capture(capture),
            pictures,
            facts: header
                .distorted
                .iter()
                .map(|d| {
                    let i = &d.info;
                    (
                        format!("{}x{}", i.width, i.height),
                        i.codec.clone(),
                        i.bitrate,
                    )
                })
                .collect(),
            alert_lines: vec![vec![0; rules.len()]; header.distorted.len()],
            inputs,
            keys,
            shares: layout.plane_shares(),
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
            recorded: settings.recorded,
            every: vec![1; header.distorted.len()],
            overload_said: false,
        })
    }

    /// Runs until the final message (or until every sender is gone).
    pub fn run(
        mut self,
        rx: Receiver<AggMsg>,
        sinks: &mut Sinks,
    ) -> Result<Option<AggResult>, Error> {
        while let Ok(msg) = rx.recv() {
            self.pending.insert(msg.seq(), msg);
            while let Some(msg) = self.pending.remove(&self.next) {
                self.next += 1;
                let ready = match self.sequencer.admit(msg) {
                    Ok(ready) => ready,
                    Err(e) => {
                        // a temporal metric failed: what was measured
                        // before it is still written
                        for msg in self.sequencer.drain() {
                            self.handle(msg, sinks)?;
                        }
                        sinks.finish()?;
                        return Err(e);
                    }
                };
                for msg in ready {
                    if let Some(done) = self.handle(msg, sinks)? {
                        if let Some(c) = &self.pictures {
                            sinks.pictures(&c.pictures())?;
                        }
                        sinks.finish()?;
                        return Ok(Some(done));
                    }
                }
            }
        }
        // Senders gone before the end: the run failed elsewhere; write
        // what waited for temporal values, keep what was written, flush it.
        for msg in self.sequencer.drain() {
            self.handle(msg, sinks)?;
        }
        sinks.finish()?;
        Ok(None)
    }

    /// Handles the next message in sequence; the final one gives the result.
    pub fn handle(&mut self, msg: AggMsg, sinks: &mut Sinks) -> Result<Option<AggResult>, Error> {
        match msg {
            AggMsg::Row(row) => {
                self.row(*row, sinks)?;
                Ok(None)
            }
            AggMsg::Failed { error, .. } => Err(error),
            AggMsg::Event {
                event,
                decode_error_for,
                ..
            } => {
                self.event(event, decode_error_for, sinks)?;
                Ok(None)
            }
            AggMsg::Finish {
                counts,
                reference_frames,
                reference_decode,
                interrupted,
                ..
            } => self.finish(sinks, counts, interrupted).map(
                |(summaries, alerts_fired, gates_failed)| {
                    Some(AggResult {
                        summaries,
                        timing: Timing {
                            wall: Duration::ZERO,
                            reference_frames,
                            reference_decode,
                            pairs: self.pairs,
                            // the worker pool's busy time and the
                            // temporal metrics' (on this thread; a sum, so
                            // time both spent at once counts twice)
                            compute: self.compute + self.sequencer.busy(),
                            threads: 0,
                        },
                        alerts_fired,
                        gates_failed,
                    })
                },
            ),
        }
    }

    fn row(&mut self, r: Measured, sinks: &mut Sinks) -> Result<(), Error> {
        // Union of job intervals; jobs arrive in start order.
        let from = match self.busy_until {
            Some(b) if b > r.started => b,
            _ => r.started,
        };
        if r.finished > from {
            self.compute += r.finished - from;
            self.busy_until = Some(r.finished);
        }
        self.pairs += 1;
        let input = r.input;
        let rec = FrameRecord {
            input,
            path: &self.inputs[input].path,
            frame: r.frame,
            ref_frame: r.ref_frame,
            dist_frame: r.dist_frame,
            pts: r.pts,
            keys: &self.keys,
            values: &r.row.values,
            lag_ms: r.arrived.map(|(t, _)| t.elapsed().as_secs_f64() * 1000.0),
            align_ms: r.arrived.map(|(_, d)| d.as_secs_f64() * 1000.0),
            pending: self.inputs[input].pending,
            damaged: r.damaged,
            every: self.every.get(input).copied().unwrap_or(1),
        };
        sinks.frame(&rec)?;
        if let Some(c) = self.recorded.as_ref().and_then(|r| r.get(input)) {
            c.store(r.frame + 1, Ordering::Relaxed);
        }
        let latency = PairTimes {
            latency_ms: r.decoded_at.map(|t| t.elapsed().as_secs_f64() * 1000.0),
            lag_ms: rec.lag_ms,
            align_ms: rec.align_ms,
        };
        let st = &mut self.inputs[input];
        let mut events = st
            .detector
            .observe(input, &st.path, r.frame, r.ref_frame, r.signature);
        if r.damaged && !st.pending {
            // a picture decoded from damaged data: what the transport did,
            // not the encode; its record says so, nothing else counts it
            st.damaged_frames += 1;
            for e in &events {
                (self.warn)(&e.message);
                sinks.event(e)?;
            }
            return Ok(());
        }
        if st.pending {
            // not known to be the right pair: no statistic, no alert
            st.hold(&r.row, r.pts, latency);
            for e in &events {
                (self.warn)(&e.message);
                sinks.event(e)?;
            }
            return Ok(());
        }
        st.push(&r.row, r.pts, &self.shares, latency);
        // alert changes, by rule: their stderr lines are limited per rule
        let detected = events.len();
        let mut by_rule = Vec::new();
        for (k, ((rule, key), tracker)) in self.rules.iter().zip(st.alerts.iter_mut()).enumerate() {
            let v = r.row.values.get(*key).copied().unwrap_or(f64::NAN);
            let Some(change) = tracker.observe(rule, v, r.frame, r.pts, self.frame_step) else {
                continue;
            };
            let (kind, what) = match change {
                Change::Fired => (
                    EventKind::Alert {
                        frame: r.frame,
                        value: v,
                        rule: rule.text.clone(),
                    },
                    "holds",
                ),
                Change::Recovered => (
                    EventKind::Recovered {
                        frame: r.frame,
                        value: v,
                        rule: rule.text.clone(),
                    },
                    "no longer holds",
                ),
            };
            by_rule.push(k);
            events.push(Event {
                kind,
                input: Some(input),
                source: Some((Role::Distorted, st.path.clone())),
                message: format!(
                    "'{}': {} {what} at frame {} ({:.3} s; {} = {v})",
                    st.path, rule.text, r.frame, r.pts, rule.key
                ),
            });
        }
        for (n, e) in events.iter().enumerate() {
            let said = match n.checked_sub(detected).and_then(|j| by_rule.get(j)) {
                Some(&k) => {
                    let c = &mut self.alert_lines[input][k];
                    *c += 1;
                    *c <= ALERT_LINES
                }
                None => true,
            };
            if said {
                (self.warn)(&e.message);
            }
            sinks.event(e)?;
        }
        let st = &mut self.inputs[input];
        if self.window_every > 0 && st.since_window >= self.window_every {
            st.since_window = 0;
            let stats = st.rolling.stats();
            let rec = WindowRecord {
                input,
                end_frame: r.frame,
                frames: st.rolling.len() as u64,
                keys: &self.keys,
                stats: &stats,
            };
            sinks.window(&rec)?;
        }
        Ok(())
    }

    fn event(
        &mut self,
        event: Event,
        decode_error_for: Vec<usize>,
        sinks: &mut Sinks,
    ) -> Result<(), Error> {
        for i in decode_error_for {
            if let Some(st) = self.inputs.get_mut(i) {
                st.decode_errors += 1;
            }
        }
        match &event.kind {
            EventKind::Overload { every, .. } => {
                if let Some(e) = event.input.and_then(|i| self.every.get_mut(i)) {
                    *e = *every;
                }
                if let Some(st) = event.input.and_then(|i| self.inputs.get_mut(i)) {
                    st.max_every = st.max_every.max(*every);
                }
            }
            EventKind::StreamRestored { .. } => match event.input {
                Some(i) => {
                    if let Some(st) = self.inputs.get_mut(i) {
                        st.reconnects += 1;
                    }
                }
                None => self.inputs.iter_mut().for_each(|s| s.reconnects += 1),
            },
            EventKind::FormatChange {
                after_frames,
                from,
                to,
            } => {
                let change = format!(
                    "from its frame {after_frames}: {from} -> {to}, converted (swscale bicubic)"
                );
                let targets: Vec<usize> = match event.input {
                    Some(i) => vec![i],
                    None => (0..self.inputs.len()).collect(),
                };
                for i in targets {
                    if let Some(st) = self.inputs.get_mut(i) {
                        // bounded: a stream that changes every frame says so
                        // once it has said enough
                        st.conversion = Some(match st.conversion.take() {
                            Some(c) if c.ends_with("more changes") => c,
                            Some(c) if c.len() > 1000 => format!("{c}; more changes"),
                            Some(c) => format!("{c}; {change}"),
                            None => change.clone(),
                        });
                    }
                }
            }
            EventKind::Sync {
                offset,
                psnr,
                keeps_pending,
                ..
            } => {
                if let Some(st) = event.input.and_then(|i| self.inputs.get_mut(i)) {
                    // the in-run sync result, for the summary
                    st.sync = Some(SyncResult {
                        offset: *offset,
                        psnr: psnr.unwrap_or(f64::NAN),
                    });
                    st.settle_pending(*keeps_pending, &self.shares);
                }
            }
            EventKind::SyncUncertain { .. } => {
                if let Some(st) = event.input.and_then(|i| self.inputs.get_mut(i)) {
                    st.pending = true;
                }
            }
            _ => {}
        }
        match event.kind {
            EventKind::DecodeError { .. } => {
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
            }
            EventKind::Dropped { .. } => {}
            // said once: every change is in the log
            EventKind::Overload { every, .. } => {
                if every > 1 && !self.overload_said {
                    self.overload_said = true;
                    (self.warn)(&format!(
                        "{} (each change is an overload event in the log)",
                        event.message
                    ));
                }
            }
            _ => (self.warn)(&event.message),
        }
        sinks.event(&event)
    }

    /// The mismatch events and the summaries; whether an alert fired and
    /// whether a gate failed.
    fn finish(
        &mut self,
        sinks: &mut Sinks,
        counts: Vec<PairCounts>,
        interrupted: bool,
    ) -> Result<(Vec<Summary>, bool, bool), Error> {
        for (i, c) in counts.iter().enumerate() {
            let (ur, ud) = (c.unpaired_reference, c.unpaired_distorted);
            if (ur > 0 || ud > 0) && !interrupted {
                let path = &self.inputs[i].path;
                let reference = &self.reference_path;
                let message = if ud == 0 {
                    format!(
                        "reference '{reference}' has {ur} more frame(s) than distorted '{path}'; they were not measured"
                    )
                } else if ur == 0 {
                    format!(
                        "distorted '{path}' has {ud} more frame(s) than reference '{reference}'; they were not measured"
                    )
                } else {
                    format!(
                        "{ur} frame(s) of reference '{reference}' and {ud} of distorted '{path}' were left unpaired and not measured"
                    )
                };
                (self.warn)(&message);
                sinks.event(&Event {
                    kind: EventKind::Mismatch {
                        unpaired_reference: ur,
                        unpaired_distorted: ud,
                    },
                    input: Some(i),
                    source: None,
                    message,
                })?;
            }
        }
        let mut alerts_fired = false;
        let mut gates_failed = false;
        let mut summaries = Vec::new();
        for st in self.inputs.iter_mut() {
            st.drop_pending();
        }
        for (i, st) in self.inputs.iter().enumerate() {
            let c = counts.get(i).cloned().unwrap_or_default();
            let summary = st.summary(
                i,
                &self.keys,
                &self.rules,
                &self.gates,
                &c,
                &self.layout,
                self.psnr_cap,
                interrupted,
            );
            alerts_fired |= !summary.alerts.is_empty();
            for ((rule, _), c) in self.rules.iter().zip(&self.alert_lines[i]) {
                if *c > ALERT_LINES {
                    (self.warn)(&format!(
                        "'{}': {} changed {} more time(s), not shown here (every change is an event in the log)",
                        st.path,
                        rule.text,
                        c - ALERT_LINES
                    ));
                }
            }
            for r in summary.gates.iter().filter(|r| r.failed) {
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
            summaries.push(summary);
        }
        self.place_in_ladder(&mut summaries);
        for summary in &summaries {
            sinks.summary(summary)?;
        }
        Ok((summaries, alerts_fired, gates_failed))
    }

    /// Each summary's input facts and, with several inputs, its place in
    /// the ladder by bitrate and quality.
    fn place_in_ladder(&self, summaries: &mut [Summary]) {
        for (s, (resolution, codec, bitrate)) in summaries.iter_mut().zip(&self.facts) {
            s.resolution.clone_from(resolution);
            s.codec.clone_from(codec);
            s.bitrate = *bitrate;
        }
        if summaries.len() < 2 {
            return;
        }
        let Some(key) = ladder::QUALITY_KEYS
            .iter()
            .find(|k| self.keys.iter().any(|x| x == *k))
        else {
            return;
        };
        let points: Vec<Option<(u64, f64)>> = summaries
            .iter()
            .map(|s| {
                let q = s.metrics.iter().find(|(k, _)| k == key)?.1.as_ref()?.mean;
                Some((s.bitrate?, q))
            })
            .collect();
        for (s, m) in summaries.iter_mut().zip(ladder::marks(&points, key)) {
            s.ladder = m;
        }
    }
}
