//! NDJSON outputs: the full log (`--log`) and the summary (`--summary-json`).

use super::{Output, Sink};
use crate::error::Error;
use crate::record::Record;

/// Writes every record, one per line, flushed as produced.
pub struct NdjsonSink {
    out: Output,
}

impl NdjsonSink {
    /// A log to `out`.
    pub fn new(out: Output) -> Self {
        NdjsonSink { out }
    }
}

impl Sink for NdjsonSink {
    fn write(&mut self, _record: &Record<'_>, json: &str) -> Result<(), Error> {
        self.out.line(json)
    }
    fn finish(&mut self) -> Result<(), Error> {
        self.out.flush()
    }
}

/// Writes only the summary records: one JSON object per distorted input.
pub struct SummarySink {
    out: Output,
}

impl SummarySink {
    /// A summary file at `out`.
    pub fn new(out: Output) -> Self {
        SummarySink { out }
    }
}

impl Sink for SummarySink {
    fn write(&mut self, record: &Record<'_>, json: &str) -> Result<(), Error> {
        match record {
            Record::Summary(_) => self.out.line(json),
            _ => Ok(()),
        }
    }
    fn finish(&mut self) -> Result<(), Error> {
        self.out.flush()
    }
}
