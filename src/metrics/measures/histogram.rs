//! The histogram metrics: `entropy`, `kl` and `xent` per plane, from the
//! 256-bin histograms the pair context builds once.

use crate::metrics::context::{Better, Layout, Metric, PairContext, Passes};
use crate::metrics::histogram::{cross_entropy, entropy, kl_divergence, laplace, probabilities};

fn keys(prefix: &str, layout: &Layout) -> Vec<String> {
    layout
        .plane_names
        .iter()
        .map(|p| format!("{prefix}_{p}"))
        .collect()
}

/// `entropy_ref_<plane>` then `entropy_dist_<plane>`.
pub struct Entropy;

impl Metric for Entropy {
    fn passes(&self) -> Passes {
        Passes {
            histograms: true,
            ..Passes::default()
        }
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        let mut k = keys("entropy_ref", layout);
        k.extend(keys("entropy_dist", layout));
        k
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        let h = pair.histograms();
        let n = h.len();
        for (i, ph) in h.iter().enumerate() {
            if let Some(o) = out.get_mut(i) {
                *o = entropy(&probabilities(&ph.reference, ph.n));
            }
            if let Some(o) = out.get_mut(n + i) {
                *o = entropy(&probabilities(&ph.distorted, ph.n));
            }
        }
    }
}

/// `kl_<plane>`: D_KL(P_ref ‖ Q_dist).
pub struct Kl;

impl Metric for Kl {
    fn better(&self) -> Better {
        Better::Lower
    }
    fn passes(&self) -> Passes {
        Passes {
            histograms: true,
            ..Passes::default()
        }
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        keys("kl", layout)
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        for (o, ph) in out.iter_mut().zip(pair.histograms()) {
            *o = kl_divergence(
                &probabilities(&ph.reference, ph.n),
                &laplace(&ph.distorted, ph.n),
            );
        }
    }
}

/// `xent_<plane>`: H(P_ref, Q_dist) = entropy_ref + kl.
pub struct Xent;

impl Metric for Xent {
    fn better(&self) -> Better {
        Better::Lower
    }
    fn passes(&self) -> Passes {
        Passes {
            histograms: true,
            ..Passes::default()
        }
    }
    fn keys(&self, layout: &Layout) -> Vec<String> {
        keys("xent", layout)
    }
    fn compute(&self, pair: &PairContext<'_>, out: &mut [f64]) {
        for (o, ph) in out.iter_mut().zip(pair.histograms()) {
            *o = cross_entropy(
                &probabilities(&ph.reference, ph.n),
                &laplace(&ph.distorted, ph.n),
            );
        }
    }
}
