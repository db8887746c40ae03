//! Temporal metrics in the monitor: each pair of an input reaches the
//! temporal metrics' states in pair order (the aggregator restores
//! sequence order first), and a frame record waits until every temporal
//! key of its row is known — a metric that needs the next frame fills a
//! row one pair later. Messages leave in sequence order, so records stay in
//! order.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::Error;
use crate::metrics::{Ready, TemporalSlot};
use crate::monitor::messages::{AggMsg, Measured, PairFrames};
use crate::monitor::worst::WorstCapture;
use crate::output::records::EventKind;

/// A row waiting for temporal values, or a message ready to go.
enum Held {
    /// Waits for this many temporal metrics' values; keeps the pair's
    /// frames when the worst frames are ranked by a temporal key.
    Row(Box<Measured>, usize, Option<PairFrames>),
    /// Ready.
    Ready(AggMsg),
}

/// Feeds the temporal metrics in order and holds back what must wait.
pub struct Sequencer {
    /// Per distorted input, its temporal metrics' states.
    inputs: Vec<Vec<TemporalSlot>>,
    held: VecDeque<Held>,
    /// `--dump-worst` when its ranking key (the first) is a temporal
    /// metric's: the frames wait with their row for the value.
    capture: Option<Arc<WorstCapture>>,
    /// Time the temporal metrics spent computing (their push, flush and
    /// restart calls), for the speed line.
    busy: std::time::Duration,
}

impl Sequencer {
    /// Time the temporal metrics spent computing so far.
    pub fn busy(&self) -> std::time::Duration {
        self.busy
    }

    /// `inputs` holds each distorted input's temporal states (empty when
    /// no temporal metric is selected: every message then passes at once).
    pub fn new(inputs: Vec<Vec<TemporalSlot>>) -> Self {
        Sequencer {
            inputs,
            held: VecDeque::new(),
            capture: None,
            busy: std::time::Duration::ZERO,
        }
    }

    /// Offers each pair to `capture` once its first key's value is known,
    /// if that key is a temporal metric's (the workers offer the others).
    pub fn with_capture(mut self, capture: Option<Arc<WorstCapture>>) -> Self {
        let first_is_temporal = self
            .inputs
            .first()
            .is_some_and(|slots| slots.iter().any(|s| s.keys.start == 0));
        self.capture = capture.filter(|_| first_is_temporal);
        self
    }

    /// Offers a complete row's pair to the capture, and gives its buffers
    /// back.
    fn offer(&self, row: &Measured, frames: Option<PairFrames>) {
        let Some(f) = frames else {
            return;
        };
        if let (Some(c), Some(v)) = (&self.capture, row.row.values.first())
            && !v.is_nan()
        {
            c.offer(
                row.input,
                row.frame,
                &row.row.values,
                f.reference.pts,
                &f.reference,
                &f.distorted,
            );
        }
        f.give_back();
    }

    /// Takes the next message in sequence order; returns the messages now
    /// ready, in sequence order. The final message flushes every state
    /// first, so everything held comes out before it.
    pub fn admit(&mut self, msg: AggMsg) -> Result<Vec<AggMsg>, Error> {
        match msg {
            AggMsg::Row(mut row) => {
                let frames = row.frames.take();
                let slots = self.inputs.get_mut(row.input).map_or(0, |s| s.len());
                if slots == 0 {
                    if let Some(f) = frames {
                        f.give_back();
                    }
                    self.held.push_back(Held::Ready(AggMsg::Row(row)));
                    return Ok(self.release());
                }
                let (input, pair) = (row.input, row.frame);
                self.held.push_back(Held::Row(row, slots, None));
                let Some(f) = frames else {
                    return Err(Error::Internal(
                        "a pair reached the temporal metrics without its frames".to_string(),
                    ));
                };
                let mut ready = Vec::new();
                let mut failed = None;
                let started = std::time::Instant::now();
                for (k, slot) in self.inputs[input].iter_mut().enumerate() {
                    match slot.state.push(pair, &f.reference, &f.distorted) {
                        Ok(r) => ready.push((k, r)),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                self.busy += started.elapsed();
                match (&self.capture, self.held.back_mut()) {
                    (Some(_), Some(Held::Row(_, _, kept))) => *kept = Some(f),
                    _ => f.give_back(),
                }
                if let Some(e) = failed {
                    return Err(e);
                }
                for (k, r) in ready {
                    self.fill(input, k, r);
                }
                Ok(self.release())
            }
            AggMsg::Finish { .. } => {
                let started = std::time::Instant::now();
                for input in 0..self.inputs.len() {
                    for k in 0..self.inputs[input].len() {
                        let r = self.inputs[input][k].state.flush()?;
                        self.fill(input, k, r);
                    }
                }
                self.busy += started.elapsed();
                let mut out = self.drain();
                out.push(msg);
                Ok(out)
            }
            AggMsg::Failed { .. } => {
                // the run fails: what was measured before is still written
                let mut out = self.drain();
                out.push(msg);
                Ok(out)
            }
            AggMsg::Event { ref event, .. }
                if matches!(event.kind, EventKind::StreamLost { .. }) && event.input.is_some() =>
            {
                // a distorted input is lost: its decoder gave every picture
                // it held before the event, so its held pairs get their
                // values now and the pairs after the loss start afresh.
                // (The reference's loss breaks nothing by itself: frames it
                // decoded before may still pair with later distorted ones.)
                if let Some(input) = event.input {
                    let started = std::time::Instant::now();
                    for k in 0..self.inputs.get(input).map_or(0, |s| s.len()) {
                        let r = self.inputs[input][k].state.restart()?;
                        self.fill(input, k, r);
                    }
                    self.busy += started.elapsed();
                }
                self.held.push_back(Held::Ready(msg));
                Ok(self.release())
            }
            other => {
                self.held.push_back(Held::Ready(other));
                Ok(self.release())
            }
        }
    }

    /// Writes the values temporal metric `k` of `input` gave into the held
    /// rows they belong to.
    fn fill(&mut self, input: usize, k: usize, ready: Ready) {
        let range = self.inputs[input][k].keys.clone();
        for (pair, values) in ready {
            let row = self.held.iter_mut().find_map(|h| match h {
                Held::Row(r, missing, _) if r.input == input && r.frame == pair => {
                    Some((r, missing))
                }
                _ => None,
            });
            // values for a pair no longer held (or never sent) are dropped
            if let Some((r, missing)) = row {
                if let Some(dst) = r.row.values.get_mut(range.clone()) {
                    for (d, v) in dst.iter_mut().zip(values) {
                        *d = v;
                    }
                }
                *missing = missing.saturating_sub(1);
            }
        }
    }

    /// Everything held, in order, waiting or not: a pair a metric never
    /// gave values for keeps NaN (`null`) in its keys.
    pub fn drain(&mut self) -> Vec<AggMsg> {
        let held: Vec<Held> = self.held.drain(..).collect();
        held.into_iter()
            .map(|h| match h {
                Held::Row(r, _, frames) => {
                    self.offer(&r, frames);
                    AggMsg::Row(r)
                }
                Held::Ready(m) => m,
            })
            .collect()
    }

    /// The messages at the front that wait for nothing.
    fn release(&mut self) -> Vec<AggMsg> {
        let mut out = Vec::new();
        while let Some(h) = self.held.front() {
            if matches!(h, Held::Row(_, missing, _) if *missing > 0) {
                break;
            }
            match self.held.pop_front() {
                Some(Held::Row(r, _, frames)) => {
                    self.offer(&r, frames);
                    out.push(AggMsg::Row(r));
                }
                Some(Held::Ready(m)) => out.push(m),
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
