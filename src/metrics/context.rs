//! What every metric sees: the picture layout, the options, the [`Metric`]
//! trait (keys, direction, shared passes, compute) and the [`PairContext`]
//! of one pair, which computes each shared pass over the samples once.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::Error;
use crate::frame::Frame;
use crate::metrics::{histogram, psnr, ssim, ssim_ffmpeg};

/// What a metric needs to know about the pictures before the first frame:
/// plane names and sizes and the bit depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Plane key suffixes in order: `["y","u","v"]`, `["r","g","b"]` or `["y"]`.
    pub plane_names: Vec<&'static str>,
    /// `(width, height)` of each plane.
    pub plane_dims: Vec<(usize, usize)>,
    /// Bits per sample.
    pub bit_depth: u32,
}

impl Layout {
    /// `2^bit_depth - 1`.
    pub fn peak(&self) -> f64 {
        ((1u64 << self.bit_depth) - 1) as f64
    }

    /// Each plane's share of all samples (the weights of `*_avg`/`*_all`).
    pub fn plane_shares(&self) -> Vec<f64> {
        let total: usize = self.plane_dims.iter().map(|(w, h)| w * h).sum();
        self.plane_dims
            .iter()
            .map(|(w, h)| (w * h) as f64 / total.max(1) as f64)
            .collect()
    }
}

/// SSIM conventions (`--ssim-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SsimMode {
    /// 11x11 Gaussian window, sigma 1.5, valid region (scikit-image).
    #[default]
    Gaussian,
    /// FFmpeg's ssim filter: 8x8 block sums on a 4-pixel grid.
    Ffmpeg,
    /// The common PyTorch SSIM: Gaussian window, zero padding, full map.
    ZeroPad,
}

impl SsimMode {
    /// The name used on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            SsimMode::Gaussian => "gaussian",
            SsimMode::Ffmpeg => "ffmpeg",
            SsimMode::ZeroPad => "zero-pad",
        }
    }

    /// The mode of a name as [`SsimMode::name`] writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        [SsimMode::Gaussian, SsimMode::Ffmpeg, SsimMode::ZeroPad]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// Which way a metric's values are better: a lower value is worse for
/// PSNR and SSIM, a higher one for errors and divergences. Every sink and
/// `--worst` rank by what the metric declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Better {
    /// Higher values are better (PSNR, SSIM, entropy).
    #[default]
    Higher,
    /// Lower values are better (errors, divergences).
    Lower,
}

/// The shared passes over a pair's samples a metric reads from its
/// [`PairContext`]: the set computes each needed pass once, before the
/// metrics run, when more than one metric needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Passes {
    /// Per-plane sums of squared differences ([`PairContext::plane_sse`]).
    pub sse: bool,
    /// Full-scale Gaussian SSIM means ([`PairContext::gaussian_means`]).
    pub gaussian: bool,
    /// …with the contrast-structure means too (MS-SSIM).
    pub gaussian_cs: bool,
    /// FFmpeg-convention SSIM ([`PairContext::ffmpeg_ssim`]).
    pub ffmpeg_ssim: bool,
    /// 256-bin histograms ([`PairContext::histograms`]).
    pub histograms: bool,
}

/// Which SSIM pass also gives the planes' SSE (when a metric needs the
/// SSE and that pass runs anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseFrom {
    /// The FFmpeg-convention pass.
    Ffmpeg,
    /// The Gaussian pass (data up to 10 bits, single precision).
    Gaussian,
}

/// Options shared by the metrics (from config and flags).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOptions {
    /// PSNR cap in dB; `None` means `6 * bit_depth + 12`.
    pub psnr_max: Option<f64>,
    /// SSIM convention of the `ssim` metric.
    pub ssim_mode: SsimMode,
    /// β of the Smooth L1 loss.
    pub smooth_l1_beta: f64,
    /// Float type of the Gaussian SSIM kernels for data up to 10 bits.
    pub precision: ssim::Precision,
    /// The VMAF model and its options.
    pub vmaf: VmafOptions,
}

/// The VMAF model a run uses when none is named.
pub const DEFAULT_VMAF_MODEL: &str = "vmaf_v0.6.1";

/// The VMAF model and its options (`--vmaf-model`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct VmafOptions {
    /// A built-in model's name or a model file's path.
    pub model: String,
    /// Apply the model's score transform.
    pub enable_transform: bool,
    /// Do not clip the scores to the model's range.
    pub disable_clip: bool,
    /// Add the model's elementary features to the records.
    pub features: bool,
    /// libvmaf's own threads (0: it works in the calling thread).
    pub threads: u32,
}

impl Default for VmafOptions {
    fn default() -> Self {
        VmafOptions {
            model: DEFAULT_VMAF_MODEL.to_string(),
            enable_transform: false,
            disable_clip: false,
            features: false,
            threads: 0,
        }
    }
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            psnr_max: None,
            ssim_mode: SsimMode::Gaussian,
            smooth_l1_beta: 1.0,
            precision: ssim::Precision::Fast,
            vmaf: VmafOptions::default(),
        }
    }
}

impl MetricOptions {
    /// The PSNR cap that applies at `bit_depth`.
    pub fn psnr_cap(&self, bit_depth: u32) -> f64 {
        self.psnr_max.unwrap_or(6.0 * bit_depth as f64 + 12.0)
    }
}

/// A per-frame full-reference metric.
pub trait Metric: Send + Sync {
    /// The record keys this metric fills, in order, for pictures of `layout`.
    fn keys(&self, layout: &Layout) -> Vec<String>;
    /// Refuses a layout the metric cannot measure (a plane too small),
    /// with a message naming the metric, plane and size.
    fn check(&self, layout: &Layout) -> Result<(), String> {
        let _ = layout;
        Ok(())
    }
    /// Which way its values are better.
    fn better(&self) -> Better {
        Better::Higher
    }
    /// The shared passes it reads from the [`PairContext`].
    fn passes(&self) -> Passes {
        Passes::default()
    }
    /// Computes the metric for one pair into `out` (one value per key).
    /// Not called for a temporal metric (one whose [`Metric::temporal`]
    /// gives a state).
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]);
    /// For a metric that needs the pairs of an input in order (the
    /// previous or the next frame, a model with state): a fresh state for
    /// one distorted input of pictures of `layout`. The monitor hands it
    /// every pair of that input in order and fills the metric's keys of
    /// each frame record from what it returns; [`Metric::compute`] is not
    /// called. `None` (the default) for a per-pair metric. The state runs
    /// on the monitor's thread: it must not wait for the metric workers'
    /// pool.
    fn temporal(&self, layout: &Layout) -> Option<Result<Box<dyn TemporalState>, Error>> {
        let _ = layout;
        None
    }
}

/// Values of some pairs of one input, each as its pair index and one
/// value per key of the metric, oldest first.
pub type Ready = Vec<(u64, Vec<f64>)>;

/// The per-input state of a temporal metric ([`Metric::temporal`]).
pub trait TemporalState: Send {
    /// The next pair of the input (pairs come in order, with their pair
    /// indices); returns the values of every pair now known — none yet
    /// when the metric waits for the next frame, several at once when it
    /// catches up.
    fn push(&mut self, pair: u64, reference: &Frame, distorted: &Frame) -> Result<Ready, Error>;
    /// The input has no more pairs: the values of every pair not given yet.
    fn flush(&mut self) -> Result<Ready, Error>;
    /// The input's pairs break off (a live stream was lost): the values of
    /// every pair not given yet, as at the end, and a fresh start for the
    /// pairs after the break (what followed the lost frames is not their
    /// next frame).
    fn restart(&mut self) -> Result<Ready, Error>;
}

/// A pair of frames being measured, with intermediate results that several
/// metrics share (computed once, on first use).
pub struct PairContext<'a> {
    /// The reference picture.
    pub reference: &'a Frame,
    /// The distorted picture, already in the reference's layout.
    pub distorted: &'a Frame,
    /// Options in force.
    pub options: &'a MetricOptions,
    sse: OnceLock<Vec<u64>>,
    gaussian: OnceLock<Vec<Option<ssim::SsimMeans>>>,
    needs_cs: bool,
    ffmpeg_ssim: OnceLock<Vec<(f64, Option<u64>)>>,
    sse_from: Option<SseFrom>,
    histograms: OnceLock<Vec<histogram::PlaneHistograms>>,
}

/// Runs `$body` with `$a`, `$b` bound to typed views of two planes of the
/// same sample type; `None` if the types or sizes do not match.
#[macro_export]
macro_rules! with_views {
    ($r:expr, $d:expr, |$a:ident, $b:ident| $body:expr) => {{
        use $crate::frame::{PlaneView, Samples};
        let (r, d) = ($r, $d);
        match (&r.samples, &d.samples) {
            (Samples::U8(x), Samples::U8(y)) => match (
                PlaneView::new(x, r.width, r.height),
                PlaneView::new(y, d.width, d.height),
            ) {
                (Some($a), Some($b)) => Some($body),
                _ => None,
            },
            (Samples::U16(x), Samples::U16(y)) => match (
                PlaneView::new(x, r.width, r.height),
                PlaneView::new(y, d.width, d.height),
            ) {
                (Some($a), Some($b)) => Some($body),
                _ => None,
            },
            _ => None,
        }
    }};
}

impl<'a> PairContext<'a> {
    /// Wraps a pair; both frames must have the same layout.
    pub fn new(reference: &'a Frame, distorted: &'a Frame, options: &'a MetricOptions) -> Self {
        PairContext {
            reference,
            distorted,
            options,
            sse: OnceLock::new(),
            gaussian: OnceLock::new(),
            needs_cs: true,
            ffmpeg_ssim: OnceLock::new(),
            sse_from: None,
            histograms: OnceLock::new(),
        }
    }

    /// Whether the per-plane SSE comes from an SSIM pass over the samples
    /// (one that runs anyway) instead of a pass of its own. `None` (its
    /// own pass) by default.
    pub fn with_sse_from(mut self, from: Option<SseFrom>) -> Self {
        self.sse_from = from;
        self
    }

    /// FFmpeg-convention SSIM of each plane (NaN for a plane too small),
    /// with the plane's SSE when it is fused; computed once per pair.
    pub fn ffmpeg_ssim(&self) -> &[(f64, Option<u64>)] {
        self.ffmpeg_ssim.get_or_init(|| {
            let depth = self.reference.bit_depth;
            self.reference
                .planes
                .par_iter()
                .zip(self.distorted.planes.par_iter())
                .map(|(r, d)| {
                    if self.sse_from == Some(SseFrom::Ffmpeg) {
                        match ssim_ffmpeg::plane_sse(d, r, depth) {
                            Some((v, sse)) => (v, Some(sse)),
                            None => (f64::NAN, None),
                        }
                    } else {
                        (ssim_ffmpeg::plane(d, r, depth).unwrap_or(f64::NAN), None)
                    }
                })
                .collect()
        })
    }

    /// Whether [`PairContext::gaussian_means`] must also compute the cs
    /// means (MS-SSIM needs them; SSIM alone does not). On by default.
    pub fn with_cs(mut self, needs_cs: bool) -> Self {
        self.needs_cs = needs_cs;
        self
    }

    /// Gaussian SSIM and cs means of each plane at full scale, computed once
    /// per pair and shared by `ssim` (gaussian mode) and `ms-ssim`. `None`
    /// for a plane under one window.
    pub fn gaussian_means(&self) -> &[Option<ssim::SsimMeans>] {
        self.gaussian.get_or_init(|| {
            let peak = self.reference.peak();
            let want_sse = self.sse_from == Some(SseFrom::Gaussian);
            let precision = self.options.precision;
            self.reference
                .planes
                .par_iter()
                .zip(self.distorted.planes.par_iter())
                .map(|(r, d)| {
                    with_views!(r, d, |a, b| {
                        ssim::gaussian_in(a, b, peak, precision, self.needs_cs, want_sse)
                    })
                    .flatten()
                })
                .collect()
        })
    }

    /// 256-bin histograms of each plane of both pictures, built once per
    /// pair, only when a histogram metric asks.
    pub fn histograms(&self) -> &[histogram::PlaneHistograms] {
        self.histograms.get_or_init(|| {
            let depth = self.reference.bit_depth;
            self.reference
                .planes
                .par_iter()
                .zip(self.distorted.planes.par_iter())
                .map(|(r, d)| histogram::PlaneHistograms::of(r, d, depth))
                .collect()
        })
    }

    /// Sum of squared differences of each plane, computed once per pair.
    pub fn plane_sse(&self) -> &[u64] {
        self.sse.get_or_init(|| {
            if let Some(from) = self.sse_from {
                let fused: Vec<Option<u64>> = match from {
                    SseFrom::Ffmpeg => self.ffmpeg_ssim().iter().map(|(_, sse)| *sse).collect(),
                    SseFrom::Gaussian => self
                        .gaussian_means()
                        .iter()
                        .map(|m| m.and_then(|m| m.sse))
                        .collect(),
                };
                // every plane's, or none (a plane too small for a window, or
                // data over 10 bits, has its own pass)
                if !fused.is_empty() && fused.iter().all(|sse| sse.is_some()) {
                    return fused.into_iter().map(|sse| sse.unwrap_or(0)).collect();
                }
            }
            self.reference
                .planes
                .par_iter()
                .zip(self.distorted.planes.par_iter())
                // Layouts are checked equal in MetricSet::compute.
                .map(|(r, d)| with_views!(r, d, |a, b| psnr::sse(a, b)).unwrap_or(0))
                .collect()
        })
    }

    /// The per-plane SSE if some metric asked for it.
    pub fn plane_sse_if_computed(&self) -> Option<&[u64]> {
        self.sse.get().map(|v| v.as_slice())
    }
}

#[cfg(test)]
mod fused_tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                s as u8
            })
            .collect()
    }

    /// Three 4:2:0 planes of 150x40 noise.
    fn planes(seed: u32) -> Vec<(usize, usize, Vec<u8>)> {
        let (w, h) = (150, 40);
        vec![
            (w, h, noise(w * h, seed)),
            (w / 2, h / 2, noise(w * h / 4, seed + 1)),
            (w / 2, h / 2, noise(w * h / 4, seed + 2)),
        ]
    }

    #[test]
    fn gaussian_ssim_pass_gives_the_planes_sse() {
        let (w, h) = (150, 40);
        let (r, d) = (Frame::from_u8(planes(1)), Frame::from_u8(planes(9)));
        let options = MetricOptions::default();
        let separate = PairContext::new(&r, &d, &options).plane_sse().to_vec();
        let ctx = PairContext::new(&r, &d, &options).with_sse_from(Some(SseFrom::Gaussian));
        assert_eq!(ctx.plane_sse(), separate.as_slice());
        // the values came from the SSIM pass, not a pass of their own
        let from_ssim: Vec<Option<u64>> = ctx
            .gaussian_means()
            .iter()
            .map(|m| m.and_then(|m| m.sse))
            .collect();
        assert_eq!(
            from_ssim,
            separate.iter().map(|s| Some(*s)).collect::<Vec<_>>()
        );
        // a plane under one window: every plane gets its own pass
        let small = |seed| vec![(w, h, noise(w * h, seed)), (8, 8, noise(64, seed + 1))];
        let (r, d) = (Frame::from_u8(small(3)), Frame::from_u8(small(4)));
        let separate = PairContext::new(&r, &d, &options).plane_sse().to_vec();
        let ctx = PairContext::new(&r, &d, &options).with_sse_from(Some(SseFrom::Gaussian));
        assert_eq!(ctx.plane_sse(), separate.as_slice());
    }

    #[test]
    fn the_ffmpeg_ssim_pass_gives_the_planes_sse_only_when_asked() {
        let (r, d) = (Frame::from_u8(planes(5)), Frame::from_u8(planes(6)));
        let options = MetricOptions::default();
        let separate = PairContext::new(&r, &d, &options).plane_sse().to_vec();
        let ctx = PairContext::new(&r, &d, &options).with_sse_from(Some(SseFrom::Ffmpeg));
        let fused: Vec<Option<u64>> = ctx.ffmpeg_ssim().iter().map(|(_, s)| *s).collect();
        assert_eq!(fused, separate.iter().map(|s| Some(*s)).collect::<Vec<_>>());
        assert_eq!(ctx.plane_sse(), separate.as_slice());
        // not asked: the SSIM pass leaves the SSE to a pass of its own
        let plain = PairContext::new(&r, &d, &options);
        assert!(plain.ffmpeg_ssim().iter().all(|(_, s)| s.is_none()));
        let same: Vec<f64> = plain.ffmpeg_ssim().iter().map(|(v, _)| *v).collect();
        let fused_values: Vec<f64> = ctx.ffmpeg_ssim().iter().map(|(v, _)| *v).collect();
        assert_eq!(same, fused_values);
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn peak_is_two_to_the_depth_minus_one() {
        for (depth, peak) in [(8, 255.0), (10, 1023.0), (12, 4095.0), (16, 65535.0)] {
            let l = Layout {
                plane_names: vec!["y"],
                plane_dims: vec![(4, 4)],
                bit_depth: depth,
            };
            assert_eq!(l.peak(), peak);
        }
    }

    #[test]
    fn each_ssim_mode_has_its_documented_name_and_is_found_by_it() {
        for (mode, name) in [
            (SsimMode::Gaussian, "gaussian"),
            (SsimMode::Ffmpeg, "ffmpeg"),
            (SsimMode::ZeroPad, "zero-pad"),
        ] {
            assert_eq!(mode.name(), name);
            assert_eq!(SsimMode::from_name(name), Some(mode));
        }
        for other in ["", "Gaussian", "zero_pad", "ssim"] {
            assert_eq!(SsimMode::from_name(other), None, "{other:?}");
        }
    }

    #[test]
    fn plane_shares_are_each_planes_part_of_all_samples() {
        // 4:2:0 of 6x4: 24 + 6 + 6 samples
        let l = Layout {
            plane_names: vec!["y", "u", "v"],
            plane_dims: vec![(6, 4), (3, 2), (3, 2)],
            bit_depth: 8,
        };
        assert_eq!(l.plane_shares(), vec![24.0 / 36.0, 6.0 / 36.0, 6.0 / 36.0]);
        let gray = Layout {
            plane_names: vec!["y"],
            plane_dims: vec![(5, 3)],
            bit_depth: 8,
        };
        assert_eq!(gray.plane_shares(), vec![1.0]);
    }
}
