//! Quality gates on pooled values: `STAT(KEY) < VALUE` or `STAT(KEY) > VALUE`
//! (also `<=`, `>=`), STAT one of mean, min, max, median, p5, p95,
//! harmonic_mean. A gate states the failing condition: `--fail-if
//! 'mean(psnr_avg)<38'` fails an input whose mean psnr_avg is below 38.

use crate::output::records::GateResult;
use crate::stats::Pooled;

/// Pooled statistics a gate can name.
pub const STATS: [&str; 7] = ["mean", "min", "max", "median", "p5", "p95", "harmonic_mean"];

/// A parsed gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// As written.
    pub text: String,
    /// Statistic name.
    pub stat: String,
    /// Record key.
    pub key: String,
    /// `<`, `<=`, `>` or `>=`.
    pub op: String,
    /// Threshold.
    pub threshold: f64,
}

/// Parses a gate; the error says what is wrong.
pub fn parse(text: &str) -> Result<Gate, String> {
    let t = text.trim();
    let open = t
        .find('(')
        .ok_or("expected STAT(KEY) OP VALUE, like mean(psnr_avg)<38")?;
    let close = t.find(')').ok_or("missing ')'")?;
    if close < open {
        return Err("expected STAT(KEY) OP VALUE".to_string());
    }
    let stat = t[..open].trim();
    if !STATS.contains(&stat) {
        return Err(format!(
            "unknown statistic '{stat}'; use one of {}",
            STATS.join(", ")
        ));
    }
    let key = t[open + 1..close].trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("'{key}' is not a record key"));
    }
    let rest = t[close + 1..].trim();
    let op = ["<=", ">=", "<", ">"]
        .into_iter()
        .find(|o| rest.starts_with(o))
        .ok_or("expected <, <=, > or >= after the statistic")?;
    let value = rest[op.len()..].trim();
    let threshold: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("'{value}' is not a number"))?;
    Ok(Gate {
        text: t.to_string(),
        stat: stat.to_string(),
        key: key.to_string(),
        op: op.to_string(),
        threshold,
    })
}

impl Gate {
    /// Evaluates the gate on a key's pooled figures.
    pub fn check(&self, pooled: Option<&Pooled>) -> GateResult {
        let value = pooled.and_then(|p| match self.stat.as_str() {
            "mean" => Some(p.mean),
            "min" => Some(p.min),
            "max" => Some(p.max),
            "median" => Some(p.median),
            "p5" => Some(p.p5),
            "p95" => Some(p.p95),
            "harmonic_mean" => p.harmonic_mean,
            _ => None,
        });
        let failed = match value {
            None => true,
            Some(v) => match self.op.as_str() {
                "<" => v < self.threshold,
                "<=" => v <= self.threshold,
                ">" => v > self.threshold,
                _ => v >= self.threshold,
            },
        };
        GateResult {
            gate: self.text.clone(),
            value,
            failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let g = parse("mean(psnr_avg)<38").unwrap();
        assert_eq!(
            (g.stat.as_str(), g.key.as_str(), g.op.as_str(), g.threshold),
            ("mean", "psnr_avg", "<", 38.0)
        );
        let p = Pooled {
            count: 3,
            mean: 37.0,
            min: 30.0,
            max: 40.0,
            stddev: 1.0,
            harmonic_mean: None,
            median: 37.0,
            p5: 31.0,
            p95: 39.0,
            approximate: false,
        };
        assert!(g.check(Some(&p)).failed);
        assert!(!parse("p5(ssim_y) <= 30").unwrap().check(Some(&p)).failed);
        assert!(
            parse("harmonic_mean(x)>1").unwrap().check(Some(&p)).failed,
            "missing value fails"
        );
        assert!(
            parse(" max( psnr_y ) >= 40 ")
                .unwrap()
                .check(Some(&p))
                .failed
        );
    }

    #[test]
    fn malformed_gates_say_why() {
        for (bad, why) in [
            ("psnr_avg<38", "expected STAT(KEY)"),
            ("avg(psnr_avg)<38", "unknown statistic"),
            ("mean(psnr avg)<38", "not a record key"),
            ("mean(psnr_avg)=38", "expected <"),
            ("mean(psnr_avg)<abc", "not a number"),
            ("mean)psnr(<3", "expected STAT(KEY)"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
