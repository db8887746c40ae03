//! Command-line arguments and their merge with the configuration.

mod options;
mod top;

pub use options::RunOptions;
pub use top::{BatchArgs, Command, Emit, MergeArgs, Vqm};

use crate::config::Config;
use crate::error::Error;
use crate::input::InputOptions;
use crate::metrics::ssim::Precision;
use crate::metrics::{self, MetricOptions, SsimMode};
use crate::monitor::alert;
use crate::monitor::gate;
use crate::output::file::{Identity, identity};
use crate::pipeline::pair::Align;
use crate::pipeline::sync::{MAX_RANGE_FRAMES, SyncRange};
use crate::pipeline::{Settings, WorstPictures};
use crate::stats::WindowSpec;
use std::time::Duration;

/// The measured inputs and every option of a run: `vqm REFERENCE
/// DISTORTED... [OPTIONS]`. Its options ([`RunOptions`]) are read through
/// `Deref`, so `cli.log` is `cli.options.log`.
#[derive(Debug, clap::Args)]
pub struct Cli {
    /// Reference video: a path, a URL FFmpeg opens, or - for standard input.
    #[arg(
        value_name = "REFERENCE",
        required = true,
        help_heading = "Inputs",
        display_order = 0
    )]
    pub reference: Option<String>,

    /// Distorted video(s), compared against one decode of the reference.
    #[arg(
        value_name = "DISTORTED",
        required = true,
        num_args = 1..,
        help_heading = "Inputs",
        display_order = 1
    )]
    pub distorted: Vec<String>,

    #[command(flatten)]
    pub options: RunOptions,
}

impl std::ops::Deref for Cli {
    type Target = RunOptions;
    fn deref(&self) -> &RunOptions {
        &self.options
    }
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
        if self.worst_chroma && self.dump_worst.is_none() && self.report.is_none() {
            return Err(Error::Usage(
                "--worst-chroma: it draws the --dump-worst and --report pictures; give one of them"
                    .to_string(),
            ));
        }
        let Some(reference) = &self.reference else {
            return Err(Error::Usage(
                "a REFERENCE and at least one DISTORTED input are needed".to_string(),
            ));
        };
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
            || crate::input::is_network(reference)
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
        let stdin_users = std::iter::once(reference)
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
            if let Some((w, h)) = v.split_once('x')
                && let (Ok(w), Ok(h)) = (w.trim().parse::<u64>(), h.trim().parse::<u64>())
                && crate::input::too_large(w, h)
            {
                return Err(Error::Usage(format!(
                    "--size {v}: over the limit: {}",
                    crate::input::SIZE_LIMIT
                )));
            }
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
            reference: reference.clone(),
            distorted: self.distorted.clone(),
            metrics: selected,
            options: MetricOptions {
                psnr_max: config.psnr_max,
                ssim_mode: config.ssim_mode,
                smooth_l1_beta: config.smooth_l1_beta,
                precision: precision_from_env()?,
                vmaf: crate::metrics::VmafOptions {
                    model: self.vmaf_model()?,
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
            worst_pictures: (self.dump_worst.is_some() || self.report.is_some())
                .then(|| WorstPictures {
                    dir: self.dump_worst.clone(),
                    n: self.worst as usize,
                    chroma: self.worst_chroma,
                })
                .filter(|w| w.n > 0),
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
    /// `--vmaf-model`: a built-in model's name, or a model file read and
    /// checked here, so that a file libvmaf would crash on is refused
    /// before any output is touched, and by `vqm batch --check`.
    fn vmaf_model(&self) -> Result<String, Error> {
        use crate::metrics::vmaf_model;
        let Some(model) = &self.vmaf_model else {
            return Ok(crate::metrics::vmaf::DEFAULT_MODEL.to_string());
        };
        if vmaf_model::is_path(model) {
            vmaf_model::read(model).map_err(|e| {
                Error::Usage(format!(
                    "--vmaf-model: cannot load the model file '{model}': {e}"
                ))
            })?;
        }
        Ok(model.clone())
    }

    /// Refuses, before anything is touched, two outputs on one file (or
    /// both on standard output) and an output that is one of the inputs
    /// (symlinks followed).
    fn check_outputs(&self) -> Result<(), Error> {
        let outputs: Vec<(&str, &str)> = [
            ("--log", &self.log),
            ("--summary-json", &self.summary_json),
            ("--csv", &self.csv),
            ("--summary-csv", &self.summary_csv),
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
        for input in self.reference.iter().chain(&self.distorted) {
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
        // set but empty means unset
        Ok("single" | "") | Err(_) => Ok(Precision::Fast),
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

pub(crate) fn whole<const MIN: u64, const MAX: u64>(s: &str) -> Result<u64, String> {
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
