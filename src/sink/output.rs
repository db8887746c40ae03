//! A destination for lines: a file or standard output, checked when opened.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::error::Error;

/// A writable destination: a created file, or stdout for `-`.
pub struct Output {
    label: String,
    stdout: bool,
    inner: Box<dyn Write + Send>,
}

impl Output {
    /// Opens `path` for writing (`-` is standard output). A path that cannot
    /// be created is a usage error (exit 2), raised before any decoding.
    pub fn create(path: &str, flag: &str) -> Result<Self, Error> {
        if path == "-" {
            return Ok(Output {
                label: "<stdout>".to_string(),
                stdout: true,
                inner: Box::new(BufWriter::new(io::stdout())),
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
                stdout: false,
                inner: Box::new(BufWriter::new(f)),
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
        self.stdout
    }

    fn map(&self, e: io::Error) -> Error {
        if self.stdout && e.kind() == io::ErrorKind::BrokenPipe {
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
        let r = self
            .inner
            .write_all(text.as_bytes())
            .and_then(|()| self.inner.write_all(b"\n"))
            .and_then(|()| self.inner.flush());
        r.map_err(|e| self.map(e))
    }

    /// Flushes buffered bytes.
    pub fn flush(&mut self) -> Result<(), Error> {
        let r = self.inner.flush();
        r.map_err(|e| self.map(e))
    }
}
