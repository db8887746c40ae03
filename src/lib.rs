//! vqm: a full-reference video quality monitor.
//!
//! One frame's way through a run, one folder per stage:
//!
//! ```text
//!  input/     decoders (one thread per input): open, decode, convert
//!     │          bounded channels of frames
//!  pipeline/  pairing (a state machine), the sync search, the metric
//!     │          workers (a rayon pool); `pipeline::run` wires it all
//!     │          rows and events, in sequence
//!  monitor/   the ordered aggregator: detectors, alerts, gates, summaries,
//!     │          worst frames
//!  output/    records (serde) and their sinks: NDJSON, CSV, HTML,
//!                Prometheus, the summary table
//! ```
//!
//! Dependencies run one way, `pipeline → monitor → output → input →
//! metrics → frame, stats, cpu`: a stage never imports one that runs
//! after it. The metric kernels ([`metrics`]) work on plain planes
//! ([`frame`]) and are usable without the rest; [`cpu`] picks their code
//! path. The command line ([`cli`], [`config`]) fills a
//! [`pipeline::Settings`].

pub mod batch;
pub mod cli;
pub mod config;
pub mod cpu;
pub mod error;
pub mod frame;
pub mod input;
pub mod metrics;
pub mod monitor;
pub mod output;
pub mod pipeline;
pub mod redact;
pub mod stats;
pub mod textfile;

pub use error::Error;
