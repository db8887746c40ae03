//! The lag bound of live inputs. A pair's lag is the longer of two: how
//! long ago its later frame arrived (on its input's real-time schedule),
//! and how long ago the oldest pair sent to be measured and not yet
//! recorded arrived (the time the metrics, temporal ones included, are
//! behind). Two answers to a monitor that cannot keep up:
//! - shedding: when the lag stays above half of `--max-lag` for a second,
//!   one pair in `every` is measured (2, 3, … at most [`MAX_EVERY`], one
//!   step a second), and back down one step once it stayed two seconds
//!   under a quarter of it (a wait that doubles, to
//!   a minute, each time stepping down proves too soon); an `overload`
//!   event says each change, the records carry `measured_every`;
//! - the bound: above `--max-lag`, pairs are dropped unmeasured, both
//!   frames counted unpaired, until the lag is back under half of it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::frame::Frame;
use crate::monitor::Cause;
use crate::output::records::{Event, EventKind, Role};

use super::{PairOut, Pairing, Who};

/// The most pairs per pair measured when shedding.
pub(super) const MAX_EVERY: u64 = 8;
/// How often shedding may step up, and down (the wait to step down
/// doubles, to a minute at most, each time a step down proves too soon).
const STEP_UP: Duration = Duration::from_secs(1);
const STEP_DOWN: Duration = Duration::from_secs(2);
const STEP_DOWN_MAX: Duration = Duration::from_secs(60);
/// Pairs in flight kept track of at most.
const IN_FLIGHT: usize = 4096;

/// One input's shedding state.
#[derive(Debug)]
pub(super) struct Shed {
    /// One pair in `every` is measured.
    every: u64,
    changed: Option<Instant>,
    /// Since when the lag has stayed above half the bound, or under a
    /// quarter of it (a burst of late pictures is no load).
    over: Option<Instant>,
    under: Option<Instant>,
    /// The last change was a step down, and how long the next one waits.
    went_down: bool,
    down_wait: Duration,
    /// Pairs offered since `every` last changed.
    offered: u64,
    /// Pairs left unmeasured by shedding.
    pub(super) shed: u64,
    /// Pairs sent to be measured and not yet recorded: pair index, the
    /// arrival of the later frame (if known) and when it was sent.
    in_flight: VecDeque<(u64, Option<Instant>, Instant)>,
}

impl Default for Shed {
    fn default() -> Self {
        Shed {
            every: 1,
            changed: None,
            over: None,
            under: None,
            went_down: false,
            down_wait: STEP_DOWN,
            offered: 0,
            shed: 0,
            in_flight: VecDeque::new(),
        }
    }
}

impl Shed {
    /// Pair `index`, whose later frame arrived at `arrived`, is sent.
    pub(super) fn sent(&mut self, index: u64, arrived: Option<Instant>) {
        if self.in_flight.len() == IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back((index, arrived, Instant::now()));
    }

    /// For the oldest pair not yet recorded, given the pairs recorded so
    /// far (`recorded`: the last index + 1): how long ago its later frame
    /// arrived, and how long the metrics have been behind: since the pair
    /// after it was sent (a temporal metric holds a pair until the next
    /// one comes, and a stream that pauses delays that one: neither is a
    /// load).
    fn behind(&mut self, recorded: u64, now: Instant) -> (Option<Duration>, Duration) {
        while self.in_flight.front().is_some_and(|(k, ..)| *k < recorded) {
            self.in_flight.pop_front();
        }
        let late = self
            .in_flight
            .front()
            .and_then(|(_, arrived, _)| arrived.map(|t| now.saturating_duration_since(t)));
        let waiting = self
            .in_flight
            .get(1)
            .map_or(Duration::ZERO, |(_, _, sent)| {
                now.saturating_duration_since(*sent)
            });
        (late, waiting)
    }
}

impl Pairing {
    /// Drops or sheds the pair of reference frame `rf` and input `i`'s
    /// head frame when the monitor is behind; a `lag_drop` event starts
    /// each run of drops, an `overload` event says each change of
    /// shedding. Returns whether the pair is left unmeasured.
    pub(super) fn lag_drop(&mut self, i: usize, rf: &Arc<Frame>, out: &mut impl PairOut) -> bool {
        let Some(max) = self.settings.max_lag else {
            return false;
        };
        let recorded = self
            .settings
            .recorded
            .as_ref()
            .and_then(|r| r.get(i))
            .map(|c| c.load(Ordering::Relaxed));
        let Some(d) = self.dists.get_mut(i) else {
            return false;
        };
        let now = Instant::now();
        let later = match d.side.queue.front() {
            Some(df) => rf.arrived_at.into_iter().chain(df.arrived_at).max(),
            None => None,
        };
        let own = later.map(|t| now.saturating_duration_since(t));
        let (late, behind) = match recorded {
            Some(r) => d.shed.behind(r, now),
            None => (None, Duration::ZERO),
        };
        let lag = match (own, late) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // shedding: step up when the lag stayed above half the bound for a
        // second, down when it stayed under a quarter (a burst of pictures
        // a decoder held until a loss is late, but no load)
        let total = lag.unwrap_or(Duration::ZERO).max(behind);
        let s = &mut d.shed;
        let high = total > max / 2;
        s.over = if high { s.over.or(Some(now)) } else { None };
        s.under = if total < max / 4 {
            s.under.or(Some(now))
        } else {
            None
        };
        let held =
            |t: Option<Instant>| t.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let (over, under) = (held(s.over), held(s.under));
        let since = s.changed.map(|t| now.saturating_duration_since(t));
        let before = s.every;
        if over >= STEP_UP && s.every < MAX_EVERY && since.is_none_or(|t| t >= STEP_UP) {
            if s.went_down && since.is_some_and(|t| t < 4 * s.down_wait) {
                // it stepped down too soon: wait longer next time
                s.down_wait = (s.down_wait * 2).min(STEP_DOWN_MAX);
            }
            s.every += 1;
            s.went_down = false;
        } else if under >= s.down_wait && s.every > 1 && since.is_none_or(|t| t >= s.down_wait) {
            s.every -= 1;
            s.went_down = true;
        }
        if s.every != before {
            s.changed = Some(now);
            s.offered = 0;
            let (every, path) = (s.every, d.side.path.clone());
            let message = if every > 1 {
                format!(
                    "'{path}': the monitor cannot measure every pair in real time ({:.2} s behind): one pair in {every} is measured",
                    total.as_secs_f64()
                )
            } else {
                format!("'{path}': the monitor keeps up again: every pair is measured")
            };
            out.event(
                Event {
                    kind: EventKind::Overload {
                        every,
                        lag: total.as_secs_f64(),
                    },
                    input: Some(i),
                    source: Some((Role::Distorted, path)),
                    message,
                },
                Vec::new(),
            );
        }
        // once dropping, drop until back under half the bound, so a
        // monitor that keeps falling behind catches up in runs, not in
        // every other pair
        let bound = if d.dropping { max / 2 } else { max };
        if lag.is_some_and(|l| l > bound) {
            if let Some(f) = d.pop(self.trail.as_ref()) {
                d.unpaired_dist.add(Cause::Lag);
                out.release(Who::Distorted(i), f);
            }
            d.unpaired_ref.add(Cause::Lag);
            d.lag_drops += 1;
            if !d.dropping {
                d.dropping = true;
                let lag = lag.map_or(f64::NAN, |l| l.as_secs_f64());
                let path = &d.side.path;
                out.event(
                    Event {
                        kind: EventKind::LagDrop {
                            ref_frame: rf.index,
                            lag,
                        },
                        input: Some(i),
                        source: Some((Role::Distorted, path.clone())),
                        message: format!(
                            "'{path}': {lag:.2} s behind the stream, over --max-lag ({:.2} s): pairs are dropped unmeasured until it catches up",
                            max.as_secs_f64()
                        ),
                    },
                    Vec::new(),
                );
            }
            return true;
        }
        d.dropping = false;
        let s = &mut d.shed;
        s.offered += 1;
        if s.every > 1 && !(s.offered - 1).is_multiple_of(s.every) {
            s.shed += 1;
            if let Some(f) = d.pop(self.trail.as_ref()) {
                d.unpaired_dist.add(Cause::Lag);
                out.release(Who::Distorted(i), f);
            }
            d.unpaired_ref.add(Cause::Lag);
            return true;
        }
        false
    }
}
