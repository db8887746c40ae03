//! SSIM in FFmpeg's `ssim` filter convention: unweighted 8×8 windows on a
//! 4-sample grid, built from sums over 4×4 blocks; integer constants
//! `c1 = round(0.01²·max²·64)`, `c2 = round(0.03²·max²·64·63)`; each
//! window's value in single precision as the filter computes it; the
//! `width % 4` and `height % 4` leftover samples are not measured; the plane
//! value is the mean over `(h/4 − 1)·(w/4 − 1)` windows.

use std::cell::Cell;

use num_traits::PrimInt;
use rayon::prelude::*;

use crate::cpu::{CpuLevel, cpu_level};
use crate::frame::{Plane, PlaneView, Sample};
use crate::with_views;

/// Smallest plane side the convention can measure (two 4×4 blocks).
pub const MIN_SIDE: usize = 8;

/// Column sums over the four rows of block row `by`, then the 4×4 block
/// sums Σa, Σb, Σ(a² + b²), Σab into `out` as four arrays of `bw` (one
/// pass along the rows per array, vectorisable), in `A`: `u32` is exact at
/// 8 bits (a window's Σ(a² + b²) ≤ 8,323,200), `u64` at any depth.
///
/// With `SSE`, returns the block row's sum of squared differences (its four
/// rows, the columns right of the blocks included); else 0.
#[inline(always)]
fn block_row<T: Sample, A: PrimInt + From<u32> + Into<u64>, const SSE: bool>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    by: usize,
    cols: &mut [A],
    out: &mut [A],
) -> u64 {
    let bw = out.len() / 4;
    let w4 = 4 * bw;
    // four column arrays, one per sum (no shuffles between them)
    let (ca, rest) = cols.split_at_mut(w4);
    let (cb, rest) = rest.split_at_mut(w4);
    let (csq, rest) = rest.split_at_mut(w4);
    let (ccr, rest) = rest.split_at_mut(w4);
    let cd = &mut rest[..w4];
    let mut sse = 0u64;
    // the four rows at once: each column's sums written once, no zeroing
    // (no closures: this is compiled in the caller's target features)
    let y = 4 * by;
    // the next block row's samples, while this one is summed
    for r in y + 4..(y + 8).min(a.height) {
        crate::cpu::prefetch(a.row(r));
        crate::cpu::prefetch(b.row(r));
    }
    let (a0, a1, a2, a3) = (
        &a.row(y)[..w4],
        &a.row(y + 1)[..w4],
        &a.row(y + 2)[..w4],
        &a.row(y + 3)[..w4],
    );
    let (b0, b1, b2, b3) = (
        &b.row(y)[..w4],
        &b.row(y + 1)[..w4],
        &b.row(y + 2)[..w4],
        &b.row(y + 3)[..w4],
    );
    for x in 0..w4 {
        let p = [
            <A as From<u32>>::from(a0[x].to_u32()),
            <A as From<u32>>::from(a1[x].to_u32()),
            <A as From<u32>>::from(a2[x].to_u32()),
            <A as From<u32>>::from(a3[x].to_u32()),
        ];
        let q = [
            <A as From<u32>>::from(b0[x].to_u32()),
            <A as From<u32>>::from(b1[x].to_u32()),
            <A as From<u32>>::from(b2[x].to_u32()),
            <A as From<u32>>::from(b3[x].to_u32()),
        ];
        ca[x] = p[0] + p[1] + p[2] + p[3];
        cb[x] = q[0] + q[1] + q[2] + q[3];
        csq[x] = p[0] * p[0]
            + q[0] * q[0]
            + p[1] * p[1]
            + q[1] * q[1]
            + p[2] * p[2]
            + q[2] * q[2]
            + p[3] * p[3]
            + q[3] * q[3];
        ccr[x] = p[0] * q[0] + p[1] * q[1] + p[2] * q[2] + p[3] * q[3];
        if SSE {
            // |p − q|² over the four rows: fits in A
            let d0 = p[0].max(q[0]) - p[0].min(q[0]);
            let d1 = p[1].max(q[1]) - p[1].min(q[1]);
            let d2 = p[2].max(q[2]) - p[2].min(q[2]);
            let d3 = p[3].max(q[3]) - p[3].min(q[3]);
            cd[x] = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
        }
    }
    if SSE {
        for y in y..y + 4 {
            sse += super::psnr::sse_of(&a.row(y)[w4..], &b.row(y)[w4..]);
        }
    }
    if SSE {
        sse += cd.iter().map(|v| (*v).into()).sum::<u64>();
    }
    for (c, o) in [&*ca, &*cb, &*csq, &*ccr]
        .into_iter()
        .zip(out.chunks_exact_mut(bw))
    {
        for (x, o) in o.iter_mut().enumerate() {
            let i = 4 * x;
            *o = c[i] + c[i + 1] + c[i + 2] + c[i + 3];
        }
    }
    sse
}

/// One 8×8 window's SSIM from its sums, in single precision like the filter.
#[inline(always)]
fn window(s1: i64, s2: i64, ss: i64, s12: i64, c1: i64, c2: i64) -> f32 {
    let vars = ss * 64 - s1 * s1 - s2 * s2;
    let covar = s12 * 64 - s1 * s2;
    ((2 * s1 * s2 + c1) as f32 * (2 * covar + c2) as f32)
        / ((s1 * s1 + s2 * s2 + c1) as f32 * (vars + c2) as f32)
}

/// [`window`] in `i32`, for 8-bit sums (the same integers, so the same
/// result).
#[inline(always)]
fn window32(s1: i32, s2: i32, ss: i32, s12: i32, c1: i32, c2: i32) -> f32 {
    let vars = ss * 64 - s1 * s1 - s2 * s2;
    let covar = s12 * 64 - s1 * s2;
    ((2 * s1 * s2 + c1) as f32 * (2 * covar + c2) as f32)
        / ((s1 * s1 + s2 * s2 + c1) as f32 * (vars + c2) as f32)
}

/// FFmpeg-convention SSIM of two equal-size planes at `bit_depth`; `None`
/// if a side is under [`MIN_SIDE`] or the sizes differ.
///
/// Lines of windows are computed in parallel bands; their values are then
/// added in line order, as the filter adds them.
pub fn ssim_ffmpeg<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    bit_depth: u32,
) -> Option<f64> {
    ssim_ffmpeg_at(cpu_level(), a, b, bit_depth)
}

/// [`ssim_ffmpeg`] on a chosen code path (every path gives the same bits).
pub fn ssim_ffmpeg_at<T: Sample>(
    level: CpuLevel,
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    bit_depth: u32,
) -> Option<f64> {
    run::<T, false>(level, a, b, bit_depth).map(|(v, _)| v)
}

/// [`ssim_ffmpeg`] and the plane's exact sum of squared differences (what
/// PSNR needs) in the same pass over the samples.
pub fn ssim_ffmpeg_sse_at<T: Sample>(
    level: CpuLevel,
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    bit_depth: u32,
) -> Option<(f64, u64)> {
    run::<T, true>(level, a, b, bit_depth)
}

fn run<T: Sample, const SSE: bool>(
    level: CpuLevel,
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    bit_depth: u32,
) -> Option<(f64, u64)> {
    if a.width < MIN_SIDE || a.height < MIN_SIDE || (a.width, a.height) != (b.width, b.height) {
        return None;
    }
    let k = Consts::at(bit_depth);
    let bw = a.width / 4;
    let bh = a.height / 4;
    // lines 1..bh (each pairs block rows by-1 and by), in bands
    let per = (bh - 1)
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(16);
    let bands: Vec<(usize, usize)> = (1..bh)
        .step_by(per)
        .map(|b0| (b0, (b0 + per).min(bh)))
        .collect();
    let lines: Vec<(Vec<f64>, u64)> = bands
        .par_iter()
        .map(|&(b0, b1)| match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: these levels are only produced when the CPU reports AVX2.
            CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe {
                lines_avx2::<T, SSE>(a, b, b0, b1, bw, k)
            },
            _ => lines_body::<T, SSE>(a, b, b0, b1, bw, k),
        })
        .collect();
    let total = lines.iter().flat_map(|l| &l.0).fold(0.0f64, |t, l| t + l);
    let mut sse = 0u64;
    if SSE {
        sse = lines.iter().map(|l| l.1).sum();
        // the rows under the last block row (the columns right of the
        // blocks were added with their rows)
        for y in 4 * bh..a.height {
            sse += super::psnr::sse_of(a.row(y), b.row(y));
        }
    }
    Some((total / ((bh - 1) * (bw - 1)) as f64, sse))
}

/// The filter's constants for one plane.
#[derive(Clone, Copy)]
struct Consts {
    c1: i64,
    c2: i64,
    bit_depth: u32,
}

impl Consts {
    /// The filter's integer constants at `bit_depth`, rounded as it
    /// rounds them.
    fn at(bit_depth: u32) -> Consts {
        let max = ((1u64 << bit_depth) - 1) as f64;
        Consts {
            c1: (0.01 * 0.01 * max * max * 64.0 + 0.5) as i64,
            c2: (0.03 * 0.03 * max * max * 64.0 * 63.0 + 0.5) as i64,
            bit_depth,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lines_avx2<T: Sample, const SSE: bool>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    b0: usize,
    b1: usize,
    bw: usize,
    k: Consts,
) -> (Vec<f64>, u64) {
    lines_body::<T, SSE>(a, b, b0, b1, bw, k)
}

/// The values of window lines `b0..b1`, each summed as the filter sums a
/// line: in `f64` at 8 bits, in `f32` above; with `SSE`, also the sum of
/// squared differences over block rows `b0..b1` (and block row 0 for the
/// first band), the columns right of the blocks included.
#[inline(always)]
fn lines_body<T: Sample, const SSE: bool>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    b0: usize,
    b1: usize,
    bw: usize,
    k: Consts,
) -> (Vec<f64>, u64) {
    if k.bit_depth <= 8 {
        lines_in::<T, u32, SSE>(a, b, b0, b1, bw, k)
    } else {
        lines_in::<T, u64, SSE>(a, b, b0, b1, bw, k)
    }
}

thread_local! {
    /// Per-worker scratch of the bands (column and block sums, window
    /// values), taken out for a band and put back after: no allocation
    /// per frame once every worker has run a band.
    static SUMS32: Cell<[Vec<u32>; 3]> = const { Cell::new([Vec::new(), Vec::new(), Vec::new()]) };
    static SUMS64: Cell<[Vec<u64>; 3]> = const { Cell::new([Vec::new(), Vec::new(), Vec::new()]) };
    static VALS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// A type of the block sums (`u32` at 8 bits, `u64` above) and its
/// per-worker scratch.
trait Acc: PrimInt + From<u32> + Into<u64> {
    /// The calling thread's scratch: column sums and the block sums of two
    /// block rows, three buffers apart (one buffer for all three measured
    /// 20 % slower); empty the first time.
    fn take() -> [Vec<Self>; 3];
    /// Puts the scratch back for the thread's next band.
    fn put(v: [Vec<Self>; 3]);
}

/// `Acc` for a sum type and its thread-local scratch.
macro_rules! acc {
    ($($t:ty => $tls:ident),*) => {$(
        impl Acc for $t {
            fn take() -> [Vec<$t>; 3] {
                $tls.take()
            }
            fn put(v: [Vec<$t>; 3]) {
                $tls.set(v)
            }
        }
    )*};
}

acc!(u32 => SUMS32, u64 => SUMS64);

/// [`lines_body`] with sums in `A`.
#[inline(always)]
fn lines_in<T: Sample, A: Acc, const SSE: bool>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    b0: usize,
    b1: usize,
    bw: usize,
    k: Consts,
) -> (Vec<f64>, u64) {
    let [mut cols, mut above, mut below] = A::take();
    for (v, n) in [
        (&mut cols, 20 * bw),
        (&mut above, 4 * bw),
        (&mut below, 4 * bw),
    ] {
        v.clear();
        v.resize(n, A::zero());
    }
    let mut vals = VALS.take();
    vals.clear();
    vals.resize(bw - 1, 0.0);
    let mut sse = 0u64;
    let first = block_row::<T, A, SSE>(a, b, b0 - 1, &mut cols, &mut above);
    if b0 == 1 {
        sse += first;
    }
    let mut out = Vec::with_capacity(b1 - b0);
    for by in b0..b1 {
        sse += block_row::<T, A, SSE>(a, b, by, &mut cols, &mut below);
        let (ua, rest) = above.split_at(bw);
        let (ub, rest) = rest.split_at(bw);
        let (usq, ucr) = rest.split_at(bw);
        let (la, rest) = below.split_at(bw);
        let (lb, rest) = rest.split_at(bw);
        let (lsq, lcr) = rest.split_at(bw);
        // window values first (vectorisable), then summed in order
        for (x, v) in vals.iter_mut().enumerate() {
            let s1 = ua[x] + ua[x + 1] + la[x] + la[x + 1];
            let s2 = ub[x] + ub[x + 1] + lb[x] + lb[x + 1];
            let ss = usq[x] + usq[x + 1] + lsq[x] + lsq[x + 1];
            let s12 = ucr[x] + ucr[x + 1] + lcr[x] + lcr[x + 1];
            let (s1, s2, ss, s12): (u64, u64, u64, u64) =
                (s1.into(), s2.into(), ss.into(), s12.into());
            *v = if k.bit_depth <= 8 {
                // every intermediate fits in i32 at 8 bits (ss·64 < 2^30)
                window32(
                    s1 as i32,
                    s2 as i32,
                    ss as i32,
                    s12 as i32,
                    k.c1 as i32,
                    k.c2 as i32,
                )
            } else {
                window(s1 as i64, s2 as i64, ss as i64, s12 as i64, k.c1, k.c2)
            };
        }
        let mut line64 = 0.0f64;
        let mut line32 = 0.0f32;
        for v in &vals {
            if k.bit_depth > 8 {
                line32 += v;
            } else {
                line64 += *v as f64;
            }
        }
        out.push(if k.bit_depth > 8 {
            line32 as f64
        } else {
            line64
        });
        std::mem::swap(&mut above, &mut below);
    }
    A::put([cols, above, below]);
    VALS.set(vals);
    (out, sse)
}

/// FFmpeg-convention SSIM of one pair of planes and their sum of squared
/// differences, in one pass; `None` as [`plane`].
pub fn plane_sse(main: &Plane, reference: &Plane, bit_depth: u32) -> Option<(f64, u64)> {
    with_views!(main, reference, |a, b| ssim_ffmpeg_sse_at(
        cpu_level(),
        a,
        b,
        bit_depth
    ))
    .flatten()
}

/// FFmpeg-convention SSIM of one pair of planes (main first, as the filter
/// takes them; the value is symmetric).
pub fn plane(main: &Plane, reference: &Plane, bit_depth: u32) -> Option<f64> {
    with_views!(main, reference, |a, b| ssim_ffmpeg(a, b, bit_depth)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T>(d: &[T], w: usize, h: usize) -> PlaneView<'_, T> {
        PlaneView::new(d, w, h).unwrap()
    }

    #[test]
    fn every_code_path_and_band_split_gives_the_same_bits() {
        let mut seed = 11u64;
        let mut next = move |max: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % (max + 1)
        };
        for (w, h) in [(8, 8), (37, 29), (203, 301)] {
            let a8: Vec<u8> = (0..w * h).map(|_| next(255) as u8).collect();
            let b8: Vec<u8> = (0..w * h).map(|_| next(255) as u8).collect();
            let a10: Vec<u16> = (0..w * h).map(|_| next(1023) as u16).collect();
            let b10: Vec<u16> = (0..w * h).map(|_| next(1023) as u16).collect();
            // one sequential pass over all lines is the reference
            let whole = |f: &dyn Fn(usize, usize) -> Vec<f64>| {
                let (bw, bh) = (w / 4, h / 4);
                let t = f(bw, bh).iter().fold(0.0f64, |t, l| t + l);
                t / ((bh - 1) * (bw - 1)) as f64
            };
            let max8 = 255.0f64;
            let k8 = Consts {
                c1: (0.0001 * max8 * max8 * 64.0 + 0.5) as i64,
                c2: (0.0009 * max8 * max8 * 64.0 * 63.0 + 0.5) as i64,
                bit_depth: 8,
            };
            let max10 = 1023.0f64;
            let k10 = Consts {
                c1: (0.0001 * max10 * max10 * 64.0 + 0.5) as i64,
                c2: (0.0009 * max10 * max10 * 64.0 * 63.0 + 0.5) as i64,
                bit_depth: 10,
            };
            let want8 = whole(&|bw, bh| {
                lines_body::<_, false>(v(&a8, w, h), v(&b8, w, h), 1, bh, bw, k8).0
            });
            let want10 = whole(&|bw, bh| {
                lines_body::<_, false>(v(&a10, w, h), v(&b10, w, h), 1, bh, bw, k10).0
            });
            // the plain definition of the sum of squared differences
            let sse = |p: &[u16], q: &[u16]| -> u64 {
                p.iter()
                    .zip(q)
                    .map(|(x, y)| (*x as i64 - *y as i64).pow(2) as u64)
                    .sum()
            };
            let wide = |v: &[u8]| v.iter().map(|x| *x as u16).collect::<Vec<u16>>();
            let sse8 = sse(&wide(&a8), &wide(&b8));
            let sse10 = sse(&a10, &b10);
            for level in crate::cpu::available_levels() {
                let got8 = ssim_ffmpeg_at(level, v(&a8, w, h), v(&b8, w, h), 8);
                let got10 = ssim_ffmpeg_at(level, v(&a10, w, h), v(&b10, w, h), 10);
                assert_eq!(got8, Some(want8), "{w}x{h} {level:?}");
                assert_eq!(got10, Some(want10), "{w}x{h} {level:?}");
                // the fused pass: the same SSIM, and the exact SSE
                let f8 = ssim_ffmpeg_sse_at(level, v(&a8, w, h), v(&b8, w, h), 8);
                let f10 = ssim_ffmpeg_sse_at(level, v(&a10, w, h), v(&b10, w, h), 10);
                assert_eq!(f8, Some((want8, sse8)), "{w}x{h} {level:?}");
                assert_eq!(f10, Some((want10, sse10)), "{w}x{h} {level:?}");
            }
        }
    }

    #[test]
    fn identical_planes_give_one() {
        let a: Vec<u8> = (0..40 * 24).map(|i| (i * 31 % 256) as u8).collect();
        let s = ssim_ffmpeg(v(&a, 40, 24), v(&a, 40, 24), 8).unwrap();
        assert!((s - 1.0).abs() < 1e-6);
    }

    #[test]
    fn constant_planes_match_the_closed_form() {
        // One 8x8 window of constants 100 and 110: s1 = 6400, s2 = 7040.
        let a = vec![100u8; 64];
        let b = vec![110u8; 64];
        let c1 = (0.01f64 * 0.01 * 255.0 * 255.0 * 64.0 + 0.5) as i64;
        let c2 = (0.03f64 * 0.03 * 255.0 * 255.0 * 64.0 * 63.0 + 0.5) as i64;
        assert_eq!((c1, c2), (416, 235963));
        let (s1, s2) = (6400i64, 7040i64);
        let want = ((2 * s1 * s2 + c1) as f64) / ((s1 * s1 + s2 * s2 + c1) as f64);
        let got = ssim_ffmpeg(v(&a, 8, 8), v(&b, 8, 8), 8).unwrap();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn leftover_columns_and_rows_are_ignored() {
        let mut a = vec![50u8; 11 * 9];
        let b = a.clone();
        // change only column 10 and row 8, outside the 8x8 measured area
        for y in 0..9 {
            a[y * 11 + 10] = 255;
        }
        for x in 0..11 {
            a[8 * 11 + x] = 0;
        }
        let s = ssim_ffmpeg(v(&a, 11, 9), v(&b, 11, 9), 8).unwrap();
        assert!((s - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sixteen_bit_extremes_do_not_overflow() {
        let a = vec![0u16; 16 * 16];
        let b = vec![65535u16; 16 * 16];
        let s = ssim_ffmpeg(v(&a, 16, 16), v(&b, 16, 16), 16).unwrap();
        assert!(s.is_finite() && (0.0..1e-3).contains(&s), "{s}");
    }

    #[test]
    fn constants_are_the_filters() {
        // FFmpeg's vf_ssim.c: (int)(.01*.01*max*max*64 + .5) and
        // (int)(.03*.03*max*max*64*63 + .5), worked out by hand
        for (depth, c1, c2) in [
            (8, 416, 235_963),
            (10, 6_698, 3_797_644),
            (12, 107_322, 60_851_438),
        ] {
            let k = Consts::at(depth);
            assert_eq!((k.c1, k.c2, k.bit_depth), (c1, c2, depth));
        }
    }

    #[test]
    fn too_small_is_refused() {
        let a = vec![0u8; 7 * 20];
        assert!(ssim_ffmpeg(v(&a, 7, 20), v(&a, 7, 20), 8).is_none());
        assert!(ssim_ffmpeg(v(&a, 20, 7), v(&a, 20, 7), 8).is_none());
        // eight samples a side is one window: measured
        let b = vec![0u8; 8 * 8];
        assert_eq!(ssim_ffmpeg(v(&b, 8, 8), v(&b, 8, 8), 8), Some(1.0));
        // planes of different sizes are refused, even when both are large
        let c = vec![0u8; 16 * 16];
        let d = vec![0u8; 16 * 12];
        assert!(ssim_ffmpeg(v(&c, 16, 16), v(&d, 16, 12), 8).is_none());
    }
}
