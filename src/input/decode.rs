//! The decoder thread of one input: demux + decode into pooled planar
//! frames, sent on a bounded channel.
//!
//! `send_packet`, then `receive_frame` until EAGAIN; at the end `send_eof`
//! and drain again. Every FFmpeg error is handled: a packet that fails to
//! decode is a reported, counted event; an input that cannot be opened is a
//! fatal error naming the input. Live network inputs survive stalls and
//! errors: the loss is reported, the input is reopened with backoff, and
//! decoding goes on.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ffmpeg_next as ff;

use super::convert::Convert;
use super::format::{self, Target};
use super::ledger::Ledger;
use super::open::{Decoder, Session, input_error, is_broadcast, now_ms, open_session};
use crate::error::Error;
use crate::frame::{Frame, FramePool};

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
    /// The timestamps jump by `frames` frame intervals before the frame
    /// at `pts` with no error in between: a variable frame rate, or frames
    /// missing from the file (not a decode error).
    Gap {
        /// Frame intervals skipped.
        frames: u64,
        /// The frame after the jump (seconds, the input's own time).
        pts: Option<f64>,
    },
    /// The pictures changed size or pixel format; they are converted from
    /// here on.
    FormatChange {
        /// Before (`yuv420p 640x360`).
        from: String,
        /// After.
        to: String,
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
    /// [`InputInfo::conversion`](crate::input::InputInfo::conversion), and returns it.
    pub fn set_target(&mut self, target: Target) -> Option<String> {
        let source = self.source;
        let same_size = (source.width, source.height) == (target.width, target.height);
        let conversion = if same_size && format::same_planes(source.pixel, target.pixel) {
            None
        } else {
            Some(format!(
                "{} {}x{} -> {} {}x{} (swscale {})",
                format::name(source.pixel),
                source.width,
                source.height,
                format::name(target.pixel),
                target.width,
                target.height,
                self.options.scale.name()
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
        let mut state = Convert::new(target, rate, self.options.scale);
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
            match open_session(
                &self.label,
                &self.options,
                self.network,
                &self.activity,
                self.udp.as_ref(),
            ) {
                Ok(s) => {
                    state.restart(s.frame_rate);
                    self.schedule.reset();
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
        // the decoder's pictures (a filter's come after the ledger)
        let d = &sess.decoder;
        let mut ledger = Ledger::new(
            &sess.codec,
            sess.ictx.format().name(),
            sess.interlaced,
            (d.format(), d.width(), d.height()),
        );
        self.activity.store(now_ms(), Ordering::Relaxed);
        self.stamps.session(sess._io.as_ref());
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
                        // the pictures the decoder holds arrived before
                        // the loss: they are paired, not lost with it
                        if !self.flush(sess, &mut decoded, state, &mut ledger, tx, pool) {
                            return SessionEnd::Stopped;
                        }
                        return SessionEnd::Lost(cause);
                    }
                    consecutive_read_errors += 1;
                    ledger.troubled = true;
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
            if live {
                self.stamps
                    .packet(usize::try_from(packet.position()).ok(), packet.pts());
            }
            if packet.is_corrupt() {
                ledger.troubled = true;
                if live && ledger.started {
                    // data lost in transit (a continuity-counter gap in
                    // MPEG-TS): its picture and those that lean on it
                    // until the next keyframe are damaged
                    let at = packet.pts().map_or(f64::NAN, |t| t as f64 * sess.time_base);
                    let cause = format!("the packet at {at:.3} s was damaged in transit");
                    if tx.send(DecodeEvent::DecodeError { cause }).is_err() {
                        return SessionEnd::Stopped;
                    }
                }
            }
            loop {
                match sess.decoder.send_packet(&packet) {
                    Ok(()) => {
                        // SAFETY: reading the flags of a packet we own.
                        let flags = unsafe { (*ff::packet::Ref::as_ptr(&packet)).flags };
                        ledger.sent(packet.pts(), flags & ff::ffi::AV_PKT_FLAG_DISCARD != 0);
                        break;
                    }
                    Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                        // The decoder is full: take its frames, then retry.
                        if !self.drain(sess, &mut decoded, state, &mut ledger, tx, pool) {
                            return SessionEnd::Stopped;
                        }
                    }
                    Err(e) => {
                        ledger.troubled = true;
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
            if !self.drain(sess, &mut decoded, state, &mut ledger, tx, pool) {
                return SessionEnd::Stopped;
            }
        }
        if !self.flush(sess, &mut decoded, state, &mut ledger, tx, pool) {
            return SessionEnd::Stopped;
        }
        SessionEnd::Eof
    }

    /// Ends a session's decoding: the frames the decoder still holds (its
    /// reordering delay, frame threads) are sent, then what it refused.
    /// Returns false when the receiver is gone.
    fn flush(
        &mut self,
        sess: &mut Session,
        decoded: &mut ff::frame::Video,
        state: &mut Convert,
        ledger: &mut Ledger,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> bool {
        match sess.decoder.send_eof() {
            Ok(()) | Err(ff::Error::Eof) => {}
            Err(e) => {
                if tx
                    .send(DecodeEvent::DecodeError {
                        cause: format!("decode error at end of input: {e}"),
                    })
                    .is_err()
                {
                    return false;
                }
            }
        }
        self.drain(sess, decoded, state, ledger, tx, pool)
            && refusals(ledger.end(), sess.time_base, tx)
            && match sess.filter.as_mut() {
                // what the filter still holds (yadif's last field, ...)
                Some(f) => self.through_filter(f, None, state, ledger, tx, pool),
                None => true,
            }
    }

    /// Receives every frame the decoder has ready. Returns false when the
    /// receiver is gone or a fatal conversion error was reported.
    fn drain(
        &mut self,
        sess: &mut Session,
        decoded: &mut ff::frame::Video,
        state: &mut Convert,
        ledger: &mut Ledger,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> bool {
        let live = self.live_network();
        loop {
            match sess.decoder.receive_frame(decoded) {
                Ok(()) => {}
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => return true,
                Err(ff::Error::Eof) => return true,
                Err(e) => {
                    ledger.troubled = true;
                    return tx
                        .send(DecodeEvent::DecodeError {
                            cause: format!("decode error: {e}"),
                        })
                        .is_ok();
                }
            }
            let clean_key = decoded.is_key() && !decoded.is_corrupt();
            if !ledger.started && live && clean_key {
                // joined a live stream between keyframes: the packets
                // before the first keyframe could not be decoded by anyone
                ledger.forget_before(decoded.pts());
            }
            let mut refused = ledger.out(decoded.pts());
            if !ledger.started && live {
                refused.clear();
            }
            ledger.started |= clean_key;
            if !refused.is_empty() {
                ledger.troubled = true;
                if !refusals(refused, sess.time_base, tx) {
                    return false;
                }
            }
            if let Some((from, to)) =
                ledger.reshape((decoded.format(), decoded.width(), decoded.height()))
                && tx.send(DecodeEvent::FormatChange { from, to }).is_err()
            {
                return false;
            }
            let delivered = match sess.filter.as_mut() {
                Some(f) => self.through_filter(f, Some(decoded), state, ledger, tx, pool),
                None => {
                    self.arrival = self.stamps.picture(decoded.timestamp());
                    self.deliver(decoded, sess.time_base, state, ledger, tx, pool)
                }
            };
            if !delivered {
                return false;
            }
        }
    }

    /// Feeds a decoded picture (or the end, `None`) to the input's filter
    /// and delivers every picture it gives. Returns false as `deliver`.
    fn through_filter(
        &mut self,
        f: &mut super::filter::Filter,
        decoded: Option<&ff::frame::Video>,
        state: &mut Convert,
        ledger: &mut Ledger,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> bool {
        let label = self.label.clone();
        let failed = |cause: String| {
            // the receiver may be gone: the pipeline is shutting down
            let _gone = tx.send(DecodeEvent::Failed(input_error(&label, cause)));
            false
        };
        if let Err(e) = f.push(decoded) {
            return failed(e);
        }
        let time_base = f.time_base();
        loop {
            match f.pull() {
                Ok(Some(pic)) => {
                    if !self.deliver(pic, time_base, state, ledger, tx, pool) {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(e) => return failed(e),
            }
        }
    }

    /// Converts a picture into a pooled frame and sends it, with the gap or
    /// loss its timestamps show. Returns false when the receiver is gone
    /// or a fatal conversion error was reported.
    fn deliver(
        &mut self,
        pic: &ff::frame::Video,
        time_base: f64,
        state: &mut Convert,
        ledger: &mut Ledger,
        tx: &Sender<DecodeEvent>,
        pool: &FramePool,
    ) -> bool {
        let mut frame = pool.take();
        match state.fill(pic, &mut frame, time_base) {
            Ok(()) => {
                let jump = match state.missing {
                    0 => None,
                    n if ledger.troubled || ledger.transport => {
                        let how = if ledger.troubled {
                            "lost to decode errors"
                        } else {
                            "lost from the transport stream"
                        };
                        Some(DecodeEvent::DecodeError {
                            cause: format!(
                                "{n} frame(s) missing before {:.3} s: the timestamps jump ({how})",
                                frame.pts
                            ),
                        })
                    }
                    n => Some(DecodeEvent::Gap {
                        frames: n,
                        pts: frame.abs_pts,
                    }),
                };
                if jump.is_some_and(|e| tx.send(e).is_err()) {
                    return false;
                }
                // SAFETY: reading a field of the picture we were given.
                let error_flags = unsafe { (*pic.as_ptr()).decode_error_flags };
                let corrupt = pic.is_corrupt() || error_flags != 0;
                if pic.is_key() && !corrupt {
                    ledger.damaged = false;
                } else if corrupt || ledger.troubled || state.missing > 0 {
                    ledger.damaged = true;
                }
                frame.damaged = self.live_network() && ledger.damaged;
                ledger.troubled = false;
                let t0 = Instant::now();
                if self.live_network() {
                    // its datagrams' arrival when known (bytes that waited
                    // in the ring arrived before they were read)
                    let at = self.arrival.take().map_or(t0, |a| a.min(t0));
                    frame.arrived_at = Some(self.schedule.arrival(at, frame.pts));
                }
                let sent = tx.send(DecodeEvent::Frame(frame));
                state.waiting += t0.elapsed();
                if sent.is_err() {
                    return false;
                }
                true
            }
            Err(cause) => {
                if tx
                    .send(DecodeEvent::Failed(input_error(&self.label, cause)))
                    .is_err()
                {
                    // receiver gone: the pipeline is shutting down
                }
                false
            }
        }
    }
}

/// Reports each packet (stamped in `time_base` units) the decoder took
/// and gave no picture for. Returns false when the receiver is gone.
fn refusals(stamps: Vec<i64>, time_base: f64, tx: &Sender<DecodeEvent>) -> bool {
    stamps.into_iter().all(|t| {
        tx.send(DecodeEvent::DecodeError {
            cause: format!(
                "the packet at {:.3} s gave no picture (the decoder refused it)",
                t as f64 * time_base
            ),
        })
        .is_ok()
    })
}
