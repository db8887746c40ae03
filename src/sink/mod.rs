//! Outputs. Each sink receives every record (with its JSON serialisation,
//! made once) and keeps what it needs. Output paths are opened before any
//! decoding starts, so a path that cannot be created fails at once.

pub mod csv;
pub mod ndjson;
pub mod output;
pub mod progress;
pub mod prometheus;
pub mod report;
pub mod vmaf;

pub use csv::CsvSink;
pub use ndjson::{NdjsonSink, SummarySink};
pub use output::Output;
pub use progress::ProgressSink;
pub use prometheus::PrometheusSink;
pub use report::ReportSink;
pub use vmaf::VmafSink;

use crate::error::Error;
use crate::record::Record;

/// An output of records.
pub trait Sink: Send {
    /// Takes one record; `json` is its compact serialisation.
    fn write(&mut self, record: &Record<'_>, json: &str) -> Result<(), Error>;
    /// Flushes and closes at the end of the run.
    fn finish(&mut self) -> Result<(), Error>;
}
