//! Command-line arguments and their merge with the configuration.

use clap::Parser;

use crate::config::Config;
use crate::error::Error;
use crate::input::InputOptions;
use crate::metrics::ssim::Precision;
use crate::metrics::{self, MetricOptions, SsimMode};
use crate::monitor::alert;
use crate::monitor::gate;
use crate::output::file::{Identity, identity};
use crate::pipeline::Settings;
use crate::pipeline::pair::Align;
use crate::pipeline::sync::{MAX_RANGE_FRAMES, SyncRange};
use crate::stats::WindowSpec;
use std::time::Duration;

/// Full-reference video quality monitor: per-frame PSNR, SSIM, MS-SSIM and
/// more of one or more distorted videos against a reference, from files,
/// pipes or live streams.
#[derive(Debug, Parser)]
#[command(
    name = "vqm",
    version,
    about,
    after_help = "Examples:\n  vqm ref.mp4 dist.mp4\n  vqm ref.mp4 a.mp4 b.mp4 c.mp4 --fail-if 'mean(psnr_avg)<38' --report report.html\n  vqm ref.mp4 dist.mp4 --metrics all --log frames.ndjson --csv frames.csv --summary-json summary.json\n  vqm ref.yuv dist.yuv --size 1920x1080 --pix-fmt yuv420p --rate 25\n  ffmpeg -i dist.mkv -c:v rawvideo -f nut - | vqm ref.mp4 - --log -\n  vqm udp://127.0.0.1:5000 udp://127.0.0.1:5001 --alert 'ssim_y<0.90 for 2s' --prometheus 127.0.0.1:9464\n  vqm completions bash > /etc/bash_completion.d/vqm"
)]
pub struct Cli {
    /// Reference video: a path, a URL FFmpeg opens, or - for standard input.
    #[arg(value_name = "REFERENCE", help_heading = "Inputs", display_order = 0)]
    pub reference: String,

    /// Distorted video(s), compared against one decode of the reference.
    #[arg(
        value_name = "DISTORTED",
        required = true,
        num_args = 1..,
        help_heading = "Inputs",
        display_order = 1
    )]
    pub distorted: Vec<String>,

    /// Metrics, comma-separated: psnr mse ssim ms-ssim mae smooth-l1 bce
    /// entropy kl xent ("all": every one of these), and libvmaf's vmaf
    /// cambi psnr_hvs ciede2000 float_ssim float_ms_ssim by name [default
    /// from config: psnr,ssim].
    #[arg(short = 'm', long, value_name = "LIST", help_heading = "Metrics")]
    pub metrics: Option<String>,

    /// SSIM convention [default from config: gaussian].
    #[arg(long, value_enum, value_name = "MODE", help_heading = "Metrics")]
    pub ssim_mode: Option<SsimModeArg>,

    /// Smooth L1 threshold on the 0-1 scale [default from config: 1.0].
    #[arg(long, value_name = "B", help_heading = "Metrics")]
    pub smooth_l1_beta: Option<f64>,

    /// How a distorted input of another size (a ladder rung) or chroma
    /// layout is resized to the reference's: bicubic, lanczos, bilinear,
    /// spline or neighbor (FFmpeg's names; with accurate rounding and full
    /// chroma interpolation).
    #[arg(
        long,
        value_name = "ALGO",
        default_value = "bicubic",
        help_heading = "Inputs"
    )]
    pub scale_algo: String,

    /// An FFmpeg filtergraph applied to the reference's pictures before
    /// measuring (libavfilter syntax, e.g. "crop=1280:720:0:0" or "yadif").
    #[arg(long, value_name = "FILTERS", help_heading = "Inputs")]
    pub ref_filter: Option<String>,

    /// An FFmpeg filtergraph applied to every distorted input's pictures
    /// (before any resize to the reference's size).
    #[arg(long, value_name = "FILTERS", help_heading = "Inputs")]
    pub dist_filter: Option<String>,

    /// VMAF model: a libvmaf built-in (vmaf_v0.6.1, vmaf_v0.6.1neg, vmaf_4k_v0.6.1, the bootstrap vmaf_b_v0.6.3) or a model JSON file [default: vmaf_v0.6.1].
    #[arg(long, value_name = "NAME|PATH", help_heading = "Metrics")]
    pub vmaf_model: Option<String>,

    /// VMAF: apply the model's score transform (the phone model).
    #[arg(long, help_heading = "Metrics")]
    pub vmaf_enable_transform: bool,

    /// VMAF: do not clip scores to the model's range (0-100).
    #[arg(long, help_heading = "Metrics")]
    pub vmaf_disable_clip: bool,

    /// VMAF: add the model's elementary features (integer_vif_scale0-3, integer_adm2, integer_adm_scale0-3, integer_motion2, integer_motion) to the records.
    #[arg(long, help_heading = "Metrics")]
    pub vmaf_features: bool,

    /// Write NDJSON records (header, frames, windows, events, summary) to PATH, or - for stdout.
    #[arg(long, value_name = "PATH|-", help_heading = "Outputs")]
    pub log: Option<String>,

    /// Write the pooled summary (one JSON object per distorted input) to PATH, or - for stdout.
    #[arg(long, value_name = "PATH|-", help_heading = "Outputs")]
    pub summary_json: Option<String>,

    /// Layout of --summary-json: vqm's own (json) or libvmaf's (vmaf, with
    /// libvmaf's key names); either way one JSON document: the object of
    /// the one distorted input, or an array of one object per input.
    #[arg(
        long,
        value_enum,
        value_name = "json|vmaf",
        default_value = "json",
        help_heading = "Outputs"
    )]
    pub summary_format: SummaryFormat,

    /// Write one CSV row per frame (input, frame, pts, every metric key) to PATH, or - for stdout.
    #[arg(long, value_name = "PATH|-", help_heading = "Outputs")]
    pub csv: Option<String>,

    /// Write a self-contained HTML report (charts, summary, worst frames).
    #[arg(long, value_name = "PATH", help_heading = "Outputs")]
    pub report: Option<String>,

    /// How many worst frames the report lists and --dump-worst draws.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = 10, value_parser = whole::<0, 1000>, help_heading = "Outputs")]
    pub worst: u64,

    /// The worst frames are worst moments: at least this many seconds
    /// apart (0: the worst frames, however close) [default: 1].
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        default_value_t = 1.0,
        help_heading = "Outputs"
    )]
    pub worst_gap: f64,

    /// Write a PNG of each of the worst frames (reference | distorted | SSIM map) into DIR.
    #[arg(long, value_name = "DIR", help_heading = "Outputs")]
    pub dump_worst: Option<String>,

    /// Fail (exit 3) when a pooled value meets a condition, e.g. 'mean(psnr_avg)<38' (repeatable).
    #[arg(long = "fail-if", value_name = "GATE", help_heading = "Alerts")]
    pub gates: Vec<String>,

    /// Demuxer for every input (e.g. rawvideo); .yuv/.raw files use rawvideo.
    #[arg(long, value_name = "FORMAT", help_heading = "Inputs")]
    pub input_format: Option<String>,

    /// Picture size of raw inputs.
    #[arg(long, value_name = "WxH", help_heading = "Inputs")]
    pub size: Option<String>,

    /// Pixel format of raw inputs (yuv420p, yuv422p10le, ...).
    #[arg(long, value_name = "FMT", help_heading = "Inputs")]
    pub pix_fmt: Option<String>,

    /// Frame rate of raw inputs [default 25].
    #[arg(long, value_name = "FPS", help_heading = "Inputs")]
    pub rate: Option<String>,

    /// FFmpeg demuxer option for the reference, KEY=VALUE (repeatable).
    #[arg(long = "ref-opt", value_name = "KEY=VALUE", help_heading = "Inputs")]
    pub ref_opts: Vec<String>,

    /// FFmpeg demuxer option for every distorted input, KEY=VALUE, or for distorted input N, N:KEY=VALUE (repeatable).
    #[arg(long = "dist-opt", value_name = "KEY=VALUE", help_heading = "Inputs")]
    pub dist_opts: Vec<String>,

    /// Stop after N pairs of each distorted input.
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = whole::<1, { u64::MAX }>, help_heading = "Inputs")]
    pub frames: Option<u64>,

    /// Skip the frames before this presentation time (seconds) in every input.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        help_heading = "Inputs"
    )]
    pub start: Option<f64>,

    /// Measure every Nth pair only.
    #[arg(long, allow_negative_numbers = true, value_name = "N", default_value_t = 1, value_parser = whole::<1, { u64::MAX }>, help_heading = "Inputs")]
    pub every: u64,

    /// Use the Nth video stream (0-based) of every input that has several.
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = whole::<0, 1000>, help_heading = "Inputs")]
    pub stream: Option<u64>,

    /// Rolling-statistics window: N frames, or Ns seconds (2s) [default from config: 30].
    #[arg(long, value_name = "N|Ns", help_heading = "Outputs")]
    pub window: Option<String>,

    /// Skip N frames at the start of the reference.
    #[arg(
        long, allow_negative_numbers = true,
        value_parser = whole::<0, { u64::MAX }>,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Alignment"
    )]
    pub ref_offset: u64,

    /// Skip N frames at the start of each distorted input.
    #[arg(
        long, allow_negative_numbers = true,
        value_parser = whole::<0, { u64::MAX }>,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Alignment"
    )]
    pub dist_offset: u64,

    /// Find the offset that best aligns the inputs: up to K frames (auto:K) or N seconds (auto:Ns) either way; default 60 frames, 10 s for live inputs.
    #[arg(long, value_name = "auto[:K|:Ns]", help_heading = "Alignment")]
    pub sync: Option<String>,

    /// Pair frames by index (default) or by presentation timestamp.
    #[arg(long, value_enum, value_name = "index|pts", help_heading = "Alignment")]
    pub align: Option<AlignArg>,

    /// Live monitoring: survive stalls and errors, reconnect (automatic for network URLs).
    #[arg(long, help_heading = "Live")]
    pub live: bool,

    /// Seconds a live input may stay silent before it is lost [default from config: 5].
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        help_heading = "Live"
    )]
    pub stall_timeout: Option<f64>,

    /// Live: pairs whose later frame arrived more than SECONDS ago are dropped unmeasured (counted, lag_drop event) so the monitor catches up.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        default_value_t = 2.0,
        help_heading = "Live"
    )]
    pub max_lag: f64,

    /// Seconds a live input silent at start-up is waited for before the run fails [default: forever].
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        help_heading = "Live"
    )]
    pub live_timeout: Option<f64>,

    /// Alert rule, e.g. 'ssim_y<0.90 for 2s' or 'psnr_avg<30 for 60f' (repeatable).
    #[arg(long = "alert", value_name = "RULE", help_heading = "Alerts")]
    pub alerts: Vec<String>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT", help_heading = "Live")]
    pub prometheus: Option<String>,

    /// Configuration file (TOML) applied over the built-in default.
    #[arg(long, value_name = "PATH")]
    pub config: Option<String>,

    /// Metric worker threads [default: one per core].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = whole::<1, 1024>)]
    pub threads: Option<u64>,

    /// PSNR cap in dB [default: 6 x bitdepth + 12, 60 dB at 8 bit].
    #[arg(long, allow_negative_numbers = true, value_name = "DB")]
    pub psnr_max: Option<f64>,

    /// No summary table, warnings or progress on stderr (errors still are).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--summary-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// vqm's summary records.
    Json,
    /// libvmaf's JSON layout.
    Vmaf,
}

fn key_value(flag: &str, kv: &str) -> Result<(String, String), Error> {
    match kv.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(Error::Usage(format!("{flag} '{kv}': expected KEY=VALUE"))),
    }
}

/// `--ssim-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SsimModeArg {
    /// 11x11 Gaussian window, sigma 1.5, valid region (scikit-image).
    Gaussian,
    /// FFmpeg's ssim filter: 8x8 block sums on a 4-pixel grid.
    Ffmpeg,
    /// The common PyTorch SSIM: Gaussian window, zero padding, full map.
    ZeroPad,
}

impl From<SsimModeArg> for SsimMode {
    fn from(a: SsimModeArg) -> Self {
        match a {
            SsimModeArg::Gaussian => SsimMode::Gaussian,
            SsimModeArg::Ffmpeg => SsimMode::Ffmpeg,
            SsimModeArg::ZeroPad => SsimMode::ZeroPad,
        }
    }
}

/// `--align` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlignArg {
    /// By frame index after offsets.
    Index,
    /// By presentation timestamp.
    Pts,
}

/// Parses `auto`, `auto:K` (frames) or `auto:Ns` (seconds).
pub fn parse_sync(text: &str) -> Result<SyncRange, String> {
    let bad = || format!("'{text}' is not auto, auto:K (frames) or auto:Ns (seconds)");
    let Some(rest) = text.strip_prefix("auto") else {
        return Err(bad());
    };
    if rest.is_empty() {
        return Ok(SyncRange::Default);
    }
    let k = rest.strip_prefix(':').ok_or_else(bad)?;
    if let Some(secs) = k.strip_suffix('s') {
        let s = secs.parse::<f64>().map_err(|_| bad())?;
        if !(s.is_finite() && s > 0.0 && s <= 60.0) {
            return Err(format!(
                "'{text}': N must be above 0 and at most 60 seconds"
            ));
        }
        return Ok(SyncRange::Seconds(s));
    }
    let k = k.parse::<usize>().map_err(|_| bad())?;
    if k == 0 || k > MAX_RANGE_FRAMES {
        return Err(format!(
            "'{text}': K must be between 1 and {MAX_RANGE_FRAMES}"
        ));
    }
    Ok(SyncRange::Frames(k))
}

impl Cli {
    /// Merges flags over the configuration into run settings.
    pub fn settings(&self) -> Result<Settings, Error> {
        let mut config = Config::builtin()?;
        if let Some(path) = &self.config {
            config = config.overlay_file(path)?;
        }
        let names = match &self.metrics {
            Some(m) => vec![m.clone()],
            None => config.metrics.clone(),
        };
        let selected =
            metrics::resolve_names(&names).map_err(|e| Error::Usage(format!("--metrics: {e}")))?;
        if let Some(w) = &self.window {
            config.window =
                WindowSpec::parse(w).map_err(|e| Error::Usage(format!("--window: {e}")))?;
        }
        for r in &self.alerts {
            let rule = alert::parse(r).map_err(|e| Error::Usage(format!("--alert '{r}': {e}")))?;
            config.alerts.push(rule);
        }
        if let Some(t) = self.stall_timeout {
            if !(t.is_finite() && t > 0.0 && t <= 3600.0) {
                return Err(Error::Usage(format!(
                    "--stall-timeout: must be above 0 and at most 3600 seconds, not {t}"
                )));
            }
            config.stall_timeout = t;
        }
        let live_timeout = match self.live_timeout {
            Some(t) if !(t.is_finite() && t > 0.0 && t <= 1e9) => {
                return Err(Error::Usage(format!(
                    "--live-timeout: must be a number of seconds above 0, not {t}"
                )));
            }
            t => t.map(Duration::from_secs_f64),
        };
        if !(self.max_lag.is_finite() && self.max_lag > 0.0 && self.max_lag <= 3600.0) {
            return Err(Error::Usage(format!(
                "--max-lag: must be above 0 and at most 3600 seconds, not {}",
                self.max_lag
            )));
        }
        let sync = match &self.sync {
            Some(t) => Some(parse_sync(t).map_err(|e| Error::Usage(format!("--sync: {e}")))?),
            None => None,
        };
        let align = match self.align {
            Some(AlignArg::Pts) => Align::Pts,
            _ => Align::Index,
        };
        // live, --align pts learns the timelines' difference by content:
        // --sync gives that search's range
        let live = self.live
            || crate::input::is_network(&self.reference)
            || self.distorted.iter().any(|d| crate::input::is_network(d));
        if sync.is_some() && align == Align::Pts && !live {
            return Err(Error::Usage(
                "--sync pairs by index; with --align pts it applies to live inputs only"
                    .to_string(),
            ));
        }
        if let Some(db) = self.psnr_max {
            if !(db.is_finite() && db > 0.0 && db <= 1000.0) {
                return Err(Error::Usage(format!(
                    "--psnr-max: must be above 0 and at most 1000 dB, not {db}"
                )));
            }
            config.psnr_max = Some(db);
        }
        if let Some(m) = self.ssim_mode {
            config.ssim_mode = m.into();
        }
        if let Some(b) = self.smooth_l1_beta {
            if !(b.is_finite() && (0.0..=1000.0).contains(&b)) {
                return Err(Error::Usage(format!(
                    "--smooth-l1-beta: must be between 0 and 1000, not {b}"
                )));
            }
            config.smooth_l1_beta = b;
        }
        self.check_outputs()?;
        let stdin_users = std::iter::once(&self.reference)
            .chain(&self.distorted)
            .filter(|p| p.as_str() == "-")
            .count();
        if stdin_users > 1 {
            return Err(Error::Usage(
                "only one input can read standard input (-)".to_string(),
            ));
        }
        let mut gates = Vec::new();
        for g in &self.gates {
            gates.push(gate::parse(g).map_err(|e| Error::Usage(format!("--fail-if '{g}': {e}")))?);
        }
        if let Some(t) = self.start
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(Error::Usage(format!(
                "--start: must be a time in seconds, not {t}"
            )));
        }
        let mut raw = Vec::new();
        if let Some(v) = &self.size {
            raw.push(("video_size".to_string(), v.clone()));
        }
        if let Some(v) = &self.pix_fmt {
            raw.push(("pixel_format".to_string(), v.clone()));
        }
        if let Some(v) = &self.rate {
            raw.push(("framerate".to_string(), v.clone()));
        }
        let mut ref_opts = Vec::new();
        for kv in &self.ref_opts {
            ref_opts.push(key_value("--ref-opt", kv)?);
        }
        let mut dist_opts = Vec::new();
        for kv in &self.dist_opts {
            // N:KEY=VALUE targets distorted input N (0-based)
            let (index, rest) = match kv.split_once(':') {
                Some((n, rest))
                    if !n.is_empty()
                        && n.chars().all(|c| c.is_ascii_digit())
                        && rest.contains('=') =>
                {
                    let i: usize = n
                        .parse()
                        .map_err(|_| Error::Usage(format!("--dist-opt '{kv}': bad input index")))?;
                    if i >= self.distorted.len() {
                        return Err(Error::Usage(format!(
                            "--dist-opt '{kv}': there is no distorted input {i} (0 to {})",
                            self.distorted.len().saturating_sub(1)
                        )));
                    }
                    (Some(i), rest)
                }
                _ => (None, kv.as_str()),
            };
            let (k, v) = key_value("--dist-opt", rest)?;
            dist_opts.push((index, k, v));
        }
        let inputs = InputOptions {
            format: self.input_format.clone(),
            raw,
            reference: ref_opts,
            distorted: dist_opts,
            stream: self.stream.map(|n| n as usize),
        };
        Ok(Settings {
            reference: self.reference.clone(),
            distorted: self.distorted.clone(),
            metrics: selected,
            options: MetricOptions {
                psnr_max: config.psnr_max,
                ssim_mode: config.ssim_mode,
                smooth_l1_beta: config.smooth_l1_beta,
                precision: precision_from_env()?,
                vmaf: crate::metrics::VmafOptions {
                    model: self
                        .vmaf_model
                        .clone()
                        .unwrap_or_else(|| crate::metrics::vmaf::DEFAULT_MODEL.to_string()),
                    enable_transform: self.vmaf_enable_transform,
                    disable_clip: self.vmaf_disable_clip,
                    features: self.vmaf_features,
                    // as many as the metric workers: VMAF runs beside them
                    threads: self.threads.map_or_else(
                        || std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
                        |t| t.min(u64::from(u32::MAX)) as u32,
                    ),
                },
            },
            window: config.window,
            window_every: config.window_every,
            queue_depth: config.queue_depth,
            threads: self.threads.map(|t| t as usize),
            ref_offset: self.ref_offset,
            dist_offset: self.dist_offset,
            sync,
            sync_confidence: config.sync_confidence,
            align,
            align_given: self.align.is_some(),
            live: self.live,
            stall_timeout: Duration::from_secs_f64(config.stall_timeout),
            live_timeout,
            max_lag: Duration::from_secs_f64(self.max_lag),
            alerts: config.alerts,
            gates,
            frames: self.frames,
            start: self.start,
            every: self.every,
            inputs,
            dump_worst: self.dump_worst.clone().map(|d| (d, self.worst as usize)),
            worst_gap: self.worst_gap()?,
            ref_filter: self.ref_filter.clone(),
            dist_filter: self.dist_filter.clone(),
            scale: crate::input::format::ScaleAlgo::from_name(&self.scale_algo).ok_or_else(
                || {
                    Error::Usage(format!(
                        "--scale-algo: unknown algorithm '{}'; valid: bicubic, lanczos, bilinear, \
                     spline, neighbor",
                        self.scale_algo
                    ))
                },
            )?,
        })
    }
}

impl Cli {
    /// Refuses, before anything is touched, two outputs on one file (or
    /// both on standard output) and an output that is one of the inputs
    /// (symlinks followed).
    fn check_outputs(&self) -> Result<(), Error> {
        let outputs: Vec<(&str, &str)> = [
            ("--log", &self.log),
            ("--summary-json", &self.summary_json),
            ("--csv", &self.csv),
            ("--report", &self.report),
        ]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect();
        let ids: Vec<Option<Identity>> = outputs.iter().map(|(_, p)| identity(p)).collect();
        for i in 0..outputs.len() {
            for j in i + 1..outputs.len() {
                if ids[i].is_none() || ids[i] != ids[j] {
                    continue;
                }
                let ((a, pa), (b, pb)) = (outputs[i], outputs[j]);
                return Err(Error::Usage(if ids[i] == Some(Identity::Stdout) {
                    format!("{a} {pa} and {b} {pb} cannot both write to standard output")
                } else {
                    format!("{a} '{pa}' and {b} '{pb}' are the same file: give each output its own")
                }));
            }
        }
        for input in std::iter::once(&self.reference).chain(&self.distorted) {
            let Some(Identity::Inode(dev, ino)) = identity(input) else {
                continue;
            };
            for ((flag, p), id) in outputs.iter().zip(&ids) {
                if *id == Some(Identity::Inode(dev, ino)) {
                    return Err(Error::Usage(format!(
                        "{flag} '{p}' is the input '{input}': writing there would destroy it"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// `VQM_SSIM_PRECISION`: `single` (the default) or `double`, the float type
/// of the Gaussian SSIM kernels for data up to 10 bits.
fn precision_from_env() -> Result<Precision, Error> {
    match std::env::var("VQM_SSIM_PRECISION").as_deref() {
        Ok("double") => Ok(Precision::Double),
        Ok("single") | Err(_) => Ok(Precision::Fast),
        Ok(other) => Err(Error::Usage(format!(
            "VQM_SSIM_PRECISION={other}: choose single or double"
        ))),
    }
}

/// A whole number from `MIN` to `MAX`, with a message that says so (a
/// negative number is a value that is out of range, not an unknown flag).
impl Cli {
    /// `--worst-gap`, checked: seconds, 0 or more, at most an hour.
    pub fn worst_gap(&self) -> Result<f64, Error> {
        let g = self.worst_gap;
        if g.is_finite() && (0.0..=3600.0).contains(&g) {
            Ok(g)
        } else {
            Err(Error::Usage(format!(
                "--worst-gap {g}: give seconds from 0 to 3600"
            )))
        }
    }
}

fn whole<const MIN: u64, const MAX: u64>(s: &str) -> Result<u64, String> {
    let range = if MAX == u64::MAX {
        format!("a whole number, at least {MIN}")
    } else {
        format!("a whole number from {MIN} to {MAX}")
    };
    match s.trim().parse::<i128>() {
        Ok(n) if n >= i128::from(MIN) && n <= i128::from(MAX) => Ok(n as u64),
        _ => Err(format!("must be {range}")),
    }
}
