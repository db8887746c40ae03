//! The command line as a whole: a run (`vqm REFERENCE DISTORTED...`) or
//! one of the subcommands.

use clap::{Parser, Subcommand};

use super::{Cli, RunOptions};

/// Full-reference video quality monitor: per-frame PSNR, SSIM, MS-SSIM,
/// VMAF and more of one or more distorted videos against a reference, from
/// files, pipes or live streams.
#[derive(Debug, Parser)]
#[command(
    name = "vqm",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    subcommand_help_heading = "Commands",
    subcommand_value_name = "COMMAND",
    after_help = "Examples:\n  vqm ref.mp4 dist.mp4\n  vqm ref.mp4 a.mp4 b.mp4 c.mp4 --fail-if 'mean(psnr_avg)<38' --report report.html\n  vqm ref.mp4 dist.mp4 --metrics all --log frames.ndjson --csv frames.csv --summary-json summary.json\n  vqm ref.yuv dist.yuv --size 1920x1080 --pix-fmt yuv420p --rate 25\n  ffmpeg -i dist.mkv -c:v rawvideo -f nut - | vqm ref.mp4 - --log -\n  vqm udp://127.0.0.1:5000 udp://127.0.0.1:5001 --alert 'ssim_y<0.90 for 2s' --prometheus 127.0.0.1:9464\n  vqm batch catalog.csv --out results/ -m psnr,ssim,vmaf\n  vqm merge results/ --out results.csv\n  vqm completions bash > /etc/bash_completion.d/vqm\n\nAn input named like a command is given as a path (./batch) or after --."
)]
pub struct Vqm {
    /// A subcommand; without one, vqm measures its inputs.
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: Cli,
}

/// vqm's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script.
    #[command(after_help = "Example: vqm completions bash > /etc/bash_completion.d/vqm")]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure every row of a manifest (id,reference,distorted), one
    /// summary and log per row, resumable, sharded for job arrays.
    #[command(after_help = BATCH_HELP)]
    Batch(Box<BatchArgs>),
    /// Put the summaries of batch directories together: one row per
    /// manifest row.
    #[command(
        after_help = "Examples:\n  vqm merge out/ --out results.csv\n  vqm merge out-a/ out-b/ --manifest catalog.csv --out results.json"
    )]
    Merge(MergeArgs),
}

const BATCH_HELP: &str = "Examples:\n  vqm batch catalog.csv --out results/ -m psnr,ssim,vmaf\n  vqm batch catalog.csv --out results/ --shard 3/16\n  vqm batch catalog.csv --out results/ --emit slurm --rows-per-task 4 > job.sbatch\n\n\
The shard comes from --shard, else from SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT \
(or SLURM_ARRAY_TASK_MIN/MAX), else from JOB_COMPLETION_INDEX with --shards or VQM_SHARDS.";

/// `vqm batch`'s own arguments, and the run options applied to every row.
#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// The manifest: CSV with a header id,reference,distorted (and
    /// optional columns metrics, ssim_mode, dist_offset, ref_offset, sync,
    /// align, frames, start, ref_filter, dist_filter), or JSON Lines.
    #[arg(value_name = "MANIFEST")]
    pub manifest: String,

    /// The directory of the results: `<id>.summary.json` and `<id>.ndjson`
    /// per row (`<id>.error.json` for a row that failed).
    #[arg(long, value_name = "DIR", required_unless_present = "check")]
    pub out: Option<String>,

    /// Runs at a time [default: the cores over each run's --threads].
    #[arg(long, value_name = "N", value_parser = super::whole::<1, 256>)]
    pub jobs: Option<u64>,

    /// Run the rows of shard I of N only (0-based): contiguous blocks of
    /// the manifest, the same on every machine.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// The number of shards when the index comes from
    /// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long, value_name = "N", value_parser = super::whole::<1, 1_000_000>)]
    pub shards: Option<u64>,

    /// Measure rows whose summary exists already (else they are skipped).
    #[arg(long)]
    pub force: bool,

    /// Check the manifest (columns, ids, readable inputs) and exit.
    #[arg(long)]
    pub check: bool,

    /// Print a job for a scheduler instead of running: an sbatch script
    /// for a Slurm job array, or a Kubernetes Indexed Job.
    #[arg(long, value_enum, value_name = "slurm|k8s")]
    pub emit: Option<Emit>,

    /// With --emit: manifest rows per array task [default: 1].
    #[arg(long, value_name = "K", value_parser = super::whole::<1, 1_000_000>)]
    pub rows_per_task: Option<u64>,

    /// With --emit k8s: the container image that has vqm.
    #[arg(long, value_name = "IMAGE", default_value = "vqm:latest")]
    pub image: String,

    /// With --emit k8s: the PersistentVolumeClaim holding the media, the
    /// manifest and the results, mounted at /data.
    #[arg(long, value_name = "CLAIM", default_value = "vqm-data")]
    pub claim: String,

    /// With --emit: tasks at a time (Slurm's --array=0-M%N, the Job's
    /// parallelism) [default: every task].
    #[arg(long, value_name = "N", value_parser = super::whole::<1, 1_000_000>)]
    pub parallelism: Option<u64>,

    #[command(flatten)]
    pub run: RunOptions,
}

/// `--emit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// An sbatch script for a Slurm job array.
    Slurm,
    /// A Kubernetes Indexed Job (YAML).
    K8s,
}

/// `vqm merge`'s arguments.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Directories written by vqm batch.
    #[arg(value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<String>,

    /// The table: .csv or .json by extension, - for CSV on stdout.
    #[arg(long, value_name = "FILE|-")]
    pub out: String,

    /// The manifest the directories come from: rows missing from them are
    /// listed, and make the exit code 1.
    #[arg(long, value_name = "MANIFEST")]
    pub manifest: Option<String>,

    /// With --manifest: missing rows are listed but do not fail.
    #[arg(long)]
    pub allow_missing: bool,
}
