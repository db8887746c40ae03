//! Live UDP inputs received by vqm itself.
//!
//! FFmpeg's `udp` protocol buffers a slow reader in a ring of `fifo_size`
//! datagrams that it writes round its whole length, so its pages become
//! resident one after the other as the stream flows: a monitor's memory
//! then grows for minutes (for as long as the slower stream takes to fill
//! 12 MB) before it settles, which hides a real leak behind an expected
//! rise. Here the socket is read by a thread of the input's own, into a
//! ring of the same size allocated and touched once when the input opens,
//! and FFmpeg's demuxer reads that ring through a custom I/O context. The
//! ring lives as long as the input, across reconnections, so nothing is
//! allocated again after a loss.
//!
//! The URL options vqm reads itself are those of FFmpeg's protocol that
//! matter to a receiver (`fifo_size`, `buffer_size`, `localaddr`, `reuse`,
//! `reuse_socket`, `overrun_nonfatal=1`, `pkt_size`); with any other (as
//! `sources`, `timeout`, `connect`), FFmpeg's own protocol reads the input.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::c_void;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ffmpeg_next as ff;

use crate::error::Error;

fn input_error(label: &str, cause: impl std::fmt::Display) -> Error {
    Error::input(label, cause)
}

/// The ring's default size in 188-byte transport packets, as FFmpeg's
/// `fifo_size` counts it: 12.3 MB, 12 s at 8 Mbit/s (what an offset
/// search's alignment delay and the lag bound need).
pub(super) const FIFO_PACKETS: usize = 65_536;

/// The largest datagram.
const DATAGRAM: usize = 65_536;

/// FFmpeg's reading buffer in the custom I/O context.
const IO_BUFFER: usize = 32_768;

/// Options of FFmpeg's `udp` protocol this receiver honours.
const HANDLED: [&str; 7] = [
    "fifo_size",
    "buffer_size",
    "localaddr",
    "reuse",
    "reuse_socket",
    "overrun_nonfatal",
    "pkt_size",
];

/// Options of FFmpeg's `udp` protocol it leaves to FFmpeg.
const FFMPEG_ONLY: [&str; 12] = [
    "sources",
    "block",
    "timeout",
    "connect",
    "localport",
    "local_port",
    "broadcast",
    "ttl",
    "bitrate",
    "burst_bits",
    "udplite_coverage",
    "circular_buffer_size",
];

/// How to receive one `udp://` input.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    /// The address to bind.
    bind: SocketAddr,
    /// The multicast group to join, if the host is one.
    group: Option<IpAddr>,
    /// The interface for the group (`localaddr`).
    interface: Option<Ipv4Addr>,
    /// `SO_REUSEADDR` (asked for, or a multicast group).
    reuse: bool,
    /// `SO_RCVBUF` in bytes (`buffer_size`).
    rcvbuf: Option<usize>,
    /// The ring's size in bytes.
    capacity: usize,
}

/// The receiving plan for `label` with the demuxer options `extra`, or
/// `None` when FFmpeg's protocol should read it (not `udp://`, or an
/// option only FFmpeg knows).
pub(super) fn plan(label: &str, extra: &[(String, String)]) -> Result<Option<Plan>, Error> {
    let Some(rest) = strip_scheme(label) else {
        return Ok(None);
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let mut opts: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), "1".to_string()),
        })
        .collect();
    opts.extend(
        extra
            .iter()
            .filter(|(k, _)| HANDLED.contains(&k.as_str()) || FFMPEG_ONLY.contains(&k.as_str()))
            .cloned(),
    );
    if opts.iter().any(|(k, v)| {
        !HANDLED.contains(&k.as_str()) || (k == "overrun_nonfatal" && v.trim() != "1")
    }) {
        return Ok(None);
    }
    let number = |key: &str| -> Result<Option<usize>, Error> {
        match opts.iter().rev().find(|(k, _)| k == key) {
            None => Ok(None),
            Some((_, v)) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| input_error(label, format!("{key}={v}: not a whole number"))),
        }
    };
    let flag = |key: &str| {
        opts.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim() != "0")
    };
    let packets = number("fifo_size")?.unwrap_or(FIFO_PACKETS);
    if packets == 0 {
        // no ring asked for: FFmpeg reads the socket directly
        return Ok(None);
    }
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = split_host_port(authority)
        .ok_or_else(|| input_error(label, "cannot open: no port in the UDP address"))?;
    let ip = if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
            .ok_or_else(|| input_error(label, format!("cannot open: cannot resolve '{host}'")))?
    };
    let group = ip.is_multicast().then_some(ip);
    // a unicast host names the sender: the socket listens on every address
    let bind_ip = match (group, ip) {
        (Some(g), _) => g,
        (None, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let interface = match opts.iter().rev().find(|(k, _)| k == "localaddr") {
        None => None,
        Some((_, v)) => Some(v.trim().parse::<Ipv4Addr>().map_err(|_| {
            input_error(
                label,
                format!("localaddr={v}: not an IPv4 interface address"),
            )
        })?),
    };
    let reuse = flag("reuse_socket")
        .or_else(|| flag("reuse"))
        .unwrap_or(group.is_some());
    Ok(Some(Plan {
        bind: SocketAddr::new(bind_ip, port),
        group,
        interface,
        reuse,
        rcvbuf: number("buffer_size")?,
        capacity: packets.saturating_mul(188),
    }))
}

fn strip_scheme(label: &str) -> Option<&str> {
    let (scheme, rest) = label.split_once("://")?;
    scheme.eq_ignore_ascii_case("udp").then_some(rest)
}

/// `host:port`, `[v6]:port` or `:port`.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (h, p) = r.split_once(']')?;
        (h, p.strip_prefix(':')?)
    } else {
        authority.rsplit_once(':')?
    };
    Some((host, port.parse().ok()?))
}

/// The ring between the socket's thread and the demuxer.
struct Ring {
    buf: Box<[u8]>,
    /// Where the oldest unread byte is.
    head: usize,
    /// Unread bytes.
    len: usize,
    /// The socket failed: the cause, once the ring is read empty.
    failed: Option<String>,
    /// Bytes pushed before the oldest unread one (dropped or read).
    base: u64,
    /// When each datagram still unread arrived: the position just past
    /// its last byte (counted as `base`) and the instant.
    stamps: VecDeque<(u64, Instant)>,
}

impl Ring {
    /// Appends a datagram, dropping the oldest whole 188-byte packets when
    /// the reader is that far behind (FFmpeg's `overrun_nonfatal`).
    /// Returns the bytes dropped.
    fn push(&mut self, data: &[u8]) -> usize {
        let cap = self.buf.len();
        let data = &data[data.len().saturating_sub(cap)..];
        let over = (self.len + data.len()).saturating_sub(cap);
        let dropped = over.div_ceil(188).saturating_mul(188).min(self.len);
        self.head = (self.head + dropped) % cap;
        self.len -= dropped;
        self.base += dropped as u64;
        while self.stamps.front().is_some_and(|s| s.0 <= self.base) {
            self.stamps.pop_front();
        }
        let mut tail = (self.head + self.len) % cap;
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(cap - tail);
            self.buf[tail..tail + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            tail = (tail + n) % cap;
        }
        self.len += data.len();
        self.stamps
            .push_back((self.base + self.len as u64, Instant::now()));
        dropped
    }

    /// Moves up to `dst.len()` bytes out.
    fn pop(&mut self, dst: &mut [u8]) -> usize {
        let cap = self.buf.len();
        let n = dst.len().min(self.len);
        let first = n.min(cap - self.head);
        dst[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        dst[first..n].copy_from_slice(&self.buf[..n - first]);
        self.head = (self.head + n) % cap;
        self.len -= n;
        self.base += n as u64;
        n
    }

    /// Moves the stamps of the datagrams now read whole into `arrivals`,
    /// whose reader got the bytes from `from` (counted as `base`) on.
    fn hand_over(&mut self, from: u64, arrivals: &Mutex<Arrivals>) {
        let mut a = arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let read_before = a.read;
        while let Some(&(end, at)) = self.stamps.front() {
            if end > self.base {
                break;
            }
            self.stamps.pop_front();
            a.push(read_before + end.saturating_sub(from), at);
        }
        a.read = read_before + (self.base - from);
    }
}

/// When the bytes a demuxer session read arrived: for each datagram read
/// whole, the session's position just past its last byte and its arrival
/// (the last [`ARRIVALS`] of them).
#[derive(Debug, Default)]
pub(super) struct Arrivals {
    /// Bytes the session read.
    read: u64,
    ends: VecDeque<(u64, Instant)>,
}

/// Datagram arrivals a session keeps (about 10 MB of 1316-byte datagrams).
const ARRIVALS: usize = 8192;

impl Arrivals {
    fn push(&mut self, end: u64, at: Instant) {
        if self.ends.len() == ARRIVALS {
            self.ends.pop_front();
        }
        self.ends.push_back((end, at));
    }

    /// When the byte at session position `pos` arrived (the datagram that
    /// held it), if it is still known.
    fn at(&self, pos: u64) -> Option<Instant> {
        let i = self.ends.partition_point(|e| e.0 <= pos);
        self.ends.get(i).map(|e| e.1)
    }
}

/// When each packet of a session arrived, kept by timestamp until its
/// picture comes out: a live frame's arrival is its datagrams', however
/// long its bytes waited in the ring for a reader held back.
#[derive(Debug, Default)]
pub(crate) struct Stamps {
    arrivals: Option<Arc<Mutex<Arrivals>>>,
    by_pts: BTreeMap<i64, Instant>,
}

/// Packets whose picture has not come out that are kept at most.
const PENDING_STAMPS: usize = 512;

impl Stamps {
    /// A new session reads through `io` (or FFmpeg's own protocol).
    pub(super) fn session(&mut self, io: Option<&Io>) {
        // SAFETY: `reader` is the live box this context owns.
        self.arrivals = io.map(|io| unsafe { (*io.reader).arrivals.clone() });
        self.by_pts.clear();
    }

    /// A packet stamped `pts` started at session position `pos`.
    pub(super) fn packet(&mut self, pos: Option<usize>, pts: Option<i64>) {
        let (Some(a), Some(pos), Some(pts)) = (self.arrivals.as_ref(), pos, pts) else {
            return;
        };
        let at = a.lock().unwrap_or_else(|e| e.into_inner()).at(pos as u64);
        if let Some(at) = at {
            if self.by_pts.len() >= PENDING_STAMPS {
                self.by_pts.pop_first();
            }
            self.by_pts.insert(pts, at);
        }
    }

    /// When the packet of the picture stamped `pts` arrived (forgetting
    /// the packets stamped before it: pictures come out in order).
    pub(super) fn picture(&mut self, pts: Option<i64>) -> Option<Instant> {
        let pts = pts?;
        let at = self.by_pts.get(&pts).copied();
        while self
            .by_pts
            .first_key_value()
            .is_some_and(|(k, _)| *k <= pts)
        {
            self.by_pts.pop_first();
        }
        at
    }
}

struct Shared {
    ring: Mutex<Ring>,
    ready: Condvar,
    closed: AtomicBool,
    /// Bytes dropped because the reader was a whole ring behind.
    overrun: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ring> {
        // a panic elsewhere cannot leave the ring inconsistent: every
        // change to it is completed under the lock
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound socket read into a resident ring by its own thread, until the
/// receiver is dropped.
pub(super) struct Receiver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("udp::Receiver")
    }
}

impl Receiver {
    /// Binds the socket and starts reading it.
    pub(super) fn start(label: &str, plan: &Plan) -> Result<Receiver, Error> {
        let socket = bind(plan).map_err(|e| input_error(label, format!("cannot open: {e}")))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| input_error(label, format!("cannot open: {e}")))?;
        let mut buf = vec![0u8; plan.capacity.max(DATAGRAM)].into_boxed_slice();
        // Touch every page now, so the ring is resident from the start and
        // memory stays flat while the stream fills it.
        for i in (0..buf.len()).step_by(4096) {
            // SAFETY: `i` is within the buffer; a volatile write is not
            // optimised away as a store of what calloc already gave.
            unsafe { std::ptr::write_volatile(buf.as_mut_ptr().add(i), 0) };
        }
        let shared = Arc::new(Shared {
            ring: Mutex::new(Ring {
                buf,
                head: 0,
                len: 0,
                failed: None,
                base: 0,
                stamps: VecDeque::new(),
            }),
            ready: Condvar::new(),
            closed: AtomicBool::new(false),
            overrun: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vqm-udp".to_string())
            .spawn(move || receive(&socket, &s))
            .map_err(|e| input_error(label, format!("cannot start its receiver: {e}")))?;
        Ok(Receiver {
            shared,
            thread: Some(thread),
        })
    }

    /// Bytes dropped so far because the reader fell a whole ring behind.
    #[cfg(test)]
    fn overrun(&self) -> u64 {
        self.shared.overrun.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            // the receiving thread panicked; its input is already closed
        }
    }
}

fn bind(plan: &Plan) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(plan.bind),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if plan.reuse {
        socket.set_reuse_address(true)?;
    }
    if let Some(size) = plan.rcvbuf {
        // the kernel caps it at net.core.rmem_max, as with FFmpeg
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(&plan.bind.into())?;
    match plan.group {
        Some(IpAddr::V4(g)) => {
            socket.join_multicast_v4(&g, &plan.interface.unwrap_or(Ipv4Addr::UNSPECIFIED))?
        }
        Some(IpAddr::V6(g)) => socket.join_multicast_v6(&g, 0)?,
        None => {}
    }
    Ok(socket.into())
}

/// The receiving thread: datagrams into the ring until the receiver
/// closes or the socket fails.
fn receive(socket: &UdpSocket, shared: &Shared) {
    let mut datagram = vec![0u8; DATAGRAM];
    while !shared.closed.load(Ordering::Relaxed) {
        match socket.recv(&mut datagram) {
            Ok(n) => {
                let dropped = shared.lock().push(&datagram[..n]);
                if dropped > 0 {
                    shared.overrun.fetch_add(dropped as u64, Ordering::Relaxed);
                }
                shared.ready.notify_all();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                shared.lock().failed = Some(e.to_string());
                shared.ready.notify_all();
                return;
            }
        }
    }
}

/// What FFmpeg's read callback reaches through its opaque pointer.
struct Reader {
    shared: Arc<Shared>,
    /// When the bytes this session read arrived.
    arrivals: Arc<Mutex<Arrivals>>,
    /// True when the read must give up (stop asked, or the stall timeout).
    interrupt: Box<dyn Fn() -> bool + Send>,
}

/// FFmpeg's read callback: blocks until the ring has bytes, the interrupt
/// fires (`AVERROR_EXIT`) or the socket failed (`AVERROR_EOF` once the ring
/// is read empty).
unsafe extern "C" fn read_packet(
    opaque: *mut c_void,
    buf: *mut u8,
    size: libc::c_int,
) -> libc::c_int {
    if opaque.is_null() || buf.is_null() || size <= 0 {
        return ff::ffi::AVERROR(libc::EINVAL);
    }
    // SAFETY: `opaque` is the `Reader` this module boxed for this context,
    // alive until the context is freed ([`Io`]'s drop), and FFmpeg calls
    // the callback from the one thread that reads the context.
    let reader = unsafe { &*(opaque as *const Reader) };
    // SAFETY: FFmpeg hands a writable buffer of `size` bytes.
    let dst = unsafe { std::slice::from_raw_parts_mut(buf, size as usize) };
    let mut ring = reader.shared.lock();
    loop {
        if ring.len > 0 {
            let from = ring.base;
            let n = ring.pop(dst);
            ring.hand_over(from, &reader.arrivals);
            return n as libc::c_int;
        }
        if ring.failed.is_some() {
            return ff::ffi::AVERROR_EOF;
        }
        if (reader.interrupt)() || reader.shared.closed.load(Ordering::Relaxed) {
            return ff::ffi::AVERROR_EXIT;
        }
        ring = match reader
            .shared
            .ready
            .wait_timeout(ring, Duration::from_millis(20))
        {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
    }
}

/// A custom I/O context reading a [`Receiver`]'s ring, for one demuxer
/// session. Dropped after the demuxer is closed (FFmpeg leaves a custom
/// context to its owner).
pub(super) struct Io {
    ctx: *mut ff::ffi::AVIOContext,
    reader: *mut Reader,
}

// SAFETY: the context and its reader are owned by one session, which is
// used by one thread at a time (it moves to the decoder's thread once);
// the ring they share is behind a mutex.
unsafe impl Send for Io {}

impl Io {
    /// A context reading `receiver`'s ring; `interrupt` says when a read
    /// must give up.
    pub(super) fn new(
        receiver: &Receiver,
        interrupt: Box<dyn Fn() -> bool + Send>,
    ) -> Result<Io, ff::Error> {
        let reader = Box::into_raw(Box::new(Reader {
            shared: receiver.shared.clone(),
            arrivals: Arc::default(),
            interrupt,
        }));
        // SAFETY: the buffer comes from av_malloc as avio_alloc_context
        // requires (FFmpeg may replace it; the context's current buffer is
        // freed in drop). On failure both are freed here.
        unsafe {
            let buffer = ff::ffi::av_malloc(IO_BUFFER) as *mut u8;
            if buffer.is_null() {
                drop(Box::from_raw(reader));
                return Err(ff::Error::Other {
                    errno: ff::util::error::ENOMEM,
                });
            }
            let ctx = ff::ffi::avio_alloc_context(
                buffer,
                IO_BUFFER as libc::c_int,
                0,
                reader as *mut c_void,
                Some(read_packet),
                None,
                None,
            );
            if ctx.is_null() {
                ff::ffi::av_free(buffer as *mut c_void);
                drop(Box::from_raw(reader));
                return Err(ff::Error::Other {
                    errno: ff::util::error::ENOMEM,
                });
            }
            Ok(Io { ctx, reader })
        }
    }

    /// The context, for the demuxer's `pb` (with `AVFMT_FLAG_CUSTOM_IO`).
    pub(super) fn as_ptr(&self) -> *mut ff::ffi::AVIOContext {
        self.ctx
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // SAFETY: the demuxer that read this context is closed (a session
        // drops its input before its `Io`, and a failed open frees the
        // format context without touching a custom context), so nothing
        // reads it any more: free its current buffer, the context, then
        // the reader it pointed to.
        unsafe {
            if !self.ctx.is_null() {
                ff::ffi::av_freep(&mut (*self.ctx).buffer as *mut *mut u8 as *mut c_void);
                ff::ffi::avio_context_free(&mut self.ctx);
            }
            drop(Box::from_raw(self.reader));
        }
    }
}

#[cfg(test)]
mod tests;
