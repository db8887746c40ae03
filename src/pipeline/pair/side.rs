//! An input as pairing sees it: the frames it queued and where it stands.

use std::collections::VecDeque;

use crate::frame::Frame;
use crate::output::records::Role;

/// An input as pairing sees it: its queue and its state.
#[derive(Debug)]
pub(super) struct Side {
    pub(super) role: Role,
    /// The input as events and messages name it: its credentials hidden.
    pub(super) path: String,
    pub(super) queue: VecDeque<Frame>,
    /// No more messages will come (ended, failed or disconnected).
    pub(super) ended: bool,
    /// It reached its end (not merely stopped).
    pub(super) finished: bool,
    pub(super) lost: bool,
    pub(super) delivered: u64,
    /// Its timestamps were seen to jump (said once).
    pub(super) uneven: bool,
    /// The stream timestamp of its last frame.
    pub(super) last_pts: Option<f64>,
}

impl Side {
    pub(super) fn new(role: Role, path: &str) -> Self {
        Side {
            role,
            path: crate::redact::redact(path).into_owned(),
            queue: VecDeque::new(),
            ended: false,
            finished: false,
            lost: false,
            delivered: 0,
            uneven: false,
            last_pts: None,
        }
    }

    pub(super) fn drained(&self) -> bool {
        self.ended && self.queue.is_empty()
    }

    /// Notes the stream timestamp of a frame it delivered; whether its
    /// timeline broke there: back by more than a frame, or on by more than
    /// `JUMP_FRAMES` frames of `step` seconds (a wrap, a restarted sender,
    /// a splice), as opposed to a few frames lost.
    pub(super) fn timeline_broke(&mut self, pts: Option<f64>, step: f64) -> bool {
        let Some(t) = pts else {
            return false;
        };
        let broke = self
            .last_pts
            .is_some_and(|last| t - last < -step || t - last > JUMP_FRAMES * step);
        self.last_pts = Some(t);
        broke
    }
}

/// A forward jump of more frames than this is a new timeline.
const JUMP_FRAMES: f64 = 25.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_breaks_on_a_jump_back_or_far_ahead_only() {
        let mut s = Side::new(Role::Distorted, "d");
        let step = 0.04;
        assert!(!s.timeline_broke(Some(10.0), step));
        assert!(!s.timeline_broke(Some(10.04), step));
        // a few frames lost
        assert!(!s.timeline_broke(Some(10.4), step));
        assert!(!s.timeline_broke(None, step));
        // a wrap or a restart: back
        assert!(s.timeline_broke(Some(1.4), step));
        // a splice: far ahead
        assert!(s.timeline_broke(Some(100.0), step));
        assert!(!s.timeline_broke(Some(100.04), step));
    }
}
