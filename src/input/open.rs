//! Opening an input through FFmpeg: the URL rules (files, pipes, network
//! inputs), demuxer options, probing the video stream and its decoder, and
//! what the header says of the input ([`InputInfo`]). The decoder's run is
//! [`super::decode`].

use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ff::format::Pixel;
use ffmpeg_next as ff;

use super::format::{self, Target};
use super::info::InputInfo;
use crate::{error::Error, redact::redact};

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
    /// A live network input silent at start-up is waited for this long
    /// (`None`: until it speaks or the run is stopped).
    pub live_timeout: Option<Duration>,
    /// Told once when a live input is silent at start-up and waited for.
    pub on_wait: Option<Notify>,
    /// How pictures are resized to the measured size.
    pub scale: super::format::ScaleAlgo,
    /// An FFmpeg filtergraph between the decoder and the conversion.
    pub filter: Option<String>,
}

/// A callback for a notice (the run's warning printer).
#[derive(Clone)]
pub struct Notify(pub crate::error::Warn);

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

/// How much of a live network input FFmpeg analyses before the first
/// picture (µs), unless `analyzeduration` is given.
const LIVE_ANALYZE_US: &str = "100000";

/// The cause of an open that timed out before any data arrived.
const SILENT_AT_OPEN: &str = "no data arrived within the stall timeout";

/// The cause of an open whose probe saw no picture's size or format (on a
/// live input: no keyframe in the packets probed yet).
const NO_PICTURE: &str = "no decodable video frame (picture size or pixel format unknown)";

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            format: None,
            demuxer: Vec::new(),
            stream: None,
            live: false,
            stall_timeout: Duration::from_secs(5),
            stop: Arc::new(AtomicBool::new(false)),
            live_timeout: None,
            on_wait: None,
            scale: Default::default(),
            filter: None,
        }
    }
}

/// One open demuxer + decoder session of an input.
pub(super) struct Session {
    pub(super) ictx: ff::format::context::Input,
    pub(super) decoder: ff::decoder::Video,
    pub(super) stream_index: usize,
    pub(super) time_base: f64,
    pub(super) frame_rate: Option<f64>,
    pub(super) source: Target,
    pub(super) codec: String,
    pub(super) frames_announced: Option<u64>,
    pub(super) range: String,
    pub(super) interlaced: bool,
    /// The stream's start on its own timeline (seconds).
    pub(super) start: Option<f64>,
    /// `--ref-filter` / `--dist-filter`: what the decoder gives goes
    /// through it; `source` is then what it gives.
    pub(super) filter: Option<super::filter::Filter>,
    /// The custom I/O context the demuxer reads (see [`super::udp`]);
    /// declared after the demuxer so it is freed after it.
    pub(super) _io: Option<super::udp::Io>,
    /// A FIFO's descriptor that the demuxer reads (see [`super::pipe`]);
    /// declared last so it closes after the demuxer.
    pub(super) _hold: Option<std::fs::File>,
}

/// The checks of a local path that need no reading: it exists, is not a
/// directory, is not an empty file.
pub fn check_local(label: &str) -> Result<(), Error> {
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
    Ok(())
}

/// An opened input, ready to decode on its own thread.
pub struct Decoder {
    pub(super) label: String,
    pub(super) session: Option<Session>,
    pub(super) source: Target,
    pub(super) options: OpenOptions,
    pub(super) network: bool,
    pub(super) activity: Arc<AtomicU64>,
    /// Set when the input is a YUV4MPEG2 file whose frames can be read
    /// directly (see [`super::y4m`]).
    pub(super) y4m: Option<super::y4m::Layout>,
    /// Facts about the input.
    pub info: InputInfo,
    /// Warnings found while opening it (a raw file's size that is not a
    /// whole number of frames, ...), for the run to print.
    pub notes: Vec<String>,
    /// How long a live input silent at start-up was waited for.
    pub waited: Option<Duration>,
    /// Its real-time schedule (live network inputs).
    pub(super) schedule: super::schedule::Schedule,
    /// When its packets arrived (a UDP input vqm receives itself), and
    /// the arrival of the picture being delivered.
    pub(super) stamps: super::udp::Stamps,
    pub(super) arrival: Option<std::time::Instant>,
    /// vqm's own receiver of a live UDP input; declared after the session
    /// that reads it.
    pub(super) udp: Option<super::udp::Receiver>,
}

pub(super) fn input_error(label: &str, cause: impl std::fmt::Display) -> Error {
    Error::input(label, cause)
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

/// Milliseconds since the first call, a clock shared by decoder threads
/// and their interrupt callbacks.
pub(super) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub(super) fn open_session(
    label: &str,
    options: &OpenOptions,
    network: bool,
    activity: &Arc<AtomicU64>,
    receiver: Option<&super::udp::Receiver>,
) -> Result<Session, Error> {
    let mut dict = ff::Dictionary::new();
    for (k, v) in &options.demuxer {
        dict.set(k, v);
    }
    if options.live && network && !options.demuxer.iter().any(|(k, _)| k == "analyzeduration") {
        // A live stream's first picture is what the monitor waits for:
        // FFmpeg's default (5 s of packets at most, about 0.9 s here
        // before it settles) is the bulk of the time to the first record.
        // The codec parameters come with the first keyframe in any case.
        dict.set("analyzeduration", LIVE_ANALYZE_US);
    }
    if receiver.is_none() && network && label.to_ascii_lowercase().starts_with("udp://") {
        // A slow reader must not turn a burst into a fatal overrun; the
        // ring holds what an offset search and the lag bound need (12 s at
        // 8 Mbit/s: 65,536 datagrams of 188 bytes, 12.3 MB at most) and
        // drops the oldest beyond. Both overridable (--ref-opt).
        let fifo = super::udp::FIFO_PACKETS.to_string();
        for (k, v) in [("overrun_nonfatal", "1"), ("fifo_size", fifo.as_str())] {
            if !options.demuxer.iter().any(|(key, _)| key == k) {
                dict.set(k, v);
            }
        }
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
    let prepared = super::pipe::prepare(label, url_of(label), &options.stop)?;
    let io = match receiver {
        Some(rx) => Some(
            super::udp::Io::new(rx, Box::new(interrupt.clone()))
                .map_err(|e| input_error(label, format!("cannot open: {e}")))?,
        ),
        None => None,
    };
    let ictx = super::avopen::open_input(
        &prepared.url,
        options.format.as_deref(),
        dict,
        interrupt,
        io.as_ref(),
    )
    .map_err(|e| {
        if options.stop.load(Ordering::Relaxed) {
            return Error::Interrupted(format!("interrupted while opening input '{label}'"));
        }
        if let (ff::Error::DemuxerNotFound, Some(f)) = (&e, &options.format) {
            return Error::Usage(format!("--input-format '{f}': FFmpeg has no such demuxer"));
        }
        if looks_local(label)
            && let Some(why) = super::diagnose::oversized(label, options)
        {
            return input_error(label, why);
        }
        let forced_other = options
            .format
            .as_deref()
            .is_some_and(|f| !matches!(f, "mov" | "mp4" | "mov,mp4,m4a,3gp,3g2,mj2"));
        let hint = if looks_local(label)
            && !forced_other
            && super::diagnose::is_mp4_without_moov(label)
        {
            " (an MP4/MOV file whose moov atom is missing: an unfinished or truncated recording)"
        } else if let (true, ff::Error::InvalidData, None, Some(h)) = (
            looks_local(label),
            &e,
            &options.format,
            super::raw::unidentified_hint(label),
        ) {
            h
        } else if watch && matches!(e, ff::Error::Exit) {
            return input_error(label, SILENT_AT_OPEN);
        } else {
            ""
        };
        input_error(label, format!("cannot open: {e}{hint}"))
    })?;
    super::raw::refuse_text_art(label, ictx.format().name(), options.format.is_some())?;
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
    let start = (stream.start_time() != ff::ffi::AV_NOPTS_VALUE)
        .then(|| stream.start_time() as f64 * time_base);
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
    let filter = match &options.filter {
        Some(spec) => Some(
            super::filter::Filter::new(spec, &decoder, stream.time_base())
                .map_err(|e| Error::Usage(format!("input '{label}': {e}")))?,
        ),
        None => None,
    };
    let (pixel, width, height) = match &filter {
        Some(f) => f.output(),
        None => (decoder.format(), decoder.width(), decoder.height()),
    };
    if width == 0 || height == 0 || pixel == Pixel::None {
        return Err(input_error(label, NO_PICTURE));
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
        start,
        filter,
        _io: io,
        _hold: prepared.hold,
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
    check_local(label)?;
    let network = is_network(label);
    let activity = Arc::new(AtomicU64::new(now_ms()));
    // a live UDP input is received by vqm's own thread when FFmpeg's
    // protocol options allow (see [`super::udp`])
    let udp = match (options.live && network)
        .then(|| super::udp::plan(label, &options.demuxer))
        .transpose()?
        .flatten()
    {
        Some(plan) => Some(super::udp::Receiver::start(label, &plan)?),
        None => None,
    };
    let (session, waited) = open_waiting(label, options, network, &activity, udp.as_ref())?;
    let depth = format::facts(session.source.pixel)
        .map(|f| f.depth)
        .unwrap_or(8);
    let info = InputInfo {
        path: redact(label).into_owned(),
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
        start: session.start,
        container: session.ictx.format().name().to_string(),
        bitrate: [session.decoder.bit_rate() as i64, session.ictx.bit_rate()]
            .into_iter()
            .find(|b| *b > 0)
            .map(|b| b as u64),
        filter: options.filter.as_deref().map(|f| redact(f).into_owned()),
    };
    let notes = if looks_local(label) && session.ictx.format().name() == "rawvideo" {
        let p = Path::new(label.strip_prefix("file:").unwrap_or(label));
        let src = session.source;
        super::raw::check(label, p, src.pixel, src.width, src.height)?
    } else {
        Vec::new()
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
        notes,
        waited,
        schedule: Default::default(),
        stamps: Default::default(),
        arrival: None,
        udp,
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
        || options.filter.is_some()
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

mod waiting;
use waiting::open_waiting;
