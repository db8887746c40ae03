//! Every code path of the Gaussian kernels against the portable one, and
//! helpers other kernels' tests share.

use super::*;

fn v<T>(d: &[T], w: usize, h: usize) -> PlaneView<'_, T> {
    PlaneView::new(d, w, h).unwrap()
}
use super::map::{Grid, map_band, ssim_map_grid, ssim_map_rows};
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

#[test]
fn the_map_is_the_same_on_every_code_path() {
    let (w, h) = (97, 83);
    let as16 = |seed| -> Vec<u16> {
        noise(w * h, seed, 1023)
            .into_iter()
            .map(|x| x as u16)
            .collect()
    };
    let (a, b) = (as16(21), as16(22));
    let (va, vb) = (v(&a, w, h), v(&b, w, h));
    let want = ssim_map_rows(va, vb, 1023.0, 0, 1).unwrap();
    let oh = h - (WINDOW - 1);
    let p = BandParams {
        taps: gaussian_taps(),
        c1: (K1 * 1023.0) * (K1 * 1023.0),
        c2: (K2 * 1023.0) * (K2 * 1023.0),
    };
    for level in available_levels() {
        let mut out = vec![0.0; want.len()];
        let all = Columns::all(w);
        let grid = |rows, kept, cols| Grid { rows, kept, cols };
        map_band(va, vb, grid((0, oh), (0, 1), all), p, &mut out, level);
        assert_eq!(out, want, "{level:?}");
        // every third row from row 1, in one band
        let rows = (oh - 1).div_ceil(3);
        let mut some = vec![0.0; rows * (w - 10)];
        map_band(va, vb, grid((1, oh), (1, 3), all), p, &mut some, level);
        let every_third: Vec<f64> = want
            .chunks(w - 10)
            .skip(1)
            .step_by(3)
            .flatten()
            .copied()
            .collect();
        assert_eq!(some, every_third, "{level:?}");
        // kept columns too: every f-th from c0, in rows every f-th from r0
        let ow = w - (WINDOW - 1);
        for (r0, c0, f) in [
            (0, 0, 2),
            (3, 5, 2),
            (1, 2, 3),
            (0, 7, 4),
            (2, 0, 1),
            (0, 86, 5),
        ] {
            let cols = Columns::of(w, c0, f);
            let rows = (oh - r0).div_ceil(f);
            let mut values = vec![0.0; rows * cols.count];
            map_band(va, vb, grid((r0, oh), (r0, f), cols), p, &mut values, level);
            let picked: Vec<f64> = want
                .chunks(ow)
                .skip(r0)
                .step_by(f)
                .flat_map(|row| row.iter().skip(c0).step_by(f))
                .copied()
                .collect();
            assert_eq!(values, picked, "{level:?} rows {r0}/{f} columns {c0}/{f}");
            let whole = ssim_map_grid(va, vb, 1023.0, (r0, f), (c0, f)).unwrap();
            assert_eq!(whole, picked, "{level:?} rows {r0}/{f} columns {c0}/{f}");
        }
    }
    // past the last column: nothing
    assert_eq!(ssim_map_grid(va, vb, 1023.0, (0, 1), (w, 2)), Some(vec![]));
    // the mean of the whole map is the plane's double-precision SSIM
    let mean = want.iter().sum::<f64>() / want.len() as f64;
    let ssim = ssim_cs_gaussian_in(va, vb, 1023.0, Precision::Double)
        .unwrap()
        .ssim;
    assert!((mean - ssim).abs() < 1e-12, "{mean} vs {ssim}");
}

#[test]
fn the_map_refuses_planes_under_one_window_and_of_different_sizes() {
    let plane = |w: usize, h: usize, seed| -> Vec<u8> {
        noise(w * h, seed, 255)
            .into_iter()
            .map(|x| x as u8)
            .collect()
    };
    let map = |(w, h): (usize, usize), (w2, h2): (usize, usize)| {
        let (a, b) = (plane(w, h, 1), plane(w2, h2, 2));
        ssim_map_grid(v(&a, w, h), v(&b, w2, h2), 255.0, (0, 1), (0, 1))
    };
    // one column or one row short of a window, either side
    assert_eq!(map((10, 20), (10, 20)), None);
    assert_eq!(map((20, 10), (20, 10)), None);
    assert_eq!(map((5, 5), (5, 5)), None);
    // exactly one window: one value, the plane's SSIM
    let (a, b) = (plane(11, 11, 1), plane(11, 11, 2));
    let one = ssim_map_grid(v(&a, 11, 11), v(&b, 11, 11), 255.0, (0, 1), (0, 1)).unwrap();
    let ssim = ssim_cs_gaussian_in(v(&a, 11, 11), v(&b, 11, 11), 255.0, Precision::Double)
        .unwrap()
        .ssim;
    assert_eq!(one.len(), 1);
    assert!((one[0] - ssim).abs() < 1e-12, "{} vs {ssim}", one[0]);
    // planes of different sizes, in either dimension
    assert_eq!(map((20, 20), (20, 16)), None);
    assert_eq!(map((20, 20), (16, 20)), None);
}

#[test]
fn each_path_keeps_its_own_order_of_summation() {
    // The map's sums, in f64, of f32 values: a large total (identical
    // rows, SSIM 1 everywhere) followed by values too small for that
    // total's last bit (a flat reference against full-range noise, SSIM
    // near zero). Summed per row or per lane they round apart, so a path
    // that summed in the other order than the code it is compared with
    // would differ in the last bits here (on small planes both orders are
    // exact).
    let (w, h) = (256, 1024);
    let split = 900 * w;
    let noisy = noise(w * h, 7, 255);
    let a: Vec<u8> = (0..w * h)
        .map(|i| if i < split { noisy[i] as u8 } else { 0 })
        .collect();
    let b: Vec<u8> = noisy.iter().map(|x| *x as u8).collect();
    let oh = h - (WINDOW - 1);
    let n = ((w - 10) * oh) as f64;
    for want_cs in [false, true] {
        check_f32((v(&a, w, h), v(&b, w, h)), 255.0, want_cs, oh, n);
    }
}
