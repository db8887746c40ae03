//! The live trails, hunts and checks on synthetic pictures: 16x16 noise
//! frames (each seed a distinct picture), one frame every 40 ms.

use std::time::{Duration, Instant};

use super::*;
use crate::pipeline::pair::tests::frame;

const STEP: f64 = 0.04;

/// Picture `seed` at stream time `t`, arrived at `base + at` seconds.
fn glimpse(index: u64, seed: u64, t: f64, base: Instant, at: f64) -> Glimpse {
    let mut f = frame(index, seed);
    f.abs_pts = Some(t);
    f.arrived_at = Some(base + Duration::from_secs_f64(at));
    Glimpse::of(&f)
}

fn confidence() -> Confidence {
    Confidence::default()
}

/// One frame offered to a hunt: reference or distorted, its picture, its
/// stream time and its arrival (seconds).
type Offer = (bool, u64, f64, f64);

/// Offers the frames to a hunt in the order given; returns its first
/// `Found` and after how many frames.
fn hunt_in_order(frames: &[Offer], max: usize) -> Option<(Catch, usize)> {
    let base = Instant::now();
    let (mut rt, mut dt) = (Trail::new(60.0), Trail::new(60.0));
    let mut h = Hunt::new(STEP, max, 0, 255.0);
    let (mut nr, mut nd) = (0u64, 0u64);
    for (n, &(is_ref, seed, t, at)) in frames.iter().enumerate() {
        if is_ref {
            rt.push(glimpse(nr, seed, t, base, at));
            nr += 1;
            h.see_ref(&rt, &dt);
        } else {
            dt.push(glimpse(nd, seed, t, base, at));
            nd += 1;
            h.see_dist(&rt, &dt);
        }
        if let Some(c) = h.judge(confidence(), &rt, &dt)
            && matches!(c, Catch::Found { .. })
        {
            return Some((c, n + 1));
        }
    }
    None
}

/// Offers both inputs' frames (picture, stream time, arrival) to a hunt
/// as they arrive.
fn hunt(refs: &[(u64, f64, f64)], dists: &[(u64, f64, f64)], max: usize) -> Option<(Catch, usize)> {
    let mut all: Vec<Offer> = refs
        .iter()
        .map(|r| (true, r.0, r.1, r.2))
        .chain(dists.iter().map(|d| (false, d.0, d.1, d.2)))
        .collect();
    all.sort_by(|a, b| a.3.total_cmp(&b.3));
    hunt_in_order(&all, max)
}

#[test]
fn a_hunt_finds_the_clock_shift_of_a_delayed_stream_despite_lost_frames() {
    // the reference's clock starts at 1.4 s, the distorted one's at 90 s;
    // the distorted stream shows each picture 0.4 s (10 frames) later and
    // lost every 7th frame
    let refs: Vec<_> = (0..80u64)
        .map(|k| (k, 1.4 + k as f64 * STEP, k as f64 * STEP))
        .collect();
    let dists: Vec<_> = (0..70u64)
        .filter(|k| k % 7 != 3)
        .map(|k| (k, 90.0 + k as f64 * STEP, 0.4 + k as f64 * STEP))
        .collect();
    let (c, _) = hunt(&refs, &dists, 50).expect("found");
    match c {
        Catch::Found {
            shift, psnr, delay, ..
        } => {
            assert!((shift - 88.6).abs() < 1e-6, "{shift}");
            assert_eq!(psnr, 100.0);
            assert!((delay.unwrap() - 0.4).abs() < 1e-3, "{delay:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn aligned_streams_are_found_within_a_second() {
    let refs: Vec<_> = (0..100u64)
        .map(|k| (k, 1.4 + k as f64 * STEP, k as f64 * STEP))
        .collect();
    let dists: Vec<_> = (0..100u64)
        .map(|k| (k, 5.0 + k as f64 * STEP, k as f64 * STEP + 0.01))
        .collect();
    let (c, n) = hunt(&refs, &dists, 750).expect("found");
    assert!(matches!(c, Catch::Found { .. }), "{c:?}");
    // 20 distorted frames (0.8 s) and their references
    assert!(n <= 2 * 2 * MIN_FRAMES as usize + 2, "after {n} frames");
}

#[test]
fn a_repeating_picture_far_back_waits_for_the_reference_backlog() {
    // The reference repeats its pictures every 100 frames (4 s). Its
    // frames from 200 on waited in the receiver's ring (a sender restart
    // held pairing back) and are taken one for each distorted frame; the
    // distorted stream, back at frame 275, shows what the reference showed
    // at the same time. The copy 100 frames back, already taken, matches
    // as well, 4 s late: it must not be taken before the reference frames
    // of a smaller delay are in.
    let seed = |k: u64| k % 100;
    let r = |k: u64| (true, seed(k), 1.4 + k as f64 * STEP, k as f64 * STEP);
    let d = |k: u64| {
        (
            false,
            seed(k),
            50.0 + k as f64 * STEP,
            k as f64 * STEP + 0.005,
        )
    };
    let mut order: Vec<Offer> = (0..200).map(r).collect();
    for j in 0..300u64 {
        order.push(r(200 + j));
        order.push(d(275 + j));
    }
    let (c, _) = hunt_in_order(&order, 750).expect("found");
    match c {
        Catch::Found { shift, delay, .. } => {
            // the picture at the same time, not the repeat 100 frames back
            assert!((shift - (50.0 - 1.4)).abs() < 1e-6, "{shift}");
            assert!(delay.unwrap().abs() < 0.01, "{delay:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pictures_that_match_no_reference_stay_low() {
    let base = Instant::now();
    let (mut rt, mut dt) = (Trail::new(60.0), Trail::new(60.0));
    let mut h = Hunt::new(STEP, 50, 0, 255.0);
    for k in 0..60u64 {
        rt.push(glimpse(k, k, k as f64 * STEP, base, k as f64 * STEP));
        h.see_ref(&rt, &dt);
        dt.push(glimpse(k, 1000 + k, k as f64 * STEP, base, k as f64 * STEP));
        h.see_dist(&rt, &dt);
    }
    assert!(matches!(
        h.judge(confidence(), &rt, &dt),
        Some(Catch::Low { .. })
    ));
}

#[test]
fn a_trail_keeps_its_span_and_starts_again_on_a_step_back() {
    let base = Instant::now();
    let mut t = Trail::new(1.01);
    for k in 0..50u64 {
        t.push(glimpse(k, k, k as f64 * STEP, base, 0.0));
    }
    // 1 s of 40 ms frames: 26 with both ends
    assert_eq!(t.items.len(), 26);
    assert_eq!(t.at(1.52, 0.02).map(|g| g.index), Some(38));
    assert_eq!(t.at(1.53, 0.02).map(|g| g.index), Some(38));
    assert!(t.at(5.0, 0.02).is_none());
    t.push(glimpse(99, 99, 0.5, base, 0.0));
    assert_eq!(t.items.len(), 1, "a step back starts a new trail");
    assert_eq!(t.next_seq(), 51);
}

#[test]
fn a_mispair_is_seen_and_a_repeat_is_not() {
    let base = Instant::now();
    let (mut rt, mut dt) = (Trail::new(10.0), Trail::new(10.0));
    // paired two frames wrong: distorted picture k + 2 with reference k
    for k in 0..10u64 {
        rt.push(glimpse(k, k, k as f64 * STEP, base, 0.0));
        dt.push(glimpse(k, k + 2, k as f64 * STEP, base, 0.0));
    }
    // the reference's picture 9 is the distorted frame 7's
    let m = mispaired(&rt, &dt, 0.02, 255.0).expect("a mis-pair");
    assert_eq!(m.better, 100.0);
    assert!(m.own < 20.0);
    // paired right: no mis-pair
    let (mut rt, mut dt) = (Trail::new(10.0), Trail::new(10.0));
    for k in 0..10u64 {
        rt.push(glimpse(k, k, k as f64 * STEP, base, 0.0));
        dt.push(glimpse(k, k, k as f64 * STEP, base, 0.0));
    }
    assert_eq!(mispaired(&rt, &dt, 0.02, 255.0), None);
    // a frozen distorted picture (a repeat of its predecessor) is left to
    // the frozen detector, however well it matches an older reference
    let (mut rt, mut dt) = (Trail::new(10.0), Trail::new(10.0));
    for k in 0..10u64 {
        rt.push(glimpse(k, k, k as f64 * STEP, base, 0.0));
        dt.push(glimpse(k, k.min(5), k as f64 * STEP, base, 0.0));
    }
    assert_eq!(mispaired(&rt, &dt, 0.02, 255.0), None);
}

mod pairing {
    use super::super::super::tests::{Log, frame, settings};
    use super::super::super::{Pairing, Who};
    use crate::frame::Frame;
    use crate::input::DecodeEvent;
    use crate::output::records::EventKind;
    use crate::pipeline::sync;

    /// Live pairing as a run on network inputs sets it: by time, its shift
    /// hunted by content from the first frames.
    fn live() -> Pairing {
        let mut s = settings(1);
        s.sync_at_start = true;
        s.learn_pts = true;
        s.sync_range = 50;
        s.confidence = Some(sync::Confidence::default());
        Pairing::new(s, "r", &["d".to_string()])
    }

    /// Frame `index` showing picture `seed` at stream time `origin + t`.
    fn at(index: u64, seed: u64, origin: f64, t: f64) -> Frame {
        let mut f = frame(index, seed);
        f.abs_pts = Some(origin + t);
        f
    }

    fn feed(p: &mut Pairing, log: &mut Log, r: Option<Frame>, d: Option<Frame>) {
        if let Some(r) = r {
            p.receive(Who::Reference, DecodeEvent::Frame(r), log)
                .unwrap();
        }
        if let Some(d) = d {
            p.receive(Who::Distorted(0), DecodeEvent::Frame(d), log)
                .unwrap();
        }
        p.advance(log).unwrap();
    }

    #[test]
    fn lost_frames_are_drops_and_never_shift_the_pairs() {
        let mut p = live();
        let mut log = Log::default();
        let mut dist_index = 0;
        for k in 0..120u64 {
            let t = k as f64 * 0.04;
            // the distorted stream lost frames 60, 61 and 90 in transit
            let d = (!matches!(k, 60 | 61 | 90)).then(|| {
                dist_index += 1;
                at(dist_index - 1, k, 30.0, t)
            });
            feed(&mut p, &mut log, Some(at(k, k, 1.4, t)), d);
        }
        assert_eq!(log.kinds()[..2], ["sync_uncertain", "sync"]);
        let synced = log.at[1];
        let ids = |(_, _, r, _): &(usize, u64, u64, u64)| *r;
        for pair in &log.pairs[synced..] {
            // picture k is reference frame k; the distorted frame index
            // lags by the frames lost before it
            let lost = [60, 61, 90].iter().filter(|&&l| l < ids(pair)).count() as u64;
            assert_eq!(pair.3 + lost, pair.2, "{pair:?}");
        }
        assert_eq!(p.counts()[0].dropped, 3);
        assert!(
            !log.kinds()[2..].contains(&"sync_uncertain"),
            "{:?}",
            log.kinds()
        );
    }

    /// Feeds 160 frames whose distorted pictures jump by `jump` frames at
    /// frame 80, their timestamps running on; returns the log and the
    /// pairing.
    fn jump_at_80(jump: i64) -> (Pairing, Log) {
        let mut p = live();
        let mut log = Log::default();
        for k in 0..160u64 {
            let t = k as f64 * 0.04;
            let seed = if k < 80 { k } else { (k as i64 + jump) as u64 };
            feed(
                &mut p,
                &mut log,
                Some(at(k, k, 1.4, t)),
                Some(at(k, seed, 30.0, t)),
            );
        }
        (p, log)
    }

    /// The pairs trusted after the first sync and before the mis-pair
    /// event, and the index of that event.
    fn trusted_before_mispair(log: &Log) -> (Vec<(u64, u64)>, usize) {
        let kinds = log.kinds();
        assert_eq!(kinds[..2], ["sync_uncertain", "sync"], "{kinds:?}");
        let mis = log
            .events
            .iter()
            .position(|(e, _)| {
                matches!(
                    e.kind,
                    EventKind::SyncUncertain {
                        reason: "mispaired",
                        ..
                    }
                )
            })
            .expect("the wrong pairs are seen");
        let pairs = log.pairs[log.at[1]..log.at[mis]]
            .iter()
            .map(|&(_, _, r, d)| (r, d))
            .collect();
        (pairs, mis)
    }

    #[test]
    fn a_distorted_stream_that_jumps_back_is_caught_at_its_first_wrong_pair() {
        let (p, log) = jump_at_80(-5);
        let (trusted, mis) = trusted_before_mispair(&log);
        assert!(trusted.iter().all(|&(r, _)| r < 80), "{trusted:?}");
        let resync = mis
            + log.events[mis..]
                .iter()
                .position(|(e, _)| matches!(e.kind, EventKind::Sync { offset: -5, .. }))
                .expect("re-synchronised at -5");
        for &(_, _, r, d) in &log.pairs[log.at[resync]..] {
            assert_eq!(r + 5, d, "paired by the new shift");
        }
        assert_eq!(p.counts()[0].offset, -5);
    }

    #[test]
    fn a_distorted_stream_that_jumps_ahead_is_caught_once_the_reference_shows_its_pictures() {
        // its new pictures have not reached the reference yet: the first
        // wrong pairs are told once the reference shows them, 5 frames on
        let (p, log) = jump_at_80(5);
        let (trusted, mis) = trusted_before_mispair(&log);
        let wrong = trusted.iter().filter(|&&(r, _)| r >= 80).count();
        assert!(wrong <= 5, "{trusted:?}");
        let resync = mis
            + log.events[mis..]
                .iter()
                .position(|(e, _)| matches!(e.kind, EventKind::Sync { offset: 5, .. }))
                .expect("re-synchronised at +5");
        for &(_, _, r, d) in &log.pairs[log.at[resync]..] {
            assert_eq!(r, d + 5, "paired by the new shift");
        }
        assert_eq!(p.counts()[0].offset, 5);
    }
}
