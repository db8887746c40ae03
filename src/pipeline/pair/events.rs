//! A decoder's messages other than frames and its end, as the events
//! pairing writes (and the input's state they change).

use super::Side;
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
