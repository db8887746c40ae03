//! `vqm batch`: every row of a manifest measured by a vqm run of its own
//! (a child process, so one row's crash is that row's alone), rows that
//! share a reference and their options run together so the reference is
//! decoded once for them. Each row's results are written under a temporary
//! name and renamed when complete; a row whose summary exists is skipped.
//! `vqm merge` ([`merge`]) puts the results together, and `--emit`
//! ([`emit`]) prints a job for Slurm or Kubernetes.

mod args;
pub mod emit;
pub mod manifest;
pub mod merge;
mod run;

use std::sync::atomic::AtomicBool;

use crate::cli::BatchArgs;
use crate::error::Error;
use manifest::{Manifest, Row};

/// Exit code of a batch whose rows all ran but some gate failed.
const GATE_FAILED: u8 = 3;

/// Which shard of how many, from `--shard` or the scheduler's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: u64,
    /// At least 1.
    pub count: u64,
}

impl Shard {
    /// `I/N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}': expected I/N with 0 <= I < N, e.g. 3/16");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard `--shard` names, else the one a job array's environment
    /// gives (`env` reads a variable): Slurm's `SLURM_ARRAY_TASK_ID` with
    /// `SLURM_ARRAY_TASK_COUNT` or `_MIN`/`_MAX`, Kubernetes'
    /// `JOB_COMPLETION_INDEX` with `shards` or `VQM_SHARDS`.
    pub fn resolve(
        flag: Option<&str>,
        shards: Option<u64>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Error> {
        if let Some(f) = flag {
            return Shard::parse(f)
                .map(Some)
                .map_err(|e| Error::Usage(format!("--shard {e}")));
        }
        let num = |k: &str| -> Result<Option<u64>, Error> {
            match env(k) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::Usage(format!("{k}='{v}' is not a whole number"))),
            }
        };
        let check = |s: Shard, from: &str| {
            if s.count == 0 || s.index >= s.count {
                Err(Error::Usage(format!(
                    "{from}: task {} of {} is outside the array",
                    s.index, s.count
                )))
            } else {
                Ok(Some(s))
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            if let Some(count) = num("SLURM_ARRAY_TASK_COUNT")? {
                let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                return check(
                    Shard {
                        index: id.saturating_sub(min),
                        count,
                    },
                    "SLURM_ARRAY_TASK_ID",
                );
            }
            if let (Some(min), Some(max)) =
                (num("SLURM_ARRAY_TASK_MIN")?, num("SLURM_ARRAY_TASK_MAX")?)
            {
                return check(
                    Shard {
                        index: id.saturating_sub(min),
                        count: max.saturating_sub(min) + 1,
                    },
                    "SLURM_ARRAY_TASK_ID",
                );
            }
            return Err(Error::Usage(
                "SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX: give --shard I/N"
                    .to_string(),
            ));
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = match shards {
                Some(n) => Some(n),
                None => num("VQM_SHARDS")?,
            };
            let Some(count) = count else {
                return Err(Error::Usage(
                    "JOB_COMPLETION_INDEX is set: give the number of shards with --shards N or VQM_SHARDS"
                        .to_string(),
                ));
            };
            return check(Shard { index, count }, "JOB_COMPLETION_INDEX");
        }
        Ok(None)
    }

    /// The rows of this shard: a contiguous block of the manifest (rows
    /// listed together, such as a reference's rungs, stay together).
    pub fn select<'a>(&self, rows: &'a [Row]) -> &'a [Row] {
        let m = rows.len() as u64;
        let from = (self.index * m / self.count) as usize;
        let to = ((self.index + 1) * m / self.count) as usize;
        &rows[from..to]
    }

    /// `I/N`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// The options of the plain command that make no sense per row.
fn refuse_outputs(args: &BatchArgs) -> Result<(), Error> {
    let r = &args.run;
    for (flag, given) in [
        ("--log", r.log.is_some()),
        ("--summary-json", r.summary_json.is_some()),
        ("--summary-csv", r.summary_csv.is_some()),
        ("--csv", r.csv.is_some()),
        ("--report", r.report.is_some()),
        ("--dump-worst", r.dump_worst.is_some()),
        ("--prometheus", r.prometheus.is_some()),
        ("--live", r.live),
        (
            "--summary-format vmaf",
            r.summary_format == crate::cli::SummaryFormat::Vmaf,
        ),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "vqm batch: {flag} is not for a batch (each row gets <id>.summary.json and <id>.ndjson in --out; vqm merge makes the table)"
            )));
        }
    }
    Ok(())
}

/// Runs `vqm batch`; `raw` is the command line after `batch`; `stop`, set
/// by SIGINT/SIGTERM, ends the runs under way (their rows stay to do),
/// starts no more and ends the batch with [`Error::Interrupted`]. Returns
/// the exit code: 1 if a row failed, 3 if a gate failed, else 0.
pub fn batch(args: &BatchArgs, raw: &[String], stop: &AtomicBool) -> Result<u8, Error> {
    refuse_outputs(args)?;
    let manifest = Manifest::read(&args.manifest)?;
    let passthrough = args::passthrough(raw);
    // options every row would refuse: the command line's, said once
    let first = &manifest.rows[0];
    if let Some(why) = args::refused(&first.reference, &first.distorted, &passthrough.concat()) {
        return Err(Error::Usage(format!("vqm batch: {why}")));
    }
    if let Some(out) = &args.out {
        refuse_overwrites(&manifest, out)?;
    }
    if args.check {
        return Ok(check(&manifest, &passthrough));
    }
    let Some(out) = &args.out else {
        return Err(Error::Usage("vqm batch: --out DIR is needed".to_string()));
    };
    if let Some(kind) = args.emit {
        let text = emit::emit(kind, args, &manifest, out, &passthrough.concat())?;
        print!("{text}");
        return Ok(0);
    }
    let shard = Shard::resolve(args.shard.as_deref(), args.shards, |k| {
        std::env::var(k).ok()
    })?;
    let rows = match shard {
        Some(s) => s.select(&manifest.rows),
        None => &manifest.rows[..],
    };
    run::run(args, &manifest, rows, shard, out, &passthrough, stop)
}

/// Refuses, before anything is written, a batch that would write one of
/// its rows' files (`<id>.summary.json`, `<id>.ndjson`, `<id>.error.json`
/// in `out`) over the manifest or over an input of any row (the same
/// file, or a link to it).
fn refuse_overwrites(manifest: &Manifest, out: &str) -> Result<(), Error> {
    use crate::output::file::{Identity, identity};
    let dir = std::path::Path::new(out);
    if !dir.is_dir() {
        // nothing in it yet, so nothing there is an input
        return Ok(());
    }
    let mut read: Vec<(Identity, String)> = Vec::new();
    if let Some(id @ Identity::Inode(..)) = identity(&manifest.path) {
        read.push((id, format!("the manifest '{}'", manifest.path)));
    }
    for r in &manifest.rows {
        for input in [&r.reference, &r.distorted] {
            if let Some(id @ Identity::Inode(..)) = identity(input) {
                read.push((id, format!("the input '{input}' of line {}", r.line)));
            }
        }
    }
    for r in &manifest.rows {
        let (summary, log, error) = run::files(dir, &r.id);
        for file in [summary, log, error] {
            let file = file.display().to_string();
            let Some(id @ Identity::Inode(..)) = identity(&file) else {
                continue;
            };
            if let Some((_, what)) = read.iter().find(|(i, _)| *i == id) {
                return Err(Error::Usage(format!(
                    "vqm batch: row '{}' (line {}) would write '{file}', which is {what}: writing there would destroy it",
                    r.id, r.line
                )));
            }
        }
    }
    Ok(())
}

/// `--check`: every problem a run would meet in the rows (an unreadable
/// input, options a run would refuse), one line each with its line
/// number; 0 when there is none, 2 otherwise.
fn check(m: &Manifest, passthrough: &[Vec<String>]) -> u8 {
    let mut problems = 0;
    for r in &m.rows {
        let options = args::row_arguments(passthrough, r);
        let why = [&r.reference, &r.distorted]
            .into_iter()
            .filter_map(|i| manifest::unreadable(i))
            .chain(args::refused(&r.reference, &r.distorted, &options));
        for why in why {
            let line = format!("manifest '{}' line {}: {why}", m.path, r.line);
            eprintln!(
                "vqm: {}",
                crate::error::one_line(&crate::redact::redact(&line))
            );
            problems += 1;
        }
    }
    if problems == 0 {
        eprintln!(
            "vqm: manifest '{}': {} row(s), all readable",
            m.path,
            m.rows.len()
        );
        0
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> Row {
        Row {
            line: 0,
            id: id.to_string(),
            reference: String::new(),
            distorted: String::new(),
            options: Vec::new(),
        }
    }

    #[test]
    fn shards_split_the_rows_into_contiguous_blocks_once_each() {
        let rows: Vec<Row> = (0..10).map(|i| row(&i.to_string())).collect();
        for n in 1..=12 {
            let mut all = Vec::new();
            for i in 0..n {
                let s = Shard { index: i, count: n };
                let sel = s.select(&rows);
                assert!(sel.len() <= 10_usize.div_ceil(n as usize));
                all.extend(sel.iter().map(|r| r.id.clone()));
            }
            let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
            assert_eq!(all, want, "{n} shards");
        }
    }

    #[test]
    fn the_shard_comes_from_the_flag_or_the_scheduler() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = |i, n| Some(Shard { index: i, count: n });
        assert_eq!(
            Shard::resolve(Some("2/5"), None, env(&[])).unwrap(),
            s(2, 5)
        );
        assert_eq!(Shard::resolve(None, None, env(&[])).unwrap(), None);
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(Shard::resolve(None, None, slurm).unwrap(), s(3, 8));
        // an array 1-4: task 1 is the first of four
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "4"),
        ]);
        assert_eq!(Shard::resolve(None, None, slurm).unwrap(), s(0, 4));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "4")]);
        assert_eq!(Shard::resolve(None, Some(6), k8s).unwrap(), s(4, 6));
        assert!(Shard::resolve(None, None, k8s).is_err());
        let k8s = env(&[("JOB_COMPLETION_INDEX", "4"), ("VQM_SHARDS", "5")]);
        assert_eq!(Shard::resolve(None, None, k8s).unwrap(), s(4, 5));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5"), ("VQM_SHARDS", "5")]);
        assert!(Shard::resolve(None, None, k8s).is_err());
        // an array task id without the array's size, or not a number
        let alone = env(&[("SLURM_ARRAY_TASK_ID", "3")]);
        let e = Shard::resolve(None, None, alone).unwrap_err().to_string();
        assert!(e.contains("give --shard I/N"), "{e}");
        let word = env(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let e = Shard::resolve(None, None, word).unwrap_err().to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID='x' is not a whole number"),
            "{e}"
        );
        for bad in ["5/5", "1", "a/2", "0/0", "-1/3"] {
            assert!(Shard::resolve(Some(bad), None, env(&[])).is_err(), "{bad}");
        }
    }
}
