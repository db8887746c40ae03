//! Event records: what happened during a run, each kind with its own
//! fields.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Which input an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The reference.
    Reference,
    /// A distorted input.
    Distorted,
}

impl Role {
    /// `reference` or `distorted`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Reference => "reference",
            Role::Distorted => "distorted",
        }
    }
}

/// What happened, with the details each kind carries.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The pairing offset was found (or not: `psnr` is `None`), or found
    /// again at another place; records are no longer pending.
    Sync {
        /// Reference index minus distorted index from here on.
        offset: i64,
        /// Mean thumbnail luma PSNR at that offset.
        psnr: Option<f64>,
        /// The next best distinct offset and its score.
        runner_up: Option<(i64, f64)>,
        /// The pairs measured while the sync was pending were all at this
        /// offset: they enter the statistics now.
        keeps_pending: bool,
        /// Live, paired by time: how much later (seconds) the distorted
        /// input's pictures arrive than the same reference pictures, and
        /// its stream clock minus the reference's for the same picture.
        delay: Option<f64>,
        shift: Option<f64>,
    },
    /// The offset is not (or no longer) known for sure: records are
    /// marked pending, fire no alert and enter no statistic until a
    /// `sync` event.
    SyncUncertain {
        /// `searching`, `low_score` (no offset clears the floor) or
        /// `ambiguous` (another offset scores within the margin).
        reason: &'static str,
        /// The offset pairing now.
        offset: i64,
        /// The best score found, if a search has ended.
        psnr: Option<f64>,
        /// The rival offset and its score (`ambiguous`).
        runner_up: Option<(i64, f64)>,
    },
    /// A reference frame had no distorted frame at its time.
    Dropped {
        /// The reference frame.
        ref_frame: u64,
        /// Its presentation time, on the frame records' time base.
        pts: Option<f64>,
    },
    /// A packet or frame failed to decode.
    DecodeError {
        /// Frames the input had delivered before.
        after_frames: u64,
    },
    /// An input's timeline and index pairing disagree: its first frame
    /// sits at another place on its own timeline than the reference's
    /// does (frames lost at its start), or its timestamps advance unevenly
    /// (variable frame rate, frames missing from the file).
    Timeline {
        /// Where (the input's own presentation time, seconds).
        pts: Option<f64>,
        /// How much later its first frame is than the reference's, each
        /// taken from its own stream's start (seconds); `None` for uneven
        /// timestamps.
        difference: Option<f64>,
        /// How its frames are paired from here: `pts` or `index`.
        paired_by: &'static str,
    },
    /// An input's picture size or pixel format changed mid-stream; its
    /// frames are converted from here on.
    FormatChange {
        /// Frames the input had delivered before.
        after_frames: u64,
        /// The format before (`yuv420p 640x360`).
        from: String,
        /// The format after.
        to: String,
    },
    /// A live input was silent at start-up and was waited for.
    StreamWaiting {
        /// Seconds from opening it to its first data.
        waited: f64,
    },
    /// A live input went silent or failed.
    StreamLost {
        /// Frames the input had delivered before.
        after_frames: u64,
    },
    /// A lost live input is back.
    StreamRestored {
        /// Reconnection attempts it took.
        attempts: u64,
    },
    /// The distorted picture repeats while the reference moves.
    Frozen {
        /// Pair index.
        frame: u64,
        /// Reference frame index.
        ref_frame: u64,
    },
    /// The distorted picture is black while the reference is not.
    Black {
        /// Pair index.
        frame: u64,
        /// Reference frame index.
        ref_frame: u64,
    },
    /// An alert rule started to hold.
    Alert {
        /// Pair index.
        frame: u64,
        /// The value that made it hold.
        value: f64,
        /// The rule as written.
        rule: String,
    },
    /// An alert rule stopped holding.
    Recovered {
        /// Pair index.
        frame: u64,
        /// The value that ended it.
        value: f64,
        /// The rule as written.
        rule: String,
    },
    /// Live: pairs older than `--max-lag` are dropped unmeasured (said
    /// at the first of each run of drops).
    LagDrop {
        /// The reference frame of the first pair dropped.
        ref_frame: u64,
        /// How long ago its later frame arrived (seconds).
        lag: f64,
    },
    /// Live: the monitor cannot measure every pair in real time and
    /// measures one pair in `every` (1: every pair again).
    Overload {
        /// Pairs per pair measured from here.
        every: u64,
        /// The lag that decided it (seconds).
        lag: f64,
    },
    /// Frames were left unpaired at the end.
    Mismatch {
        /// Reference frames not measured.
        unpaired_reference: u64,
        /// Distorted frames not measured.
        unpaired_distorted: u64,
    },
}

/// Every event kind, as written in the records (the counters of
/// `/metrics` start at 0 for each).
pub const EVENT_KINDS: [&str; 16] = [
    "sync",
    "sync_uncertain",
    "dropped",
    "decode_error",
    "timeline",
    "format_change",
    "stream_waiting",
    "stream_lost",
    "stream_restored",
    "frozen",
    "black",
    "alert",
    "recovered",
    "mismatch",
    "lag_drop",
    "overload",
];

impl EventKind {
    /// The position of this kind in [`EVENT_KINDS`].
    pub fn index(&self) -> usize {
        match self {
            EventKind::Sync { .. } => 0,
            EventKind::SyncUncertain { .. } => 1,
            EventKind::Dropped { .. } => 2,
            EventKind::DecodeError { .. } => 3,
            EventKind::Timeline { .. } => 4,
            EventKind::FormatChange { .. } => 5,
            EventKind::StreamWaiting { .. } => 6,
            EventKind::StreamLost { .. } => 7,
            EventKind::StreamRestored { .. } => 8,
            EventKind::Frozen { .. } => 9,
            EventKind::Black { .. } => 10,
            EventKind::Alert { .. } => 11,
            EventKind::Recovered { .. } => 12,
            EventKind::Mismatch { .. } => 13,
            EventKind::LagDrop { .. } => 14,
            EventKind::Overload { .. } => 15,
        }
    }

    /// The `kind` written in the record.
    pub fn name(&self) -> &'static str {
        EVENT_KINDS[self.index()]
    }
}

/// Something that happened during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Distorted input index it concerns, if any.
    pub input: Option<usize>,
    /// Which input it concerns by role and path.
    pub source: Option<(Role, String)>,
    /// Human-readable explanation.
    pub message: String,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "event")?;
        m.serialize_entry("kind", self.kind.name())?;
        if let Some(i) = self.input {
            m.serialize_entry("input", &i)?;
        }
        if let Some((role, path)) = &self.source {
            m.serialize_entry("role", role.name())?;
            m.serialize_entry("path", path)?;
        }
        match &self.kind {
            EventKind::Sync {
                offset,
                psnr,
                runner_up,
                keeps_pending,
                delay,
                shift,
            } => {
                m.serialize_entry("offset", offset)?;
                if let Some(p) = psnr {
                    m.serialize_entry("psnr", p)?;
                }
                runner(&mut m, runner_up)?;
                m.serialize_entry("keeps_pending", keeps_pending)?;
                if let Some(d) = delay {
                    m.serialize_entry("delay_s", d)?;
                }
                if let Some(t) = shift {
                    m.serialize_entry("pts_shift_s", t)?;
                }
            }
            EventKind::SyncUncertain {
                reason,
                offset,
                psnr,
                runner_up,
            } => {
                m.serialize_entry("reason", reason)?;
                m.serialize_entry("offset", offset)?;
                if let Some(p) = psnr {
                    m.serialize_entry("psnr", p)?;
                }
                runner(&mut m, runner_up)?;
            }
            EventKind::Dropped { ref_frame, pts } => {
                m.serialize_entry("ref_frame", ref_frame)?;
                if let Some(t) = pts {
                    m.serialize_entry("pts", t)?;
                }
            }
            EventKind::DecodeError { after_frames } | EventKind::StreamLost { after_frames } => {
                m.serialize_entry("after_frames", after_frames)?;
            }
            EventKind::Timeline {
                pts,
                difference,
                paired_by,
            } => {
                if let Some(t) = pts {
                    m.serialize_entry("pts", t)?;
                }
                if let Some(d) = difference {
                    m.serialize_entry("difference", d)?;
                }
                m.serialize_entry("paired_by", paired_by)?;
            }
            EventKind::FormatChange {
                after_frames,
                from,
                to,
            } => {
                m.serialize_entry("after_frames", after_frames)?;
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
            }
            EventKind::StreamRestored { attempts } => m.serialize_entry("attempts", attempts)?,
            EventKind::StreamWaiting { waited } => m.serialize_entry("waited", waited)?,
            EventKind::LagDrop { ref_frame, lag } => {
                m.serialize_entry("ref_frame", ref_frame)?;
                m.serialize_entry("lag", lag)?;
            }
            EventKind::Overload { every, lag } => {
                m.serialize_entry("every", every)?;
                m.serialize_entry("lag", lag)?;
            }
            EventKind::Frozen { frame, ref_frame } | EventKind::Black { frame, ref_frame } => {
                m.serialize_entry("frame", frame)?;
                m.serialize_entry("ref_frame", ref_frame)?;
            }
            EventKind::Alert { frame, value, rule }
            | EventKind::Recovered { frame, value, rule } => {
                m.serialize_entry("frame", frame)?;
                m.serialize_entry("value", value)?;
                m.serialize_entry("rule", rule)?;
            }
            EventKind::Mismatch {
                unpaired_reference,
                unpaired_distorted,
            } => {
                m.serialize_entry("unpaired_reference", unpaired_reference)?;
                m.serialize_entry("unpaired_distorted", unpaired_distorted)?;
            }
        }
        m.serialize_entry("message", &self.message)?;
        m.end()
    }
}

/// The runner-up of a sync search as `runner_up_offset` and
/// `runner_up_psnr`, when there is one.
fn runner<M: SerializeMap>(m: &mut M, runner_up: &Option<(i64, f64)>) -> Result<(), M::Error> {
    if let Some((o, p)) = runner_up {
        m.serialize_entry("runner_up_offset", o)?;
        m.serialize_entry("runner_up_psnr", p)?;
    }
    Ok(())
}
