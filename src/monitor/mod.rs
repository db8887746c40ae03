//! The monitor: the ordered aggregator and what it runs on each measured
//! pair in order (frozen and black detection, alert rules, rolling
//! windows), the pooled summaries with their quality gates, and the
//! pictures of the worst frames.

pub mod aggregate;
pub mod alert;
pub mod detect;
pub mod gate;
pub mod ladder;
pub mod messages;
pub mod sequence;
pub mod summary;
pub mod worst;

pub use aggregate::{AggResult, AggSettings, Aggregator};
pub use messages::{AggMsg, Cause, Measured, PairCounts, Unpaired};
