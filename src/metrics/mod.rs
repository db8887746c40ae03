//! Per-frame quality metrics: the [`Metric`] trait, the registry of metrics
//! by name, and [`MetricSet`], which computes the selected metrics of a pair
//! of frames into one row of values.
//!
//! Adding a metric is one file implementing [`Metric`] and one line in
//! [`REGISTRY`].

pub mod psnr;
pub mod ssim;

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::frame::{Frame, PlaneView, Samples};

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

/// Options shared by the metrics (from config and flags).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOptions {
    /// PSNR cap in dB; `None` means `6 * bit_depth + 12`.
    pub psnr_max: Option<f64>,
}

impl MetricOptions {
    /// The PSNR cap that applies at `bit_depth`.
    pub fn psnr_cap(&self, bit_depth: u32) -> f64 {
        self.psnr_max.unwrap_or(6.0 * bit_depth as f64 + 12.0)
    }
}

/// A per-frame full-reference metric.
pub trait Metric: Send + Sync {
    /// The name used in `--metrics`.
    fn name(&self) -> &'static str;
    /// The record keys this metric fills, in order, for pictures of `layout`.
    fn keys(&self, layout: &Layout) -> Vec<String>;
    /// Refuses a layout the metric cannot measure (a plane too small),
    /// with a message naming the metric, plane and size.
    fn check(&self, layout: &Layout) -> Result<(), String> {
        let _ = layout;
        Ok(())
    }
    /// Computes the metric for one pair into `out` (one value per key).
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]);
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
}

impl<'a> PairContext<'a> {
    /// Wraps a pair; both frames must have the same layout.
    pub fn new(reference: &'a Frame, distorted: &'a Frame, options: &'a MetricOptions) -> Self {
        PairContext {
            reference,
            distorted,
            options,
            sse: OnceLock::new(),
        }
    }

    /// Sum of squared differences of each plane, computed once per pair.
    pub fn plane_sse(&self) -> &[u64] {
        self.sse.get_or_init(|| {
            self.reference
                .planes
                .par_iter()
                .zip(self.distorted.planes.par_iter())
                .map(|(r, d)| match (&r.samples, &d.samples) {
                    (Samples::U8(a), Samples::U8(b)) => {
                        psnr::sse(view(a, r.width, r.height), view(b, d.width, d.height))
                    }
                    (Samples::U16(a), Samples::U16(b)) => {
                        psnr::sse(view(a, r.width, r.height), view(b, d.width, d.height))
                    }
                    _ => unreachable_layout(),
                })
                .collect()
        })
    }

    /// The per-plane SSE if some metric asked for it.
    pub fn plane_sse_if_computed(&self) -> Option<&[u64]> {
        self.sse.get().map(|v| v.as_slice())
    }
}

fn view<T>(data: &[T], width: usize, height: usize) -> PlaneView<'_, T> {
    match PlaneView::new(data, width, height) {
        Some(v) => v,
        None => unreachable_layout(),
    }
}

#[cold]
fn unreachable_layout() -> ! {
    // The pipeline converts every distorted frame to the reference layout
    // before pairing; reaching this is a bug, not an input condition.
    panic!("internal error: frames of a pair differ in layout")
}

/// A registry entry: a metric's name and how to build it.
pub struct Registration {
    /// Name in `--metrics`.
    pub name: &'static str,
    /// One-line description for help texts.
    pub about: &'static str,
    /// Constructor.
    pub build: fn(&MetricOptions) -> Box<dyn Metric>,
}

/// Every metric vqm knows, in the order of record keys.
pub const REGISTRY: &[Registration] = &[
    Registration {
        name: "psnr",
        about: "peak signal-to-noise ratio per plane and average (FFmpeg psnr)",
        build: |_| Box::new(psnr::Psnr),
    },
    Registration {
        name: "mse",
        about: "mean squared error per plane and average (FFmpeg psnr)",
        build: |_| Box::new(psnr::Mse),
    },
    Registration {
        name: "ssim",
        about: "SSIM, 11x11 Gaussian window (scikit-image)",
        build: |_| Box::new(ssim::SsimGaussian),
    },
];

/// The names of every registered metric, comma-separated.
pub fn valid_names() -> String {
    REGISTRY
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves a `--metrics` list (comma-separated names, or `all`) to registry
/// entries, in registry order, without duplicates.
pub fn resolve_names(list: &[String]) -> Result<Vec<&'static Registration>, String> {
    let mut picked = vec![false; REGISTRY.len()];
    for raw in list {
        for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                picked.iter_mut().for_each(|p| *p = true);
                continue;
            }
            match REGISTRY.iter().position(|r| r.name == name) {
                Some(i) => picked[i] = true,
                None => {
                    return Err(format!(
                        "unknown metric '{name}'; valid metrics: {}, all",
                        valid_names()
                    ));
                }
            }
        }
    }
    if !picked.iter().any(|p| *p) {
        return Err(format!(
            "no metric selected; valid metrics: {}, all",
            valid_names()
        ));
    }
    Ok(REGISTRY
        .iter()
        .zip(picked)
        .filter(|(_, p)| *p)
        .map(|(r, _)| r)
        .collect())
}

/// The selected metrics for one layout: computes a pair into a row whose
/// values line up with [`MetricSet::keys`].
pub struct MetricSet {
    metrics: Vec<Box<dyn Metric>>,
    ranges: Vec<std::ops::Range<usize>>,
    keys: Vec<String>,
    options: MetricOptions,
    names: Vec<&'static str>,
}

/// One measured pair: values in key order, and the per-plane MSE when a
/// metric computed it (for the pooled `psnr_global`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// One value per key of the set.
    pub values: Vec<f64>,
    /// Per-plane mean squared error, when PSNR or MSE was computed.
    pub plane_mse: Option<Vec<f64>>,
}

impl MetricSet {
    /// Builds the selected metrics for `layout`, or explains which metric
    /// cannot run on which plane.
    pub fn new(
        selected: &[&'static Registration],
        options: MetricOptions,
        layout: &Layout,
    ) -> Result<Self, String> {
        let mut metrics = Vec::new();
        let mut ranges = Vec::new();
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        let mut runnable = Vec::new();
        for reg in selected {
            let m = (reg.build)(&options);
            match m.check(layout) {
                Ok(()) => runnable.push(reg.name),
                Err(e) => problems.push(e),
            }
            let k = m.keys(layout);
            ranges.push(keys.len()..keys.len() + k.len());
            keys.extend(k);
            metrics.push(m);
        }
        if !problems.is_empty() {
            let can: Vec<&str> = REGISTRY
                .iter()
                .filter(|r| (r.build)(&options).check(layout).is_ok())
                .map(|r| r.name)
                .collect();
            return Err(format!(
                "{}; metrics that can run at this size: {}",
                problems.join("; "),
                if can.is_empty() {
                    "none".to_string()
                } else {
                    can.join(", ")
                }
            ));
        }
        Ok(MetricSet {
            names: selected.iter().map(|r| r.name).collect(),
            metrics,
            ranges,
            keys,
            options,
        })
    }

    /// Record keys of every value in a row.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Names of the selected metrics.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Computes every selected metric for one pair. Metrics run in parallel
    /// on the current rayon pool; each also splits its own work.
    pub fn compute(&self, reference: &Frame, distorted: &Frame) -> Row {
        let ctx = PairContext::new(reference, distorted, &self.options);
        let mut values = vec![0.0; self.keys.len()];
        let mut slots: Vec<&mut [f64]> = Vec::with_capacity(self.metrics.len());
        let mut rest: &mut [f64] = &mut values;
        for r in &self.ranges {
            let (head, tail) = rest.split_at_mut(r.len());
            slots.push(head);
            rest = tail;
        }
        self.metrics
            .par_iter()
            .zip(slots.into_par_iter())
            .for_each(|(m, out)| m.compute(&ctx, out));
        let plane_mse = ctx.plane_sse_if_computed().map(|sse| {
            sse.iter()
                .zip(&reference.planes)
                .map(|(s, p)| *s as f64 / p.len().max(1) as f64)
                .collect()
        });
        Row { values, plane_mse }
    }
}
