//! The sync pre-pass of `--sync auto` on files: both inputs opened a
//! second time, their first frames decoded to thumbnails, the offset found
//! before the run starts.

use crossbeam_channel::bounded;

use super::{Settings, sync};
use crate::error::Error;
use crate::frame::FramePool;
use crate::input::{self, DecodeEvent, OpenOptions, Target, format};

/// Whether an input can be opened a second time for a sync pre-pass: a
/// regular file (never a pipe, FIFO, device or stream, which a second
/// reader would drain or block on).
pub(super) fn reopenable(label: &str) -> bool {
    label != "-"
        && !label.starts_with("pipe:")
        && !input::is_network(label)
        && std::fs::metadata(label.strip_prefix("file:").unwrap_or(label))
            .is_ok_and(|m| m.is_file())
}

/// Decodes the first frames of both inputs to thumbnails and finds their
/// offset (files only: they are opened again for the run).
pub(super) fn presync(
    settings: &Settings,
    dist: &str,
    target: Target,
    ref_options: &OpenOptions,
    dist_options: &OpenOptions,
    k: usize,
) -> Result<Option<(i64, f64)>, Error> {
    let need = k + sync::COMPARE_FRAMES;
    let collect = |label: &str, is_ref: bool| -> Result<Vec<sync::Thumb>, Error> {
        let options = if is_ref { ref_options } else { dist_options };
        let mut dec = input::open(label, options)?;
        let t = if is_ref { dec.own_target()? } else { target };
        dec.set_target(t);
        let (tx, rx) = bounded(4);
        let pool = FramePool::new(4);
        let p2 = pool.clone();
        let h = std::thread::spawn(move || dec.run(t, tx, p2));
        let mut thumbs = Vec::new();
        let mut failure = None;
        while thumbs.len() < need {
            match rx.recv() {
                Ok(DecodeEvent::Frame(f)) => {
                    thumbs.push(sync::thumb(&f));
                    pool.give(f);
                }
                Ok(DecodeEvent::Failed(e)) => {
                    failure = Some(e);
                    break;
                }
                Ok(DecodeEvent::End { .. }) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(rx);
        if h.join().is_err() {
            return Err(Error::Internal("sync decoder thread panicked".to_string()));
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(thumbs),
        }
    };
    let refs = collect(&settings.reference, true)?;
    let dists = collect(dist, false)?;
    let peak = ((1u64 << format::depth_of(target.pixel)) - 1) as f64;
    Ok(sync::best_offset(&refs, &dists, k, peak))
}
