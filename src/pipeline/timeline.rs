//! Whether index pairing agrees with the inputs' timelines: an input whose
//! first frame sits later on its own timeline than the reference's first
//! frame does on its own lost frames at its start (a stream cut mid-GOP),
//! and index pairing would shift every pair; an input whose timestamps
//! jump with no decode error has a variable frame rate (or frames missing
//! from the file). Pure decisions; [`super::pair`] applies them.

use crate::output::records::{Event, EventKind, Role};

/// What pairing knows of each input's timeline before its first frame.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Check the first frames at all (index pairing chosen by default, no
    /// offsets, no sync, not live).
    pub check: bool,
    /// The reference stream's start on its own timeline (seconds).
    pub reference: Option<f64>,
    /// Each distorted stream's start on its own timeline.
    pub distorted: Vec<Option<f64>>,
    /// Per distorted input: its timestamps and the reference's count from
    /// one origin (same container format), so pairing by time is right.
    pub shared: Vec<bool>,
}

/// Furthest apart two first frames' timestamps may be for pairing by
/// time to be tried: beyond, the two timelines count from different
/// origins even in one container format.
const MAX_SHIFT: f64 = 60.0;

/// The first frames of the reference (at `r`) and of distorted input `i`
/// (at `t`), on their own timelines, disagree by more than a frame and a
/// half (`tol` is half a frame interval): the event to write, and whether
/// to pair that input by time. Pairing by time needs one origin for both:
/// the same container format, and timestamps that put the later first
/// frame after the earlier one by less than `MAX_SHIFT` (60 s). Unless the two
/// first frames carry the same timestamp, `o.shared[i]` is cleared: a later
/// jump in this input's timestamps cannot turn its pairing to time.
pub fn first_frames(
    o: &mut Origins,
    i: usize,
    path: &str,
    r: Option<f64>,
    t: Option<f64>,
    tol: f64,
) -> Option<(Event, bool)> {
    if !o.check {
        return None;
    }
    let (r, t) = (r?, t?);
    let interval = 2.0 * tol;
    let shared = o.shared.get(i).copied().unwrap_or(false);
    if let Some(s) = o.shared.get_mut(i) {
        *s &= (t - r).abs() <= tol;
    }
    let (rs, ds) = (o.reference?, *o.distorted.get(i)?.as_ref()?);
    let difference = (t - ds) - (r - rs);
    if !difference.is_finite() || interval <= 0.0 || difference.abs() <= 1.5 * interval {
        return None;
    }
    let frames = (difference.abs() / interval).round();
    let side = if difference > 0.0 { "later" } else { "earlier" };
    let by_time = shared && (t - r) * difference > 0.0 && (t - r).abs() <= MAX_SHIFT;
    let what = if by_time {
        "paired by timestamp (frames without a partner are reported as dropped); \
         --align index pairs by order"
            .to_string()
    } else {
        format!(
            "pairing by index would pair frames about {frames} apart: --align pts pairs \
             by timestamp, --sync auto by content"
        )
    };
    let message = format!(
        "'{path}': its first frame is {:.3} s {side} on its own timeline than the \
         reference's (about {frames} frame(s) lost at the start of one of them); {what}",
        difference.abs()
    );
    let event = Event {
        kind: EventKind::Timeline {
            pts: Some(t),
            difference: Some(difference),
            paired_by: if by_time { "pts" } else { "index" },
        },
        input: Some(i),
        source: Some((Role::Distorted, path.to_string())),
        message,
    };
    Some((event, by_time))
}

/// The first jump in an input's timestamps with no decode error: a
/// variable frame rate, or frames missing from the file.
pub fn uneven(
    role: Role,
    path: &str,
    input: Option<usize>,
    frames: u64,
    pts: Option<f64>,
    by_time: bool,
) -> Event {
    let how = if by_time {
        "frames are paired by timestamp"
    } else {
        "pairing by index may pair the wrong frames: --align pts pairs by timestamp"
    };
    Event {
        kind: EventKind::Timeline {
            pts,
            difference: None,
            paired_by: if by_time { "pts" } else { "index" },
        },
        input,
        source: Some((role, path.to_string())),
        message: format!(
            "{} '{path}': its timestamps jump by {frames} frame interval(s) at {:.3} s with no \
             decode error (a variable frame rate, or frames missing from the file); {how}",
            role.name(),
            pts.unwrap_or(f64::NAN)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(shared: bool) -> Origins {
        Origins {
            check: true,
            reference: Some(1.4),
            distorted: vec![Some(2.4)],
            shared: vec![shared],
        }
    }

    #[test]
    fn a_stream_cut_mid_gop_is_paired_by_time_when_the_origin_is_shared() {
        // reference starts at its first frame; the cut stream's first
        // picture comes 1 s after its first packet
        let (e, by_time) =
            first_frames(&mut origins(true), 0, "cut.ts", Some(1.4), Some(3.4), 0.02).unwrap();
        assert!(by_time);
        match e.kind {
            EventKind::Timeline {
                difference,
                paired_by,
                ..
            } => {
                assert!((difference.unwrap() - 1.0).abs() < 1e-9);
                assert_eq!(paired_by, "pts");
            }
            k => panic!("{k:?}"),
        }
        let (e, by_time) = first_frames(
            &mut origins(false),
            0,
            "cut.mkv",
            Some(1.4),
            Some(3.4),
            0.02,
        )
        .unwrap();
        assert!(!by_time);
        assert!(e.message.contains("--align pts") && e.message.contains("25 apart"));
    }

    #[test]
    fn agreeing_timelines_and_unchecked_runs_say_nothing() {
        // within a frame and a half: nothing
        assert!(first_frames(&mut origins(true), 0, "d", Some(1.4), Some(2.45), 0.02).is_none());
        let mut o = origins(true);
        o.check = false;
        assert!(first_frames(&mut o, 0, "d", Some(1.4), Some(3.4), 0.02).is_none());
        // no timestamps, no start: nothing to compare
        assert!(first_frames(&mut origins(true), 0, "d", None, Some(3.4), 0.02).is_none());
        let mut o = origins(true);
        o.distorted = vec![None];
        assert!(first_frames(&mut o, 0, "d", Some(1.4), Some(3.4), 0.02).is_none());
    }

    #[test]
    fn timestamps_from_another_origin_are_not_paired_by_time() {
        // the reference has run for 10 minutes; the distorted capture's
        // timestamps start near 1.4 s: its lost start is warned about
        let mut o = origins(true);
        o.reference = Some(600.0);
        let (e, by_time) = first_frames(&mut o, 0, "d.ts", Some(600.0), Some(3.4), 0.02).unwrap();
        assert!(!by_time);
        assert!(e.message.contains("--align pts"));
        assert!(!o.shared[0], "no later switch to time either");
        // first frames stamped alike: a later jump may pair by time
        let mut o = origins(true);
        o.distorted = vec![Some(1.4)];
        assert!(first_frames(&mut o, 0, "d", Some(1.4), Some(1.4), 0.02).is_none());
        assert!(o.shared[0]);
        // stamped most of a frame apart: it may not
        assert!(first_frames(&mut o, 0, "d", Some(1.4), Some(1.43), 0.02).is_none());
        assert!(!o.shared[0]);
    }

    #[test]
    fn an_uneven_timeline_says_how_it_is_paired() {
        let e = uneven(Role::Distorted, "v.mkv", Some(0), 2, Some(0.12), true);
        assert!(e.message.contains("paired by timestamp"), "{}", e.message);
        let e = uneven(Role::Distorted, "v.mkv", Some(0), 2, Some(0.12), false);
        assert!(e.message.contains("--align pts"), "{}", e.message);
    }
}
