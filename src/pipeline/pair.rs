//! Pairing as a state machine: decoder messages in ([`Pairing::receive`]),
//! pairs, released frames and events out (through [`PairOut`]). It skips
//! offsets, pairs by index or by presentation time, re-synchronises after a
//! live input comes back, and counts every frame it does not pair. It
//! neither blocks nor spawns: [`super::feed`] drives it from the decoders'
//! channels, and the unit tests below drive it frame by frame.

use std::sync::Arc;

use crate::error::Error;
use crate::frame::Frame;
use crate::input::DecodeEvent;
use crate::monitor::{Cause, PairCounts, Unpaired};
use crate::output::records::{Event, EventKind, Role};
use crate::pipeline::sync;
use crate::pipeline::timeline::{self, Origins};
use live::{Hunt, Trail};
use search::{Rel, Search};

/// How frames are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// By index, after offsets.
    #[default]
    Index,
    /// By presentation timestamp.
    Pts,
}

/// Which input a message or frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The reference.
    Reference,
    /// Distorted input `i`.
    Distorted(usize),
}

/// What pairing needs to know.
#[derive(Debug, Clone, Default)]
pub struct PairSettings {
    /// Index or pts pairing.
    pub align: Align,
    /// Frames skipped at the start of the reference, per distorted input.
    pub ref_skip: Vec<u64>,
    /// Frames skipped at the start of each distorted input.
    pub dist_skip: Vec<u64>,
    /// Search range for re-synchronising (and for an in-run initial sync).
    pub sync_range: usize,
    /// Synchronise each input from its first frames inside the run (inputs
    /// that cannot be read twice).
    pub sync_at_start: bool,
    /// Frames each input may queue while waiting for its partner.
    pub queue_cap: usize,
    /// Half the reference frame interval: pts pairing tolerance.
    pub pts_tolerance: f64,
    /// Peak code value (for sync PSNR).
    pub peak: f64,
    /// Stop after this many pairs per distorted input.
    pub frames: Option<u64>,
    /// Skip frames before this pts (seconds).
    pub start: Option<f64>,
    /// Measure every Nth pair.
    pub every: u64,
    /// Per distorted input: check index pairs against timestamps (same
    /// constant frame rate on both sides), so a frame lost to a decode
    /// error is never paired with the wrong one.
    pub pts_guard: Vec<bool>,
    /// The inputs' timelines, to check index pairing at the first frames.
    pub origins: Origins,
    /// When a search result is accepted (live inputs); `None`: the best
    /// offset always is.
    pub confidence: Option<sync::Confidence>,
    /// Keep checking an accepted sync (live inputs) and re-synchronise
    /// when another offset becomes clearly the best.
    pub reverify: bool,
    /// Live inputs: pairs whose later frame arrived longer ago than this
    /// are dropped unmeasured (`--max-lag`).
    pub max_lag: Option<std::time::Duration>,
    /// `--align pts` on live inputs: the two senders' timelines differ by
    /// a constant found by content (at the start and after every restart)
    /// rather than assumed equal.
    pub learn_pts: bool,
    /// Live: per distorted input, the pairs whose record is written (the
    /// monitor's count), for the lag after pairing.
    pub recorded: Option<Arc<Vec<std::sync::atomic::AtomicU64>>>,
}

/// Half the reference frame interval (1 ms when the rate is unknown): how
/// far apart two timestamps may be for the same picture.
pub fn pts_tolerance(frame_rate: Option<f64>) -> f64 {
    match frame_rate {
        Some(r) if r > 0.0 => 0.5 / r,
        _ => 0.001,
    }
}

/// One counter per distorted input of the pairs whose record is written,
/// for [`PairSettings::recorded`].
pub fn recorded_counters(inputs: usize) -> Arc<Vec<std::sync::atomic::AtomicU64>> {
    Arc::new((0..inputs).map(|_| Default::default()).collect())
}

/// Where pairing's results go.
pub trait PairOut {
    /// A pair to measure: pair `index` of distorted input `input`.
    fn pair(
        &mut self,
        input: usize,
        index: u64,
        reference: &Arc<Frame>,
        distorted: Frame,
    ) -> Result<(), Error>;
    /// A frame that is done with (not measured, or its pairs all sent):
    /// its buffer can be reused.
    fn release(&mut self, who: Who, frame: Frame);
    /// An event; `decode_error_for` lists the distorted inputs whose
    /// summary counts it as a decode error.
    fn event(&mut self, event: Event, decode_error_for: Vec<usize>);
}

/// One distorted input's pairing state.
#[derive(Debug)]
struct Dist {
    side: Side,
    ref_skip: u64,
    dist_skip: u64,
    search: Option<Search>,
    seen: u64,
    unpaired_ref: Unpaired,
    unpaired_dist: Unpaired,
    dropped: u64,
    offset: i64,
    /// Index pairing checked by timestamps: the pts difference of the
    /// first pair, which later pairs must keep.
    guard: bool,
    pts_delta: Option<f64>,
    /// How this input is paired (index pairing may turn to time at its
    /// first frames, see [`timeline`]).
    align: Align,
    /// Its first frames were checked against the reference's.
    checked: bool,
    /// Reference frames offered to it and distorted frames taken from its
    /// queue, from the start: the search's and the pending pairs' count.
    ref_offered: u64,
    dist_taken: u64,
    /// Why its sync is pending, while it is (records marked pending).
    uncertain: Option<&'static str>,
    /// The offsets of the pairs made while pending.
    pending_rel: Rel,
    /// A first search is due (it starts, with its event, at the first
    /// [`Pairing::advance`]).
    announce: bool,
    /// Pairs dropped for their lag, and whether the last offer was one.
    lag_drops: u64,
    dropping: bool,
    /// Load shedding when the monitor cannot keep real time.
    shed: lag::Shed,
    /// `--align pts`: its timestamps minus the reference's for the same
    /// picture, and whether that is to be learnt again from the next pair
    /// (it is paired by index until then).
    pts_shift: f64,
    relearn: bool,
    /// Live, by time: its recent frames, the hunt for its shift while one
    /// runs, the span of the pending pairs' shifts, and whether pairing is
    /// moving to a shift just found (frames skipped then are no drops).
    trail: Option<Trail>,
    hunt: Option<Hunt>,
    /// Live, by time, once a shift is found: a hunt that keeps scoring
    /// the whole range, to see another shift become clearly the best (a
    /// picture that repeats, whose true partner was not seen yet).
    watch: Option<Hunt>,
    pending_shifts: Option<(f64, f64)>,
    aligning: bool,
    /// The reference frame interval and the peak code value (for a hunt).
    step: f64,
    peak: f64,
}

/// Where a run of pairing stands after [`Pairing::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// It needs more messages.
    Wants,
    /// The reference is over: what is left of the distorted inputs is
    /// unpaired ([`Pairing::finish_input`]).
    ReferenceDone,
    /// `--frames` reached on every input: done.
    LimitReached,
}

/// The pairing state of a run.
#[derive(Debug)]
pub struct Pairing {
    settings: PairSettings,
    reference: Side,
    dists: Vec<Dist>,
    /// Live, by time: the reference's recent frames.
    trail: Option<Trail>,
}

impl Pairing {
    /// Pairs `reference` with each of `distorted`.
    pub fn new(settings: PairSettings, reference: &str, distorted: &[String]) -> Self {
        let dists = distorted
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let ref_skip = settings.ref_skip.get(i).copied().unwrap_or(0);
                let dist_skip = settings.dist_skip.get(i).copied().unwrap_or(0);
                Dist {
                    side: Side::new(Role::Distorted, path),
                    ref_skip,
                    dist_skip,
                    search: None,
                    seen: 0,
                    unpaired_ref: Unpaired::default(),
                    unpaired_dist: Unpaired::default(),
                    dropped: 0,
                    offset: ref_skip as i64 - dist_skip as i64,
                    guard: settings.align == Align::Index
                        && !settings.learn_pts
                        && settings.pts_guard.get(i).copied().unwrap_or(false),
                    pts_delta: None,
                    align: settings.align,
                    checked: false,
                    ref_offered: 0,
                    dist_taken: 0,
                    uncertain: None,
                    pending_rel: Rel::None,
                    announce: settings.sync_at_start
                        && (settings.align == Align::Index || settings.learn_pts),
                    lag_drops: 0,
                    dropping: false,
                    shed: lag::Shed::default(),
                    pts_shift: 0.0,
                    relearn: false,
                    trail: settings
                        .learn_pts
                        .then(|| Trail::new(live::span(&settings))),
                    hunt: None,
                    watch: None,
                    pending_shifts: None,
                    aligning: false,
                    step: 2.0 * settings.pts_tolerance,
                    peak: settings.peak,
                }
            })
            .collect();
        Pairing {
            reference: Side::new(Role::Reference, reference),
            dists,
            trail: settings
                .learn_pts
                .then(|| Trail::new(live::span(&settings))),
            settings,
        }
    }

    fn side(&self, who: Who) -> Option<&Side> {
        match who {
            Who::Reference => Some(&self.reference),
            Who::Distorted(i) => self.dists.get(i).map(|d| &d.side),
        }
    }

    /// Whether `who` may send another message now: not ended, and room in
    /// its queue.
    pub fn has_room(&self, who: Who) -> bool {
        let cap = self.settings.queue_cap.max(1);
        self.side(who)
            .is_some_and(|s| !s.ended && s.queue.len() < cap)
    }

    /// Whether `who` will send nothing more.
    pub fn is_ended(&self, who: Who) -> bool {
        self.side(who).is_none_or(|s| s.ended)
    }

    /// Whether a distorted input is lost (a live input reconnecting).
    pub fn is_lost(&self, who: Who) -> bool {
        self.side(who).is_some_and(|s| s.lost)
    }

    /// Whether the reference reached its end (not merely stopped).
    pub fn reference_finished(&self) -> bool {
        self.reference.finished
    }

    /// Frames the reference delivered.
    pub fn reference_delivered(&self) -> u64 {
        self.reference.delivered
    }

    /// Per-input counts so far.
    pub fn counts(&self) -> Vec<PairCounts> {
        self.dists
            .iter()
            .map(|d| PairCounts {
                unpaired_reference: d.unpaired_ref.total(),
                unpaired_distorted: d.unpaired_dist.total(),
                dropped: d.dropped,
                offset: d.offset,
                lag_drops: d.lag_drops,
                shed: d.shed.shed,
                reference_causes: d.unpaired_ref,
                distorted_causes: d.unpaired_dist,
            })
            .collect()
    }

    /// The channel of `who` closed without an end message.
    pub fn disconnected(&mut self, who: Who) {
        if let Some(s) = self.side_mut(who) {
            s.ended = true;
        }
    }

    fn side_mut(&mut self, who: Who) -> Option<&mut Side> {
        match who {
            Who::Reference => Some(&mut self.reference),
            Who::Distorted(i) => self.dists.get_mut(i).map(|d| &mut d.side),
        }
    }

    /// Takes one message of `who`'s decoder.
    pub fn receive(
        &mut self,
        who: Who,
        msg: DecodeEvent,
        out: &mut impl PairOut,
    ) -> Result<(), Error> {
        let n = self.dists.len();
        let restored = matches!(msg, DecodeEvent::Restored { .. });
        let which = match who {
            Who::Reference => None,
            Who::Distorted(i) => Some(i),
        };
        if matches!(msg, DecodeEvent::Gap { .. }) {
            self.pair_by_time_after_a_jump(which);
        }
        // whether a jump in this input's timestamps is paired by time
        let by_time = match which {
            Some(i) => self
                .dists
                .get(i)
                .is_some_and(|d| d.guard || d.align == Align::Pts),
            None => self.dists.iter().all(|d| d.guard || d.align == Align::Pts),
        };
        let start = self.settings.start;
        let (learn_pts, tolerance) = (self.settings.learn_pts, self.settings.pts_tolerance);
        let mut broke = false;
        let Some(src) = self.side_mut(who) else {
            return Ok(());
        };
        if restored {
            // a reopened input starts a timeline of its own
            src.last_pts = None;
        }
        match msg {
            DecodeEvent::Frame(f) => {
                src.delivered += 1;
                broke = learn_pts && src.timeline_broke(f.abs_pts, 2.0 * tolerance);
                if start.is_some_and(|t| f.pts < t - 1e-9) {
                    // --start: before the requested time, skipped on purpose
                    out.release(who, f);
                } else {
                    src.queue.push_back(f);
                }
            }
            DecodeEvent::End { frames } => {
                src.ended = true;
                src.finished = true;
                if frames == 0 {
                    return Err(Error::Input {
                        input: src.path.clone(),
                        cause: "no decodable video frame".to_string(),
                    });
                }
            }
            DecodeEvent::Failed(e) => {
                src.ended = true;
                return Err(e);
            }
            other => {
                if let Some(event) = events::of(src, which, other, by_time) {
                    let decode_error_for = match (&event.kind, which) {
                        (EventKind::DecodeError { .. }, Some(i)) => vec![i],
                        (EventKind::DecodeError { .. }, None) => (0..n).collect(),
                        _ => Vec::new(),
                    };
                    out.event(event, decode_error_for);
                }
            }
        }
        // a restart, or (live, by pts) a timeline that broke
        if (restored && (self.settings.align == Align::Index || learn_pts)) || broke {
            // the timeline jumped: find the pairing again
            let targets: Vec<usize> = match which {
                Some(i) => vec![i],
                None => (0..n).collect(),
            };
            for i in targets {
                let d = &mut self.dists[i];
                d.pts_delta = None;
                d.ref_skip = 0;
                d.dist_skip = 0;
                d.announce = false;
                d.search_anew(i, self.settings.sync_range, self.settings.learn_pts, out);
            }
        }
        Ok(())
    }

    /// Pairs what can be paired with the frames received so far.
    pub fn advance(&mut self, out: &mut impl PairOut) -> Result<Progress, Error> {
        self.settle(out);
        while self.release_ready(out)? {}
        if self.reference.drained() {
            return Ok(Progress::ReferenceDone);
        }
        if let Some(limit) = self.settings.frames
            && self
                .dists
                .iter()
                .all(|d| d.seen >= limit || d.side.drained())
        {
            // --frames: done; what was not reached is not a mismatch
            return Ok(Progress::LimitReached);
        }
        // A lost reference: keep the distorted inputs flowing, unpaired.
        if self.reference.lost && self.reference.queue.is_empty() {
            for (i, d) in self.dists.iter_mut().enumerate() {
                while let Some(f) = d.pop(self.trail.as_ref()) {
                    d.unpaired_dist.add(Cause::Outage);
                    out.release(Who::Distorted(i), f);
                }
            }
        }
        Ok(Progress::Wants)
    }

    /// After the reference ended: counts what input `i` has queued as
    /// unpaired. Returns whether the input has ended.
    pub fn finish_input(&mut self, i: usize, out: &mut impl PairOut) -> bool {
        let Some(d) = self.dists.get_mut(i) else {
            return true;
        };
        while let Some(f) = d.side.queue.pop_front() {
            d.unpaired_dist.add(Cause::End);
            out.release(Who::Distorted(i), f);
        }
        d.side.ended
    }

    /// Starts the first searches, applies pending skips and judges the
    /// sync searches that have enough frames.
    fn settle(&mut self, out: &mut impl PairOut) {
        let (range, learn_pts) = (self.settings.sync_range, self.settings.learn_pts);
        for i in 0..self.dists.len() {
            self.judge_search(i, out);
            let d = &mut self.dists[i];
            if d.announce {
                d.announce = false;
                d.search_anew(i, range, learn_pts, out);
            }
            while d.dist_skip > 0 {
                match d.pop(self.trail.as_ref()) {
                    Some(f) => {
                        d.dist_skip -= 1;
                        d.unpaired_dist.add(Cause::Offset);
                        out.release(Who::Distorted(i), f);
                    }
                    None => break,
                }
            }
        }
    }

    /// Decides the reference head frame for every input if it can.
    /// Returns whether it released one.
    fn release_ready(&mut self, out: &mut impl PairOut) -> Result<bool, Error> {
        let Some(head) = self.reference.queue.front() else {
            return Ok(false);
        };
        let (head_pts, tol) = (head.abs_pts, self.settings.pts_tolerance);
        // Can every input decide on this reference frame now?
        for (i, d) in self.dists.iter_mut().enumerate() {
            if d.ref_skip > 0 || d.side.lost || d.side.drained() {
                continue;
            }
            if let (false, Some(first)) = (d.checked, d.side.queue.front()) {
                d.checked = true;
                let o = &mut self.settings.origins;
                let found =
                    timeline::first_frames(o, i, &d.side.path, head_pts, first.abs_pts, tol);
                if let Some((event, by_time)) = found {
                    d.guard &= !by_time;
                    d.align = if by_time { Align::Pts } else { d.align };
                    out.event(event, Vec::new());
                }
            }
            if d.guard
                && let (Some(h), Some(delta)) = (head_pts, d.pts_delta)
            {
                // a distorted frame whose reference frame was lost
                while let Some(f) = d.side.queue.front() {
                    match f.abs_pts {
                        Some(t) if (t - h) - delta < -tol => {
                            if let Some(f) = d.pop(self.trail.as_ref()) {
                                d.unpaired_dist.add(Cause::Timing);
                                out.release(Who::Distorted(i), f);
                            }
                        }
                        _ => break,
                    }
                }
            }
            if d.align == Align::Pts
                && let Some(h) = head_pts
            {
                // distorted frames earlier than this reference frame can
                // match no reference frame any more
                while let Some(f) = d.side.queue.front() {
                    match f.abs_pts {
                        Some(t) if t - d.pts_shift < h - tol => {
                            if let Some(f) = d.pop(self.trail.as_ref()) {
                                d.unpaired_dist.add(Cause::Timing);
                                out.release(Who::Distorted(i), f);
                            }
                        }
                        _ => break,
                    }
                }
            }
            if d.side.queue.is_empty() && !d.side.ended && !d.side.lost {
                return Ok(false);
            }
        }
        let Some(rf) = self.reference.queue.pop_front() else {
            return Ok(false);
        };
        self.note_ref(&rf);
        let rf = Arc::new(rf);
        // one thumbnail for every search that takes it
        let thumb = self
            .dists
            .iter()
            .any(|d| d.search.as_ref().is_some_and(|s| s.wants_ref()))
            .then(|| sync::thumb_within(&rf, sync::RUN_THUMB_WIDTH));
        for i in 0..self.dists.len() {
            self.offer(i, &rf, thumb.as_ref(), out)?;
        }
        if let Ok(f) = Arc::try_unwrap(rf) {
            out.release(Who::Reference, f);
        }
        Ok(true)
    }
}

mod events;
mod hunting;
mod lag;
mod live;
mod offer;
mod search;
mod side;

use side::Side;

#[cfg(test)]
mod tests;
