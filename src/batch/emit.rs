//! `vqm batch --emit slurm|k8s`: a job for the scheduler that runs the
//! batch as an array, each task its shard (`--rows-per-task` rows).

use std::path::Path;

use super::manifest::Manifest;
use crate::cli::{BatchArgs, Emit};
use crate::error::Error;

/// A word for a POSIX shell, quoted when it needs to be.
fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A string for YAML (double-quoted, JSON escapes are YAML's).
fn yaml(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Whether `c` can end a line somewhere a job is read: the control
/// characters (C0, DEL, C1 with NEL) and Unicode's line and paragraph
/// separators, which YAML 1.1 readers take as line breaks.
fn breaks_lines(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `value` with the characters that could break a line escaped, for a
/// one-line message.
fn shown(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if breaks_lines(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Refuses a string bound for a job's text that holds a character that
/// could end a line (a `#SBATCH` or comment line, a YAML scalar) and so
/// let the rest run as a command: exit 2 naming `field`, the value shown
/// escaped so the message stays one line.
fn one_line(kind: &str, field: &str, value: &str) -> Result<(), Error> {
    match value.chars().find(|&c| breaks_lines(c)) {
        None => Ok(()),
        Some(c) => Err(Error::Usage(format!(
            "vqm batch --emit {kind}: {field} '{}' holds a control character ({}): a job's text cannot carry it; rename it",
            shown(value),
            c.escape_unicode()
        ))),
    }
}

/// A file `name` (a Slurm pattern, put as it is) in the directory `dir`
/// for a `#SBATCH` line: double-quoted (sbatch splits its
/// directives at blanks and cuts them at a `#`), `\"` escaped as sbatch
/// reads it, and `%` doubled (Slurm expands `%j`, `%A`, `%a` in file
/// names). A backslash is refused: Slurm takes one in a file name as
/// "expand nothing" and drops it, so the log would go elsewhere.
fn sbatch_path(field: &str, dir: &str, name: &str) -> Result<String, Error> {
    if dir.contains('\\') {
        return Err(Error::Usage(format!(
            "vqm batch --emit slurm: {field} '{}' holds a backslash, which Slurm's file names cannot carry; rename it",
            shown(dir)
        )));
    }
    Ok(format!(
        "\"{}/{name}\"",
        dir.replace('%', "%%").replace('"', "\\\"")
    ))
}

/// A path as a command's argument: one that starts with `-` is prefixed
/// with `./`, so that it is not read as an option.
fn argument(path: &str) -> String {
    if path.starts_with('-') {
        format!("./{path}")
    } else {
        path.to_string()
    }
}

/// `path` made absolute against the working directory.
fn absolute(path: &str) -> Result<String, Error> {
    std::path::absolute(Path::new(path))
        .map(|p| p.display().to_string())
        .map_err(|e| Error::Usage(format!("'{path}': {e}")))
}

/// The job text.
pub fn emit(
    kind: Emit,
    args: &BatchArgs,
    manifest: &Manifest,
    out: &str,
    passthrough: &[String],
) -> Result<String, Error> {
    if args.shard.is_some() {
        return Err(Error::Usage(
            "--emit: each task picks its own shard; leave --shard out".to_string(),
        ));
    }
    let rows = manifest.rows.len();
    let tasks = match (kind, args.shards, args.rows_per_task) {
        (Emit::K8s, Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--emit k8s: give --shards N (the tasks) or --rows-per-task K, not both"
                    .to_string(),
            ));
        }
        (Emit::K8s, Some(n), None) => (n as usize).min(rows),
        (_, _, per) => rows.div_ceil(per.unwrap_or(1) as usize),
    }
    .max(1);
    let name = match kind {
        Emit::Slurm => "slurm",
        Emit::K8s => "k8s",
    };
    if manifest.path == "-" {
        return Err(Error::Usage(format!(
            "vqm batch --emit {name}: the manifest must be a file the tasks can read, not standard input"
        )));
    }
    one_line(name, "the manifest path", &manifest.path)?;
    one_line(name, "--out", out)?;
    for word in passthrough {
        one_line(name, "the option", word)?;
    }
    if kind == Emit::K8s {
        one_line(name, "--image", &args.image)?;
        one_line(name, "--claim", &args.claim)?;
    }
    let mut options: Vec<String> = passthrough.to_vec();
    if args.force {
        options.push("--force".to_string());
    }
    if let Some(j) = args.jobs {
        options.push(format!("--jobs={j}"));
    }
    match kind {
        Emit::Slurm => slurm(args, manifest, out, tasks, &options),
        Emit::K8s => Ok(k8s(args, manifest, out, tasks, &options)),
    }
}

fn slurm(
    args: &BatchArgs,
    manifest: &Manifest,
    out: &str,
    tasks: usize,
    options: &[String],
) -> Result<String, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the vqm binary: {e}")))?;
    let (m, o) = (absolute(&manifest.path)?, absolute(out)?);
    one_line("slurm", "the vqm binary's path", &exe.display().to_string())?;
    let log = sbatch_path("--out", &o, "slurm-%A_%a.out")?;
    // Slurm opens the tasks' --output files before the script runs: the
    // directory must be there when the job starts
    std::fs::create_dir_all(&o)
        .map_err(|e| Error::Usage(format!("--out '{out}': cannot create it: {e}")))?;
    let mut s = String::from("#!/bin/bash\n");
    s.push_str("#SBATCH --job-name=vqm-batch\n");
    let throttle = args
        .parallelism
        .filter(|p| (*p as usize) < tasks)
        .map_or(String::new(), |p| format!("%{p}"));
    s.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", tasks - 1));
    if let Some(t) = args.run.threads {
        s.push_str(&format!("#SBATCH --cpus-per-task={t}\n"));
    }
    s.push_str(&format!("#SBATCH --output={log}\n"));
    s.push_str(&format!(
        "# {} row(s) of {}, {} per task; merge with:\n#   {} merge {} --manifest {} --out results.csv\n",
        manifest.rows.len(),
        m,
        args.rows_per_task.unwrap_or(1),
        sh(&exe.display().to_string()),
        sh(&o),
        sh(&m),
    ));
    s.push_str("set -eu\n");
    let mut cmd = vec![
        exe.display().to_string(),
        "batch".to_string(),
        m,
        "--out".to_string(),
        o,
    ];
    cmd.extend(options.iter().cloned());
    let words: Vec<String> = cmd.iter().map(|w| sh(w)).collect();
    s.push_str(&format!(
        "exec {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{tasks}\"\n",
        words.join(" ")
    ));
    Ok(s)
}

fn k8s(
    args: &BatchArgs,
    manifest: &Manifest,
    out: &str,
    tasks: usize,
    options: &[String],
) -> String {
    let parallelism = args.parallelism.map_or(tasks, |p| (p as usize).min(tasks));
    let mut cmd = vec![
        "vqm".to_string(),
        "batch".to_string(),
        argument(&manifest.path),
        "--out".to_string(),
        argument(out),
        "--shards".to_string(),
        tasks.to_string(),
    ];
    cmd.extend(options.iter().cloned());
    let command: Vec<String> = cmd.iter().map(|w| yaml(w)).collect();
    let mut lines = vec![
        format!(
            "# {} row(s) of {}, {} task(s); relative paths are under /data, where the claim is mounted",
            manifest.rows.len(),
            manifest.path,
            tasks
        ),
        "apiVersion: batch/v1".to_string(),
        "kind: Job".to_string(),
        "metadata:".to_string(),
        "  name: vqm-batch".to_string(),
        "spec:".to_string(),
        "  completionMode: Indexed".to_string(),
        format!("  completions: {tasks}"),
        format!("  parallelism: {parallelism}"),
        "  backoffLimit: 3".to_string(),
        "  template:".to_string(),
        "    spec:".to_string(),
        "      restartPolicy: Never".to_string(),
        "      containers:".to_string(),
        "        - name: vqm".to_string(),
        format!("          image: {}", yaml(&args.image)),
        "          workingDir: /data".to_string(),
        format!("          command: [{}]", command.join(", ")),
    ];
    if let Some(t) = args.run.threads {
        lines.extend([
            "          resources:".to_string(),
            "            requests:".to_string(),
            format!("              cpu: \"{t}\""),
        ]);
    }
    lines.extend([
        "          volumeMounts:".to_string(),
        "            - name: data".to_string(),
        "              mountPath: /data".to_string(),
        "      volumes:".to_string(),
        "        - name: data".to_string(),
        "          persistentVolumeClaim:".to_string(),
        format!("            claimName: {}", yaml(&args.claim)),
    ]);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_they_need_it() {
        assert_eq!(sh("/a/b.csv"), "/a/b.csv");
        assert_eq!(sh("ssim_y<0.9 for 2s"), "'ssim_y<0.9 for 2s'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
        assert_eq!(yaml("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn sbatch_paths_are_quoted_with_percent_doubled_and_backslashes_refused() {
        assert_eq!(
            sbatch_path("--out", "/a b/%j \"x\"", "slurm-%A_%a.out").unwrap(),
            r#""/a b/%%j \"x\"/slurm-%A_%a.out""#
        );
        assert!(sbatch_path("--out", "/a\\b", "x").is_err());
        for bad in ["a\nb", "a\rb", "a\tb", "a\u{85}b", "a\u{2028}b", "a\u{7f}b"] {
            let e = one_line("slurm", "--out", bad).unwrap_err().to_string();
            assert!(e.contains("control character") && !e.contains('\n'), "{e}");
        }
        assert!(one_line("k8s", "--out", "a b'c\"d$(x)`y`#z: -w ✓").is_ok());
        assert_eq!(argument("-m.csv"), "./-m.csv");
        assert_eq!(argument("m.csv"), "m.csv");
    }
}
