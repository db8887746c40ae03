//! Temporal metrics in the monitor: each pair of an input reaches the
//! temporal metrics' states in pair order (the aggregator restores
//! sequence order first), and a frame record waits until every temporal
//! key of its row is known — a metric that needs the next frame fills a
//! row one pair later. Messages leave in sequence order, so records stay in
//! order.

use std::collections::VecDeque;

use crate::error::Error;
use crate::metrics::{Ready, TemporalSlot};
use crate::monitor::messages::{AggMsg, Measured};

/// A row waiting for temporal values, or a message ready to go.
enum Held {
    /// Waits for this many temporal metrics' values.
    Row(Box<Measured>, usize),
    /// Ready.
    Ready(AggMsg),
}

/// Feeds the temporal metrics in order and holds back what must wait.
pub struct Sequencer {
    /// Per distorted input, its temporal metrics' states.
    inputs: Vec<Vec<TemporalSlot>>,
    held: VecDeque<Held>,
}

impl Sequencer {
    /// `inputs` holds each distorted input's temporal states (empty when
    /// no temporal metric is selected: every message then passes at once).
    pub fn new(inputs: Vec<Vec<TemporalSlot>>) -> Self {
        Sequencer {
            inputs,
            held: VecDeque::new(),
        }
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
                self.held.push_back(Held::Row(row, slots));
                let Some(f) = frames else {
                    return Err(Error::Internal(
                        "a pair reached the temporal metrics without its frames".to_string(),
                    ));
                };
                let mut ready = Vec::new();
                let mut failed = None;
                for (k, slot) in self.inputs[input].iter_mut().enumerate() {
                    match slot.state.push(pair, &f.reference, &f.distorted) {
                        Ok(r) => ready.push((k, r)),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                f.give_back();
                if let Some(e) = failed {
                    return Err(e);
                }
                for (k, r) in ready {
                    self.fill(input, k, r);
                }
                Ok(self.release())
            }
            AggMsg::Finish { .. } => {
                for input in 0..self.inputs.len() {
                    for k in 0..self.inputs[input].len() {
                        let r = self.inputs[input][k].state.flush()?;
                        self.fill(input, k, r);
                    }
                }
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
                Held::Row(r, missing) if r.input == input && r.frame == pair => Some((r, missing)),
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
        self.held
            .drain(..)
            .map(|h| match h {
                Held::Row(r, _) => AggMsg::Row(r),
                Held::Ready(m) => m,
            })
            .collect()
    }

    /// The messages at the front that wait for nothing.
    fn release(&mut self) -> Vec<AggMsg> {
        let mut out = Vec::new();
        while let Some(h) = self.held.front() {
            if matches!(h, Held::Row(_, missing) if *missing > 0) {
                break;
            }
            match self.held.pop_front() {
                Some(Held::Row(r, _)) => out.push(AggMsg::Row(r)),
                Some(Held::Ready(m)) => out.push(m),
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
