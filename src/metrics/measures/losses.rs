//! The loss metrics: `mae` (L1), `smooth-l1` and `bce` per plane.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::metrics::context::{Better, Layout, Metric, PairContext};
use crate::metrics::losses::{BceTables, mae, smooth_l1};
use crate::with_views;

fn plane_keys(prefix: &str, layout: &Layout) -> Vec<String> {
    layout
        .plane_names
        .iter()
        .map(|p| format!("{prefix}_{p}"))
        .collect()
}

fn per_plane(
    pair: &PairContext<'_>,
    out: &mut [f64],
    f: impl Fn(&crate::frame::Plane, &crate::frame::Plane) -> Option<f64> + Sync,
) {
    let vals: Vec<f64> = pair
        .reference
        .planes
        .par_iter()
        .zip(pair.distorted.planes.par_iter())
        .map(|(r, d)| f(r, d).unwrap_or(f64::NAN))
        .collect();
    for (o, v) in out.iter_mut().zip(vals) {
        *o = v;
    }
}

/// `mae_<plane>`.
pub struct Mae;

impl Metric for Mae {
    fn better(&self) -> Better {
        Better::Lower
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        plane_keys("mae", layout)
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        per_plane(pair, out, |r, d| with_views!(r, d, |a, b| mae(a, b)));
    }
}

/// `smooth_l1_<plane>`.
pub struct SmoothL1 {
    /// Threshold between the quadratic and linear parts, on the 0–1 scale.
    pub beta: f64,
}

impl Metric for SmoothL1 {
    fn better(&self) -> Better {
        Better::Lower
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        plane_keys("smooth_l1", layout)
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        let peak = pair.reference.peak();
        let beta = self.beta;
        per_plane(pair, out, |r, d| {
            with_views!(r, d, |a, b| smooth_l1(a, b, peak, beta))
        });
    }
}

/// `bce_<plane>`.
#[derive(Default)]
pub struct Bce {
    tables: OnceLock<BceTables>,
}

impl Metric for Bce {
    fn better(&self) -> Better {
        Better::Lower
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        plane_keys("bce", layout)
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        // A metric set serves one layout, so one bit depth.
        let t = self
            .tables
            .get_or_init(|| BceTables::new(pair.reference.bit_depth));
        per_plane(pair, out, |r, d| with_views!(r, d, |a, b| t.bce(a, b)));
    }
}
