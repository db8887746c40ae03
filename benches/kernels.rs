//! Criterion benches of every metric kernel on one 1920×1080 4:2:0 picture
//! pair, 8-bit and 10-bit, reported in Mpixel/s (luma + chroma samples).
//! Run: `cargo bench --bench kernels`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vqm::frame::Frame;
use vqm::metrics::Layout;
use vqm::metrics::{MetricOptions, MetricSet, REGISTRY, Registration, SsimMode, resolve_names};

fn noise(n: usize, seed: u64, max: u32) -> Vec<u32> {
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

/// A smooth picture (a gradient) plus noise, and a noisier copy of it.
fn pair(bits: u32) -> (Frame, Frame) {
    let max = (1u32 << bits) - 1;
    let dims = [(1920usize, 1080usize), (960, 540), (960, 540)];
    let mut r = Vec::new();
    let mut d = Vec::new();
    for (i, (w, h)) in dims.iter().enumerate() {
        let n1 = noise(w * h, 1 + i as u64, max / 32);
        let n2 = noise(w * h, 9 + i as u64, max / 16);
        let base: Vec<u32> = (0..w * h)
            .map(|k| ((k % w) as u32 * max / *w as u32) / 2 + (k / w) as u32 % 64)
            .collect();
        r.push((
            *w,
            *h,
            base.iter()
                .zip(&n1)
                .map(|(b, x)| (b + x).min(max))
                .collect::<Vec<u32>>(),
        ));
        d.push((
            *w,
            *h,
            base.iter()
                .zip(&n2)
                .map(|(b, x)| (b + x).min(max))
                .collect::<Vec<u32>>(),
        ));
    }
    let to8 = |p: Vec<(usize, usize, Vec<u32>)>| {
        Frame::from_u8(
            p.into_iter()
                .map(|(w, h, v)| (w, h, v.into_iter().map(|x| x as u8).collect()))
                .collect(),
        )
    };
    let to16 = |p: Vec<(usize, usize, Vec<u32>)>| {
        Frame::from_u16(
            bits,
            p.into_iter()
                .map(|(w, h, v)| (w, h, v.into_iter().map(|x| x as u16).collect()))
                .collect(),
        )
    };
    if bits == 8 {
        (to8(r), to8(d))
    } else {
        (to16(r), to16(d))
    }
}

fn layout(f: &Frame) -> Layout {
    Layout {
        plane_names: vec!["y", "u", "v"],
        plane_dims: f.planes.iter().map(|p| (p.width, p.height)).collect(),
        bit_depth: f.bit_depth,
    }
}

fn bench(c: &mut Criterion) {
    let samples = (1920 * 1080 + 2 * 960 * 540) as u64;
    let mut g = c.benchmark_group("kernels_1080p_420");
    g.throughput(Throughput::Elements(samples));
    g.sample_size(10);
    for bits in [8u32, 10] {
        let (r, d) = pair(bits);
        let lay = layout(&r);
        let cases: Vec<(&str, Vec<&'static Registration>, SsimMode)> = vec![
            (
                "psnr",
                resolve_names(&["psnr".into()]).unwrap_or_default(),
                SsimMode::Gaussian,
            ),
            (
                "ssim_gaussian",
                resolve_names(&["ssim".into()]).unwrap_or_default(),
                SsimMode::Gaussian,
            ),
            (
                "ssim_ffmpeg",
                resolve_names(&["ssim".into()]).unwrap_or_default(),
                SsimMode::Ffmpeg,
            ),
            (
                "ms_ssim",
                resolve_names(&["ms-ssim".into()]).unwrap_or_default(),
                SsimMode::Gaussian,
            ),
            (
                "losses_mae_smoothl1_bce",
                resolve_names(&["mae,smooth-l1,bce".into()]).unwrap_or_default(),
                SsimMode::Gaussian,
            ),
            (
                "histograms_entropy_kl_xent",
                resolve_names(&["entropy,kl,xent".into()]).unwrap_or_default(),
                SsimMode::Gaussian,
            ),
        ];
        for (name, regs, mode) in cases {
            let opts = MetricOptions {
                ssim_mode: mode,
                ..MetricOptions::default()
            };
            let Ok(set) = MetricSet::new(&regs, opts, &lay) else {
                continue;
            };
            g.bench_with_input(
                BenchmarkId::new(name, format!("{bits}bit")),
                &(&r, &d),
                |b, (r, d)| b.iter(|| set.compute(r, d)),
            );
        }
    }
    g.finish();
    let _all = REGISTRY.len();
}

/// The single-precision Gaussian SSIM kernel on one 1080p luma plane, one
/// thread, on every code path this CPU has.
fn bench_levels(c: &mut Criterion) {
    use vqm::cpu::available_levels;
    use vqm::frame::PlaneView;
    use vqm::metrics::ssim::gaussian_taps;
    use vqm::metrics::ssim_f32::{Params, band_sum};
    let (w, h) = (1920usize, 1080usize);
    let a: Vec<u8> = noise(w * h, 1, 255).into_iter().map(|v| v as u8).collect();
    let b: Vec<u8> = a
        .iter()
        .zip(noise(w * h, 2, 16))
        .map(|(x, n)| x.saturating_add(n as u8))
        .collect();
    let p = Params {
        taps: gaussian_taps().map(|t| t as f32),
        c1: (0.01f32 * 255.0).powi(2),
        c2: (0.03f32 * 255.0).powi(2),
        offset: 128.0,
        want_cs: false,
        want_sse: false,
    };
    let mut g = c.benchmark_group("ssim_gaussian_luma_1thread");
    g.throughput(Throughput::Elements((w * h) as u64));
    g.sample_size(10);
    for level in available_levels() {
        g.bench_function(format!("{level:?}"), |bch| {
            bch.iter(|| {
                let (va, vb) = (PlaneView::new(&a, w, h), PlaneView::new(&b, w, h));
                va.zip(vb)
                    .map(|(va, vb)| band_sum(va, vb, 0, h - 10, &p, level))
            })
        });
    }
    g.finish();
    // The same plane cut to narrower widths, on the detected code path: how
    // much the working set's size costs per sample (what the strips of the
    // kernel are for).
    let mut g = c.benchmark_group("ssim_gaussian_width_probe");
    g.sample_size(10);
    for cw in [74usize, 138, 266, 522, 1920] {
        let a: Vec<u8> = a.chunks(w).flat_map(|r| r[..cw].to_vec()).collect();
        let b: Vec<u8> = b.chunks(w).flat_map(|r| r[..cw].to_vec()).collect();
        g.throughput(Throughput::Elements((cw * h) as u64));
        g.bench_function(format!("w{cw}"), |bch| {
            bch.iter(|| {
                let (va, vb) = (PlaneView::new(&a, cw, h), PlaneView::new(&b, cw, h));
                va.zip(vb)
                    .map(|(va, vb)| band_sum(va, vb, 0, h - 10, &p, vqm::cpu::cpu_level()))
            })
        });
    }
    g.finish();
}

/// What one core's vector ports sustain, for the ceiling of the Gaussian
/// kernel in BENCHMARKS.md: 512-bit FMAs one after another (their latency,
/// 4 cycles on this family, gives the clock), 12 independent FMA chains,
/// 12 independent lane rotations (`valignd`), and 6 + 6 of both.
/// Every group runs `PROBE_OPS` operations per iteration.
#[cfg(target_arch = "x86_64")]
mod ports {
    use std::arch::x86_64::*;

    pub const PROBE_OPS: usize = 12 * 1000;

    /// One step of chain `i`: an FMA, or a rotation that also takes the
    /// next chain's register (so no two rotations fold into one shuffle).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn step(a: &mut [__m512; 12], i: usize, rotate: bool) {
        // SAFETY: register operations of AVX-512F, which this is compiled
        // for.
        unsafe {
            a[i] = if rotate {
                _mm512_castsi512_ps(_mm512_alignr_epi32::<3>(
                    _mm512_castps_si512(a[i]),
                    _mm512_castps_si512(a[(i + 1) % 12]),
                ))
            } else {
                _mm512_fmadd_ps(a[i], _mm512_set1_ps(0.999), _mm512_set1_ps(0.001))
            };
            // an empty barrier: the compiler may not merge two steps into
            // one instruction (it would fold rotations of rotations)
            std::arch::asm!("/* {0} */", inout(zmm_reg) a[i], options(pure, nomem, nostack));
        }
    }

    /// `PROBE_OPS` steps over 12 registers; chain `i` rotates when
    /// `rotate(i)`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn run(x: f32, rotate: impl Fn(usize) -> bool) -> f32 {
        // SAFETY: as in `step`.
        unsafe {
            // distinct lanes the compiler cannot know
            let init: [f32; 16 * 12] = std::hint::black_box(std::array::from_fn(|i| x + i as f32));
            let mut a: [__m512; 12] =
                std::array::from_fn(|i| _mm512_loadu_ps(init[16 * i..].as_ptr()));
            for _ in 0..PROBE_OPS / 12 {
                for i in 0..12 {
                    step(&mut a, i, rotate(i));
                }
            }
            let s = a
                .iter()
                .fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, *v));
            _mm512_reduce_add_ps(s)
        }
    }

    #[target_feature(enable = "avx512f")]
    pub fn fma_chain(x: f32) -> f32 {
        let mut a = _mm512_set1_ps(x);
        for _ in 0..PROBE_OPS {
            a = _mm512_fmadd_ps(a, _mm512_set1_ps(0.999), _mm512_set1_ps(0.001));
        }
        _mm512_reduce_add_ps(a)
    }

    #[target_feature(enable = "avx512f")]
    pub fn fma_12(x: f32) -> f32 {
        run(x, |_| false)
    }

    #[target_feature(enable = "avx512f")]
    pub fn valignd_12(x: f32) -> f32 {
        run(x, |_| true)
    }

    #[target_feature(enable = "avx512f")]
    pub fn mixed_12(x: f32) -> f32 {
        run(x, |i| i % 2 == 1)
    }
}

/// The port probe (AVX-512 CPUs only): time per iteration of
/// `PROBE_OPS` operations.
fn bench_ports(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let mut g = c.benchmark_group("cpu_ports_avx512");
        g.throughput(Throughput::Elements(ports::PROBE_OPS as u64));
        g.sample_size(20);
        type Probe = (&'static str, fn(f32) -> f32);
        let probes: [Probe; 4] = [
            // SAFETY (each): AVX-512F was detected above.
            ("fma_dependent", |x| unsafe { ports::fma_chain(x) }),
            ("fma_x12", |x| unsafe { ports::fma_12(x) }),
            ("valignd_x12", |x| unsafe { ports::valignd_12(x) }),
            ("fma6_valignd6", |x| unsafe { ports::mixed_12(x) }),
        ];
        for (name, f) in probes {
            g.bench_function(name, |bch| bch.iter(|| f(std::hint::black_box(1.0))));
        }
        g.finish();
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = c;
}

criterion_group!(benches, bench, bench_levels, bench_ports);
criterion_main!(benches);
