//! Live inputs paired by time and checked by content. Each input keeps a
//! trail of small thumbnails of its recent frames with their stream times
//! ([`Trail`]). A [`Hunt`] looks for the shift between the two streams'
//! clocks (the distorted stream time minus the reference stream time of
//! the same picture) by scoring every pair of thumbnails within the search
//! range as frames arrive, each pair once, so a result is known as soon as
//! the frames received rule out the other shifts, and a lost frame only
//! removes one pair from its score. Once the shift is known, every pair is
//! checked against the nearby frames of both inputs ([`mispaired`]): a
//! distorted picture that matches another reference picture clearly better
//! than its partner (or a reference picture another distorted one) is a
//! mis-pair.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::Frame;
use crate::pipeline::sync::{self, Confidence, Thumb};

/// Thumbnails of the live trails are at most this wide (27 rows at 16:9):
/// a 30 s trail of a 25 fps input holds about 4 MB.
pub(super) const WIDTH: usize = 48;
/// Distorted frames a hunt scores before it may decide.
pub(super) const MIN_FRAMES: u32 = 10;
/// How much better another picture must match to call a pair wrong (dB).
pub(super) const MISPAIR_MARGIN_DB: f64 = 3.0;
/// A distorted picture this close to its predecessor is a repeat (a
/// freeze, a still): it cannot tell its partner from the others.
pub(super) const REPEAT_DB: f64 = 50.0;
/// How long after a hunt's first distorted frame (seconds) the reference
/// frames must have come before a shift is accepted: a reference delayed
/// behind its distorted input by more than this is found, but not before
/// a shift with a positive delay that clears the floor and the margin.
pub(super) const COVER_SECONDS: f64 = 2.0;
/// How far (seconds) around a pair the check looks for a better match.
pub(super) const CHECK_SECONDS: f64 = 4.0;

/// One frame as the live searches keep it.
#[derive(Debug, Clone)]
pub(super) struct Glimpse {
    /// Its stream time (seconds).
    pub(super) t: f64,
    /// Its index in its input.
    pub(super) index: u64,
    /// When it arrived (its input's real-time schedule).
    pub(super) arrived: Option<Instant>,
    pub(super) thumb: Thumb,
    /// Decoded from damaged data: it tells nothing about the pairing.
    pub(super) damaged: bool,
    /// Its number in the trail (counts every frame pushed).
    pub(super) seq: u64,
}

impl Glimpse {
    pub(super) fn of(f: &Frame) -> Self {
        Glimpse {
            t: f.abs_pts.unwrap_or(f.pts),
            index: f.index,
            arrived: f.arrived_at,
            thumb: sync::thumb_within(f, WIDTH),
            damaged: f.damaged,
            seq: 0,
        }
    }
}

/// The recent frames of one input, in stream-time order, spanning at most
/// `span` seconds. A step back in time (a restart) clears it.
#[derive(Debug)]
pub(super) struct Trail {
    items: VecDeque<Glimpse>,
    span: f64,
    next: u64,
}

impl Trail {
    pub(super) fn new(span: f64) -> Self {
        Trail {
            items: VecDeque::new(),
            span,
            next: 0,
        }
    }

    /// Adds `g`; returns its sequence number.
    pub(super) fn push(&mut self, mut g: Glimpse) -> u64 {
        if self.items.back().is_some_and(|b| g.t <= b.t) {
            self.items.clear();
        }
        while self.items.front().is_some_and(|f| g.t - f.t > self.span) {
            self.items.pop_front();
        }
        g.seq = self.next;
        self.next += 1;
        self.items.push_back(g);
        self.next - 1
    }

    /// The sequence number the next frame gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.next
    }

    pub(super) fn last(&self) -> Option<&Glimpse> {
        self.items.back()
    }

    /// The frame before the last.
    pub(super) fn before_last(&self) -> Option<&Glimpse> {
        self.items
            .len()
            .checked_sub(2)
            .and_then(|i| self.items.get(i))
    }

    /// The frame nearest to time `t`, if within `tol`.
    pub(super) fn at(&self, t: f64, tol: f64) -> Option<&Glimpse> {
        let i = self.items.partition_point(|g| g.t < t);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|k| self.items.get(k))
            .filter(|g| (g.t - t).abs() <= tol)
            .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
    }

    /// The frames within `[from, to]` seconds.
    fn within(&self, from: f64, to: f64) -> impl Iterator<Item = &Glimpse> {
        let i = self.items.partition_point(|g| g.t < from);
        self.items.range(i..).take_while(move |g| g.t <= to)
    }

    fn since(&self, seq: u64) -> impl Iterator<Item = &Glimpse> {
        let i = self.items.partition_point(|g| g.seq < seq);
        self.items.range(i..)
    }
}

/// The score of one candidate shift.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    psnr: f64,
    n: u32,
    shift: f64,
    rel: f64,
    delay: f64,
    delays: u32,
}

/// What a hunt concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Catch {
    /// The shift (distorted minus reference stream time), as an index
    /// offset (reference minus distorted index) for the records, its score,
    /// the runner-up (as an index offset) and the delay between the two
    /// inputs' arrivals of the same picture (seconds, distorted minus
    /// reference).
    Found {
        shift: f64,
        offset: i64,
        psnr: f64,
        runner_up: Option<(i64, f64)>,
        delay: Option<f64>,
    },
    /// No shift clears the floor.
    Low { psnr: f64 },
    /// A distinct shift scores within the margin of the best.
    Ambiguous {
        offset: i64,
        psnr: f64,
        runner_up: (i64, f64),
    },
}

/// The search for the shift between the two streams' clocks.
#[derive(Debug)]
pub(super) struct Hunt {
    /// The reference frame interval (seconds): shifts are scored in steps.
    step: f64,
    max: i64,
    /// The difference of the two clocks for frames that arrive together,
    /// set by its first frames: the shifts scored lie within `±max` steps
    /// of it.
    anchor: Option<f64>,
    /// Distorted frames from this trail number on are its own.
    from: u64,
    buckets: Vec<Bucket>,
    /// Distorted frames it scored.
    pub(super) seen: u32,
    judged: u32,
    peak: f64,
}

impl Hunt {
    /// A hunt over `±max` reference frames of `step` seconds, for the
    /// distorted frames from trail number `from` on.
    pub(super) fn new(step: f64, max: usize, from: u64, peak: f64) -> Self {
        Hunt {
            peak,
            step,
            max: max as i64,
            anchor: None,
            from,
            buckets: vec![Bucket::default(); 2 * max + 1],
            seen: 0,
            judged: 0,
        }
    }

    /// Whether it scored a distorted frame since it was last asked (a
    /// judgement on unchanged scores says nothing new).
    pub(super) fn fresh(&self) -> bool {
        self.seen != self.judged
    }

    /// Notes that its scores so far were judged.
    pub(super) fn mark(&mut self) {
        self.judged = self.seen;
    }

    /// The distorted frames it needs before it starts again.
    pub(super) fn exhausted(&self) -> bool {
        self.seen as i64 > self.max + sync::COMPARE_FRAMES as i64
    }

    fn slot(&self, shift: f64) -> Option<usize> {
        let anchor = self.anchor?;
        let q = ((shift - anchor) / self.step).round() as i64;
        (q.abs() <= self.max).then_some((q + self.max) as usize)
    }

    /// How far (seconds) from the anchor a scored shift may lie.
    fn reach(&self) -> f64 {
        (self.max as f64 + 0.5) * self.step
    }

    fn score(&mut self, r: &Glimpse, d: &Glimpse) {
        if r.damaged || d.damaged {
            return;
        }
        let shift = d.t - r.t;
        let Some(k) = self.slot(shift) else {
            return;
        };
        let p = sync::thumb_psnr(&r.thumb, &d.thumb, self.peak);
        let b = &mut self.buckets[k];
        b.psnr += p;
        b.n += 1;
        b.shift += shift;
        b.rel += r.index as f64 - d.index as f64;
        if let (Some(a), Some(b0)) = (d.arrived, r.arrived) {
            let dt = if a >= b0 {
                (a - b0).as_secs_f64()
            } else {
                -(b0 - a).as_secs_f64()
            };
            b.delay += dt;
            b.delays += 1;
        }
    }

    /// A distorted frame arrived (the last of `dists`): scores it against
    /// every reference frame in range.
    pub(super) fn see_dist(&mut self, refs: &Trail, dists: &Trail) {
        let Some(d) = dists.last() else {
            return;
        };
        if d.seq < self.from {
            return;
        }
        self.seen += 1;
        if self.anchor.is_none() {
            // the two clocks' difference for frames that arrive together
            self.anchor = refs.last().map(|r| d.t - r.t);
        }
        let Some(anchor) = self.anchor else {
            return;
        };
        let reach = self.reach();
        for r in refs.within(d.t - anchor - reach, d.t - anchor + reach) {
            self.score(r, d);
        }
    }

    /// A reference frame arrived (the last of `refs`): scores it against
    /// the distorted frames of this hunt.
    pub(super) fn see_ref(&mut self, refs: &Trail, dists: &Trail) {
        let Some(r) = refs.last() else {
            return;
        };
        if self.anchor.is_none() {
            self.anchor = dists.since(self.from).last().map(|d| d.t - r.t);
        }
        let Some(anchor) = self.anchor else {
            return;
        };
        let reach = self.reach();
        let from = self.from;
        for d in dists.since(from) {
            if (d.t - r.t - anchor).abs() <= reach {
                self.score(r, d);
            }
        }
    }

    fn mean(&self, k: usize) -> Option<f64> {
        let b = self.buckets.get(k)?;
        (b.n >= MIN_FRAMES).then(|| b.psnr / b.n as f64)
    }

    fn offset_of(&self, k: usize) -> i64 {
        let b = &self.buckets[k];
        (b.rel / b.n.max(1) as f64).round() as i64
    }

    /// Whether shifts `a` and `b` pair the same reference pictures: the
    /// reference frames they give the hunt's distorted frames look alike.
    fn same_pictures(&self, a: usize, b: usize, refs: &Trail, dists: &Trail, at: f64) -> bool {
        let (sa, sb) = (
            self.buckets[a].shift / self.buckets[a].n.max(1) as f64,
            self.buckets[b].shift / self.buckets[b].n.max(1) as f64,
        );
        let tol = self.step / 2.0;
        let (mut sum, mut n) = (0.0, 0u32);
        for d in dists.since(self.from) {
            if let (Some(x), Some(y)) = (refs.at(d.t - sa, tol), refs.at(d.t - sb, tol)) {
                sum += sync::thumb_psnr(&x.thumb, &y.thumb, self.peak);
                n += 1;
            }
        }
        n >= 3 && sum / n as f64 >= at
    }

    /// Its conclusion so far: `None` while too few frames were scored.
    pub(super) fn judge(&self, c: Confidence, refs: &Trail, dists: &Trail) -> Option<Catch> {
        if self.seen < MIN_FRAMES {
            return None;
        }
        let mut best: Option<(usize, f64)> = None;
        for k in 0..self.buckets.len() {
            if let Some(m) = self.mean(k)
                && best.is_none_or(|(_, b)| m > b + 1e-9)
            {
                best = Some((k, m));
            }
        }
        let (k, psnr) = best?;
        let offset = self.offset_of(k);
        if psnr < c.floor_db {
            return Some(Catch::Low { psnr });
        }
        let mut runner_up: Option<(usize, f64)> = None;
        let mut rival: Option<(usize, f64)> = None;
        // shifts pairing the same pictures as the best (a loop, a still):
        // the one with the smallest delay is taken
        let mut alike = vec![k];
        for j in 0..self.buckets.len() {
            if (j as i64 - k as i64).abs() <= sync::NEIGHBOURS {
                continue;
            }
            let Some(m) = self.mean(j) else {
                continue;
            };
            let close = m >= psnr - c.margin_db;
            if close && self.same_pictures(k, j, refs, dists, psnr - c.margin_db) {
                alike.push(j);
                continue;
            }
            if runner_up.is_none_or(|(_, b)| m > b) {
                runner_up = Some((j, m));
            }
            if close && rival.is_none_or(|(_, b)| m > b) {
                rival = Some((j, m));
            }
        }
        if let Some((j, m)) = rival {
            return Some(Catch::Ambiguous {
                offset,
                psnr,
                runner_up: (self.offset_of(j), m),
            });
        }
        if self.seen < 2 * MIN_FRAMES {
            // too soon to rule out the shifts beyond the neighbours
            return None;
        }
        let lateness = |j: &usize| {
            let b = &self.buckets[*j];
            match b.delays {
                0 => (*j as f64 - self.max as f64).abs() * self.step,
                n => (b.delay / n as f64).abs(),
            }
        };
        let k = alike
            .iter()
            .copied()
            .min_by(|a, b| lateness(a).total_cmp(&lateness(b)))
            .unwrap_or(k);
        let (offset, psnr) = (self.offset_of(k), self.mean(k).unwrap_or(psnr));
        let b = &self.buckets[k];
        let delay = (b.delays > 0).then(|| b.delay / b.delays as f64);
        // A shift with a smaller delay, whose reference frames have not
        // been taken yet, may still beat it (a picture that repeats, a
        // backlog of the reference still being read): wait until the
        // reference frames that arrived by the hunt's first distorted
        // frame are in, and for a distorted input ahead of its reference,
        // those that arrived up to that lead after it (at most
        // COVER_SECONDS).
        let first = dists.since(self.from).next().and_then(|d| d.arrived);
        let last = refs.last().and_then(|r| r.arrived);
        if let (Some(delay), Some(first), Some(last)) = (delay, first, last) {
            let need = first + Duration::from_secs_f64((-delay).clamp(0.0, COVER_SECONDS));
            if last < need {
                return None;
            }
        }
        // a shift still gathering its pairs (a neighbour whose first
        // partners came a frame later, the true one behind a backlog) that
        // scores as well so far may yet be the better one
        let gathering = self.buckets.iter().enumerate().any(|(j, b)| {
            j != k && b.n > 0 && b.n < MIN_FRAMES && b.psnr / b.n as f64 >= psnr - c.margin_db
        });
        if gathering {
            return None;
        }
        Some(Catch::Found {
            shift: b.shift / b.n as f64,
            offset,
            psnr,
            runner_up: runner_up.map(|(j, m)| (self.offset_of(j), m)),
            delay,
        })
    }
}

/// Why a pair is wrong: its own thumbnail PSNR, a better one, and the
/// frames between its partner and the better match (reference frames, or
/// distorted frames when negative numbers are not enough: see `side`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Mispair {
    pub(super) own: f64,
    pub(super) better: f64,
    /// Seconds from the partner to the better match.
    pub(super) away: f64,
}

/// Checks the pair of the last reference frame of `refs` and the last
/// distorted frame of `dists`: a mis-pair when one of them matches another
/// picture of the other input nearby by [`MISPAIR_MARGIN_DB`] better than
/// its partner, that picture not being its partner's look-alike. A
/// distorted picture that repeats its predecessor is never judged.
pub(super) fn mispaired(refs: &Trail, dists: &Trail, tol: f64, peak: f64) -> Option<Mispair> {
    let (r0, d0) = (refs.last()?, dists.last()?);
    if r0.damaged || d0.damaged {
        return None;
    }
    if let Some(prev) = dists.before_last()
        && sync::thumb_psnr(&prev.thumb, &d0.thumb, peak) >= REPEAT_DB
    {
        return None;
    }
    let own = sync::thumb_psnr(&r0.thumb, &d0.thumb, peak);
    let mut worst: Option<Mispair> = None;
    let mut consider = |better: f64, away: f64, alike: f64| {
        if better > own + MISPAIR_MARGIN_DB
            && alike < better - MISPAIR_MARGIN_DB
            && worst.is_none_or(|w| better > w.better)
        {
            worst = Some(Mispair { own, better, away });
        }
    };
    for r in refs.within(r0.t - CHECK_SECONDS, r0.t + CHECK_SECONDS) {
        if (r.t - r0.t).abs() <= tol || r.damaged {
            continue;
        }
        let better = sync::thumb_psnr(&r.thumb, &d0.thumb, peak);
        if better > own + MISPAIR_MARGIN_DB {
            consider(
                better,
                r.t - r0.t,
                sync::thumb_psnr(&r.thumb, &r0.thumb, peak),
            );
        }
    }
    for d in dists.within(d0.t - CHECK_SECONDS, d0.t + CHECK_SECONDS) {
        if (d.t - d0.t).abs() <= tol || d.damaged {
            continue;
        }
        let better = sync::thumb_psnr(&r0.thumb, &d.thumb, peak);
        if better > own + MISPAIR_MARGIN_DB {
            consider(
                better,
                d0.t - d.t,
                sync::thumb_psnr(&d.thumb, &d0.thumb, peak),
            );
        }
    }
    worst
}

/// How many seconds a live trail keeps: the search range either way, and
/// the check's reach.
pub(super) fn span(s: &super::PairSettings) -> f64 {
    let step = 2.0 * s.pts_tolerance;
    (s.sync_range as f64 * step).max(CHECK_SECONDS) + 1.0
}

#[cfg(test)]
mod tests;
