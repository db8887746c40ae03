//! Drives the pairing state machine ([`super::pair`]) from the decoders'
//! channels: waits for the next message of an input that has room, hands
//! it over, and turns the pairs it gives into metric jobs on the worker
//! pool. Frame buffers go back to their decoder's pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, bounded};

use crate::error::Error;
use crate::frame::{Frame, FramePool};
use crate::input::DecodeEvent;
use crate::metrics::MetricSet;
use crate::monitor::worst::WorstCapture;
use crate::monitor::{AggMsg, PairCounts};
use crate::output::records::{Event, Role};
use crate::pipeline::pair::{PairOut, Pairing, Progress, Who};
use crate::pipeline::workers::Job;

/// A decoder as the run holds it: its channel, its buffer pool, its thread.
pub struct Source {
    /// Which input it is.
    pub role: Role,
    /// The input as messages name it: its credentials hidden.
    pub path: String,
    /// Decoder output.
    pub rx: Receiver<DecodeEvent>,
    /// Where its frame buffers go back.
    pub pool: FramePool,
    /// Its decoder thread, returning its busy time.
    pub handle: Option<JoinHandle<Duration>>,
}

/// Turns pairing's output into jobs, events and recycled buffers.
struct Out<'a> {
    seq: u64,
    set: &'a Arc<MetricSet>,
    workers: &'a rayon::ThreadPool,
    atx: &'a Sender<AggMsg>,
    ref_pool: FramePool,
    dist_pools: Vec<FramePool>,
    /// At most this many jobs in flight: a token each.
    tokens: (Sender<()>, Receiver<()>),
    capture: Option<Arc<WorstCapture>>,
}

impl Out<'_> {
    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }
}

impl PairOut for Out<'_> {
    fn pair(
        &mut self,
        input: usize,
        index: u64,
        reference: &Arc<Frame>,
        distorted: Frame,
    ) -> Result<(), Error> {
        if self.tokens.0.send(()).is_err() {
            return Err(Error::Internal("worker tokens closed".to_string()));
        }
        let job = Job {
            seq: self.next_seq(),
            input,
            frame: index,
            reference: reference.clone(),
            distorted,
            set: self.set.clone(),
            atx: self.atx.clone(),
            ref_pool: self.ref_pool.clone(),
            dist_pool: self.dist_pools[input].clone(),
            done: self.tokens.1.clone(),
            capture: self.capture.clone(),
        };
        self.workers.spawn(move || job.run());
        Ok(())
    }

    fn release(&mut self, who: Who, frame: Frame) {
        match who {
            Who::Reference => self.ref_pool.give(frame),
            Who::Distorted(i) => {
                if let Some(p) = self.dist_pools.get(i) {
                    p.give(frame);
                }
            }
        }
    }

    fn event(&mut self, event: Event, decode_error_for: Vec<usize>) {
        let seq = self.next_seq();
        let msg = AggMsg::Event {
            seq,
            event,
            decode_error_for,
        };
        if self.atx.send(msg).is_err() {
            // the aggregator stopped: the run is ending
        }
    }
}

/// Everything pairing runs with besides its state.
pub struct Feed<'a> {
    /// The metrics.
    pub set: &'a Arc<MetricSet>,
    /// The worker pool.
    pub workers: &'a rayon::ThreadPool,
    /// Where rows and events go.
    pub atx: &'a Sender<AggMsg>,
    /// Set to end the run early.
    pub stop: &'a AtomicBool,
    /// Jobs in flight at most.
    pub in_flight: usize,
    /// Keeps pictures of the worst frames.
    pub capture: Option<Arc<WorstCapture>>,
}

/// What pairing hands back: the next sequence number (or the failure),
/// per-input counts, frames the reference delivered and whether it reached
/// its end.
pub struct Fed {
    /// The next sequence number, or why pairing failed.
    pub result: Result<u64, Error>,
    /// Per-input counts.
    pub counts: Vec<PairCounts>,
    /// Frames the reference delivered.
    pub reference_frames: u64,
    /// Whether the reference reached its end.
    pub reference_finished: bool,
}

impl Feed<'_> {
    /// Runs pairing to the end of the reference (or a stop).
    pub fn run(&self, pairing: &mut Pairing, reference: &Source, sources: &[Source]) -> Fed {
        let mut out = Out {
            seq: 0,
            set: self.set,
            workers: self.workers,
            atx: self.atx,
            ref_pool: reference.pool.clone(),
            dist_pools: sources.iter().map(|s| s.pool.clone()).collect(),
            tokens: bounded::<()>(self.in_flight.max(1)),
            capture: self.capture.clone(),
        };
        let result = self.drive(pairing, reference, sources, &mut out);
        Fed {
            result: result.map(|()| out.seq),
            counts: pairing.counts(),
            reference_frames: pairing.reference_delivered(),
            reference_finished: pairing.reference_finished(),
        }
    }

    fn drive(
        &self,
        pairing: &mut Pairing,
        reference: &Source,
        sources: &[Source],
        out: &mut Out<'_>,
    ) -> Result<(), Error> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match pairing.advance(out)? {
                Progress::ReferenceDone => break,
                Progress::LimitReached => return Ok(()),
                Progress::Wants => {}
            }
            self.pull(pairing, reference, sources, out)?;
        }
        // The reference has ended: the rest of every distorted input is unpaired.
        for (i, s) in sources.iter().enumerate() {
            let who = Who::Distorted(i);
            loop {
                if self.stop.load(Ordering::Relaxed) || pairing.finish_input(i, out) {
                    break;
                }
                let msg = match s.rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        pairing.disconnected(who);
                        break;
                    }
                };
                pairing.receive(who, msg, out)?;
                if pairing.is_lost(who) {
                    // a live input that drops after the reference ended: stop here
                    break;
                }
            }
        }
        Ok(())
    }

    /// Waits (100 ms at most) for the next message of an input that has
    /// room in its queue, and hands it to pairing.
    fn pull(
        &self,
        pairing: &mut Pairing,
        reference: &Source,
        sources: &[Source],
        out: &mut Out<'_>,
    ) -> Result<(), Error> {
        let candidates = std::iter::once((Who::Reference, reference)).chain(
            sources
                .iter()
                .enumerate()
                .map(|(i, s)| (Who::Distorted(i), s)),
        );
        let ready: Vec<(Who, &Source)> = candidates.filter(|(w, _)| pairing.has_room(*w)).collect();
        if ready.is_empty() {
            return Ok(());
        }
        let (who, msg) = {
            let mut sel = Select::new();
            for (_, s) in &ready {
                sel.recv(&s.rx);
            }
            let Ok(op) = sel.select_timeout(Duration::from_millis(100)) else {
                return Ok(());
            };
            let index = op.index();
            let (who, s) = ready[index];
            (who, op.recv(&s.rx))
        };
        match msg {
            Ok(m) => pairing.receive(who, m, out),
            Err(_) => {
                pairing.disconnected(who);
                if self.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let path = match who {
                    Who::Reference => &reference.path,
                    Who::Distorted(i) => &sources[i].path,
                };
                Err(Error::Internal(format!(
                    "decoder of '{path}' stopped without a reason"
                )))
            }
        }
    }
}
