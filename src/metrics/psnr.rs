//! PSNR and MSE, as FFmpeg's `psnr` filter computes them: exact integer sums
//! of squared differences per plane, `mse_avg` weighted by plane size, and
//! PSNR = 10·log10(peak²/mse), capped so identical planes give a finite value.

use crate::cpu::{CpuLevel, cpu_level};
use crate::frame::{PlaneView, Sample};

/// Exact sum of squared differences of two planes of equal size.
///
/// 8-bit rows accumulate in `u32` over chunks small enough never to overflow
/// and then in `u64`; 16-bit differences are squared in `u64`.
pub fn sse<T: Sample>(a: PlaneView<'_, T>, b: PlaneView<'_, T>) -> u64 {
    debug_assert_eq!((a.width, a.height), (b.width, b.height));
    sse_at(cpu_level(), a, b)
}

/// [`sse`] on a chosen code path (integer sums: every path gives the same
/// result).
pub fn sse_at<T: Sample>(level: CpuLevel, a: PlaneView<'_, T>, b: PlaneView<'_, T>) -> u64 {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: these levels are only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe {
            sse_avx2(a.data, b.data)
        },
        _ => sse_of(a.data, b.data),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sse_avx2<T: Sample>(a: &[T], b: &[T]) -> u64 {
    sse_of(a, b)
}

/// Exact sum of squared differences of two sample slices (the shorter
/// one's length), in the caller's code path.
#[inline(always)]
pub fn sse_of<T: Sample>(a: &[T], b: &[T]) -> u64 {
    debug_assert_eq!(a.len(), b.len());
    // (2^16-1)^2 * 65536 would overflow u64 only past 4e9 rows; chunks keep
    // the u32 path exact for 8-bit data: 4096 * 255^2 < 2^32.
    let eight_bit = std::mem::size_of::<T>() == 1;
    let mut total = 0u64;
    for (i, (ca, cb)) in a.chunks(4096).zip(b.chunks(4096)).enumerate() {
        // two chunks ahead, while this one is summed
        let ahead = (i + 2) * 4096;
        if ahead < a.len().min(b.len()) {
            let end = (ahead + 4096).min(a.len()).min(b.len());
            crate::cpu::prefetch(&a[ahead..end]);
            crate::cpu::prefetch(&b[ahead..end]);
        }
        if eight_bit {
            let mut acc = 0u32;
            for (x, y) in ca.iter().zip(cb) {
                // 16-bit differences squared and summed in pairs (pmaddwd)
                let d = x.to_u32() as i32 - y.to_u32() as i32;
                acc += (d * d) as u32;
            }
            total += acc as u64;
        } else {
            let mut acc = 0u64;
            for (x, y) in ca.iter().zip(cb) {
                let d = x.to_u32().abs_diff(y.to_u32()) as u64;
                acc += d * d;
            }
            total += acc;
        }
    }
    total
}

/// PSNR in dB of a mean squared error at `peak`, capped at `cap`; never
/// infinite or NaN (an MSE of zero gives the cap).
pub fn psnr_from_mse(mse: f64, peak: f64, cap: f64) -> f64 {
    if mse <= 0.0 || !mse.is_finite() {
        return cap;
    }
    let db = 10.0 * (peak * peak / mse).log10();
    if db.is_finite() { db.min(cap) } else { cap }
}

/// MSE of each plane and the size-weighted average, from per-plane SSE.
pub fn plane_mse(sse: &[u64], layout_dims: &[(usize, usize)]) -> (Vec<f64>, f64) {
    let mut mse = Vec::with_capacity(sse.len());
    let mut total_sse = 0f64;
    let mut total_n = 0usize;
    for (s, (w, h)) in sse.iter().zip(layout_dims) {
        let n = w * h;
        mse.push(*s as f64 / n.max(1) as f64);
        total_sse += *s as f64;
        total_n += n;
    }
    (mse, total_sse / total_n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T>(d: &[T], w: usize, h: usize) -> PlaneView<'_, T> {
        PlaneView::new(d, w, h).unwrap()
    }

    #[test]
    fn sse_is_exact_at_the_largest_differences() {
        // 16-bit samples 0 against 65535 over more than one 4096-sample
        // chunk: every square is 2^32 - 2^17 + 1, past 32-bit sums
        let n = 5000;
        let (a, b) = (vec![0u16; n], vec![65535u16; n]);
        let want = n as u64 * 65535 * 65535;
        // 8-bit: 0 against 255, also over several chunks
        let (c, d) = (vec![0u8; 3 * 4096 + 7], vec![255u8; 3 * 4096 + 7]);
        let want8 = c.len() as u64 * 255 * 255;
        for level in crate::cpu::available_levels() {
            assert_eq!(
                sse_at(level, v(&a, 100, 50), v(&b, 100, 50)),
                want,
                "{level:?}"
            );
            assert_eq!(
                sse_at(level, v(&c, c.len(), 1), v(&d, d.len(), 1)),
                want8,
                "{level:?}"
            );
        }
    }

    #[test]
    fn every_code_path_gives_the_same_sse() {
        let mut seed = 5u64;
        let mut next = move |max: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % (max + 1)
        };
        for (w, h) in [(1, 1), (37, 29), (4099, 3)] {
            let a8: Vec<u8> = (0..w * h).map(|_| next(255) as u8).collect();
            let b8: Vec<u8> = (0..w * h).map(|_| next(255) as u8).collect();
            let a16: Vec<u16> = (0..w * h).map(|_| next(65535) as u16).collect();
            let b16: Vec<u16> = (0..w * h).map(|_| next(65535) as u16).collect();
            // the plain definition, in u64
            let want8: u64 = a8
                .iter()
                .zip(&b8)
                .map(|(x, y)| (*x as i64 - *y as i64).pow(2) as u64)
                .sum();
            let want16: u64 = a16
                .iter()
                .zip(&b16)
                .map(|(x, y)| (*x as i64 - *y as i64).pow(2) as u64)
                .sum();
            for level in crate::cpu::available_levels() {
                assert_eq!(
                    sse_at(level, v(&a8, w, h), v(&b8, w, h)),
                    want8,
                    "{level:?}"
                );
                assert_eq!(
                    sse_at(level, v(&a16, w, h), v(&b16, w, h)),
                    want16,
                    "{level:?}"
                );
            }
        }
    }

    #[test]
    fn constant_planes_have_zero_sse() {
        let a = vec![77u8; 30];
        assert_eq!(sse(v(&a, 6, 5), v(&a, 6, 5)), 0);
    }

    #[test]
    fn one_differing_pixel() {
        let a = vec![10u8; 12];
        let mut b = a.clone();
        b[7] = 13;
        assert_eq!(sse(v(&a, 4, 3), v(&b, 4, 3)), 9);
        let (mse, avg) = plane_mse(&[9], &[(4, 3)]);
        assert_eq!(mse, vec![0.75]);
        assert_eq!(avg, 0.75);
        // 10*log10(255^2/0.75) = 49.38019...
        let p = psnr_from_mse(0.75, 255.0, 60.0);
        assert!((p - 10.0 * (65025.0f64 / 0.75).log10()).abs() < 1e-12);
        assert!((p - 49.38019).abs() < 1e-4);
    }

    #[test]
    fn maximal_error_8bit_is_zero_db() {
        let a = vec![0u8; 10_000];
        let b = vec![255u8; 10_000];
        let s = sse(v(&a, 100, 100), v(&b, 100, 100));
        assert_eq!(s, 65025 * 10_000);
        assert_eq!(psnr_from_mse(65025.0, 255.0, 60.0), 0.0);
    }

    #[test]
    fn sixteen_bit_extremes_do_not_overflow() {
        let n = 4096 * 3 + 7;
        let a = vec![0u16; n];
        let b = vec![65535u16; n];
        let s = sse(v(&a, n, 1), v(&b, n, 1));
        assert_eq!(s, 65535u64 * 65535 * n as u64);
        assert_eq!(psnr_from_mse(65535.0 * 65535.0, 65535.0, 108.0), 0.0);
    }

    #[test]
    fn identical_planes_give_the_cap_not_inf() {
        assert_eq!(psnr_from_mse(0.0, 255.0, 60.0), 60.0);
        assert_eq!(psnr_from_mse(0.0, 1023.0, 72.0), 72.0);
        // a tiny error above the cap is capped too
        assert_eq!(psnr_from_mse(1e-9, 255.0, 60.0), 60.0);
    }
}
