//! What the monitor keeps of one distorted input over the run, and the
//! summary record it becomes at the end (pooled values, gates, counts).

use std::collections::VecDeque;

use crate::metrics::measures::psnr::RunPsnr;
use crate::metrics::{Layout, Row};
use crate::monitor::alert::{Rule, Tracker};
use crate::monitor::detect::Detector;
use crate::monitor::gate::Gate;
use crate::monitor::messages::PairCounts;
use crate::output::records::{GateResult, Latency, Summary, SyncResult};
use crate::stats::{Pooled, PooledKey, Rolling};

/// One distorted input's running tally.
pub struct InputTally {
    /// The input as given.
    pub path: String,
    /// How its frames are converted, if they are.
    pub conversion: Option<String>,
    /// The sync result in force.
    pub sync: Option<SyncResult>,
    /// Pairs measured.
    pub pairs: u64,
    pooled: Vec<PooledKey>,
    run_psnr: RunPsnr,
    /// The rolling window.
    pub rolling: Rolling,
    /// Pairs since the last window record.
    pub since_window: usize,
    /// Decode errors of the reference and of this input.
    pub decode_errors: u64,
    /// Times it (or the reference) came back after a loss.
    pub reconnects: u64,
    /// Frozen and black detection.
    pub detector: Detector,
    /// One tracker per alert rule.
    pub alerts: Vec<Tracker>,
    latency: PooledKey,
    lag: PooledKey,
    align: PooledKey,
    /// Its sync is pending: rows are written but held out of the
    /// statistics.
    pub pending: bool,
    /// The rows measured while pending, kept until the sync is found
    /// (at most [`HELD_ROWS`]).
    held: VecDeque<Held>,
    /// Rows measured while the sync was pending that never entered the
    /// statistics.
    pub sync_pending: u64,
    /// Rows of pictures decoded from damaged data, in no statistic.
    pub damaged_frames: u64,
    /// The most pairs per pair measured an overload asked for.
    pub max_every: u64,
}

/// Rows held while a sync is pending, at most (older ones are left out).
pub const HELD_ROWS: usize = 20_000;

/// A row held while its input's sync is pending.
struct Held {
    row: Row,
    pts: f64,
    times: PairTimes,
}

/// How long a pair took to reach its record, in milliseconds (each when
/// known): from both frames decoded; live inputs, from the later frame's
/// arrival on its schedule (the lag) and the time between the two
/// frames' arrivals (the alignment delay).
#[derive(Debug, Clone, Copy, Default)]
pub struct PairTimes {
    /// From both frames decoded to the record.
    pub latency_ms: Option<f64>,
    /// From the later frame's arrival to the record.
    pub lag_ms: Option<f64>,
    /// Between the two frames' arrivals.
    pub align_ms: Option<f64>,
}

impl InputTally {
    /// An empty tally.
    pub fn new(
        path: String,
        conversion: Option<String>,
        sync: Option<SyncResult>,
        keys: usize,
        rolling: Rolling,
        rules: usize,
        layout: &Layout,
    ) -> Self {
        InputTally {
            path,
            conversion,
            sync,
            pairs: 0,
            pooled: (0..keys).map(|_| PooledKey::new()).collect(),
            run_psnr: RunPsnr::new(layout),
            rolling,
            since_window: 0,
            decode_errors: 0,
            reconnects: 0,
            detector: Detector::default(),
            alerts: (0..rules).map(|_| Tracker::default()).collect(),
            latency: PooledKey::new(),
            lag: PooledKey::new(),
            align: PooledKey::new(),
            pending: false,
            held: VecDeque::new(),
            sync_pending: 0,
            damaged_frames: 0,
            max_every: 1,
        }
    }

    /// Holds a row measured while the sync is pending.
    pub fn hold(&mut self, row: &Row, pts: f64, times: PairTimes) {
        if self.held.len() >= HELD_ROWS {
            self.held.pop_front();
            self.sync_pending += 1;
        }
        self.held.push_back(Held {
            row: row.clone(),
            pts,
            times,
        });
    }

    /// The sync is found: the held rows enter the statistics (`keep`:
    /// they were paired at the offset found) or are left out.
    pub fn settle_pending(&mut self, keep: bool, shares: &[f64]) {
        self.pending = false;
        let held = std::mem::take(&mut self.held);
        if keep {
            for h in held {
                self.push(&h.row, h.pts, shares, h.times);
            }
        } else {
            self.sync_pending += held.len() as u64;
        }
    }

    /// The run ends: rows still held never found their sync.
    pub fn drop_pending(&mut self) {
        self.sync_pending += self.held.len() as u64;
        self.held.clear();
    }

    /// Adds a measured pair at `pts` (`latency_ms`: from both frames
    /// decoded to now, when known).
    pub fn push(&mut self, row: &Row, pts: f64, shares: &[f64], times: PairTimes) {
        for (key, ms) in [
            (&mut self.latency, times.latency_ms),
            (&mut self.lag, times.lag_ms),
            (&mut self.align, times.align_ms),
        ] {
            if let Some(ms) = ms {
                key.push(ms);
            }
        }
        self.pairs += 1;
        for (p, v) in self.pooled.iter_mut().zip(&row.values) {
            p.push(*v);
        }
        if let Some(mse) = &row.plane_mse {
            self.run_psnr.push(mse, shares);
        }
        self.rolling.push(pts, &row.values);
        self.since_window += 1;
    }

    /// The summary record of input `input`, with its gates evaluated.
    #[allow(clippy::too_many_arguments)]
    pub fn summary(
        &self,
        input: usize,
        keys: &[String],
        rules: &[(Rule, usize)],
        gates: &[(Gate, usize)],
        counts: &PairCounts,
        layout: &Layout,
        psnr_cap: f64,
        interrupted: bool,
    ) -> Summary {
        let fired: Vec<String> = rules
            .iter()
            .zip(&self.alerts)
            .filter(|(_, t)| t.fired)
            .map(|((r, _), _)| r.text.clone())
            .collect();
        let pooled: Vec<Option<Pooled>> = self.pooled.iter().map(|p| p.finish()).collect();
        let gate_results: Vec<GateResult> = gates
            .iter()
            .map(|(g, k)| g.check(pooled.get(*k).and_then(|p| p.as_ref())))
            .collect();
        let figures = |key: &PooledKey| match (key.quantile(0.5), key.quantile(0.99), key.finish())
        {
            (Some(median), Some(p99), Some(p)) => Some(Latency {
                median,
                p99,
                max: p.max,
            }),
            _ => None,
        };
        Summary {
            input,
            path: self.path.clone(),
            frames: self.pairs,
            metrics: keys.iter().cloned().zip(pooled).collect(),
            gates: gate_results,
            psnr_global: self.run_psnr.finish(layout, psnr_cap),
            unpaired_reference: counts.unpaired_reference,
            unpaired_distorted: counts.unpaired_distorted,
            reference_causes: counts.reference_causes,
            distorted_causes: counts.distorted_causes,
            decode_errors: self.decode_errors,
            conversion: self.conversion.clone(),
            offset: counts.offset,
            sync: self.sync,
            frozen_frames: self.detector.frozen_frames,
            black_frames: self.detector.black_frames,
            dropped_frames: counts.dropped,
            reconnects: self.reconnects,
            sync_pending: self.sync_pending,
            damaged_frames: self.damaged_frames,
            shed_pairs: counts.shed,
            max_every: self.max_every,
            alerts: fired,
            latency_ms: figures(&self.latency),
            lag_ms: figures(&self.lag),
            alignment_delay_ms: figures(&self.align),
            lag_drops: counts.lag_drops,
            interrupted,
            // the aggregator fills in the input's facts and its ladder place
            resolution: String::new(),
            codec: String::new(),
            bitrate: None,
            ladder: None,
        }
    }
}
