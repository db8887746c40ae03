//! Offering a reference frame to a distorted input: skipped, dropped, or
//! paired with its head frame (checked by content when paired by time).

use std::sync::Arc;

use crate::error::Error;
use crate::frame::Frame;
use crate::metrics::same_layout;
use crate::monitor::Cause;
use crate::output::records::{Event, EventKind, Role};
use crate::pipeline::sync::Thumb;

use super::{Align, PairOut, Pairing, Who};

impl Pairing {
    /// Pairs reference frame `rf` with distorted input `i`'s head frame,
    /// or counts it unpaired.
    pub(super) fn offer(
        &mut self,
        i: usize,
        rf: &Arc<Frame>,
        thumb: Option<&Thumb>,
        out: &mut impl PairOut,
    ) -> Result<(), Error> {
        let s = &self.settings;
        let d = &mut self.dists[i];
        d.ref_offered += 1;
        if let Some(search) = d.search.as_mut() {
            search.see_ref(rf, thumb);
        }
        if d.ref_skip > 0 {
            d.ref_skip -= 1;
            d.unpaired_ref.add(Cause::Offset);
            return Ok(());
        }
        let tol = s.pts_tolerance;
        let take = match d.side.queue.front() {
            None => false,
            Some(df) => match d.align {
                Align::Index if d.guard => match (rf.abs_pts, df.abs_pts, d.pts_delta) {
                    // later than expected: this reference frame's partner was lost
                    (Some(r), Some(t), Some(delta)) => (t - r) - delta <= tol,
                    _ => true,
                },
                Align::Index => true,
                Align::Pts => match (rf.abs_pts, df.abs_pts) {
                    (Some(r), Some(t)) => (t - d.pts_shift - r).abs() <= tol,
                    _ => true,
                },
            },
        };
        if !take && d.aligning && d.align == Align::Pts {
            // moving to a shift just found: not a drop
            d.unpaired_ref.add(Cause::Offset);
            return Ok(());
        }
        if !take {
            d.unpaired_ref.add(
                match (d.side.lost, d.side.drained(), d.side.queue.is_empty()) {
                    (true, ..) => Cause::Outage,
                    (_, true, _) | (_, _, true) => Cause::End,
                    _ => Cause::Timing,
                },
            );
            if (d.align == Align::Pts || d.guard) && !d.side.lost && !d.side.drained() {
                d.dropped += 1;
                let event = Event {
                    // on the frame records' time base
                    kind: EventKind::Dropped {
                        ref_frame: rf.index,
                        pts: Some(rf.pts),
                    },
                    input: Some(i),
                    source: Some((Role::Distorted, d.side.path.clone())),
                    message: format!(
                        "'{}' has no frame at {:.3} s (reference frame {})",
                        d.side.path, rf.pts, rf.index
                    ),
                };
                out.event(event, Vec::new());
            }
            return Ok(());
        }
        if self.lag_drop(i, rf, out) {
            return Ok(());
        }
        let d = &mut self.dists[i];
        let Some(df) = d.pop(self.trail.as_ref()) else {
            return Ok(());
        };
        d.aligning = false;
        if d.hunt.is_none() && d.align == Align::Pts {
            // by time: is it the same picture?
            self.check_pair(i, out);
        }
        let s = &self.settings;
        let d = &mut self.dists[i];
        if d.uncertain.is_some() {
            d.pending_rel
                .add(d.ref_offered as i64 - d.dist_taken as i64);
            d.note_pending_shift(rf, &df);
        }
        if s.frames.is_some_and(|n| d.seen >= n) {
            out.release(Who::Distorted(i), df);
            return Ok(());
        }
        let index = d.seen;
        d.seen += 1;
        if !index.is_multiple_of(s.every.max(1)) {
            // --every: not measured, on purpose
            out.release(Who::Distorted(i), df);
            return Ok(());
        }
        if !same_layout(rf, &df) {
            return Err(Error::Internal(format!(
                "frame {} of '{}' was not converted to the reference layout",
                df.index, d.side.path
            )));
        }
        d.offset = rf.index as i64 - df.index as i64;
        if d.relearn
            && let (Some(r), Some(t)) = (rf.abs_pts, df.abs_pts)
        {
            // the first pair at the offset found: the timelines' difference
            d.pts_shift = t - r;
            d.relearn = false;
            d.align = Align::Pts;
        }
        if d.guard
            && d.pts_delta.is_none()
            && let (Some(r), Some(t)) = (rf.abs_pts, df.abs_pts)
        {
            d.pts_delta = Some(t - r);
        }
        let later = rf.arrived_at.into_iter().chain(df.arrived_at).max();
        d.shed.sent(index, later);
        out.pair(i, index, rf, df)
    }
}
