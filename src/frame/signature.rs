//! The luma signature of a picture: an identity hash and whether it looks
//! black, accumulated row by row while the decoder copies the plane (hot in
//! cache), for the frozen and black detectors.

use crate::frame::{Frame, Samples};

/// What the detectors need of a pair, computed by the worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signature {
    /// Hash of the reference luma.
    pub ref_hash: u64,
    /// Hash of the distorted luma.
    pub dist_hash: u64,
    /// The reference looks black.
    pub ref_black: bool,
    /// The distorted picture looks black.
    pub dist_black: bool,
}

/// A luma plane is "black" when its mean is at most this share of peak…
pub const BLACK_MEAN: f64 = 0.125;
/// …and its standard deviation at most this share of peak.
pub const BLACK_STDDEV: f64 = 0.02;

/// Accumulates a luma plane's identity hash and exact sums, row by row
/// (the decoder feeds each row right after copying it, while it is hot in
/// cache).
#[derive(Debug, Clone, Copy)]
pub struct SigAcc {
    h: u64,
    sum: u64,
    sq: u64,
    n: u64,
}

impl Default for SigAcc {
    fn default() -> Self {
        SigAcc {
            h: 0x243f_6a88_85a3_08d3,
            sum: 0,
            sq: 0,
            n: 0,
        }
    }
}

#[inline(always)]
fn mix(h: u64, a: u64, b: u64) -> u64 {
    let h = (h ^ a).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
    (h ^ b).wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(29)
}

impl SigAcc {
    /// Feeds one row of 8-bit samples: per chunk the sum, the sum of
    /// squares and a position-weighted sum (so moved samples change it),
    /// mixed into the hash in order.
    #[inline(always)]
    pub fn feed_u8(&mut self, row: &[u8]) {
        let level = crate::cpu::cpu_level();
        for c in row.chunks(1024) {
            let (s1, s2, sw) = chunk_sums_u8(c, level);
            self.h = mix(self.h, s1 as u64 | ((sw as u64) << 32), s2 as u64);
            self.sum += s1 as u64;
            self.sq += s2 as u64;
        }
        self.n += row.len() as u64;
    }

    /// Feeds one row of 9–16-bit samples.
    #[inline(always)]
    pub fn feed_u16(&mut self, row: &[u16]) {
        for c in row.chunks(1024) {
            let (mut s1, mut s2, mut sw) = (0u64, 0u64, 0u64);
            for (k, x) in c.iter().enumerate() {
                let x = *x as u64;
                s1 += x;
                s2 += x * x;
                sw = sw.wrapping_add(x * (k as u64 + 1));
            }
            self.h = mix(self.h, s1 ^ (sw << 20), s2);
            self.sum += s1;
            self.sq += s2;
        }
        self.n += row.len() as u64;
    }

    /// The hash and whether the plane is black (dark and nearly flat).
    pub fn finish(&self, peak: f64) -> (u64, bool) {
        let n = self.n.max(1) as f64;
        let mean = self.sum as f64 / n;
        let var = (self.sq as f64 / n - mean * mean).max(0.0);
        let black = mean <= BLACK_MEAN * peak && var.sqrt() <= BLACK_STDDEV * peak;
        (self.h, black)
    }
}

/// Σx, Σx² and Σx·(k + 1) over a chunk of at most 1024 samples (k: the
/// position in the chunk). 1024 × 255 × 1024 < 2^32: no sum can overflow.
#[inline(always)]
fn chunk_sums_u8(c: &[u8], level: crate::cpu::CpuLevel) -> (u32, u32, u32) {
    use crate::cpu::CpuLevel;
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: these levels are only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe { chunk_sums_u8_avx2(c) },
        _ => chunk_sums_u8_scalar(c, 0),
    }
}

/// [`chunk_sums_u8`] in plain code, positions counted from `k0`.
#[inline(always)]
fn chunk_sums_u8_scalar(c: &[u8], k0: usize) -> (u32, u32, u32) {
    let (mut s1, mut s2, mut sw) = (0u32, 0u32, 0u32);
    for (k, x) in c.iter().enumerate() {
        let x = *x as u32;
        s1 += x;
        s2 += x * x;
        sw = sw.wrapping_add(x * ((k0 + k) as u32 + 1));
    }
    (s1, s2, sw)
}

/// [`chunk_sums_u8`] with AVX2: 16 samples widened to 16-bit lanes, and
/// the three sums as pairwise 16 × 16 → 32-bit multiply-adds (exact: every
/// product and pair sum is far below 2^31).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunk_sums_u8_avx2(c: &[u8]) -> (u32, u32, u32) {
    use std::arch::x86_64::*;
    debug_assert!(c.len() <= 1024);
    let whole = c.len() / 16 * 16;
    let (mut a1, mut a2, mut aw) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    let ones = _mm256_set1_epi16(1);
    let step = _mm256_set1_epi16(16);
    let mut pos = _mm256_setr_epi16(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    for chunk in c[..whole].chunks_exact(16) {
        // SAFETY: `chunk` holds 16 bytes.
        let x = _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) });
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, x));
        aw = _mm256_add_epi32(aw, _mm256_madd_epi16(x, pos));
        pos = _mm256_add_epi16(pos, step);
    }
    let lanes = |v: __m256i| {
        let mut l = [0u32; 8];
        // SAFETY: `l` holds 32 bytes.
        unsafe { _mm256_storeu_si256(l.as_mut_ptr().cast(), v) };
        l.iter().fold(0u32, |s, x| s.wrapping_add(*x))
    };
    let (t1, t2, tw) = chunk_sums_u8_scalar(&c[whole..], whole);
    (
        lanes(a1).wrapping_add(t1),
        lanes(a2).wrapping_add(t2),
        lanes(aw).wrapping_add(tw),
    )
}

fn luma_facts(f: &Frame) -> (u64, bool) {
    if let Some(s) = f.luma_sig {
        return s;
    }
    let Some(p) = f.planes.first() else {
        return (0, false);
    };
    let mut acc = SigAcc::default();
    match &p.samples {
        Samples::U8(v) => v.chunks(p.width.max(1)).for_each(|r| acc.feed_u8(r)),
        Samples::U16(v) => v.chunks(p.width.max(1)).for_each(|r| acc.feed_u16(r)),
    }
    acc.finish(f.peak())
}

impl Signature {
    /// The signature of a pair.
    pub fn of(reference: &Frame, distorted: &Frame) -> Self {
        let (ref_hash, ref_black) = luma_facts(reference);
        let (dist_hash, dist_black) = luma_facts(distorted);
        Signature {
            ref_hash,
            dist_hash,
            ref_black,
            dist_black,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{CpuLevel, available_levels};

    #[test]
    fn chunk_sums_are_the_same_on_every_code_path() {
        let mut seed = 0x9e37_79b9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for len in [0usize, 1, 15, 16, 17, 31, 100, 1023, 1024] {
            for fill in [None, Some(0u8), Some(255u8)] {
                let c: Vec<u8> = (0..len)
                    .map(|_| fill.unwrap_or_else(|| next() as u8))
                    .collect();
                let want = chunk_sums_u8_scalar(&c, 0);
                for level in available_levels() {
                    assert_eq!(chunk_sums_u8(&c, level), want, "len {len} {level:?}");
                }
                assert_eq!(chunk_sums_u8(&c, CpuLevel::Scalar), want);
            }
        }
        // the extremes: every sum at its largest
        let c = vec![255u8; 1024];
        let (s1, s2, sw) = chunk_sums_u8_scalar(&c, 0);
        assert_eq!(
            (s1, s2, sw),
            (255 * 1024, 255 * 255 * 1024, 255 * 1024 * 1025 / 2)
        );
    }
}
