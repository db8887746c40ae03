//! The sync search beside pairing, driven frame by frame.

use super::super::tests::{Log, frame, run, settings};
use super::super::*;

fn searching(confidence: Option<sync::Confidence>) -> Pairing {
    let mut s = settings(1);
    s.sync_at_start = true;
    s.sync_range = 4;
    s.confidence = confidence;
    Pairing::new(s, "r", &["d".to_string()])
}

fn sync_kind(log: &Log, k: usize) -> &EventKind {
    &log.events[k].0.kind
}

#[test]
fn a_sync_found_where_it_paired_keeps_the_pending_pairs() {
    let p = searching(None);
    let n = 50;
    let (p, log) = run(
        p,
        (0..n).map(|i| frame(i, i)).collect(),
        vec![(0..n).map(|i| frame(i, i)).collect()],
    );
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync"]);
    assert!(matches!(
        sync_kind(&log, 0),
        EventKind::SyncUncertain {
            reason: "searching",
            offset: 0,
            psnr: None,
            ..
        }
    ));
    assert!(
        matches!(
            sync_kind(&log, 1),
            EventKind::Sync {
                offset: 0,
                keeps_pending: true,
                ..
            }
        ),
        "{:?}",
        sync_kind(&log, 1)
    );
    assert_eq!(log.at[0], 0, "pending from the first pair");
    assert_eq!(log.pairs.len() as u64, n, "every frame measured");
    assert!(log.pairs.iter().all(|(_, _, r, d)| r == d));
    let c = &p.counts()[0];
    assert_eq!((c.unpaired_reference, c.unpaired_distorted), (0, 0));
}

#[test]
fn a_short_input_is_judged_when_it_ends() {
    // fewer frames than the search needs: judged on what there is
    let p = searching(None);
    let n = 12;
    let refs = (0..n).map(|i| frame(i, i)).collect();
    let dists = (0..n - 2).map(|i| frame(i, i + 2)).collect();
    let (_, log) = run(p, refs, vec![dists]);
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync"]);
    assert!(matches!(
        sync_kind(&log, 1),
        EventKind::Sync {
            offset: 2,
            keeps_pending: false,
            ..
        }
    ));
}

#[test]
fn unrelated_pictures_stay_pending_under_the_floor() {
    let p = searching(Some(sync::Confidence::default()));
    let n = 120;
    let refs = (0..n).map(|i| frame(i, i)).collect();
    let dists = (0..n).map(|i| frame(i, 1000 + i)).collect();
    let (p, log) = run(p, refs, vec![dists]);
    // said once, however many searches end the same way
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync_uncertain"]);
    assert!(matches!(
        sync_kind(&log, 1),
        EventKind::SyncUncertain {
            reason: "low_score",
            psnr: Some(_),
            ..
        }
    ));
    // still measured (pending), nothing lost
    assert_eq!(log.pairs.len() as u64, n);
    assert_eq!(p.counts()[0].unpaired_reference, 0);
}

#[test]
fn a_loop_inside_the_range_pairs_the_same_pictures_and_is_accepted() {
    // content repeating every 3 frames: offsets 0 and ±3 cannot be told
    // apart, but they pair the same reference pictures
    let p = searching(Some(sync::Confidence::default()));
    let n = 60;
    let refs = (0..n).map(|i| frame(i, i % 3)).collect();
    let dists = (0..n).map(|i| frame(i, (i + 1) % 3)).collect();
    let (_, log) = run(p, refs, vec![dists]);
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync"]);
    match sync_kind(&log, 1) {
        EventKind::Sync {
            offset,
            psnr: Some(p),
            ..
        } => {
            assert_eq!(offset.rem_euclid(3), 1, "{offset}");
            assert_eq!(*p, 100.0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restored_input_is_searched_again_and_its_new_offset_found() {
    let mut s = settings(1);
    s.sync_range = 4;
    s.confidence = Some(sync::Confidence::default());
    let mut p = Pairing::new(s, "r", &["d".to_string()]);
    let mut log = Log::default();
    let mut r = 0u64;
    let mut d = 0u64;
    // both in step, then the distorted input is lost and comes back two
    // frames behind the reference's pictures
    let step = |p: &mut Pairing, log: &mut Log, r: &mut u64, d: &mut u64, shift: u64| {
        p.receive(Who::Reference, DecodeEvent::Frame(frame(*r, *r)), log)
            .unwrap();
        p.receive(
            Who::Distorted(0),
            DecodeEvent::Frame(frame(*d, *r - shift)),
            log,
        )
        .unwrap();
        *r += 1;
        *d += 1;
        p.advance(log).unwrap();
    };
    for _ in 0..10 {
        step(&mut p, &mut log, &mut r, &mut d, 0);
    }
    assert!(log.events.is_empty());
    p.receive(
        Who::Distorted(0),
        DecodeEvent::Restored { attempts: 1 },
        &mut log,
    )
    .unwrap();
    for _ in 0..60 {
        step(&mut p, &mut log, &mut r, &mut d, 2);
    }
    assert_eq!(
        log.kinds(),
        vec!["stream_restored", "sync_uncertain", "sync"]
    );
    assert!(matches!(
        sync_kind(&log, 2),
        EventKind::Sync {
            offset: -2,
            keeps_pending: false,
            ..
        }
    ));
    // the pairs after the sync pair the same pictures
    let after = log.at[2];
    for (_, _, r, d) in &log.pairs[after..] {
        assert_eq!(
            *r + 2,
            *d,
            "distorted frame d shows reference picture d - 2"
        );
    }
}

#[test]
fn a_live_sync_is_verified_and_moved_when_the_offset_changes() {
    let mut s = settings(1);
    s.sync_at_start = true;
    s.sync_range = 4;
    s.confidence = Some(sync::Confidence::default());
    s.reverify = true;
    let p = Pairing::new(s, "r", &["d".to_string()]);
    // in step for 100 frames, then the distorted input skips 3 pictures
    let n = 200;
    let refs = (0..n).map(|i| frame(i, i)).collect();
    let dists = (0..n - 3)
        .map(|i| frame(i, if i < 100 { i } else { i + 3 }))
        .collect();
    let (p, log) = run(p, refs, vec![dists]);
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync", "sync"]);
    assert!(matches!(
        sync_kind(&log, 2),
        EventKind::Sync { offset: 3, .. }
    ));
    assert!(log.events[2].0.message.contains("re-synchronised"));
    assert_eq!(p.counts()[0].offset, 3);
}

/// Live pairing by pts, its timelines learnt by content.
fn live_pts() -> Pairing {
    let mut s = settings(1);
    s.align = Align::Pts;
    s.sync_at_start = true;
    s.learn_pts = true;
    s.sync_range = 4;
    s.confidence = Some(sync::Confidence::default());
    Pairing::new(s, "r", &["d".to_string()])
}

/// Frame `index` showing picture `seed`, on a timeline starting at
/// `origin` seconds.
fn timed(index: u64, seed: u64, origin: f64) -> Frame {
    let mut f = frame(index, seed);
    f.abs_pts = Some(origin + index as f64 / 25.0);
    f
}

#[test]
fn live_pts_pairing_learns_the_senders_timelines_and_relearns_after_a_restart() {
    let mut p = live_pts();
    let mut log = Log::default();
    // two senders: the reference's timeline starts at 1.4 s, the
    // distorted one's at 75.0 s, and it shows the reference's pictures
    // one frame later
    let feed = |p: &mut Pairing, log: &mut Log, k: u64, dist: Frame| {
        p.receive(Who::Reference, DecodeEvent::Frame(timed(k, k, 1.4)), log)
            .unwrap();
        p.receive(Who::Distorted(0), DecodeEvent::Frame(dist), log)
            .unwrap();
        p.advance(log).unwrap();
    };
    for k in 0..60 {
        feed(&mut p, &mut log, k, timed(k, k + 1, 75.0));
    }
    assert_eq!(log.kinds(), vec!["sync_uncertain", "sync"]);
    assert!(matches!(
        sync_kind(&log, 1),
        EventKind::Sync { offset: 1, .. }
    ));
    let after = log.at[1];
    assert!(log.pairs.len() > after + 10);
    for (_, _, r, d) in &log.pairs[after..] {
        assert_eq!(*r, d + 1, "paired by the learnt timelines");
    }
    assert_eq!(
        p.counts()[0].dropped,
        0,
        "no frame dropped for its timestamp"
    );
    // the distorted sender restarts: its timeline begins again at 1.4 s
    // and it shows the reference's pictures three frames later
    p.receive(
        Who::Distorted(0),
        DecodeEvent::Restored { attempts: 1 },
        &mut log,
    )
    .unwrap();
    let restart = log.pairs.len();
    for k in 60..140 {
        feed(&mut p, &mut log, k, timed(k - 60, k + 3, 1.4));
    }
    let kinds = log.kinds();
    assert_eq!(
        kinds[2..],
        ["stream_restored", "sync_uncertain", "sync"],
        "{kinds:?}"
    );
    assert!(matches!(sync_kind(&log, 4), EventKind::Sync { .. }));
    let found = log.at[4];
    assert!(found > restart);
    let tail = &log.pairs[found..];
    assert!(tail.len() > 10, "pairing resumed: {}", tail.len());
    for (_, _, r, d) in tail {
        assert_eq!(
            *r,
            d + 60 + 3,
            "distorted frame d shows reference picture d + 63"
        );
    }
    assert_eq!(p.counts()[0].dropped, 0);
}

#[test]
fn live_pts_pairing_learns_again_when_a_timeline_jumps_without_a_restart() {
    let mut p = live_pts();
    let mut log = Log::default();
    for k in 0..140u64 {
        p.receive(
            Who::Reference,
            DecodeEvent::Frame(timed(k, k, 1.4)),
            &mut log,
        )
        .unwrap();
        // the distorted timeline jumps ahead by 500 s at frame 60 (a
        // splice, a wrap the other way), the pictures still in step
        let origin = if k < 60 { 30.0 } else { 530.0 };
        p.receive(
            Who::Distorted(0),
            DecodeEvent::Frame(timed(k, k, origin)),
            &mut log,
        )
        .unwrap();
        p.advance(&mut log).unwrap();
    }
    assert_eq!(
        log.kinds(),
        vec!["sync_uncertain", "sync", "sync_uncertain", "sync"]
    );
    // paired throughout, the same pictures, nothing dropped for its time
    assert!(log.pairs.iter().all(|(_, _, r, d)| r == d));
    assert!(log.pairs.len() >= 138, "{}", log.pairs.len());
    assert_eq!(p.counts()[0].dropped, 0);
}
