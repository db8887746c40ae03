//! SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) with an 11×11 Gaussian window
//! (σ = 1.5, weights normalised to sum 1), population moments, and the mean
//! of the SSIM map over the valid region: only windows wholly inside the
//! plane. This is scikit-image's `structural_similarity(gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, data_range=peak)`.
//!
//! The filter is separable: each band of output rows keeps a ring of 11
//! horizontally filtered rows of the five moments (x, y, x², y², xy), and
//! each output row is one vertical pass over the ring. Bands run in
//! parallel. Arithmetic is `f64` so the variance terms (E[x²] − E[x]²) keep
//! full precision at 16 bits.

use std::cell::RefCell;

use rayon::prelude::*;

use super::{Layout, Metric, PairContext, SsimMode, ssim_ffmpeg};
use crate::frame::{Plane, PlaneView};
use crate::with_views;

/// Window side in samples.
pub const WINDOW: usize = 11;
const RADIUS: usize = WINDOW / 2;
/// Gaussian σ of the window.
pub const SIGMA: f64 = 1.5;
/// SSIM constant K1.
pub const K1: f64 = 0.01;
/// SSIM constant K2.
pub const K2: f64 = 0.03;

/// The normalised 11-tap Gaussian (σ = 1.5), as scipy's `gaussian_filter`
/// builds it with `truncate = 3.5`.
pub fn gaussian_taps() -> [f64; WINDOW] {
    let mut w = [0.0; WINDOW];
    let mut sum = 0.0;
    for (i, t) in w.iter_mut().enumerate() {
        let x = i as f64 - RADIUS as f64;
        *t = (-0.5 * x * x / (SIGMA * SIGMA)).exp();
        sum += *t;
    }
    w.iter_mut().for_each(|t| *t /= sum);
    w
}

const MOMENTS: usize = 5;

thread_local! {
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Mean Gaussian SSIM of two planes of equal size, each side at least
/// [`WINDOW`]; `peak` is the data range L. Returns `None` if the plane is too
/// small for one window.
pub fn ssim_gaussian<T: Copy + Into<f64> + Sync>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
) -> Option<f64> {
    ssim_cs_gaussian(a, b, peak).map(|m| m.ssim)
}

/// Means of the SSIM map and of the contrast-structure map
/// `(2σxy + C2) / (σx² + σy² + C2)` over the valid region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsimMeans {
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean contrast-structure term (what MS-SSIM uses at scales 1–4).
    pub cs: f64,
}

/// Mean SSIM and mean cs over the valid region of two equal-size planes
/// (any sample type that converts to `f64`); `None` under one window.
pub fn ssim_cs_gaussian<T: Copy + Into<f64> + Sync>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
) -> Option<SsimMeans> {
    let (w, h) = (a.width, a.height);
    if w < WINDOW || h < WINDOW || (b.width, b.height) != (w, h) {
        return None;
    }
    let out_h = h - (WINDOW - 1);
    let out_w = w - (WINDOW - 1);
    let band = band_height(out_h);
    let bands: Vec<(usize, usize)> = (0..out_h)
        .step_by(band)
        .map(|y0| (y0, (y0 + band).min(out_h)))
        .collect();
    let taps = gaussian_taps();
    let c1 = (K1 * peak) * (K1 * peak);
    let c2 = (K2 * peak) * (K2 * peak);
    let (ssim, cs) = bands
        .par_iter()
        .map(|&(y0, y1)| band_sum(a, b, y0, y1, &taps, c1, c2))
        .reduce(|| (0.0, 0.0), |x, y| (x.0 + y.0, x.1 + y.1));
    let n = (out_w * out_h) as f64;
    Some(SsimMeans {
        ssim: ssim / n,
        cs: cs / n,
    })
}

fn band_height(out_h: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    out_h.div_ceil(threads * 4).max(64)
}

/// Sums of the SSIM and cs maps over output rows `y0..y1` (valid-region
/// coordinates).
fn band_sum<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    taps: &[f64; WINDOW],
    c1: f64,
    c2: f64,
) -> (f64, f64) {
    let w = a.width;
    let ow = w - (WINDOW - 1);
    SCRATCH.with(|cell| {
        let mut buf = cell.borrow_mut();
        // ring: WINDOW rows × MOMENTS × ow; acc: MOMENTS × ow; xf, yf: w each
        let need = WINDOW * MOMENTS * ow + MOMENTS * ow + 2 * w;
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        let (ring, rest) = buf.split_at_mut(WINDOW * MOMENTS * ow);
        let (acc, rest) = rest.split_at_mut(MOMENTS * ow);
        let (xf, rest) = rest.split_at_mut(w);
        let yf = &mut rest[..w];
        let mut sum = (0.0, 0.0);
        for r in y0..y1 + WINDOW - 1 {
            let slot = r % WINDOW;
            for (d, s) in xf.iter_mut().zip(a.row(r)) {
                *d = (*s).into();
            }
            for (d, s) in yf.iter_mut().zip(b.row(r)) {
                *d = (*s).into();
            }
            let row = &mut ring[slot * MOMENTS * ow..(slot + 1) * MOMENTS * ow];
            horizontal(xf, yf, taps, row, ow);
            if r + 1 >= y0 + WINDOW {
                let o = r + 1 - WINDOW; // output row whose window ends at r
                acc.fill(0.0);
                for (k, t) in taps.iter().enumerate() {
                    let s = (o + k) % WINDOW;
                    let src = &ring[s * MOMENTS * ow..(s + 1) * MOMENTS * ow];
                    for (d, v) in acc.iter_mut().zip(src) {
                        *d += t * v;
                    }
                }
                let (s, c) = ssim_row(acc, ow, c1, c2);
                sum.0 += s;
                sum.1 += c;
            }
        }
        sum
    })
}

/// Horizontal 11-tap filter of x, y, x², y², xy into `out` (5 rows of `ow`).
fn horizontal(xf: &[f64], yf: &[f64], taps: &[f64; WINDOW], out: &mut [f64], ow: usize) {
    let (mx, rest) = out.split_at_mut(ow);
    let (my, rest) = rest.split_at_mut(ow);
    let (mxx, rest) = rest.split_at_mut(ow);
    let (myy, mxy) = rest.split_at_mut(ow);
    mx.fill(0.0);
    my.fill(0.0);
    mxx.fill(0.0);
    myy.fill(0.0);
    mxy.fill(0.0);
    for (k, &t) in taps.iter().enumerate() {
        let xs = &xf[k..k + ow];
        let ys = &yf[k..k + ow];
        for i in 0..ow {
            let x = xs[i];
            let y = ys[i];
            mx[i] += t * x;
            my[i] += t * y;
            mxx[i] += t * (x * x);
            myy[i] += t * (y * y);
            mxy[i] += t * (x * y);
        }
    }
}

/// Sums of the SSIM and cs maps along one output row from its five
/// filtered moments.
fn ssim_row(acc: &[f64], ow: usize, c1: f64, c2: f64) -> (f64, f64) {
    let (mx, rest) = acc.split_at(ow);
    let (my, rest) = rest.split_at(ow);
    let (mxx, rest) = rest.split_at(ow);
    let (myy, mxy) = rest.split_at(ow);
    let mut s = 0.0;
    let mut c = 0.0;
    for i in 0..ow {
        let ux = mx[i];
        let uy = my[i];
        let vx = mxx[i] - ux * ux;
        let vy = myy[i] - uy * uy;
        let vxy = mxy[i] - ux * uy;
        let cs = (2.0 * vxy + c2) / (vx + vy + c2);
        s += (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs;
        c += cs;
    }
    (s, c)
}

/// Gaussian SSIM of one pair of planes; `None` if their sample types or
/// sizes differ or they are under one window.
pub fn plane_ssim(r: &Plane, d: &Plane, peak: f64) -> Option<f64> {
    with_views!(r, d, |a, b| ssim_gaussian(a, b, peak)).flatten()
}

/// SSIM in the `zero-pad` convention (the common PyTorch code): the same
/// 11×11 Gaussian window, 'same' correlation with zero padding (5 samples on
/// every side), mean over the full `width × height` map.
pub fn ssim_zero_pad<T: Copy + Into<f64> + Sync>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
) -> Option<f64> {
    let (w, h) = (a.width, a.height);
    if w == 0 || h == 0 || (b.width, b.height) != (w, h) {
        return None;
    }
    let pw = w + 2 * RADIUS;
    let ph = h + 2 * RADIUS;
    let pad = |v: PlaneView<'_, T>| {
        let mut out = vec![0.0f64; pw * ph];
        for y in 0..h {
            let dst = &mut out[(y + RADIUS) * pw + RADIUS..(y + RADIUS) * pw + RADIUS + w];
            for (d, s) in dst.iter_mut().zip(v.row(y)) {
                *d = (*s).into();
            }
        }
        out
    };
    let pa = pad(a);
    let pb = pad(b);
    ssim_gaussian(
        PlaneView::new(&pa, pw, ph)?,
        PlaneView::new(&pb, pw, ph)?,
        peak,
    )
}

/// `ssim_<plane>` and `ssim_all` (planes weighted by sample count), in the
/// convention `mode` names.
pub struct Ssim {
    /// The SSIM convention.
    pub mode: SsimMode,
}

impl Metric for Ssim {
    fn name(&self) -> &'static str {
        "ssim"
    }
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
                    with_views!(r, d, |a, b| ssim_zero_pad(a, b, peak))
                        .flatten()
                        .unwrap_or(f64::NAN)
                })
                .collect(),
            SsimMode::Ffmpeg => {
                let depth = pair.reference.bit_depth;
                pair.reference
                    .planes
                    .par_iter()
                    .zip(pair.distorted.planes.par_iter())
                    .map(|(r, d)| ssim_ffmpeg::plane(d, r, depth).unwrap_or(f64::NAN))
                    .collect()
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T>(d: &[T], w: usize, h: usize) -> PlaneView<'_, T> {
        PlaneView::new(d, w, h).unwrap()
    }

    #[test]
    fn taps_sum_to_one_and_are_symmetric() {
        let t = gaussian_taps();
        assert!((t.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for i in 0..WINDOW {
            assert_eq!(t[i], t[WINDOW - 1 - i]);
        }
        assert!(t[5] > t[4]);
    }

    #[test]
    fn identical_planes_give_one() {
        let a: Vec<u8> = (0..17 * 13).map(|i| (i * 37 % 251) as u8).collect();
        let s = ssim_gaussian(v(&a, 17, 13), v(&a, 17, 13), 255.0).unwrap();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn constant_planes_have_closed_form() {
        // Constant planes: variances 0, so SSIM = (2ab + C1) / (a² + b² + C1).
        let a = vec![100u8; 11 * 11];
        let b = vec![110u8; 11 * 11];
        let c1 = (0.01f64 * 255.0).powi(2);
        let want = (2.0 * 100.0 * 110.0 + c1) / (100.0f64.powi(2) + 110.0f64.powi(2) + c1);
        let s = ssim_gaussian(v(&a, 11, 11), v(&b, 11, 11), 255.0).unwrap();
        assert!((s - want).abs() < 1e-12, "{s} vs {want}");
    }

    #[test]
    fn one_differing_pixel_in_a_single_window() {
        // 11x11: exactly one window. x constant 0, y has one pixel at the
        // centre = 255: mu_y = w_c * 255, var_y = w_c*255² - mu_y², cov = 0.
        let a = vec![0u8; 121];
        let mut b = vec![0u8; 121];
        b[60] = 255;
        let t = gaussian_taps();
        let wc = t[5] * t[5];
        let uy = wc * 255.0;
        let vy = wc * 255.0 * 255.0 - uy * uy;
        let c1 = (0.01f64 * 255.0).powi(2);
        let c2 = (0.03f64 * 255.0).powi(2);
        let want = c1 * c2 / ((uy * uy + c1) * (vy + c2));
        let s = ssim_gaussian(v(&a, 11, 11), v(&b, 11, 11), 255.0).unwrap();
        assert!((s - want).abs() < 1e-12, "{s} vs {want}");
    }

    #[test]
    fn sixteen_bit_extremes_stay_finite() {
        let a = vec![0u16; 12 * 12];
        let b = vec![65535u16; 12 * 12];
        let s = ssim_gaussian(v(&a, 12, 12), v(&b, 12, 12), 65535.0).unwrap();
        let c1 = (0.01f64 * 65535.0).powi(2);
        assert!((s - c1 / (65535.0f64.powi(2) + c1)).abs() < 1e-12);
    }

    #[test]
    fn too_small_planes_are_refused() {
        let a = vec![0u8; 10 * 20];
        assert!(ssim_gaussian(v(&a, 10, 20), v(&a, 10, 20), 255.0).is_none());
    }

    #[test]
    fn bands_agree_with_a_single_band() {
        // A tall plane split into several bands gives the same mean as a
        // direct per-window computation.
        let (w, h) = (23, 300);
        let a: Vec<u8> = (0..w * h).map(|i| ((i * 7919) % 256) as u8).collect();
        let b: Vec<u8> = a.iter().map(|x| x.wrapping_add((x % 5) * 3)).collect();
        let got = ssim_gaussian(v(&a, w, h), v(&b, w, h), 255.0).unwrap();
        let t = gaussian_taps();
        let c1 = (0.01f64 * 255.0).powi(2);
        let c2 = (0.03f64 * 255.0).powi(2);
        let mut sum = 0.0;
        for oy in 0..h - 10 {
            for ox in 0..w - 10 {
                let (mut ux, mut uy, mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for ky in 0..11 {
                    for kx in 0..11 {
                        let wt = t[ky] * t[kx];
                        let x = a[(oy + ky) * w + ox + kx] as f64;
                        let y = b[(oy + ky) * w + ox + kx] as f64;
                        ux += wt * x;
                        uy += wt * y;
                        xx += wt * x * x;
                        yy += wt * y * y;
                        xy += wt * x * y;
                    }
                }
                let (vx, vy, vxy) = (xx - ux * ux, yy - uy * uy, xy - ux * uy);
                sum += (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
                    / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            }
        }
        let want = sum / ((w - 10) * (h - 10)) as f64;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}
