//! What the monitor receives: measured rows, events and the end of
//! pairing, each with a sequence number (the aggregator handles them in
//! sequence order).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::frame::signature::Signature;
use crate::frame::{Frame, FramePool};
use crate::metrics::Row;
use crate::output::records::Event;

pub use crate::output::records::{Cause, Unpaired};

/// Per-input counts when pairing ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairCounts {
    /// Reference frames not measured against this input.
    pub unpaired_reference: u64,
    /// Distorted frames not measured.
    pub unpaired_distorted: u64,
    /// Reference frames whose time had no distorted frame (`--align pts`).
    pub dropped: u64,
    /// Reference index minus distorted index of the last pairs.
    pub offset: i64,
    /// Pairs dropped unmeasured because they were older than `--max-lag`.
    pub lag_drops: u64,
    /// Live: pairs left unmeasured while overloaded (one in every k
    /// measured).
    pub shed: u64,
    /// The reference frames left unpaired, by cause.
    pub reference_causes: Unpaired,
    /// The distorted frames left unpaired, by cause.
    pub distorted_causes: Unpaired,
}

/// A measured pair, as a metric worker sends it.
pub struct Measured {
    /// Sequence number.
    pub seq: u64,
    /// Distorted input index.
    pub input: usize,
    /// Pair index of that input.
    pub frame: u64,
    /// Reference frame index.
    pub ref_frame: u64,
    /// Distorted frame index.
    pub dist_frame: u64,
    /// Reference pts in seconds.
    pub pts: f64,
    /// The values.
    pub row: Row,
    /// When measuring started.
    pub started: Instant,
    /// When it ended.
    pub finished: Instant,
    /// When the later of the two frames was decoded.
    pub decoded_at: Option<Instant>,
    /// Live inputs: when the later of the two frames arrived on its
    /// input's real-time schedule, and how long before it the earlier one
    /// did (the alignment delay).
    pub arrived: Option<(Instant, Duration)>,
    /// For the detectors.
    pub signature: Signature,
    /// Live: either picture was decoded from damaged data.
    pub damaged: bool,
    /// The pair's frames, when a temporal metric needs them in order.
    pub frames: Option<PairFrames>,
}

/// A pair's frames on their way to the temporal metrics, with the pools
/// their buffers go back to once those have read them.
pub struct PairFrames {
    /// The reference frame (shared by every distorted input's pair).
    pub reference: Arc<Frame>,
    /// The distorted frame.
    pub distorted: Frame,
    /// Where the reference frame's buffer goes back.
    pub ref_pool: FramePool,
    /// Where the distorted frame's buffer goes back.
    pub dist_pool: FramePool,
}

impl PairFrames {
    /// Hands the buffers back to their pools (the reference's once no
    /// other pair holds it).
    pub fn give_back(self) {
        self.dist_pool.give(self.distorted);
        if let Ok(f) = Arc::try_unwrap(self.reference) {
            self.ref_pool.give(f);
        }
    }
}

/// Messages to the aggregator, each with a sequence number: it handles
/// them in sequence order.
pub enum AggMsg {
    /// A measured pair.
    Row(Box<Measured>),
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
    /// The sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            AggMsg::Row(m) => m.seq,
            AggMsg::Event { seq, .. } | AggMsg::Failed { seq, .. } | AggMsg::Finish { seq, .. } => {
                *seq
            }
        }
    }
}
