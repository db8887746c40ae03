//! Inputs: opening anything FFmpeg's demuxers open, and decoding it into
//! planar frames of a fixed layout.

mod avopen;
pub mod convert;
pub mod decode;
mod diagnose;
mod filter;
pub mod format;
pub mod info;
mod ledger;
pub mod open;
mod pipe;
mod raw;
pub mod schedule;
mod udp;
pub mod y4m;

pub use decode::DecodeEvent;
pub use format::Target;
pub use info::InputInfo;
pub use open::{Decoder, InputOptions, Notify, OpenOptions, check_local, is_network, open};
pub use raw::{SIZE_LIMIT, too_large};
