//! The run: decoders (one thread per input) → pairing → metric workers (a
//! rayon pool) → ordered aggregator → sinks, joined by bounded channels so
//! memory is fixed by the queue depth, never by the video's length. This
//! module only wires the stages; pairing is [`pair`], the sync search
//! [`sync`], the metric jobs [`workers`].

pub mod feed;
mod opening;
pub mod pair;
mod presync;
pub mod sync;
pub mod timeline;
pub mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use crate::error::Error;
pub use crate::error::Warn;
use crate::frame::FramePool;
use crate::input::InputOptions;
use crate::input::{self, OpenOptions, format};
use crate::metrics::{Layout, MetricOptions, MetricSet, Registration};
use crate::monitor::alert::Rule;
use crate::monitor::gate::Gate;
use crate::monitor::worst::{Labels, WorstCapture};
use crate::monitor::{AggMsg, AggSettings, Aggregator};
pub use crate::output::records::Timing;
use crate::output::records::{
    DistortedHeader, Event, EventKind, Header, Role, Summary, SyncResult,
};
use crate::output::{Sink, Sinks};
use crate::stats::WindowSpec;
use feed::{Fed, Feed, Source};
use pair::{Align, PairSettings, Pairing};
use presync::{hint_shifts, presync, reopenable};

/// What the worst moments' pictures are for.
#[derive(Debug, Clone)]
pub struct WorstPictures {
    /// `--dump-worst DIR`, if given.
    pub dir: Option<String>,
    /// `--worst N`.
    pub n: usize,
    /// `--worst-chroma`.
    pub chroma: bool,
}

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
    /// Rolling window.
    pub window: WindowSpec,
    /// A window record every this many pairs.
    pub window_every: usize,
    /// Depth of each bounded queue, in frames.
    pub queue_depth: usize,
    /// Metric worker threads (`None`: one per core).
    pub threads: Option<usize>,
    /// Frames skipped at the reference's start.
    pub ref_offset: u64,
    /// Frames skipped at each distorted input's start.
    pub dist_offset: u64,
    /// `--sync auto[:K|:Ns]`: the search range.
    pub sync: Option<sync::SyncRange>,
    /// When a live sync result is accepted.
    pub sync_confidence: sync::Confidence,
    /// Pairing by index or pts.
    pub align: Align,
    /// `--align` was given: the pairing is the user's choice, not checked
    /// against the timelines.
    pub align_given: bool,
    /// Live monitoring (automatic for network inputs).
    pub live: bool,
    /// A live input silent this long is lost.
    pub stall_timeout: Duration,
    /// A live input silent at start-up is waited for this long (`None`:
    /// until it speaks).
    pub live_timeout: Option<Duration>,
    /// Live: pairs older than this are dropped unmeasured.
    pub max_lag: Duration,
    /// Alert rules.
    pub alerts: Vec<Rule>,
    /// Quality gates on pooled values.
    pub gates: Vec<Gate>,
    /// Stop after this many pairs per distorted input.
    pub frames: Option<u64>,
    /// Skip frames before this pts (seconds).
    pub start: Option<f64>,
    /// Measure every Nth pair.
    pub every: u64,
    /// Demuxer settings.
    pub inputs: InputOptions,
    /// The worst moments' pictures (`--dump-worst`, `--report`).
    pub worst_pictures: Option<WorstPictures>,
    /// How pictures are resized to the measured size.
    pub scale: input::format::ScaleAlgo,
    /// The worst frames' least distance (seconds).
    pub worst_gap: f64,
    /// `--ref-filter`: an FFmpeg filtergraph on the reference's pictures.
    pub ref_filter: Option<String>,
    /// `--dist-filter`: one on every distorted input's pictures.
    pub dist_filter: Option<String>,
}

/// What a finished run reports.
pub struct Outcome {
    /// The header record written at the start.
    pub header: Header,
    /// One summary per distorted input.
    pub summaries: Vec<Summary>,
    /// Timing figures.
    pub timing: Timing,
    /// Whether an alert rule fired (exit 3).
    pub alerts_fired: bool,
    /// Whether a quality gate failed (exit 3).
    pub gates_failed: bool,
}

/// How long the end of a run waits for a decoder to notice the stop.
const DECODER_GRACE: Duration = Duration::from_secs(1);

/// What the process shares with a run while it goes.
#[derive(Default)]
pub struct Control {
    /// Ends the run early but cleanly (every sink flushed, summaries
    /// written): a signal handler sets it.
    pub stop: Arc<AtomicBool>,
    /// Set by the run once every input is open (before any output is
    /// touched); until then a signal may end the process outright.
    pub opened: Arc<AtomicBool>,
}

/// Runs a whole comparison and writes its records to `sinks`.
pub fn run(
    settings: &Settings,
    sinks: Vec<Box<dyn Sink>>,
    warn: Warn,
    control: Control,
) -> Result<Outcome, Error> {
    let Control { stop, opened } = control;
    let started = Instant::now();
    let live = settings.live
        || input::is_network(&settings.reference)
        || settings.distorted.iter().any(|d| input::is_network(d));
    let options = OpenOptions {
        live,
        stall_timeout: settings.stall_timeout,
        stop: stop.clone(),
        live_timeout: settings.live_timeout,
        on_wait: Some(input::Notify(warn.clone())),
        scale: settings.scale,
        ..OpenOptions::default()
    };
    let ref_options = OpenOptions {
        filter: settings.ref_filter.clone(),
        ..settings
            .inputs
            .for_input(&settings.reference, None, &options)?
    };
    let dist_options: Vec<OpenOptions> = settings
        .distorted
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let o = settings.inputs.for_input(d, Some(i), &options)?;
            Ok(OpenOptions {
                filter: settings.dist_filter.clone(),
                ..o
            })
        })
        .collect::<Result<_, Error>>()?;
    let (mut rdec, mut ddecs) = opening::open_all(settings, &ref_options, &dist_options, &stop)?;
    if opened.swap(true, Ordering::AcqRel) || stop.load(Ordering::Acquire) {
        // a signal came while the inputs opened (the process may be ending
        // already): nothing was measured, nothing is written
        return Err(Error::Interrupted(
            "interrupted while opening the inputs".to_string(),
        ));
    }
    let mut said = std::collections::HashSet::new();
    for note in std::iter::once(&rdec).chain(&ddecs).flat_map(|d| &d.notes) {
        // one input given twice has one set of notes
        if said.insert(note) {
            warn(note);
        }
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
        if rdec.info.range != d.info.range
            && rdec.info.range != "unknown"
            && d.info.range != "unknown"
        {
            warn(&format!(
                "distorted '{path}' is {} range and the reference {} range: every score is skewed; convert one of them first",
                d.info.range, rdec.info.range
            ));
        }
        let rates = (rdec.info.frame_rate, d.info.frame_rate, settings.align);
        if let (Some(a), Some(b), Align::Index) = rates
            && (a - b).abs() > 1e-3 * a.max(b)
        {
            warn(&format!(
                "distorted '{path}' runs at {b:.3} fps and the reference at {a:.3} fps; pairing by index (--align pts pairs by time)"
            ));
        }
    }
    for (d, path) in ddecs.iter().zip(&settings.distorted) {
        let (r, i) = (&rdec.info, &d.info);
        if u64::from(i.width) * u64::from(i.height) > u64::from(r.width) * u64::from(r.height) {
            warn(&format!(
                "distorted '{path}' ({}x{}) has more pixels than the reference '{}' ({}x{}): it is scaled down to the reference, which hides its losses; vqm takes the reference first (vqm REFERENCE DISTORTED...), so check the order of the arguments",
                i.width, i.height, settings.reference, r.width, r.height
            ));
        }
    }
    for (label, info) in std::iter::once((&settings.reference, &rdec.info))
        .chain(settings.distorted.iter().zip(ddecs.iter().map(|d| &d.info)))
    {
        let piped = label == "-"
            || label.starts_with("pipe:")
            || label.starts_with("fd:")
            || std::fs::metadata(label)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
        if info.container == "nut" && info.codec == "mpeg4" && piped {
            warn(&format!(
                "'{label}' arrives as MPEG-4 video in NUT, what `ffmpeg -f nut` encodes by default: the scores include that extra lossy encode; pipe with `-c:v rawvideo` (or `-c copy`) to measure the video itself"
            ));
        }
        if info.interlaced {
            warn(&format!(
                "'{label}' is interlaced: frames are measured as coded, which skews the scores; deinterlace both inputs the same way first"
            ));
        }
    }
    let layout = Layout {
        plane_names: format::plane_names(target.pixel),
        plane_dims: format::plane_dims(target.pixel, target.width, target.height),
        bit_depth: format::depth_of(target.pixel),
    };
    let set = Arc::new(MetricSet::new(
        &settings.metrics,
        settings.options.clone(),
        &layout,
    )?);

    // Offsets, and a sync pre-pass for inputs that can be read twice.
    let n = ddecs.len();
    let mut ref_skip = vec![settings.ref_offset; n];
    let mut dist_skip = vec![settings.dist_offset; n];
    let mut syncs: Vec<Option<(i64, f64)>> = vec![None; n];
    // Live inputs paired by index are synchronised from their first frames
    // (and again after every reconnection).
    // (by pts too: two senders' timelines are tied together by content)
    let mut sync_in_run = live;
    let sync_range = settings
        .sync
        .unwrap_or(sync::SyncRange::Default)
        .frames(rdec.info.frame_rate, live);
    if let (Some(_), Align::Index) = (settings.sync, settings.align) {
        let k = sync_range;
        if reopenable(&settings.reference) && settings.distorted.iter().all(|d| reopenable(d)) {
            for (i, d) in settings.distorted.iter().enumerate() {
                let found = presync(
                    settings,
                    d,
                    target,
                    &OpenOptions {
                        live: false,
                        ..ref_options.clone()
                    },
                    &OpenOptions {
                        live: false,
                        ..dist_options[i].clone()
                    },
                    k,
                )?;
                if let Some((o, p)) = found {
                    if o >= 0 {
                        ref_skip[i] += o as u64;
                    } else {
                        dist_skip[i] += (-o) as u64;
                    }
                    syncs[i] = Some((o, p));
                    warn(&format!(
                        "'{d}' synchronised: reference frame j+{o} pairs with distorted frame j (mean luma PSNR {p:.2} dB)"
                    ));
                } else {
                    warn(&format!(
                        "'{d}': too few frames to synchronise; pairing by index"
                    ));
                }
            }
        } else {
            sync_in_run = true;
        }
    }

    let header = Header {
        reference: rdec.info.clone(),
        reference_offset: settings.ref_offset,
        distorted: ddecs
            .iter()
            .enumerate()
            .map(|(i, d)| DistortedHeader {
                info: d.info.clone(),
                offset: dist_skip[i],
                reference_offset: ref_skip[i],
                sync: syncs[i].map(|(offset, psnr)| SyncResult { offset, psnr }),
            })
            .collect(),
        metrics: set.names().iter().map(|s| s.to_string()).collect(),
        keys: set.keys().to_vec(),
        better: set.better().to_vec(),
        measured_format: format::name(target.pixel).to_string(),
        bit_depth: layout.bit_depth,
        ssim_mode: settings.options.ssim_mode.name().to_string(),
        psnr_max: settings.options.psnr_cap(layout.bit_depth),
        window: settings.window,
        // live inputs are paired by time unless --align says otherwise
        align: match (settings.align, live && !settings.align_given) {
            (Align::Pts, _) | (_, true) => "pts",
            (Align::Index, false) => "index",
        }
        .to_string(),
        sync_range: settings.sync.map(|_| sync_range as u64),
        live,
        cpu: crate::cpu::cpu_level().name().to_string(),
        scale_algo: settings.scale.name(),
        vmaf: set
            .names()
            .contains(&"vmaf")
            .then(|| crate::output::records::VmafHeader {
                model: settings.options.vmaf.model.clone(),
                libvmaf: crate::metrics::vmaf::version(),
                enable_transform: settings.options.vmaf.enable_transform,
                disable_clip: settings.options.vmaf.disable_clip,
            }),
    };
    let capture = settings.worst_pictures.as_ref().and_then(|w| {
        set.better().first().map(|better| {
            let gap = crate::stats::moments::gap_frames(settings.worst_gap, rdec.info.frame_rate);
            // drawn on the pictures: the credentials hidden
            let shown = |p: &String| crate::redact::redact(p).into_owned();
            let labels = Labels {
                reference: shown(&settings.reference),
                distorted: settings.distorted.iter().map(shown).collect(),
                keys: set.keys().to_vec(),
                chroma: w.chroma,
            };
            Arc::new(WorstCapture::new(
                w.dir.as_deref(),
                w.n,
                gap,
                *better,
                labels,
            ))
        })
    });
    // live: the monitor tells pairing which pairs are recorded
    let recorded = live.then(|| pair::recorded_counters(settings.distorted.len()));
    let agg = Aggregator::new(
        AggSettings {
            window_every: settings.window_every,
            window: settings.window,
            alerts: settings.alerts.clone(),
            gates: settings.gates.clone(),
            frame_rate: rdec.info.frame_rate,
            temporal: settings
                .distorted
                .iter()
                .map(|_| set.temporal_states())
                .collect::<Result<_, _>>()?,
            capture: capture.clone(),
            recorded: recorded.clone(),
        },
        &header,
        set.keys().to_vec(),
        layout.clone(),
        warn.clone(),
    )?;
    let mut sinks = Sinks(sinks);
    sinks.header(&header)?;
    // live inputs that were silent at start-up, and how long they were
    // waited for
    let waits = std::iter::once((&rdec, Role::Reference, None)).chain(
        ddecs
            .iter()
            .enumerate()
            .map(|(i, d)| (d, Role::Distorted, Some(i))),
    );
    for (dec, role, input) in waits {
        if let Some(w) = dec.waited {
            let path = &dec.info.path;
            sinks.event(&Event {
                kind: EventKind::StreamWaiting {
                    waited: w.as_secs_f64(),
                },
                input,
                source: Some((role, path.clone())),
                message: format!(
                    "'{path}' was silent at start-up; its data arrived after {:.1} s",
                    w.as_secs_f64()
                ),
            })?;
        }
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
    let fatal = Arc::new(AtomicBool::new(false));

    let spawn_decoder = |dec: input::Decoder, role: Role, path: &str| -> Result<Source, Error> {
        let (tx, rx) = bounded(qd);
        let pool = FramePool::new(qd + 2);
        let p = pool.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vqm-decode-{}", role.name()))
            .spawn(move || dec.run(target, tx, p))
            .map_err(|e| Error::Internal(format!("cannot start decoder thread: {e}")))?;
        Ok(Source {
            role,
            path: crate::redact::redact(path).into_owned(),
            rx,
            pool,
            handle: Some(handle),
        })
    };
    let mut reference = spawn_decoder(rdec, Role::Reference, &settings.reference)?;
    let mut sources = Vec::new();
    for (d, path) in ddecs.into_iter().zip(&settings.distorted) {
        sources.push(spawn_decoder(d, Role::Distorted, path)?);
    }

    let (atx, arx) = bounded::<AggMsg>(qd * 4 + 16);
    let agg_stop = stop.clone();
    let agg_fatal = fatal.clone();
    let aggregator = std::thread::Builder::new()
        .name("vqm-aggregate".to_string())
        .spawn(move || {
            let r = agg.run(arx, &mut sinks);
            if r.is_err() {
                agg_fatal.store(true, Ordering::Relaxed);
                agg_stop.store(true, Ordering::Relaxed);
            }
            r
        })
        .map_err(|e| Error::Internal(format!("cannot start aggregator thread: {e}")))?;

    let peak = layout.peak();
    let pts_tolerance = pair::pts_tolerance(header.reference.frame_rate);
    let pair_settings = PairSettings {
        align: settings.align,
        ref_skip,
        dist_skip,
        sync_range,
        confidence: live.then_some(settings.sync_confidence),
        reverify: live,
        max_lag: live.then_some(settings.max_lag),
        learn_pts: live && (settings.align == Align::Pts || !settings.align_given),
        recorded,
        sync_at_start: sync_in_run,
        // the channels already buffer `qd` frames per input
        queue_cap: 2,
        pts_tolerance,
        peak,
        frames: settings.frames,
        start: settings.start,
        every: settings.every.max(1),
        origins: timeline::Origins {
            check: !settings.align_given
                && settings.align == Align::Index
                && settings.sync.is_none()
                && settings.ref_offset == 0
                && settings.dist_offset == 0
                && settings.start.is_none()
                && !live,
            reference: header.reference.start,
            distorted: header.distorted.iter().map(|d| d.info.start).collect(),
            shared: header
                .distorted
                .iter()
                .map(|d| d.info.container == header.reference.container)
                .collect(),
        },
        pts_guard: header
            .distorted
            .iter()
            .map(|d| match (header.reference.frame_rate, d.info.frame_rate) {
                // live too: a frame lost in transit is a dropped pair, not
                // a shift of every later pair (the difference is learnt
                // again whenever the offset is)
                (Some(a), Some(b)) => (a - b).abs() <= 1e-3 * a.max(b),
                _ => false,
            })
            .collect(),
    };
    let mut pairing = Pairing::new(pair_settings, &settings.reference, &settings.distorted);
    let Fed {
        result: paired,
        counts,
        reference_frames: ref_frames,
        reference_finished,
    } = Feed {
        set: &set,
        workers: &workers,
        atx: &atx,
        stop: &stop,
        in_flight: 2,
        capture: capture.clone(),
    }
    .run(&mut pairing, &reference, &sources);
    if paired.is_err() {
        fatal.store(true, Ordering::Relaxed);
    }
    // A stop asked before this point came from a signal (or a failure,
    // which `fatal` tells apart).
    let signalled = stop.load(Ordering::Relaxed);
    // Stop the decoders, unblock any waiting on a full queue, collect them.
    stop.store(true, Ordering::Relaxed);
    let mut ref_busy = Duration::ZERO;
    let mut panicked = None;
    // A decoder blocked reading a silent pipe or FIFO cannot see the stop
    // until its read returns, which may be never: it gets a short grace,
    // then is left behind (the process ends without it) so the summary of
    // the frames done is still written.
    let grace = Instant::now() + DECODER_GRACE;
    for s in std::iter::once(&mut reference).chain(sources.iter_mut()) {
        let (_, dead) = bounded(0);
        drop(std::mem::replace(&mut s.rx, dead));
        if let Some(h) = s.handle.take() {
            while !h.is_finished() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !h.is_finished() {
                warn(&format!(
                    "'{}' is blocked reading its input; the run ends without waiting for it",
                    s.path
                ));
                continue;
            }
            match h.join() {
                Ok(t) if s.role == Role::Reference => ref_busy = t,
                Ok(_) => {}
                Err(_) => panicked = Some(s.path.clone()),
            }
        }
    }
    if let Some(p) = panicked {
        return Err(Error::Internal(format!("decoder thread of '{p}' panicked")));
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
    let interrupted = signalled && !fatal.load(Ordering::Relaxed);
    let sent = atx.send(AggMsg::Finish {
        seq: finish_seq,
        counts,
        reference_frames: ref_frames,
        reference_decode: ref_busy,
        interrupted: interrupted && !reference_finished,
    });
    drop(atx);
    let result = aggregator
        .join()
        .map_err(|_| Error::Internal("aggregator thread panicked".to_string()))??;
    let Some(result) = result else {
        return Err(Error::Internal(
            "aggregator stopped before the end".to_string(),
        ));
    };
    if sent.is_err() {
        return Err(Error::Internal(
            "aggregator stopped before the end".to_string(),
        ));
    }
    if let (Some(c), Some(dir)) = (
        &capture,
        settings
            .worst_pictures
            .as_ref()
            .and_then(|w| w.dir.as_ref()),
    ) {
        let written = c.write()?;
        warn(&format!(
            "wrote {} worst-frame picture(s) to '{dir}'",
            written.len()
        ));
    }
    let mut timing = result.timing;
    timing.wall = started.elapsed();
    timing.threads = threads;
    if !interrupted && !live {
        let (r, d) = (&ref_options, &dist_options);
        hint_shifts(settings, &result.summaries, target, r, d, sync_range, &warn);
    }
    Ok(Outcome {
        header,
        summaries: result.summaries,
        timing,
        alerts_fired: result.alerts_fired,
        gates_failed: result.gates_failed,
    })
}
