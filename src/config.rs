//! Configuration: the built-in default (`config/default.toml`), then an
//! optional `--config` file, then flags. Every problem in a file is reported
//! as `file:line:column: what is wrong`.

use serde::Deserialize;
use toml::Spanned;

/// A config file larger than this is refused before it is read whole
/// (`--config /dev/zero`).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

use crate::error::Error;
use crate::metrics::{self, SsimMode};
use crate::monitor::alert::{self, Rule};
use crate::pipeline::sync::Confidence;
use crate::stats::WindowSpec;

/// The default configuration file, as shipped in `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// The name the built-in default is reported under.
pub const DEFAULT_NAME: &str = "config/default.toml (built in)";

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Metric names (or `all`).
    pub metrics: Vec<String>,
    /// Rolling window: frames, or seconds.
    pub window: WindowSpec,
    /// A window record every this many frames (0: never).
    pub window_every: usize,
    /// Depth of each bounded queue.
    pub queue_depth: usize,
    /// PSNR cap in dB; `None` is `6 * bitdepth + 12`.
    pub psnr_max: Option<f64>,
    /// SSIM convention.
    pub ssim_mode: SsimMode,
    /// Smooth L1 β.
    pub smooth_l1_beta: f64,
    /// Alert rules.
    pub alerts: Vec<Rule>,
    /// Seconds a live input may stay silent before it is lost.
    pub stall_timeout: f64,
    /// When a live sync result is accepted.
    pub sync_confidence: Confidence,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PsnrMax {
    Db(f64),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IntOrText {
    Int(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    metrics: Option<Spanned<Vec<String>>>,
    window: Option<Spanned<IntOrText>>,
    alerts: Option<Spanned<Vec<String>>>,
    stall_timeout: Option<Spanned<f64>>,
    window_every: Option<Spanned<i64>>,
    queue_depth: Option<Spanned<i64>>,
    psnr_max: Option<Spanned<PsnrMax>>,
    ssim_mode: Option<Spanned<String>>,
    smooth_l1_beta: Option<Spanned<f64>>,
    sync_floor_db: Option<Spanned<f64>>,
    sync_margin_db: Option<Spanned<f64>>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|p| offset - p).unwrap_or(offset + 1);
    (line, col)
}

fn err_at(path: &str, text: &str, offset: usize, message: impl Into<String>) -> Error {
    let (line, column) = line_col(text, offset);
    let mut message = message.into();
    // Name the offending line, so a type error says which key it is about.
    if let Some(src) = text.lines().nth(line.saturating_sub(1)) {
        let src = src.trim();
        if !src.is_empty() {
            let shown: String = src.chars().take(60).collect();
            message = format!("{message} (in `{shown}`)");
        }
    }
    Error::Config {
        path: path.to_string(),
        line,
        column,
        message,
    }
}

fn int_in<T>(
    path: &str,
    text: &str,
    v: &Spanned<i64>,
    key: &str,
    min: i64,
    max: i64,
) -> Result<T, Error>
where
    T: TryFrom<i64>,
{
    let n = *v.get_ref();
    if n < min || n > max {
        return Err(err_at(
            path,
            text,
            v.span().start,
            format!("{key} must be between {min} and {max}, not {n}"),
        ));
    }
    T::try_from(n).map_err(|_| err_at(path, text, v.span().start, format!("{key} out of range")))
}

impl Config {
    /// The built-in default configuration.
    pub fn builtin() -> Result<Config, Error> {
        let empty = Config {
            metrics: Vec::new(),
            window: WindowSpec::Frames(1),
            window_every: 0,
            queue_depth: 1,
            psnr_max: None,
            ssim_mode: SsimMode::Gaussian,
            smooth_l1_beta: 1.0,
            alerts: Vec::new(),
            stall_timeout: 5.0,
            sync_confidence: Confidence::default(),
        };
        empty.overlay(DEFAULT_NAME, DEFAULT_TOML)
    }

    /// Reads `path` (at most [`MAX_CONFIG_BYTES`]) and applies it over
    /// `self`.
    pub fn overlay_file(self, path: &str) -> Result<Config, Error> {
        use std::io::Read;
        let fail = |message: String| Error::Config {
            path: path.to_string(),
            line: 0,
            column: 0,
            message,
        };
        let file =
            std::fs::File::open(path).map_err(|e| fail(format!("cannot read config: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read config: {e}")))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(fail(format!(
                "larger than {} KiB: not a vqm config",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| fail("cannot read config: not UTF-8 text".to_string()))?;
        self.overlay(path, &text)
    }

    /// Applies the TOML `text` (named `path` in errors) over `self`.
    pub fn overlay(mut self, path: &str, text: &str) -> Result<Config, Error> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let msg = e.message().trim().replace('\n', " ");
            err_at(path, text, offset, msg)
        })?;
        if let Some(m) = file.metrics {
            if let Err(e) = metrics::resolve_names(m.get_ref()) {
                return Err(err_at(path, text, m.span().start, format!("metrics: {e}")));
            }
            self.metrics = m.into_inner();
        }
        if let Some(v) = file.window {
            let at = v.span().start;
            let spec = match v.into_inner() {
                IntOrText::Int(n) => WindowSpec::parse(&n.to_string()),
                IntOrText::Text(t) => WindowSpec::parse(&t),
            };
            self.window = spec.map_err(|e| err_at(path, text, at, format!("window: {e}")))?;
        }
        if let Some(v) = file.alerts {
            let at = v.span().start;
            let mut rules = Vec::new();
            for r in v.into_inner() {
                rules.push(
                    alert::parse(&r)
                        .map_err(|e| err_at(path, text, at, format!("alert '{r}': {e}")))?,
                );
            }
            self.alerts = rules;
        }
        if let Some(v) = file.stall_timeout {
            let t = *v.get_ref();
            if !(t.is_finite() && t > 0.0 && t <= 3600.0) {
                return Err(err_at(
                    path,
                    text,
                    v.span().start,
                    format!("stall_timeout must be above 0 and at most 3600 seconds, not {t}"),
                ));
            }
            self.stall_timeout = t;
        }
        let db = |v: &Spanned<f64>, key: &str, min: f64, max: f64| {
            let d = *v.get_ref();
            if d.is_finite() && d >= min && d <= max {
                Ok(d)
            } else {
                Err(err_at(
                    path,
                    text,
                    v.span().start,
                    format!("{key} must be between {min} and {max} dB, not {d}"),
                ))
            }
        };
        if let Some(v) = &file.sync_floor_db {
            self.sync_confidence.floor_db = db(v, "sync_floor_db", 0.0, 100.0)?;
        }
        if let Some(v) = &file.sync_margin_db {
            self.sync_confidence.margin_db = db(v, "sync_margin_db", 0.0, 100.0)?;
        }
        if let Some(v) = file.window_every {
            self.window_every = int_in(path, text, &v, "window_every", 0, 10_000_000)?;
        }
        if let Some(v) = file.queue_depth {
            self.queue_depth = int_in(path, text, &v, "queue_depth", 1, 1024)?;
        }
        if let Some(v) = file.psnr_max {
            let at = v.span().start;
            self.psnr_max = match v.into_inner() {
                PsnrMax::Word(w) if w == "auto" => None,
                PsnrMax::Word(w) => {
                    return Err(err_at(
                        path,
                        text,
                        at,
                        format!("psnr_max must be a number of dB or \"auto\", not \"{w}\""),
                    ));
                }
                PsnrMax::Db(d) if d.is_finite() && d > 0.0 && d <= 1000.0 => Some(d),
                PsnrMax::Db(d) => {
                    return Err(err_at(
                        path,
                        text,
                        at,
                        format!("psnr_max must be above 0 and at most 1000 dB, not {d}"),
                    ));
                }
            };
        }
        if let Some(v) = file.ssim_mode {
            let at = v.span().start;
            let name = v.into_inner();
            self.ssim_mode = SsimMode::from_name(&name).ok_or_else(|| {
                err_at(
                    path,
                    text,
                    at,
                    format!(
                        "ssim_mode must be \"gaussian\", \"ffmpeg\" or \"zero-pad\", not \"{name}\""
                    ),
                )
            })?;
        }
        if let Some(v) = file.smooth_l1_beta {
            let b = *v.get_ref();
            if !(b.is_finite() && (0.0..=1000.0).contains(&b)) {
                return Err(err_at(
                    path,
                    text,
                    v.span().start,
                    format!("smooth_l1_beta must be between 0 and 1000, not {b}"),
                ));
            }
            self.smooth_l1_beta = b;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_parses() {
        let c = Config::builtin().unwrap();
        assert_eq!(c.metrics, vec!["psnr", "ssim"]);
        assert_eq!(c.window, WindowSpec::Frames(30));
        assert_eq!(c.queue_depth, 4);
        assert_eq!(c.psnr_max, None);
    }

    #[test]
    fn overlay_overrides_and_reports_lines() {
        let c = Config::builtin().unwrap();
        let c2 = c
            .clone()
            .overlay("x.toml", "window = 5\npsnr_max = 70\n")
            .unwrap();
        assert_eq!(c2.window, WindowSpec::Frames(5));
        let c3 = c
            .clone()
            .overlay(
                "x.toml",
                "window = \"2s\"\nalerts = [\"ssim_y<0.9 for 2s\"]\n",
            )
            .unwrap();
        assert_eq!(c3.window, WindowSpec::Seconds(2.0));
        assert_eq!(c3.alerts[0].key, "ssim_y");
        match c.clone().overlay("x.toml", "\nalerts = [\"ssim_y 0.9\"]\n") {
            Err(Error::Config { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("ssim_y 0.9"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c2.psnr_max, Some(70.0));
        match c.clone().overlay("x.toml", "window = 5\nbogus = 1\n") {
            Err(Error::Config { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("bogus"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match c.clone().overlay("x.toml", "\n\nwindow = 0\n") {
            Err(Error::Config { line, column, .. }) => assert_eq!((line, column), (3, 10)),
            other => panic!("{other:?}"),
        }
        match c
            .clone()
            .overlay("x.toml", "metrics = [\"psnr\", \"nope\"]\n")
        {
            Err(Error::Config { line, message, .. }) => {
                assert_eq!(line, 1);
                assert!(message.contains("nope"));
            }
            other => panic!("{other:?}"),
        }
        match c.overlay("x.toml", "window = [\n") {
            Err(Error::Config { line, .. }) => assert!(line >= 1),
            other => panic!("{other:?}"),
        }
    }
}
