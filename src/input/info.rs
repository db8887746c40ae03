//! What vqm knows of an opened input, as plain data (no FFmpeg type): the
//! header and the summary describe inputs with it.

/// Facts about an opened input, for the header and the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputInfo {
    /// The input as given on the command line, its credentials hidden
    /// ([`crate::redact`]): what every output shows.
    pub path: String,
    /// Codec name.
    pub codec: String,
    /// Coded picture width.
    pub width: u32,
    /// Coded picture height.
    pub height: u32,
    /// Source pixel format.
    pub pix_fmt: String,
    /// Bits per sample of the source.
    pub bit_depth: u32,
    /// Average frame rate, if the container knows it.
    pub frame_rate: Option<f64>,
    /// Frames the container announces, if any.
    pub frames_announced: Option<u64>,
    /// How frames are converted before measuring, if they are.
    pub conversion: Option<String>,
    /// Whether the input is watched as a live stream.
    pub live: bool,
    /// Sample range: `limited`, `full` or `unknown`.
    pub range: String,
    /// Interlaced (field-coded) content, as the stream declares it.
    pub interlaced: bool,
    /// Where the video stream starts on its own timeline (seconds), if
    /// the container says.
    pub start: Option<f64>,
    /// The container format FFmpeg read it as (`mpegts`, `matroska,webm`).
    pub container: String,
    /// Bits per second of the video stream as the container declares it
    /// (else of the whole file), if it does.
    pub bitrate: Option<u64>,
    /// The FFmpeg filtergraph its pictures go through, if any; `width`,
    /// `height` and `pix_fmt` are then what the graph gives.
    pub filter: Option<String>,
}
