//! `vqm merge DIR... --out FILE`: the summaries of batch directories as one
//! table, a row per manifest row (`id`, then the columns of
//! `--summary-csv`), in id order (manifest order with `--manifest`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::manifest::Manifest;
use crate::cli::MergeArgs;
use crate::error::Error;
use crate::output::summary_csv::table;

/// The largest summary read: a summary record is a few KiB.
const MAX_SUMMARY_BYTES: u64 = 16 << 20;

/// The largest error record read.
const MAX_ERROR_BYTES: u64 = 1 << 20;

/// Every `<id>.summary.json` of `dirs`, by id: the file and its record.
fn collect(dirs: &[String]) -> Result<BTreeMap<String, (PathBuf, Value)>, Error> {
    let mut found: BTreeMap<String, (PathBuf, Value)> = BTreeMap::new();
    for d in dirs {
        let entries = std::fs::read_dir(d)
            .map_err(|e| Error::Usage(format!("vqm merge: '{d}': cannot read: {e}")))?;
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            let Some(id) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".summary.json"))
                .map(str::to_string)
            else {
                continue;
            };
            let text = crate::textfile::read(&p, MAX_SUMMARY_BYTES)
                .map_err(|why| Error::Usage(format!("vqm merge: '{}' {why}", p.display())))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                Error::Usage(format!("vqm merge: '{}': not a summary: {e}", p.display()))
            })?;
            if v["type"] != "summary" {
                return Err(Error::Usage(format!(
                    "vqm merge: '{}': not a summary record",
                    p.display()
                )));
            }
            if let Some((first, other)) = found.get(&id) {
                if results(other) != results(&v) {
                    return Err(Error::Usage(format!(
                        "vqm merge: row '{id}' has two different results: '{}' and '{}'",
                        first.display(),
                        p.display()
                    )));
                }
                continue;
            }
            found.insert(id, (p, v));
        }
    }
    Ok(found)
}

/// A summary without the timings that differ from one run to the next
/// (latency, lag): what two runs of one row must agree on.
fn results(summary: &Value) -> Value {
    let mut v = summary.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["latency_ms", "lag_ms", "alignment_delay_ms"] {
            o.remove(k);
        }
    }
    v
}

/// Runs `vqm merge`; returns the exit code.
pub fn merge(args: &MergeArgs) -> Result<u8, Error> {
    let json = args.out.ends_with(".json");
    if !json && !args.out.ends_with(".csv") && args.out != "-" {
        return Err(Error::Usage(format!(
            "vqm merge: --out '{}': give a .csv or .json file, or - for CSV on stdout",
            args.out
        )));
    }
    let mut found = collect(&args.dirs)?;
    // the files read: the output must be none of them
    let mut read: Vec<(String, String)> = found
        .values()
        .map(|(p, _)| ("the summary".to_string(), p.display().to_string()))
        .collect();
    read.extend(error_files(&args.dirs).map(|p| ("the error record".to_string(), p)));
    if let Some(m) = &args.manifest {
        read.push(("the manifest".to_string(), m.clone()));
    }
    refuse_overwrite(&args.out, &read)?;
    let mut missing = Vec::new();
    let mut order: Vec<String> = found.keys().cloned().collect();
    if let Some(m) = &args.manifest {
        let manifest = Manifest::read(m)?;
        let listed: Vec<String> = manifest.rows.iter().map(|r| r.id.clone()).collect();
        for r in &manifest.rows {
            if !found.contains_key(&r.id) {
                missing.push((r.id.clone(), r.line));
            }
        }
        let extra: Vec<String> = order
            .iter()
            .filter(|id| !listed.contains(id))
            .cloned()
            .collect();
        order = listed;
        order.extend(extra);
    }
    let rows: Vec<(Vec<String>, Value)> = order
        .iter()
        .filter_map(|id| found.remove(id).map(|(_, v)| (vec![id.clone()], v)))
        .collect();
    let lines = table(&["id"], &rows);
    let text = if json {
        let header: Vec<String> = csv_cells(&lines[0]);
        let objects: Vec<Value> = rows
            .iter()
            .zip(&lines[1..])
            .map(|((lead, v), line)| {
                let cells = csv_cells(line);
                let mut o = serde_json::Map::new();
                for (h, c) in header.iter().zip(cells) {
                    // the id as it is: a CSV cell may carry the prefix
                    // that keeps a spreadsheet from running it as a formula
                    let value = match h.as_str() {
                        "id" => Value::from(lead[0].as_str()),
                        _ => typed(h, &c, v),
                    };
                    o.insert(h.clone(), value);
                }
                Value::Object(o)
            })
            .collect();
        format!("{}\n", Value::Array(objects))
    } else {
        lines.iter().map(|l| format!("{l}\n")).collect()
    };
    if args.out == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Error::Usage(format!("vqm merge: stdout: {e}")));
            }
            _ => {}
        }
    } else {
        let mut out =
            crate::output::Output::create(&args.out, "--out", crate::output::Mode::AtEnd)?;
        out.line(text.trim_end_matches('\n'))?;
        out.finish()?;
    }
    for (id, line) in &missing {
        eprintln!(
            "vqm: merge: row '{id}' (manifest line {line}) has no summary{}",
            failure(&args.dirs, id).map_or(String::new(), |c| format!(": it failed: {c}"))
        );
    }
    eprintln!(
        "vqm: merge: {} row(s) into '{}'{}",
        rows.len(),
        args.out,
        if missing.is_empty() {
            String::new()
        } else {
            format!(", {} missing", missing.len())
        }
    );
    Ok(if !missing.is_empty() && !args.allow_missing {
        1
    } else {
        0
    })
}

/// The `<id>.error.json` files of `dirs` (what [`failure`] may read).
fn error_files(dirs: &[String]) -> impl Iterator<Item = String> + '_ {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".error.json"))
        })
        .map(|p| p.display().to_string())
}

/// Refuses, before anything is written, an output `out` that is (or links
/// to) one of the files `read` (what each is, its path).
pub(super) fn refuse_overwrite(out: &str, read: &[(String, String)]) -> Result<(), Error> {
    use crate::output::file::{Identity, identity};
    let Some(Identity::Inode(dev, ino)) = identity(out) else {
        return Ok(());
    };
    for (what, path) in read {
        if identity(path) == Some(Identity::Inode(dev, ino)) {
            return Err(Error::Usage(format!(
                "vqm merge: --out '{out}' is {what} '{path}': writing there would destroy it"
            )));
        }
    }
    Ok(())
}

/// The cause a failed row's `<id>.error.json` gives, in the first of
/// `dirs` that has one.
fn failure(dirs: &[String], id: &str) -> Option<String> {
    dirs.iter().find_map(|d| {
        let text = crate::textfile::read(
            &std::path::Path::new(d).join(format!("{id}.error.json")),
            MAX_ERROR_BYTES,
        )
        .ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["cause"].as_str().map(str::to_string)
    })
}

/// A CSV line's cells (the table's own quoting undone).
fn csv_cells(line: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    r.records()
        .next()
        .and_then(Result::ok)
        .map(|rec| rec.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A JSON cell: the summary's own value for the input facts, a number for
/// the figures, `null` when empty.
fn typed(column: &str, cell: &str, summary: &Value) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    match column {
        "path" | "resolution" | "codec" => summary[column].clone(),
        "on_hull" => Value::from(cell == "true"),
        _ => cell
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| cell.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(cell)),
    }
}
