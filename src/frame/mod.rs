//! Decoded pictures in a planar layout the metric kernels can read directly.
//!
//! Every frame that reaches the metrics is planar with tightly packed rows
//! (`stride == width`): rows are copied out of FFmpeg's frames by their
//! stride once, at decode time. Buffers are recycled through [`FramePool`].

pub mod signature;

use crossbeam_channel::{Receiver, Sender, bounded};

/// Samples of one plane: 8-bit data stays `u8`, 9–16-bit data is `u16`.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// One byte per sample (bit depth 8).
    U8(Vec<u8>),
    /// Two bytes per sample (bit depths 9 to 16), native endianness.
    U16(Vec<u16>),
}

/// One plane of a picture, rows packed one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    /// Samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` samples.
    pub samples: Samples,
}

/// A borrowed view of a plane's samples, for kernels generic over sample type.
#[derive(Debug, Clone, Copy)]
pub struct PlaneView<'a, T> {
    /// Packed samples, `width * height` of them.
    pub data: &'a [T],
    /// Samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl<'a, T> PlaneView<'a, T> {
    /// Wraps a packed buffer; `None` if it is shorter than `width * height`.
    pub fn new(data: &'a [T], width: usize, height: usize) -> Option<Self> {
        let n = width.checked_mul(height)?;
        if data.len() < n {
            return None;
        }
        Some(PlaneView {
            data: &data[..n],
            width,
            height,
        })
    }

    /// Row `y` as a slice of `width` samples.
    #[inline]
    pub fn row(&self, y: usize) -> &'a [T] {
        &self.data[y * self.width..(y + 1) * self.width]
    }
}

impl Plane {
    /// A plane of zeros of the given size and bit depth.
    pub fn zeroed(width: usize, height: usize, bit_depth: u32) -> Self {
        let n = width * height;
        let samples = if bit_depth <= 8 {
            Samples::U8(vec![0; n])
        } else {
            Samples::U16(vec![0; n])
        };
        Plane {
            width,
            height,
            samples,
        }
    }

    /// Resizes the buffer for a new geometry, reusing its allocation.
    pub fn reshape(&mut self, width: usize, height: usize, bit_depth: u32) {
        let n = width * height;
        match (&mut self.samples, bit_depth <= 8) {
            (Samples::U8(v), true) => v.resize(n, 0),
            (Samples::U16(v), false) => v.resize(n, 0),
            (s, true) => *s = Samples::U8(vec![0; n]),
            (s, false) => *s = Samples::U16(vec![0; n]),
        }
        self.width = width;
        self.height = height;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.width * self.height
    }

    /// True when the plane holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A decoded picture: its planes, bit depth and position in its input.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Planes in key order (`y u v`, `r g b`, or `y` alone).
    pub planes: Vec<Plane>,
    /// Bits per sample, 8 to 16.
    pub bit_depth: u32,
    /// 0-based index of the frame within its input.
    pub index: u64,
    /// Presentation time in seconds from the input's first frame.
    pub pts: f64,
    /// The stream's own presentation time in seconds, if it has one.
    pub abs_pts: Option<f64>,
    /// When the decoder delivered the frame (for latency figures).
    pub decoded_at: Option<std::time::Instant>,
    /// Live inputs: when the frame's data arrived on the sender's
    /// real-time schedule (for the lag; see `input::schedule`).
    pub arrived_at: Option<std::time::Instant>,
    /// Luma identity hash and blackness, computed by the decoder while
    /// copying (`None`: computed on demand).
    pub luma_sig: Option<(u64, bool)>,
    /// Live inputs: decoded from damaged data (after data lost in transit
    /// or a decode error, until the next clean keyframe).
    pub damaged: bool,
}

impl Frame {
    /// An empty frame to be filled by a decoder.
    pub fn empty() -> Self {
        Frame {
            planes: Vec::new(),
            bit_depth: 8,
            index: 0,
            pts: 0.0,
            abs_pts: None,
            decoded_at: None,
            arrived_at: None,
            luma_sig: None,
            damaged: false,
        }
    }

    /// Builds an 8-bit frame from packed planes `(width, height, samples)`.
    pub fn from_u8(planes: Vec<(usize, usize, Vec<u8>)>) -> Self {
        Frame {
            planes: planes
                .into_iter()
                .map(|(width, height, v)| Plane {
                    width,
                    height,
                    samples: Samples::U8(v),
                })
                .collect(),
            bit_depth: 8,
            index: 0,
            pts: 0.0,
            abs_pts: None,
            decoded_at: None,
            arrived_at: None,
            luma_sig: None,
            damaged: false,
        }
    }

    /// Builds a 9–16-bit frame from packed planes `(width, height, samples)`.
    pub fn from_u16(bit_depth: u32, planes: Vec<(usize, usize, Vec<u16>)>) -> Self {
        Frame {
            planes: planes
                .into_iter()
                .map(|(width, height, v)| Plane {
                    width,
                    height,
                    samples: Samples::U16(v),
                })
                .collect(),
            bit_depth,
            index: 0,
            pts: 0.0,
            abs_pts: None,
            decoded_at: None,
            arrived_at: None,
            luma_sig: None,
            damaged: false,
        }
    }

    /// `2^bit_depth - 1`.
    pub fn peak(&self) -> f64 {
        ((1u64 << self.bit_depth) - 1) as f64
    }
}

/// Recycles frame buffers between the decoders and the metric workers so the
/// steady state allocates nothing. Holding at most `capacity` idle frames.
#[derive(Clone)]
pub struct FramePool {
    tx: Sender<Frame>,
    rx: Receiver<Frame>,
}

impl FramePool {
    /// A pool that keeps at most `capacity` idle frames.
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = bounded(capacity.max(1));
        FramePool { tx, rx }
    }

    /// An idle frame if one is available, else a new empty one.
    pub fn take(&self) -> Frame {
        self.rx.try_recv().unwrap_or_else(|_| Frame::empty())
    }

    /// Hands a frame back; it is dropped if the pool is full.
    pub fn give(&self, frame: Frame) {
        // A full pool simply frees the buffer: that is the pool's bound.
        if self.tx.try_send(frame).is_err() {
            // dropped on purpose
        }
    }
}

/// A sample type the metric kernels read: `u8` or `u16`.
pub trait Sample: Copy + Send + Sync + 'static {
    /// The value as an unsigned integer.
    fn to_u32(self) -> u32;
    /// The value as a float.
    fn to_f64(self) -> f64;
}

impl Sample for u8 {
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Sample for u16 {
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}
