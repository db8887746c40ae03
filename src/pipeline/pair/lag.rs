//! The lag bound of live inputs: a pair whose later frame arrived (on its
//! input's real-time schedule) longer ago than `--max-lag` is dropped
//! unmeasured, both frames counted unpaired, until the lag is back under
//! half the bound: a monitor that fell behind catches up instead of falling
//! further behind.

use std::sync::Arc;

use crate::frame::Frame;
use crate::monitor::Cause;
use crate::output::records::{Event, EventKind, Role};

use super::{PairOut, Pairing, Who};

impl Pairing {
    /// Drops the pair of reference frame `rf` and input `i`'s head frame
    /// if it is too old; a `lag_drop` event starts each run of drops.
    /// Returns whether it dropped it.
    pub(super) fn lag_drop(&mut self, i: usize, rf: &Arc<Frame>, out: &mut impl PairOut) -> bool {
        let Some(max) = self.settings.max_lag else {
            return false;
        };
        let Some(d) = self.dists.get_mut(i) else {
            return false;
        };
        let later = match d.side.queue.front() {
            Some(df) => rf.arrived_at.into_iter().chain(df.arrived_at).max(),
            None => None,
        };
        // once dropping, drop until back under half the bound, so a
        // monitor that keeps falling behind catches up in runs, not in
        // every other pair
        let bound = if d.dropping { max / 2 } else { max };
        let lag = later.map(|t| t.elapsed());
        if lag.is_none_or(|l| l <= bound) {
            d.dropping = false;
            return false;
        }
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
        true
    }
}
