//! Opening the inputs: all at once, each on its own thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;
use crate::input::{self, OpenOptions};
use crate::pipeline::Settings;

/// How long the first failure waits before it ends the other inputs'
/// opening.
const FAILURE_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Opens every input at once, each on its own thread: a live input starts
/// listening (and a FIFO gets its reader) without waiting for the others'
/// probing. When one fails, the others' waits end (the stop flag) and the
/// first failure in argument order is the run's error.
pub(super) fn open_all(
    settings: &Settings,
    ref_options: &OpenOptions,
    dist_options: &[OpenOptions],
    stop: &Arc<AtomicBool>,
) -> Result<(input::Decoder, Vec<input::Decoder>), Error> {
    let all: Vec<(&String, &OpenOptions)> = std::iter::once((&settings.reference, ref_options))
        .chain(settings.distorted.iter().zip(dist_options))
        .collect();
    // the checks that need no reading first, in argument order (a missing
    // file or a directory is named the same way every time)
    for (label, _) in &all {
        input::check_local(label)?;
    }
    // The first open that fails ends the others' waits through the stop
    // flag, after a short grace so that inputs failing at the same moment
    // fail on their own: the cause is then the earliest of those in the
    // arguments, whatever order the threads ran in.
    let failed = AtomicBool::new(false);
    let cancelled = AtomicBool::new(false);
    // each input's outcome, whether it failed on its own, and whether a
    // signal (not another input's failure) ended its opening
    type Opened = (Result<input::Decoder, Error>, bool, bool);
    let results: Vec<Opened> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .iter()
            .map(|(label, options)| {
                let (failed, cancelled) = (&failed, &cancelled);
                scope.spawn(move || {
                    let r = input::open(label, options);
                    // the stop flag set by a signal, not by another input's
                    // failure (which sets `cancelled` before it): the input
                    // is not at fault, whatever its error says
                    if r.is_err()
                        && stop.load(Ordering::Acquire)
                        && !cancelled.load(Ordering::Acquire)
                    {
                        let e = match r {
                            Err(e @ Error::Interrupted(_)) => e,
                            _ => Error::Interrupted(
                                "interrupted while opening the inputs".to_string(),
                            ),
                        };
                        return (Err(e), true, true);
                    }
                    let own = r.is_err() && !cancelled.load(Ordering::Acquire);
                    if r.is_err() && !failed.swap(true, Ordering::AcqRel) {
                        std::thread::sleep(FAILURE_GRACE);
                        cancelled.store(true, Ordering::Release);
                        stop.store(true, Ordering::Release);
                    }
                    (r, own, false)
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&all)
            .map(|(h, (label, _))| {
                h.join().unwrap_or_else(|_| {
                    let e = Error::Internal(format!("opening input '{label}' panicked"));
                    (Err(e), true, false)
                })
            })
            .collect()
    });
    if results.iter().any(|(r, ..)| r.is_err()) {
        // a signal's interruption first, else the earliest in the arguments
        // of the inputs that failed on their own
        let mut errors: Vec<(Error, bool, bool)> = results
            .into_iter()
            .filter_map(|(r, own, signalled)| r.err().map(|e| (e, own, signalled)))
            .collect();
        let cause = errors
            .iter()
            .position(|(.., signalled)| *signalled)
            .or_else(|| errors.iter().position(|(_, own, _)| *own))
            .unwrap_or(0);
        return Err(errors.swap_remove(cause).0);
    }
    let mut decoders = results.into_iter().filter_map(|(r, ..)| r.ok());
    let reference = decoders
        .next()
        .ok_or_else(|| Error::Internal("no reference decoder".to_string()))?;
    Ok((reference, decoders.collect()))
}
