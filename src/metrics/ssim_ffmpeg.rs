//! SSIM in FFmpeg's `ssim` filter convention: unweighted 8×8 windows on a
//! 4-sample grid, built from sums over 4×4 blocks; integer constants
//! `c1 = round(0.01²·max²·64)`, `c2 = round(0.03²·max²·64·63)`; each
//! window's value in single precision as the filter computes it; the
//! `width % 4` and `height % 4` leftover samples are not measured; the plane
//! value is the mean over `(h/4 − 1)·(w/4 − 1)` windows.

use crate::frame::{Plane, PlaneView, Sample};
use crate::with_views;

/// Smallest plane side the convention can measure (two 4×4 blocks).
pub const MIN_SIDE: usize = 8;

/// Sums over one 4×4 block: Σa, Σb, Σ(a²+b²), Σab.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BlockSums {
    a: u64,
    b: u64,
    squares: u64,
    cross: u64,
}

fn block_row<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    by: usize,
    out: &mut [BlockSums],
) {
    for s in out.iter_mut() {
        *s = BlockSums::default();
    }
    for y in 4 * by..4 * by + 4 {
        let ra = a.row(y);
        let rb = b.row(y);
        for (bx, s) in out.iter_mut().enumerate() {
            for x in 4 * bx..4 * bx + 4 {
                let p = ra[x].to_u32() as u64;
                let q = rb[x].to_u32() as u64;
                s.a += p;
                s.b += q;
                s.squares += p * p + q * q;
                s.cross += p * q;
            }
        }
    }
}

/// One 8×8 window's SSIM from its sums, in single precision like the filter.
fn window(s1: i64, s2: i64, ss: i64, s12: i64, c1: i64, c2: i64) -> f32 {
    let vars = ss * 64 - s1 * s1 - s2 * s2;
    let covar = s12 * 64 - s1 * s2;
    ((2 * s1 * s2 + c1) as f32 * (2 * covar + c2) as f32)
        / ((s1 * s1 + s2 * s2 + c1) as f32 * (vars + c2) as f32)
}

/// FFmpeg-convention SSIM of two equal-size planes at `bit_depth`; `None`
/// if a side is under [`MIN_SIDE`] or the sizes differ.
pub fn ssim_ffmpeg<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    bit_depth: u32,
) -> Option<f64> {
    if a.width < MIN_SIDE || a.height < MIN_SIDE || (a.width, a.height) != (b.width, b.height) {
        return None;
    }
    let max = ((1u64 << bit_depth) - 1) as f64;
    let c1 = (0.01 * 0.01 * max * max * 64.0 + 0.5) as i64;
    let c2 = (0.03 * 0.03 * max * max * 64.0 * 63.0 + 0.5) as i64;
    let bw = a.width / 4;
    let bh = a.height / 4;
    let mut above = vec![BlockSums::default(); bw];
    let mut below = vec![BlockSums::default(); bw];
    block_row(a, b, 0, &mut above);
    let mut total = 0.0f64;
    for by in 1..bh {
        block_row(a, b, by, &mut below);
        // The filter sums a line of windows in double at 8 bit and in
        // single precision above 8 bit.
        let mut line64 = 0.0f64;
        let mut line32 = 0.0f32;
        for x in 0..bw - 1 {
            let q = [above[x], above[x + 1], below[x], below[x + 1]];
            let sum = |f: fn(&BlockSums) -> u64| q.iter().map(f).sum::<u64>() as i64;
            let v = window(
                sum(|s| s.a),
                sum(|s| s.b),
                sum(|s| s.squares),
                sum(|s| s.cross),
                c1,
                c2,
            );
            if bit_depth > 8 {
                line32 += v;
            } else {
                line64 += v as f64;
            }
        }
        total += if bit_depth > 8 { line32 as f64 } else { line64 };
        std::mem::swap(&mut above, &mut below);
    }
    Some(total / ((bh - 1) * (bw - 1)) as f64)
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
    fn too_small_is_refused() {
        let a = vec![0u8; 7 * 20];
        assert!(ssim_ffmpeg(v(&a, 7, 20), v(&a, 7, 20), 8).is_none());
    }
}
