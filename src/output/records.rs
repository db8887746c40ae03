//! The records vqm writes (SPEC "Records"): header, frame, window, event
//! and summary. Each is serialised by serde ([`super::json::line`]) as one
//! compact JSON object with its keys in a fixed order; `null` stands for
//! a value that does not exist (or is not finite).

use std::time::Duration;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::input::InputInfo;
use crate::metrics::Better;
use crate::stats::rolling::WindowStat;
use crate::stats::{Pooled, WindowSpec};

mod event;
pub use event::{EVENT_KINDS, Event, EventKind, Role};

/// Version of the record layout.
pub const SCHEMA: u64 = 1;

/// The result of a sync search: reference frame `j + offset` pairs with
/// distorted frame `j`; `psnr` is the mean thumbnail luma PSNR there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SyncResult {
    /// Reference index minus distorted index.
    pub offset: i64,
    /// How well the thumbnails matched at that offset, dB.
    pub psnr: f64,
}

/// One distorted input as the header describes it.
#[derive(Debug, Clone)]
pub struct DistortedHeader {
    /// What the input is.
    pub info: InputInfo,
    /// Frames skipped at its start.
    pub offset: u64,
    /// Reference frames skipped at the start for this input.
    pub reference_offset: u64,
    /// The automatic sync result, if done before the run.
    pub sync: Option<SyncResult>,
}

/// The first record of a log.
#[derive(Debug, Clone)]
pub struct Header {
    /// The reference input.
    pub reference: InputInfo,
    /// Frames skipped at the reference's start.
    pub reference_offset: u64,
    /// The distorted inputs, in `input` order.
    pub distorted: Vec<DistortedHeader>,
    /// Selected metric names.
    pub metrics: Vec<String>,
    /// Record keys of each frame, in order.
    pub keys: Vec<String>,
    /// Which way each key is better, as its metric declares (not written:
    /// it tells the sinks how to rank).
    pub better: Vec<Better>,
    /// Planar format measured in.
    pub measured_format: String,
    /// Bit depth measured at.
    pub bit_depth: u32,
    /// SSIM convention.
    pub ssim_mode: String,
    /// PSNR cap in dB.
    pub psnr_max: f64,
    /// Rolling window.
    pub window: WindowSpec,
    /// Pairing: `index` or `pts`.
    pub align: String,
    /// `--sync auto` search range, if asked.
    pub sync_range: Option<u64>,
    /// Live monitoring.
    pub live: bool,
    /// The kernels' code path (`scalar`, `avx2`, `fma`, `avx512`).
    pub cpu: String,
    /// How pictures of another size or format are resized
    /// (`--scale-algo`, FFmpeg's name).
    pub scale_algo: &'static str,
    /// The VMAF model and libvmaf's version, when `vmaf` is measured.
    pub vmaf: Option<VmafHeader>,
}

/// What the header says of VMAF.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmafHeader {
    /// The model (a built-in name or a file's path).
    pub model: String,
    /// libvmaf's version.
    pub libvmaf: String,
    /// The model's score transform applied (`--vmaf-enable-transform`).
    pub enable_transform: bool,
    /// Scores left unclipped (`--vmaf-disable-clip`).
    pub disable_clip: bool,
}

/// An input as the header writes it.
#[derive(Serialize)]
struct InputOut<'a> {
    path: &'a str,
    codec: &'a str,
    width: u32,
    height: u32,
    pix_fmt: &'a str,
    bit_depth: u32,
    frame_rate: Option<f64>,
    conversion: Option<&'a str>,
    range: &'a str,
    interlaced: bool,
    offset: u64,
    /// `--ref-filter` / `--dist-filter`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a str>,
}

impl<'a> InputOut<'a> {
    fn of(info: &'a InputInfo, offset: u64) -> Self {
        InputOut {
            path: &info.path,
            codec: &info.codec,
            width: info.width,
            height: info.height,
            pix_fmt: &info.pix_fmt,
            bit_depth: info.bit_depth,
            frame_rate: info.frame_rate,
            conversion: info.conversion.as_deref(),
            range: &info.range,
            interlaced: info.interlaced,
            offset,
            filter: info.filter.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct DistortedOut<'a> {
    #[serde(flatten)]
    input: InputOut<'a>,
    reference_offset: u64,
    sync: Option<SyncResult>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u64,
    version: &'static str,
    reference: InputOut<'a>,
    distorted: Vec<DistortedOut<'a>>,
    metrics: &'a [String],
    keys: &'a [String],
    measured_format: &'a str,
    bit_depth: u32,
    ssim_mode: &'a str,
    psnr_max: f64,
    window: Option<usize>,
    window_seconds: Option<f64>,
    align: &'a str,
    sync_range: Option<u64>,
    live: bool,
    cpu: &'a str,
    scale_algo: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vmaf: Option<&'a VmafHeader>,
}

impl Serialize for Header {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (window, window_seconds) = match self.window {
            WindowSpec::Frames(n) => (Some(n), None),
            WindowSpec::Seconds(sec) => (None, Some(sec)),
        };
        HeaderOut {
            kind: "header",
            schema: SCHEMA,
            version: env!("CARGO_PKG_VERSION"),
            reference: InputOut::of(&self.reference, self.reference_offset),
            distorted: self
                .distorted
                .iter()
                .map(|d| DistortedOut {
                    input: InputOut::of(&d.info, d.offset),
                    reference_offset: d.reference_offset,
                    sync: d.sync,
                })
                .collect(),
            metrics: &self.metrics,
            keys: &self.keys,
            measured_format: &self.measured_format,
            bit_depth: self.bit_depth,
            ssim_mode: &self.ssim_mode,
            psnr_max: self.psnr_max,
            window,
            window_seconds,
            align: &self.align,
            sync_range: self.sync_range,
            live: self.live,
            cpu: &self.cpu,
            scale_algo: self.scale_algo,
            vmaf: self.vmaf.as_ref(),
        }
        .serialize(s)
    }
}

/// One measured pair.
#[derive(Debug, Clone, Copy)]
pub struct FrameRecord<'a> {
    /// Distorted input index.
    pub input: usize,
    /// The distorted input's path (not in the JSON: `input` says it).
    pub path: &'a str,
    /// Index of the pair in output order.
    pub frame: u64,
    /// Index of the reference frame in its input.
    pub ref_frame: u64,
    /// Index of the distorted frame in its input.
    pub dist_frame: u64,
    /// Reference presentation time in seconds from its first frame.
    pub pts: f64,
    /// Keys of `values`.
    pub keys: &'a [String],
    /// One value per key.
    pub values: &'a [f64],
    /// Live: milliseconds from the later frame's arrival to this record.
    pub lag_ms: Option<f64>,
    /// Live: milliseconds between the arrivals of the pair's two frames.
    pub align_ms: Option<f64>,
    /// Measured while the input's sync was pending (not in the
    /// statistics unless the sync found confirms it; no alert).
    pub pending: bool,
    /// Live: a picture decoded from damaged data (data lost in transit or
    /// a decode error, until the next clean keyframe): in no statistic,
    /// no alert.
    pub damaged: bool,
    /// Live, overloaded: one pair in this many is measured (1: every
    /// pair; written only above 1).
    pub every: u64,
}

impl Serialize for FrameRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6 + self.keys.len()))?;
        m.serialize_entry("type", "frame")?;
        m.serialize_entry("input", &self.input)?;
        m.serialize_entry("frame", &self.frame)?;
        m.serialize_entry("ref_frame", &self.ref_frame)?;
        m.serialize_entry("dist_frame", &self.dist_frame)?;
        m.serialize_entry("pts", &self.pts)?;
        if let Some(ms) = self.lag_ms {
            m.serialize_entry("lag_ms", &ms)?;
        }
        if let Some(ms) = self.align_ms {
            m.serialize_entry("alignment_delay_ms", &ms)?;
        }
        if self.pending {
            m.serialize_entry("sync", "pending")?;
        }
        if self.damaged {
            m.serialize_entry("damaged", &true)?;
        }
        if self.every > 1 {
            m.serialize_entry("measured_every", &self.every)?;
        }
        for (k, v) in self.keys.iter().zip(self.values) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Rolling statistics over the last window of one input.
#[derive(Debug, Clone, Copy)]
pub struct WindowRecord<'a> {
    /// Distorted input index.
    pub input: usize,
    /// Last pair index in the window.
    pub end_frame: u64,
    /// Pairs in the window.
    pub frames: u64,
    /// Keys of `stats`.
    pub keys: &'a [String],
    /// Statistics per key.
    pub stats: &'a [WindowStat],
}

#[derive(Serialize)]
struct WindowStatOut {
    mean: f64,
    min: f64,
    max: f64,
}

impl Serialize for WindowRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4 + self.keys.len()))?;
        m.serialize_entry("type", "window")?;
        m.serialize_entry("input", &self.input)?;
        m.serialize_entry("end_frame", &self.end_frame)?;
        m.serialize_entry("frames", &self.frames)?;
        for (k, st) in self.keys.iter().zip(self.stats) {
            let v = WindowStatOut {
                mean: st.mean,
                min: st.min,
                max: st.max,
            };
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

/// One gate evaluated on one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// The gate as written.
    pub gate: String,
    /// The pooled value it looked at (`None` when it does not exist).
    pub value: Option<f64>,
    /// Whether the failing condition held (a missing value fails).
    pub failed: bool,
}

/// Latency from both frames decoded to the record written, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub median: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The pooled result of one distorted input.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Distorted input index.
    pub input: usize,
    /// The distorted input's path.
    pub path: String,
    /// Pairs measured.
    pub frames: u64,
    /// Pooled figures per key, in key order (`None` for a key never seen).
    pub metrics: Vec<(String, Option<Pooled>)>,
    /// Whole-run figures a metric pools itself (e.g. PSNR of the mean MSE
    /// per plane), by record name: `psnr_global`.
    pub psnr_global: Option<Vec<(String, f64)>>,
    /// Reference frames left unpaired.
    pub unpaired_reference: u64,
    /// Distorted frames left unpaired.
    pub unpaired_distorted: u64,
    /// The reference frames left unpaired, by cause.
    pub reference_causes: Unpaired,
    /// The distorted frames left unpaired, by cause.
    pub distorted_causes: Unpaired,
    /// Decode errors seen on the reference and on this input.
    pub decode_errors: u64,
    /// How the distorted frames were converted, if they were.
    pub conversion: Option<String>,
    /// Reference index minus distorted index of the last pairs (offsets,
    /// sync and resyncs included).
    pub offset: i64,
    /// The automatic sync result.
    pub sync: Option<SyncResult>,
    /// Distorted frames identical to their predecessor while the reference changed.
    pub frozen_frames: u64,
    /// Distorted frames black while the reference was not.
    pub black_frames: u64,
    /// Reference frames with no distorted frame at their time (`--align pts`).
    pub dropped_frames: u64,
    /// Times this input (or the reference) was lost and restored.
    pub reconnects: u64,
    /// Pairs measured while the sync was pending and left out of the
    /// statistics (written with `"sync": "pending"`).
    pub sync_pending: u64,
    /// Live: pairs measured on pictures decoded from damaged data, left
    /// out of the statistics (written with `"damaged": true`).
    pub damaged_frames: u64,
    /// Live: pairs left unmeasured to keep real time (one in `max_every`
    /// measured at most), and that most.
    pub shed_pairs: u64,
    pub max_every: u64,
    /// Alert rules that fired on this input.
    pub alerts: Vec<String>,
    /// Quality gates and their outcome.
    pub gates: Vec<GateResult>,
    /// Latency from both frames decoded to the record written.
    pub latency_ms: Option<Latency>,
    /// Live: from the later frame's arrival (on its input's real-time
    /// schedule) to the record written.
    pub lag_ms: Option<Latency>,
    /// Live: between the arrivals of a pair's two frames (one input held
    /// back to meet the other's delay).
    pub alignment_delay_ms: Option<Latency>,
    /// Live: pairs dropped unmeasured, older than `--max-lag`.
    pub lag_drops: u64,
    /// Whether the run was stopped by a signal before its inputs ended.
    pub interrupted: bool,
    /// The input's pictures, `WxH` as decoded.
    pub resolution: String,
    /// Its codec.
    pub codec: String,
    /// Its bitrate as the container declares it (bits per second).
    pub bitrate: Option<u64>,
    /// With several distorted inputs: this one's place in the ladder.
    pub ladder: Option<LadderMark>,
}

/// The drawn picture of one of an input's worst moments (`--worst`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorstPicture {
    /// Distorted input index.
    pub input: usize,
    /// 1 for the worst.
    pub rank: usize,
    /// The pair index.
    pub frame: u64,
    /// The reference frame's time (seconds).
    pub time: f64,
    /// The ranking key's value.
    pub value: f64,
    /// The labelled picture, as PNG.
    pub png: Vec<u8>,
}

/// One rung's place in the ladder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LadderMark {
    /// 1 for the lowest bitrate.
    pub rank: usize,
    /// The quality key the hull is drawn with (`vmaf`, else `psnr_avg`, ...).
    pub quality_key: String,
    /// Its pooled mean.
    pub quality: f64,
    /// On the upper convex hull of the (bitrate, quality) points.
    pub on_hull: bool,
    /// A rung (input index) with no more bits and better quality, if any.
    pub dominated_by: Option<usize>,
}

#[derive(Serialize)]
struct PooledOut {
    mean: f64,
    min: f64,
    max: f64,
    stddev: f64,
    harmonic_mean: Option<f64>,
    median: f64,
    p5: f64,
    p95: f64,
}

/// Pairs serialised as a JSON object, in order.
struct Entries<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for Entries<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct UnpairedOut {
    reference: u64,
    distorted: u64,
    by_cause: UnpairedCauses,
}

#[derive(Serialize)]
struct UnpairedCauses {
    reference: Unpaired,
    distorted: Unpaired,
}

#[derive(Serialize)]
struct SummaryOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u64,
    input: usize,
    path: &'a str,
    resolution: &'a str,
    codec: &'a str,
    bitrate: Option<u64>,
    frames: u64,
    metrics: Entries<'a, Option<PooledOut>>,
    psnr_global: Option<Entries<'a, f64>>,
    unpaired: UnpairedOut,
    decode_errors: u64,
    conversion: Option<&'a str>,
    offset: i64,
    sync: Option<SyncResult>,
    frozen_frames: u64,
    black_frames: u64,
    dropped_frames: u64,
    reconnects: u64,
    sync_pending: u64,
    damaged_frames: u64,
    shed_pairs: u64,
    max_every: u64,
    alerts: &'a [String],
    gates: &'a [GateResult],
    latency_ms: Option<Latency>,
    lag_ms: Option<Latency>,
    alignment_delay_ms: Option<Latency>,
    lag_drops: u64,
    interrupted: bool,
    ladder: Option<&'a LadderMark>,
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let metrics: Vec<(String, Option<PooledOut>)> = self
            .metrics
            .iter()
            .map(|(k, p)| {
                let out = p.as_ref().map(|p| PooledOut {
                    mean: p.mean,
                    min: p.min,
                    max: p.max,
                    stddev: p.stddev,
                    harmonic_mean: p.harmonic_mean,
                    median: p.median,
                    p5: p.p5,
                    p95: p.p95,
                });
                (k.clone(), out)
            })
            .collect();
        SummaryOut {
            kind: "summary",
            schema: SCHEMA,
            input: self.input,
            path: &self.path,
            resolution: &self.resolution,
            codec: &self.codec,
            bitrate: self.bitrate,
            frames: self.frames,
            metrics: Entries(&metrics),
            psnr_global: self.psnr_global.as_deref().map(Entries),
            unpaired: UnpairedOut {
                reference: self.unpaired_reference,
                distorted: self.unpaired_distorted,
                by_cause: UnpairedCauses {
                    reference: self.reference_causes,
                    distorted: self.distorted_causes,
                },
            },
            decode_errors: self.decode_errors,
            conversion: self.conversion.as_deref(),
            offset: self.offset,
            sync: self.sync,
            frozen_frames: self.frozen_frames,
            black_frames: self.black_frames,
            dropped_frames: self.dropped_frames,
            reconnects: self.reconnects,
            sync_pending: self.sync_pending,
            damaged_frames: self.damaged_frames,
            shed_pairs: self.shed_pairs,
            max_every: self.max_every,
            alerts: &self.alerts,
            gates: &self.gates,
            latency_ms: self.latency_ms,
            lag_ms: self.lag_ms,
            alignment_delay_ms: self.alignment_delay_ms,
            lag_drops: self.lag_drops,
            interrupted: self.interrupted,
            ladder: self.ladder.as_ref(),
        }
        .serialize(s)
    }
}

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

/// Frames left unpaired, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Unpaired {
    /// While this input or its partner was lost (a live outage).
    pub outage: u64,
    /// Skipped to apply an offset (given, or found by a sync).
    pub offset: u64,
    /// No partner at its time (timestamps: `--align pts`, a lost frame).
    pub timing: u64,
    /// Dropped unmeasured, older than `--max-lag`.
    pub lag: u64,
    /// After its partner's end (a frame-count mismatch).
    pub end: u64,
}

/// Why a frame was left unpaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// See [`Unpaired::outage`].
    Outage,
    /// See [`Unpaired::offset`].
    Offset,
    /// See [`Unpaired::timing`].
    Timing,
    /// See [`Unpaired::lag`].
    Lag,
    /// See [`Unpaired::end`].
    End,
}

impl Unpaired {
    /// Counts one frame left unpaired for `cause`.
    pub fn add(&mut self, cause: Cause) {
        *match cause {
            Cause::Outage => &mut self.outage,
            Cause::Offset => &mut self.offset,
            Cause::Timing => &mut self.timing,
            Cause::Lag => &mut self.lag,
            Cause::End => &mut self.end,
        } += 1;
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.outage + self.offset + self.timing + self.lag + self.end
    }
}
