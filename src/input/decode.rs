//! Demux + decode one input into pooled planar frames.
//!
//! `send_packet`, then `receive_frame` until EAGAIN; at the end `send_eof`
//! and drain again. Every FFmpeg error is handled: a packet that fails to
//! decode is a reported, counted event; an input that cannot be opened is a
//! fatal error naming the input.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;
use ff::format::Pixel;
use ff::software::scaling;
use ffmpeg_next as ff;

use super::format::{self, Target};
use crate::error::Error;
use crate::frame::{Frame, FramePool, Samples};

/// What a decoder thread reports, in order.
#[derive(Debug)]
pub enum DecodeEvent {
    /// A decoded frame in the target layout.
    Frame(Frame),
    /// A packet or frame failed to decode; decoding goes on.
    DecodeError {
        /// FFmpeg's message.
        cause: String,
    },
    /// The input ended; `frames` decoded in all.
    End {
        /// Frames delivered.
        frames: u64,
    },
    /// The input failed in a way that ends it.
    Failed(Error),
}

/// Facts about an opened input, for the header and the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputInfo {
    /// The input as given on the command line.
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
}

/// An opened input, ready to decode on its own thread.
pub struct Decoder {
    label: String,
    ictx: ff::format::context::Input,
    decoder: ff::decoder::Video,
    stream_index: usize,
    time_base: f64,
    frame_rate: Option<f64>,
    source: Target,
    /// Facts about the input.
    pub info: InputInfo,
}

fn input_error(label: &str, cause: impl std::fmt::Display) -> Error {
    Error::Input {
        input: label.to_string(),
        cause: cause.to_string(),
    }
}

/// The FFmpeg URL of a command-line input (`-` is standard input).
pub fn url_of(label: &str) -> String {
    if label == "-" {
        "pipe:0".to_string()
    } else {
        label.to_string()
    }
}

fn looks_local(label: &str) -> bool {
    label != "-" && !label.contains("://") && !label.starts_with("pipe:")
}

/// An ISO-BMFF file (starts with an `ftyp` box) that FFmpeg could not
/// open: almost always one whose `moov` atom is missing.
fn is_mp4_without_moov(label: &str) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    match std::fs::File::open(label).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => &head[4..8] == b"ftyp",
        Err(_) => false,
    }
}

/// Opens `label` (a path, a URL, or `-`), finds its best video stream and
/// opens a decoder for it.
pub fn open(label: &str) -> Result<Decoder, Error> {
    if looks_local(label) {
        let p = Path::new(label.strip_prefix("file:").unwrap_or(label));
        match std::fs::metadata(p) {
            Err(e) => return Err(input_error(label, format!("cannot open: {e}"))),
            Ok(m) if m.is_dir() => return Err(input_error(label, "is a directory")),
            Ok(m) if m.len() == 0 => return Err(input_error(label, "file is empty")),
            Ok(_) => {}
        }
    }
    let ictx = ff::format::input(&url_of(label)).map_err(|e| {
        let hint = if looks_local(label) && is_mp4_without_moov(label) {
            " (an MP4/MOV file whose moov atom is missing: an unfinished or truncated recording)"
        } else {
            ""
        };
        input_error(label, format!("cannot open: {e}{hint}"))
    })?;
    let stream = ictx
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| input_error(label, "no video stream"))?;
    let stream_index = stream.index();
    let time_base = f64::from(stream.time_base());
    let rate = stream.avg_frame_rate();
    let rate = if rate.numerator() > 0 && rate.denominator() > 0 {
        Some(f64::from(rate))
    } else {
        let r = stream.rate();
        (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
    };
    let frames_announced = (stream.frames() > 0).then(|| stream.frames() as u64);
    let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| input_error(label, format!("cannot read codec parameters: {e}")))?;
    ctx.set_threading(ff::threading::Config::kind(ff::threading::Type::Frame));
    let codec_name = ctx.id().name().to_string();
    let decoder = ctx
        .decoder()
        .video()
        .map_err(|e| input_error(label, format!("cannot open decoder ({codec_name}): {e}")))?;
    let (width, height, pixel) = (decoder.width(), decoder.height(), decoder.format());
    if width == 0 || height == 0 || pixel == Pixel::None {
        return Err(input_error(
            label,
            "no decodable video frame (picture size or pixel format unknown)",
        ));
    }
    let facts =
        format::facts(pixel).ok_or_else(|| input_error(label, "unsupported pixel format"))?;
    let info = InputInfo {
        path: label.to_string(),
        codec: codec_name,
        width,
        height,
        pix_fmt: format::name(pixel).to_string(),
        bit_depth: facts.depth,
        frame_rate: rate,
        frames_announced,
        conversion: None,
    };
    Ok(Decoder {
        label: label.to_string(),
        ictx,
        decoder,
        stream_index,
        time_base,
        frame_rate: rate,
        source: Target {
            pixel,
            width,
            height,
        },
        info,
    })
}

impl Decoder {
    /// The layout this input is measured in when it is the reference: its
    /// own size in its planar equivalent format.
    pub fn own_target(&self) -> Result<Target, Error> {
        let pixel = format::planar_equivalent(self.source.pixel).ok_or_else(|| {
            input_error(
                &self.label,
                format!("unsupported pixel format {}", self.info.pix_fmt),
            )
        })?;
        Ok(Target {
            pixel,
            width: self.source.width,
            height: self.source.height,
        })
    }

    /// Decides how this input's frames reach `target`, records it in
    /// [`InputInfo::conversion`], and returns it.
    pub fn set_target(&mut self, target: Target) -> Option<String> {
        let same_size = (self.source.width, self.source.height) == (target.width, target.height);
        let conversion = if same_size && format::same_planes(self.source.pixel, target.pixel) {
            None
        } else {
            Some(format!(
                "{} {}x{} -> {} {}x{} (swscale bicubic)",
                format::name(self.source.pixel),
                self.source.width,
                self.source.height,
                format::name(target.pixel),
                target.width,
                target.height
            ))
        };
        self.info.conversion = conversion.clone();
        conversion
    }

    /// Decodes every frame into `target` layout and sends them, in order,
    /// to `tx`. Stops early when `stop` is set or the receiver is gone.
    pub fn run(
        mut self,
        target: Target,
        tx: Sender<DecodeEvent>,
        pool: FramePool,
        stop: Arc<AtomicBool>,
    ) -> std::time::Duration {
        let started = std::time::Instant::now();
        let mut state = Convert::new(target, self.frame_rate);
        let mut consecutive_read_errors = 0u32;
        let mut decoded = ff::frame::Video::empty();
        let mut alive = true;
        while alive && !stop.load(Ordering::Relaxed) {
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => consecutive_read_errors = 0,
                Err(ff::Error::Eof) => break,
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(e) => {
                    consecutive_read_errors += 1;
                    if consecutive_read_errors > 32 {
                        // The demuxer keeps failing: treat it as the end of
                        // the input, after reporting why.
                        alive = tx
                            .send(DecodeEvent::DecodeError {
                                cause: format!("read error, input ends here: {e}"),
                            })
                            .is_ok();
                        break;
                    }
                    alive = tx
                        .send(DecodeEvent::DecodeError {
                            cause: format!("read error: {e}"),
                        })
                        .is_ok();
                    continue;
                }
            }
            if packet.stream() != self.stream_index {
                continue;
            }
            loop {
                match self.decoder.send_packet(&packet) {
                    Ok(()) => break,
                    Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                        // The decoder is full: take its frames, then retry.
                        alive = self.drain(&mut decoded, &mut state, &tx, &pool);
                        if !alive {
                            break;
                        }
                    }
                    Err(e) => {
                        alive = tx
                            .send(DecodeEvent::DecodeError {
                                cause: format!("decode error: {e}"),
                            })
                            .is_ok();
                        break;
                    }
                }
            }
            if !alive {
                break;
            }
            alive = self.drain(&mut decoded, &mut state, &tx, &pool);
        }
        if alive && !stop.load(Ordering::Relaxed) {
            match self.decoder.send_eof() {
                Ok(()) => {}
                Err(ff::Error::Eof) => {}
                Err(e) => {
                    alive = tx
                        .send(DecodeEvent::DecodeError {
                            cause: format!("decode error at end of input: {e}"),
                        })
                        .is_ok();
                }
            }
            if alive {
                alive = self.drain(&mut decoded, &mut state, &tx, &pool);
            }
        }
        if alive {
            // The receiver may already be gone; nothing more to tell then.
            if tx
                .send(DecodeEvent::End {
                    frames: state.next_index,
                })
                .is_err()
            {
                // receiver gone: the pipeline is shutting down
            }
        }
        started.elapsed().saturating_sub(state.waiting)
    }

    /// Receives every frame the decoder has ready. Returns false when the
    /// receiver is gone or a fatal conversion error was reported.
    fn drain(
        &mut self,
        decoded: &mut ff::frame::Video,
        state: &mut Convert,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> bool {
        loop {
            match self.decoder.receive_frame(decoded) {
                Ok(()) => {}
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => return true,
                Err(ff::Error::Eof) => return true,
                Err(e) => {
                    return tx
                        .send(DecodeEvent::DecodeError {
                            cause: format!("decode error: {e}"),
                        })
                        .is_ok();
                }
            }
            let mut frame = pool.take();
            match state.fill(decoded, &mut frame, self.time_base) {
                Ok(()) => {
                    let t0 = std::time::Instant::now();
                    let sent = tx.send(DecodeEvent::Frame(frame));
                    state.waiting += t0.elapsed();
                    if sent.is_err() {
                        return false;
                    }
                }
                Err(cause) => {
                    // Conversion cannot go on (swscale refused the geometry).
                    if tx
                        .send(DecodeEvent::Failed(input_error(&self.label, cause)))
                        .is_err()
                    {
                        // receiver gone: the pipeline is shutting down
                    }
                    return false;
                }
            }
        }
    }
}

/// Turns decoded frames into planar frames of a fixed target layout,
/// converting with swscale when the decoded frame is in another format or
/// size, and numbering and timing them.
struct Convert {
    target: Target,
    depth: u32,
    order: Vec<usize>,
    dims: Vec<(usize, usize)>,
    scaler: Option<scaling::Context>,
    scaled: ff::frame::Video,
    next_index: u64,
    first_ts: Option<i64>,
    last_pts: f64,
    frame_rate: Option<f64>,
    waiting: std::time::Duration,
}

impl Convert {
    fn new(target: Target, frame_rate: Option<f64>) -> Self {
        Convert {
            target,
            depth: format::depth_of(target.pixel),
            order: format::plane_order(target.pixel),
            dims: format::plane_dims(target.pixel, target.width, target.height),
            scaler: None,
            scaled: ff::frame::Video::empty(),
            next_index: 0,
            first_ts: None,
            last_pts: 0.0,
            frame_rate,
            waiting: std::time::Duration::ZERO,
        }
    }

    fn fill(
        &mut self,
        src: &ff::frame::Video,
        out: &mut Frame,
        time_base: f64,
    ) -> Result<(), String> {
        let native = (src.width(), src.height()) == (self.target.width, self.target.height)
            && format::same_planes(src.format(), self.target.pixel);
        let pic: &ff::frame::Video = if native {
            src
        } else {
            let stale = match &self.scaler {
                Some(s) => {
                    s.input().format != src.format()
                        || s.input().width != src.width()
                        || s.input().height != src.height()
                }
                None => true,
            };
            if stale {
                let ctx = scaling::Context::get(
                    src.format(),
                    src.width(),
                    src.height(),
                    self.target.pixel,
                    self.target.width,
                    self.target.height,
                    scaling::Flags::BICUBIC
                        | scaling::Flags::ACCURATE_RND
                        | scaling::Flags::FULL_CHR_H_INT,
                )
                .map_err(|e| {
                    format!(
                        "cannot convert {} {}x{} to {} {}x{}: {e}",
                        format::name(src.format()),
                        src.width(),
                        src.height(),
                        format::name(self.target.pixel),
                        self.target.width,
                        self.target.height
                    )
                })?;
                self.scaler = Some(ctx);
            }
            let Some(scaler) = self.scaler.as_mut() else {
                return Err("internal error: no scaler".to_string());
            };
            scaler
                .run(src, &mut self.scaled)
                .map_err(|e| format!("conversion failed: {e}"))?;
            &self.scaled
        };
        out.bit_depth = self.depth;
        out.planes.truncate(self.dims.len());
        while out.planes.len() < self.dims.len() {
            out.planes
                .push(crate::frame::Plane::zeroed(0, 0, self.depth));
        }
        for (i, (plane, &(w, h))) in out.planes.iter_mut().zip(&self.dims).enumerate() {
            plane.reshape(w, h, self.depth);
            let data_index = self.order[i];
            let stride = pic.stride(data_index);
            let bytes = pic.data(data_index);
            match &mut plane.samples {
                Samples::U8(dst) => {
                    for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                        let start = y * stride;
                        row.copy_from_slice(&bytes[start..start + w]);
                    }
                }
                Samples::U16(dst) => {
                    for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                        let start = y * stride;
                        let src_row = &bytes[start..start + 2 * w];
                        for (d, s) in row.iter_mut().zip(src_row.chunks_exact(2)) {
                            *d = u16::from_le_bytes([s[0], s[1]]);
                        }
                    }
                }
            }
        }
        out.index = self.next_index;
        out.pts = match src.timestamp() {
            Some(ts) => {
                let first = *self.first_ts.get_or_insert(ts);
                (ts - first) as f64 * time_base
            }
            None => match self.frame_rate {
                Some(r) if r > 0.0 => self.next_index as f64 / r,
                _ => self.last_pts,
            },
        };
        self.last_pts = out.pts;
        self.next_index += 1;
        Ok(())
    }
}
