//! The sync pre-pass of `--sync auto` on files: both inputs opened a
//! second time, their first frames decoded to thumbnails, the offset found
//! before the run starts.

use crossbeam_channel::bounded;

use super::{Align, Settings, sync};
use crate::error::{Error, Warn};
use crate::frame::FramePool;
use crate::input::{self, DecodeEvent, OpenOptions, Target, format};
use crate::output::records::Summary;

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
    let (refs, dists) = thumbs(settings, dist, target, ref_options, dist_options, k)?;
    let peak = ((1u64 << format::depth_of(target.pixel)) - 1) as f64;
    Ok(sync::best_offset(&refs, &dists, k, peak))
}

/// After a run by index whose inputs' frame counts differ: whether the
/// distorted frames look shifted. Returns the offset `--sync auto` would
/// pick, its mean luma PSNR and that of the first pairs as they were made
/// (offset 0), when the offset is not 0 and beats them by 3 dB or more.
fn shift_hint(
    refs: &[sync::Thumb],
    dists: &[sync::Thumb],
    k: usize,
    peak: f64,
) -> Option<(i64, f64, f64)> {
    let n = refs.len().min(dists.len()).min(sync::COMPARE_FRAMES);
    let (offset, psnr) = sync::best_offset(refs, dists, k, peak)?;
    if n < 3 {
        return None;
    }
    let as_paired = (0..n)
        .map(|j| sync::thumb_psnr(&refs[j], &dists[j], peak))
        .sum::<f64>()
        / n as f64;
    (offset != 0 && psnr >= as_paired + 3.0).then_some((offset, psnr, as_paired))
}

/// After a finished run on files paired by index with no offset given:
/// for each distorted input whose frame count differs from the
/// reference's, a warning when its frames look shifted, with the offset
/// `--sync auto` would pick (the check is advice: its failures are
/// ignored).
pub(super) fn hint_shifts(
    settings: &Settings,
    summaries: &[Summary],
    target: Target,
    ref_options: &OpenOptions,
    dist_options: &[OpenOptions],
    k: usize,
    warn: &Warn,
) {
    let plain = settings.align == Align::Index
        && settings.sync.is_none()
        && settings.ref_offset == 0
        && settings.dist_offset == 0
        && settings.start.is_none()
        && reopenable(&settings.reference);
    if !plain {
        return;
    }
    for (s, (d, options)) in summaries
        .iter()
        .zip(settings.distorted.iter().zip(dist_options))
    {
        if s.unpaired_reference == 0 && s.unpaired_distorted == 0 || !reopenable(d) {
            continue;
        }
        // the run's stop flag is set once it has ended: a flag of the
        // check's own (it reads about k + 30 frames of each file)
        let fresh = |o: &OpenOptions| OpenOptions {
            stop: Default::default(),
            live: false,
            ..o.clone()
        };
        let peak = ((1u64 << format::depth_of(target.pixel)) - 1) as f64;
        let hint = thumbs(settings, d, target, &fresh(ref_options), &fresh(options), k)
            .map(|(refs, dists)| shift_hint(&refs, &dists, k, peak));
        if let Ok(Some((o, p, now))) = hint {
            let j = if o < 0 {
                format!("j-{}", -o)
            } else {
                format!("j+{o}")
            };
            warn(&format!(
                "'{d}': the frame counts differ and the first pairs match poorly (mean luma \
                 PSNR {now:.2} dB); the frames look shifted: --sync auto would pair reference \
                 frame {j} with distorted frame j ({p:.2} dB)"
            ));
        }
    }
}

/// The thumbnails of the first `k` + [`sync::COMPARE_FRAMES`] frames of
/// the reference and of `dist`.
fn thumbs(
    settings: &Settings,
    dist: &str,
    target: Target,
    ref_options: &OpenOptions,
    dist_options: &OpenOptions,
    k: usize,
) -> Result<(Vec<sync::Thumb>, Vec<sync::Thumb>), Error> {
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
    Ok((collect(&settings.reference, true)?, collect(dist, false)?))
}
