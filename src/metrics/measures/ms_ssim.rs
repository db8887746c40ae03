//! The `ms-ssim` metric: MS-SSIM per plane, scale 1 from the shared
//! Gaussian pass.

use rayon::prelude::*;

use crate::frame::Plane;
use crate::metrics::context::{Layout, Metric, PairContext, Passes};
use crate::metrics::ms_ssim::{MIN_SIDE, ms_ssim_from_scale1};
use crate::metrics::ssim::{Precision, SsimMeans};
use crate::with_views;

fn plane_ms_ssim(
    r: &Plane,
    d: &Plane,
    peak: f64,
    scale1: Option<SsimMeans>,
    prec: Precision,
) -> Option<f64> {
    let s1 = scale1?;
    with_views!(r, d, |a, b| ms_ssim_from_scale1(a, b, peak, s1, prec)).flatten()
}

/// `ms_ssim_<plane>`.
pub struct MsSsim {
    /// Float type of the Gaussian kernels (scales 2–5; scale 1 comes from
    /// the shared pass).
    pub precision: Precision,
}

impl Metric for MsSsim {
    fn keys(&self, layout: &Layout) -> Vec<String> {
        layout
            .plane_names
            .iter()
            .map(|p| format!("ms_ssim_{p}"))
            .collect()
    }
    fn check(&self, layout: &Layout) -> Result<(), String> {
        for (name, (w, h)) in layout.plane_names.iter().zip(&layout.plane_dims) {
            if *w < MIN_SIDE || *h < MIN_SIDE {
                return Err(format!(
                    "metric ms-ssim: plane {name} is {w}x{h}, under the {MIN_SIDE} px per side its 5 scales need"
                ));
            }
        }
        Ok(())
    }
    fn passes(&self) -> Passes {
        Passes {
            gaussian_cs: true,
            ..Passes::default()
        }
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        let peak = pair.reference.peak();
        let scale1 = pair.gaussian_means();
        let vals: Vec<f64> = pair
            .reference
            .planes
            .par_iter()
            .zip(pair.distorted.planes.par_iter())
            .zip(scale1.par_iter())
            .map(|((r, d), s1)| plane_ms_ssim(r, d, peak, *s1, self.precision).unwrap_or(f64::NAN))
            .collect();
        for (o, v) in out.iter_mut().zip(vals) {
            *o = v;
        }
    }
}
