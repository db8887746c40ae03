//! Reading a small text file that a user names (a manifest, a summary, a
//! model): a regular file only, read up to a cap, so that a name that
//! leads to `/dev/zero`, a FIFO or a huge file is refused at once instead
//! of filling memory or waiting forever.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// Why a file could not be read as text; the caller names the file and
/// says what it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It could not be opened or read (the system's reason).
    Io(String),
    /// A directory, a device, a FIFO or a socket.
    NotRegular(&'static str),
    /// Over the cap, in bytes.
    TooLarge(u64),
    /// Not UTF-8.
    NotText,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Io(e) => write!(f, "cannot read: {e}"),
            Refusal::NotRegular(kind) => write!(f, "is {kind}, not a regular file"),
            Refusal::TooLarge(cap) => write!(f, "is larger than {}", size(*cap)),
            Refusal::NotText => write!(f, "is not UTF-8 text"),
        }
    }
}

/// `bytes` in the largest binary unit that divides it.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// What a file that is not a regular one is.
fn kind(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        Some("not a file")
    }
}

/// The text of the regular file at `path` (symlinks followed), at most
/// `cap` bytes. Opened without blocking, so that a FIFO put in its place
/// after the check is refused too, never waited on.
pub fn read(path: &std::path::Path, cap: u64) -> Result<String, Refusal> {
    let io = |e: std::io::Error| Refusal::Io(e.to_string());
    let meta = std::fs::metadata(path).map_err(io)?;
    if let Some(k) = kind(meta.file_type()) {
        return Err(Refusal::NotRegular(k));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(k) = kind(meta.file_type()) {
        return Err(Refusal::NotRegular(k));
    }
    if meta.len() > cap {
        return Err(Refusal::TooLarge(cap));
    }
    read_from(file, cap)
}

/// The text `reader` gives (a file, standard input), at most `cap` bytes.
pub fn read_from(reader: impl Read, cap: u64) -> Result<String, Refusal> {
    let mut bytes = Vec::new();
    reader
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal::Io(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(Refusal::TooLarge(cap));
    }
    String::from_utf8(bytes).map_err(|_| Refusal::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read(&p, 5).unwrap(), "hello");
        assert_eq!(read(&p, 4), Err(Refusal::TooLarge(4)));
        assert_eq!(
            read(dir.path(), 100),
            Err(Refusal::NotRegular("a directory"))
        );
        assert_eq!(
            read(std::path::Path::new("/dev/zero"), 100),
            Err(Refusal::NotRegular("a device"))
        );
        let fifo = dir.path().join("f");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string and a mode; mkfifo only creates a node
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read(&fifo, 100), Err(Refusal::NotRegular("a FIFO")));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read(&link, 100), Err(Refusal::NotRegular("a device")));
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert_eq!(read(&p, 100), Err(Refusal::NotText));
        assert!(matches!(
            read(&dir.path().join("none"), 100),
            Err(Refusal::Io(_))
        ));
        assert_eq!(
            Refusal::TooLarge(64 << 20).to_string(),
            "is larger than 64 MiB"
        );
    }
}
