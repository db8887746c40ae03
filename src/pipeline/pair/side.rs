//! An input as pairing sees it: the frames it queued and where it stands.

use std::collections::VecDeque;

use crate::frame::Frame;
use crate::output::records::Role;

/// An input as pairing sees it: its queue and its state.
#[derive(Debug)]
pub(super) struct Side {
    pub(super) role: Role,
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
}

impl Side {
    pub(super) fn new(role: Role, path: &str) -> Self {
        Side {
            role,
            path: path.to_string(),
            queue: VecDeque::new(),
            ended: false,
            finished: false,
            lost: false,
            delivered: 0,
            uneven: false,
        }
    }

    pub(super) fn drained(&self) -> bool {
        self.ended && self.queue.is_empty()
    }
}
