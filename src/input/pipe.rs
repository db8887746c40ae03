//! Inputs that arrive through a pipe: piped standard input (`-`,
//! `pipe:0`) and named FIFOs.
//!
//! A FIFO is opened once, here, without blocking, and FFmpeg reads that
//! same descriptor (`pipe:N`): opening it by name a second time would wait
//! for a writer that may never come (one that wrote and left, or none
//! at all), in an `open(2)` no signal can end. Its reads stay
//! non-blocking, so FFmpeg's interrupt callback is polled while the writer
//! is silent and a stop ends the read. Before FFmpeg sees either kind of
//! pipe, the wait for the first byte polls the stop flag, and a writer
//! that closes without sending anything is reported as an empty input
//! rather than as data FFmpeg cannot parse.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// How an input is handed to FFmpeg once its pipe (if any) has data.
pub(super) struct Prepared {
    /// The URL FFmpeg opens.
    pub url: String,
    /// The FIFO's descriptor, which FFmpeg reads as `pipe:N`: it must stay
    /// open as long as the demuxer does.
    pub hold: Option<File>,
}

/// Waits (stoppably) for the first byte of a piped input and says what
/// FFmpeg should open. Inputs that are not pipes pass through unchanged.
pub(super) fn prepare(label: &str, url: String, stop: &AtomicBool) -> Result<Prepared, Error> {
    if label == "-" || label == "pipe:" || label == "pipe:0" {
        match stat_fd(0) {
            Some((mode, _)) if mode == libc::S_IFIFO => wait_for_data(label, 0, stop)?,
            Some((mode, 0)) if mode == libc::S_IFREG => {
                return Err(Error::input(
                    label,
                    "is empty (standard input is an empty file)",
                ));
            }
            _ => {}
        }
        return Ok(Prepared { url, hold: None });
    }
    let path = Path::new(label.strip_prefix("file:").unwrap_or(label));
    let fifo = !label.contains("://")
        && !label.starts_with("pipe:")
        && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if !fifo {
        return Ok(Prepared { url, hold: None });
    }
    // O_NONBLOCK: the open returns at once, writer or not, and reads
    // return EAGAIN instead of blocking (FFmpeg retries them, polling its
    // interrupt callback between tries).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::input(label, format!("cannot open: {e}")))?;
    wait_for_data(label, file.as_raw_fd(), stop)?;
    Ok(Prepared {
        url: format!("pipe:{}", file.as_raw_fd()),
        hold: Some(file),
    })
}

/// The file type (`S_IFMT` bits) and size of descriptor `fd`.
fn stat_fd(fd: RawFd) -> Option<(libc::mode_t, i64)> {
    // SAFETY: `fstat` writes into the zeroed `stat` we own; an invalid
    // descriptor makes it fail.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some((st.st_mode & libc::S_IFMT, st.st_size))
    }
}

/// Bytes waiting in the pipe behind `fd` (0 when it cannot tell).
fn available(fd: RawFd) -> libc::c_int {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`, which we own.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r == 0 { n } else { 0 }
}

/// Blocks until the pipe behind `fd` has a byte to read, in steps of
/// 100 ms so that `stop` ends the wait. A pipe whose writer closed it with
/// nothing in it is an empty input (exit 1, naming it).
fn wait_for_data(label: &str, fd: RawFd, stop: &AtomicBool) -> Result<(), Error> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted(format!(
                "interrupted while waiting for data on input '{label}'"
            )));
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one `pollfd` we own, for a descriptor that stays open
        // across the call.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // poll itself failed: let FFmpeg read and report what it finds
            return Ok(());
        }
        if r == 0 {
            continue;
        }
        if available(fd) > 0 {
            return Ok(());
        }
        if p.revents & (libc::POLLHUP | libc::POLLIN | libc::POLLERR) != 0 {
            // readable or hung up with nothing in it: the writer is gone
            return Err(Error::input(
                label,
                "is empty: its writer closed it without sending any data",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let p = dir.join("f");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        p
    }

    /// Opens the FIFO for writing (which waits for a reader), writes
    /// `bytes` and closes it.
    fn writer(p: &Path, bytes: &'static [u8]) -> std::thread::JoinHandle<()> {
        let p = p.to_path_buf();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            w.write_all(bytes).unwrap();
        })
    }

    #[test]
    fn a_fifo_whose_writer_left_with_data_is_read_through_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path());
        let stop = AtomicBool::new(false);
        let label = p.to_str().unwrap().to_string();
        let writer = writer(&p, b"abc");
        let got = prepare(&label, label.clone(), &stop).unwrap();
        writer.join().unwrap();
        let hold = got.hold.expect("the FIFO is held open");
        assert_eq!(got.url, format!("pipe:{}", hold.as_raw_fd()));
        assert_eq!(available(hold.as_raw_fd()), 3);
    }

    #[test]
    fn a_fifo_closed_without_data_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path());
        let stop = AtomicBool::new(false);
        let label = p.to_str().unwrap().to_string();
        let writer = writer(&p, b"");
        let e = prepare(&label, label.clone(), &stop).err().expect("empty");
        writer.join().unwrap();
        assert!(e.to_string().contains("is empty"), "{e}");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn a_stop_ends_the_wait_for_a_writer_that_never_comes() {
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(150));
            s2.store(true, Ordering::Relaxed);
        });
        let label = p.to_str().unwrap().to_string();
        let e = prepare(&label, label.clone(), &stop)
            .err()
            .expect("stopped");
        t.join().unwrap();
        assert!(matches!(e, Error::Interrupted(_)), "{e}");
    }

    #[test]
    fn regular_files_and_urls_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.ts");
        std::fs::write(&f, b"x").unwrap();
        let stop = AtomicBool::new(false);
        let l = f.to_str().unwrap();
        let got = prepare(l, l.to_string(), &stop).unwrap();
        assert!(got.hold.is_none());
        assert_eq!(got.url, l);
        let got = prepare("udp://127.0.0.1:9", "udp://127.0.0.1:9".into(), &stop).unwrap();
        assert!(got.hold.is_none());
    }
}
