//! A progress bar on stderr (indicatif) when stderr is a terminal: frames
//! done and total when known, fps, ETA. In live mode a one-line status that
//! refreshes instead. Nothing when stderr is not a terminal or with `-q`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Sink;
use crate::error::Error;
use crate::output::records::{FrameRecord, Header};

/// Shows progress; draws nothing when stderr is not a terminal.
pub struct ProgressSink {
    bar: Option<ProgressBar>,
    live: bool,
    first_key: Option<usize>,
}

impl ProgressSink {
    /// A progress display (a status line when `live`).
    pub fn new(live: bool) -> Self {
        ProgressSink {
            bar: None,
            live,
            first_key: None,
        }
    }
}

impl Sink for ProgressSink {
    fn header(&mut self, h: &Header, _json: &str) -> Result<(), Error> {
        {
            let live = self.live || h.live;
            let total = h
                .reference
                .frames_announced
                .map(|n| n * h.distorted.len().max(1) as u64);
            let bar = match (live, total) {
                (false, Some(t)) => {
                    let b = ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr());
                    if let Ok(style) = ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} frames  {fps}  ETA {eta}",
                    ) {
                        b.set_style(style.with_key("fps", fps));
                    }
                    b
                }
                _ => {
                    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    if let Ok(style) =
                        ProgressStyle::with_template("{spinner} {pos} frames  {fps}  {msg}")
                    {
                        b.set_style(style.with_key("fps", fps));
                    }
                    b
                }
            };
            self.first_key = (!h.keys.is_empty()).then_some(0);
            self.bar = Some(bar);
        }
        Ok(())
    }
    fn frame(&mut self, f: &FrameRecord<'_>, _json: &str) -> Result<(), Error> {
        {
            if let Some(b) = &self.bar {
                b.inc(1);
                if let (Some(k), true) = (self.first_key, self.live || b.length().is_none())
                    && let (Some(name), Some(v)) = (f.keys.get(k), f.values.get(k))
                {
                    b.set_message(format!("{name} {v:.4}  pts {:.2} s", f.pts));
                }
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Error> {
        if let Some(b) = self.bar.take() {
            // the final count drawn (draws are rate-limited, so the last
            // frames may not have been), then the line cleared for the
            // summary
            b.finish();
            b.finish_and_clear();
        }
        Ok(())
    }
}

/// The bar's rate as frames per second to one decimal (`11.6 fps`).
fn fps(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _w = write!(w, "{:.1} fps", state.per_sec());
}
