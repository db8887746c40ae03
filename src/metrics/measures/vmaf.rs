//! The `vmaf` metric: libvmaf's score per frame (model `vmaf_v0.6.1`),
//! through [`crate::metrics::vmaf`]. libvmaf needs the pairs of an input
//! in order (its motion feature compares a picture with the next), so this
//! is a temporal metric: the monitor feeds its state pair by pair, and a
//! pair's score comes out once the next pair has been read.

use std::collections::VecDeque;
use std::ffi::CString;

use crate::error::Error;
use crate::frame::Frame;
use crate::metrics::context::{Layout, Metric, PairContext, Ready, TemporalState, VmafOptions};
use crate::metrics::vmaf::{self, Vmaf};

/// VMAF with a model and its options.
pub struct VmafMetric(pub VmafOptions);

impl Metric for VmafMetric {
    fn keys(&self, _: &Layout) -> Vec<String> {
        let mut keys = vec!["vmaf".to_string()];
        if self.0.features {
            keys.extend(vmaf::feature_keys(&self.0.model));
        }
        keys
    }

    fn check(&self, layout: &Layout) -> Result<(), String> {
        vmaf::pixel_format(layout).map(|_| ())
    }

    fn compute(&self, _: &PairContext<'_>, out: &mut [f64]) {
        // never called: the scores come from the temporal state
        out.fill(f64::NAN);
    }

    fn temporal(&self, layout: &Layout) -> Option<Result<Box<dyn TemporalState>, Error>> {
        Some(
            Vmaf::new(layout, &self.0)
                .and_then(|v| {
                    let features = if self.0.features {
                        vmaf::feature_keys(&self.0.model)
                            .into_iter()
                            .map(|k| {
                                CString::new(vmaf::collector_name(&k)).map_err(|e| e.to_string())
                            })
                            .collect::<Result<Vec<_>, _>>()?
                    } else {
                        Vec::new()
                    };
                    Ok(Box::new(VmafState {
                        vmaf: v,
                        features,
                        pending: VecDeque::new(),
                        scored: 0,
                    }) as Box<dyn TemporalState>)
                })
                .map_err(Error::Usage),
        )
    }
}

/// One input's libvmaf context and the pairs whose scores are awaited.
struct VmafState {
    vmaf: Vmaf,
    /// The elementary features to report, by libvmaf's names.
    features: Vec<CString>,
    /// Pair indices read and not yet scored, oldest first.
    pending: VecDeque<u64>,
    /// libvmaf's index of the oldest pending pair.
    scored: u32,
}

impl VmafState {
    fn ready(&mut self) -> Ready {
        let mut out = Vec::new();
        while let Some(&pair) = self.pending.front() {
            match self.vmaf.score(self.scored) {
                Some(s) => {
                    let mut row = Vec::with_capacity(1 + self.features.len());
                    row.push(s);
                    // a feature the model does not compute is not a number
                    row.extend(
                        self.features
                            .iter()
                            .map(|f| self.vmaf.feature(f, self.scored).unwrap_or(f64::NAN)),
                    );
                    out.push((pair, row));
                    self.pending.pop_front();
                    self.scored += 1;
                }
                None => break,
            }
        }
        out
    }
}

impl TemporalState for VmafState {
    fn push(&mut self, pair: u64, reference: &Frame, distorted: &Frame) -> Result<Ready, Error> {
        self.vmaf
            .read(reference, distorted)
            .map_err(Error::Internal)?;
        self.pending.push_back(pair);
        Ok(self.ready())
    }

    fn flush(&mut self) -> Result<Ready, Error> {
        self.vmaf.flush().map_err(Error::Internal)?;
        let out = self.ready();
        if let Some(pair) = self.pending.front() {
            return Err(Error::Internal(format!(
                "vmaf: libvmaf gave no score for pair {pair}"
            )));
        }
        Ok(out)
    }
}
