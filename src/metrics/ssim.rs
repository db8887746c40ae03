//! SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) with an 11×11 Gaussian window
//! (σ = 1.5, weights normalised to sum 1), population moments, and the mean
//! of the SSIM map over the valid region: only windows wholly inside the
//! plane. This is scikit-image's `structural_similarity(gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, data_range=peak)`.
//!
//! Bands of output rows run in parallel. Data up to 10 bits goes through
//! the single-precision kernel of [`ssim_f32`] (four moments, AVX2/FMA when
//! the CPU has them); deeper data, and every depth under
//! `VQM_SSIM_PRECISION=double`, through the `f64` kernel here: each band
//! keeps a ring of 11 horizontally filtered rows of the five moments (x, y,
//! x², y², xy) and each output row is one vertical pass over the ring, in
//! `f64` so the variance terms (`E[x²] − E[x]²`) keep full precision at 16
//! bits.

use std::cell::Cell;

use rayon::prelude::*;

use super::ssim_f32;
use super::{Layout, Metric, PairContext, Passes, SsimMode, ssim_ffmpeg};
use crate::cpu::{CpuLevel, cpu_level};
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
    /// Per-worker scratch, taken out for a band and put back after.
    static SCRATCH: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// Mean Gaussian SSIM of two planes of equal size, each side at least
/// [`WINDOW`]; `peak` is the data range L. Returns `None` if the plane is too
/// small for one window.
pub fn ssim_gaussian<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
) -> Option<f64> {
    gaussian_in(a, b, peak, Precision::Fast, false, false).map(|m| m.ssim)
}

/// Means of the SSIM map and of the contrast-structure map
/// `(2σxy + C2) / (σx² + σy² + C2)` over the valid region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsimMeans {
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean contrast-structure term (what MS-SSIM uses at scales 1–4); zero
    /// when it was not asked for.
    pub cs: f64,
    /// The planes' sum of squared differences, when it was asked for and
    /// the kernel's pass could give it (the `f32` kernel, data up to 10
    /// bits).
    pub sse: Option<u64>,
}

/// Sample types the Gaussian kernels read.
pub trait Sample: Copy + Into<f64> + Sync + ssim_f32::Centre {}
impl<T: Copy + Into<f64> + Sync + ssim_f32::Centre> Sample for T {}

/// Mean SSIM and mean cs over the valid region of two equal-size planes
/// (any sample type that converts to `f64`); `None` under one window.
pub fn ssim_cs_gaussian<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
) -> Option<SsimMeans> {
    gaussian_in(a, b, peak, Precision::Fast, true, false)
}

/// [`ssim_cs_gaussian`] in a chosen precision (`Double` is the reference
/// computation; `Fast` uses `f32` up to 10 bits).
pub fn ssim_cs_gaussian_in<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
    prec: Precision,
) -> Option<SsimMeans> {
    gaussian_in(a, b, peak, prec, true, false)
}

/// The Gaussian SSIM (and cs when `want_cs`) means of two planes, with
/// the planes' sum of squared differences from the same pass when
/// `want_sse` and the `f32` kernel runs.
pub fn gaussian_in<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
    prec: Precision,
    want_cs: bool,
    want_sse: bool,
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
    let level = cpu_level();
    // Bands run in parallel; their sums are added in band order so every
    // run gives the same bits.
    let fast = peak <= 1023.0 && prec == Precision::Fast;
    let sums: Vec<ssim_f32::BandSums> = if fast {
        let p = ssim_f32::Params {
            taps: taps.map(|t| t as f32),
            c1: c1 as f32,
            c2: c2 as f32,
            offset: ((peak + 1.0) / 2.0) as f32,
            want_cs,
            want_sse,
        };
        bands
            .par_iter()
            .map(|&(y0, y1)| ssim_f32::band_sums(a, b, y0, y1, &p, level))
            .collect()
    } else {
        let p = BandParams { taps, c1, c2 };
        bands
            .par_iter()
            .map(|&(y0, y1)| {
                let (ssim, cs) = band_sum(a, b, y0, y1, p, level);
                ssim_f32::BandSums { ssim, cs, sse: 0 }
            })
            .collect()
    };
    let (ssim, cs) = sums
        .iter()
        .fold((0.0, 0.0), |x, y| (x.0 + y.ssim, x.1 + y.cs));
    let n = (out_w * out_h) as f64;
    Some(SsimMeans {
        ssim: ssim / n,
        cs: if want_cs { cs / n } else { 0.0 },
        sse: (want_sse && fast).then(|| sums.iter().map(|s| s.sse).sum()),
    })
}

/// Which float type the Gaussian kernel uses for data up to 10 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `f32` on centred samples (the default).
    Fast,
    /// `f64` everywhere.
    Double,
}

fn band_height(out_h: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    out_h.div_ceil(threads * 4).max(64)
}

/// Constants of one band computation in `f64`.
#[derive(Clone, Copy)]
struct BandParams {
    taps: [f64; WINDOW],
    c1: f64,
    c2: f64,
}

/// Sums of the SSIM and cs maps over output rows `y0..y1` (valid-region
/// coordinates), on the best code path the CPU has.
fn band_sum<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: BandParams,
    level: CpuLevel,
) -> (f64, f64) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe {
            band_sum_avx2(a, b, y0, y1, p)
        },
        _ => band_sum_body(a, b, y0, y1, p),
    }
}

/// The same code compiled for AVX2 (without FMA, so every result is
/// bit-identical to the portable path).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn band_sum_avx2<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: BandParams,
) -> (f64, f64) {
    band_sum_body(a, b, y0, y1, p)
}

#[inline(always)]
fn band_sum_body<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: BandParams,
) -> (f64, f64) {
    let w = a.width;
    let ow = w - (WINDOW - 1);
    let mut buf = SCRATCH.take();
    let sum = {
        // ring: WINDOW rows × MOMENTS × ow; sources: MOMENTS × w;
        // vertical sums: MOMENTS × ow; maps: 2 × ow
        let need = WINDOW * MOMENTS * ow + MOMENTS * w + MOMENTS * ow + 2 * ow;
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        let (ring, rest) = buf.split_at_mut(WINDOW * MOMENTS * ow);
        let (src, rest) = rest.split_at_mut(MOMENTS * w);
        let (vert, rest) = rest.split_at_mut(MOMENTS * ow);
        let (smap, rest) = rest.split_at_mut(ow);
        let cmap = &mut rest[..ow];
        let mut sum = (0.0, 0.0);
        for r in y0..y1 + WINDOW - 1 {
            let slot = r % WINDOW;
            sources(a.row(r), b.row(r), src, w);
            let row = &mut ring[slot * MOMENTS * ow..(slot + 1) * MOMENTS * ow];
            for m in 0..MOMENTS {
                horizontal(
                    &src[m * w..(m + 1) * w],
                    &p.taps,
                    &mut row[m * ow..(m + 1) * ow],
                );
            }
            if r + 1 >= y0 + WINDOW {
                let o = r + 1 - WINDOW; // output row whose window ends at r
                for m in 0..MOMENTS {
                    let rows: [&[f64]; WINDOW] = std::array::from_fn(|k| {
                        let s = (o + k) % WINDOW;
                        let base = s * MOMENTS * ow + m * ow;
                        &ring[base..base + ow]
                    });
                    vertical(rows, &p.taps, &mut vert[m * ow..(m + 1) * ow]);
                }
                ssim_maps(vert, ow, p, smap, cmap);
                sum.0 += sum_lanes(smap);
                sum.1 += sum_lanes(cmap);
            }
        }
        sum
    };
    SCRATCH.set(buf);
    sum
}

/// The five source rows: x, y, x², y², xy.
#[inline(always)]
fn sources<T: Copy + Into<f64>>(ra: &[T], rb: &[T], src: &mut [f64], w: usize) {
    let (sx, rest) = src.split_at_mut(w);
    let (sy, rest) = rest.split_at_mut(w);
    let (sxx, rest) = rest.split_at_mut(w);
    let (syy, sxy) = rest.split_at_mut(w);
    let (ra, rb) = (&ra[..w], &rb[..w]);
    let sxy = &mut sxy[..w];
    for i in 0..w {
        let x: f64 = ra[i].into();
        let y: f64 = rb[i].into();
        sx[i] = x;
        sy[i] = y;
        sxx[i] = x * x;
        syy[i] = y * y;
        sxy[i] = x * y;
    }
}

/// Horizontal 11-tap filter of one source row, using the taps' symmetry.
#[inline(always)]
fn horizontal(s: &[f64], t: &[f64; WINDOW], out: &mut [f64]) {
    let ow = out.len();
    let s = &s[..ow + WINDOW - 1];
    for i in 0..ow {
        out[i] = t[5] * s[i + 5]
            + t[4] * (s[i + 4] + s[i + 6])
            + t[3] * (s[i + 3] + s[i + 7])
            + t[2] * (s[i + 2] + s[i + 8])
            + t[1] * (s[i + 1] + s[i + 9])
            + t[0] * (s[i] + s[i + 10]);
    }
}

/// Vertical 11-tap filter of one moment of one output row, using the taps'
/// symmetry; `rows` are that moment's 11 horizontal rows, top first.
#[inline(always)]
fn vertical(rows: [&[f64]; WINDOW], t: &[f64; WINDOW], out: &mut [f64]) {
    let n = out.len();
    let [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10] = rows.map(|r| &r[..n]);
    for i in 0..n {
        out[i] = t[5] * r5[i]
            + t[4] * (r4[i] + r6[i])
            + t[3] * (r3[i] + r7[i])
            + t[2] * (r2[i] + r8[i])
            + t[1] * (r1[i] + r9[i])
            + t[0] * (r0[i] + r10[i]);
    }
}

/// SSIM and cs maps of one output row from its five filtered moments.
#[inline(always)]
fn ssim_maps(v: &[f64], ow: usize, p: BandParams, smap: &mut [f64], cmap: &mut [f64]) {
    let (mx, rest) = v.split_at(ow);
    let (my, rest) = rest.split_at(ow);
    let (mxx, rest) = rest.split_at(ow);
    let (myy, mxy) = rest.split_at(ow);
    let (mxy, smap, cmap) = (&mxy[..ow], &mut smap[..ow], &mut cmap[..ow]);
    let two = 2.0;
    for i in 0..ow {
        let (cx, cy) = (mx[i], my[i]);
        let vx = mxx[i] - cx * cx;
        let vy = myy[i] - cy * cy;
        let vxy = mxy[i] - cx * cy;
        let (ux, uy) = (cx, cy);
        // two quotients, so identical pictures give exactly 1
        let cs = (two * vxy + p.c2) / (vx + vy + p.c2);
        smap[i] = (two * ux * uy + p.c1) / (ux * ux + uy * uy + p.c1) * cs;
        cmap[i] = cs;
    }
}

/// Sum in a fixed order of 8 interleaved partial sums (vectorisable, and
/// the same on every code path), returned in `f64`.
#[inline(always)]
fn sum_lanes(v: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let chunks = v.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let mut total =
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for x in rem {
        total += x;
    }
    total
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
    prec: Precision,
) -> Option<f64> {
    let (w, h) = (a.width, a.height);
    if w == 0 || h == 0 || (b.width, b.height) != (w, h) {
        return None;
    }
    let pw = w + 2 * RADIUS;
    let ph = h + 2 * RADIUS;
    // every padded sample written once: zeros around, the plane inside
    let pad = |v: PlaneView<'_, T>, out: &mut Vec<f64>| {
        out.resize(pw * ph, 0.0);
        for (py, row) in out.chunks_exact_mut(pw).enumerate() {
            match py.checked_sub(RADIUS).filter(|y| *y < h) {
                Some(y) => {
                    row[..RADIUS].fill(0.0);
                    for (d, s) in row[RADIUS..RADIUS + w].iter_mut().zip(v.row(y)) {
                        *d = (*s).into();
                    }
                    row[RADIUS + w..].fill(0.0);
                }
                None => row.fill(0.0),
            }
        }
    };
    let (mut pa, mut pb) = PADDED.take();
    pad(a, &mut pa);
    pad(b, &mut pb);
    let v = PlaneView::new(&pa, pw, ph)
        .zip(PlaneView::new(&pb, pw, ph))
        .and_then(|(va, vb)| gaussian_in(va, vb, peak, prec, false, false).map(|m| m.ssim));
    PADDED.set((pa, pb));
    v
}

thread_local! {
    /// Per-worker buffers of the zero-padded planes.
    static PADDED: Cell<(Vec<f64>, Vec<f64>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// `ssim_<plane>` and `ssim_all` (planes weighted by sample count), in the
/// convention `mode` names.
pub struct Ssim {
    /// The SSIM convention.
    pub mode: SsimMode,
    /// Float type of the Gaussian kernels (gaussian and zero-pad modes).
    pub precision: Precision,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T>(d: &[T], w: usize, h: usize) -> PlaneView<'_, T> {
        PlaneView::new(d, w, h).unwrap()
    }

    /// The double-precision reference computation.
    fn exact<T: Sample>(a: PlaneView<'_, T>, b: PlaneView<'_, T>, peak: f64) -> Option<f64> {
        ssim_cs_gaussian_in(a, b, peak, Precision::Double).map(|m| m.ssim)
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
        let s = exact(v(&a, 17, 13), v(&a, 17, 13), 255.0).unwrap();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn constant_planes_have_closed_form() {
        // Constant planes: variances 0, so SSIM = (2ab + C1) / (a² + b² + C1).
        let a = vec![100u8; 11 * 11];
        let b = vec![110u8; 11 * 11];
        let c1 = (0.01f64 * 255.0).powi(2);
        let want = (2.0 * 100.0 * 110.0 + c1) / (100.0f64.powi(2) + 110.0f64.powi(2) + c1);
        let s = exact(v(&a, 11, 11), v(&b, 11, 11), 255.0).unwrap();
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
        let s = exact(v(&a, 11, 11), v(&b, 11, 11), 255.0).unwrap();
        assert!((s - want).abs() < 1e-12, "{s} vs {want}");
    }

    #[test]
    fn sixteen_bit_extremes_stay_finite() {
        let a = vec![0u16; 12 * 12];
        let b = vec![65535u16; 12 * 12];
        let s = exact(v(&a, 12, 12), v(&b, 12, 12), 65535.0).unwrap();
        let c1 = (0.01f64 * 65535.0).powi(2);
        assert!((s - c1 / (65535.0f64.powi(2) + c1)).abs() < 1e-12);
    }

    #[test]
    fn too_small_planes_are_refused() {
        let a = vec![0u8; 10 * 20];
        assert!(exact(v(&a, 10, 20), v(&a, 10, 20), 255.0).is_none());
        assert!(ssim_gaussian(v(&a, 10, 20), v(&a, 10, 20), 255.0).is_none());
    }

    #[test]
    fn bands_agree_with_a_single_band() {
        // A tall plane split into several bands gives the same mean as a
        // direct per-window computation.
        let (w, h) = (23, 300);
        let a: Vec<u8> = (0..w * h).map(|i| ((i * 7919) % 256) as u8).collect();
        let b: Vec<u8> = a.iter().map(|x| x.wrapping_add((x % 5) * 3)).collect();
        let got = exact(v(&a, w, h), v(&b, w, h), 255.0).unwrap();
        // the fast single-precision path stays far inside the 1e-4 tolerance
        let fast = ssim_gaussian(v(&a, w, h), v(&b, w, h), 255.0).unwrap();
        assert!((fast - got).abs() < 1e-6, "{fast} vs {got}");
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

#[cfg(test)]
pub(crate) mod dispatch_tests {
    use super::*;

    fn v<T>(d: &[T], w: usize, h: usize) -> PlaneView<'_, T> {
        PlaneView::new(d, w, h).unwrap()
    }
    use crate::cpu::available_levels;

    /// A deterministic pseudo-random sequence.
    pub(crate) fn noise(n: usize, seed: u64, max: u32) -> Vec<u32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as u32) % (max + 1)
            })
            .collect()
    }

    #[test]
    fn every_code_path_gives_identical_results() {
        for (w, h) in [(11, 11), (37, 29), (203, 77)] {
            let a8: Vec<u8> = noise(w * h, 1, 255).into_iter().map(|v| v as u8).collect();
            let b8: Vec<u8> = noise(w * h, 2, 255).into_iter().map(|v| v as u8).collect();
            let a10: Vec<u16> = noise(w * h, 5, 1023)
                .into_iter()
                .map(|v| v as u16)
                .collect();
            let b10: Vec<u16> = noise(w * h, 6, 1023)
                .into_iter()
                .map(|v| v as u16)
                .collect();
            let a16: Vec<u16> = noise(w * h, 3, 65535)
                .into_iter()
                .map(|v| v as u16)
                .collect();
            let b16: Vec<u16> = noise(w * h, 4, 65535)
                .into_iter()
                .map(|v| v as u16)
                .collect();
            let taps = gaussian_taps();
            let (c1, c2) = ((K1 * 255.0f64).powi(2), (K2 * 255.0f64).powi(2));
            let p64 = BandParams { taps, c1, c2 };
            let oh = h - (WINDOW - 1);
            let n = ((w - 10) * oh) as f64;
            let v8 = (v(&a8, w, h), v(&b8, w, h));
            let v10 = (v(&a10, w, h), v(&b10, w, h));
            let v16 = (v(&a16, w, h), v(&b16, w, h));
            // the f64 kernel: identical bits on every level
            let r8: Vec<_> = available_levels()
                .into_iter()
                .map(|l| band_sum(v8.0, v8.1, 0, oh, p64, l))
                .collect();
            let r16: Vec<_> = available_levels()
                .into_iter()
                .map(|l| band_sum(v16.0, v16.1, 0, oh, p64, l))
                .collect();
            assert!(r8.windows(2).all(|p| p[0] == p[1]), "{w}x{h}: {r8:?}");
            assert!(r16.windows(2).all(|p| p[0] == p[1]), "{w}x{h}: {r16:?}");
            // the f32 kernel, 8 and 10 bits, with and without cs: portable
            // and AVX2 give identical bits, the FMA path the same bits as
            // portable code with fused multiply-adds, and all of them agree
            // with the f64 kernel far inside the tolerance
            for want_cs in [false, true] {
                check_f32(v8, 255.0, want_cs, oh, n);
                check_f32(v10, 1023.0, want_cs, oh, n);
            }
        }
    }

    /// The f32 kernel: portable and AVX2 give identical bits, the FMA path
    /// the same bits as portable code with fused multiply-adds, and all of
    /// them agree with the f64 kernel far inside the tolerance.
    fn check_f32<T: Sample>(
        pair: (PlaneView<'_, T>, PlaneView<'_, T>),
        peak: f64,
        want_cs: bool,
        oh: usize,
        n: f64,
    ) {
        let taps = gaussian_taps();
        let p = ssim_f32::Params {
            taps: taps.map(|t| t as f32),
            c1: ((K1 * peak).powi(2)) as f32,
            c2: ((K2 * peak).powi(2)) as f32,
            offset: ((peak + 1.0) / 2.0) as f32,
            want_cs,
            want_sse: false,
        };
        // the fused squared differences: bands that split the plane count
        // each sample once, on every path, and the maps do not change
        let with_sse = ssim_f32::Params {
            want_sse: true,
            ..p
        };
        let total = pair
            .0
            .data
            .iter()
            .zip(pair.1.data)
            .map(|(x, y)| {
                let d: f64 = (*x).into() - (*y).into();
                d * d
            })
            .sum::<f64>() as u64;
        for level in available_levels() {
            let (top, bottom) = (oh / 3, oh);
            let s1 = ssim_f32::band_sums(pair.0, pair.1, 0, top, &with_sse, level);
            let s2 = ssim_f32::band_sums(pair.0, pair.1, top, bottom, &with_sse, level);
            assert_eq!(s1.sse + s2.sse, total, "{peak} {level:?}");
            let whole = ssim_f32::band_sums(pair.0, pair.1, 0, oh, &with_sse, level);
            assert_eq!(whole.sse, total);
            let plain = ssim_f32::band_sum(pair.0, pair.1, 0, oh, &p, level);
            assert_eq!((whole.ssim, whole.cs), plain, "{peak} {level:?}");
        }
        let fused = ssim_f32::band_sum_fused_reference(pair.0, pair.1, 0, oh, &p, 8);
        let fused16 = ssim_f32::band_sum_fused_reference(pair.0, pair.1, 0, oh, &p, 16);
        let plain = ssim_f32::band_sum(pair.0, pair.1, 0, oh, &p, CpuLevel::Scalar);
        for level in available_levels() {
            let got = ssim_f32::band_sum(pair.0, pair.1, 0, oh, &p, level);
            let want = match level {
                CpuLevel::Scalar | CpuLevel::Avx2 => plain,
                CpuLevel::Avx2Fma => fused,
                CpuLevel::Avx512 => fused16,
            };
            assert_eq!(got, want, "{peak} {level:?}");
        }
        let pd = BandParams {
            taps,
            c1: (K1 * peak).powi(2),
            c2: (K2 * peak).powi(2),
        };
        let exact = band_sum(pair.0, pair.1, 0, oh, pd, CpuLevel::Scalar);
        for got in [fused, fused16, plain] {
            assert!((got.0 / n - exact.0 / n).abs() < 1e-6, "{got:?} {exact:?}");
            if want_cs {
                assert!((got.1 / n - exact.1 / n).abs() < 1e-6);
            } else {
                assert_eq!(got.1, 0.0);
            }
        }
    }

    #[test]
    fn identical_pictures_give_exactly_one_on_every_path() {
        let (w, h) = (203, 77);
        let a: Vec<u8> = noise(w * h, 7, 255).into_iter().map(|v| v as u8).collect();
        let p = ssim_f32::Params {
            taps: gaussian_taps().map(|t| t as f32),
            c1: (K1 * 255.0f64).powi(2) as f32,
            c2: (K2 * 255.0f64).powi(2) as f32,
            offset: 128.0,
            want_cs: true,
            want_sse: false,
        };
        let oh = h - (WINDOW - 1);
        let n = ((w - 10) * oh) as f64;
        let va = v(&a, w, h);
        for level in available_levels() {
            let (s, cs) = ssim_f32::band_sum(va, va, 0, oh, &p, level);
            assert_eq!((s / n, cs / n), (1.0, 1.0), "{level:?}");
        }
        for lanes in [8, 16] {
            let (s, cs) = ssim_f32::band_sum_fused_reference(va, va, 0, oh, &p, lanes);
            assert_eq!((s / n, cs / n), (1.0, 1.0));
        }
    }
}
