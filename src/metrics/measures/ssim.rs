//! The `ssim` metric: SSIM per plane and the sample-weighted average, in
//! the convention `--ssim-mode` picks.

use rayon::prelude::*;

use crate::metrics::context::{Layout, Metric, PairContext, Passes, SsimMode};
use crate::metrics::ssim::{Precision, WINDOW, ssim_zero_pad};
use crate::metrics::ssim_ffmpeg;
use crate::with_views;

/// `ssim_<plane>` and `ssim_all` (planes weighted by sample count), in the
/// convention `mode` names.
pub struct Ssim {
    /// The SSIM convention.
    pub mode: SsimMode,
    /// Float type of the Gaussian kernels (gaussian and zero-pad modes).
    pub precision: Precision,
}

impl Metric for Ssim {
    fn keys(&self, layout: &Layout) -> Vec<String> {
        layout
            .plane_names
            .iter()
            .map(|p| format!("ssim_{p}"))
            .chain(std::iter::once("ssim_all".to_string()))
            .collect()
    }
    fn check(&self, layout: &Layout) -> Result<(), String> {
        let (min, what) = match self.mode {
            SsimMode::Gaussian => (WINDOW, "the 11x11 Gaussian window"),
            SsimMode::Ffmpeg => (ssim_ffmpeg::MIN_SIDE, "FFmpeg's 8x8 block window"),
            SsimMode::ZeroPad => (1, "one sample"),
        };
        for (name, (w, h)) in layout.plane_names.iter().zip(&layout.plane_dims) {
            if *w < min || *h < min {
                return Err(format!(
                    "metric ssim ({} mode): plane {name} is {w}x{h}, smaller than {what}",
                    self.mode.name()
                ));
            }
        }
        Ok(())
    }
    fn passes(&self) -> Passes {
        Passes {
            gaussian: self.mode == SsimMode::Gaussian,
            ffmpeg_ssim: self.mode == SsimMode::Ffmpeg,
            ..Passes::default()
        }
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        let peak = pair.reference.peak();
        let planes: Vec<f64> = match self.mode {
            SsimMode::Gaussian => pair
                .gaussian_means()
                .iter()
                .map(|m| m.map(|m| m.ssim).unwrap_or(f64::NAN))
                .collect(),
            SsimMode::ZeroPad => pair
                .reference
                .planes
                .par_iter()
                .zip(pair.distorted.planes.par_iter())
                .map(|(r, d)| {
                    with_views!(r, d, |a, b| ssim_zero_pad(a, b, peak, self.precision))
                        .flatten()
                        .unwrap_or(f64::NAN)
                })
                .collect(),
            SsimMode::Ffmpeg => pair.ffmpeg_ssim().iter().map(|(v, _)| *v).collect(),
        };
        let total: usize = pair.reference.planes.iter().map(|p| p.len()).sum();
        let mut weighted = 0.0;
        for ((o, v), p) in out.iter_mut().zip(&planes).zip(&pair.reference.planes) {
            *o = *v;
            weighted += v * p.len() as f64;
        }
        if let Some(last) = out.get_mut(planes.len()) {
            *last = weighted / total.max(1) as f64;
        }
    }
}
