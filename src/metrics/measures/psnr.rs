//! The `psnr` and `mse` metrics (FFmpeg's psnr filter): per plane, the
//! size-weighted average, and PSNR's whole-run pooling ([`RunPsnr`]).

use crate::metrics::context::{Better, Layout, Metric, PairContext, Passes};
use crate::metrics::psnr::{plane_mse, psnr_from_mse};

/// The whole run's PSNR, pooled by this metric: the PSNR of the mean MSE
/// of each plane over the pairs, and of the mean of their sample-weighted
/// average (the summary's `psnr_global`, as FFmpeg's psnr filter reports
/// at its end).
#[derive(Debug, Clone)]
pub struct RunPsnr {
    sums: Vec<f64>,
    frames: u64,
}

impl RunPsnr {
    /// Empty, for pictures of `layout`.
    pub fn new(layout: &Layout) -> Self {
        RunPsnr {
            sums: vec![0.0; layout.plane_names.len() + 1],
            frames: 0,
        }
    }

    /// Adds one pair's per-plane MSE (`shares`: each plane's part of the
    /// samples, [`Layout::plane_shares`]).
    pub fn push(&mut self, plane_mse: &[f64], shares: &[f64]) {
        let mut avg = 0.0;
        for (i, m) in plane_mse.iter().enumerate() {
            if let Some(s) = self.sums.get_mut(i) {
                *s += m;
            }
            avg += m * shares.get(i).copied().unwrap_or(0.0);
        }
        if let Some(last) = self.sums.last_mut() {
            *last += avg;
        }
        self.frames += 1;
    }

    /// `(plane name or "avg", PSNR in dB)`, or `None` when no pair gave
    /// its MSE.
    pub fn finish(&self, layout: &Layout, cap: f64) -> Option<Vec<(String, f64)>> {
        if self.frames == 0 {
            return None;
        }
        let peak = layout.peak();
        let names = layout.plane_names.iter().copied().chain(["avg"]);
        Some(
            names
                .zip(&self.sums)
                .map(|(n, s)| {
                    let mse = s / self.frames as f64;
                    (n.to_string(), psnr_from_mse(mse, peak, cap))
                })
                .collect(),
        )
    }
}

fn keys_with(prefix: &str, layout: &Layout) -> Vec<String> {
    layout
        .plane_names
        .iter()
        .map(|p| format!("{prefix}_{p}"))
        .chain(std::iter::once(format!("{prefix}_avg")))
        .collect()
}

/// `psnr_<plane>` and `psnr_avg` (PSNR of the size-weighted average MSE).
pub struct Psnr;

impl Metric for Psnr {
    fn passes(&self) -> Passes {
        Passes {
            sse: true,
            ..Passes::default()
        }
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        let mut k = keys_with("psnr", layout);
        if is_yuv(layout) {
            k.push("psnr_yuv611".to_string());
        }
        k
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        let dims: Vec<(usize, usize)> = pair
            .reference
            .planes
            .iter()
            .map(|p| (p.width, p.height))
            .collect();
        let (mse, avg) = plane_mse(pair.plane_sse(), &dims);
        let peak = pair.reference.peak();
        let cap = pair.options.psnr_cap(pair.reference.bit_depth);
        for (o, m) in out.iter_mut().zip(mse.iter().chain(std::iter::once(&avg))) {
            *o = psnr_from_mse(*m, peak, cap);
        }
        // psnr_yuv611 follows psnr_avg when the planes are y, u, v.
        if out.len() == 5 && mse.len() == 3 {
            out[4] = (6.0 * out[0] + out[1] + out[2]) / 8.0;
        }
    }
}

/// Whether the planes are Y, U, V (not RGB or gray).
fn is_yuv(layout: &Layout) -> bool {
    layout.plane_names == ["y", "u", "v"]
}

/// `mse_<plane>` and `mse_avg`, in squared code values.
pub struct Mse;

impl Metric for Mse {
    fn better(&self) -> Better {
        Better::Lower
    }
    fn passes(&self) -> Passes {
        Passes {
            sse: true,
            ..Passes::default()
        }
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        keys_with("mse", layout)
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        let dims: Vec<(usize, usize)> = pair
            .reference
            .planes
            .iter()
            .map(|p| (p.width, p.height))
            .collect();
        let (mse, avg) = plane_mse(pair.plane_sse(), &dims);
        for (o, m) in out.iter_mut().zip(mse.iter().chain(std::iter::once(&avg))) {
            *o = *m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use crate::metrics::context::MetricOptions;

    #[test]
    fn avg_weights_planes_by_size() {
        // 4x2 luma, two 2x1 chroma planes
        let r = Frame::from_u8(vec![
            (4, 2, vec![0; 8]),
            (2, 1, vec![0; 2]),
            (2, 1, vec![0; 2]),
        ]);
        let d = Frame::from_u8(vec![
            (4, 2, vec![2; 8]),
            (2, 1, vec![0; 2]),
            (2, 1, vec![4, 0]),
        ]);
        let opts = MetricOptions::default();
        let ctx = PairContext::new(&r, &d, &opts);
        let mut out = [0.0; 4];
        Mse.compute(&ctx, &mut out);
        assert_eq!(out, [4.0, 0.0, 8.0, (32.0 + 0.0 + 16.0) / 12.0]);
        let mut p = [0.0; 5];
        Psnr.compute(&ctx, &mut p);
        assert_eq!(p[1], 60.0);
        assert!((p[0] - 10.0 * (65025.0f64 / 4.0).log10()).abs() < 1e-12);
        assert!((p[4] - (6.0 * p[0] + p[1] + p[2]) / 8.0).abs() < 1e-12);
    }
}
