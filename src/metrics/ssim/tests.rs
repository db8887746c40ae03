//! The double-precision Gaussian SSIM kernel against closed forms.

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
    // Each side on its own, and two planes of different sizes.
    assert!(ssim_gaussian(v(&a, 20, 10), v(&a, 20, 10), 255.0).is_none());
    let b = vec![0u8; 12 * 12];
    assert!(ssim_gaussian(v(&b, 12, 12), v(&a, 20, 10), 255.0).is_none());
    let fast = Precision::Fast;
    assert!(ssim_cs_gaussian_in(v(&a, 20, 10), v(&a, 20, 10), 255.0, fast).is_none());
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

/// A deterministic pseudo-random plane of `n` samples under `range`,
/// around `base`.
fn noisy(n: usize, seed: u64, base: u16, range: u16) -> Vec<u16> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            base + ((x >> 33) % range as u64) as u16
        })
        .collect()
}

#[test]
fn single_precision_serves_up_to_ten_bits_only() {
    let (w, h) = (40, 30);
    // 12 bits: always the double-precision computation, bit for bit
    let (a, b) = (noisy(w * h, 1, 0, 4096), noisy(w * h, 2, 0, 4096));
    let fast = ssim_cs_gaussian_in(v(&a, w, h), v(&b, w, h), 4095.0, Precision::Fast).unwrap();
    let double = ssim_cs_gaussian_in(v(&a, w, h), v(&b, w, h), 4095.0, Precision::Double).unwrap();
    assert_eq!(fast.ssim.to_bits(), double.ssim.to_bits());
    // 8 and 10 bits: the single-precision kernel, whose last bits differ
    for peak in [255.0, 1023.0] {
        let top = peak as u16 + 1;
        let (a, b) = (noisy(w * h, 3, 0, top), noisy(w * h, 4, 0, top));
        let fast = ssim_cs_gaussian_in(v(&a, w, h), v(&b, w, h), peak, Precision::Fast).unwrap();
        let double =
            ssim_cs_gaussian_in(v(&a, w, h), v(&b, w, h), peak, Precision::Double).unwrap();
        assert_ne!(fast.ssim.to_bits(), double.ssim.to_bits(), "peak {peak}");
        assert!((fast.ssim - double.ssim).abs() < 1e-6, "peak {peak}");
    }
}

#[test]
fn single_precision_centres_the_samples() {
    // nearly flat 10-bit pictures around the middle of the range: the
    // variances are tiny next to the squared means, which single precision
    // resolves only on samples centred there (measured: 5e-10 from the
    // double-precision value centred, 5e-7 not centred)
    let (w, h) = (48, 40);
    let (a, b) = (noisy(w * h, 5, 509, 6), noisy(w * h, 6, 509, 6));
    let fast = ssim_cs_gaussian_in(v(&a, w, h), v(&b, w, h), 1023.0, Precision::Fast).unwrap();
    let double = ssim_cs_gaussian_in(v(&a, w, h), v(&b, w, h), 1023.0, Precision::Double).unwrap();
    assert!(
        (fast.ssim - double.ssim).abs() < 1e-8,
        "{} vs {}",
        fast.ssim,
        double.ssim
    );
}

#[test]
fn zero_pad_refuses_empty_and_mismatched_planes() {
    let a = vec![7u8; 16 * 16];
    let prec = Precision::Double;
    // a plane with no column, or no row, beside one of the same size
    for (w, h) in [(0, 16), (16, 0), (0, 0)] {
        let e = v(&a[..0], w, h);
        assert!(ssim_zero_pad(e, e, 255.0, prec).is_none(), "{w}x{h}");
    }
    // sizes that differ in one side only
    assert!(ssim_zero_pad(v(&a, 16, 16), v(&a[..16 * 12], 16, 12), 255.0, prec).is_none());
    assert!(ssim_zero_pad(v(&a, 16, 16), v(&a[..12 * 16], 12, 16), 255.0, prec).is_none());
    // zero padding: even a plane under one window is measured, and
    // identical planes give 1
    let s = ssim_zero_pad(v(&a[..3 * 2], 3, 2), v(&a[..3 * 2], 3, 2), 255.0, prec).unwrap();
    assert!((s - 1.0).abs() < 1e-12, "{s}");
}
