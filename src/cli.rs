//! Command-line arguments and their merge with the configuration.

use clap::Parser;

use crate::config::Config;
use crate::error::Error;
use crate::metrics::{self, MetricOptions, SsimMode};
use crate::pipeline::Settings;

/// Full-reference video quality monitor: per-frame PSNR, MSE and SSIM of
/// one or more distorted videos against a reference.
#[derive(Debug, Parser)]
#[command(
    name = "vqm",
    version,
    about,
    after_help = "Examples:\n  vqm ref.mp4 dist.mp4\n  vqm ref.mp4 dist.mp4 --metrics psnr,mse,ssim --log frames.ndjson --summary-json summary.json\n  ffmpeg -i dist.mkv -f nut - | vqm ref.mp4 - --log -"
)]
pub struct Cli {
    /// Reference video: a path, a URL FFmpeg opens, or - for standard input.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Distorted video(s), compared against one decode of the reference.
    #[arg(value_name = "DISTORTED", required = true, num_args = 1..)]
    pub distorted: Vec<String>,

    /// Metrics, comma-separated, or "all" [default from config: psnr,ssim].
    #[arg(short = 'm', long, value_name = "LIST")]
    pub metrics: Option<String>,

    /// SSIM convention [default from config: gaussian].
    #[arg(long, value_enum, value_name = "MODE")]
    pub ssim_mode: Option<SsimMode>,

    /// Smooth L1 threshold on the 0-1 scale [default from config: 1.0].
    #[arg(long, value_name = "B")]
    pub smooth_l1_beta: Option<f64>,

    /// Write NDJSON records (header, frames, windows, events, summary) to PATH, or - for stdout.
    #[arg(long, value_name = "PATH|-")]
    pub log: Option<String>,

    /// Write the pooled summary (one JSON object per distorted input) to PATH, or - for stdout.
    #[arg(long, value_name = "PATH|-")]
    pub summary_json: Option<String>,

    /// Rolling-statistics window in frames [default from config: 30].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub window: Option<u64>,

    /// Configuration file (TOML) applied over the built-in default.
    #[arg(long, value_name = "PATH")]
    pub config: Option<String>,

    /// Metric worker threads [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,

    /// PSNR cap in dB [default: 6 x bitdepth + 12, 60 dB at 8 bit].
    #[arg(long, value_name = "DB")]
    pub psnr_max: Option<f64>,

    /// No summary table, warnings or progress on stderr (errors still are).
    #[arg(short, long)]
    pub quiet: bool,
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
        if let Some(w) = self.window {
            config.window = w as usize;
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
            config.ssim_mode = m;
        }
        if let Some(b) = self.smooth_l1_beta {
            if !(b.is_finite() && (0.0..=1000.0).contains(&b)) {
                return Err(Error::Usage(format!(
                    "--smooth-l1-beta: must be between 0 and 1000, not {b}"
                )));
            }
            config.smooth_l1_beta = b;
        }
        let stdout_users = [self.log.as_deref(), self.summary_json.as_deref()]
            .iter()
            .filter(|p| **p == Some("-"))
            .count();
        if stdout_users > 1 {
            return Err(Error::Usage(
                "--log - and --summary-json - cannot both write to standard output".to_string(),
            ));
        }
        let stdin_users = std::iter::once(&self.reference)
            .chain(&self.distorted)
            .filter(|p| p.as_str() == "-")
            .count();
        if stdin_users > 1 {
            return Err(Error::Usage(
                "only one input can read standard input (-)".to_string(),
            ));
        }
        Ok(Settings {
            reference: self.reference.clone(),
            distorted: self.distorted.clone(),
            metrics: selected,
            options: MetricOptions {
                psnr_max: config.psnr_max,
                ssim_mode: config.ssim_mode,
                smooth_l1_beta: config.smooth_l1_beta,
            },
            window: config.window,
            window_every: config.window_every,
            queue_depth: config.queue_depth,
            threads: self.threads.map(|t| t as usize),
        })
    }
}
