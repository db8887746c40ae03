//! Rolling statistics over the last N frames or the last S seconds of
//! presentation time, kept in a ring buffer so memory is fixed by the window,
//! not by the run.

use ringbuf::HeapRb;
use ringbuf::traits::Observer;

/// The length of a rolling window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowSpec {
    /// The last N frames.
    Frames(usize),
    /// The frames of the last S seconds.
    Seconds(f64),
}

impl WindowSpec {
    /// Parses `N` (frames) or `Ns` (seconds).
    pub fn parse(text: &str) -> Result<WindowSpec, String> {
        let t = text.trim();
        if let Some(s) = t.strip_suffix('s') {
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("'{t}' is not a window (N frames or Ns seconds)"))?;
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return Err(format!("'{t}': seconds must be above 0 and at most a day"));
            }
            Ok(WindowSpec::Seconds(v))
        } else {
            let n: usize = t
                .parse()
                .map_err(|_| format!("'{t}' is not a window (N frames or Ns seconds)"))?;
            if n == 0 || n > 10_000_000 {
                return Err(format!("'{t}': frames must be between 1 and 10000000"));
            }
            Ok(WindowSpec::Frames(n))
        }
    }

    /// How it is written in records: `30` or `"2s"`.
    pub fn describe(&self) -> String {
        match self {
            WindowSpec::Frames(n) => n.to_string(),
            WindowSpec::Seconds(s) => format!("{s}s"),
        }
    }
}

/// Mean, min and max of one key over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStat {
    /// Mean of the values in the window.
    pub mean: f64,
    /// Smallest value in the window.
    pub min: f64,
    /// Largest value in the window.
    pub max: f64,
}

/// The rows of the window, and statistics over them.
pub struct Rolling {
    rows: HeapRb<(f64, Box<[f64]>)>,
    spare: Option<Box<[f64]>>,
    keys: usize,
    seconds: Option<f64>,
}

impl Rolling {
    /// A window of `capacity` rows (at least 1) of `keys` values each.
    pub fn new(capacity: usize, keys: usize) -> Self {
        Rolling {
            rows: HeapRb::new(capacity.max(1)),
            spare: None,
            keys,
            seconds: None,
        }
    }

    /// A window for `spec`; a window in seconds holds at most
    /// `seconds × fps × 1.5 + 2` rows (fps from the reference, 120 when
    /// unknown), so a stream faster than announced cannot grow it.
    pub fn for_spec(spec: WindowSpec, frame_rate: Option<f64>, keys: usize) -> Self {
        match spec {
            WindowSpec::Frames(n) => Rolling::new(n, keys),
            WindowSpec::Seconds(s) => {
                let fps = frame_rate
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .unwrap_or(120.0);
                let cap = (s * fps * 1.5 + 2.0).min(1_000_000.0) as usize;
                let mut r = Rolling::new(cap, keys);
                r.seconds = Some(s);
                r
            }
        }
    }

    /// Adds a row at presentation time `pts`, evicting rows that fell out
    /// of the window (and the oldest when full). Reuses evicted buffers.
    pub fn push(&mut self, pts: f64, values: &[f64]) {
        if let Some(s) = self.seconds {
            while let Some((t, _)) = self.rows.iter().next() {
                if *t <= pts - s + 1e-9 {
                    self.spare = self.rows.try_pop().map(|(_, b)| b);
                } else {
                    break;
                }
            }
        }
        if self.rows.is_full() {
            self.spare = self.rows.try_pop().map(|(_, b)| b);
        }
        let mut buf = self
            .spare
            .take()
            .unwrap_or_else(|| vec![0.0; self.keys].into_boxed_slice());
        let n = self.keys.min(values.len());
        buf[..n].copy_from_slice(&values[..n]);
        if let Err((_, rejected)) = self.rows.try_push((pts, buf)) {
            // cannot happen after the eviction above; keep the buffer
            self.spare = Some(rejected);
        }
    }

    /// Rows currently in the window.
    pub fn len(&self) -> usize {
        self.rows.occupied_len()
    }

    /// True before the first row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Statistics of each key over the window.
    pub fn stats(&mut self) -> Vec<WindowStat> {
        let mut out = vec![
            WindowStat {
                mean: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            };
            self.keys
        ];
        let n = self.len().max(1) as f64;
        for (_, row) in self.rows.iter() {
            for (s, v) in out.iter_mut().zip(row.iter()) {
                s.mean += v;
                s.min = s.min.min(*v);
                s.max = s.max.max(*v);
            }
        }
        for s in &mut out {
            s.mean /= n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_rows() {
        let mut r = Rolling::new(3, 2);
        for i in 0..5 {
            r.push(i as f64, &[i as f64, 10.0 * i as f64]);
        }
        assert_eq!(r.len(), 3);
        let s = r.stats();
        assert_eq!(s[0].mean, 3.0);
        assert_eq!(s[0].min, 2.0);
        assert_eq!(s[0].max, 4.0);
        assert_eq!(s[1].max, 40.0);
    }

    #[test]
    fn a_window_in_seconds_keeps_that_much_time() {
        let mut r = Rolling::for_spec(WindowSpec::Seconds(1.0), Some(10.0), 1);
        for i in 0..35 {
            r.push(i as f64 * 0.1, &[i as f64]);
        }
        // pts 2.5 ..= 3.4 are within the last second
        assert_eq!(r.len(), 10);
        assert_eq!(r.stats()[0].min, 25.0);
    }

    #[test]
    fn parses_specs() {
        assert_eq!(WindowSpec::parse("30").unwrap(), WindowSpec::Frames(30));
        assert_eq!(WindowSpec::parse("2s").unwrap(), WindowSpec::Seconds(2.0));
        assert!(WindowSpec::parse("0").is_err());
        assert!(WindowSpec::parse("xs").is_err());
        assert_eq!(WindowSpec::Seconds(2.0).describe(), "2s");
    }
}
