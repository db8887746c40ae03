//! Demux + decode one input into pooled planar frames.
//!
//! `send_packet`, then `receive_frame` until EAGAIN; at the end `send_eof`
//! and drain again. Every FFmpeg error is handled: a packet that fails to
//! decode is a reported, counted event; an input that cannot be opened is a
//! fatal error naming the input. Live network inputs survive stalls and
//! errors: the loss is reported, the input is reopened with backoff, and
//! decoding goes on.

use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ff::format::Pixel;
use ff::software::scaling;
use ffmpeg_next as ff;

use super::format::{self, Target};
use super::info::InputInfo;
use crate::cpu::{CpuLevel, cpu_level};
use crate::error::Error;
use crate::frame::signature::SigAcc;
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
    /// A live input stalled or failed; it is being reopened.
    Lost {
        /// Why.
        cause: String,
    },
    /// A lost live input delivers again.
    Restored {
        /// Reconnection attempts it took.
        attempts: u64,
    },
    /// The input ended; `frames` decoded in all.
    End {
        /// Frames delivered.
        frames: u64,
    },
    /// The input failed in a way that ends it.
    Failed(Error),
}

/// Demuxer settings from the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputOptions {
    /// Demuxer for every input (`--input-format`).
    pub format: Option<String>,
    /// Options for raw inputs (`--size`, `--pix-fmt`, `--rate`).
    pub raw: Vec<(String, String)>,
    /// Options for the reference (`--ref-opt`).
    pub reference: Vec<(String, String)>,
    /// Options for the distorted inputs (`--dist-opt`): for every one
    /// (`None`), or for the one of that index (`--dist-opt N:KEY=VALUE`).
    pub distorted: Vec<(Option<usize>, String, String)>,
    /// The Nth video stream of every input (`--stream`).
    pub stream: Option<usize>,
}

/// Whether `label` is read with the rawvideo demuxer.
pub fn is_raw(label: &str, format: Option<&str>) -> bool {
    if let Some(f) = format {
        return f == "rawvideo";
    }
    let l = label.to_ascii_lowercase();
    looks_local(label) && [".yuv", ".raw", ".rgb"].iter().any(|e| l.ends_with(e))
}

impl InputOptions {
    /// The open options of the reference (`index = None`) or of distorted
    /// input `index`, on top of `base`; refuses a raw input without its
    /// size and pixel format.
    pub fn for_input(
        &self,
        label: &str,
        index: Option<usize>,
        base: &OpenOptions,
    ) -> Result<OpenOptions, Error> {
        let reference = index.is_none();
        let raw = is_raw(label, self.format.as_deref());
        let mut demuxer = Vec::new();
        if raw {
            demuxer.extend(self.raw.iter().cloned());
        }
        if reference {
            demuxer.extend(self.reference.iter().cloned());
        } else {
            // options for every distorted input first, then this one's own
            let all = self.distorted.iter().filter(|(i, _, _)| i.is_none());
            let own = self
                .distorted
                .iter()
                .filter(|(i, _, _)| i.is_some() && *i == index);
            demuxer.extend(all.chain(own).map(|(_, k, v)| (k.clone(), v.clone())));
        }
        let format = match (&self.format, raw) {
            (Some(f), _) => Some(f.clone()),
            (None, true) => Some("rawvideo".to_string()),
            (None, false) => None,
        };
        if raw {
            let has = |k: &str| demuxer.iter().any(|(key, _)| key == k);
            if !has("video_size") || !has("pixel_format") {
                let flag = if reference { "--ref-opt" } else { "--dist-opt" };
                return Err(Error::Usage(format!(
                    "input '{label}': raw video needs its picture size and pixel format: give --size WxH and --pix-fmt FMT (and --rate FPS, default 25), or {flag} video_size=WxH and {flag} pixel_format=FMT"
                )));
            }
        }
        Ok(OpenOptions {
            format,
            demuxer,
            stream: self.stream,
            ..base.clone()
        })
    }
}

/// How inputs are opened and watched.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Forced demuxer (`rawvideo`, …).
    pub format: Option<String>,
    /// Demuxer options.
    pub demuxer: Vec<(String, String)>,
    /// The Nth video stream instead of the best one.
    pub stream: Option<usize>,
    /// Live monitoring: survive stalls and errors of network inputs.
    pub live: bool,
    /// A live input that delivers nothing for this long is lost.
    pub stall_timeout: Duration,
    /// Set to make every blocking FFmpeg call return at once.
    pub stop: Arc<AtomicBool>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            format: None,
            demuxer: Vec::new(),
            stream: None,
            live: false,
            stall_timeout: Duration::from_secs(5),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// One open demuxer + decoder session of an input.
struct Session {
    ictx: ff::format::context::Input,
    decoder: ff::decoder::Video,
    stream_index: usize,
    time_base: f64,
    frame_rate: Option<f64>,
    source: Target,
    codec: String,
    frames_announced: Option<u64>,
    range: String,
    interlaced: bool,
}

/// An opened input, ready to decode on its own thread.
pub struct Decoder {
    label: String,
    session: Option<Session>,
    source: Target,
    options: OpenOptions,
    network: bool,
    activity: Arc<AtomicU64>,
    /// Set when the input is a YUV4MPEG2 file whose frames can be read
    /// directly (see [`super::y4m`]).
    y4m: Option<super::y4m::Layout>,
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

/// Whether `label` is a network stream (udp, srt, rtmp, rtp, rtsp, tcp,
/// http(s)/HLS): watched as live, and reopened after a loss.
pub fn is_network(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    [
        "udp://", "srt://", "rtmp://", "rtmps://", "rtp://", "rtsp://", "tcp://", "http://",
        "https://",
    ]
    .iter()
    .any(|p| l.starts_with(p))
}

/// Protocols that carry a broadcast with no end of their own (udp, rtp,
/// srt, rtmp, rtsp, tcp): an end of stream there is a loss.
pub fn is_broadcast(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    [
        "udp://", "srt://", "rtmp://", "rtmps://", "rtp://", "rtsp://", "tcp://",
    ]
    .iter()
    .any(|p| l.starts_with(p))
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

/// Milliseconds since the first call, a clock shared by decoder threads
/// and their interrupt callbacks.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// `avformat_open_input` + `avformat_find_stream_info` with an interrupt
/// callback (so a stalled live read returns) and demuxer options.
fn open_input(
    url: &str,
    format: Option<&str>,
    options: ff::Dictionary,
    interrupt: impl FnMut() -> bool + 'static,
) -> Result<ff::format::context::Input, ff::Error> {
    use ff::ffi;
    let curl = std::ffi::CString::new(url).map_err(|_| ff::Error::InvalidData)?;
    let fmt = match format {
        Some(name) => {
            let cname = std::ffi::CString::new(name).map_err(|_| ff::Error::InvalidData)?;
            // SAFETY: av_find_input_format returns a pointer to a static
            // demuxer description, or null.
            let f = unsafe { ffi::av_find_input_format(cname.as_ptr()) };
            if f.is_null() {
                return Err(ff::Error::DemuxerNotFound);
            }
            f
        }
        None => std::ptr::null(),
    };
    // SAFETY: the context is allocated here and either handed to
    // `Input::wrap`, which owns and frees it, or freed by
    // avformat_open_input / avformat_close_input on failure. The interrupt
    // closure is leaked on purpose: FFmpeg may call it until the context
    // is closed (a few bytes per open).
    unsafe {
        let mut ps = ffi::avformat_alloc_context();
        if ps.is_null() {
            return Err(ff::Error::Other {
                errno: ff::util::error::ENOMEM,
            });
        }
        (*ps).interrupt_callback = ff::util::interrupt::new(Box::new(interrupt)).interrupt;
        let mut opts = options.disown();
        let res = ffi::avformat_open_input(&mut ps, curl.as_ptr(), fmt as _, &mut opts);
        ff::Dictionary::own(opts);
        if res != 0 {
            return Err(ff::Error::from(res));
        }
        let r = ffi::avformat_find_stream_info(ps, std::ptr::null_mut());
        if r < 0 {
            ffi::avformat_close_input(&mut ps);
            return Err(ff::Error::from(r));
        }
        Ok(ff::format::context::Input::wrap(ps))
    }
}

fn open_session(
    label: &str,
    options: &OpenOptions,
    network: bool,
    activity: &Arc<AtomicU64>,
) -> Result<Session, Error> {
    let mut dict = ff::Dictionary::new();
    for (k, v) in &options.demuxer {
        dict.set(k, v);
    }
    if network && label.to_ascii_lowercase().starts_with("udp://") {
        // A slow reader must not turn a burst into a fatal overrun.
        dict.set("overrun_nonfatal", "1");
        dict.set("fifo_size", "1000000");
    }
    let stop = options.stop.clone();
    let watch = options.live && network;
    let stall_ms = options.stall_timeout.as_millis() as u64;
    let act = activity.clone();
    act.store(now_ms(), Ordering::Relaxed);
    let interrupt = move || {
        stop.load(Ordering::Relaxed)
            || (watch && now_ms().saturating_sub(act.load(Ordering::Relaxed)) > stall_ms)
    };
    let ictx = open_input(&url_of(label), options.format.as_deref(), dict, interrupt).map_err(|e| {
        if let (ff::Error::DemuxerNotFound, Some(f)) = (&e, &options.format) {
            return Error::Usage(format!("--input-format '{f}': FFmpeg has no such demuxer"));
        }
        let hint = if looks_local(label) && is_mp4_without_moov(label) {
            " (an MP4/MOV file whose moov atom is missing: an unfinished or truncated recording)"
        } else if watch && matches!(e, ff::Error::Exit) {
            " (no data arrived within the stall timeout)"
        } else {
            ""
        };
        input_error(label, format!("cannot open: {e}{hint}"))
    })?;
    let stream = match options.stream {
        None => ictx
            .streams()
            .best(ff::media::Type::Video)
            .ok_or_else(|| input_error(label, "no video stream"))?,
        Some(n) => {
            let videos: Vec<_> = ictx
                .streams()
                .filter(|s| s.parameters().medium() == ff::media::Type::Video)
                .collect();
            let count = videos.len();
            if count == 1 {
                // a single video stream is the one to use
                videos
                    .into_iter()
                    .next()
                    .ok_or_else(|| input_error(label, "no video stream"))?
            } else {
                videos.into_iter().nth(n).ok_or_else(|| {
                    input_error(
                        label,
                        format!("--stream {n}: the input has {count} video stream(s)"),
                    )
                })?
            }
        }
    };
    let stream_index = stream.index();
    let time_base = f64::from(stream.time_base());
    let rate = stream.avg_frame_rate();
    let frame_rate = if rate.numerator() > 0 && rate.denominator() > 0 {
        Some(f64::from(rate))
    } else {
        let r = stream.rate();
        (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
    };
    let frames_announced = (stream.frames() > 0).then(|| stream.frames() as u64);
    let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| input_error(label, format!("cannot read codec parameters: {e}")))?;
    // Frame threads per decoder: half the cores each (the two decoders run
    // side by side), at most 4. On 2 cores that is one: measured on the
    // 1080p H.264 pair, 1 thread beat 2 and 3 (psnr,ssim 1.11 s against
    // 1.21 and 1.17 s), and more threads hold more pictures in memory.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut threading = ff::threading::Config::kind(ff::threading::Type::Frame);
    threading.count = (cores / 2).clamp(1, 4);
    ctx.set_threading(threading);
    let codec = ctx.id().name().to_string();
    let decoder = ctx
        .decoder()
        .video()
        .map_err(|e| input_error(label, format!("cannot open decoder ({codec}): {e}")))?;
    let (width, height, pixel) = (decoder.width(), decoder.height(), decoder.format());
    if width == 0 || height == 0 || pixel == Pixel::None {
        return Err(input_error(
            label,
            "no decodable video frame (picture size or pixel format unknown)",
        ));
    }
    if format::facts(pixel).is_none() {
        return Err(input_error(label, "unsupported pixel format"));
    }
    let range = match (decoder.color_range(), pixel) {
        (_, Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P) => "full",
        (ff::color::Range::JPEG, _) => "full",
        (ff::color::Range::MPEG, _) => "limited",
        _ => "unknown",
    }
    .to_string();
    // SAFETY: reading a plain field of the stream's codec parameters,
    // which live as long as the input context.
    let field_order = unsafe { (*stream_params_ptr(&ictx, stream_index)).field_order };
    use ff::ffi::AVFieldOrder as Fo;
    let interlaced = matches!(
        field_order,
        Fo::AV_FIELD_TT | Fo::AV_FIELD_BB | Fo::AV_FIELD_TB | Fo::AV_FIELD_BT
    );
    Ok(Session {
        ictx,
        decoder,
        stream_index,
        time_base,
        frame_rate,
        source: Target {
            pixel,
            width,
            height,
        },
        codec,
        frames_announced,
        range,
        interlaced,
    })
}

/// The codec parameters of stream `index`.
fn stream_params_ptr(
    ictx: &ff::format::context::Input,
    index: usize,
) -> *const ff::ffi::AVCodecParameters {
    // SAFETY: `index` came from this context's own stream list, so the
    // stream pointer and its codecpar are valid while `ictx` lives.
    unsafe {
        let ctx = ictx.as_ptr();
        let stream = *(*ctx).streams.add(index);
        (*stream).codecpar
    }
}

/// Opens `label` (a path, a URL, or `-`), finds its best video stream and
/// opens a decoder for it.
pub fn open(label: &str, options: &OpenOptions) -> Result<Decoder, Error> {
    if looks_local(label) {
        let p = Path::new(label.strip_prefix("file:").unwrap_or(label));
        match std::fs::metadata(p) {
            Err(e) => return Err(input_error(label, format!("cannot open: {e}"))),
            Ok(m) if m.is_dir() => return Err(input_error(label, "is a directory")),
            Ok(m) if m.is_file() && m.len() == 0 => {
                return Err(input_error(label, "file is empty"));
            }
            Ok(_) => {}
        }
    }
    let network = is_network(label);
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let session = open_session(label, options, network, &activity)?;
    let depth = format::facts(session.source.pixel)
        .map(|f| f.depth)
        .unwrap_or(8);
    let info = InputInfo {
        path: label.to_string(),
        codec: session.codec.clone(),
        width: session.source.width,
        height: session.source.height,
        pix_fmt: format::name(session.source.pixel).to_string(),
        bit_depth: depth,
        frame_rate: session.frame_rate,
        frames_announced: session.frames_announced,
        conversion: None,
        live: options.live && network,
        range: session.range.clone(),
        interlaced: session.interlaced,
    };
    let y4m = direct_y4m(label, options, &session);
    if y4m.is_none() && std::env::var("VQM_Y4M_READER").is_ok_and(|v| v == "direct") {
        return Err(input_error(
            label,
            "VQM_Y4M_READER=direct: not a local YUV4MPEG2 file of plain, whole frames that \
             can be read directly"
                .to_string(),
        ));
    }
    Ok(Decoder {
        label: label.to_string(),
        source: session.source,
        y4m,
        session: Some(session),
        options: options.clone(),
        network,
        activity,
        info,
    })
}

/// The frame layout of `label` when it is a YUV4MPEG2 file read
/// directly: a local regular file FFmpeg opened with its `yuv4mpegpipe`
/// demuxer, no demuxer or format options, and frames exactly as the
/// header describes them. `VQM_Y4M_READER=ffmpeg` keeps every frame with
/// FFmpeg; `VQM_Y4M_READER=direct` makes an input this reader cannot take
/// an error (the tests compare both paths, and know which one ran).
fn direct_y4m(label: &str, options: &OpenOptions, sess: &Session) -> Option<super::y4m::Layout> {
    if !looks_local(label)
        || options.format.is_some()
        || !options.demuxer.is_empty()
        || options.live
        || sess.ictx.format().name() != "yuv4mpegpipe"
        || std::env::var("VQM_Y4M_READER").is_ok_and(|v| v == "ffmpeg")
    {
        return None;
    }
    let src = sess.source;
    let bytes = if format::depth_of(src.pixel) > 8 {
        2
    } else {
        1
    };
    let frame_len: usize = format::plane_dims(src.pixel, src.width, src.height)
        .iter()
        .map(|(w, h)| w * h * bytes)
        .sum();
    let path = Path::new(label.strip_prefix("file:").unwrap_or(label));
    super::y4m::probe(path, frame_len as u64)
}

/// How a decoding session ended.
enum SessionEnd {
    /// End of input.
    Eof,
    /// The receiver is gone or a stop was asked.
    Stopped,
    /// A live input failed; reopen it.
    Lost(String),
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
        let source = self.source;
        let same_size = (source.width, source.height) == (target.width, target.height);
        let conversion = if same_size && format::same_planes(source.pixel, target.pixel) {
            None
        } else {
            Some(format!(
                "{} {}x{} -> {} {}x{} (swscale bicubic)",
                format::name(source.pixel),
                source.width,
                source.height,
                format::name(target.pixel),
                target.width,
                target.height
            ))
        };
        self.info.conversion = conversion.clone();
        conversion
    }

    fn live_network(&self) -> bool {
        self.options.live && self.network
    }

    /// Decodes every frame into `target` layout and sends them, in order,
    /// to `tx`. Stops early when `stop` is set or the receiver is gone.
    /// Returns the time spent working (not waiting on the queue).
    pub fn run(mut self, target: Target, tx: Sender<DecodeEvent>, pool: FramePool) -> Duration {
        let started = Instant::now();
        let rate = self.session.as_ref().and_then(|s| s.frame_rate);
        let mut state = Convert::new(target, rate);
        let native = (self.source.width, self.source.height) == (target.width, target.height)
            && format::same_planes(self.source.pixel, target.pixel)
            && format::depth_of(self.source.pixel) == state.depth;
        if let (true, Some(layout)) = (native, self.y4m.take()) {
            let time_base = self.session.as_ref().map_or(0.0, |s| s.time_base);
            // FFmpeg's session is not needed any more
            self.session = None;
            self.run_y4m(layout, time_base, &mut state, &tx, &pool);
            return started.elapsed().saturating_sub(state.waiting);
        }
        loop {
            match self.session_loop(&mut state, &tx, &pool) {
                SessionEnd::Stopped => break,
                // The end of a file, or of an HTTP(S)/HLS presentation that
                // ended, is the end; a broadcast protocol has no end.
                SessionEnd::Eof if !self.live_network() || !is_broadcast(&self.label) => {
                    if tx
                        .send(DecodeEvent::End {
                            frames: state.next_index,
                        })
                        .is_err()
                    {
                        // receiver gone: the pipeline is shutting down
                    }
                    break;
                }
                SessionEnd::Eof => {
                    if !self.reconnect("end of stream".to_string(), &tx, &mut state) {
                        break;
                    }
                }
                SessionEnd::Lost(cause) => {
                    if !self.reconnect(cause, &tx, &mut state) {
                        break;
                    }
                }
            }
        }
        started.elapsed().saturating_sub(state.waiting)
    }

    /// Reads a YUV4MPEG2 file's frames directly into pooled frames and
    /// sends them, then the end. A read error or a damaged frame marker is
    /// reported and ends the input (the frames before it stand).
    fn run_y4m(
        &mut self,
        layout: super::y4m::Layout,
        time_base: f64,
        state: &mut Convert,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) {
        let path = Path::new(self.label.strip_prefix("file:").unwrap_or(&self.label));
        let mut reader = match super::y4m::Reader::open(path, layout) {
            Ok(r) => r,
            Err(e) => {
                if tx
                    .send(DecodeEvent::Failed(input_error(
                        &self.label,
                        format!("cannot open: {e}"),
                    )))
                    .is_err()
                {
                    // receiver gone: the pipeline is shutting down
                }
                return;
            }
        };
        let peak = ((1u64 << state.depth) - 1) as f64;
        loop {
            if self.options.stop.load(Ordering::Relaxed) {
                return;
            }
            let mut frame = pool.take();
            state.shape(&mut frame);
            let ts = reader.position() as i64;
            match reader.read_into(&mut frame) {
                Ok(Some(sig)) => {
                    frame.luma_sig = Some(sig.finish(peak));
                    state.stamp(&mut frame, Some(ts), time_base);
                    let t0 = Instant::now();
                    let sent = tx.send(DecodeEvent::Frame(frame));
                    state.waiting += t0.elapsed();
                    if sent.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    pool.give(frame);
                    break;
                }
                Err(cause) => {
                    pool.give(frame);
                    let cause = format!("{cause}, input ends here");
                    if tx.send(DecodeEvent::DecodeError { cause }).is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        if tx
            .send(DecodeEvent::End {
                frames: state.next_index,
            })
            .is_err()
        {
            // receiver gone: the pipeline is shutting down
        }
    }

    /// Reports the loss, reopens with backoff until frames can flow or a
    /// stop is asked. Returns false when stopping.
    fn reconnect(&mut self, cause: String, tx: &Sender<DecodeEvent>, state: &mut Convert) -> bool {
        // Close the lost input first: a live socket must be free to reopen.
        self.session = None;
        if tx.send(DecodeEvent::Lost { cause }).is_err() {
            return false;
        }
        let mut attempts = 0u64;
        let mut backoff = Duration::from_millis(200);
        loop {
            if self.options.stop.load(Ordering::Relaxed) {
                return false;
            }
            attempts += 1;
            match open_session(&self.label, &self.options, self.network, &self.activity) {
                Ok(s) => {
                    state.restart(s.frame_rate);
                    self.session = Some(s);
                    return tx.send(DecodeEvent::Restored { attempts }).is_ok();
                }
                Err(_) => {
                    // Sleep in small steps so a stop is noticed quickly.
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if self.options.stop.load(Ordering::Relaxed) {
                            return false;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn session_loop(
        &mut self,
        state: &mut Convert,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> SessionEnd {
        let Some(mut sess) = self.session.take() else {
            return SessionEnd::Lost("input closed".to_string());
        };
        let end = self.decode_session(&mut sess, state, tx, pool);
        self.session = Some(sess);
        end
    }

    fn decode_session(
        &mut self,
        sess: &mut Session,
        state: &mut Convert,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> SessionEnd {
        let live = self.live_network();
        let mut consecutive_read_errors = 0u32;
        let mut decoded = ff::frame::Video::empty();
        self.activity.store(now_ms(), Ordering::Relaxed);
        loop {
            if self.options.stop.load(Ordering::Relaxed) {
                return SessionEnd::Stopped;
            }
            let mut packet = ff::Packet::empty();
            // The stall clock runs only while waiting for input, not while
            // this thread waited for room in its queue.
            self.activity.store(now_ms(), Ordering::Relaxed);
            match packet.read(&mut sess.ictx) {
                Ok(()) => consecutive_read_errors = 0,
                Err(ff::Error::Eof) => break,
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => {
                    if self.options.stop.load(Ordering::Relaxed) {
                        return SessionEnd::Stopped;
                    }
                    if live {
                        let cause = if matches!(e, ff::Error::Exit) {
                            format!(
                                "no data for {:.1} s",
                                self.options.stall_timeout.as_secs_f64()
                            )
                        } else {
                            format!("read error: {e}")
                        };
                        return SessionEnd::Lost(cause);
                    }
                    consecutive_read_errors += 1;
                    let last = consecutive_read_errors > 32;
                    let cause = if last {
                        format!("read error, input ends here: {e}")
                    } else {
                        format!("read error: {e}")
                    };
                    if tx.send(DecodeEvent::DecodeError { cause }).is_err() {
                        return SessionEnd::Stopped;
                    }
                    if last {
                        break;
                    }
                    continue;
                }
            }
            if packet.stream() != sess.stream_index {
                continue;
            }
            self.activity.store(now_ms(), Ordering::Relaxed);
            loop {
                match sess.decoder.send_packet(&packet) {
                    Ok(()) => break,
                    Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                        // The decoder is full: take its frames, then retry.
                        if !self.drain(sess, &mut decoded, state, tx, pool) {
                            return SessionEnd::Stopped;
                        }
                    }
                    Err(e) => {
                        if tx
                            .send(DecodeEvent::DecodeError {
                                cause: format!("decode error: {e}"),
                            })
                            .is_err()
                        {
                            return SessionEnd::Stopped;
                        }
                        break;
                    }
                }
            }
            if !self.drain(sess, &mut decoded, state, tx, pool) {
                return SessionEnd::Stopped;
            }
        }
        match sess.decoder.send_eof() {
            Ok(()) | Err(ff::Error::Eof) => {}
            Err(e) => {
                if tx
                    .send(DecodeEvent::DecodeError {
                        cause: format!("decode error at end of input: {e}"),
                    })
                    .is_err()
                {
                    return SessionEnd::Stopped;
                }
            }
        }
        if !self.drain(sess, &mut decoded, state, tx, pool) {
            return SessionEnd::Stopped;
        }
        SessionEnd::Eof
    }

    /// Receives every frame the decoder has ready. Returns false when the
    /// receiver is gone or a fatal conversion error was reported.
    fn drain(
        &mut self,
        sess: &mut Session,
        decoded: &mut ff::frame::Video,
        state: &mut Convert,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> bool {
        loop {
            match sess.decoder.receive_frame(decoded) {
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
            match state.fill(decoded, &mut frame, sess.time_base) {
                Ok(()) => {
                    if state.missing > 0
                        && tx
                            .send(DecodeEvent::DecodeError {
                                cause: format!(
                                    "{} frame(s) missing before {:.3} s: the timestamps jump (lost to decode errors)",
                                    state.missing, frame.pts
                                ),
                            })
                            .is_err()
                    {
                        return false;
                    }
                    let t0 = Instant::now();
                    let sent = tx.send(DecodeEvent::Frame(frame));
                    state.waiting += t0.elapsed();
                    if sent.is_err() {
                        return false;
                    }
                }
                Err(cause) => {
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
    /// pts of the session's first frame (0, or where a reopened live
    /// input continues the timeline).
    base_pts: f64,
    last_pts: f64,
    frame_rate: Option<f64>,
    waiting: std::time::Duration,
    /// Frames the timestamps say are missing before the frame just filled.
    missing: u64,
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
            base_pts: 0.0,
            last_pts: 0.0,
            frame_rate,
            waiting: std::time::Duration::ZERO,
            missing: 0,
        }
    }

    /// A reopened input: its timestamps start anew, so its timeline goes on
    /// one frame interval after the last frame delivered.
    fn restart(&mut self, frame_rate: Option<f64>) {
        if frame_rate.is_some() {
            self.frame_rate = frame_rate;
        }
        let step = self
            .frame_rate
            .filter(|r| *r > 0.0)
            .map(|r| 1.0 / r)
            .unwrap_or(0.0);
        self.base_pts = if self.next_index > 0 {
            self.last_pts + step
        } else {
            0.0
        };
        self.first_ts = None;
    }

    fn fill(
        &mut self,
        src: &ff::frame::Video,
        out: &mut Frame,
        time_base: f64,
    ) -> Result<(), String> {
        // SAFETY: copying the line sizes of a frame the decoder filled.
        let linesize = unsafe { (*src.as_ptr()).linesize };
        let positive = linesize[..self.dims.len().min(3)].iter().all(|l| *l > 0);
        // Bottom-up pictures (negative line sizes) go through swscale, which
        // writes a frame of our own with positive ones.
        let native = positive
            && (src.width(), src.height()) == (self.target.width, self.target.height)
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
        self.shape(out);
        let mut sig = SigAcc::default();
        for (i, (plane, &(w, _))) in out.planes.iter_mut().zip(&self.dims).enumerate() {
            let data_index = self.order[i];
            let stride = pic.stride(data_index);
            let bytes = pic.data(data_index);
            let sig = if i == 0 { Some(&mut sig) } else { None };
            match &mut plane.samples {
                Samples::U8(dst) => copy_rows(cpu_level(), dst, bytes, stride, w, sig),
                Samples::U16(dst) => copy_rows(cpu_level(), dst, bytes, stride, w, sig),
            }
        }
        out.luma_sig = Some(sig.finish(((1u64 << self.depth) - 1) as f64));
        self.stamp(out, src.timestamp(), time_base);
        Ok(())
    }

    /// Gives `out` this input's planes, sized, in the target's depth.
    fn shape(&self, out: &mut Frame) {
        out.bit_depth = self.depth;
        out.planes.truncate(self.dims.len());
        while out.planes.len() < self.dims.len() {
            out.planes
                .push(crate::frame::Plane::zeroed(0, 0, self.depth));
        }
        for (plane, &(w, h)) in out.planes.iter_mut().zip(&self.dims) {
            plane.reshape(w, h, self.depth);
        }
    }

    /// Numbers and times a filled frame from its timestamp `ts` (in
    /// `time_base` units), and counts frames the timestamps say are
    /// missing before it.
    fn stamp(&mut self, out: &mut Frame, ts: Option<i64>, time_base: f64) {
        out.index = self.next_index;
        out.abs_pts = ts.map(|ts| ts as f64 * time_base);
        out.pts = match ts {
            Some(ts) => {
                let first = *self.first_ts.get_or_insert(ts);
                self.base_pts + (ts - first) as f64 * time_base
            }
            None => match self.frame_rate {
                Some(r) if r > 0.0 => self.next_index as f64 / r,
                _ => self.last_pts,
            },
        };
        out.decoded_at = Some(std::time::Instant::now());
        // A constant-rate stream whose timestamps jump lost frames on the way
        // (a decode error the decoder did not report otherwise).
        self.missing = match self.frame_rate {
            Some(r) if r > 0.0 && self.next_index > 0 && ts.is_some() => {
                let gap = (out.pts - self.last_pts) * r - 1.0;
                if gap >= 0.5 { gap.round() as u64 } else { 0 }
            }
            _ => 0,
        };
        self.last_pts = out.pts;
        self.next_index += 1;
    }
}

/// Sample types a plane is copied into from FFmpeg's bytes.
trait RowSample: Copy {
    /// Bytes per sample.
    const BYTES: usize;
    /// Converts one row of little-endian bytes.
    fn copy_row(dst: &mut [Self], src: &[u8]);
    /// Feeds the row to the luma signature.
    fn feed(sig: &mut SigAcc, row: &[Self]);
}

impl RowSample for u8 {
    const BYTES: usize = 1;
    #[inline(always)]
    fn copy_row(dst: &mut [u8], src: &[u8]) {
        dst.copy_from_slice(src);
    }
    #[inline(always)]
    fn feed(sig: &mut SigAcc, row: &[u8]) {
        sig.feed_u8(row);
    }
}

impl RowSample for u16 {
    const BYTES: usize = 2;
    #[inline(always)]
    fn copy_row(dst: &mut [u16], src: &[u8]) {
        for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
            *d = u16::from_le_bytes([s[0], s[1]]);
        }
    }
    #[inline(always)]
    fn feed(sig: &mut SigAcc, row: &[u16]) {
        sig.feed_u16(row);
    }
}

/// Copies a plane's rows out of a frame with the given stride, feeding
/// each row to `sig` while it is in cache (luma only).
fn copy_rows<T: RowSample>(
    level: CpuLevel,
    dst: &mut [T],
    src: &[u8],
    stride: usize,
    w: usize,
    sig: Option<&mut SigAcc>,
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: these levels are only produced when the CPU reports AVX2.
        CpuLevel::Avx2 | CpuLevel::Avx2Fma | CpuLevel::Avx512 => unsafe {
            copy_rows_avx2(dst, src, stride, w, sig)
        },
        _ => copy_rows_body(dst, src, stride, w, sig),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_rows_avx2<T: RowSample>(
    dst: &mut [T],
    src: &[u8],
    stride: usize,
    w: usize,
    sig: Option<&mut SigAcc>,
) {
    copy_rows_body(dst, src, stride, w, sig)
}

#[inline(always)]
fn copy_rows_body<T: RowSample>(
    dst: &mut [T],
    src: &[u8],
    stride: usize,
    w: usize,
    mut sig: Option<&mut SigAcc>,
) {
    for (y, row) in dst.chunks_exact_mut(w.max(1)).enumerate() {
        let start = y * stride;
        // a few rows ahead, while this one is copied
        let ahead = start + 4 * stride;
        if let Some(r) = src.get(ahead..ahead + T::BYTES * w) {
            crate::cpu::prefetch(r);
        }
        T::copy_row(row, &src[start..start + T::BYTES * w]);
        if let Some(sig) = sig.as_deref_mut() {
            T::feed(sig, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::available_levels;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        crate::metrics::ssim::dispatch_tests::noise(n, seed, 255)
            .into_iter()
            .map(|v| v as u8)
            .collect()
    }

    /// `copy_rows` at `level` into a fresh plane: the samples and the
    /// luma signature.
    fn copied<T: RowSample + Default>(
        level: CpuLevel,
        src: &[u8],
        stride: usize,
        w: usize,
        h: usize,
    ) -> (Vec<T>, (u64, bool)) {
        let mut dst = vec![T::default(); w * h];
        let mut sig = SigAcc::default();
        copy_rows(level, &mut dst, src, stride, w, Some(&mut sig));
        (dst, sig.finish(255.0))
    }

    #[test]
    fn copy_rows_at_every_level_equals_a_plain_row_by_row_copy() {
        // widths around the vector and chunk sizes, strides with padding
        for (w, h, pad) in [
            (1, 1, 0),
            (7, 3, 9),
            (32, 4, 32),
            (333, 5, 51),
            (1030, 3, 2),
        ] {
            let stride = w * 2 + pad;
            let src = noise(stride * h, (w * 31 + h) as u64);
            // the expected planes, sample by sample from the rows' bytes
            let want8: Vec<u8> = (0..h)
                .flat_map(|y| src[y * stride..y * stride + w].to_vec())
                .collect();
            let mut want16: Vec<u16> = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    let i = y * stride + 2 * x;
                    want16.push(u16::from_le_bytes([src[i], src[i + 1]]));
                }
            }
            let (p8, s8) = copied::<u8>(CpuLevel::Scalar, &src, stride, w, h);
            let (p16, s16) = copied::<u16>(CpuLevel::Scalar, &src, stride, w, h);
            assert_eq!(p8, want8, "{w}x{h}");
            assert_eq!(p16, want16, "{w}x{h}");
            for level in available_levels() {
                assert_eq!(
                    copied::<u8>(level, &src, stride, w, h),
                    (p8.clone(), s8),
                    "{level:?} {w}x{h}"
                );
                assert_eq!(
                    copied::<u16>(level, &src, stride, w, h),
                    (p16.clone(), s16),
                    "{level:?} {w}x{h}"
                );
            }
            // a changed sample changes the signature
            let mut moved = src.clone();
            moved[stride * (h - 1) + w - 1] ^= 0x5a;
            let (_, other) = copied::<u8>(CpuLevel::Scalar, &moved, stride, w, h);
            assert_ne!(other.0, s8.0, "{w}x{h}");
        }
    }
}
