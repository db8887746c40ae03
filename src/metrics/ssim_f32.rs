//! The single-precision Gaussian SSIM kernel, for data up to 10 bits.
//!
//! Samples are centred at half the peak so the variance terms keep their
//! precision in `f32`. Only four moments are filtered: x, y, x² + y² and xy
//! (SSIM needs σx² + σy², never the two apart). Each input row is converted
//! once, filtered horizontally into a ring of 11 rows, and each output row is
//! one fused pass: the vertical filter of the four moments, the SSIM (and,
//! when asked, cs) map and its sum, eight lanes at a time, without writing
//! the map anywhere.
//!
//! The algorithm is written once over [`Vf`], eight `f32` lanes the
//! compiler maps onto vector registers, and compiled for each code path:
//! portable (SSE2 on x86-64), AVX2, and AVX2 with fused multiply-adds in the
//! two filters. Every path runs the same operations in the same order, so
//! the portable and AVX2 paths give identical bits, and the FMA path gives
//! identical bits to the portable code with [`f32::mul_add`] (what the tests
//! compare it with).

use std::cell::Cell;

use super::simd::CpuLevel;
use crate::frame::PlaneView;

const WINDOW: usize = super::ssim::WINDOW;
const MOMENTS: usize = 4;
const LANES: usize = 8;
/// Ring floats per vector of columns: 2 × 11 slots of the four moments.
const BLOCK: usize = 2 * WINDOW * MOMENTS * LANES;

/// Sample types the kernel reads, each converted to centred `f32`.
pub trait Centre: Copy {
    /// `dst[i] = src[i] as f32 - offset` for every sample of the row.
    fn centre(src: &[Self], offset: f32, dst: &mut [f32]);
}

impl Centre for u8 {
    fn centre(src: &[u8], offset: f32, dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s as f32 - offset;
        }
    }
}

impl Centre for u16 {
    fn centre(src: &[u16], offset: f32, dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s as f32 - offset;
        }
    }
}

impl Centre for f64 {
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
}

/// Eight `f32` lanes.
///
/// # Safety
/// The methods are `unsafe` so that the AVX implementations can carry
/// their target features (and be inlined into the kernels compiled for
/// them): they may only be called on CPUs that have those features.
trait Vf: Copy {
    /// Every lane `v`.
    unsafe fn splat(v: f32) -> Self;
    /// `s[i..i + 8]`.
    unsafe fn load(s: &[f32], i: usize) -> Self;
    /// Writes the lanes to `s[i..i + 8]`.
    unsafe fn store(self, s: &mut [f32], i: usize);
    /// Lane-wise sum.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane-wise difference.
    unsafe fn sub(self, o: Self) -> Self;
    /// Lane-wise product.
    unsafe fn mul(self, o: Self) -> Self;
    /// Lane-wise quotient.
    unsafe fn div(self, o: Self) -> Self;
    /// `self * b + c`, fused on the FMA path, two roundings elsewhere.
    unsafe fn madd(self, b: Self, c: Self) -> Self;
    /// The lanes.
    unsafe fn lanes(self) -> [f32; LANES];
}

/// The portable vector: an array the compiler vectorises as it can;
/// `FUSED` makes `madd` a fused multiply-add ([`f32::mul_add`]).
#[derive(Clone, Copy)]
struct Portable<const FUSED: bool>([f32; LANES]);

impl<const FUSED: bool> Portable<FUSED> {
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x = f(*x, y);
        }
        Portable(r)
    }
}

impl<const FUSED: bool> Vf for Portable<FUSED> {
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Portable([v; LANES])
    }
    #[inline(always)]
    unsafe fn load(s: &[f32], i: usize) -> Self {
        let mut r = [0.0; LANES];
        r.copy_from_slice(&s[i..i + LANES]);
        Portable(r)
    }
    #[inline(always)]
    unsafe fn store(self, s: &mut [f32], i: usize) {
        s[i..i + LANES].copy_from_slice(&self.0);
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
    unsafe fn lanes(self) -> [f32; LANES] {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{LANES, Vf};
    use std::arch::x86_64::*;

    /// Implements [`Vf`] on an AVX register for the given target features,
    /// with `$madd` as the multiply-add.
    macro_rules! avx_vector {
        ($name:ident, $features:literal, |$a:ident, $b:ident, $c:ident| $madd:block) => {
            /// Eight `f32` in an AVX register.
            #[derive(Clone, Copy)]
            pub(super) struct $name(__m256);

            impl Vf for $name {
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn splat(v: f32) -> Self {
                    $name(_mm256_set1_ps(v))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn load(s: &[f32], i: usize) -> Self {
                    let s = &s[i..i + LANES];
                    // SAFETY: `s` holds eight floats.
                    $name(unsafe { _mm256_loadu_ps(s.as_ptr()) })
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn store(self, s: &mut [f32], i: usize) {
                    let s = &mut s[i..i + LANES];
                    // SAFETY: `s` holds eight floats.
                    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self.0) }
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn add(self, o: Self) -> Self {
                    $name(_mm256_add_ps(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn sub(self, o: Self) -> Self {
                    $name(_mm256_sub_ps(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn mul(self, o: Self) -> Self {
                    $name(_mm256_mul_ps(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn div(self, o: Self) -> Self {
                    $name(_mm256_div_ps(self.0, o.0))
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn madd(self, b: Self, c: Self) -> Self {
                    let ($a, $b, $c) = (self.0, b.0, c.0);
                    $name($madd)
                }
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn lanes(self) -> [f32; LANES] {
                    let mut r = [0.0; LANES];
                    // SAFETY: `r` holds eight floats.
                    unsafe { _mm256_storeu_ps(r.as_mut_ptr(), self.0) };
                    r
                }
            }
        };
    }

    avx_vector!(Avx, "avx2", |a, b, c| {
        _mm256_add_ps(_mm256_mul_ps(a, b), c)
    });
    avx_vector!(AvxFma, "avx2,fma", |a, b, c| { _mm256_fmadd_ps(a, b, c) });
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
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only produced when the CPU reports AVX2.
        CpuLevel::Avx2 => unsafe { band_avx2(a, b, y0, y1, p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2Fma` is only produced when the CPU reports AVX2 and
        // FMA.
        CpuLevel::Avx2Fma => unsafe { band_avx2_fma(a, b, y0, y1, p) },
        // SAFETY: the portable vector needs no CPU feature.
        _ => unsafe { band_cs::<T, Portable<false>>(a, b, y0, y1, p) },
    }
}

/// The FMA path's arithmetic in portable code (software `mul_add`, slow):
/// what the tests compare the FMA path with, bit for bit.
pub fn band_sum_fused_reference<T: Centre>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
) -> (f64, f64) {
    // SAFETY: the portable vector needs no CPU feature.
    unsafe { band_cs::<T, Portable<true>>(a, b, y0, y1, p) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn band_avx2<T: Centre>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
) -> (f64, f64) {
    // SAFETY: compiled for AVX2, which the caller checked.
    unsafe { band_cs::<T, avx::Avx>(a, b, y0, y1, p) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn band_avx2_fma<T: Centre>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    y0: usize,
    y1: usize,
    p: &Params,
) -> (f64, f64) {
    // SAFETY: compiled for AVX2 and FMA, which the caller checked.
    unsafe { band_cs::<T, avx::AvxFma>(a, b, y0, y1, p) }
}

/// Symmetric 11-tap filter: eight outputs from the vectors at
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
) -> (f64, f64) {
    // SAFETY: the caller's guarantee.
    unsafe {
        if p.want_cs {
            band::<T, V, true>(a, b, y0, y1, p)
        } else {
            band::<T, V, false>(a, b, y0, y1, p)
        }
    }
}

/// The kernel over one band of output rows.
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
) -> (f64, f64) {
    // SAFETY: the caller's guarantee covers every `V` method called here.
    unsafe {
        let w = a.width;
        let ow = w - (WINDOW - 1);
        // outputs rounded up to whole vectors; sources padded to match
        let owp = ow.div_ceil(LANES) * LANES;
        let sw = owp + WINDOW - 1;
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
        let mut buf = SCRATCH.take();
        let total = {
            let chunks = owp / LANES;
            let need = MOMENTS * sw + chunks * BLOCK;
            if buf.len() < need {
                buf.resize(need, 0.0);
            }
            let (src, ring) = buf.split_at_mut(MOMENTS * sw);
            let ring = &mut ring[..chunks * BLOCK];
            // padding past the row's end: zeros, only ever read by the lanes
            // past the valid outputs, which are not summed
            src.fill(0.0);
            let mut total = (0.0f64, 0.0f64);
            for r in y0..y1 + WINDOW - 1 {
                let (sx, rest) = src.split_at_mut(sw);
                let (sy, rest) = rest.split_at_mut(sw);
                let (sq, sp) = rest.split_at_mut(sw);
                T::centre(a.row(r), p.offset, &mut sx[..w]);
                T::centre(b.row(r), p.offset, &mut sy[..w]);
                for i in 0..w {
                    let (x, y) = (sx[i], sy[i]);
                    sq[i] = x * x + y * y;
                    sp[i] = x * y;
                }
                // each filtered row goes to slot j and j + 11, so the 11
                // rows of any window are consecutive slots
                let slot = (r - y0) % WINDOW;
                let sources = [&sx[..sw], &sy[..sw], &sq[..sw], &sp[..sw]];
                for (c, block) in ring.chunks_exact_mut(BLOCK).enumerate() {
                    let i = c * LANES;
                    for (m, s) in sources.iter().enumerate() {
                        let v = filter(&taps, s, i, 1);
                        v.store(block, (slot * MOMENTS + m) * LANES);
                        v.store(block, ((slot + WINDOW) * MOMENTS + m) * LANES);
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
                for (c, block) in ring.chunks_exact(BLOCK).enumerate() {
                    let i = c * LANES;
                    let rows = &block[first * MOMENTS * LANES..(first + WINDOW) * MOMENTS * LANES];
                    let stride = MOMENTS * LANES;
                    let mx = filter(&taps, rows, 0, stride);
                    let my = filter(&taps, rows, LANES, stride);
                    let mq = filter(&taps, rows, 2 * LANES, stride);
                    let mp = filter(&taps, rows, 3 * LANES, stride);
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
                    if i + LANES <= ow {
                        acc_s = acc_s.add(s);
                        acc_c = acc_c.add(cs);
                    } else {
                        let (s, cs) = (s.lanes(), cs.lanes());
                        for k in 0..ow - i {
                            tail.0 += s[k] as f64;
                            tail.1 += cs[k] as f64;
                        }
                    }
                }
                total.0 += lane_sum(acc_s.lanes()) + tail.0;
                total.1 += lane_sum(acc_c.lanes()) + tail.1;
            }
            total
        };
        SCRATCH.set(buf);
        total
    }
}

/// The lanes' sum in `f64`, in a fixed order.
#[inline(always)]
fn lane_sum(l: [f32; LANES]) -> f64 {
    let w = l.map(|v| v as f64);
    ((w[0] + w[4]) + (w[1] + w[5])) + ((w[2] + w[6]) + (w[3] + w[7]))
}
