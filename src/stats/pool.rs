//! Pooled statistics of one key over a whole run: mean, min, max,
//! population standard deviation, harmonic mean (libvmaf's
//! `n / Σ 1/(s+1) − 1`), median, p5 and p95.
//!
//! Quantiles are exact (linear interpolation between order statistics, as
//! numpy's default) up to [`EXACT_LIMIT`] frames. Past that the values move
//! into a DDSketch with relative accuracy [`SKETCH_ALPHA`], so memory stays
//! bounded however long the run: every quantile is then within
//! `SKETCH_ALPHA · |q|` of a value whose rank is the requested one.

use sketches_ddsketch::{Config as SketchConfig, DDSketch};

/// Frames up to which quantiles are exact.
pub const EXACT_LIMIT: usize = 100_000;
/// Relative value accuracy of the quantile sketch used past [`EXACT_LIMIT`].
pub const SKETCH_ALPHA: f64 = 0.001;
const SKETCH_BINS: u32 = 8192;
const SKETCH_MIN: f64 = 1e-9;

enum Quantiles {
    Exact(Vec<f64>),
    Sketch(Box<DDSketch>),
}

/// Running statistics of one key.
pub struct PooledKey {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    inv_sum: f64,
    harmonic_valid: bool,
    quantiles: Quantiles,
}

/// Final figures of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// Values pooled.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
    /// `n / Σ 1/(s+1) − 1`; `None` if any value is ≤ −1.
    pub harmonic_mean: Option<f64>,
    /// 50th percentile.
    pub median: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Whether the quantiles came from the sketch.
    pub approximate: bool,
}

impl Default for PooledKey {
    fn default() -> Self {
        Self::new()
    }
}

impl PooledKey {
    /// No values yet.
    pub fn new() -> Self {
        PooledKey {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            inv_sum: 0.0,
            harmonic_valid: true,
            quantiles: Quantiles::Exact(Vec::new()),
        }
    }

    /// Adds one value; non-finite values are ignored (they never occur in
    /// records, which are finite by construction).
    pub fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.n += 1;
        // Welford's update keeps the variance exact to rounding.
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if v <= -1.0 {
            self.harmonic_valid = false;
        } else {
            self.inv_sum += 1.0 / (v + 1.0);
        }
        match &mut self.quantiles {
            Quantiles::Exact(vals) => {
                vals.push(v);
                if vals.len() > EXACT_LIMIT {
                    let mut sk =
                        DDSketch::new(SketchConfig::new(SKETCH_ALPHA, SKETCH_BINS, SKETCH_MIN));
                    for x in vals.iter() {
                        sk.add(*x);
                    }
                    self.quantiles = Quantiles::Sketch(Box::new(sk));
                }
            }
            Quantiles::Sketch(sk) => sk.add(v),
        }
    }

    /// Quantile `q` (0–1): exact up to [`EXACT_LIMIT`] values, from the
    /// sketch beyond; `None` before the first value.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        match &self.quantiles {
            Quantiles::Exact(vals) => {
                let mut sorted = vals.clone();
                sorted.sort_by(f64::total_cmp);
                Some(quantile_sorted(&sorted, q))
            }
            Quantiles::Sketch(sk) => sk.quantile(q).ok().flatten(),
        }
    }

    /// Number of values pooled.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The pooled figures, `None` when no value was pushed.
    pub fn finish(&self) -> Option<Pooled> {
        if self.n == 0 {
            return None;
        }
        let (median, p5, p95, approximate) = match &self.quantiles {
            Quantiles::Exact(vals) => {
                let mut sorted = vals.clone();
                sorted.sort_by(f64::total_cmp);
                (
                    quantile_sorted(&sorted, 0.5),
                    quantile_sorted(&sorted, 0.05),
                    quantile_sorted(&sorted, 0.95),
                    false,
                )
            }
            Quantiles::Sketch(sk) => {
                let q = |p: f64| sk.quantile(p).ok().flatten().unwrap_or(f64::NAN);
                (q(0.5), q(0.05), q(0.95), true)
            }
        };
        Some(Pooled {
            count: self.n,
            mean: self.mean,
            min: self.min,
            max: self.max,
            stddev: (self.m2 / self.n as f64).max(0.0).sqrt(),
            harmonic_mean: self
                .harmonic_valid
                .then(|| self.n as f64 / self.inv_sum - 1.0),
            median,
            p5,
            p95,
            approximate,
        })
    }
}

/// Quantile `q` of sorted values with linear interpolation between the
/// order statistics at `q·(n−1)` (numpy's default method).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = pos - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_small_set() {
        let mut k = PooledKey::new();
        for v in [1.0, 2.0, 3.0, 4.0] {
            k.push(v);
        }
        let p = k.finish().unwrap();
        assert_eq!(p.mean, 2.5);
        assert_eq!(p.min, 1.0);
        assert_eq!(p.max, 4.0);
        assert!((p.stddev - 1.25f64.sqrt()).abs() < 1e-15);
        // numpy: np.percentile([1,2,3,4], [50,5,95]) = 2.5, 1.15, 3.85
        assert!((p.median - 2.5).abs() < 1e-15);
        assert!((p.p5 - 1.15).abs() < 1e-12);
        assert!((p.p95 - 3.85).abs() < 1e-12);
        // 4 / (1/2 + 1/3 + 1/4 + 1/5) - 1
        let h = 4.0 / (0.5 + 1.0 / 3.0 + 0.25 + 0.2) - 1.0;
        assert!((p.harmonic_mean.unwrap() - h).abs() < 1e-12);
    }

    #[test]
    fn quantiles_and_count_of_a_small_set() {
        let mut k = PooledKey::new();
        assert_eq!(k.quantile(0.5), None);
        assert_eq!(k.count(), 0);
        for v in [7.0, 1.0, 3.0, 5.0, 9.0] {
            k.push(v);
        }
        k.push(f64::NAN);
        assert_eq!(k.count(), 5, "non-finite values are not pooled");
        // numpy: np.percentile([1,3,5,7,9], [0, 25, 50, 90, 100])
        for (q, want) in [(0.0, 1.0), (0.25, 3.0), (0.5, 5.0), (0.9, 8.2), (1.0, 9.0)] {
            let got = k.quantile(q).unwrap();
            assert!((got - want).abs() < 1e-12, "{q}: {got} vs {want}");
        }
        assert_eq!(quantile_sorted(&[1.0, 3.0, 5.0, 7.0, 9.0], 1.0), 9.0);
        assert_eq!(quantile_sorted(&[4.0], 0.3), 4.0);
    }

    #[test]
    fn harmonic_mean_is_null_at_minus_one() {
        let mut k = PooledKey::new();
        k.push(0.5);
        k.push(-1.0);
        assert_eq!(k.finish().unwrap().harmonic_mean, None);
    }

    #[test]
    fn empty_is_none() {
        assert!(PooledKey::new().finish().is_none());
    }

    /// Whether `got` is within `SKETCH_ALPHA` (relative) of a value of
    /// rank ⌊q·(n−1)⌋ or ⌈q·(n−1)⌉ (the ranks either side of numpy's
    /// interpolation point), as the README promises.
    fn near_the_right_rank(sorted: &[f64], q: f64, got: f64) -> bool {
        let at = q * (sorted.len() - 1) as f64;
        [at.floor() as usize, at.ceil() as usize]
            .iter()
            .any(|&r| (got - sorted[r]).abs() <= SKETCH_ALPHA * sorted[r].abs())
    }

    #[test]
    fn sketch_past_the_limit_stays_within_its_accuracy() {
        // a deterministic spread between 20 and 50; a wide one over six
        // decades; one with negative values and zeros
        let spreads: [Box<dyn Fn(u64) -> f64>; 3] = [
            Box::new(|i| 20.0 + 30.0 * ((i * 2654435761) % 1_000_003) as f64 / 1_000_003.0),
            Box::new(|i| 10f64.powf(-3.0 + 6.0 * ((i * 40503) % 65521) as f64 / 65521.0)),
            Box::new(|i| match i % 7 {
                0 => 0.0,
                k => (k as f64 - 3.5) * (1.0 + (i % 1000) as f64),
            }),
        ];
        for (s, spread) in spreads.iter().enumerate() {
            let mut k = PooledKey::new();
            let n = EXACT_LIMIT + 50_000;
            let vals: Vec<f64> = (0..n as u64).map(spread).collect();
            for v in &vals {
                k.push(*v);
            }
            let p = k.finish().unwrap();
            assert!(p.approximate);
            assert_eq!(p.count, n as u64);
            let mut sorted = vals.clone();
            sorted.sort_by(f64::total_cmp);
            // min, max and mean stay exact past the limit
            assert_eq!(p.min, sorted[0]);
            assert_eq!(p.max, sorted[n - 1]);
            let mean = vals.iter().sum::<f64>() / n as f64;
            assert!((p.mean - mean).abs() <= 1e-9 * mean.abs().max(1.0), "{s}");
            for (got, q) in [(p.median, 0.5), (p.p5, 0.05), (p.p95, 0.95)] {
                assert!(
                    near_the_right_rank(&sorted, q, got),
                    "spread {s}, q {q}: {got} vs {} / {}",
                    sorted[(q * (n - 1) as f64).floor() as usize],
                    sorted[(q * (n - 1) as f64).ceil() as usize]
                );
            }
        }
    }

    #[test]
    fn exactly_the_limit_stays_exact_and_one_more_switches_to_the_sketch() {
        let mut k = PooledKey::new();
        for i in 0..EXACT_LIMIT {
            k.push(i as f64);
        }
        let p = k.finish().unwrap();
        assert!(!p.approximate);
        // numpy: np.percentile(np.arange(100000), [50, 5, 95])
        assert_eq!(p.median, 49_999.5);
        assert!((p.p5 - 4_999.95).abs() < 1e-9);
        assert!((p.p95 - 94_999.05).abs() < 1e-9);
        k.push(EXACT_LIMIT as f64);
        assert!(k.finish().unwrap().approximate);
    }
}
