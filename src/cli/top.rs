//! The command line as a whole: a run (`vqm REFERENCE DISTORTED...`) or
//! one of the subcommands.

use clap::{Parser, Subcommand};

use super::Cli;

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
    after_help = "Examples:\n  vqm ref.mp4 dist.mp4\n  vqm ref.mp4 a.mp4 b.mp4 c.mp4 --fail-if 'mean(psnr_avg)<38' --report report.html\n  vqm ref.mp4 dist.mp4 --metrics all --log frames.ndjson --csv frames.csv --summary-json summary.json\n  vqm ref.yuv dist.yuv --size 1920x1080 --pix-fmt yuv420p --rate 25\n  ffmpeg -i dist.mkv -c:v rawvideo -f nut - | vqm ref.mp4 - --log -\n  vqm udp://127.0.0.1:5000 udp://127.0.0.1:5001 --alert 'ssim_y<0.90 for 2s' --prometheus 127.0.0.1:9464\n  vqm completions bash > /etc/bash_completion.d/vqm\n\nAn input named like a command is given as a path: ./completions."
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
}
