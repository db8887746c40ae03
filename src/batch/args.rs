//! A batch's command line: the run options it passes to every row's run,
//! a row's own options over them, and whether a run would refuse them.

use super::manifest::Row;

/// `vqm batch`'s own options that take a value, and those that do not:
/// what is left of the command line goes to every row's run.
const OWN_VALUED: [&str; 9] = [
    "--out",
    "--jobs",
    "--shard",
    "--shards",
    "--emit",
    "--rows-per-task",
    "--image",
    "--claim",
    "--parallelism",
];
const OWN_FLAGS: [&str; 2] = ["--force", "--check"];

/// The run options of a batch's command line (`raw`, after `batch`): every
/// token but the manifest and the batch's own options, an option with its
/// value as one group.
pub fn passthrough(raw: &[String]) -> Vec<Vec<String>> {
    use clap::Args as _;
    let run = crate::cli::RunOptions::augment_args(clap::Command::new("run"));
    let takes_value = |token: &str| -> bool {
        let long = token.strip_prefix("--");
        let short = token
            .strip_prefix('-')
            .filter(|s| s.len() == 1)
            .and_then(|s| s.chars().next());
        run.get_arguments().any(|a| {
            let named = match (long, short) {
                (Some(l), _) => a.get_long() == Some(l),
                (None, Some(c)) => a.get_short() == Some(c),
                _ => false,
            };
            named && a.get_action().takes_values()
        })
    };
    let mut out = Vec::new();
    let mut it = raw.iter();
    let mut manifest_seen = false;
    while let Some(t) = it.next() {
        let name = t.split('=').next().unwrap_or(t);
        if OWN_VALUED.contains(&name) {
            if !t.contains('=') {
                it.next();
            }
        } else if OWN_FLAGS.contains(&name) {
        } else if t.starts_with('-') && t.len() > 1 {
            let mut group = vec![t.clone()];
            if !t.contains('=')
                && takes_value(t)
                && let Some(v) = it.next()
            {
                group.push(v.clone());
            }
            out.push(group);
        } else if !manifest_seen {
            manifest_seen = true;
        } else {
            out.push(vec![t.clone()]);
        }
    }
    out
}

/// The command line's options for a row: `passthrough` without the
/// options the row sets itself (a manifest column wins over the command
/// line), then the row's.
pub fn row_arguments(passthrough: &[Vec<String>], row: &Row) -> Vec<String> {
    use clap::Args as _;
    let run = crate::cli::RunOptions::augment_args(clap::Command::new("run"));
    let set: Vec<(&str, Option<char>)> = row
        .options
        .iter()
        .map(|(flag, _)| {
            let long = flag.trim_start_matches('-');
            let short = run
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .and_then(clap::Arg::get_short);
            (long, short)
        })
        .collect();
    let overridden = |token: &str| {
        let name = token.split('=').next().unwrap_or(token);
        match name.strip_prefix("--") {
            Some(long) => set.iter().any(|(l, _)| *l == long),
            None => name
                .strip_prefix('-')
                .and_then(|s| s.chars().next())
                .is_some_and(|c| set.iter().any(|(_, s)| *s == Some(c))),
        }
    };
    let mut out: Vec<String> = passthrough
        .iter()
        // the run is quiet anyway (-q is added to every run)
        .filter(|g| {
            !g.first()
                .is_some_and(|t| overridden(t) || t == "-q" || t == "--quiet")
        })
        .flatten()
        .cloned()
        .collect();
    out.extend(
        row.options
            .iter()
            .map(|(flag, value)| format!("{flag}={value}")),
    );
    out
}

/// Why the run options `args` would be refused for a run of `reference`
/// against `distorted` (clap's parse and the settings checks a run makes
/// before it opens an input), if they would.
pub fn refused(reference: &str, distorted: &str, args: &[String]) -> Option<String> {
    use clap::Parser as _;
    // the options, then `--` and the inputs: an input named like an
    // option or a subcommand stays an input
    let mut argv = vec!["vqm".to_string()];
    argv.extend(args.iter().cloned());
    argv.extend(["--", reference, distorted].map(str::to_string));
    match crate::cli::Vqm::try_parse_from(argv) {
        Err(e) => Some(
            e.to_string()
                .lines()
                .next()
                .unwrap_or("bad options")
                .trim_start_matches("error: ")
                .to_string(),
        ),
        Ok(top) => top.run.settings().err().map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_rows_options_are_what_is_left_of_the_command_line() {
        let raw = strings(&[
            "m.csv",
            "--out",
            "res",
            "-m",
            "psnr,ssim",
            "--jobs=2",
            "--force",
            "--window",
            "2s",
            "-q",
            "--shard",
            "1/4",
            "--alert",
            "ssim_y<0.9",
            "--threads=1",
        ]);
        assert_eq!(
            passthrough(&raw).concat(),
            strings(&[
                "-m",
                "psnr,ssim",
                "--window",
                "2s",
                "-q",
                "--alert",
                "ssim_y<0.9",
                "--threads=1"
            ])
        );
        let row = |options: &[(&str, &str)]| Row {
            line: 2,
            id: "a".to_string(),
            reference: String::new(),
            distorted: String::new(),
            options: options
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
        };
        let p = passthrough(&strings(&[
            "m.csv",
            "-m",
            "psnr",
            "--metrics=ssim",
            "-mmse",
            "--dist-offset",
            "3",
            "-q",
        ]));
        assert_eq!(
            row_arguments(&p, &row(&[("--metrics", "vmaf")])),
            strings(&["--dist-offset", "3", "--metrics=vmaf"])
        );
        assert_eq!(
            row_arguments(&p, &row(&[("--dist-offset", "-2")])),
            strings(&["-m", "psnr", "--metrics=ssim", "-mmse", "--dist-offset=-2"])
        );
    }
}
