//! vqm: a full-reference video quality monitor.
//!
//! The metric kernels ([`metrics`]) work on plain planes and are usable
//! without the rest; [`pipeline::run`] decodes inputs with FFmpeg, pairs
//! frames, measures them on a worker pool and writes records to sinks.

pub mod aggregate;
pub mod alert;
pub mod align;
pub mod cli;
pub mod config;
pub mod error;
pub mod frame;
pub mod gate;
pub mod input;
pub mod json;
pub mod metrics;
pub mod pair;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod sink;
pub mod stats;
pub mod worst;

pub use error::Error;
