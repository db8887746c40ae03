//! Outputs: the records vqm writes ([`records`], serialised by serde in
//! [`json`]) and the sinks that receive them. Each sink receives every
//! record (with its JSON serialisation, made once) and keeps what it
//! needs. Output paths are opened before any decoding starts, so a path
//! that cannot be created fails at once.

pub mod csv;
pub mod file;
pub mod html;
pub mod json;
pub mod ndjson;
pub mod progress;
pub mod prometheus;
pub mod records;
pub mod summary_csv;
pub mod table;
pub mod vmaf_layout;

pub use csv::CsvSink;
pub use file::{Mode, Output};
pub use html::ReportSink;
pub use ndjson::{NdjsonSink, SummarySink};
pub use progress::ProgressSink;
pub use prometheus::PrometheusSink;
pub use summary_csv::SummaryCsvSink;
pub use vmaf_layout::VmafLayoutSink;

use crate::error::Error;
use records::{Event, FrameRecord, Header, Summary, WindowRecord, WorstPicture};

/// An output of records: one method per record type, each given the
/// record and its compact JSON (made once for every sink); a sink
/// implements the ones it keeps.
pub trait Sink: Send {
    /// The header, first.
    fn header(&mut self, header: &Header, json: &str) -> Result<(), Error> {
        let _ = (header, json);
        Ok(())
    }
    /// A measured pair.
    fn frame(&mut self, frame: &FrameRecord<'_>, json: &str) -> Result<(), Error> {
        let _ = (frame, json);
        Ok(())
    }
    /// Rolling statistics.
    fn window(&mut self, window: &WindowRecord<'_>, json: &str) -> Result<(), Error> {
        let _ = (window, json);
        Ok(())
    }
    /// An event.
    fn event(&mut self, event: &Event, json: &str) -> Result<(), Error> {
        let _ = (event, json);
        Ok(())
    }
    /// The summary of one distorted input.
    fn summary(&mut self, summary: &Summary, json: &str) -> Result<(), Error> {
        let _ = (summary, json);
        Ok(())
    }
    /// The pictures of the worst moments, drawn once the last pair is
    /// measured (before [`Sink::finish`]).
    fn pictures(&mut self, pictures: &[WorstPicture]) -> Result<(), Error> {
        let _ = pictures;
        Ok(())
    }
    /// Flushes and closes at the end of the run.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Every sink of a run: each record is serialised once and handed to all.
#[derive(Default)]
pub struct Sinks(pub Vec<Box<dyn Sink>>);

impl Sinks {
    /// Writes the header.
    pub fn header(&mut self, r: &Header) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let json = json::line(r)?;
        self.0.iter_mut().try_for_each(|s| s.header(r, &json))
    }
    /// Writes a frame record.
    pub fn frame(&mut self, r: &FrameRecord<'_>) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let json = json::line(r)?;
        self.0.iter_mut().try_for_each(|s| s.frame(r, &json))
    }
    /// Writes a window record.
    pub fn window(&mut self, r: &WindowRecord<'_>) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let json = json::line(r)?;
        self.0.iter_mut().try_for_each(|s| s.window(r, &json))
    }
    /// Writes an event record.
    pub fn event(&mut self, r: &Event) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let json = json::line(r)?;
        self.0.iter_mut().try_for_each(|s| s.event(r, &json))
    }
    /// Writes a summary record.
    pub fn summary(&mut self, r: &Summary) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let json = json::line(r)?;
        self.0.iter_mut().try_for_each(|s| s.summary(r, &json))
    }
    /// Hands the worst moments' pictures to every sink.
    pub fn pictures(&mut self, p: &[WorstPicture]) -> Result<(), Error> {
        self.0.iter_mut().try_for_each(|s| s.pictures(p))
    }
    /// Flushes and closes every sink.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.0.iter_mut().try_for_each(|s| s.finish())
    }
}
