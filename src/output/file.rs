//! A destination for lines: a file or standard output, checked when opened.
//! Each line is written whole and flushed; when a write fails (disk full),
//! a file is cut back to its last whole line, so every record written before
//! stays whole.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::error::Error;

enum Target {
    Stdout(BufWriter<io::Stdout>),
    File(File),
}

/// A writable destination: a created file, or stdout for `-`.
pub struct Output {
    label: String,
    target: Target,
    /// Bytes of whole lines written to the file.
    committed: u64,
    buf: Vec<u8>,
}

impl Output {
    /// Opens `path` for writing (`-` is standard output). A path that cannot
    /// be created is a usage error (exit 2), raised before any decoding.
    pub fn create(path: &str, flag: &str) -> Result<Self, Error> {
        if path == "-" {
            return Ok(Output {
                label: "<stdout>".to_string(),
                target: Target::Stdout(BufWriter::new(io::stdout())),
                committed: 0,
                buf: Vec::new(),
            });
        }
        let p = std::path::Path::new(path);
        if p.is_dir() {
            return Err(Error::Usage(format!(
                "{flag} '{path}': cannot create output: is a directory"
            )));
        }
        match File::create(p) {
            Ok(f) => Ok(Output {
                label: path.to_string(),
                target: Target::File(f),
                committed: 0,
                buf: Vec::new(),
            }),
            Err(e) => {
                let cause = match e.kind() {
                    io::ErrorKind::NotFound => "directory does not exist".to_string(),
                    _ => e.to_string(),
                };
                Err(Error::Usage(format!(
                    "{flag} '{path}': cannot create output: {cause}"
                )))
            }
        }
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
        self.buf.clear();
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.push(b'\n');
        let r = match &mut self.target {
            Target::Stdout(w) => w.write_all(&self.buf).and_then(|()| w.flush()),
            Target::File(f) => f.write_all(&self.buf),
        };
        match r {
            Ok(()) => {
                self.committed += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Target::File(f) = &mut self.target {
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
        };
        r.map_err(|e| self.map(e))
    }
}
