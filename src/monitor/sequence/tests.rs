//! The temporal hook end to end without threads or FFmpeg: a registered
//! metric that needs the next frame, through `MetricSet`, the sequencer
//! and the frame pools.

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::frame::signature::Signature;
use crate::frame::{Frame, FramePool, Samples};
use crate::metrics::{
    Layout, Metric, MetricOptions, MetricSet, PairContext, Registration, TemporalState,
    resolve_names,
};
use crate::monitor::messages::PairFrames;
use crate::output::records::{Event, EventKind};

/// Test metric: the forward difference of the distorted luma's mean,
/// `mean(d[k+1]) − mean(d[k])`, known once pair k+1 arrives; the last
/// pair gets 0 at the flush. Fails when a frame's first sample is 255.
struct Forward;

struct ForwardState {
    last: Option<(u64, f64)>,
}

fn mean(f: &Frame) -> f64 {
    match &f.planes[0].samples {
        Samples::U8(v) => v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64,
        Samples::U16(v) => v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64,
    }
}

impl Metric for Forward {
    fn keys(&self, _: &Layout) -> Vec<String> {
        vec!["forward".to_string()]
    }
    fn compute(&self, _: &PairContext<'_>, _: &mut [f64]) {
        panic!("a temporal metric's compute is not called");
    }
    fn temporal(&self, _: &Layout) -> Option<Result<Box<dyn TemporalState>, Error>> {
        Some(Ok(Box::new(ForwardState { last: None })))
    }
}

impl TemporalState for ForwardState {
    fn push(&mut self, pair: u64, _: &Frame, d: &Frame) -> Result<Ready, Error> {
        if matches!(&d.planes[0].samples, Samples::U8(v) if v[0] == 255) {
            return Err(Error::Internal(format!("forward: pair {pair} refused")));
        }
        let m = mean(d);
        let out = self.last.map(|(k, prev)| vec![(k, vec![m - prev])]);
        self.last = Some((pair, m));
        Ok(out.unwrap_or_default())
    }
    fn flush(&mut self) -> Result<Ready, Error> {
        Ok(self
            .last
            .take()
            .map(|(k, _)| (k, vec![0.0]))
            .into_iter()
            .collect())
    }
    fn restart(&mut self) -> Result<Ready, Error> {
        self.flush()
    }
}

static FORWARD: Registration = Registration {
    name: "forward",
    about: "test: forward difference of the distorted luma mean",
    build: |_| Box::new(Forward),
};

fn layout() -> Layout {
    Layout {
        plane_names: vec!["y"],
        plane_dims: vec![(16, 16)],
        bit_depth: 8,
    }
}

fn frame(value: u8) -> Frame {
    Frame::from_u8(vec![(16, 16, vec![value; 256])])
}

fn set() -> MetricSet {
    let mut picked = resolve_names(&["psnr".to_string()]).unwrap();
    picked.push(&FORWARD);
    MetricSet::new(&picked, MetricOptions::default(), &layout()).unwrap()
}

/// Measures a pair as a worker does, with its frames for the monitor.
fn row(
    set: &MetricSet,
    seq: u64,
    input: usize,
    pair: u64,
    r: u8,
    d: u8,
    pools: &[FramePool; 2],
) -> AggMsg {
    let (rf, df) = (frame(r), frame(d));
    let row = set.compute(&rf, &df).unwrap();
    AggMsg::Row(Box::new(Measured {
        seq,
        input,
        frame: pair,
        ref_frame: pair,
        dist_frame: pair,
        pts: pair as f64,
        row,
        started: Instant::now(),
        finished: Instant::now(),
        decoded_at: None,
        arrived: None,
        signature: Signature::of(&rf, &df),
        damaged: false,
        frames: Some(PairFrames {
            reference: Arc::new(rf),
            distorted: df,
            ref_pool: pools[0].clone(),
            dist_pool: pools[1].clone(),
        }),
    }))
}

fn event(seq: u64) -> AggMsg {
    AggMsg::Event {
        seq,
        event: Event {
            kind: EventKind::DecodeError { after_frames: seq },
            input: Some(0),
            source: None,
            message: String::new(),
        },
        decode_error_for: Vec::new(),
    }
}

/// The loss of distorted input `input`, or of the reference (`None`).
fn lost(seq: u64, input: Option<usize>) -> AggMsg {
    AggMsg::Event {
        seq,
        event: Event {
            kind: EventKind::StreamLost { after_frames: seq },
            input,
            source: None,
            message: String::new(),
        },
        decode_error_for: Vec::new(),
    }
}

fn finish(seq: u64) -> AggMsg {
    AggMsg::Finish {
        seq,
        counts: Vec::new(),
        reference_frames: 0,
        reference_decode: std::time::Duration::ZERO,
        interrupted: false,
    }
}

/// A row as (input, pair, forward value).
type Seen = (usize, u64, f64);

/// (seq, input, pair, forward value) of each row, or (seq) of others.
fn seen(out: &[AggMsg], key: usize) -> Vec<(u64, Option<Seen>)> {
    out.iter()
        .map(|m| match m {
            AggMsg::Row(r) => (r.seq, Some((r.input, r.frame, r.row.values[key]))),
            other => (other.seq(), None),
        })
        .collect()
}

#[test]
fn the_set_declares_the_keys_and_leaves_them_to_the_monitor() {
    let set = set();
    assert!(set.has_temporal());
    let keys = set.keys();
    let k = keys.iter().position(|k| k == "forward").unwrap();
    assert_eq!(k, keys.len() - 1);
    let row = set.compute(&frame(10), &frame(12)).unwrap();
    assert!(row.values[k].is_nan());
    // the per-pair metric is computed as ever
    assert!(row.values[0].is_finite());
    let slots = set.temporal_states().unwrap();
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].keys, k..k + 1);
    // a set without a temporal metric
    let plain = MetricSet::new(
        &resolve_names(&["psnr,ssim".to_string()]).unwrap(),
        MetricOptions::default(),
        &layout(),
    )
    .unwrap();
    assert!(!plain.has_temporal());
    assert!(plain.temporal_states().unwrap().is_empty());
}

#[test]
fn rows_wait_for_the_next_frame_and_everything_stays_in_order() {
    let set = set();
    let k = set.keys().len() - 1;
    let pools = [FramePool::new(4), FramePool::new(4)];
    let mut seq = Sequencer::new(vec![set.temporal_states().unwrap()]);
    // pair 0 waits for pair 1; the event behind it waits too
    assert!(
        seq.admit(row(&set, 0, 0, 0, 50, 10, &pools))
            .unwrap()
            .is_empty()
    );
    assert!(seq.admit(event(1)).unwrap().is_empty());
    let out = seq.admit(row(&set, 2, 0, 1, 50, 14, &pools)).unwrap();
    assert_eq!(seen(&out, k), vec![(0, Some((0, 0, 4.0))), (1, None)]);
    let out = seq.admit(row(&set, 3, 0, 2, 50, 11, &pools)).unwrap();
    assert_eq!(seen(&out, k), vec![(2, Some((0, 1, -3.0)))]);
    // the end flushes the last pair before the final message
    let out = seq.admit(finish(4)).unwrap();
    assert_eq!(seen(&out, k), vec![(3, Some((0, 2, 0.0))), (4, None)]);
    // every buffer went back to its pool
    for pool in &pools {
        assert_eq!(pool.take().planes.len(), 1);
    }
}

#[test]
fn inputs_are_fed_separately_but_released_in_sequence_order() {
    let set = set();
    let k = set.keys().len() - 1;
    let pools = [FramePool::new(8), FramePool::new(8)];
    let states = vec![
        set.temporal_states().unwrap(),
        set.temporal_states().unwrap(),
    ];
    let mut seq = Sequencer::new(states);
    assert!(
        seq.admit(row(&set, 0, 0, 0, 50, 10, &pools))
            .unwrap()
            .is_empty()
    );
    assert!(
        seq.admit(row(&set, 1, 1, 0, 50, 20, &pools))
            .unwrap()
            .is_empty()
    );
    // input 1's next pair completes its pair 0, which still waits behind input 0's
    assert!(
        seq.admit(row(&set, 2, 1, 1, 50, 26, &pools))
            .unwrap()
            .is_empty()
    );
    let out = seq.admit(row(&set, 3, 0, 1, 50, 12, &pools)).unwrap();
    assert_eq!(
        seen(&out, k),
        vec![(0, Some((0, 0, 2.0))), (1, Some((1, 0, 6.0)))]
    );
    let out = seq.admit(finish(4)).unwrap();
    assert_eq!(
        seen(&out, k),
        vec![(2, Some((1, 1, 0.0))), (3, Some((0, 1, 0.0))), (4, None)]
    );
}

#[test]
fn a_failure_writes_what_waited_and_a_metric_error_stops_the_run() {
    let set = set();
    let k = set.keys().len() - 1;
    let pools = [FramePool::new(4), FramePool::new(4)];
    let mut seq = Sequencer::new(vec![set.temporal_states().unwrap()]);
    assert!(
        seq.admit(row(&set, 0, 0, 0, 50, 10, &pools))
            .unwrap()
            .is_empty()
    );
    let failed = AggMsg::Failed {
        seq: 1,
        error: Error::Internal("worker".to_string()),
    };
    let out = seq.admit(failed).unwrap();
    assert_eq!(out.len(), 2);
    assert!(matches!(&out[0], AggMsg::Row(r) if r.row.values[k].is_nan()));
    assert!(matches!(&out[1], AggMsg::Failed { .. }));
    // the metric refuses a pair: its error is the run's, frames go back
    let pools = [FramePool::new(4), FramePool::new(4)];
    let mut seq = Sequencer::new(vec![set.temporal_states().unwrap()]);
    let e = seq
        .admit(row(&set, 0, 0, 0, 50, 255, &pools))
        .err()
        .unwrap();
    assert!(e.to_string().contains("pair 0 refused"), "{e}");
    assert_eq!(pools[1].take().planes.len(), 1);
    // what waited can still be written
    assert_eq!(seq.drain().len(), 1);
}

#[test]
fn without_temporal_metrics_every_message_passes_at_once() {
    let set = MetricSet::new(
        &resolve_names(&["psnr".to_string()]).unwrap(),
        MetricOptions::default(),
        &layout(),
    )
    .unwrap();
    let pools = [FramePool::new(4), FramePool::new(4)];
    let mut seq = Sequencer::new(vec![Vec::new()]);
    assert_eq!(
        seq.admit(row(&set, 0, 0, 0, 50, 10, &pools)).unwrap().len(),
        1
    );
    assert_eq!(seq.admit(event(1)).unwrap().len(), 1);
    assert_eq!(seq.admit(finish(2)).unwrap().len(), 1);
    assert_eq!(pools[0].take().planes.len(), 1);
}

#[test]
fn a_loss_gives_the_held_pairs_their_values_and_starts_afresh() {
    let set = set();
    let k = set.keys().len() - 1;
    let pools = [FramePool::new(8), FramePool::new(8)];
    let mut seq = Sequencer::new(vec![
        set.temporal_states().unwrap(),
        set.temporal_states().unwrap(),
    ]);
    assert!(
        seq.admit(row(&set, 0, 0, 0, 50, 10, &pools))
            .unwrap()
            .is_empty()
    );
    assert!(
        seq.admit(row(&set, 1, 1, 0, 50, 20, &pools))
            .unwrap()
            .is_empty()
    );
    // input 0 is lost: its pair comes out at once, as at the end; input
    // 1's still waits for its next frame, and so does the loss behind it
    let out = seq.admit(lost(2, Some(0))).unwrap();
    assert_eq!(seen(&out, k), vec![(0, Some((0, 0, 0.0)))]);
    // after the loss, input 0's first pair is not differenced with the
    // last before it
    assert!(
        seq.admit(row(&set, 3, 0, 1, 50, 90, &pools))
            .unwrap()
            .is_empty()
    );
    // the reference is lost: nothing breaks by itself (its decoded frames
    // may still pair with later distorted ones), so the pairs still wait
    assert!(seq.admit(lost(4, None)).unwrap().is_empty());
    // the end gives every held pair its value, in order
    let out = seq.admit(finish(5)).unwrap();
    assert_eq!(
        seen(&out, k),
        vec![
            (1, Some((1, 0, 0.0))),
            (2, None),
            (3, Some((0, 1, 0.0))),
            (4, None),
            (5, None)
        ]
    );
}
