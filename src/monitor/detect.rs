//! Frozen and black detection on one distorted input, pair by pair in
//! order, from the pairs' luma signatures.

use crate::frame::signature::Signature;
use crate::output::records::{Event, EventKind, Role};

/// The detectors' state for one distorted input.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    prev: Option<Signature>,
    frozen_run: bool,
    black_run: bool,
    /// Distorted frames identical to their predecessor while the reference moved.
    pub frozen_frames: u64,
    /// Distorted frames black while the reference was not.
    pub black_frames: u64,
}

impl Detector {
    /// Takes the next pair of `input` (at `path`) in order; returns the
    /// events it starts: `frozen` or `black` at the first pair of a run.
    pub fn observe(
        &mut self,
        input: usize,
        path: &str,
        frame: u64,
        ref_frame: u64,
        sig: Signature,
    ) -> Vec<Event> {
        let black = sig.dist_black && !sig.ref_black;
        // a run of black pictures is reported as black, not also as frozen
        let frozen = !sig.dist_black
            && self
                .prev
                .is_some_and(|p| p.dist_hash == sig.dist_hash && p.ref_hash != sig.ref_hash);
        self.prev = Some(sig);
        let mut events = Vec::new();
        let event = |kind, message| Event {
            kind,
            input: Some(input),
            source: Some((Role::Distorted, path.to_string())),
            message,
        };
        if frozen {
            self.frozen_frames += 1;
            if !self.frozen_run {
                events.push(event(
                    EventKind::Frozen { frame, ref_frame },
                    format!("'{path}' repeats its previous picture while the reference moves"),
                ));
            }
        }
        self.frozen_run = frozen;
        if black {
            self.black_frames += 1;
            if !self.black_run {
                events.push(event(
                    EventKind::Black { frame, ref_frame },
                    format!("'{path}' is black while the reference is not"),
                ));
            }
        }
        self.black_run = black;
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(r: u64, d: u64, ref_black: bool, dist_black: bool) -> Signature {
        Signature {
            ref_hash: r,
            dist_hash: d,
            ref_black,
            dist_black,
        }
    }

    #[test]
    fn a_frozen_run_is_one_event_and_counts_every_frame() {
        let mut det = Detector::default();
        let mut kinds = Vec::new();
        // distorted repeats picture 7 over frames 1-3 while the reference moves
        for (i, (r, d)) in [(1, 7), (2, 7), (3, 7), (4, 7), (5, 9), (6, 10)]
            .into_iter()
            .enumerate()
        {
            for e in det.observe(0, "d", i as u64, i as u64, sig(r, d, false, false)) {
                kinds.push((i, e.kind));
            }
        }
        assert_eq!(det.frozen_frames, 3);
        assert_eq!(
            kinds,
            vec![(
                1,
                EventKind::Frozen {
                    frame: 1,
                    ref_frame: 1
                }
            )]
        );
        // a still reference is not a frozen distorted input
        let mut still = Detector::default();
        for i in 0..4 {
            assert!(
                still
                    .observe(0, "d", i, i, sig(5, 5, false, false))
                    .is_empty()
            );
        }
        assert_eq!(still.frozen_frames, 0);
    }

    #[test]
    fn black_only_when_the_reference_is_not_and_never_also_frozen() {
        let mut det = Detector::default();
        let mut events = Vec::new();
        for i in 0..3 {
            events.extend(det.observe(1, "d", i, i + 10, sig(i, 0, false, true)));
        }
        // both black: nothing
        events.extend(det.observe(1, "d", 3, 13, sig(3, 0, true, true)));
        assert_eq!((det.black_frames, det.frozen_frames), (3, 0));
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].kind,
            EventKind::Black {
                frame: 0,
                ref_frame: 10
            }
        );
        assert_eq!(events[0].input, Some(1));
    }
}
