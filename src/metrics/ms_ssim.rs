//! MS-SSIM (Wang, Simoncelli, Bovik 2003) with the authors' MATLAB
//! conventions: five scales weighted 0.0448, 0.2856, 0.3001, 0.2363, 0.1333;
//! at each scale the Gaussian SSIM window (11×11, σ = 1.5) over the valid
//! region; scales 1–4 contribute mean(cs map), scale 5 mean(SSIM map), each
//! clamped at 0 before its power; between scales a 2×2 mean in which an odd
//! last row or column is averaged with itself (output ⌈n/2⌉, the MATLAB
//! `imfilter(…, 'symmetric')` then `(1:2:end)` sampling), values kept in
//! floating point. Scale 1 is shared with `ssim` in gaussian mode.

use super::ssim::{Precision, Sample, SsimMeans, ssim_cs_gaussian_in};
use crate::frame::PlaneView;

/// Weights of scales 1 to 5.
pub const WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
/// Smallest plane side: 161 px halves four times to 11, one window.
pub const MIN_SIDE: usize = 161;

/// 2×2 mean with symmetric extension of an odd last row/column.
pub fn downsample<T: Copy + Into<f64>>(src: &[T], w: usize, h: usize) -> (Vec<f64>, usize, usize) {
    let mut out = Vec::new();
    let (ow, oh) = downsample_into(src, w, h, &mut out);
    (out, ow, oh)
}

/// [`downsample`] into a reused buffer (any sample type, read as `f64`);
/// returns the new size.
pub fn downsample_into<T: Copy + Into<f64>>(
    src: &[T],
    w: usize,
    h: usize,
    out: &mut Vec<f64>,
) -> (usize, usize) {
    let ow = w.div_ceil(2);
    let oh = h.div_ceil(2);
    out.resize(ow * oh, 0.0);
    for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
        let y0 = 2 * oy;
        let y1 = (y0 + 1).min(h - 1);
        let r0 = &src[y0 * w..(y0 + 1) * w];
        let r1 = &src[y1 * w..(y1 + 1) * w];
        for (ox, o) in orow.iter_mut().enumerate() {
            let x0 = 2 * ox;
            let x1 = (x0 + 1).min(w - 1);
            let (a, b, c, d): (f64, f64, f64, f64) =
                (r0[x0].into(), r0[x1].into(), r1[x0].into(), r1[x1].into());
            *o = (a + b + c + d) / 4.0;
        }
    }
    (ow, oh)
}

thread_local! {
    /// Per-worker buffers of the downsampled scales: two per picture,
    /// used in turn.
    static SCALES: std::cell::Cell<[Vec<f64>; 4]> = const {
        std::cell::Cell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new()])
    };
}

/// Combines per-scale means into MS-SSIM: Π max(cs_j, 0)^w_j for j = 1..4
/// times max(ssim_5, 0)^w_5.
pub fn combine(cs: [f64; 4], ssim5: f64) -> f64 {
    let mut v = 1.0;
    for (c, w) in cs.iter().zip(&WEIGHTS[..4]) {
        v *= c.max(0.0).powf(*w);
    }
    v * ssim5.max(0.0).powf(WEIGHTS[4])
}

/// MS-SSIM of two planes given their full-scale means (from
/// [`ssim_cs_gaussian_in`]); `None` if a side is under [`MIN_SIDE`].
pub fn ms_ssim_from_scale1<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
    scale1: SsimMeans,
    prec: Precision,
) -> Option<f64> {
    let (w, h) = (a.width, a.height);
    if w < MIN_SIDE || h < MIN_SIDE || (b.width, b.height) != (w, h) {
        return None;
    }
    let [mut fa, mut fb, mut ga, mut gb] = SCALES.take();
    let (mut cw, mut ch) = rayon::join(
        || downsample_into(a.data, w, h, &mut fa),
        || downsample_into(b.data, w, h, &mut fb),
    )
    .0;
    let mut cs = [scale1.cs, 0.0, 0.0, 0.0];
    let mut last = scale1.ssim;
    // scales 2..=5: cs of scales 2-4, the full SSIM of scale 5
    let mut ok = true;
    for scale in 2..=5 {
        if scale > 2 {
            let (nw, nh) = rayon::join(
                || downsample_into(&fa, cw, ch, &mut ga),
                || downsample_into(&fb, cw, ch, &mut gb),
            )
            .0;
            std::mem::swap(&mut fa, &mut ga);
            std::mem::swap(&mut fb, &mut gb);
            cw = nw;
            ch = nh;
        }
        let m = PlaneView::new(&fa, cw, ch)
            .zip(PlaneView::new(&fb, cw, ch))
            .and_then(|(va, vb)| ssim_cs_gaussian_in(va, vb, peak, prec));
        let Some(m) = m else {
            ok = false;
            break;
        };
        match cs.get_mut(scale - 1) {
            Some(slot) => *slot = m.cs,
            None => last = m.ssim,
        }
    }
    SCALES.set([fa, fb, ga, gb]);
    if !ok {
        return None;
    }
    Some(combine(cs, last))
}

/// MS-SSIM of two planes (computes the full scale too).
pub fn ms_ssim<T: Sample>(
    a: PlaneView<'_, T>,
    b: PlaneView<'_, T>,
    peak: f64,
    prec: Precision,
) -> Option<f64> {
    let s1 = ssim_cs_gaussian_in(a, b, peak, prec)?;
    ms_ssim_from_scale1(a, b, peak, s1, prec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_and_extends_odd_edges() {
        // 3x3 -> 2x2
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let (out, w, h) = downsample(&src, 3, 3);
        assert_eq!((w, h), (2, 2));
        assert_eq!(out, vec![3.0, 4.5, 7.5, 9.0]);
    }

    #[test]
    fn published_weights_and_identical_planes_give_one() {
        // the published weights sum to 1.0001
        assert!((WEIGHTS.iter().sum::<f64>() - 1.0001).abs() < 1e-12);
        let a: Vec<u8> = (0..170 * 165)
            .map(|i| ((i * 7 + i / 170 * 3) % 256) as u8)
            .collect();
        let v = PlaneView::new(&a, 170, 165).unwrap();
        let s = ms_ssim(v, v, 255.0, Precision::Fast).unwrap();
        assert!((s - 1.0).abs() < 1e-6, "{s}");
    }

    #[test]
    fn negative_terms_are_clamped_to_zero() {
        assert_eq!(combine([0.9, -0.1, 0.9, 0.9], 0.9), 0.0);
        let want = 0.5f64.powf(0.0448) * 0.25f64.powf(0.1333);
        assert!((combine([0.5, 1.0, 1.0, 1.0], 0.25) - want).abs() < 1e-15);
    }

    #[test]
    fn under_161_is_refused() {
        let a = vec![0u8; 160 * 200];
        let v = PlaneView::new(&a, 160, 200).unwrap();
        assert!(ms_ssim(v, v, 255.0, Precision::Fast).is_none());
    }

    #[test]
    fn exactly_161_per_side_is_measured() {
        for (w, h) in [(161, 161), (161, 170), (170, 161)] {
            let a: Vec<u8> = (0..w * h).map(|i| ((i * 7919) % 251) as u8).collect();
            let b: Vec<u8> = a.iter().map(|x| x.saturating_add(9)).collect();
            let (va, vb) = (
                PlaneView::new(&a, w, h).unwrap(),
                PlaneView::new(&b, w, h).unwrap(),
            );
            let s = ms_ssim(va, vb, 255.0, Precision::Fast);
            assert!(s.is_some_and(|s| s > 0.0 && s < 1.0), "{w}x{h}: {s:?}");
            assert_eq!(ms_ssim(va, va, 255.0, Precision::Fast), Some(1.0));
        }
    }
}
