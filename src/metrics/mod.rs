//! Per-frame quality metrics: the registry of metrics by name, and
//! [`MetricSet`], which computes the selected metrics of a pair of frames
//! into one row of values.
//!
//! The kernels (`psnr`, `ssim`, `ssim_f32`, `ssim_ffmpeg`, `ms_ssim`,
//! `losses`, `histogram`) work on plain planes; [`context`] holds the
//! [`Metric`] trait and the per-pair context; [`measures`] holds the
//! metrics themselves. Adding a metric is one file in `measures/`
//! implementing [`Metric`] and one line in [`REGISTRY`]; a metric that
//! needs the pairs in order (the previous or next frame) also returns a
//! [`TemporalState`] from [`Metric::temporal`], which the monitor feeds
//! in pair order.

pub mod context;
pub mod histogram;
pub mod losses;
pub mod measures;
pub mod ms_ssim;
pub mod psnr;
pub mod ssim;
pub mod ssim_f32;
pub mod ssim_ffmpeg;
pub mod vmaf;
pub mod vmaf_model;

use rayon::prelude::*;

use crate::error::Error;
use crate::frame::Frame;
pub use context::{
    Better, Layout, Metric, MetricOptions, PairContext, Passes, Ready, SseFrom, SsimMode,
    TemporalState, VmafOptions,
};
use measures::{histogram as hist, losses as loss, ms_ssim as ms, psnr as ps, ssim as ss};

/// A registry entry: a metric's name and how to build it.
pub struct Registration {
    /// Name in `--metrics`.
    pub name: &'static str,
    /// One-line description for help texts.
    pub about: &'static str,
    /// Constructor.
    pub build: fn(&MetricOptions) -> Box<dyn Metric>,
}

/// The registry entry of libvmaf's extractor `EXTRACTORS[$i]`.
macro_rules! libvmaf_extractor {
    ($i:expr) => {
        Registration {
            name: vmaf::EXTRACTORS[$i].metric,
            about: vmaf::EXTRACTORS[$i].about,
            build: |o| {
                Box::new(measures::vmaf::ExtractorMetric {
                    extractor: &vmaf::EXTRACTORS[$i],
                    threads: o.vmaf.threads,
                })
            },
        }
    };
}

/// Every metric vqm knows, in the order of record keys.
pub const REGISTRY: &[Registration] = &[
    Registration {
        name: "psnr",
        about: "peak signal-to-noise ratio per plane and average (FFmpeg psnr)",
        build: |_| Box::new(ps::Psnr),
    },
    Registration {
        name: "mse",
        about: "mean squared error per plane and average (FFmpeg psnr)",
        build: |_| Box::new(ps::Mse),
    },
    Registration {
        name: "ssim",
        about: "SSIM per plane and weighted average, convention set by --ssim-mode",
        build: |o| {
            Box::new(ss::Ssim {
                mode: o.ssim_mode,
                precision: o.precision,
            })
        },
    },
    Registration {
        name: "ms-ssim",
        about: "multi-scale SSIM, 5 scales (Wang, Simoncelli, Bovik 2003)",
        build: |o| {
            Box::new(ms::MsSsim {
                precision: o.precision,
            })
        },
    },
    Registration {
        name: "mae",
        about: "mean absolute error (L1) per plane, code values",
        build: |_| Box::new(loss::Mae),
    },
    Registration {
        name: "smooth-l1",
        about: "Smooth L1 loss on values divided by peak (torch smooth_l1_loss)",
        build: |o| {
            Box::new(loss::SmoothL1 {
                beta: o.smooth_l1_beta,
            })
        },
    },
    Registration {
        name: "bce",
        about: "binary cross-entropy on values divided by peak (torch BCELoss)",
        build: |_| Box::new(loss::Bce::default()),
    },
    Registration {
        name: "entropy",
        about: "Shannon entropy of each plane's 256-bin histogram, nats",
        build: |_| Box::new(hist::Entropy),
    },
    Registration {
        name: "kl",
        about: "KL divergence of the reference histogram from the distorted one, nats",
        build: |_| Box::new(hist::Kl),
    },
    Registration {
        name: "xent",
        about: "cross-entropy of the distorted histogram under the reference, nats",
        build: |_| Box::new(hist::Xent),
    },
    Registration {
        name: "vmaf",
        about: "VMAF (libvmaf; model set by --vmaf-model); not part of `all`",
        build: |o| Box::new(measures::vmaf::VmafMetric::new(o.vmaf.clone())),
    },
    libvmaf_extractor!(0),
    libvmaf_extractor!(1),
    libvmaf_extractor!(2),
    libvmaf_extractor!(3),
    libvmaf_extractor!(4),
];

/// Whether metric `name` runs in libvmaf (VMAF and its extractors): far
/// slower than vqm's own, they are asked for by name, not by `all`.
pub fn is_libvmaf(name: &str) -> bool {
    name == "vmaf" || vmaf::extractor(name).is_some()
}

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
                // vqm's own family: libvmaf's, far slower, by name
                for (p, r) in picked.iter_mut().zip(REGISTRY) {
                    *p |= !is_libvmaf(r.name);
                }
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
    better: Vec<Better>,
    options: MetricOptions,
    names: Vec<&'static str>,
    /// How many of the metrics read each shared pass.
    users: PassUsers,
    /// Which metrics are temporal ([`Metric::temporal`]): the monitor
    /// fills their keys, in pair order.
    temporal: Vec<bool>,
    layout: Layout,
}

/// A temporal metric's state for one input, with the range of its keys
/// in a row.
pub struct TemporalSlot {
    /// Where its values go in a row.
    pub keys: std::ops::Range<usize>,
    /// Its state.
    pub state: Box<dyn TemporalState>,
}

/// How many selected metrics read each shared pass.
#[derive(Debug, Clone, Copy, Default)]
struct PassUsers {
    sse: usize,
    gaussian: usize,
    gaussian_cs: usize,
    ffmpeg_ssim: usize,
    histograms: usize,
}

impl PassUsers {
    fn of(metrics: &[Box<dyn Metric>]) -> Self {
        let mut u = PassUsers::default();
        for p in metrics.iter().map(|m| m.passes()) {
            u.sse += p.sse as usize;
            u.gaussian += (p.gaussian || p.gaussian_cs) as usize;
            u.gaussian_cs += p.gaussian_cs as usize;
            u.ffmpeg_ssim += p.ffmpeg_ssim as usize;
            u.histograms += p.histograms as usize;
        }
        u
    }

    /// The SSIM pass that also gives the SSE, when one runs and a metric
    /// needs the SSE.
    fn sse_from(&self) -> Option<SseFrom> {
        if self.sse == 0 {
            None
        } else if self.ffmpeg_ssim > 0 {
            Some(SseFrom::Ffmpeg)
        } else if self.gaussian > 0 {
            Some(SseFrom::Gaussian)
        } else {
            None
        }
    }
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
    /// cannot run on which plane (a usage error).
    pub fn new(
        selected: &[&'static Registration],
        options: MetricOptions,
        layout: &Layout,
    ) -> Result<Self, Error> {
        let mut metrics = Vec::new();
        let mut ranges = Vec::new();
        let mut keys = Vec::new();
        let mut better = Vec::new();
        let mut problems = Vec::new();
        let mut runnable = Vec::new();
        // a VMAF model that cannot be loaded is no matter of the pictures'
        // size: its reason alone, without the list of metrics below
        if selected.iter().any(|r| r.name == "vmaf") {
            vmaf::is_bootstrap(&options.vmaf).map_err(Error::Usage)?;
        }
        for reg in selected {
            let m = (reg.build)(&options);
            match m.check(layout) {
                Ok(()) => runnable.push(reg.name),
                Err(e) => problems.push(e),
            }
            let k = m.keys(layout);
            ranges.push(keys.len()..keys.len() + k.len());
            better.extend(k.iter().map(|_| m.better()));
            keys.extend(k);
            metrics.push(m);
        }
        if !problems.is_empty() {
            let can: Vec<&str> = REGISTRY
                .iter()
                .filter(|r| (r.build)(&options).check(layout).is_ok())
                .map(|r| r.name)
                .collect();
            return Err(Error::Usage(format!(
                "{}; metrics that can run at this size: {}",
                problems.join("; "),
                if can.is_empty() {
                    "none".to_string()
                } else {
                    can.join(", ")
                }
            )));
        }
        let temporal = metrics
            .iter()
            .map(|m| m.temporal(layout).is_some())
            .collect();
        Ok(MetricSet {
            names: selected.iter().map(|r| r.name).collect(),
            users: PassUsers::of(&metrics),
            temporal,
            layout: layout.clone(),
            metrics,
            ranges,
            keys,
            better,
            options,
        })
    }

    /// Record keys of every value in a row.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Which way each key is better, in key order.
    pub fn better(&self) -> &[Better] {
        &self.better
    }

    /// Names of the selected metrics.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Whether a selected metric is temporal: the monitor then needs each
    /// pair's frames, in order.
    pub fn has_temporal(&self) -> bool {
        self.temporal.iter().any(|t| *t)
    }

    /// Fresh states of the temporal metrics for one distorted input, with
    /// where each one's values go in a row.
    pub fn temporal_states(&self) -> Result<Vec<TemporalSlot>, Error> {
        let mut slots = Vec::new();
        for ((m, r), t) in self.metrics.iter().zip(&self.ranges).zip(&self.temporal) {
            if !*t {
                continue;
            }
            if let Some(state) = m.temporal(&self.layout) {
                slots.push(TemporalSlot {
                    keys: r.clone(),
                    state: state?,
                });
            }
        }
        Ok(slots)
    }

    /// Computes every selected metric for one pair. Metrics run in parallel
    /// on the current rayon pool; each also splits its own work. The two
    /// frames must have the same layout (planes, sizes, bit depth).
    pub fn compute(&self, reference: &Frame, distorted: &Frame) -> Result<Row, Error> {
        if !same_layout(reference, distorted) {
            return Err(Error::Internal(
                "the frames of a pair differ in planes, size or bit depth".to_string(),
            ));
        }
        let u = &self.users;
        let sse_from = u.sse_from();
        let ctx = PairContext::new(reference, distorted, &self.options)
            .with_cs(u.gaussian_cs > 0)
            .with_sse_from(sse_from);
        // Passes that several selected metrics share run first, each on
        // every thread: run from inside the metrics, the one that waits for
        // another's pass (behind a `OnceLock`) would hold its thread idle.
        if sse_from.is_some() || u.sse > 1 {
            ctx.plane_sse();
        }
        if u.gaussian > 1 {
            ctx.gaussian_means();
        }
        if u.histograms > 1 {
            ctx.histograms();
        }
        let mut values = vec![0.0; self.keys.len()];
        // a temporal metric's keys wait for the monitor (NaN until then)
        for (r, _) in self.ranges.iter().zip(&self.temporal).filter(|(_, t)| **t) {
            values[r.clone()].fill(f64::NAN);
        }
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
            .zip(self.temporal.par_iter())
            .filter(|(_, temporal)| !**temporal)
            .for_each(|((m, out), _)| m.compute(&ctx, out));
        let plane_mse = ctx.plane_sse_if_computed().map(|sse| {
            sse.iter()
                .zip(&reference.planes)
                .map(|(s, p)| *s as f64 / p.len().max(1) as f64)
                .collect()
        });
        Ok(Row { values, plane_mse })
    }
}

/// Whether two frames have the same planes, sizes, sample type and depth.
pub fn same_layout(a: &Frame, b: &Frame) -> bool {
    use crate::frame::Samples;
    a.bit_depth == b.bit_depth
        && a.planes.len() == b.planes.len()
        && a.planes.iter().zip(&b.planes).all(|(x, y)| {
            (x.width, x.height) == (y.width, y.height)
                && matches!(
                    (&x.samples, &y.samples),
                    (Samples::U8(p), Samples::U8(q)) if p.len() == q.len() && p.len() >= x.len()
                ) | matches!(
                    (&x.samples, &y.samples),
                    (Samples::U16(p), Samples::U16(q)) if p.len() == q.len() && p.len() >= x.len()
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Result<Vec<&'static str>, String> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        resolve_names(&list).map(|r| r.iter().map(|r| r.name).collect())
    }

    #[test]
    fn names_resolve_in_registry_order_once_and_all_leaves_libvmaf_out() {
        assert_eq!(names(&["ssim, psnr", "psnr"]), Ok(vec!["psnr", "ssim"]));
        let all = names(&["all"]).unwrap();
        let own: Vec<&str> = REGISTRY
            .iter()
            .map(|r| r.name)
            .filter(|n| !is_libvmaf(n))
            .collect();
        assert_eq!(all, own);
        assert!(all.contains(&"ms-ssim") && !all.contains(&"vmaf"));
        assert_eq!(names(&["all,vmaf"]).unwrap().len(), own.len() + 1);
        // an unknown name, or none at all: the message lists every name
        let listed = "psnr, mse, ssim, ms-ssim, mae, smooth-l1, bce, entropy, kl, xent, vmaf";
        let err = names(&["psnr,nope"]).unwrap_err();
        assert!(
            err.starts_with("unknown metric 'nope'; valid metrics: "),
            "{err}"
        );
        assert!(err.contains(listed) && err.ends_with(", all"), "{err}");
        let err = names(&[" , "]).unwrap_err();
        assert!(
            err.starts_with("no metric selected") && err.contains(listed),
            "{err}"
        );
    }

    #[test]
    fn a_row_carries_each_planes_mse_when_a_metric_computed_the_sse() {
        // 4:2:0, 32x24: squared differences 9 (Y), 1 (U) and 0 (V)
        let frame = |y: u8, u: u8| {
            Frame::from_u8(vec![
                (32, 24, vec![y; 32 * 24]),
                (16, 12, vec![u; 16 * 12]),
                (16, 12, vec![10; 16 * 12]),
            ])
        };
        let (r, d) = (frame(10, 10), frame(13, 11));
        let layout = Layout {
            plane_names: vec!["y", "u", "v"],
            plane_dims: vec![(32, 24), (16, 12), (16, 12)],
            bit_depth: 8,
        };
        for (list, ssim_mode, want) in [
            ("psnr", SsimMode::Gaussian, Some(vec![9.0, 1.0, 0.0])),
            ("mse,ssim", SsimMode::Gaussian, Some(vec![9.0, 1.0, 0.0])),
            ("mse,ssim", SsimMode::Ffmpeg, Some(vec![9.0, 1.0, 0.0])),
            ("mae,ssim", SsimMode::Gaussian, None),
        ] {
            let options = MetricOptions {
                ssim_mode,
                ..MetricOptions::default()
            };
            let picked = resolve_names(&[list.to_string()]).unwrap();
            let set = MetricSet::new(&picked, options, &layout).unwrap();
            let row = set.compute(&r, &d).unwrap();
            assert_eq!(row.plane_mse, want, "{list} {ssim_mode:?}");
        }
    }
}
