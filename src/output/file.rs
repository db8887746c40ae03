//! A destination for lines: a file or standard output, checked when
//! created, touched only once the run is under way. Each line is written
//! whole; when a write fails (disk full), a file is cut back to its last
//! whole line, so every record written before stays whole.
//!
//! A regular file (or a new path) is never truncated by a run that fails
//! before it measures: the streaming log is opened at its first line (the
//! header, written once every input has opened and every check passed);
//! outputs complete only at the end (summary, CSV, report) are written to a
//! temporary file beside the target and renamed over it when the run ends.
//! Devices, FIFOs and standard output are written in place.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// When the target path is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Line by line as the run goes (`--log`): created at the first line.
    Streaming,
    /// Complete only at the end: a temporary file renamed into place.
    AtEnd,
}

enum Target {
    Stdout(BufWriter<io::Stdout>),
    /// Written in place (a device, a FIFO), or opened at the first line.
    File(File),
    /// Not opened yet: created (truncated) at the first line.
    Pending(PathBuf),
    /// A temporary file beside `PathBuf`, renamed over it by `finish`.
    Temp(tempfile::NamedTempFile, PathBuf),
    /// Renamed into place.
    Done,
}

/// A writable destination: a file, or stdout for `-`.
pub struct Output {
    label: String,
    target: Target,
    /// Bytes of whole lines written to the file.
    committed: u64,
    buf: Vec<u8>,
}

fn cannot(flag: &str, path: &str, e: &io::Error) -> Error {
    let cause = match e.kind() {
        io::ErrorKind::NotFound => "directory does not exist".to_string(),
        _ => e.to_string(),
    };
    Error::Usage(format!("{flag} '{path}': cannot create output: {cause}"))
}

impl Output {
    /// Prepares `path` for writing (`-` is standard output) without
    /// touching an existing file. A path that cannot be created is a usage
    /// error (exit 2), raised before any decoding.
    pub fn create(path: &str, flag: &str, mode: Mode) -> Result<Self, Error> {
        let output = |target| Output {
            label: path.to_string(),
            target,
            committed: 0,
            buf: Vec::new(),
        };
        if path == "-" {
            let mut o = output(Target::Stdout(BufWriter::new(io::stdout())));
            o.label = "<stdout>".to_string();
            return Ok(o);
        }
        let p = Path::new(path);
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                return Err(Error::Usage(format!(
                    "{flag} '{path}': cannot create output: is a directory"
                )));
            }
            Ok(m) if !m.is_file() => {
                // a device or a FIFO: written in place
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| cannot(flag, path, &e))?;
                return Ok(output(Target::File(f)));
            }
            _ => {}
        }
        // A regular file or a new path: check now that its directory takes
        // a new file, without touching the path itself. A symlink is written
        // through: its target is the file replaced.
        let target = through_links(p).map_err(|e| cannot(flag, path, &e))?;
        let p = target.as_path();
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = temp_beside(p, &dir).map_err(|e| cannot(flag, path, &e))?;
        Ok(output(match mode {
            Mode::Streaming => {
                drop(temp);
                Target::Pending(p.to_path_buf())
            }
            Mode::AtEnd => Target::Temp(temp, p.to_path_buf()),
        }))
    }

    /// Whether this is standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self.target, Target::Stdout(_))
    }

    fn map(&self, e: io::Error) -> Error {
        if self.is_stdout() && e.kind() == io::ErrorKind::BrokenPipe {
            Error::StdoutClosed
        } else {
            Error::Output {
                path: self.label.clone(),
                source: e,
            }
        }
    }

    /// Writes one line (a newline is added) and flushes it.
    pub fn line(&mut self, text: &str) -> Result<(), Error> {
        if let Target::Pending(p) = &self.target {
            let f = File::create(p).map_err(|e| self.map(e))?;
            self.target = Target::File(f);
        }
        self.buf.clear();
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.push(b'\n');
        let r = match &mut self.target {
            Target::Stdout(w) => w.write_all(&self.buf).and_then(|()| w.flush()),
            Target::File(f) => f.write_all(&self.buf),
            Target::Temp(t, _) => t.as_file_mut().write_all(&self.buf),
            Target::Pending(_) | Target::Done => Ok(()),
        };
        match r {
            Ok(()) => {
                self.committed += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let file = match &mut self.target {
                    Target::File(f) => Some(f),
                    Target::Temp(t, _) => Some(t.as_file_mut()),
                    _ => None,
                };
                if let Some(f) = file {
                    // Cut a partly written line off; if even that fails the
                    // error below still tells the user.
                    if f.set_len(self.committed).is_err() {
                        // the original error is what matters
                    }
                }
                Err(self.map(e))
            }
        }
    }

    /// Flushes buffered bytes.
    pub fn flush(&mut self) -> Result<(), Error> {
        let r = match &mut self.target {
            Target::Stdout(w) => w.flush(),
            Target::File(f) => f.flush(),
            Target::Temp(t, _) => t.as_file_mut().flush(),
            Target::Pending(_) | Target::Done => Ok(()),
        };
        r.map_err(|e| self.map(e))
    }

    /// Ends the output: flushes it, creates a streaming log that got no
    /// line, and renames a temporary file into place.
    pub fn finish(&mut self) -> Result<(), Error> {
        if let Target::Pending(p) = &self.target {
            let f = File::create(p).map_err(|e| self.map(e))?;
            self.target = Target::File(f);
        }
        self.flush()?;
        if let Target::Temp(..) = &self.target
            && let Target::Temp(t, path) = std::mem::replace(&mut self.target, Target::Done)
        {
            t.persist(&path).map_err(|e| self.map(e.error))?;
        }
        Ok(())
    }
}

/// The file a path names once its symlinks are followed (the path itself
/// when it is not a link): where a file written whole and renamed into
/// place must go, so that a link stays a link and its target gets the
/// data. A dangling link names the file it would create.
pub fn through_links(path: &Path) -> io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    // as the kernel's own bound on a chain of links
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(at),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// What identifies a file: its device and inode once it exists, else its
/// directory's canonical path and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Standard output.
    Stdout,
    /// An existing file (symlinks followed).
    Inode(u64, u64),
    /// A path that does not exist yet.
    New(PathBuf),
}

/// The identity of an output or input path; `None` for what is not a
/// local path (a URL, a pipe).
pub fn identity(path: &str) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    if path == "-" || path == "/dev/stdout" || path == "pipe:1" {
        return Some(Identity::Stdout);
    }
    let local = path.strip_prefix("file:").unwrap_or(path);
    if local.contains("://") || local.starts_with("pipe:") {
        return None;
    }
    let p = Path::new(local);
    match std::fs::metadata(p) {
        Ok(m) => Some(Identity::Inode(m.dev(), m.ino())),
        Err(_) => {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(dir).ok()?;
            Some(Identity::New(dir.join(p.file_name()?)))
        }
    }
}

/// Temporary files made for outputs, for [`remove_temporaries`].
static TEMPORARIES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every temporary file outputs made that is still there: for a
/// process that must end at once, without running destructors.
pub fn remove_temporaries() {
    let list = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    for p in list.iter() {
        // already renamed into place or removed: nothing to do
        let _ = std::fs::remove_file(p);
    }
}

/// A temporary file in `dir` that will be renamed to `target`: created
/// with the permissions a new file gets (0666 less the umask, not the
/// 0600 of temporary files), or those of `target` if it exists, so the
/// rename does not change who can read the output.
pub fn temp_beside(target: &Path, dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::Builder::new()
        .prefix(".vqm-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Ok(m) = std::fs::metadata(target)
        && m.is_file()
    {
        temp.as_file().set_permissions(m.permissions())?;
    }
    TEMPORARIES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(temp.path().to_path_buf());
    Ok(temp)
}
