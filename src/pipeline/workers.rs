//! The metric workers: each job measures one pair on the rayon pool and
//! sends its row to the monitor, then gives the frames' buffers back.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::frame::signature::Signature;
use crate::frame::{Frame, FramePool};
use crate::metrics::MetricSet;
use crate::monitor::AggMsg;
use crate::monitor::messages::{Measured, PairFrames};
use crate::monitor::worst::WorstCapture;

/// One pair to measure.
pub struct Job {
    /// Sequence number of its row.
    pub seq: u64,
    /// Distorted input index.
    pub input: usize,
    /// Pair index of that input.
    pub frame: u64,
    /// The reference frame (shared by every distorted input's pair).
    pub reference: Arc<Frame>,
    /// The distorted frame.
    pub distorted: Frame,
    /// The metrics.
    pub set: Arc<MetricSet>,
    /// Where the row goes.
    pub atx: Sender<AggMsg>,
    /// Where the reference frame's buffer goes back.
    pub ref_pool: FramePool,
    /// Where the distorted frame's buffer goes back.
    pub dist_pool: FramePool,
    /// Releases the pairing's token when the job ends.
    pub done: Receiver<()>,
    /// Keeps pictures of the worst frames.
    pub capture: Option<Arc<WorstCapture>>,
}

impl Job {
    /// Measures the pair and sends its row (or the failure) on.
    pub fn run(self) {
        let started = Instant::now();
        if let Some(ms) = slow_metrics_ms() {
            // the lag bound's tests stall the metric workers this way
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let row = self.set.compute(&self.reference, &self.distorted);
        let signature = Signature::of(&self.reference, &self.distorted);
        let finished = Instant::now();
        let decoded_at = match (self.reference.decoded_at, self.distorted.decoded_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let arrived = match (self.reference.arrived_at, self.distorted.arrived_at) {
            (Some(a), Some(b)) => Some((a.max(b), a.max(b).duration_since(a.min(b)))),
            (a, b) => a.or(b).map(|t| (t, std::time::Duration::ZERO)),
        };
        let damaged = self.reference.damaged || self.distorted.damaged;
        let (ref_frame, dist_frame, pts) = (
            self.reference.index,
            self.distorted.index,
            self.reference.pts,
        );
        // a temporal key's value comes later: the monitor offers those
        if let (Some(c), Ok(r)) = (&self.capture, &row)
            && let Some(v) = r.values.first()
            && !v.is_nan()
        {
            c.offer(
                self.input,
                self.frame,
                &r.values,
                self.reference.pts,
                &self.reference,
                &self.distorted,
            );
        }
        // a temporal metric reads the frames in the monitor, in order
        let (row, frames) = match row {
            Ok(row) if self.set.has_temporal() => (
                Ok(row),
                Some(PairFrames {
                    reference: self.reference,
                    distorted: self.distorted,
                    ref_pool: self.ref_pool,
                    dist_pool: self.dist_pool,
                }),
            ),
            other => {
                self.dist_pool.give(self.distorted);
                if let Ok(f) = Arc::try_unwrap(self.reference) {
                    self.ref_pool.give(f);
                }
                (other, None)
            }
        };
        let msg = match row {
            Ok(row) => AggMsg::Row(Box::new(Measured {
                seq: self.seq,
                input: self.input,
                frame: self.frame,
                ref_frame,
                dist_frame,
                pts,
                row,
                started,
                finished,
                decoded_at,
                arrived,
                signature,
                damaged,
                frames,
            })),
            Err(error) => AggMsg::Failed {
                seq: self.seq,
                error,
            },
        };
        // A closed aggregator means the run is stopping: the row has nowhere to go.
        if self.atx.send(msg).is_err() {
            // stopping
        }
        if self.done.recv().is_err() {
            // the pairing loop is gone; nothing to release
        }
    }
}

/// `VQM_TEST_SLOW_METRICS_MS`: every pair takes at least this long to
/// measure (a test hook that stalls the metric workers, to check the lag
/// bound without relying on a loaded machine).
fn slow_metrics_ms() -> Option<u64> {
    static MS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *MS.get_or_init(|| {
        std::env::var("VQM_TEST_SLOW_METRICS_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}
