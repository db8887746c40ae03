//! NDJSON outputs: the full log (`--log`) and the summary (`--summary-json`).

use super::{Output, Sink};
use crate::error::Error;
use crate::output::records::{Event, FrameRecord, Header, Summary, WindowRecord};

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
    fn header(&mut self, _: &Header, json: &str) -> Result<(), Error> {
        self.out.line(json)
    }
    fn frame(&mut self, _: &FrameRecord<'_>, json: &str) -> Result<(), Error> {
        self.out.line(json)
    }
    fn window(&mut self, _: &WindowRecord<'_>, json: &str) -> Result<(), Error> {
        self.out.line(json)
    }
    fn event(&mut self, _: &Event, json: &str) -> Result<(), Error> {
        self.out.line(json)
    }
    fn summary(&mut self, _: &Summary, json: &str) -> Result<(), Error> {
        self.out.line(json)
    }
    fn finish(&mut self) -> Result<(), Error> {
        self.out.finish()
    }
}

/// Writes only the summary records: one JSON object per distorted input.
pub struct SummarySink {
    out: Output,
    /// Each distorted input's summary, serialised.
    summaries: Vec<String>,
}

impl SummarySink {
    /// A summary file at `out`.
    pub fn new(out: Output) -> Self {
        SummarySink {
            out,
            summaries: Vec::new(),
        }
    }
}

/// One JSON document: with one distorted input its summary object, with
/// several a JSON array of them (in input order), on one line.
impl Sink for SummarySink {
    fn summary(&mut self, _: &Summary, json: &str) -> Result<(), Error> {
        self.summaries.push(json.to_string());
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Error> {
        match self.summaries.len() {
            0 => {}
            1 => self.out.line(&self.summaries[0])?,
            _ => self.out.line(&format!("[{}]", self.summaries.join(",")))?,
        }
        self.out.finish()
    }
}
