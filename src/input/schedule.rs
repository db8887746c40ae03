//! The real-time schedule of a live input: a live sender sends its frames
//! as their timestamps come due, so the frame at time `pts` arrives at
//! `anchor + pts`. The anchor is the earliest the frames read so far allow
//! (a frame read late does not move it); it follows a sender's clock
//! drift at most [`DRIFT`] and starts again when the timeline does (a
//! restart, a jump back). The lag of a frame is how long after its
//! arrival on that schedule it is measured: time spent in the network
//! buffers, the decoder and the queues alike.

use std::time::{Duration, Instant};

/// How fast the anchor may move later to follow a sender whose clock is
/// slower than ours: 200 µs per second (200 ppm).
pub const DRIFT: f64 = 200e-6;

/// A jump back in the timestamps by more than this starts the schedule
/// again (seconds).
const JUMP_BACK: f64 = 0.5;

/// One live input's schedule.
#[derive(Debug, Default, Clone)]
pub struct Schedule {
    anchor: Option<Instant>,
    last: Option<(Instant, f64)>,
}

impl Schedule {
    /// Forgets the schedule (the input was reopened).
    pub fn reset(&mut self) {
        *self = Schedule::default();
    }

    /// When the frame at `pts` seconds, read at `now`, arrived on the
    /// schedule.
    pub fn arrival(&mut self, now: Instant, pts: f64) -> Instant {
        let due = Duration::from_secs_f64(pts.max(0.0));
        if let Some((_, last_pts)) = self.last
            && pts < last_pts - JUMP_BACK
        {
            self.reset();
        }
        let Some(candidate) = now.checked_sub(due) else {
            // timestamps beyond this process's clock: no schedule to keep
            self.reset();
            return now;
        };
        let anchor = match (self.anchor, self.last) {
            (Some(a), Some((then, _))) if candidate > a => {
                let creep = now.saturating_duration_since(then).as_secs_f64() * DRIFT;
                a + (candidate - a).min(Duration::from_secs_f64(creep))
            }
            (Some(a), _) => a.min(candidate),
            (None, _) => candidate,
        };
        self.anchor = Some(anchor);
        self.last = Some((now, pts));
        anchor + due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_on_time_have_no_lag_and_late_ones_show_it() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 25 fps, read on time
        for k in 0..10u64 {
            let now = at(1000 + 40 * k);
            assert_eq!(s.arrival(now, k as f64 * 0.04), now);
        }
        // the reader falls 600 ms behind: the frames arrived earlier
        let now = at(1000 + 40 * 10 + 600);
        let arrived = s.arrival(now, 0.4);
        let lag = now - arrived;
        assert!(
            lag > Duration::from_millis(599) && lag <= Duration::from_millis(600),
            "{lag:?}"
        );
        // a frame read early moves the schedule earlier at once
        let now = at(1000 + 40 * 11 - 20);
        assert_eq!(s.arrival(now, 0.44), now);
    }

    #[test]
    fn a_restart_of_the_timeline_starts_the_schedule_again() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for k in 0..50u64 {
            s.arrival(at(1000 + 40 * k), k as f64 * 0.04);
        }
        // the sender restarted: its timestamps begin again at 0
        let now = at(10_000);
        assert_eq!(s.arrival(now, 0.0), now, "no lag from the old timeline");
    }

    #[test]
    fn a_slow_sender_clock_is_followed_slowly() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        // the sender's second lasts 1.0001 of ours (100 ppm): after 1000 s
        // the frames come 100 ms later than their timestamps say
        let mut lag = Duration::ZERO;
        for k in 0..25_000u64 {
            let pts = k as f64 * 0.04;
            let now = t0 + Duration::from_secs_f64(1.0 + pts * 1.0001);
            lag = now - s.arrival(now, pts);
        }
        assert!(lag < Duration::from_millis(1), "{lag:?}");
    }
}
