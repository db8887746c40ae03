//! Inputs: opening anything FFmpeg's demuxers open, and decoding it into
//! planar frames of a fixed layout.

pub mod decode;
pub mod format;
pub mod info;
pub mod y4m;

pub use decode::{DecodeEvent, Decoder, OpenOptions, open};
pub use format::Target;
pub use info::InputInfo;
