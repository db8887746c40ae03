//! Running a batch's rows: grouped by reference and options, each group a
//! vqm child process, its log and summary split into the rows' files.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::args::{refused, row_arguments};
use super::manifest::{Row, unreadable};
use super::{GATE_FAILED, Shard};
use crate::cli::BatchArgs;
use crate::error::{Error, one_line};

/// At most this many distorted inputs share one run.
const GROUP: usize = 8;

/// Rows measured together: one reference, the same row options.
struct Group<'a> {
    rows: Vec<&'a Row>,
}

/// Groups `rows` in manifest order: consecutive-or-not rows with the same
/// reference and options, at most [`GROUP`] per run.
fn groups(rows: &[&Row]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<(usize, usize)> = Vec::new(); // (row index of the key, group)
    for (i, r) in rows.iter().enumerate() {
        let found = open.iter().find(|(k, g)| {
            let key = rows[*k];
            key.reference == r.reference && key.options == r.options && out[*g].len() < GROUP
        });
        match found {
            Some(&(_, g)) => out[g].push(i),
            None => {
                open.push((i, out.len()));
                out.push(vec![i]);
            }
        }
    }
    out
}

/// The name a run's working directory starts with: this machine and this
/// process, so that a later batch can tell a dead run's leftovers from a
/// live one's (shards on other machines may share the directory).
fn run_prefix() -> String {
    format!(".vqm-run-{}-{}-", host(), std::process::id())
}

/// This machine's name, as the kernel knows it.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        .unwrap_or_default()
}

/// Removes the working directories that runs of a killed batch on this
/// machine left in `dir` (their process is gone).
fn remove_leftovers(dir: &Path) {
    let mine = format!(".vqm-run-{}-", host());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&mine)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // a dead run's partial files: nothing in them is a result
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Where one row's files go.
pub(super) fn files(dir: &Path, id: &str) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("{id}.summary.json")),
        dir.join(format!("{id}.ndjson")),
        dir.join(format!("{id}.error.json")),
    )
}

/// Writes `bytes` to `path` whole or not at all (through a symlink, to
/// its target).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Output {
        path: path.display().to_string(),
        source: e,
    };
    let path = &crate::output::file::through_links(path).map_err(fail)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = crate::output::file::temp_beside(path, dir).map_err(fail)?;
    std::io::Write::write_all(tmp.as_file_mut(), bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// A row's failure, as `<id>.error.json`.
fn fail_row(dir: &Path, row: &Row, input: &str, cause: &str, code: i32) -> Result<(), Error> {
    let (_, _, err) = files(dir, &row.id);
    let v = serde_json::json!({
        "id": row.id,
        "line": row.line,
        // credentials hidden, as a run's own outputs do
        "input": crate::redact::redact(input),
        "cause": crate::redact::redact(cause),
        "exit_code": code,
    });
    write_atomic(&err, format!("{v}\n").as_bytes())
}

/// How a row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done { gate_failed: bool },
    Failed,
}

/// Runs `rows` of the manifest into `out`: skipping rows already done
/// (unless `--force`), failing unreadable ones alone, the rest in groups,
/// `--jobs` at a time.
pub fn run(
    args: &BatchArgs,
    manifest: &super::Manifest,
    rows: &[Row],
    shard: Option<Shard>,
    out: &str,
    passthrough: &[Vec<String>],
    stop: &AtomicBool,
) -> Result<u8, Error> {
    let dir = Path::new(out);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Usage(format!("--out '{out}': cannot create it: {e}")))?;
    remove_leftovers(dir);
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut todo: Vec<&Row> = Vec::new();
    let mut skipped = 0;
    for r in rows {
        let (summary, _, error) = files(dir, &r.id);
        if summary.exists() && !args.force {
            skipped += 1;
            continue;
        }
        let _stale = std::fs::remove_file(&error);
        let bad = [&r.reference, &r.distorted]
            .into_iter()
            .find_map(|i| unreadable(i).map(|why| (i, why)));
        if let Some((input, why)) = bad {
            let line = format!("manifest '{}' line {}: {why}", manifest.path, r.line);
            eprintln!("vqm: {}", one_line(&crate::redact::redact(&line)));
            fail_row(dir, r, input, &why, 1)?;
            outcomes.push(Outcome::Failed);
            continue;
        }
        if let Some(why) = refused(&r.reference, &r.distorted, &row_arguments(passthrough, r)) {
            let line = format!("manifest '{}' line {}: {why}", manifest.path, r.line);
            eprintln!("vqm: {}", one_line(&crate::redact::redact(&line)));
            fail_row(dir, r, &r.distorted, &why, 2)?;
            outcomes.push(Outcome::Failed);
            continue;
        }
        todo.push(r);
    }
    let quiet = args.run.quiet;
    if !quiet {
        let on = shard.map_or(String::new(), |s| format!(" (shard {})", s.label()));
        eprintln!(
            "vqm: batch of {} row(s){on}: {} to measure, {skipped} done already",
            rows.len(),
            todo.len()
        );
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        (cores / args.run.threads.unwrap_or(cores).max(1)).max(1)
    }) as usize;
    let queue: Mutex<VecDeque<Group<'_>>> = Mutex::new(
        groups(&todo)
            .into_iter()
            .map(|g| Group {
                rows: g.into_iter().map(|i| todo[i]).collect(),
            })
            .collect(),
    );
    let bar = if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(todo.len() as u64)
    };
    let done: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let ctx = Ctx {
        dir,
        manifest: &manifest.path,
        shard,
        passthrough,
        stop,
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(g) = next else { break };
                    match ctx.group(&g.rows) {
                        Ok(o) => {
                            bar.inc(o.len() as u64);
                            done.lock().unwrap_or_else(|e| e.into_inner()).extend(o);
                        }
                        Err(e) => {
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if stop.load(Ordering::Acquire) {
        let kept = done.into_inner().unwrap_or_else(|e| e.into_inner()).len();
        return Err(Error::Interrupted(format!(
            "vqm batch: interrupted; {kept} row(s) measured in this batch are kept in '{out}', the rest are left to do"
        )));
    }
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    outcomes.extend(done.into_inner().unwrap_or_else(|e| e.into_inner()));
    let failed = outcomes.iter().filter(|o| **o == Outcome::Failed).count();
    let gates = outcomes
        .iter()
        .filter(|o| **o == Outcome::Done { gate_failed: true })
        .count();
    if !quiet || failed > 0 || gates > 0 {
        eprintln!(
            "vqm: batch: {} row(s) measured, {failed} failed, {gates} with a failed gate or a fired alert, {skipped} skipped (in '{out}')",
            outcomes.len() - failed
        );
    }
    Ok(if failed > 0 {
        1
    } else if gates > 0 {
        GATE_FAILED
    } else {
        0
    })
}

/// What every group's run needs.
struct Ctx<'a> {
    dir: &'a Path,
    manifest: &'a str,
    shard: Option<Shard>,
    passthrough: &'a [Vec<String>],
    stop: &'a AtomicBool,
}

impl Ctx<'_> {
    /// Runs a group; if it fails as a whole, each of its rows alone (so a
    /// row fails for its own cause only).
    fn group(&self, rows: &[&Row]) -> Result<Vec<Outcome>, Error> {
        match self.measure(rows)? {
            Ok(o) => Ok(o),
            Err((cause, code)) if rows.len() == 1 => {
                let r = rows[0];
                fail_row(self.dir, r, &r.distorted, &cause, code)?;
                Ok(vec![Outcome::Failed])
            }
            Err(_) => {
                let mut out = Vec::new();
                for r in rows {
                    out.extend(self.group(&[r])?);
                }
                Ok(out)
            }
        }
    }

    /// Runs `cmd` to its end, its stderr collected; when the batch is
    /// told to stop, the run is sent SIGTERM (it ends cleanly).
    fn wait(&self, cmd: &mut Command) -> Result<std::process::Output, Error> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Internal(format!("cannot start vqm: {e}")))?;
        let mut pipe = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(p) = pipe.as_mut()
                && std::io::Read::read_to_end(p, &mut text).is_err()
            {
                // what was read is kept: a read that fails leaves the
                // cause less clear, not the row's result
            }
            text
        });
        let mut told = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(Error::Internal(format!("cannot wait for vqm: {e}"))),
            }
            if !told && self.stop.load(Ordering::Acquire) {
                told = true;
                let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
                // SAFETY: kill with a child's pid (not yet reaped, so not
                // reused) and a signal number has no memory effects
                if pid > 0 && unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
                    // it ended meanwhile: try_wait reaps it next
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let stderr = reader.join().unwrap_or_default();
        Ok(std::process::Output {
            status,
            stdout: Vec::new(),
            stderr,
        })
    }

    /// One vqm run over `rows` (one reference); its records split into the
    /// rows' files. `Err((cause, exit code))` when the run failed.
    #[allow(clippy::type_complexity)]
    fn measure(&self, rows: &[&Row]) -> Result<Result<Vec<Outcome>, (String, i32)>, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Internal(format!("cannot find the vqm binary: {e}")))?;
        let tmp = tempfile::Builder::new()
            .prefix(&run_prefix())
            .tempdir_in(self.dir)
            .map_err(|e| Error::Output {
                path: self.dir.display().to_string(),
                source: e,
            })?;
        let (log, summary) = (
            tmp.path().join("log.ndjson"),
            tmp.path().join("summary.json"),
        );
        let mut cmd = Command::new(exe);
        cmd.args(row_arguments(self.passthrough, rows[0]));
        cmd.arg("--log")
            .arg(&log)
            .arg("--summary-json")
            .arg(&summary);
        cmd.arg("-q");
        // the inputs after `--`: one named like an option or a subcommand
        // stays an input
        cmd.arg("--").arg(&rows[0].reference);
        cmd.args(rows.iter().map(|r| &r.distorted));
        // SAFETY: the closure runs in the forked child before exec and
        // only calls prctl, which is async-signal-safe; it asks the kernel
        // to kill the run if the batch dies (a killed task leaves no
        // orphan working on).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = self.wait(&mut cmd)?;
        let code = o.status.code().unwrap_or(-1);
        if self.stop.load(Ordering::Acquire) && code != 0 && code != i32::from(GATE_FAILED) {
            // the run was ended by the batch's signal: its rows stay to do
            // (their working directory goes with `tmp`); a run that ended
            // cleanly is checked below like any other
            return Err(Error::Interrupted(format!(
                "vqm batch: the run of row '{}' was interrupted",
                rows[0].id
            )));
        }
        let stderr = String::from_utf8_lossy(&o.stderr);
        if code != 0 && code != i32::from(GATE_FAILED) {
            let cause = stderr
                .lines()
                .rev()
                .find(|l| l.contains("error"))
                .or_else(|| stderr.lines().last())
                .unwrap_or("vqm ended without a message")
                .trim()
                .trim_start_matches("vqm: ")
                .to_string();
            let cause = if o.status.code().is_none() {
                format!("vqm was killed by a signal ({cause})")
            } else {
                cause
            };
            return Ok(Err((cause, code)));
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| Error::Output {
                path: p.display().to_string(),
                source: e,
            })
        };
        let summaries: Value = serde_json::from_str(&read(&summary)?)
            .map_err(|e| Error::Internal(format!("a run's summary is not JSON: {e}")))?;
        let summaries = match summaries {
            Value::Array(a) => a,
            one => vec![one],
        };
        if summaries.iter().any(|s| s["interrupted"] == true) {
            // a run stopped by a signal: its rows are not complete
            return Err(Error::Interrupted(format!(
                "vqm batch: the run of row '{}' was interrupted",
                rows[0].id
            )));
        }
        if summaries.len() != rows.len() {
            return Ok(Err((
                format!("{} summaries for {} inputs", summaries.len(), rows.len()),
                1,
            )));
        }
        let logs = split_log(&read(&log)?, rows.len());
        let mut out = Vec::new();
        for (k, (r, mut s)) in rows.iter().zip(summaries).enumerate() {
            // what makes a plain run exit 3: a failed gate or a fired alert
            let gate_failed = s["gates"]
                .as_array()
                .is_some_and(|g| g.iter().any(|x| x["failed"] == true))
                || s["alerts"].as_array().is_some_and(|a| !a.is_empty());
            s["input"] = Value::from(0);
            // the ladder mark compared the rows run together: not a row's fact
            s["ladder"] = Value::Null;
            let mut text = String::new();
            for rec in &logs[k] {
                let mut rec = rec.clone();
                if rec["type"] == "header" {
                    if let Some(d) = rec["distorted"].as_array().and_then(|d| d.get(k)).cloned() {
                        rec["distorted"] = Value::Array(vec![d]);
                    }
                    rec["batch"] = serde_json::json!({
                        "id": r.id,
                        "manifest": self.manifest,
                        "line": r.line,
                        "shard": self.shard.map(|s| s.label()),
                    });
                } else if rec.get("input").is_some_and(Value::is_u64) {
                    rec["input"] = Value::from(0);
                } else if rec["type"] == "summary" {
                    continue;
                }
                if rec["type"] == "summary" {
                    rec = s.clone();
                }
                text.push_str(&rec.to_string());
                text.push('\n');
            }
            let (sum_path, log_path, _) = files(self.dir, &r.id);
            // the log first: the summary marks the row complete
            write_atomic(&log_path, text.as_bytes())?;
            write_atomic(&sum_path, format!("{s}\n").as_bytes())?;
            out.push(Outcome::Done { gate_failed });
        }
        Ok(Ok(out))
    }
}

/// A run's NDJSON records, per distorted input: a record with an `input`
/// goes to that input's list, one without (the header, events of the
/// reference) to every list.
fn split_log(text: &str, inputs: usize) -> Vec<Vec<Value>> {
    let mut out = vec![Vec::new(); inputs];
    for l in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        match v.get("input").and_then(Value::as_u64) {
            Some(k) => {
                if let Some(list) = out.get_mut(k as usize) {
                    list.push(v);
                }
            }
            None => out.iter_mut().for_each(|list| list.push(v.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_by_reference_and_options() {
        let row = |id: &str, r: &str, m: &str| Row {
            line: 0,
            id: id.to_string(),
            reference: r.to_string(),
            distorted: format!("{id}.mp4"),
            options: if m.is_empty() {
                Vec::new()
            } else {
                vec![("--metrics".to_string(), m.to_string())]
            },
        };
        let rows = [
            row("a", "r1", ""),
            row("b", "r2", ""),
            row("c", "r1", ""),
            row("d", "r1", "vmaf"),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(groups(&refs), vec![vec![0, 2], vec![1], vec![3]]);
        let many: Vec<Row> = (0..20).map(|i| row(&i.to_string(), "r", "")).collect();
        let refs: Vec<&Row> = many.iter().collect();
        let g = groups(&refs);
        assert_eq!(g.iter().map(Vec::len).collect::<Vec<_>>(), [8, 8, 4]);
    }

    #[test]
    fn a_log_splits_by_input_with_the_shared_records_in_each() {
        let text = "{\"type\":\"header\"}\n{\"type\":\"frame\",\"input\":1}\n{\"type\":\"event\"}\n{\"type\":\"frame\",\"input\":0}\n";
        let s = split_log(text, 2);
        let types = |k: usize| -> Vec<String> {
            s[k].iter()
                .map(|v| v["type"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(types(0), ["header", "event", "frame"]);
        assert_eq!(types(1), ["header", "frame", "event"]);
    }
}
