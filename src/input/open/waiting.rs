//! Opening a live input that is not speaking yet: silent at start-up, or
//! joined far from its next keyframe. It is waited for, not fatal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{NO_PICTURE, Notify, OpenOptions, SILENT_AT_OPEN, Session, input_error, open_session};
use crate::error::Error;

/// Opens `label`; a live network input that stays silent at start-up is
/// waited for like a lost one (reopened with backoff, 0.2 s doubling to
/// 2 s) until it speaks, `live_timeout` passes or the run is stopped.
/// Returns the session and how long it was waited for, if it was.
pub(super) fn open_waiting(
    label: &str,
    options: &OpenOptions,
    network: bool,
    activity: &Arc<AtomicU64>,
    udp: Option<&crate::input::udp::Receiver>,
) -> Result<(Session, Option<Duration>), Error> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    let mut said = false;
    let mut told_keyframe = false;
    loop {
        match open_session(label, options, network, activity, udp) {
            Ok(s) => return Ok((s, said.then(|| started.elapsed()))),
            Err(Error::Input { cause, .. })
                if cause == NO_PICTURE
                    && options.live
                    && network
                    && !options.stop.load(Ordering::Relaxed) =>
            {
                // a live stream joined far from its next keyframe (a long
                // GOP): the codec's parameters come with it; probe again
                if let Some(limit) = options.live_timeout
                    && started.elapsed() >= limit
                {
                    return Err(input_error(
                        label,
                        format!(
                            "no keyframe arrived within --live-timeout ({} s)",
                            limit.as_secs_f64()
                        ),
                    ));
                }
                if !told_keyframe {
                    told_keyframe = true;
                    if let Some(Notify(warn)) = &options.on_wait {
                        warn(&format!(
                            "'{label}': data arrives but no keyframe yet; waiting for one"
                        ));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(Error::Input { cause, .. })
                if cause == SILENT_AT_OPEN
                    && options.live
                    && network
                    && !options.stop.load(Ordering::Relaxed) =>
            {
                if let Some(limit) = options.live_timeout
                    && started.elapsed() >= limit
                {
                    return Err(input_error(
                        label,
                        format!(
                            "no data arrived within --live-timeout ({} s)",
                            limit.as_secs_f64()
                        ),
                    ));
                }
                if !said {
                    said = true;
                    if let Some(Notify(warn)) = &options.on_wait {
                        warn(&format!(
                            "'{label}': no data yet; waiting for it (--live-timeout limits the wait)"
                        ));
                    }
                }
                let until = Instant::now() + backoff;
                while Instant::now() < until && !options.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}
