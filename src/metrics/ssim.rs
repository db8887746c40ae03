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
use crate::cpu::{CpuLevel, cpu_level};
use crate::frame::PlaneView;

/// Window side in samples.
pub const WINDOW: usize = ssim_f32::WINDOW;
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
/// (any sample type that converts to `f64`) in a chosen precision
/// (`Double` is the reference computation; `Fast` uses `f32` up to 10
/// bits); `None` under one window.
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
    let mut sum = (0.0, 0.0);
    band_rows(
        a,
        b,
        (y0, y1),
        Columns::all(a.width),
        p,
        |_| true,
        |_, smap, cmap| {
            sum.0 += sum_lanes(smap);
            sum.1 += sum_lanes(cmap);
        },
    );
    sum
}

/// Runs the separable Gaussian filter over output rows `y0..y1`
/// (valid-region coordinates) and hands the SSIM and cs maps of each row
/// that `keep` accepts to `on_row`, with the row's index.
#[inline(always)]
fn band_rows<T: Copy + Into<f64>>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    (y0, y1): (usize, usize),
    cols: Columns,
    p: BandParams,
    keep: impl Fn(usize) -> bool,
    mut on_row: impl FnMut(usize, &[f64], &[f64]),
) {
    let w = a.width;
    // the kept columns of each output row, side by side
    let ow = cols.count;
    let every = cols.step == 1 && cols.first == 0 && ow == w - (WINDOW - 1);
    // a moment's source row: as is, or split into `step` phases of `pl`
    let pl = w.div_ceil(cols.step);
    let sw = if every { w } else { pl * cols.step };
    let mut buf = SCRATCH.take();
    {
        // ring: WINDOW rows × MOMENTS × ow; sources: MOMENTS × sw;
        // vertical sums: MOMENTS × ow; maps: 2 × ow
        let need = WINDOW * MOMENTS * ow + MOMENTS * sw + MOMENTS * ow + 2 * ow;
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        let (ring, rest) = buf.split_at_mut(WINDOW * MOMENTS * ow);
        let (src, rest) = rest.split_at_mut(MOMENTS * sw);
        let (vert, rest) = rest.split_at_mut(MOMENTS * ow);
        let (smap, rest) = rest.split_at_mut(ow);
        let cmap = &mut rest[..ow];
        for r in y0..y1 + WINDOW - 1 {
            let slot = r % WINDOW;
            let row = &mut ring[slot * MOMENTS * ow..(slot + 1) * MOMENTS * ow];
            if every {
                sources(a.row(r), b.row(r), src, w);
                for m in 0..MOMENTS {
                    horizontal(
                        &src[m * w..(m + 1) * w],
                        &p.taps,
                        &mut row[m * ow..(m + 1) * ow],
                    );
                }
            } else {
                phased_sources(a.row(r), b.row(r), src, w, cols.step);
                for m in 0..MOMENTS {
                    horizontal_phased(
                        &src[m * sw..(m + 1) * sw],
                        pl,
                        cols,
                        &p.taps,
                        &mut row[m * ow..(m + 1) * ow],
                    );
                }
            }
            if r + 1 >= y0 + WINDOW && keep(r + 1 - WINDOW) {
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
                on_row(o, smap, cmap);
            }
        }
    }
    SCRATCH.set(buf);
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

/// The five source rows (x, y, x², y², xy), each split into `step`
/// phases: sample `i` of a row goes to phase `i % step`, place `i / step`
/// (phases `w.div_ceil(step)` long), so a strided filter reads contiguous
/// slices.
#[inline(always)]
fn phased_sources<T: Copy + Into<f64>>(ra: &[T], rb: &[T], src: &mut [f64], w: usize, step: usize) {
    let pl = w.div_ceil(step);
    let sw = pl * step;
    let (ra, rb) = (&ra[..w], &rb[..w]);
    let (sx, rest) = src.split_at_mut(sw);
    let (sy, rest) = rest.split_at_mut(sw);
    let (sxx, rest) = rest.split_at_mut(sw);
    let (syy, sxy) = rest.split_at_mut(sw);
    // the samples into their phases, then the products over whole rows
    for phase in 0..step.min(w) {
        let at = phase * pl;
        for (d, x) in sx[at..at + pl]
            .iter_mut()
            .zip(ra[phase..].iter().step_by(step))
        {
            *d = (*x).into();
        }
        for (d, y) in sy[at..at + pl]
            .iter_mut()
            .zip(rb[phase..].iter().step_by(step))
        {
            *d = (*y).into();
        }
    }
    let sxy = &mut sxy[..sw];
    for i in 0..sw {
        let (x, y) = (sx[i], sy[i]);
        sxx[i] = x * x;
        syy[i] = y * y;
        sxy[i] = x * y;
    }
}

/// [`horizontal`] at the kept columns only, from one moment's phased
/// source row (phases `pl` long): the same expression on the same
/// samples, so the same bits.
#[inline(always)]
fn horizontal_phased(s: &[f64], pl: usize, cols: Columns, t: &[f64; WINDOW], out: &mut [f64]) {
    let n = out.len();
    // tap k of output j reads sample first + j·step + k
    let tap = |k: usize| {
        let q = cols.first + k;
        let at = (q % cols.step) * pl + q / cols.step;
        &s[at..at + n]
    };
    let [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10] = std::array::from_fn(tap);
    for i in 0..n {
        out[i] = t[5] * s5[i]
            + t[4] * (s4[i] + s6[i])
            + t[3] * (s3[i] + s7[i])
            + t[2] * (s2[i] + s8[i])
            + t[1] * (s1[i] + s9[i])
            + t[0] * (s0[i] + s10[i]);
    }
}

/// Which columns of the valid-region map a pass computes: `count` of
/// them, `first, first + step, …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    first: usize,
    step: usize,
    count: usize,
}

impl Columns {
    /// Every column of a `w`-wide plane's map.
    fn all(w: usize) -> Self {
        Columns {
            first: 0,
            step: 1,
            count: w - (WINDOW - 1),
        }
    }

    /// Columns `first, first + step, …` of a `w`-wide plane's map.
    fn of(w: usize, first: usize, step: usize) -> Self {
        let step = step.max(1);
        let ow = w - (WINDOW - 1);
        Columns {
            first,
            step,
            count: ow.saturating_sub(first).div_ceil(step),
        }
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

#[cfg(test)]
mod tests;

pub mod map;

#[cfg(test)]
pub(crate) mod dispatch_tests;
