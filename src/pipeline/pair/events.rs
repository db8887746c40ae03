//! A decoder's messages other than frames and its end, as the events
//! pairing writes (and the input's state they change).

use super::{Align, Side};
use crate::input::DecodeEvent;
use crate::output::records::{Event, EventKind};
use crate::pipeline::timeline;

/// The event for decoder message `msg` of `src` (distorted input `which`,
/// or the reference), updating `src`'s state; `by_time` says whether a
/// jump in its timestamps is paired by time. `None` when nothing is to be
/// written (a timestamp jump after the first).
pub(super) fn of(
    src: &mut Side,
    which: Option<usize>,
    msg: DecodeEvent,
    by_time: bool,
) -> Option<Event> {
    let (role, path) = (src.role, src.path.clone());
    let (kind, message) = match msg {
        DecodeEvent::DecodeError { cause } => (
            EventKind::DecodeError {
                after_frames: src.delivered,
            },
            cause,
        ),
        DecodeEvent::Gap { frames, pts } => {
            if src.uneven {
                return None;
            }
            src.uneven = true;
            return Some(timeline::uneven(role, &path, which, frames, pts, by_time));
        }
        DecodeEvent::FormatChange { from, to } => {
            let message = format!(
                "{} '{path}': the pictures change from {from} to {to} after {} frame(s); \
                 converted to the measured format from here",
                role.name(),
                src.delivered
            );
            let kind = EventKind::FormatChange {
                after_frames: src.delivered,
                from,
                to,
            };
            (kind, message)
        }
        DecodeEvent::Lost { cause } => {
            src.lost = true;
            (
                EventKind::StreamLost {
                    after_frames: src.delivered,
                },
                format!("{} '{path}' lost: {cause}; reconnecting", role.name()),
            )
        }
        DecodeEvent::Restored { attempts } => {
            src.lost = false;
            (
                EventKind::StreamRestored { attempts },
                format!(
                    "{} '{path}' restored after {attempts} attempt(s)",
                    role.name()
                ),
            )
        }
        DecodeEvent::Frame(_) | DecodeEvent::End { .. } | DecodeEvent::Failed(_) => return None,
    };
    Some(Event {
        kind,
        input: which,
        source: Some((role, path)),
        message,
    })
}

impl super::Pairing {
    /// A jump in the timestamps of `which` (a distorted input, or the
    /// reference: every input) with no decode error: an input paired by
    /// index without a timestamp check turns to pairing by time, when its
    /// timeline was checked at the start (so the pairs so far are the same
    /// either way) and shares the reference's origin.
    pub(super) fn pair_by_time_after_a_jump(&mut self, which: Option<usize>) {
        let o = &self.settings.origins;
        for (i, d) in self.dists.iter_mut().enumerate() {
            let concerned = which.is_none_or(|w| w == i);
            let shared = o.check && o.shared.get(i).copied().unwrap_or(false);
            if concerned && shared && !d.guard && d.align == Align::Index && d.search.is_none() {
                d.align = Align::Pts;
            }
        }
    }
}
