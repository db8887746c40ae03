//! The sync search beside pairing: thumbnails of the frames both inputs
//! deliver, judged ([`sync::judge`]) once enough have come. Pairing goes on
//! at the current offset meanwhile; until a result is accepted its records
//! are pending (a `sync_uncertain` event says so, a `sync` event ends it).
//! Live inputs keep a search running after a sync is accepted, to see it
//! stop being the best.

use crate::frame::Frame;
use crate::output::records::{Event, EventKind, Role};
use crate::pipeline::sync::{self, Thumb, Verdict};

use super::live::{Glimpse, Trail};
use super::{Align, Dist, PairOut, Pairing};

/// The offsets (reference count minus distorted count) of the pairs made
/// while a sync is pending: none yet, always the same one, or several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Rel {
    #[default]
    None,
    One(i64),
    Mixed,
}

impl Rel {
    pub(super) fn add(&mut self, r: i64) {
        *self = match *self {
            Rel::None => Rel::One(r),
            Rel::One(x) if x == r => Rel::One(x),
            _ => Rel::Mixed,
        };
    }
}

/// A search in progress: the thumbnails of both inputs' frames from its
/// start, counted from the input's totals at that start.
#[derive(Debug)]
pub(super) struct Search {
    need: usize,
    max: usize,
    refs: Vec<Thumb>,
    dists: Vec<Thumb>,
    /// The input's reference and distorted counts when it started.
    start: (u64, u64),
    /// Frame indices of the first reference and distorted frames seen.
    first: (Option<u64>, Option<u64>),
    /// It checks a sync already accepted: its result only matters when
    /// another offset is now clearly the best.
    verify: bool,
}

impl Search {
    /// A search over `±max` frames starting at the input's counts `start`.
    pub(super) fn new(max: usize, start: (u64, u64), verify: bool) -> Self {
        Search {
            need: max + sync::COMPARE_FRAMES,
            max,
            refs: Vec::new(),
            dists: Vec::new(),
            start,
            first: (None, None),
            verify,
        }
    }

    /// Whether it still takes reference thumbnails.
    pub(super) fn wants_ref(&self) -> bool {
        self.refs.len() < self.need
    }

    /// The next reference frame offered to its input (its thumbnail, if
    /// already made for another input's search).
    pub(super) fn see_ref(&mut self, f: &Frame, thumb: Option<&Thumb>) {
        self.first.0.get_or_insert(f.index);
        if self.wants_ref() {
            self.refs.push(
                thumb
                    .cloned()
                    .unwrap_or_else(|| sync::thumb_within(f, sync::RUN_THUMB_WIDTH)),
            );
        }
    }

    /// The next distorted frame taken from its input's queue.
    pub(super) fn see_dist(&mut self, f: &Frame) {
        self.first.1.get_or_insert(f.index);
        if self.dists.len() < self.need {
            self.dists
                .push(sync::thumb_within(f, sync::RUN_THUMB_WIDTH));
        }
    }
}

impl Dist {
    /// Takes the head of the queue, counting it (and showing it to the
    /// search).
    /// `refs`: the reference's live trail, for a hunt.
    pub(super) fn pop(&mut self, refs: Option<&Trail>) -> Option<Frame> {
        let f = self.side.queue.pop_front()?;
        self.dist_taken += 1;
        if let Some(s) = self.search.as_mut() {
            s.see_dist(&f);
        }
        if let Some(trail) = self.trail.as_mut() {
            trail.push(Glimpse::of(&f));
            if let Some(refs) = refs {
                for h in [self.hunt.as_mut(), self.watch.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    h.see_dist(refs, trail);
                }
            }
        }
        Some(f)
    }

    /// Sets the skips so that the next pairs keep `rel` = reference count
    /// minus distorted count.
    fn pair_at(&mut self, rel: i64) {
        let k = rel - self.ref_offered as i64 + self.dist_taken as i64;
        self.ref_skip = k.max(0) as u64;
        self.dist_skip = (-k).max(0) as u64;
    }

    /// The offset pairing now, as reference count minus distorted count.
    fn rel_now(&self) -> i64 {
        (self.ref_offered + self.ref_skip) as i64 - (self.dist_taken + self.dist_skip) as i64
    }

    /// Starts a search (`verify`: of a sync already accepted).
    pub(super) fn start_search(&mut self, max: usize, verify: bool) {
        self.search = Some(Search::new(
            max,
            (self.ref_offered, self.dist_taken),
            verify,
        ));
    }

    /// Starts looking for the offset from scratch (at the start, after a
    /// restore): its records are pending until it is found.
    /// `learn_pts`: paired by index until the offset is found, the
    /// timelines' difference learnt again from the first pair there.
    pub(super) fn search_anew(
        &mut self,
        i: usize,
        max: usize,
        learn_pts: bool,
        out: &mut impl PairOut,
    ) {
        if learn_pts {
            self.align = Align::Index;
            self.relearn = false;
        }
        self.pending_rel = Rel::None;
        self.pts_delta = None;
        if self.uncertain.is_some_and(|r| r != "searching") {
            // says it searches again; a search started anew while one
            // runs (a timeline that keeps breaking) says nothing more
            self.uncertain = None;
        }
        if learn_pts && self.trail.is_some() {
            // by time: the hunt for the shift of the two streams' clocks
            self.search = None;
            self.watch = None;
            self.start_hunt(self.step, max, self.peak);
        } else {
            self.start_search(max, false);
        }
        self.uncertain(i, "searching", None, max, out);
    }

    pub(super) fn event(&self, i: usize, kind: EventKind, message: String) -> Event {
        Event {
            kind,
            input: Some(i),
            source: Some((Role::Distorted, self.side.path.clone())),
            message,
        }
    }

    /// Enters the uncertain state for `reason` with its own message.
    pub(super) fn uncertain_because(
        &mut self,
        i: usize,
        reason: &'static str,
        message: String,
        found: Option<(f64, Option<(i64, f64)>)>,
        out: &mut impl PairOut,
    ) {
        self.uncertain = Some(reason);
        let kind = EventKind::SyncUncertain {
            reason,
            offset: self.offset,
            psnr: found.map(|f| f.0),
            runner_up: found.and_then(|f| f.1),
        };
        let event = self.event(i, kind, message);
        out.event(event, Vec::new());
    }

    /// Enters (or stays in) the uncertain state for `reason`; the event
    /// comes when the reason changes.
    pub(super) fn uncertain(
        &mut self,
        i: usize,
        reason: &'static str,
        found: Option<(f64, Option<(i64, f64)>)>,
        range: usize,
        out: &mut impl PairOut,
    ) {
        if self.uncertain == Some(reason) {
            return;
        }
        self.uncertain = Some(reason);
        let offset = self.offset;
        let path = &self.side.path;
        let message = match (reason, found) {
            ("searching", _) => format!(
                "'{path}': looking for the offset (up to {range} frames either way); its records are pending (no alert, no statistic) until it is found"
            ),
            ("low_score", Some((psnr, _))) => format!(
                "'{path}': no offset up to {range} frames either way matches the reference (best {psnr:.2} dB, under the floor); records stay pending (a longer delay needs --sync auto:Ns)"
            ),
            (_, Some((psnr, Some((o, p))))) => format!(
                "'{path}': the offset is ambiguous (frame offset {o} scores {p:.2} dB against {psnr:.2} dB); records stay pending"
            ),
            _ => format!("'{path}': the offset is not known for sure; records stay pending"),
        };
        let kind = EventKind::SyncUncertain {
            reason,
            offset,
            psnr: found.map(|f| f.0),
            runner_up: found.and_then(|f| f.1),
        };
        let event = self.event(i, kind, message);
        out.event(event, Vec::new());
    }
}

impl Pairing {
    /// Judges input `i`'s search once it has enough frames (or its input,
    /// or the reference, ended while it searched for a first sync).
    pub(super) fn judge_search(&mut self, i: usize, out: &mut impl PairOut) {
        let (peak, range) = (self.settings.peak, self.settings.sync_range);
        let confidence = self.settings.confidence;
        let learn_pts = self.settings.learn_pts;
        let reference_done = self.reference.drained();
        if self
            .dists
            .get(i)
            .is_some_and(|d| d.hunt.is_some() || d.watch.is_some())
        {
            return self.judge_hunt(i, out);
        }
        let Some(d) = self.dists.get_mut(i) else {
            return;
        };
        let Some(search) = d.search.as_ref() else {
            return;
        };
        let enough = search.refs.len() >= search.need && search.dists.len() >= search.need;
        let starved = (d.side.ended || reference_done) && !search.verify;
        if !enough && !starved {
            return;
        }
        let Some(search) = d.search.take() else {
            return;
        };
        let (r0, d0) = search.start;
        // offsets in the search's own count, and back
        let base = r0 as i64 - d0 as i64;
        let now = d.rel_now() - base;
        let verdict = sync::judge(
            &search.refs,
            &search.dists,
            search.max,
            peak,
            now,
            confidence,
        );
        let index_base = match search.first {
            (Some(r), Some(t)) => r as i64 - t as i64,
            _ => 0,
        };
        let reverify = self.settings.reverify && !d.side.ended;
        match verdict {
            Some(Verdict::Found {
                offset,
                psnr,
                runner_up,
            }) => {
                if search.verify && offset == now {
                    d.start_search(range, true);
                    return;
                }
                let keeps_pending =
                    d.uncertain.is_some() && d.pending_rel == Rel::One(offset + base);
                if learn_pts {
                    // the timelines' difference is learnt from the next pair
                    d.align = Align::Index;
                    d.relearn = true;
                }
                d.pair_at(offset + base);
                // the timestamp check learns the new pairs' difference
                d.pts_delta = None;
                let shown = offset + index_base;
                d.offset = shown;
                d.uncertain = None;
                let path = &d.side.path;
                let what = if search.verify {
                    "re-synchronised"
                } else {
                    "synchronised"
                };
                let message = format!(
                    "'{path}' {what}: reference frame j{shown:+} pairs with distorted frame j (mean luma PSNR {psnr:.2} dB)"
                );
                let kind = EventKind::Sync {
                    offset: shown,
                    psnr: Some(psnr),
                    runner_up: runner_up.map(|(o, p)| (o + index_base, p)),
                    keeps_pending,
                    delay: None,
                    shift: None,
                };
                let event = d.event(i, kind, message);
                out.event(event, Vec::new());
                if reverify {
                    d.start_search(range, true);
                }
            }
            Some(_) if search.verify => d.start_search(range, true),
            Some(Verdict::Low { psnr, .. }) => {
                d.uncertain(i, "low_score", Some((psnr, None)), range, out);
                d.start_search(range, false);
            }
            Some(Verdict::Ambiguous {
                offset,
                psnr,
                runner_up,
            }) => {
                if offset != now {
                    d.pair_at(offset + base);
                    d.pts_delta = None;
                }
                let rival = (runner_up.0 + index_base, runner_up.1);
                d.uncertain(i, "ambiguous", Some((psnr, Some(rival))), range, out);
                d.start_search(range, false);
            }
            None => {
                let same = d.pending_rel == Rel::None || d.pending_rel == Rel::One(d.rel_now());
                let keeps_pending = d.uncertain.is_some() && same;
                d.uncertain = None;
                let message = format!(
                    "'{}': too few frames to synchronise; pairing as they come",
                    d.side.path
                );
                let kind = EventKind::Sync {
                    offset: d.offset,
                    psnr: None,
                    runner_up: None,
                    keeps_pending,
                    delay: None,
                    shift: None,
                };
                let event = d.event(i, kind, message);
                out.event(event, Vec::new());
            }
        }
    }
}

#[cfg(test)]
mod tests;
