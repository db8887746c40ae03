//! Pairing driven frame by frame, without FFmpeg or threads.

use super::*;

/// Records what pairing gives out.
#[derive(Default)]
pub(super) struct Log {
    /// (input, pair index, reference index, distorted index)
    pub(super) pairs: Vec<(usize, u64, u64, u64)>,
    pub(super) released: Vec<(Who, u64)>,
    pub(super) events: Vec<(Event, Vec<usize>)>,
    /// For each event, the pairs given out before it.
    pub(super) at: Vec<usize>,
}

impl PairOut for Log {
    fn pair(
        &mut self,
        input: usize,
        index: u64,
        reference: &Arc<Frame>,
        distorted: Frame,
    ) -> Result<(), Error> {
        self.pairs
            .push((input, index, reference.index, distorted.index));
        Ok(())
    }
    fn release(&mut self, who: Who, frame: Frame) {
        self.released.push((who, frame.index));
    }
    fn event(&mut self, event: Event, decode_error_for: Vec<usize>) {
        self.at.push(self.pairs.len());
        self.events.push((event, decode_error_for));
    }
}

impl Log {
    pub(super) fn kinds(&self) -> Vec<&'static str> {
        self.events.iter().map(|(e, _)| e.kind.name()).collect()
    }
}

/// A 16x16 frame whose samples follow `seed` (distinct pictures for
/// distinct seeds), at `index` and 25 fps.
pub(super) fn frame(index: u64, seed: u64) -> Frame {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let samples = (0..256)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8
        })
        .collect();
    let mut f = Frame::from_u8(vec![(16, 16, samples)]);
    f.index = index;
    f.pts = index as f64 / 25.0;
    f.abs_pts = Some(1.4 + f.pts);
    f
}

pub(super) fn settings(inputs: usize) -> PairSettings {
    PairSettings {
        queue_cap: 2,
        pts_tolerance: 0.02,
        peak: 255.0,
        every: 1,
        sync_range: 4,
        ref_skip: vec![0; inputs],
        dist_skip: vec![0; inputs],
        pts_guard: vec![false; inputs],
        ..PairSettings::default()
    }
}

/// Feeds both inputs in turns, as the decoders would, while pairing
/// has room, then ends them and lets the distorted rest be counted.
pub(super) fn run(mut p: Pairing, refs: Vec<Frame>, dists: Vec<Vec<Frame>>) -> (Pairing, Log) {
    let mut log = Log::default();
    let mut refs = refs.into_iter();
    let mut dists: Vec<_> = dists.into_iter().map(|d| d.into_iter()).collect();
    let n = dists.len();
    let mut ref_count = 0;
    let mut dist_counts = vec![0u64; n];
    loop {
        let progress = p.advance(&mut log).unwrap();
        if progress != Progress::Wants {
            break;
        }
        let mut fed = false;
        if p.has_room(Who::Reference) {
            let msg = match refs.next() {
                Some(f) => {
                    ref_count += 1;
                    DecodeEvent::Frame(f)
                }
                None => DecodeEvent::End { frames: ref_count },
            };
            p.receive(Who::Reference, msg, &mut log).unwrap();
            fed = true;
        }
        for (i, d) in dists.iter_mut().enumerate() {
            let who = Who::Distorted(i);
            if p.has_room(who) {
                let msg = match d.next() {
                    Some(f) => {
                        dist_counts[i] += 1;
                        DecodeEvent::Frame(f)
                    }
                    None => DecodeEvent::End {
                        frames: dist_counts[i],
                    },
                };
                p.receive(who, msg, &mut log).unwrap();
                fed = true;
            }
        }
        assert!(fed, "pairing waits for nothing");
    }
    for (i, d) in dists.iter_mut().enumerate() {
        while !p.finish_input(i, &mut log) {
            let msg = match d.next() {
                Some(f) => DecodeEvent::Frame(f),
                None => DecodeEvent::End { frames: 1 },
            };
            p.receive(Who::Distorted(i), msg, &mut log).unwrap();
        }
    }
    (p, log)
}

fn frames(range: std::ops::Range<u64>) -> Vec<Frame> {
    range.map(|i| frame(i, i)).collect()
}

#[test]
fn index_pairing_pairs_in_order_and_releases_every_frame() {
    let p = Pairing::new(settings(1), "r", &["d".to_string()]);
    let (p, log) = run(p, frames(0..6), vec![frames(0..6)]);
    let want: Vec<_> = (0..6).map(|i| (0, i, i, i)).collect();
    assert_eq!(log.pairs, want);
    assert_eq!(p.counts(), vec![PairCounts::default()]);
    // every reference buffer comes back once its pairs are sent
    let refs = log.released.iter().filter(|(w, _)| *w == Who::Reference);
    assert_eq!(refs.count(), 6);
    assert!(log.events.is_empty());
    assert!(p.reference_finished());
}

#[test]
fn offsets_skip_frames_and_the_rest_is_counted_unpaired() {
    let mut s = settings(2);
    s.ref_skip = vec![2, 0];
    s.dist_skip = vec![0, 1];
    let d = ["a".to_string(), "b".to_string()];
    let p = Pairing::new(s, "r", &d);
    let (p, log) = run(p, frames(0..8), vec![frames(0..8), frames(0..8)]);
    let a: Vec<_> = log.pairs.iter().filter(|x| x.0 == 0).collect();
    let b: Vec<_> = log.pairs.iter().filter(|x| x.0 == 1).collect();
    // input 0: reference j + 2 with distorted j
    assert_eq!(
        a,
        (0..6)
            .map(|j| (0, j, j + 2, j))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    // input 1: reference j with distorted j + 1
    assert_eq!(
        b,
        (0..7)
            .map(|j| (1, j, j, j + 1))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    let c = p.counts();
    assert_eq!(
        (
            c[0].unpaired_reference,
            c[0].unpaired_distorted,
            c[0].offset
        ),
        (2, 2, 2)
    );
    assert_eq!(
        (
            c[1].unpaired_reference,
            c[1].unpaired_distorted,
            c[1].offset
        ),
        (1, 1, -1)
    );
    // each input's frames all come back, measured or not
    for i in 0..2 {
        let back = log
            .released
            .iter()
            .filter(|(w, _)| *w == Who::Distorted(i))
            .count();
        let measured = log.pairs.iter().filter(|x| x.0 == i).count();
        assert_eq!(back + measured, 8, "input {i}");
    }
}

#[test]
fn pts_pairing_drops_a_missing_frame_and_keeps_the_rest_in_step() {
    let mut s = settings(1);
    s.align = Align::Pts;
    let p = Pairing::new(s, "r", &["d".to_string()]);
    // distorted frame 3 is missing: its neighbours keep their times
    let dist: Vec<Frame> = frames(0..8).into_iter().filter(|f| f.index != 3).collect();
    let (p, log) = run(p, frames(0..8), vec![dist]);
    let refs: Vec<u64> = log.pairs.iter().map(|x| x.2).collect();
    let dists: Vec<u64> = log.pairs.iter().map(|x| x.3).collect();
    assert_eq!(refs, vec![0, 1, 2, 4, 5, 6, 7]);
    assert_eq!(refs, dists);
    let c = &p.counts()[0];
    assert_eq!(
        (c.dropped, c.unpaired_reference, c.unpaired_distorted),
        (1, 1, 0)
    );
    assert_eq!(log.kinds(), vec!["dropped"]);
    assert_eq!(
        log.events[0].0.kind,
        // on the records' time base (the frame's own stream time is 1.52 s)
        EventKind::Dropped {
            ref_frame: 3,
            pts: Some(3.0 / 25.0)
        }
    );
}

#[test]
fn a_frame_lost_to_a_decode_error_never_shifts_the_index_pairs() {
    let mut s = settings(1);
    s.pts_guard = vec![true];
    let mut p = Pairing::new(s, "r", &["d".to_string()]);
    let mut log = Log::default();
    // the distorted decoder reports an error where frame 2 would be
    let mut dist = frames(0..2);
    dist.extend(frames(3..7).into_iter().map(|mut f| {
        // indices count decoded frames: the lost one is not counted
        f.index -= 1;
        f
    }));
    p.receive(
        Who::Distorted(0),
        DecodeEvent::DecodeError {
            cause: "corrupt".to_string(),
        },
        &mut log,
    )
    .unwrap();
    p.receive(
        Who::Reference,
        DecodeEvent::DecodeError {
            cause: "also".to_string(),
        },
        &mut log,
    )
    .unwrap();
    let (p, log2) = run(p, frames(0..7), vec![dist]);
    let pairs: Vec<(u64, u64)> = log2.pairs.iter().map(|x| (x.2, x.3)).collect();
    // reference k pairs with the distorted frame shown at k's time
    assert_eq!(pairs, vec![(0, 0), (1, 1), (3, 2), (4, 3), (5, 4), (6, 5)]);
    let c = &p.counts()[0];
    assert_eq!(
        (c.dropped, c.unpaired_reference, c.unpaired_distorted),
        (1, 1, 0)
    );
    // decode errors: the distorted one counts for its input, the
    // reference's for every input
    assert_eq!(log.kinds(), vec!["decode_error", "decode_error"]);
    assert_eq!(log.events[0].1, vec![0]);
    assert_eq!(log.events[1].1, vec![0]);
    assert_eq!(log.events[1].0.input, None);
    assert_eq!(log2.kinds(), vec!["dropped"]);
}

#[test]
fn every_and_frames_limit_what_is_measured() {
    let mut s = settings(1);
    s.every = 3;
    s.frames = Some(7);
    let p = Pairing::new(s, "r", &["d".to_string()]);
    let (_, log) = run(p, frames(0..20), vec![frames(0..20)]);
    let idx: Vec<u64> = log.pairs.iter().map(|x| x.1).collect();
    assert_eq!(idx, vec![0, 3, 6]);
    let refs: Vec<u64> = log.pairs.iter().map(|x| x.2).collect();
    assert_eq!(refs, vec![0, 3, 6]);
}

#[test]
fn an_in_run_sync_finds_the_offset_and_pairs_from_it() {
    let mut s = settings(1);
    s.sync_at_start = true;
    s.sync_range = 4;
    let p = Pairing::new(s, "r", &["d".to_string()]);
    // the distorted input starts 3 frames into the reference's pictures
    let n = 60;
    let refs: Vec<Frame> = (0..n).map(|i| frame(i, i)).collect();
    let dists: Vec<Frame> = (0..n - 3).map(|i| frame(i, i + 3)).collect();
    let (p, log) = run(p, refs, vec![dists]);
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync"]);
    match &log.events[1].0.kind {
        EventKind::Sync {
            offset,
            psnr,
            keeps_pending,
            ..
        } => {
            assert_eq!(*offset, 3);
            assert_eq!(*psnr, Some(100.0), "identical pictures");
            assert!(!keeps_pending, "the pending pairs were at offset 0");
        }
        other => panic!("{other:?}"),
    }
    // measured from the first pair, pending, at offset 0 while searching;
    // at offset 3 once found
    let found = log.at[1];
    assert_eq!(
        found,
        4 + sync::COMPARE_FRAMES,
        "pairs made while searching"
    );
    for (k, (_, _, r, d)) in log.pairs.iter().enumerate() {
        let want = if k < found { *d } else { d + 3 };
        assert_eq!(*r, want, "pair {k}");
    }
    assert_eq!(p.counts()[0].offset, 3);
    // nothing is lost: every frame is paired or counted
    let c = &p.counts()[0];
    assert_eq!(c.unpaired_reference + log.pairs.len() as u64, n);
    assert_eq!(c.unpaired_distorted + log.pairs.len() as u64, n - 3);
}

#[test]
fn an_input_with_no_frame_and_a_failure_are_errors() {
    let mut p = Pairing::new(settings(1), "r", &["d".to_string()]);
    let mut log = Log::default();
    let e = p
        .receive(Who::Distorted(0), DecodeEvent::End { frames: 0 }, &mut log)
        .unwrap_err();
    assert!(e.to_string().contains("'d'"), "{e}");
    assert!(p.is_ended(Who::Distorted(0)));
    let e = p
        .receive(
            Who::Reference,
            DecodeEvent::Failed(Error::Input {
                input: "r".to_string(),
                cause: "gone".to_string(),
            }),
            &mut log,
        )
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(!p.reference_finished());
}

#[test]
fn a_lost_reference_lets_the_distorted_input_flow_unpaired() {
    let mut p = Pairing::new(settings(1), "r", &["d".to_string()]);
    let mut log = Log::default();
    p.receive(
        Who::Reference,
        DecodeEvent::Lost {
            cause: "silent".to_string(),
        },
        &mut log,
    )
    .unwrap();
    for f in frames(0..2) {
        assert!(p.has_room(Who::Distorted(0)));
        p.receive(Who::Distorted(0), DecodeEvent::Frame(f), &mut log)
            .unwrap();
        assert_eq!(p.advance(&mut log).unwrap(), Progress::Wants);
    }
    assert_eq!(p.counts()[0].unpaired_distorted, 2);
    assert_eq!(log.kinds(), vec!["stream_lost"]);
    p.receive(
        Who::Reference,
        DecodeEvent::Restored { attempts: 2 },
        &mut log,
    )
    .unwrap();
    // the reference came back: every input looks for its offset again
    assert_eq!(
        log.kinds(),
        vec!["stream_lost", "stream_restored", "sync_uncertain"]
    );
    assert_eq!(
        log.events[1].0.kind,
        EventKind::StreamRestored { attempts: 2 }
    );
}

/// Settings whose timelines are checked: both streams start at 1.4 s on
/// their own timelines, and share their origin when `shared`.
fn checked(shared: bool) -> PairSettings {
    PairSettings {
        origins: Origins {
            check: true,
            reference: Some(1.4),
            distorted: vec![Some(1.4)],
            shared: vec![shared],
        },
        ..settings(1)
    }
}

#[test]
fn a_stream_whose_first_frames_were_lost_is_paired_by_time() {
    // the distorted stream's first 10 pictures never decoded: its first
    // frame is the reference's frame 10 (same picture, same timestamp)
    let refs = frames(0..20);
    let dists: Vec<Frame> = (10..20)
        .map(|i| {
            let mut f = frame(i - 10, i);
            f.abs_pts = Some(1.4 + i as f64 / 25.0);
            f
        })
        .collect();
    let (p, log) = run(
        Pairing::new(checked(true), "r", &["d".into()]),
        refs,
        vec![dists],
    );
    let expect: Vec<_> = (0..10).map(|k| (0, k, 10 + k, k)).collect();
    assert_eq!(log.pairs, expect);
    let c = &p.counts()[0];
    assert_eq!(
        (c.dropped, c.unpaired_reference, c.unpaired_distorted),
        (10, 10, 0)
    );
    assert_eq!(log.kinds()[0], "timeline");
    assert_eq!(log.kinds().iter().filter(|k| **k == "dropped").count(), 10);
}

#[test]
fn a_lost_start_without_a_shared_origin_is_warned_and_paired_by_index() {
    let refs = frames(0..5);
    let dists: Vec<Frame> = (0..5)
        .map(|i| {
            let mut f = frame(i, i);
            f.abs_pts = Some(1.4 + 0.4 + i as f64 / 25.0);
            f
        })
        .collect();
    let (_, log) = run(
        Pairing::new(checked(false), "r", &["d".into()]),
        refs,
        vec![dists],
    );
    assert_eq!(log.pairs.len(), 5);
    assert!(log.pairs.iter().all(|(_, _, r, d)| r == d));
    assert_eq!(log.kinds(), vec!["timeline"]);
    assert!(matches!(
        log.events[0].0.kind,
        EventKind::Timeline {
            paired_by: "index",
            ..
        }
    ));
}

#[test]
fn timestamp_jumps_are_said_once_and_format_changes_each_time() {
    let mut p = Pairing::new(settings(1), "r", &["d".to_string()]);
    let mut log = Log::default();
    for _ in 0..2 {
        let gap = DecodeEvent::Gap {
            frames: 1,
            pts: Some(2.0),
        };
        p.receive(Who::Distorted(0), gap, &mut log).unwrap();
    }
    let change = DecodeEvent::FormatChange {
        from: "yuv420p 16x16".into(),
        to: "yuv420p 8x8".into(),
    };
    p.receive(Who::Distorted(0), change, &mut log).unwrap();
    assert_eq!(log.kinds(), vec!["timeline", "format_change"]);
    assert!(log.events.iter().all(|(_, errs)| errs.is_empty()));
}
