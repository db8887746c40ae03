//! The run: decoders (one thread per input) → pairing → metric workers (a
//! rayon pool) → ordered aggregator → sinks, joined by bounded channels so
//! memory is fixed by the queue depth, never by the video's length.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::Error;
use crate::frame::{Frame, FramePool};
use crate::input::{self, DecodeEvent, format};
use crate::metrics::psnr::psnr_from_mse;
use crate::metrics::{Layout, MetricOptions, MetricSet, Registration, Row, same_layout};
use crate::record::{DistortedHeader, Event, FrameRecord, Header, Record, Summary, WindowRecord};
use crate::sink::Sink;
use crate::stats::{PooledKey, Rolling};

/// Everything a run needs to know.
#[derive(Clone)]
pub struct Settings {
    /// Reference input (path, URL or `-`).
    pub reference: String,
    /// Distorted inputs.
    pub distorted: Vec<String>,
    /// Selected metrics.
    pub metrics: Vec<&'static Registration>,
    /// Metric options.
    pub options: MetricOptions,
    /// Rolling window length in frames.
    pub window: usize,
    /// A window record every this many pairs.
    pub window_every: usize,
    /// Depth of each bounded queue, in frames.
    pub queue_depth: usize,
    /// Metric worker threads (`None`: one per core).
    pub threads: Option<usize>,
}

/// Called with each warning (one line, no prefix).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// Timing of a run, for the speed line of the summary table.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// Wall-clock time of the whole run.
    pub wall: Duration,
    /// Frames the reference decoder delivered.
    pub reference_frames: u64,
    /// Time the reference decoder spent working (not waiting on queues).
    pub reference_decode: Duration,
    /// Pairs measured over all inputs.
    pub pairs: u64,
    /// Time during which at least one pair was being measured (the union
    /// of the jobs' intervals): the worker pool's busy time.
    pub compute: Duration,
    /// Metric worker threads.
    pub threads: usize,
}

/// What a finished run reports.
pub struct Report {
    /// The header record written at the start.
    pub header: Header,
    /// One summary per distorted input.
    pub summaries: Vec<Summary>,
    /// Timing figures.
    pub timing: Timing,
}

enum AggMsg {
    Row {
        seq: u64,
        input: usize,
        frame: u64,
        ref_frame: u64,
        dist_frame: u64,
        pts: f64,
        row: Row,
        started: Instant,
        finished: Instant,
    },
    Event {
        seq: u64,
        event: Event,
        /// Distorted inputs whose summary counts it as a decode error.
        decode_error_for: Vec<usize>,
    },
    Failed {
        seq: u64,
        error: Error,
    },
    Finish {
        seq: u64,
        unpaired: Vec<(u64, u64)>,
        reference_frames: u64,
        reference_decode: Duration,
    },
}

impl AggMsg {
    fn seq(&self) -> u64 {
        match self {
            AggMsg::Row { seq, .. }
            | AggMsg::Event { seq, .. }
            | AggMsg::Failed { seq, .. }
            | AggMsg::Finish { seq, .. } => *seq,
        }
    }
}

struct Source {
    role: &'static str,
    path: String,
    rx: Receiver<DecodeEvent>,
    pool: FramePool,
    handle: Option<JoinHandle<Duration>>,
    ended: bool,
    delivered: u64,
}

/// Runs a whole comparison and writes its records to `sinks`.
pub fn run(
    settings: &Settings,
    mut sinks: Vec<Box<dyn Sink>>,
    warn: Warn,
) -> Result<Report, Error> {
    let started = Instant::now();
    let mut rdec = input::open(&settings.reference)?;
    let mut ddecs = Vec::with_capacity(settings.distorted.len());
    for d in &settings.distorted {
        ddecs.push(input::open(d)?);
    }
    let target = rdec.own_target()?;
    if let Some(c) = rdec.set_target(target) {
        warn(&format!(
            "reference '{}' is converted: {c}",
            settings.reference
        ));
    }
    for (d, path) in ddecs.iter_mut().zip(&settings.distorted) {
        if let Some(c) = d.set_target(target) {
            warn(&format!(
                "distorted '{path}' differs from the reference and is converted: {c}"
            ));
        }
    }
    let layout = Layout {
        plane_names: format::plane_names(target.pixel),
        plane_dims: format::plane_dims(target.pixel, target.width, target.height),
        bit_depth: format::depth_of(target.pixel),
    };
    let set = Arc::new(
        MetricSet::new(&settings.metrics, settings.options.clone(), &layout)
            .map_err(Error::Usage)?,
    );
    let header = Header {
        reference: rdec.info.clone(),
        reference_offset: 0,
        distorted: ddecs
            .iter()
            .map(|d| DistortedHeader {
                info: d.info.clone(),
                offset: 0,
            })
            .collect(),
        metrics: set.names().iter().map(|s| s.to_string()).collect(),
        keys: set.keys().to_vec(),
        measured_format: format::name(target.pixel).to_string(),
        bit_depth: layout.bit_depth,
        ssim_mode: settings.options.ssim_mode.name().to_string(),
        psnr_max: settings.options.psnr_cap(layout.bit_depth),
        window: settings.window as u64,
    };
    let json = header.to_json();
    for s in sinks.iter_mut() {
        s.write(&Record::Header(&header), &json)?;
    }

    let qd = settings.queue_depth.max(1);
    let threads = settings
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vqm-metric-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start metric workers: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));

    let spawn_decoder =
        |dec: input::Decoder, role: &'static str, path: &str| -> Result<Source, Error> {
            let (tx, rx) = bounded(qd);
            let pool = FramePool::new(qd * 2 + 4);
            let p = pool.clone();
            let st = stop.clone();
            let handle = std::thread::Builder::new()
                .name(format!("vqm-decode-{role}"))
                .spawn(move || dec.run(target, tx, p, st))
                .map_err(|e| Error::Internal(format!("cannot start decoder thread: {e}")))?;
            Ok(Source {
                role,
                path: path.to_string(),
                rx,
                pool,
                handle: Some(handle),
                ended: false,
                delivered: 0,
            })
        };
    let mut reference = spawn_decoder(rdec, "reference", &settings.reference)?;
    let mut dists = Vec::new();
    for (d, path) in ddecs.into_iter().zip(&settings.distorted) {
        dists.push(spawn_decoder(d, "distorted", path)?);
    }

    let (atx, arx) = bounded::<AggMsg>(qd * 4 + 16);
    let agg = Aggregator::new(
        settings,
        &header,
        set.keys().to_vec(),
        layout.clone(),
        warn.clone(),
    );
    let agg_stop = stop.clone();
    let aggregator = std::thread::Builder::new()
        .name("vqm-aggregate".to_string())
        .spawn(move || {
            let r = agg.run(arx, &mut sinks);
            if r.is_err() {
                agg_stop.store(true, Ordering::Relaxed);
            }
            r
        })
        .map_err(|e| Error::Internal(format!("cannot start aggregator thread: {e}")))?;

    let paired = pair_loop(&mut reference, &mut dists, &set, &workers, &atx, &stop, qd);
    if paired.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    // Unblock decoders waiting on full queues, then collect them.
    let mut ref_busy = Duration::ZERO;
    let ref_frames = reference.delivered;
    for s in std::iter::once(&mut reference).chain(dists.iter_mut()) {
        let (_, dead) = bounded(0);
        let rx = std::mem::replace(&mut s.rx, dead);
        drop(rx);
        if let Some(h) = s.handle.take() {
            match h.join() {
                Ok(t) if s.role == "reference" => ref_busy = t,
                Ok(_) => {}
                Err(_) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(Error::Internal(format!(
                        "decoder thread of '{}' panicked",
                        s.path
                    )));
                }
            }
        }
    }
    let finish_seq = match paired {
        Ok(seq) => seq,
        Err(e) => {
            drop(atx);
            // The aggregator ends when every job's sender is gone.
            if aggregator.join().is_err() {
                return Err(Error::Internal("aggregator thread panicked".to_string()));
            }
            return Err(e);
        }
    };
    let unpaired = dists
        .iter()
        .map(|d| {
            (
                ref_frames.saturating_sub(d.delivered),
                d.delivered.saturating_sub(ref_frames),
            )
        })
        .collect();
    let sent = atx.send(AggMsg::Finish {
        seq: finish_seq,
        unpaired,
        reference_frames: ref_frames,
        reference_decode: ref_busy,
    });
    drop(atx);
    let agg_result = aggregator
        .join()
        .map_err(|_| Error::Internal("aggregator thread panicked".to_string()))?;
    let (summaries, mut timing) = agg_result?;
    if sent.is_err() {
        return Err(Error::Internal(
            "aggregator stopped before the end".to_string(),
        ));
    }
    timing.wall = started.elapsed();
    timing.threads = threads;
    Ok(Report {
        header,
        summaries,
        timing,
    })
}

/// Pulls the next frame of a source, forwarding its decode errors as
/// events. `Ok(None)` at its end.
fn next_frame(
    src: &mut Source,
    input: Option<usize>,
    n_inputs: usize,
    atx: &Sender<AggMsg>,
    seq: &mut u64,
    stop: &AtomicBool,
) -> Result<Option<Frame>, Error> {
    if src.ended {
        return Ok(None);
    }
    loop {
        let msg = match src.rx.recv() {
            Ok(m) => m,
            Err(_) => {
                src.ended = true;
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                return Err(Error::Internal(format!(
                    "decoder of '{}' stopped without a reason",
                    src.path
                )));
            }
        };
        match msg {
            DecodeEvent::Frame(f) => {
                src.delivered += 1;
                return Ok(Some(f));
            }
            DecodeEvent::DecodeError { cause } => {
                let event = Event {
                    kind: "decode_error",
                    input,
                    source: Some((src.role.to_string(), src.path.clone())),
                    counts: vec![("after_frames", src.delivered)],
                    message: cause,
                };
                let decode_error_for = match input {
                    Some(i) => vec![i],
                    None => (0..n_inputs).collect(),
                };
                let s = *seq;
                *seq += 1;
                if atx
                    .send(AggMsg::Event {
                        seq: s,
                        event,
                        decode_error_for,
                    })
                    .is_err()
                {
                    return Ok(None);
                }
            }
            DecodeEvent::End { frames } => {
                src.ended = true;
                if frames == 0 {
                    return Err(Error::Input {
                        input: src.path.clone(),
                        cause: "no decodable video frame".to_string(),
                    });
                }
                return Ok(None);
            }
            DecodeEvent::Failed(e) => {
                src.ended = true;
                return Err(e);
            }
        }
    }
}

/// Pairs frames by index and hands each pair to the workers. Returns the
/// next sequence number (for the final message).
fn pair_loop(
    reference: &mut Source,
    dists: &mut [Source],
    set: &Arc<MetricSet>,
    workers: &rayon::ThreadPool,
    atx: &Sender<AggMsg>,
    stop: &AtomicBool,
    qd: usize,
) -> Result<u64, Error> {
    let n = dists.len();
    let mut seq = 0u64;
    let mut pair_index = vec![0u64; n];
    let (tok_tx, tok_rx) = bounded::<()>(qd);
    let mut dist_frames: Vec<Option<Frame>> = (0..n).map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        let Some(rf) = next_frame(reference, None, n, atx, &mut seq, stop)? else {
            break;
        };
        for (i, d) in dists.iter_mut().enumerate() {
            dist_frames[i] = next_frame(d, Some(i), n, atx, &mut seq, stop)?;
        }
        if dist_frames.iter().all(Option::is_none) {
            // Every distorted input has ended: count the rest of the
            // reference without measuring it.
            reference.pool.give(rf);
            continue;
        }
        let rf = Arc::new(rf);
        for (i, slot) in dist_frames.iter_mut().enumerate() {
            let Some(df) = slot.take() else { continue };
            if !same_layout(&rf, &df) {
                return Err(Error::Internal(format!(
                    "frame {} of '{}' was not converted to the reference layout",
                    df.index, dists[i].path
                )));
            }
            if tok_tx.send(()).is_err() {
                return Err(Error::Internal("worker tokens closed".to_string()));
            }
            let job = Job {
                seq,
                input: i,
                frame: pair_index[i],
                reference: rf.clone(),
                distorted: df,
                set: set.clone(),
                atx: atx.clone(),
                ref_pool: reference.pool.clone(),
                dist_pool: dists[i].pool.clone(),
                done: tok_rx.clone(),
            };
            seq += 1;
            pair_index[i] += 1;
            workers.spawn(move || job.run());
        }
    }
    // Drain what is left of the distorted inputs, counting it.
    for (i, d) in dists.iter_mut().enumerate() {
        while !stop.load(Ordering::Relaxed) {
            match next_frame(d, Some(i), n, atx, &mut seq, stop)? {
                Some(f) => d.pool.give(f),
                None => break,
            }
        }
    }
    Ok(seq)
}

struct Job {
    seq: u64,
    input: usize,
    frame: u64,
    reference: Arc<Frame>,
    distorted: Frame,
    set: Arc<MetricSet>,
    atx: Sender<AggMsg>,
    ref_pool: FramePool,
    dist_pool: FramePool,
    done: Receiver<()>,
}

impl Job {
    fn run(self) {
        let started = Instant::now();
        let row = self.set.compute(&self.reference, &self.distorted);
        let finished = Instant::now();
        let msg = match row {
            Ok(row) => AggMsg::Row {
                seq: self.seq,
                input: self.input,
                frame: self.frame,
                ref_frame: self.reference.index,
                dist_frame: self.distorted.index,
                pts: self.reference.pts,
                row,
                started,
                finished,
            },
            Err(e) => AggMsg::Failed {
                seq: self.seq,
                error: Error::Internal(e),
            },
        };
        // A closed aggregator means the run is stopping: the row has nowhere to go.
        if self.atx.send(msg).is_err() {
            // stopping
        }
        self.dist_pool.give(self.distorted);
        if let Ok(f) = Arc::try_unwrap(self.reference) {
            self.ref_pool.give(f);
        }
        if self.done.recv().is_err() {
            // the pairing loop is gone; nothing to release
        }
    }
}

struct InputState {
    path: String,
    conversion: Option<String>,
    pairs: u64,
    pooled: Vec<PooledKey>,
    mse_sum: Vec<f64>,
    mse_frames: u64,
    rolling: Rolling,
    since_window: usize,
    decode_errors: u64,
}

struct Aggregator {
    keys: Vec<String>,
    layout: Layout,
    inputs: Vec<InputState>,
    window_every: usize,
    pending: BTreeMap<u64, AggMsg>,
    next: u64,
    compute: Duration,
    busy_until: Option<Instant>,
    pairs: u64,
    warn: Warn,
    reference_path: String,
    decode_warnings: u64,
    psnr_cap: f64,
}

impl Aggregator {
    fn new(
        settings: &Settings,
        header: &Header,
        keys: Vec<String>,
        layout: Layout,
        warn: Warn,
    ) -> Self {
        let planes = layout.plane_names.len();
        Aggregator {
            inputs: header
                .distorted
                .iter()
                .map(|d| InputState {
                    path: d.info.path.clone(),
                    conversion: d.info.conversion.clone(),
                    pairs: 0,
                    pooled: keys.iter().map(|_| PooledKey::new()).collect(),
                    mse_sum: vec![0.0; planes + 1],
                    mse_frames: 0,
                    rolling: Rolling::new(settings.window.max(1), keys.len()),
                    since_window: 0,
                    decode_errors: 0,
                })
                .collect(),
            keys,
            layout,
            window_every: settings.window_every,
            pending: BTreeMap::new(),
            next: 0,
            compute: Duration::ZERO,
            busy_until: None,
            pairs: 0,
            warn,
            reference_path: settings.reference.clone(),
            decode_warnings: 0,
            psnr_cap: header.psnr_max,
        }
    }

    fn emit(sinks: &mut [Box<dyn Sink>], rec: Record<'_>, json: &str) -> Result<(), Error> {
        for s in sinks.iter_mut() {
            s.write(&rec, json)?;
        }
        Ok(())
    }

    fn run(
        mut self,
        rx: Receiver<AggMsg>,
        sinks: &mut [Box<dyn Sink>],
    ) -> Result<(Vec<Summary>, Timing), Error> {
        while let Ok(msg) = rx.recv() {
            self.pending.insert(msg.seq(), msg);
            while let Some(msg) = self.pending.remove(&self.next) {
                self.next += 1;
                if let Some(done) = self.handle(msg, sinks)? {
                    for s in sinks.iter_mut() {
                        s.finish()?;
                    }
                    return Ok(done);
                }
            }
        }
        // Senders gone before the end: the run failed elsewhere; keep what
        // was written and flush it.
        for s in sinks.iter_mut() {
            s.finish()?;
        }
        Ok((Vec::new(), Timing::default()))
    }

    fn handle(
        &mut self,
        msg: AggMsg,
        sinks: &mut [Box<dyn Sink>],
    ) -> Result<Option<(Vec<Summary>, Timing)>, Error> {
        match msg {
            AggMsg::Row {
                input,
                frame,
                ref_frame,
                dist_frame,
                pts,
                row,
                started,
                finished,
                ..
            } => {
                // Union of job intervals; jobs arrive in start order.
                let from = match self.busy_until {
                    Some(b) if b > started => b,
                    _ => started,
                };
                if finished > from {
                    self.compute += finished - from;
                    self.busy_until = Some(finished);
                }
                self.pairs += 1;
                let rec = FrameRecord {
                    input,
                    frame,
                    ref_frame,
                    dist_frame,
                    pts,
                    keys: &self.keys,
                    values: &row.values,
                };
                Self::emit(sinks, Record::Frame(&rec), &rec.to_json())?;
                let st = &mut self.inputs[input];
                st.pairs += 1;
                for (p, v) in st.pooled.iter_mut().zip(&row.values) {
                    p.push(*v);
                }
                if let Some(mse) = &row.plane_mse {
                    let shares = self.layout.plane_shares();
                    let mut avg = 0.0;
                    for (i, m) in mse.iter().enumerate() {
                        st.mse_sum[i] += m;
                        avg += m * shares.get(i).copied().unwrap_or(0.0);
                    }
                    if let Some(last) = st.mse_sum.last_mut() {
                        *last += avg;
                    }
                    st.mse_frames += 1;
                }
                st.rolling.push(&row.values);
                st.since_window += 1;
                if self.window_every > 0 && st.since_window >= self.window_every {
                    st.since_window = 0;
                    let stats = st.rolling.stats();
                    let rec = WindowRecord {
                        input,
                        end_frame: frame,
                        frames: st.rolling.len() as u64,
                        keys: &self.keys,
                        stats: &stats,
                    };
                    Self::emit(sinks, Record::Window(&rec), &rec.to_json())?;
                }
                Ok(None)
            }
            AggMsg::Failed { error, .. } => Err(error),
            AggMsg::Event {
                event,
                decode_error_for,
                ..
            } => {
                for i in decode_error_for {
                    if let Some(st) = self.inputs.get_mut(i) {
                        st.decode_errors += 1;
                    }
                }
                self.decode_warnings += 1;
                if self.decode_warnings <= 5 {
                    let who = event
                        .source
                        .as_ref()
                        .map(|(_, p)| p.as_str())
                        .unwrap_or("?");
                    (self.warn)(&format!("'{who}': {}", event.message));
                } else if self.decode_warnings == 6 {
                    (self.warn)(
                        "more decode errors follow; each is a decode_error event in the log",
                    );
                }
                Self::emit(sinks, Record::Event(&event), &event.to_json())?;
                Ok(None)
            }
            AggMsg::Finish {
                unpaired,
                reference_frames,
                reference_decode,
                ..
            } => {
                let mut summaries = Vec::new();
                for (i, (ur, ud)) in unpaired.iter().enumerate() {
                    if *ur > 0 || *ud > 0 {
                        let path = self.inputs[i].path.clone();
                        let message = if *ur > 0 {
                            format!(
                                "reference '{}' has {ur} more frame(s) than distorted '{path}'; they were not measured",
                                self.reference_path
                            )
                        } else {
                            format!(
                                "distorted '{path}' has {ud} more frame(s) than reference '{}'; they were not measured",
                                self.reference_path
                            )
                        };
                        (self.warn)(&message);
                        let event = Event {
                            kind: "mismatch",
                            input: Some(i),
                            source: None,
                            counts: vec![("unpaired_reference", *ur), ("unpaired_distorted", *ud)],
                            message,
                        };
                        Self::emit(sinks, Record::Event(&event), &event.to_json())?;
                    }
                }
                for (i, st) in self.inputs.iter().enumerate() {
                    let psnr_global = (st.mse_frames > 0).then(|| {
                        let peak = self.layout.peak();
                        let cap = self.psnr_cap;
                        let mut names: Vec<String> = self
                            .layout
                            .plane_names
                            .iter()
                            .map(|s| s.to_string())
                            .collect();
                        names.push("avg".to_string());
                        names
                            .into_iter()
                            .zip(&st.mse_sum)
                            .map(|(n, s)| {
                                let mean = s / st.mse_frames as f64;
                                (n, psnr_from_mse(mean, peak, cap))
                            })
                            .collect()
                    });
                    let summary = Summary {
                        input: i,
                        path: st.path.clone(),
                        frames: st.pairs,
                        metrics: self
                            .keys
                            .iter()
                            .zip(&st.pooled)
                            .map(|(k, p)| (k.clone(), p.finish()))
                            .collect(),
                        psnr_global,
                        unpaired_reference: unpaired.get(i).map(|u| u.0).unwrap_or(0),
                        unpaired_distorted: unpaired.get(i).map(|u| u.1).unwrap_or(0),
                        decode_errors: st.decode_errors,
                        conversion: st.conversion.clone(),
                    };
                    Self::emit(sinks, Record::Summary(&summary), &summary.to_json())?;
                    summaries.push(summary);
                }
                let timing = Timing {
                    wall: Duration::ZERO,
                    reference_frames,
                    reference_decode,
                    pairs: self.pairs,
                    compute: self.compute,
                    threads: 0,
                };
                Ok(Some((summaries, timing)))
            }
        }
    }
}
