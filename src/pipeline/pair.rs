//! Pairing: pulls frames from the decoders, skips offsets, pairs by index or
//! by presentation time, re-synchronises after a live input comes back, and
//! hands each pair to the metric workers. Every frame is either paired or
//! counted as unpaired; queues are bounded, and a lost input never makes the
//! healthy one queue without bound.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Select, Sender, bounded};

use crate::error::Error;
use crate::frame::{Frame, FramePool};
use crate::input::DecodeEvent;
use crate::metrics::{MetricSet, same_layout};
use crate::monitor::worst::WorstCapture;
use crate::monitor::{AggMsg, PairCounts};
use crate::output::records::{Event, EventKind, Role};
use crate::pipeline::sync::{self, Thumb};
use crate::pipeline::workers::Job;

/// How frames are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// By index, after offsets.
    #[default]
    Index,
    /// By presentation timestamp.
    Pts,
}

/// A decoder's output as the pairing sees it.
pub struct Source {
    /// Which input it is.
    pub role: Role,
    /// The input as given.
    pub path: String,
    /// Decoder output.
    pub rx: Receiver<DecodeEvent>,
    /// Where its frame buffers go back.
    pub pool: FramePool,
    /// Its decoder thread, returning its busy time.
    pub handle: Option<JoinHandle<Duration>>,
    queue: VecDeque<Frame>,
    ended: bool,
    finished: bool,
    lost: bool,
    /// Frames received.
    pub delivered: u64,
}

impl Source {
    /// Wraps a decoder's channel.
    pub fn new(
        role: Role,
        path: &str,
        rx: Receiver<DecodeEvent>,
        pool: FramePool,
        handle: JoinHandle<Duration>,
    ) -> Self {
        Source {
            role,
            path: path.to_string(),
            rx,
            pool,
            handle: Some(handle),
            queue: VecDeque::new(),
            ended: false,
            finished: false,
            lost: false,
            delivered: 0,
        }
    }

    /// Whether the input reached its end (not merely stopped).
    pub fn is_ended(&self) -> bool {
        self.finished
    }
}

struct Sync {
    need: usize,
    max: usize,
    refs: Vec<Thumb>,
    dists: Vec<Thumb>,
    ref_seen: u64,
    dist_seen: u64,
}

impl Sync {
    fn new(max: usize) -> Self {
        Sync {
            need: max + sync::COMPARE_FRAMES,
            max,
            refs: Vec::new(),
            dists: Vec::new(),
            ref_seen: 0,
            dist_seen: 0,
        }
    }
}

struct Dist {
    src: Source,
    ref_skip: u64,
    dist_skip: u64,
    sync: Option<Sync>,
    seen: u64,
    unpaired_ref: u64,
    unpaired_dist: u64,
    dropped: u64,
    offset: i64,
    /// Index pairing checked by timestamps: the pts difference of the
    /// first pair, which later pairs must keep.
    guard: bool,
    pts_delta: Option<f64>,
}

/// What pairing needs besides the sources.
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
    /// Keeps pictures of the worst frames.
    pub capture: Option<Arc<WorstCapture>>,
    /// Per distorted input: check index pairs against timestamps (same
    /// constant frame rate on both sides), so a frame lost to a decode
    /// error is never paired with the wrong one.
    pub pts_guard: Vec<bool>,
}

/// Runs pairing to the end of the reference (or a stop). Returns the next
/// sequence number and per-input counts.
#[allow(clippy::too_many_arguments)]
pub fn pair_loop(
    reference: &mut Source,
    sources: Vec<Source>,
    settings: &PairSettings,
    set: &Arc<MetricSet>,
    workers: &rayon::ThreadPool,
    atx: &Sender<AggMsg>,
    stop: &AtomicBool,
) -> (Result<u64, Error>, Vec<Source>, Vec<PairCounts>) {
    let mut dists: Vec<Dist> = sources
        .into_iter()
        .enumerate()
        .map(|(i, src)| Dist {
            src,
            ref_skip: settings.ref_skip.get(i).copied().unwrap_or(0),
            dist_skip: settings.dist_skip.get(i).copied().unwrap_or(0),
            sync: (settings.sync_at_start && settings.align == Align::Index)
                .then(|| Sync::new(settings.sync_range)),
            seen: 0,
            unpaired_ref: 0,
            unpaired_dist: 0,
            dropped: 0,
            offset: settings.ref_skip.get(i).copied().unwrap_or(0) as i64
                - settings.dist_skip.get(i).copied().unwrap_or(0) as i64,
            guard: settings.align == Align::Index
                && settings.pts_guard.get(i).copied().unwrap_or(false),
            pts_delta: None,
        })
        .collect();
    let mut p = Pairer {
        settings,
        set,
        workers,
        atx,
        stop,
        seq: 0,
        tokens: bounded::<()>(settings.queue_cap.max(1)),
    };
    let r = p.run(reference, &mut dists);
    let counts = dists
        .iter()
        .map(|d| PairCounts {
            unpaired_reference: d.unpaired_ref,
            unpaired_distorted: d.unpaired_dist,
            dropped: d.dropped,
            offset: d.offset,
        })
        .collect();
    (
        r.map(|()| p.seq),
        dists.into_iter().map(|d| d.src).collect(),
        counts,
    )
}

struct Pairer<'a> {
    settings: &'a PairSettings,
    set: &'a Arc<MetricSet>,
    workers: &'a rayon::ThreadPool,
    atx: &'a Sender<AggMsg>,
    stop: &'a AtomicBool,
    seq: u64,
    tokens: (Sender<()>, Receiver<()>),
}

enum Pull {
    Got,
    Idle,
}

impl Pairer<'_> {
    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }

    fn event(&mut self, event: Event, decode_error_for: Vec<usize>) {
        let seq = self.next_seq();
        if self
            .atx
            .send(AggMsg::Event {
                seq,
                event,
                decode_error_for,
            })
            .is_err()
        {
            // the aggregator stopped: the run is ending
        }
    }

    fn run(&mut self, reference: &mut Source, dists: &mut [Dist]) -> Result<(), Error> {
        let n = dists.len();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.settle(dists);
            while self.release_ready(reference, dists)? {}
            if reference.ended && reference.queue.is_empty() {
                break;
            }
            if let Some(limit) = self.settings.frames
                && dists
                    .iter()
                    .all(|d| d.seen >= limit || (d.src.ended && d.src.queue.is_empty()))
            {
                // --frames: done; what was not reached is not a mismatch
                return Ok(());
            }
            // A lost reference: keep the distorted inputs flowing, unpaired.
            if reference.lost && reference.queue.is_empty() {
                for d in dists.iter_mut() {
                    while let Some(f) = d.src.queue.pop_front() {
                        d.unpaired_dist += 1;
                        d.src.pool.give(f);
                    }
                }
            }
            match self.pull(reference, dists, n)? {
                Pull::Got => {}
                Pull::Idle => {
                    if reference.ended && reference.queue.is_empty() {
                        break;
                    }
                }
            }
        }
        // The reference has ended: the rest of every distorted input is unpaired.
        for (i, d) in dists.iter_mut().enumerate() {
            loop {
                if self.stop.load(Ordering::Relaxed) {
                    break;
                }
                while let Some(f) = d.src.queue.pop_front() {
                    d.unpaired_dist += 1;
                    d.src.pool.give(f);
                }
                if d.src.ended {
                    break;
                }
                let msg = match d.src.rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(m) => m,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        d.src.ended = true;
                        break;
                    }
                };
                self.handle(Some(i), &mut d.src, msg, n)?;
                if d.src.lost {
                    // a live input that drops after the reference ended: stop here
                    break;
                }
            }
        }
        Ok(())
    }

    /// Applies pending skips and feeds re-synchronisation.
    fn settle(&mut self, dists: &mut [Dist]) {
        for i in 0..dists.len() {
            let d = &mut dists[i];
            while d.dist_skip > 0 {
                match d.src.queue.pop_front() {
                    Some(f) => {
                        d.dist_skip -= 1;
                        d.unpaired_dist += 1;
                        d.src.pool.give(f);
                    }
                    None => break,
                }
            }
            if let Some(sync) = d.sync.as_mut() {
                while let Some(f) = d.src.queue.pop_front() {
                    sync.dist_seen += 1;
                    if sync.dists.len() < sync.need {
                        sync.dists.push(sync::thumb(&f));
                    }
                    d.unpaired_dist += 1;
                    d.src.pool.give(f);
                }
            }
            self.finish_sync(i, dists);
        }
    }

    fn finish_sync(&mut self, i: usize, dists: &mut [Dist]) {
        let d = &mut dists[i];
        let Some(sync) = d.sync.as_ref() else { return };
        let enough = sync.refs.len() >= sync.need && sync.dists.len() >= sync.need;
        // an input that ended mid-search: decide on what there is
        let starved = d.src.ended && !sync.refs.is_empty();
        if !enough && !starved {
            return;
        }
        let Some(sync) = d.sync.take() else { return };
        let found = sync::best_offset(&sync.refs, &sync.dists, sync.max, self.settings.peak);
        let (o, psnr) = found.unwrap_or((0, f64::NAN));
        // Pairs must satisfy ref_index − dist_index = o, counted from the
        // start of the search; the next frames are ref_seen and dist_seen.
        let c = sync.ref_seen as i64 - sync.dist_seen as i64;
        if c < o {
            d.ref_skip += (o - c) as u64;
        } else {
            d.dist_skip += (c - o) as u64;
        }
        d.offset = o;
        d.pts_delta = None;
        let message = match found {
            Some(_) => format!(
                "'{}' synchronised: reference frame j+{o} pairs with distorted frame j (mean luma PSNR {psnr:.2} dB)",
                d.src.path
            ),
            None => format!(
                "'{}': too few frames to synchronise; pairing as they come",
                d.src.path
            ),
        };
        let ev = Event {
            kind: EventKind::Sync {
                offset: o,
                psnr: found.map(|(_, p)| p),
            },
            input: Some(i),
            source: Some((Role::Distorted, d.src.path.clone())),
            message,
        };
        self.event(ev, Vec::new());
    }

    /// Decides the reference head frame for every input if it can.
    /// Returns whether it released one.
    fn release_ready(&mut self, reference: &mut Source, dists: &mut [Dist]) -> Result<bool, Error> {
        let Some(head) = reference.queue.front() else {
            return Ok(false);
        };
        let tol = self.settings.pts_tolerance;
        // Can every input decide on this reference frame now?
        for d in dists.iter_mut() {
            if d.ref_skip > 0
                || d.sync.is_some()
                || d.src.lost
                || d.src.ended && d.src.queue.is_empty()
            {
                continue;
            }
            if d.guard
                && let (Some(h), Some(delta)) = (head.abs_pts, d.pts_delta)
            {
                // a distorted frame whose reference frame was lost
                while let Some(f) = d.src.queue.front() {
                    match f.abs_pts {
                        Some(t) if (t - h) - delta < -tol => {
                            if let Some(f) = d.src.queue.pop_front() {
                                d.unpaired_dist += 1;
                                d.src.pool.give(f);
                            }
                        }
                        _ => break,
                    }
                }
            }
            if self.settings.align == Align::Pts {
                // distorted frames earlier than this reference frame can
                // match no reference frame any more
                if let Some(h) = head.abs_pts {
                    while let Some(f) = d.src.queue.front() {
                        match f.abs_pts {
                            Some(t) if t < h - tol => {
                                if let Some(f) = d.src.queue.pop_front() {
                                    d.unpaired_dist += 1;
                                    d.src.pool.give(f);
                                }
                            }
                            _ => break,
                        }
                    }
                }
            }
            if d.src.queue.is_empty() && !d.src.ended && !d.src.lost {
                return Ok(false);
            }
        }
        let Some(rf) = reference.queue.pop_front() else {
            return Ok(false);
        };
        let rf = Arc::new(rf);
        for (i, d) in dists.iter_mut().enumerate() {
            if d.ref_skip > 0 {
                d.ref_skip -= 1;
                d.unpaired_ref += 1;
                continue;
            }
            if let Some(sync) = d.sync.as_mut() {
                sync.ref_seen += 1;
                if sync.refs.len() < sync.need {
                    sync.refs.push(sync::thumb(&rf));
                }
                d.unpaired_ref += 1;
                continue;
            }
            let take = match d.src.queue.front() {
                None => false,
                Some(df) => match self.settings.align {
                    Align::Index if d.guard => match (rf.abs_pts, df.abs_pts, d.pts_delta) {
                        // later than expected: this reference frame's partner was lost
                        (Some(r), Some(t), Some(delta)) => (t - r) - delta <= tol,
                        _ => true,
                    },
                    Align::Index => true,
                    Align::Pts => match (rf.abs_pts, df.abs_pts) {
                        (Some(r), Some(t)) => (t - r).abs() <= tol,
                        _ => true,
                    },
                },
            };
            if !take {
                d.unpaired_ref += 1;
                if (self.settings.align == Align::Pts || d.guard)
                    && !d.src.lost
                    && !(d.src.ended && d.src.queue.is_empty())
                {
                    d.dropped += 1;
                    let ev = Event {
                        kind: EventKind::Dropped {
                            ref_frame: rf.index,
                            pts: rf.abs_pts,
                        },
                        input: Some(i),
                        source: Some((Role::Distorted, d.src.path.clone())),
                        message: format!(
                            "'{}' has no frame at {:.3} s (reference frame {})",
                            d.src.path,
                            rf.abs_pts.unwrap_or(f64::NAN),
                            rf.index
                        ),
                    };
                    self.event(ev, Vec::new());
                }
                continue;
            }
            let Some(df) = d.src.queue.pop_front() else {
                continue;
            };
            if self.settings.frames.is_some_and(|n| d.seen >= n) {
                d.src.pool.give(df);
                continue;
            }
            let index = d.seen;
            d.seen += 1;
            if index % self.settings.every != 0 {
                // --every: not measured, on purpose
                d.src.pool.give(df);
                continue;
            }
            if !same_layout(&rf, &df) {
                return Err(Error::Internal(format!(
                    "frame {} of '{}' was not converted to the reference layout",
                    df.index, d.src.path
                )));
            }
            d.offset = rf.index as i64 - df.index as i64;
            if d.guard
                && d.pts_delta.is_none()
                && let (Some(r), Some(t)) = (rf.abs_pts, df.abs_pts)
            {
                d.pts_delta = Some(t - r);
            }
            if self.tokens.0.send(()).is_err() {
                return Err(Error::Internal("worker tokens closed".to_string()));
            }
            let job = Job {
                seq: self.next_seq(),
                input: i,
                frame: index,
                reference: rf.clone(),
                distorted: df,
                set: self.set.clone(),
                atx: self.atx.clone(),
                ref_pool: reference.pool.clone(),
                dist_pool: d.src.pool.clone(),
                done: self.tokens.1.clone(),
                capture: self.settings.capture.clone(),
            };
            self.workers.spawn(move || job.run());
        }
        if let Ok(f) = Arc::try_unwrap(rf) {
            reference.pool.give(f);
        }
        Ok(true)
    }

    /// Waits (100 ms at most) for the next message of an input that has
    /// room in its queue, and handles it.
    fn pull(
        &mut self,
        reference: &mut Source,
        dists: &mut [Dist],
        n: usize,
    ) -> Result<Pull, Error> {
        let cap = self.settings.queue_cap.max(1);
        let mut rxs: Vec<Receiver<DecodeEvent>> = Vec::new();
        let mut ids: Vec<Option<usize>> = Vec::new();
        if !reference.ended && reference.queue.len() < cap {
            rxs.push(reference.rx.clone());
            ids.push(None);
        }
        for (i, d) in dists.iter().enumerate() {
            if !d.src.ended && d.src.queue.len() < cap {
                rxs.push(d.src.rx.clone());
                ids.push(Some(i));
            }
        }
        if ids.is_empty() {
            return Ok(Pull::Idle);
        }
        let (index, msg) = {
            let mut sel = Select::new();
            for rx in &rxs {
                sel.recv(rx);
            }
            let op = match sel.select_timeout(Duration::from_millis(100)) {
                Ok(op) => op,
                Err(_) => return Ok(Pull::Idle),
            };
            let index = op.index();
            let msg = op.recv(&rxs[index]);
            (index, msg)
        };
        let which = ids[index];
        let src = match which {
            None => &mut *reference,
            Some(i) => &mut dists[i].src,
        };
        match msg {
            Ok(m) => {
                let restored = matches!(m, DecodeEvent::Restored { .. });
                self.handle(which, src, m, n)?;
                if restored && self.settings.align == Align::Index {
                    // the timeline jumped: find the pairing again
                    let targets: Vec<usize> = match which {
                        Some(i) => vec![i],
                        None => (0..n).collect(),
                    };
                    for i in targets {
                        dists[i].pts_delta = None;
                        dists[i].sync = Some(Sync::new(self.settings.sync_range));
                        dists[i].ref_skip = 0;
                        dists[i].dist_skip = 0;
                    }
                }
            }
            Err(_) => {
                src.ended = true;
                if !self.stop.load(Ordering::Relaxed) {
                    return Err(Error::Internal(format!(
                        "decoder of '{}' stopped without a reason",
                        src.path
                    )));
                }
            }
        }
        Ok(Pull::Got)
    }

    fn handle(
        &mut self,
        which: Option<usize>,
        src: &mut Source,
        msg: DecodeEvent,
        n: usize,
    ) -> Result<(), Error> {
        match msg {
            DecodeEvent::Frame(f) => {
                src.delivered += 1;
                if self.settings.start.is_some_and(|t| f.pts < t - 1e-9) {
                    // --start: before the requested time, skipped on purpose
                    src.pool.give(f);
                } else {
                    src.queue.push_back(f);
                }
            }
            DecodeEvent::DecodeError { cause } => {
                let event = Event {
                    kind: EventKind::DecodeError {
                        after_frames: src.delivered,
                    },
                    input: which,
                    source: Some((src.role, src.path.clone())),
                    message: cause,
                };
                let for_inputs = match which {
                    Some(i) => vec![i],
                    None => (0..n).collect(),
                };
                self.event(event, for_inputs);
            }
            DecodeEvent::Lost { cause } => {
                src.lost = true;
                let event = Event {
                    kind: EventKind::StreamLost {
                        after_frames: src.delivered,
                    },
                    input: which,
                    source: Some((src.role, src.path.clone())),
                    message: format!(
                        "{} '{}' lost: {cause}; reconnecting",
                        src.role.name(),
                        src.path
                    ),
                };
                self.event(event, Vec::new());
            }
            DecodeEvent::Restored { attempts } => {
                src.lost = false;
                let event = Event {
                    kind: EventKind::StreamRestored { attempts },
                    input: which,
                    source: Some((src.role, src.path.clone())),
                    message: format!(
                        "{} '{}' restored after {attempts} attempt(s)",
                        src.role.name(),
                        src.path
                    ),
                };
                self.event(event, Vec::new());
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
        }
        Ok(())
    }
}
