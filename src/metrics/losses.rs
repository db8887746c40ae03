//! Per-sample error losses: MAE (L1, code values), Smooth L1 and binary
//! cross-entropy on values divided by peak, as PyTorch defines them.

use crate::frame::{PlaneView, Sample};

/// Mean absolute difference in code values, from an exact integer sum.
pub fn mae<T: Sample>(a: PlaneView<'_, T>, b: PlaneView<'_, T>) -> f64 {
    let sum: u64 = a
        .data
        .chunks(4096)
        .zip(b.data.chunks(4096))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| p.to_u32().abs_diff(q.to_u32()) as u64)
                .sum::<u64>()
        })
        .sum();
    sum as f64 / a.data.len().max(1) as f64
}

/// Smooth L1 loss of `dist/peak` against `ref/peak` with threshold `beta`:
/// mean of `0.5·x²/β` where `|x| < β`, else `|x| − 0.5·β` (torch
/// `smooth_l1_loss`; β = 0 is the plain L1 loss, as in torch).
pub fn smooth_l1<T: Sample>(r: PlaneView<'_, T>, d: PlaneView<'_, T>, peak: f64, beta: f64) -> f64 {
    let mut sum = 0.0;
    for (p, q) in r.data.iter().zip(d.data) {
        let x = (q.to_f64() - p.to_f64()).abs() / peak;
        sum += if x < beta {
            0.5 * x * x / beta
        } else {
            x - 0.5 * beta
        };
    }
    sum / r.data.len().max(1) as f64
}

/// `ln(k/peak)` and `ln(1 − k/peak)` for every code value `k`, each clamped
/// at −100 as torch's `BCELoss` clamps its logs.
#[derive(Debug, Clone)]
pub struct BceTables {
    peak: f64,
    ln: Vec<f64>,
    ln1m: Vec<f64>,
}

impl BceTables {
    /// Tables for `bit_depth`.
    pub fn new(bit_depth: u32) -> Self {
        let max = (1usize << bit_depth) - 1;
        let peak = max as f64;
        let (ln, ln1m) = (0..=max)
            .map(|k| {
                let x = k as f64 / peak;
                (x.ln().max(-100.0), (1.0 - x).ln().max(-100.0))
            })
            .unzip();
        BceTables { peak, ln, ln1m }
    }

    /// Mean binary cross-entropy with targets `ref/peak` and predictions
    /// `dist/peak`.
    pub fn bce<T: Sample>(&self, r: PlaneView<'_, T>, d: PlaneView<'_, T>) -> f64 {
        let mut sum = 0.0;
        for (p, q) in r.data.iter().zip(d.data) {
            let y = p.to_f64() / self.peak;
            let k = q.to_u32() as usize;
            let (l, l1) = match (self.ln.get(k), self.ln1m.get(k)) {
                (Some(l), Some(l1)) => (*l, *l1),
                _ => (f64::NAN, f64::NAN),
            };
            sum -= y * l + (1.0 - y) * l1;
        }
        sum / r.data.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T>(d: &[T], w: usize) -> PlaneView<'_, T> {
        PlaneView::new(d, w, 1).unwrap()
    }

    #[test]
    fn mae_by_hand() {
        assert_eq!(mae(v(&[0u8, 10, 20, 30], 4), v(&[1u8, 8, 20, 35], 4)), 2.0);
        assert_eq!(mae(v(&[0u16, 65535], 2), v(&[65535u16, 0], 2)), 65535.0);
    }

    #[test]
    fn smooth_l1_both_branches() {
        // x = 51/255 = 0.2: quadratic for beta 1 (0.5*0.04/1 = 0.02),
        // linear for beta 0.1 (0.2 - 0.05 = 0.15)
        let r = [0u8];
        let d = [51u8];
        assert!((smooth_l1(v(&r, 1), v(&d, 1), 255.0, 1.0) - 0.02).abs() < 1e-15);
        assert!((smooth_l1(v(&r, 1), v(&d, 1), 255.0, 0.1) - 0.15).abs() < 1e-15);
        // beta 0 is L1, also where the samples are equal (no 0/0)
        assert!((smooth_l1(v(&r, 1), v(&d, 1), 255.0, 0.0) - 0.2).abs() < 1e-15);
        let same = [0u8, 51];
        assert!((smooth_l1(v(&same, 2), v(&d.repeat(2), 2), 255.0, 0.0) - 0.1).abs() < 1e-15);
        // at |x| = beta both branches give beta / 2
        assert!((smooth_l1(v(&r, 1), v(&d, 1), 255.0, 0.2) - 0.1).abs() < 1e-15);
    }

    #[test]
    fn bce_by_hand_with_clamped_logs() {
        let t = BceTables::new(8);
        // y = 1, yhat = 0: -(1 * max(ln 0, -100)) = 100
        assert_eq!(t.bce(v(&[255u8], 1), v(&[0u8], 1)), 100.0);
        // y = 0, yhat = 0: 0
        assert_eq!(t.bce(v(&[0u8], 1), v(&[0u8], 1)), 0.0);
        // y = 0.2, yhat = 0.6
        let (y, p) = (51.0 / 255.0, 153.0 / 255.0);
        let want = -(y * f64::ln(p) + (1.0 - y) * f64::ln(1.0 - p));
        assert!((t.bce(v(&[51u8], 1), v(&[153u8], 1)) - want).abs() < 1e-15);
        let t16 = BceTables::new(16);
        assert_eq!(t16.bce(v(&[65535u16], 1), v(&[0u16], 1)), 100.0);
    }
}
