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
    s.push_str(&format!("#SBATCH --output={}/slurm-%A_%a.out\n", sh(&o)));
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
        manifest.path.clone(),
        "--out".to_string(),
        out.to_string(),
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
}
