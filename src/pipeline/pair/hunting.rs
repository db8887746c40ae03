//! Live inputs paired by time: where pairing meets [`live`]'s trails, hunts
//! and checks. A hunt starts at the first frames, after a restart or a
//! broken timeline, and when a pair is found wrong; its pairs are pending
//! meanwhile. Its result sets the shift pairing goes by, and every pair
//! made by time is checked by its content.

use crate::frame::Frame;
use crate::output::records::EventKind;
use crate::pipeline::sync;

use super::live::{self, Catch, Glimpse, Hunt};
use super::{Align, Dist, PairOut, Pairing};

/// A shift found: the shift, the index offset, its score, the runner-up
/// and the delay between the inputs' arrivals.
type Found = (f64, i64, f64, Option<(i64, f64)>, Option<f64>);

impl Dist {
    /// Writes the `sync` event of pairing by the shift `found`; `what`
    /// says how it was found.
    fn say_paired(
        &self,
        i: usize,
        what: &str,
        found: Found,
        keeps_pending: bool,
        out: &mut impl PairOut,
    ) {
        let (shift, offset, psnr, runner_up, delay) = found;
        let late = match delay {
            Some(s) => format!("its pictures arrive {s:.2} s after the reference's, "),
            None => String::new(),
        };
        let message = format!(
            "'{}' {what} {late}paired by time (reference frame j{offset:+} pairs with distorted frame j, mean luma PSNR {psnr:.2} dB)",
            self.side.path
        );
        let kind = EventKind::Sync {
            offset,
            psnr: Some(psnr),
            runner_up,
            keeps_pending,
            delay,
            shift: Some(shift),
        };
        out.event(self.event(i, kind, message), Vec::new());
    }

    /// Starts the watch over the range once a shift is found.
    fn start_watch(&mut self, step: f64, range: usize, peak: f64) {
        let from = self.trail.as_ref().map_or(0, |t| t.next_seq());
        self.watch = Some(Hunt::new(step, range, from, peak));
    }

    /// Starts a hunt for this input's shift from its next frame.
    pub(super) fn start_hunt(&mut self, step: f64, range: usize, peak: f64) {
        let from = self.trail.as_ref().map_or(0, |t| t.next_seq());
        self.hunt = Some(Hunt::new(step, range, from, peak));
        self.pending_shifts = None;
    }

    /// Notes the shift of a pair made while pending.
    pub(super) fn note_pending_shift(&mut self, r: &Frame, d: &Frame) {
        let (Some(a), Some(b)) = (r.abs_pts, d.abs_pts) else {
            return;
        };
        let s = b - a;
        self.pending_shifts = Some(match self.pending_shifts {
            None => (s, s),
            Some((lo, hi)) => (lo.min(s), hi.max(s)),
        });
    }
}

impl Pairing {
    /// The reference frame `rf` is taken: into its trail, and scored by
    /// every hunt.
    pub(super) fn note_ref(&mut self, rf: &Frame) {
        let Some(trail) = self.trail.as_mut() else {
            return;
        };
        trail.push(Glimpse::of(rf));
        for d in &mut self.dists {
            let Some(dt) = d.trail.as_ref() else {
                continue;
            };
            for h in [d.hunt.as_mut(), d.watch.as_mut()].into_iter().flatten() {
                h.see_ref(trail, dt);
            }
        }
    }

    fn step(&self) -> f64 {
        2.0 * self.settings.pts_tolerance
    }

    /// Judges input `i`'s hunt: pairs by the shift found, or says why the
    /// sync stays pending (starting again once the hunt saw its range).
    pub(super) fn judge_hunt(&mut self, i: usize, out: &mut impl PairOut) {
        let c = self.settings.confidence.unwrap_or_default();
        let (range, tol, peak) = (
            self.settings.sync_range,
            self.settings.pts_tolerance,
            self.settings.peak,
        );
        let step = self.step();
        let Some(refs) = self.trail.as_ref() else {
            return;
        };
        let Some(d) = self.dists.get_mut(i) else {
            return;
        };
        if d.hunt.is_none() {
            return self.judge_watch(i, out);
        }
        let (Some(h), Some(dt)) = (d.hunt.as_ref(), d.trail.as_ref()) else {
            return;
        };
        let (catch, settled, exhausted) = (
            h.judge(c, refs, dt),
            h.seen >= 3 * live::MIN_FRAMES,
            h.exhausted(),
        );
        match catch {
            Some(Catch::Found {
                shift,
                offset,
                psnr,
                runner_up,
                delay,
            }) => {
                let keeps_pending = d.uncertain.is_some()
                    && d.pending_shifts.is_none_or(|(lo, hi)| {
                        (lo - shift).abs() <= tol && (hi - shift).abs() <= tol
                    });
                let moved = d.align != Align::Pts || (d.pts_shift - shift).abs() > tol;
                d.hunt = None;
                d.align = Align::Pts;
                d.relearn = false;
                d.pts_delta = None;
                d.pts_shift = shift;
                d.aligning = moved;
                d.pending_shifts = None;
                d.offset = offset;
                d.uncertain = None;
                let found = (shift, offset, psnr, runner_up, delay);
                d.say_paired(i, "synchronised:", found, keeps_pending, out);
                d.start_watch(step, range, peak);
                return;
            }
            Some(Catch::Low { psnr }) if settled => {
                d.uncertain(i, "low_score", Some((psnr, None)), range, out);
            }
            Some(Catch::Ambiguous {
                psnr, runner_up, ..
            }) if settled => {
                d.uncertain(i, "ambiguous", Some((psnr, Some(runner_up))), range, out);
            }
            _ => {}
        }
        if exhausted {
            d.start_hunt(step, range, peak);
        }
    }

    /// Judges input `i`'s watch (every [`live::MIN_FRAMES`] frames): when
    /// another shift is now clearly the best, pairing moves there.
    fn judge_watch(&mut self, i: usize, out: &mut impl PairOut) {
        let c = self.settings.confidence.unwrap_or_default();
        let (range, peak) = (self.settings.sync_range, self.settings.peak);
        let step = self.step();
        let Some(refs) = self.trail.as_ref() else {
            return;
        };
        let Some(d) = self.dists.get_mut(i) else {
            return;
        };
        let (Some(w), Some(dt)) = (d.watch.as_ref(), d.trail.as_ref()) else {
            return;
        };
        if w.exhausted() {
            d.start_watch(step, range, peak);
            return;
        }
        if !w.seen.is_multiple_of(live::MIN_FRAMES) || !w.fresh() {
            return;
        }
        let verdict = w.judge(c, refs, dt);
        if let Some(w) = d.watch.as_mut() {
            w.mark();
        }
        let Some(Catch::Found {
            shift,
            offset,
            psnr,
            runner_up,
            delay,
        }) = verdict
        else {
            return;
        };
        if (shift - d.pts_shift).abs() <= (sync::NEIGHBOURS as f64 + 0.5) * step
            || d.uncertain.is_some()
        {
            return;
        }
        d.align = Align::Pts;
        d.pts_delta = None;
        d.pts_shift = shift;
        d.aligning = true;
        d.offset = offset;
        let found = (shift, offset, psnr, runner_up, delay);
        let what = "re-synchronised: another pairing is clearly better;";
        d.say_paired(i, what, found, false, out);
        d.start_watch(step, range, peak);
    }

    /// Checks the pair of input `i` about to be made by time: a mis-pair
    /// makes it (and what follows) pending at once and starts a hunt.
    pub(super) fn check_pair(&mut self, i: usize, out: &mut impl PairOut) {
        let (range, tol, peak) = (
            self.settings.sync_range,
            self.settings.pts_tolerance,
            self.settings.peak,
        );
        let step = self.step();
        let Some(refs) = self.trail.as_ref() else {
            return;
        };
        let Some(d) = self.dists.get_mut(i) else {
            return;
        };
        if d.uncertain.is_some() || d.hunt.is_some() || d.align != Align::Pts {
            return;
        }
        let Some(dt) = d.trail.as_ref() else {
            return;
        };
        let Some(m) = live::mispaired(refs, dt, tol, peak) else {
            return;
        };
        let path = d.side.path.clone();
        d.uncertain_because(
            i,
            "mispaired",
            format!(
                "'{path}': a pair does not show the same picture (luma thumbnails {:.1} dB apart where a picture {:+.2} s away matches at {:.1} dB); records are pending while the pairing is searched again",
                m.own, m.away, m.better
            ),
            Some((m.own, None)),
            out,
        );
        d.start_hunt(step, range, peak);
    }
}
