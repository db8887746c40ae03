//! The options of a run, shared by `vqm REFERENCE DISTORTED...` and
//! `vqm batch`.

use super::{AlignArg, SsimModeArg, SummaryFormat, whole};

/// Every option of a run (metrics, inputs, alignment, outputs, alerts,
/// live), flattened into the commands that measure.
#[derive(Debug, Clone, clap::Args)]
pub struct RunOptions {
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

    /// Write the pooled summary as CSV, one row per distorted input (path,
    /// resolution, codec, bitrate, frames, each key's mean, harmonic mean
    /// and 5th percentile, the ladder mark) to PATH, or - for stdout.
    #[arg(long, value_name = "PATH|-", help_heading = "Outputs")]
    pub summary_csv: Option<String>,

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

    /// The worst-frame pictures (--dump-worst, --report) show the chroma
    /// planes too, a row each under the luma row.
    #[arg(long, help_heading = "Outputs")]
    pub worst_chroma: bool,

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
