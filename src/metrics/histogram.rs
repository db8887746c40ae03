//! Histogram metrics on 256 bins per plane (bin = code >> (bitdepth − 8)):
//! Shannon entropy of each picture, the KL divergence D(P_ref ‖ Q_dist) and
//! the cross-entropy H(P_ref, Q_dist), in nats. Q is Laplace-smoothed,
//! `q_j = (count_j + 1) / (N + 256)`, so it is never zero; P is not, and
//! `0·ln 0 = 0`. Histograms are built only when one of these is selected,
//! once per pair.

use crate::frame::{Plane, Sample, Samples};

/// Number of bins.
pub const BINS: usize = 256;

/// Bin counts of one plane of the reference and the distorted picture.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneHistograms {
    /// Reference counts.
    pub reference: [u64; BINS],
    /// Distorted counts.
    pub distorted: [u64; BINS],
    /// Samples per plane.
    pub n: u64,
}

fn count<T: Sample>(data: &[T], shift: u32, out: &mut [u64; BINS]) {
    for s in data {
        let bin = (s.to_u32() >> shift) as usize;
        out[bin.min(BINS - 1)] += 1;
    }
}

fn count_plane(p: &Plane, shift: u32, out: &mut [u64; BINS]) {
    match &p.samples {
        Samples::U8(v) => count(&v[..p.len().min(v.len())], shift, out),
        Samples::U16(v) => count(&v[..p.len().min(v.len())], shift, out),
    }
}

impl PlaneHistograms {
    /// Histograms of a plane pair at `bit_depth`.
    pub fn of(r: &Plane, d: &Plane, bit_depth: u32) -> Self {
        let shift = bit_depth.saturating_sub(8);
        let mut h = PlaneHistograms {
            reference: [0; BINS],
            distorted: [0; BINS],
            n: r.len() as u64,
        };
        count_plane(r, shift, &mut h.reference);
        count_plane(d, shift, &mut h.distorted);
        h
    }
}

/// Entropy −Σ p ln p of a probability vector, with 0·ln 0 = 0.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|x| **x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
}

/// Cross-entropy −Σ p ln q, with terms where p = 0 contributing 0.
pub fn cross_entropy(p: &[f64], q: &[f64]) -> f64 {
    -p.iter()
        .zip(q)
        .filter(|(x, _)| **x > 0.0)
        .map(|(x, y)| x * y.ln())
        .sum::<f64>()
}

/// KL divergence Σ p ln(p/q), with terms where p = 0 contributing 0.
pub fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(x, _)| **x > 0.0)
        .map(|(x, y)| x * (x / y).ln())
        .sum()
}

/// Unsmoothed probabilities `count / n`.
pub fn probabilities(counts: &[u64; BINS], n: u64) -> [f64; BINS] {
    let mut p = [0.0; BINS];
    for (o, c) in p.iter_mut().zip(counts) {
        *o = *c as f64 / n.max(1) as f64;
    }
    p
}

/// Laplace-smoothed probabilities `(count + 1) / (n + 256)`.
pub fn laplace(counts: &[u64; BINS], n: u64) -> [f64; BINS] {
    let mut q = [0.0; BINS];
    for (o, c) in q.iter_mut().zip(counts) {
        *o = (*c + 1) as f64 / (n + BINS as u64) as f64;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_cross_entropy_example() {
        let p = [1.0, 0.0, 0.0];
        let q1 = [0.5, 0.2, 0.3];
        let q2 = [0.8, 0.1, 0.1];
        assert!((cross_entropy(&p, &q1) - 0.693).abs() < 5e-4);
        assert!((cross_entropy(&p, &q2) - 0.223).abs() < 5e-4);
        assert!((cross_entropy(&p, &q1) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn xent_is_entropy_plus_kl() {
        let r = Plane {
            width: 7,
            height: 3,
            samples: Samples::U16((0..21).map(|i| (i * 97 % 1024) as u16).collect()),
        };
        let d = Plane {
            width: 7,
            height: 3,
            samples: Samples::U16((0..21).map(|i| (i * 13 % 1024) as u16).collect()),
        };
        let h = PlaneHistograms::of(&r, &d, 10);
        assert_eq!(h.reference.iter().sum::<u64>(), 21);
        let p = probabilities(&h.reference, h.n);
        let q = laplace(&h.distorted, h.n);
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let x = cross_entropy(&p, &q);
        assert!((x - (entropy(&p) + kl_divergence(&p, &q))).abs() < 1e-9);
    }

    #[test]
    fn entropy_of_uniform_and_constant() {
        assert!((entropy(&[0.25; 4]) - 4f64.ln()).abs() < 1e-15);
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
    }

    #[test]
    fn bins_shift_high_bit_depths() {
        let r = Plane {
            width: 2,
            height: 1,
            samples: Samples::U16(vec![1023, 4]),
        };
        let h = PlaneHistograms::of(&r, &r, 10);
        assert_eq!(h.reference[255], 1);
        assert_eq!(h.reference[1], 1);
    }
}
