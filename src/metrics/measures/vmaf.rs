//! The `vmaf` metric (libvmaf's score per frame, model `vmaf_v0.6.1` by
//! default, with a bootstrap model's confidence interval) and libvmaf's
//! other extractors as metrics (`cambi`, `psnr_hvs`, ...), through
//! [`crate::metrics::vmaf`]. libvmaf needs the pairs of an input
//! in order (its motion feature compares a picture with the next), so this
//! is a temporal metric: the monitor feeds its state pair by pair, and a
//! pair's score comes out once the next pair has been read.

use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::OnceLock;

use crate::error::Error;
use crate::frame::Frame;
use crate::metrics::context::{
    Better, Layout, Metric, PairContext, Ready, TemporalState, VmafOptions,
};
use crate::metrics::vmaf::{self, Vmaf};

/// VMAF with a model and its options.
pub struct VmafMetric {
    options: VmafOptions,
    /// Whether the model is a bootstrap collection, found out once.
    bootstrap: OnceLock<Result<bool, String>>,
}

impl VmafMetric {
    /// VMAF with `options`.
    pub fn new(options: VmafOptions) -> VmafMetric {
        VmafMetric {
            options,
            bootstrap: OnceLock::new(),
        }
    }

    fn is_bootstrap(&self) -> Result<bool, String> {
        self.bootstrap
            .get_or_init(|| vmaf::is_bootstrap(&self.options))
            .clone()
    }

    /// The keys after `vmaf`: a bootstrap model's confidence figures,
    /// then the elementary features when asked for.
    fn extra_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if self.is_bootstrap().unwrap_or(false) {
            keys.extend(vmaf::BOOTSTRAP_KEYS.iter().map(|k| k.to_string()));
        }
        if self.options.features {
            keys.extend(vmaf::feature_keys(&self.options.model));
        }
        keys
    }
}

impl Metric for VmafMetric {
    fn keys(&self, _: &Layout) -> Vec<String> {
        let mut keys = vec!["vmaf".to_string()];
        keys.extend(self.extra_keys());
        keys
    }

    fn check(&self, layout: &Layout) -> Result<(), String> {
        vmaf::pixel_format(layout)?;
        self.is_bootstrap().map(|_| ())
    }

    fn compute(&self, _: &PairContext<'_>, out: &mut [f64]) {
        // never called: the scores come from the temporal state
        out.fill(f64::NAN);
    }

    fn temporal(&self, layout: &Layout) -> Option<Result<Box<dyn TemporalState>, Error>> {
        let build = || -> Result<Box<dyn TemporalState>, String> {
            let v = Vmaf::new(layout, &self.options)?;
            let bootstrap = self.is_bootstrap()?;
            let features = if self.options.features {
                vmaf::feature_keys(&self.options.model)
                    .into_iter()
                    .map(|k| CString::new(vmaf::collector_name(&k)).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            let (layout, options) = (layout.clone(), self.options.clone());
            Ok(Box::new(State::new(
                v,
                Box::new(move || Vmaf::new(&layout, &options)),
                Source::Model {
                    bootstrap,
                    features,
                },
            )))
        };
        Some(build().map_err(Error::Usage))
    }
}

/// One of libvmaf's feature extractors as a metric (`cambi`,
/// `psnr_hvs`, ...), in a libvmaf context of its own.
pub struct ExtractorMetric {
    /// Which extractor.
    pub extractor: &'static vmaf::Extractor,
    /// libvmaf's own threads.
    pub threads: u32,
}

impl Metric for ExtractorMetric {
    fn keys(&self, _: &Layout) -> Vec<String> {
        self.extractor.keys.iter().map(|k| k.to_string()).collect()
    }

    fn check(&self, layout: &Layout) -> Result<(), String> {
        vmaf::check_extractor(self.extractor, layout)
    }

    fn better(&self) -> Better {
        if self.extractor.lower_is_better {
            Better::Lower
        } else {
            Better::Higher
        }
    }

    fn compute(&self, _: &PairContext<'_>, out: &mut [f64]) {
        // never called: the values come from the temporal state
        out.fill(f64::NAN);
    }

    fn temporal(&self, layout: &Layout) -> Option<Result<Box<dyn TemporalState>, Error>> {
        let build = || -> Result<Box<dyn TemporalState>, String> {
            let v = Vmaf::extractor(layout, self.extractor, self.threads)?;
            let keys = self
                .extractor
                .keys
                .iter()
                .map(|k| CString::new(*k).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let (layout, x, threads) = (layout.clone(), self.extractor, self.threads);
            Ok(Box::new(State::new(
                v,
                Box::new(move || Vmaf::extractor(&layout, x, threads)),
                Source::Features(keys),
            )))
        };
        Some(build().map_err(Error::Usage))
    }
}

/// What a row holds.
enum Source {
    /// The model's score, its bootstrap figures if it is a collection,
    /// then the named elementary features.
    Model {
        bootstrap: bool,
        features: Vec<CString>,
    },
    /// Features of libvmaf's collector, by name, and nothing else.
    Features(Vec<CString>),
}

/// Makes a fresh context like the first.
type Rebuild = Box<dyn Fn() -> Result<Vmaf, String> + Send>;

/// One input's libvmaf context and the pairs whose values are awaited.
struct State {
    vmaf: Vmaf,
    rebuild: Rebuild,
    source: Source,
    /// Pair indices read and not yet given, oldest first.
    pending: VecDeque<u64>,
    /// libvmaf's index of the oldest pending pair.
    next: u32,
    /// No more pairs come to this context.
    flushed: bool,
}

impl State {
    fn new(vmaf: Vmaf, rebuild: Rebuild, source: Source) -> State {
        State {
            vmaf,
            rebuild,
            source,
            pending: VecDeque::new(),
            next: 0,
            flushed: false,
        }
    }

    /// Pair `i`'s row, or `None` while libvmaf still lacks a value of it.
    fn row(&self, i: u32) -> Option<Vec<f64>> {
        match &self.source {
            Source::Model {
                bootstrap,
                features,
            } => {
                let mut row = vec![self.vmaf.score(i)?];
                if *bootstrap {
                    row.extend(self.vmaf.bootstrap(i)?);
                }
                for f in features {
                    match self.vmaf.feature(f, i) {
                        Some(v) => row.push(v),
                        // libvmaf's threads file an extractor's outputs
                        // one by one: the score can be ready before the
                        // last of them, so wait for it until the end,
                        // where one the model does not compute is not a
                        // number
                        None if !self.flushed => return None,
                        None => row.push(f64::NAN),
                    }
                }
                Some(row)
            }
            // every value, or none yet (an extractor files them one by
            // one, perhaps on another thread)
            Source::Features(keys) => keys.iter().map(|k| self.vmaf.feature(k, i)).collect(),
        }
    }

    fn ready(&mut self) -> Ready {
        let mut out = Vec::new();
        while let Some(&pair) = self.pending.front() {
            let Some(row) = self.row(self.next) else {
                break;
            };
            out.push((pair, row));
            self.pending.pop_front();
            self.next += 1;
        }
        out
    }
}

impl TemporalState for State {
    fn push(&mut self, pair: u64, reference: &Frame, distorted: &Frame) -> Result<Ready, Error> {
        self.vmaf
            .read(reference, distorted)
            .map_err(Error::Internal)?;
        self.pending.push_back(pair);
        Ok(self.ready())
    }

    fn flush(&mut self) -> Result<Ready, Error> {
        self.vmaf.flush().map_err(Error::Internal)?;
        self.flushed = true;
        let out = self.ready();
        if let Some(pair) = self.pending.front() {
            return Err(Error::Internal(format!(
                "vmaf: libvmaf gave no value for pair {pair}"
            )));
        }
        Ok(out)
    }

    fn restart(&mut self) -> Result<Ready, Error> {
        let out = self.flush()?;
        self.vmaf = (self.rebuild)().map_err(Error::Internal)?;
        self.next = 0;
        self.flushed = false;
        Ok(out)
    }
}
