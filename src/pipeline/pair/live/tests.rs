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

/// Feeds a hunt the reference pictures `refs` and the distorted pictures
/// `dists` (seed, stream time, arrival), interleaved by arrival; returns
/// its first verdict and after how many frames in all.
fn hunt(refs: &[(u64, f64, f64)], dists: &[(u64, f64, f64)], max: usize) -> Option<(Catch, usize)> {
    let base = Instant::now();
    let (mut rt, mut dt) = (Trail::new(60.0), Trail::new(60.0));
    let mut h = Hunt::new(STEP, max, 0, 255.0);
    let mut all: Vec<(bool, usize, f64)> = refs
        .iter()
        .enumerate()
        .map(|(i, r)| (true, i, r.2))
        .chain(dists.iter().enumerate().map(|(i, d)| (false, i, d.2)))
        .collect();
    all.sort_by(|a, b| a.2.total_cmp(&b.2));
    for (n, (is_ref, i, _)) in all.into_iter().enumerate() {
        if is_ref {
            let (seed, t, at) = refs[i];
            rt.push(glimpse(i as u64, seed, t, base, at));
            h.see_ref(&rt, &dt);
        } else {
            let (seed, t, at) = dists[i];
            dt.push(glimpse(i as u64, seed, t, base, at));
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
    // the reference repeats its pictures every 100 frames. Its frames come
    // late (read from a backlog 3 s after they arrived); the distorted
    // stream shows the pictures the reference shows now. The copy 100
    // frames back matches as well, with a 4 s delay: it must not be taken
    // before the reference frames of a smaller delay are in.
    let seed = |k: u64| k % 100;
    let refs: Vec<_> = (0..400u64)
        .map(|k| (seed(k), 1.4 + k as f64 * STEP, k as f64 * STEP))
        .collect();
    // reference frames up to 200 were read; then 75 more wait in the
    // backlog while the distorted stream goes on
    let arrival = |k: u64| -> f64 {
        if k < 200 {
            k as f64 * STEP
        } else {
            // read as the distorted frames come, 1:1, from the backlog
            8.0 + (k - 200) as f64 * STEP
        }
    };
    let refs: Vec<_> = refs
        .into_iter()
        .enumerate()
        .map(|(k, (s, t, _))| (s, t, arrival(k as u64)))
        .collect();
    let dists: Vec<_> = (275..600u64)
        .map(|k| {
            (
                seed(k),
                50.0 + k as f64 * STEP,
                8.0 + (k - 275) as f64 * STEP + 0.005,
            )
        })
        .collect();
    let (c, _) = hunt(&refs, &dists, 750).expect("found");
    match c {
        Catch::Found { shift, .. } => {
            // the picture at the same time, not the repeat 100 frames back
            assert!((shift - (50.0 - 1.4)).abs() < 1e-6, "{shift}");
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
