//! The single-precision Gaussian SSIM kernel, for data up to 10 bits.
//!
//! Samples are centred at half the peak so the variance terms keep their
//! precision in `f32`. Only four moments are filtered: x, y, x² + y² and xy
//! (SSIM needs σx² + σy², never the two apart). A band of output rows is
//! computed in strips of `STRIP` columns: each input row of the strip is
//! converted once and filtered horizontally into a ring of 11 rows, and each
//! output row is one fused pass: the vertical filter of the four moments,
//! the SSIM (and, when asked, cs) map and its sum, a vector at a time,
//! without writing the map anywhere.
//!
//! The algorithm is written once over `Vf`, a vector of 8 or 16 `f32`
//! lanes, and compiled for each code path: portable (SSE2 on x86-64), AVX2,
//! AVX2 with fused multiply-adds in the two filters, and AVX-512 (16 lanes,
//! fused). Every path runs the same operations in the same order, so the
//! portable and AVX2 paths give identical bits, and each fused path gives
//! identical bits to portable code with [`f32::mul_add`] on as many lanes
//! (what the tests compare them with).

use std::cell::Cell;

use crate::cpu::CpuLevel;
use crate::frame::PlaneView;

/// Side of the Gaussian window, in samples.
pub const WINDOW: usize = 11;
const MOMENTS: usize = 4;
/// Output columns per strip: the strip's ring (2 × 11 slots of the four
/// moments, 45 KiB) about fills a 48 KiB L1 data cache and stays in L2.
/// Measured on the whole command: 32 → 980 ms, 64 → 849, 128 → 755–794,
/// 256 → 818, 512 → 925.
const STRIP: usize = 128;

/// Sample types the kernel reads, each converted to centred `f32`.
pub trait Centre: Copy {
    /// `dst[i] = src[i] as f32 - offset` for every sample of the row.
    fn centre(src: &[Self], offset: f32, dst: &mut [f32]);
    /// Exact sum of squared differences of two rows of integer samples
    /// (PSNR's, fused into the kernel's pass); 0 for other types, where it
    /// is never asked.
    fn sse(a: &[Self], b: &[Self]) -> u64;
}

/// `Centre` for an integer sample type: PSNR's exact row sums.
macro_rules! integer_centre {
    ($($t:ty),*) => {$(
        impl Centre for $t {
            #[inline(always)]
            fn sse(a: &[$t], b: &[$t]) -> u64 {
                super::psnr::sse_of(a, b)
            }
            #[inline(always)]
            fn centre(src: &[$t], offset: f32, dst: &mut [f32]) {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = *s as f32 - offset;
                }
            }
        }
    )*};
}

integer_centre!(u8, u16);

impl Centre for f64 {
    #[inline(always)]
    fn sse(_: &[f64], _: &[f64]) -> u64 {
        0
    }
    #[inline(always)]
    fn centre(src: &[f64], offset: f32, dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s as f32 - offset;
        }
    }
}

/// Constants of one plane's computation.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// The 11 Gaussian taps.
    pub taps: [f32; WINDOW],
    /// SSIM's C1.
    pub c1: f32,
    /// SSIM's C2.
    pub c2: f32,
    /// Subtracted from every sample (and added back to the means).
    pub offset: f32,
    /// Whether to sum the cs map too (MS-SSIM needs it; SSIM does not).
    pub want_cs: bool,
    /// Whether to also sum the squared differences of the band's own
    /// samples (PSNR's, while the rows are in cache).
    pub want_sse: bool,
}

/// What a band of the kernel sums.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BandSums {
    /// The SSIM map.
    pub ssim: f64,
    /// The cs map (zero unless asked).
    pub cs: f64,
    /// Squared differences of the band's input rows (zero unless asked):
    /// rows `y0..y1`, and the last band also the 10 rows below the valid
    /// region, so the bands of a plane count each sample once.
    pub sse: u64,
}

/// A vector of `N` `f32` lanes (8 or 16).
///
/// # Safety
/// The methods are `unsafe` so that the SIMD implementations can carry
/// their target features (and be inlined into the kernels compiled for
/// them): they may only be called on CPUs that have those features.
trait Vf: Copy {
    /// Lanes.
    const N: usize;
    /// Every lane `v`.
    unsafe fn splat(v: f32) -> Self;
    /// `s[i..i + N]`.
    unsafe fn load(s: &[f32], i: usize) -> Self;
    /// Writes the lanes to `s[i..i + N]`.
    unsafe fn store(self, s: &mut [f32], i: usize);
    /// Lane-wise sum.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane-wise difference.
    unsafe fn sub(self, o: Self) -> Self;
    /// Lane-wise product.
    unsafe fn mul(self, o: Self) -> Self;
    /// Lane-wise quotient.
    unsafe fn div(self, o: Self) -> Self;
    /// `self * b + c`, fused on the FMA paths, two roundings elsewhere.
    unsafe fn madd(self, b: Self, c: Self) -> Self;
    /// The lanes, in the first `N` places.
    unsafe fn lanes(self) -> [f32; MAX_LANES];
    /// Whether the band's map sums are kept per lane in `f64` across rows
    /// (each row's vector added lane by lane) rather than summed over the
    /// lanes at the end of each row. Per lane is faster with 16 lanes and
    /// slower for the portable 8-lane code; a path and the portable code
    /// it is compared with bit for bit choose alike.
    const LANE_SUMS: bool = false;
    /// The horizontal filter of the outputs at `i`: [`filter`] over
    /// `s[i + k..]`, k = 0..=10. `s` holds `i + 2N` floats.
    #[inline(always)]
    unsafe fn hfilter(t: &[Self; 6], s: &[f32], i: usize) -> Self {
        // SAFETY: the caller's guarantee.
        unsafe { filter(t, s, i, 1) }
    }
}

/// The most lanes a [`Vf`] has.
const MAX_LANES: usize = 16;

/// The portable vector: an array the compiler vectorises as it can;
/// `FUSED` makes `madd` a fused multiply-add ([`f32::mul_add`]).
#[derive(Clone, Copy)]
struct Portable<const L: usize, const FUSED: bool>([f32; L]);

impl<const L: usize, const FUSED: bool> Portable<L, FUSED> {
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x = f(*x, y);
        }
        Portable(r)
    }
}

impl<const L: usize, const FUSED: bool> Vf for Portable<L, FUSED> {
    const N: usize = L;
    /// As the AVX-512 path, which has 16 lanes.
    const LANE_SUMS: bool = L == 16;
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Portable([v; L])
    }
    #[inline(always)]
    unsafe fn load(s: &[f32], i: usize) -> Self {
        let mut r = [0.0; L];
        r.copy_from_slice(&s[i..i + L]);
        Portable(r)
    }
    #[inline(always)]
    unsafe fn store(self, s: &mut [f32], i: usize) {
        s[i..i + L].copy_from_slice(&self.0);
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        self.zip(o, |a, b| a / b)
    }
    #[inline(always)]
    unsafe fn madd(self, b: Self, c: Self) -> Self {
        let mut r = self.0;
        for ((x, y), z) in r.iter_mut().zip(b.0).zip(c.0) {
            *x = if FUSED { x.mul_add(y, z) } else { *x * y + z };
        }
        Portable(r)
    }
    #[inline(always)]
    unsafe fn lanes(self) -> [f32; MAX_LANES] {
        let mut r = [0.0; MAX_LANES];
        r[..L].copy_from_slice(&self.0);
        r
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{MAX_LANES, Vf};
    use super::{WINDOW, filter_regs};
    use std::arch::x86_64::*;

    /// Implements [`Vf`] on a SIMD register type for the given target
    /// features, from its intrinsics; `$madd` is the multiply-add.
    macro_rules! simd_vector {
        ($name:ident, $reg:ty, $n:literal, $features:literal,
         $set1:ident, $loadu:ident, $storeu:ident, $add:ident, $sub:ident, $mul:ident, $div:ident,
         |$a:ident, $b:ident, $c:ident| $madd:block $($extra:item)*) => {
            /// `f32` lanes in one SIMD register.
            #[derive(Clone, Copy)]
            pub(super) struct $name($reg);

            impl Vf for $name {
                const N: usize = $n;
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn splat(v: f32) -> Self {
                    $name($set1(v))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn load(s: &[f32], i: usize) -> Self {
                    let s = &s[i..i + $n];
                    // SAFETY: `s` holds N floats.
                    $name(unsafe { $loadu(s.as_ptr()) })
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn store(self, s: &mut [f32], i: usize) {
                    let s = &mut s[i..i + $n];
                    // SAFETY: `s` holds N floats.
                    unsafe { $storeu(s.as_mut_ptr(), self.0) }
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn add(self, o: Self) -> Self {
                    $name($add(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn sub(self, o: Self) -> Self {
                    $name($sub(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn mul(self, o: Self) -> Self {
                    $name($mul(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn div(self, o: Self) -> Self {
                    $name($div(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn madd(self, b: Self, c: Self) -> Self {
                    let ($a, $b, $c) = (self.0, b.0, c.0);
                    $name($madd)
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn lanes(self) -> [f32; MAX_LANES] {
                    let mut r = [0.0; MAX_LANES];
                    // SAFETY: `r` holds at least N floats.
                    unsafe { $storeu(r.as_mut_ptr(), self.0) };
                    r
                }
                $($extra)*
            }
        };
    }

    simd_vector!(
        Avx,
        __m256,
        8,
        "avx2",
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_add_ps,
        _mm256_sub_ps,
        _mm256_mul_ps,
        _mm256_div_ps,
        |a, b, c| { _mm256_add_ps(_mm256_mul_ps(a, b), c) }
    );
    simd_vector!(
        AvxFma,
        __m256,
        8,
        "avx2,fma",
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_add_ps,
        _mm256_sub_ps,
        _mm256_mul_ps,
        _mm256_div_ps,
        |a, b, c| { _mm256_fmadd_ps(a, b, c) }
    );
    simd_vector!(
        Avx512,
        __m512,
        16,
        "avx512f,avx2,fma",
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_add_ps,
        _mm512_sub_ps,
        _mm512_mul_ps,
        _mm512_div_ps,
        |a, b, c| { _mm512_fmadd_ps(a, b, c) }
        const LANE_SUMS: bool = true;
        /// The 11 shifted inputs from two aligned loads and ten lane
        /// rotations: an unaligned 64-byte load straddles two cache lines,
        /// which costs more.
        #[inline]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn hfilter(t: &[Self; 6], s: &[f32], i: usize) -> Self {
            // SAFETY: `load` checks the bounds; the rest are register
            // operations this path's features provide.
            unsafe {
                let lo = _mm512_castps_si512(Self::load(s, i).0);
                let hi = _mm512_castps_si512(Self::load(s, i + 16).0);
                let r = |v: __m512i| Avx512(_mm512_castsi512_ps(v));
                let w: [Self; WINDOW] = [
                    r(lo),
                    r(_mm512_alignr_epi32::<1>(hi, lo)),
                    r(_mm512_alignr_epi32::<2>(hi, lo)),
                    r(_mm512_alignr_epi32::<3>(hi, lo)),
                    r(_mm512_alignr_epi32::<4>(hi, lo)),
                    r(_mm512_alignr_epi32::<5>(hi, lo)),
                    r(_mm512_alignr_epi32::<6>(hi, lo)),
                    r(_mm512_alignr_epi32::<7>(hi, lo)),
                    r(_mm512_alignr_epi32::<8>(hi, lo)),
                    r(_mm512_alignr_epi32::<9>(hi, lo)),
                    r(_mm512_alignr_epi32::<10>(hi, lo)),
                ];
                filter_regs(t, &w)
            }
        }
    );
}

thread_local! {
    /// Per-worker scratch: taken out for a band and put back after (not
    /// borrowed in a closure, which would compile the kernel outside the
    /// caller's target features).
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Sums of the SSIM map and of the cs map (zero unless `p.want_cs`) over
/// output rows `y0..y1` (valid-region coordinates), on code path `level`.
pub fn band_sum<T: Centre>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
    level: CpuLevel,
) -> (f64, f64) {
    let s = band_sums(a, b, y0, y1, p, level);
    (s.ssim, s.cs)
}

/// [`band_sum`], with the band's squared differences when `p.want_sse`.
pub fn band_sums<T: Centre>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
    level: CpuLevel,
) -> BandSums {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only produced when the CPU reports AVX2.
        CpuLevel::Avx2 => unsafe { band_avx2(a, b, y0, y1, p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` is only produced when the CPU reports AVX2 and
        // FMA.
        CpuLevel::Avx2Fma => unsafe { band_avx2_fma(a, b, y0, y1, p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx512` is only produced when the CPU reports AVX-512F,
        // AVX2 and FMA.
        CpuLevel::Avx512 => unsafe { band_avx512(a, b, y0, y1, p) },
        // SAFETY: the portable vector needs no CPU feature.
        _ => unsafe { band_cs::<T, Portable<8, false>>(a, b, y0, y1, p) },
    }
}

/// The arithmetic of an FMA path with `lanes` lanes (8: AVX2 + FMA, 16:
/// AVX-512) in portable code (software `mul_add`, slow): what the tests
/// compare those paths with, bit for bit.
pub fn band_sum_fused_reference<T: Centre>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
    lanes: usize,
) -> (f64, f64) {
    // SAFETY: the portable vector needs no CPU feature.
    let s = unsafe {
        if lanes == 16 {
            band_cs::<T, Portable<16, true>>(a, b, y0, y1, p)
        } else {
            band_cs::<T, Portable<8, true>>(a, b, y0, y1, p)
        }
    };
    (s.ssim, s.cs)
}

/// A band on one SIMD code path: `band_cs` compiled for `$features`.
macro_rules! simd_band {
    ($name:ident, $features:literal, $v:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $name<T: Centre>(
            a: PlaneView<'_, T>,
            b: PlaneView<'_, T>,
            y0: usize,
            y1: usize,
            p: &Params,
        ) -> BandSums {
            // SAFETY: compiled for `$features`, which the caller checked.
            unsafe { band_cs::<T, $v>(a, b, y0, y1, p) }
        }
    };
}

simd_band!(band_avx2, "avx2", avx::Avx);
simd_band!(band_avx2_fma, "avx2,fma", avx::AvxFma);
simd_band!(band_avx512, "avx512f,avx2,fma", avx::Avx512);

/// Symmetric 11-tap filter: one vector of outputs from the vectors at
/// `s[base + k * stride..]`, k = 0..=10. No closures here or in `band`:
/// everything is inlined into the function compiled for `V`'s features.
///
/// # Safety
/// `V`'s target features must be present.
#[inline(always)]
unsafe fn filter<V: Vf>(t: &[V; 6], s: &[f32], base: usize, stride: usize) -> V {
    // SAFETY: the caller's guarantee.
    unsafe {
        let at = |k: usize| base + k * stride;
        let mut acc = t[5].mul(V::load(s, at(5)));
        acc = t[4].madd(V::load(s, at(4)).add(V::load(s, at(6))), acc);
        acc = t[3].madd(V::load(s, at(3)).add(V::load(s, at(7))), acc);
        acc = t[2].madd(V::load(s, at(2)).add(V::load(s, at(8))), acc);
        acc = t[1].madd(V::load(s, at(1)).add(V::load(s, at(9))), acc);
        t[0].madd(V::load(s, at(0)).add(V::load(s, at(10))), acc)
    }
}

/// [`filter`] over a window of vectors already loaded.
///
/// # Safety
/// `V`'s target features must be present.
#[inline(always)]
unsafe fn filter_regs<V: Vf>(t: &[V; 6], w: &[V; WINDOW]) -> V {
    // SAFETY: the caller's guarantee.
    unsafe {
        let mut acc = t[5].mul(w[5]);
        acc = t[4].madd(w[4].add(w[6]), acc);
        acc = t[3].madd(w[3].add(w[7]), acc);
        acc = t[2].madd(w[2].add(w[8]), acc);
        acc = t[1].madd(w[1].add(w[9]), acc);
        t[0].madd(w[0].add(w[10]), acc)
    }
}

/// [`band`] with the cs map or without it.
///
/// # Safety
/// `V`'s target features must be present.
#[inline(always)]
unsafe fn band_cs<T: Centre, V: Vf>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
) -> BandSums {
    // SAFETY: the caller's guarantee.
    unsafe {
        if p.want_cs {
            band::<T, V, true>(a, b, y0, y1, p)
        } else {
            band::<T, V, false>(a, b, y0, y1, p)
        }
    }
}

/// The kernel over one band of output rows, strip by strip of [`STRIP`]
/// output columns so the strip's ring stays in the L1 cache.
///
/// # Safety
/// `V`'s target features must be present.
#[inline(always)]
unsafe fn band<T: Centre, V: Vf, const CS: bool>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
) -> BandSums {
    // SAFETY: the caller's guarantee covers every `V` method called here.
    unsafe {
        let ow = a.width - (WINDOW - 1);
        // source floats per moment: a strip's inputs, padded with zeros to
        // whole 64-byte lines so each moment's row starts on one
        let sw = (STRIP + WINDOW - 1).next_multiple_of(MAX_LANES);
        let t = &p.taps;
        let taps: [V; 6] = [
            V::splat(t[0]),
            V::splat(t[1]),
            V::splat(t[2]),
            V::splat(t[3]),
            V::splat(t[4]),
            V::splat(t[5]),
        ];
        let (c1, c2, two, offset) = (
            V::splat(p.c1),
            V::splat(p.c2),
            V::splat(2.0),
            V::splat(p.offset),
        );
        let lanes = V::N;
        // ring floats per vector of columns: 2 × 11 slots of the moments
        let block_len = 2 * WINDOW * MOMENTS * lanes;
        let mut buf = SCRATCH.take();
        let need = MOMENTS * sw + STRIP / lanes * block_len;
        // room to start the work area on a 64-byte line: the ring's vectors
        // and the sources' rows are then whole lines, and no vector load of
        // the vertical filter straddles two
        if buf.len() < need + MAX_LANES {
            buf.resize(need + MAX_LANES, 0.0);
        }
        let start = buf.as_ptr().align_offset(64).min(MAX_LANES);
        let (src, ring_all) = buf[start..start + need].split_at_mut(MOMENTS * sw);
        let mut total = (0.0f64, 0.0f64);
        let mut sse = 0u64;
        // the band's own input rows for the squared differences
        let last_band = y1 + WINDOW - 1 == a.height;
        // per-lane sums of whole vectors, over every row of the band
        let mut lane_s = [0.0f64; MAX_LANES];
        let mut lane_c = [0.0f64; MAX_LANES];
        for s0 in (0..ow).step_by(STRIP) {
            let n_out = (ow - s0).min(STRIP);
            let n_in = n_out + WINDOW - 1;
            let ring = &mut ring_all[..n_out.div_ceil(lanes) * block_len];
            for r in y0..y1 + WINDOW - 1 {
                let (sx, rest) = src.split_at_mut(sw);
                let (sy, rest) = rest.split_at_mut(sw);
                let (sq, sp) = rest.split_at_mut(sw);
                // the strip's inputs a few rows ahead (strided reads the
                // hardware prefetchers do not follow)
                let ahead = r + PREFETCH_ROWS;
                if ahead < a.height {
                    crate::cpu::prefetch(&a.row(ahead)[s0..s0 + n_in]);
                    crate::cpu::prefetch(&b.row(ahead)[s0..s0 + n_in]);
                }
                let (ra, rb) = (a.row(r), b.row(r));
                if p.want_sse && (r < y1 || last_band) {
                    // the strip's own columns; the last strip also the 10
                    // past the valid region
                    let end = if s0 + n_out == ow { n_in } else { n_out };
                    sse += T::sse(&ra[s0..s0 + end], &rb[s0..s0 + end]);
                }
                if s0 + sw <= a.width {
                    // a whole staging row of inputs (those past n_in are
                    // only read by lanes past the valid outputs, which are
                    // not summed): a fixed length, no remainder loop
                    T::centre(&ra[s0..s0 + sw], p.offset, &mut sx[..sw]);
                    T::centre(&rb[s0..s0 + sw], p.offset, &mut sy[..sw]);
                } else {
                    T::centre(&ra[s0..s0 + n_in], p.offset, &mut sx[..n_in]);
                    T::centre(&rb[s0..s0 + n_in], p.offset, &mut sy[..n_in]);
                    // zeros past the plane's edge
                    sx[n_in..].fill(0.0);
                    sy[n_in..].fill(0.0);
                }
                for i in 0..sw {
                    let (x, y) = (sx[i], sy[i]);
                    sq[i] = x * x + y * y;
                    sp[i] = x * y;
                }
                // each filtered row goes to slot j and j + 11, so the 11
                // rows of any window are consecutive slots
                let slot = (r - y0) % WINDOW;
                let sources = [&*sx, &*sy, &*sq, &*sp];
                for (c, block) in ring.chunks_exact_mut(block_len).enumerate() {
                    let i = c * lanes;
                    for (m, s) in sources.iter().enumerate() {
                        let v = V::hfilter(&taps, s, i);
                        v.store(block, (slot * MOMENTS + m) * lanes);
                        v.store(block, ((slot + WINDOW) * MOMENTS + m) * lanes);
                    }
                }
                if r + 1 < y0 + WINDOW {
                    continue;
                }
                // output row whose window ends at input row r
                let first = (r + 1 - WINDOW - y0) % WINDOW;
                let mut acc_s = V::splat(0.0);
                let mut acc_c = V::splat(0.0);
                let mut tail = (0.0f64, 0.0f64);
                for (c, block) in ring.chunks_exact(block_len).enumerate() {
                    let i = c * lanes;
                    let rows = &block[first * MOMENTS * lanes..(first + WINDOW) * MOMENTS * lanes];
                    let stride = MOMENTS * lanes;
                    let mx = filter(&taps, rows, 0, stride);
                    let my = filter(&taps, rows, lanes, stride);
                    let mq = filter(&taps, rows, 2 * lanes, stride);
                    let mp = filter(&taps, rows, 3 * lanes, stride);
                    // no fused operations here: identical pictures give 1
                    let mxy = mx.mul(my);
                    let den_cs = mq.sub(mx.mul(mx).add(my.mul(my))).add(c2);
                    let num_cs = two.mul(mp.sub(mxy)).add(c2);
                    let (ux, uy) = (mx.add(offset), my.add(offset));
                    let num_l = two.mul(ux.mul(uy)).add(c1);
                    let den_l = ux.mul(ux).add(uy.mul(uy)).add(c1);
                    let s = num_l.mul(num_cs).div(den_l.mul(den_cs));
                    let cs = if CS {
                        num_cs.div(den_cs)
                    } else {
                        V::splat(0.0)
                    };
                    if i + lanes <= n_out {
                        acc_s = acc_s.add(s);
                        acc_c = acc_c.add(cs);
                    } else {
                        let (s, cs) = (s.lanes(), cs.lanes());
                        for k in 0..n_out - i {
                            tail.0 += s[k] as f64;
                            tail.1 += cs[k] as f64;
                        }
                    }
                }
                if V::LANE_SUMS {
                    add_lanes(&mut lane_s, acc_s.lanes(), lanes);
                    if CS {
                        add_lanes(&mut lane_c, acc_c.lanes(), lanes);
                    }
                } else {
                    total.0 += lane_sum_f32(acc_s.lanes(), lanes);
                    if CS {
                        total.1 += lane_sum_f32(acc_c.lanes(), lanes);
                    }
                }
                total.0 += tail.0;
                total.1 += tail.1;
            }
        }
        SCRATCH.set(buf);
        total.0 += lane_sum(lane_s, lanes);
        total.1 += lane_sum(lane_c, lanes);
        BandSums {
            ssim: total.0,
            cs: total.1,
            sse,
        }
    }
}

/// `acc[k] += l[k]` in `f64`, for the first `n` lanes.
#[inline(always)]
fn add_lanes(acc: &mut [f64; MAX_LANES], l: [f32; MAX_LANES], n: usize) {
    for (a, v) in acc[..n].iter_mut().zip(&l[..n]) {
        *a += *v as f64;
    }
}

/// Rows ahead of the current one whose strip inputs are prefetched.
const PREFETCH_ROWS: usize = 8;

/// The first `n` lanes' sum in `f64`, in order.
#[inline(always)]
fn lane_sum_f32(l: [f32; MAX_LANES], n: usize) -> f64 {
    l[..n].iter().map(|v| *v as f64).sum()
}

/// The first `n` lanes' sum, in order.
#[inline(always)]
fn lane_sum(l: [f64; MAX_LANES], n: usize) -> f64 {
    l[..n].iter().sum()
}
