//! Alert rules on frame-record keys: `KEY < VALUE [for DURATION]`,
//! `KEY > VALUE`, or the inclusive `KEY <= VALUE` and `KEY >= VALUE` (as
//! in quality gates), DURATION being frames (`60f`) or seconds
//! (`2s`, `1.5s`); without `for`, one frame. A rule fires an `alert` event
//! when its condition has held for the duration, and a `recovered` event
//! when it stops holding after that.

/// Comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// value < threshold
    Below,
    /// value > threshold
    Above,
    /// value <= threshold
    AtMost,
    /// value >= threshold
    AtLeast,
}

/// How long a condition must hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Duration {
    /// Consecutive frames.
    Frames(u64),
    /// Seconds of presentation time.
    Seconds(f64),
}

/// A parsed alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule as written.
    pub text: String,
    /// Frame-record key it watches.
    pub key: String,
    /// Comparison.
    pub op: Op,
    /// Threshold.
    pub threshold: f64,
    /// How long the condition must hold.
    pub duration: Duration,
}

/// Parses a rule; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<Rule, String> {
    let t = text.trim();
    let (cond, dur) = match t.find(" for ") {
        Some(i) => (t[..i].trim(), Some(t[i + 5..].trim())),
        None => (t, None),
    };
    let (pos, op) = match (cond.find('<'), cond.find('>')) {
        (Some(i), None) => (i, Op::Below),
        (None, Some(i)) => (i, Op::Above),
        (Some(_), Some(_)) => return Err("use one of < or >, not both".to_string()),
        (None, None) => return Err("expected KEY<VALUE or KEY>VALUE".to_string()),
    };
    let key = cond[..pos].trim();
    let value = cond[pos + 1..].trim();
    let (op, value) = match (op, value.strip_prefix('=')) {
        (Op::Below, Some(v)) => (Op::AtMost, v.trim()),
        (_, Some(v)) => (Op::AtLeast, v.trim()),
        (op, None) => (op, value),
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("'{key}' is not a record key"));
    }
    let threshold: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("'{value}' is not a number"))?;
    let duration = match dur {
        None => Duration::Frames(1),
        Some(d) => parse_duration(d)?,
    };
    Ok(Rule {
        text: t.to_string(),
        key: key.to_string(),
        op,
        threshold,
        duration,
    })
}

fn parse_duration(d: &str) -> Result<Duration, String> {
    let bad = || format!("'{d}' is not a duration (like 60f or 2s)");
    if let Some(n) = d.strip_suffix('f') {
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 {
            return Err("a duration must be at least 1 frame".to_string());
        }
        Ok(Duration::Frames(n))
    } else if let Some(s) = d.strip_suffix('s') {
        let s: f64 = s.trim().parse().map_err(|_| bad())?;
        if !(s.is_finite() && s > 0.0 && s <= 86_400.0) {
            return Err(format!("'{d}' must be above 0 and at most a day"));
        }
        Ok(Duration::Seconds(s))
    } else {
        Err(bad())
    }
}

/// What a rule's state change means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The rule started holding for its duration: an `alert`.
    Fired,
    /// An active alert stopped holding: `recovered`.
    Recovered,
}

/// The state of one rule on one input.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    since: Option<(u64, f64)>,
    active: bool,
    /// Whether the rule has fired at least once.
    pub fired: bool,
}

impl Tracker {
    /// Feeds one frame's value; `frame_step` is one frame's duration in
    /// seconds (a condition that held on frames a..=b lasted
    /// `pts_b − pts_a + frame_step` seconds).
    pub fn observe(
        &mut self,
        rule: &Rule,
        value: f64,
        frame: u64,
        pts: f64,
        frame_step: f64,
    ) -> Option<Change> {
        let holds = value.is_finite()
            && match rule.op {
                Op::Below => value < rule.threshold,
                Op::Above => value > rule.threshold,
                Op::AtMost => value <= rule.threshold,
                Op::AtLeast => value >= rule.threshold,
            };
        if !holds {
            self.since = None;
            if self.active {
                self.active = false;
                return Some(Change::Recovered);
            }
            return None;
        }
        let (f0, t0) = *self.since.get_or_insert((frame, pts));
        if self.active {
            return None;
        }
        let long_enough = match rule.duration {
            Duration::Frames(n) => frame + 1 - f0 >= n,
            Duration::Seconds(s) => pts - t0 + frame_step >= s - 1e-9,
        };
        if long_enough {
            self.active = true;
            self.fired = true;
            return Some(Change::Fired);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let r = parse("ssim_y<0.90 for 2s").unwrap();
        assert_eq!(
            (r.key.as_str(), r.op, r.threshold),
            ("ssim_y", Op::Below, 0.9)
        );
        assert_eq!(r.duration, Duration::Seconds(2.0));
        let r = parse(" psnr_avg > 30 for 60f ").unwrap();
        assert_eq!((r.op, r.duration), (Op::Above, Duration::Frames(60)));
        assert_eq!(parse("mse_y>5").unwrap().duration, Duration::Frames(1));
    }

    #[test]
    fn malformed_rules_say_why() {
        for (bad, why) in [
            ("ssim_y 0.9", "expected"),
            ("ssim_y<abc", "not a number"),
            ("<3", "not a record key"),
            ("ssim_y<0.9 for 2", "not a duration"),
            ("ssim_y<0.9 for 0f", "at least 1 frame"),
            ("a<1>2", "not both"),
            ("ssim_y<inf", "not a number"),
            ("ssim_y<0.9 for -1s", "above 0"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn fires_after_the_duration_and_recovers() {
        let r = parse("psnr_y<30 for 3f").unwrap();
        let mut t = Tracker::default();
        let vals = [31.0, 29.0, 29.0, 29.0, 29.0, 35.0, 29.0];
        let got: Vec<Option<Change>> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| t.observe(&r, *v, i as u64, i as f64 * 0.04, 0.04))
            .collect();
        assert_eq!(
            got,
            vec![
                None,
                None,
                None,
                Some(Change::Fired),
                None,
                Some(Change::Recovered),
                None
            ]
        );
        assert!(t.fired);
        let r = parse("psnr_y<30 for 0.12s").unwrap();
        let mut t = Tracker::default();
        assert_eq!(t.observe(&r, 1.0, 0, 0.0, 0.04), None);
        assert_eq!(t.observe(&r, 1.0, 1, 0.04, 0.04), None);
        assert_eq!(t.observe(&r, 1.0, 2, 0.08, 0.04), Some(Change::Fired));
    }

    #[test]
    fn inclusive_comparisons_hold_at_the_threshold() {
        for (text, op, at, below, above) in [
            ("psnr_y>=60", Op::AtLeast, true, false, true),
            ("psnr_y <= 60", Op::AtMost, true, true, false),
            ("psnr_y>60", Op::Above, false, false, true),
            ("psnr_y<60", Op::Below, false, true, false),
        ] {
            let r = parse(text).unwrap();
            assert_eq!((r.op, r.threshold), (op, 60.0), "{text}");
            for (v, want) in [(60.0, at), (59.0, below), (61.0, above)] {
                let mut t = Tracker::default();
                let fired = t.observe(&r, v, 0, 0.0, 0.04).is_some();
                assert_eq!(fired, want, "{text} at {v}");
            }
        }
    }
}
