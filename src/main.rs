//! The `vqm` command: parse, run, map the outcome to an exit code.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use vqm::cli::SummaryFormat;
use vqm::cli::{Cli, Command, Vqm};
use vqm::error::{Error, one_line};
use vqm::output::{
    CsvSink, Mode, NdjsonSink, Output, ProgressSink, PrometheusSink, ReportSink, Sink,
    SummaryCsvSink, SummarySink, VmafLayoutSink,
};
use vqm::pipeline::{self, Warn};
// what vqm prints names inputs with their credentials hidden
use vqm::redact::redact;

/// `vqm completions SHELL`: prints a shell completion script.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Vqm::command(), "vqm", &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        // a reader that stopped early (`| head`) wanted no more
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vqm: error: cannot write the completion script: {e}");
            ExitCode::from(1)
        }
    }
}

/// A subcommand's outcome as an exit code, its error on stderr.
fn finish(r: Result<u8, Error>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vqm: error: {}", one_line(&redact(&e.to_string())));
            ExitCode::from(e.exit_code())
        }
    }
}

/// The signals that end a run or a batch cleanly.
const STOP_SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// SIGINT/SIGTERM set `stop` (a run or a batch then ends cleanly); a
/// second one, half a second or more later, ends the process at once
/// with 130. Installed before
/// anything else, so that a signal that comes at once is never the
/// default death (143).
fn install_stop(stop: &Arc<AtomicBool>) -> Result<(), Error> {
    for sig in STOP_SIGNALS {
        let stop = stop.clone();
        // SAFETY: the handler only reads the monotonic clock, touches
        // atomics and may call `_exit`, all async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                let now = monotonic_ms();
                if !stop.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    FIRST_SIGNAL_MS.store(now, std::sync::atomic::Ordering::SeqCst);
                } else if now
                    .saturating_sub(FIRST_SIGNAL_MS.load(std::sync::atomic::Ordering::SeqCst))
                    >= SECOND_SIGNAL_AFTER_MS
                {
                    signal_hook::low_level::exit(130);
                }
            })
        }
        .map_err(|e| Error::Internal(format!("cannot install the signal handler: {e}")))?;
    }
    Ok(())
}

/// When the first stop signal came (monotonic milliseconds).
static FIRST_SIGNAL_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A second signal this soon after the first is the same request (`timeout
/// -s INT` and a terminal's Ctrl-C reach a process and its group at once):
/// only a later one ends the process at once.
const SECOND_SIGNAL_AFTER_MS: u64 = 500;

/// The monotonic clock in milliseconds (async-signal-safe).
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// For a command with nothing to end cleanly (merge, completions): a
/// signal, or one that came already, ends the process with 130.
fn stop_at_once(stop: &Arc<AtomicBool>) -> Result<(), Error> {
    if stop.load(std::sync::atomic::Ordering::Acquire) {
        vqm::output::file::remove_temporaries();
        std::process::exit(130);
    }
    for sig in STOP_SIGNALS {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::new(AtomicBool::new(true)))
            .map_err(|e| Error::Internal(format!("cannot install the signal handler: {e}")))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = install_stop(&stop) {
        eprintln!("vqm: error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let top = match Vqm::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            if e.print().is_err() {
                // stderr is gone too; the exit code still tells
            }
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    let cli = match top.command {
        Some(Command::Completions { shell }) => {
            if let Err(e) = stop_at_once(&stop) {
                return finish(Err(e));
            }
            return completions(shell);
        }
        Some(Command::Batch(args)) => {
            let raw: Vec<String> = std::env::args()
                .skip(1)
                .skip_while(|a| a != "batch")
                .skip(1)
                .collect();
            return match vqm::batch::batch(&args, &raw, &stop) {
                Err(e @ Error::Interrupted(_)) => {
                    eprintln!("vqm: {}", one_line(&redact(&e.to_string())));
                    ExitCode::from(e.exit_code())
                }
                r => finish(r),
            };
        }
        Some(Command::Merge(args)) => {
            if let Err(e) = stop_at_once(&stop) {
                return finish(Err(e));
            }
            return finish(vqm::batch::merge::merge(&args));
        }
        None => top.run,
    };
    // from here a signal that nothing answers within 1.5 s (a FIFO given
    // as the config, an output or an input, with no one at its other end)
    // ends the process with 130
    let opened = Arc::new(AtomicBool::new(false));
    if let Err(e) = watch_opening(stop.clone(), opened.clone()) {
        return finish(Err(e));
    }
    match run(&cli, stop, opened) {
        Ok(code) => code,
        Err(Error::StdoutClosed) => ExitCode::SUCCESS,
        Err(e @ Error::Interrupted(_)) => {
            eprintln!("vqm: {}", one_line(&redact(&e.to_string())));
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprintln!("vqm: error: {}", one_line(&redact(&e.to_string())));
            ExitCode::from(e.exit_code())
        }
    }
}

/// A signal that comes while an input is being opened may find FFmpeg
/// blocked in a read that no flag can end (a pipe whose writer is alive
/// but silent). Nothing has been measured or written before every input is
/// open, so if they are still not open 1.5 s after the signal, the
/// process ends here with 130.
fn watch_opening(stop: Arc<AtomicBool>, opened: Arc<AtomicBool>) -> Result<(), Error> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    let mut incoming = signal_hook::iterator::Signals::new(STOP_SIGNALS)
        .map_err(|e| Error::Internal(format!("cannot install the signal handler: {e}")))?;
    std::thread::spawn(move || {
        // a signal before this watch began set `stop` only
        if !stop.load(Ordering::Acquire) && incoming.forever().next().is_none() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if opened.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // one flag for both sides: whoever sets it first wins, so the run
        // never passes this point while the process is ending here
        if !opened.swap(true, Ordering::AcqRel) {
            vqm::output::file::remove_temporaries();
            eprintln!(
                "vqm: interrupted while opening the inputs and outputs (one is still waiting for data or for the other end of a pipe)"
            );
            std::process::exit(130);
        }
    });
    Ok(())
}

fn run(cli: &Cli, stop: Arc<AtomicBool>, opened: Arc<AtomicBool>) -> Result<ExitCode, Error> {
    let settings = cli.settings()?;
    // Outputs are checked before any input is opened (a bad path fails
    // now) but touched only once the run is under way.
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(p) = &cli.log {
        sinks.push(Box::new(NdjsonSink::new(Output::create(
            p,
            "--log",
            Mode::Streaming,
        )?)));
    }
    if let Some(p) = &cli.summary_json {
        let out = Output::create(p, "--summary-json", Mode::AtEnd)?;
        match cli.summary_format {
            SummaryFormat::Json => sinks.push(Box::new(SummarySink::new(out))),
            SummaryFormat::Vmaf => sinks.push(Box::new(VmafLayoutSink::new(out))),
        }
    }
    if let Some(p) = &cli.csv {
        sinks.push(Box::new(CsvSink::new(Output::create(
            p,
            "--csv",
            Mode::AtEnd,
        )?)));
    }
    if let Some(p) = &cli.summary_csv {
        sinks.push(Box::new(SummaryCsvSink::new(Output::create(
            p,
            "--summary-csv",
            SummaryCsvSink::MODE,
        )?)));
    }
    if let Some(p) = &cli.report {
        if p == "-" {
            return Err(Error::Usage("--report needs a file path".to_string()));
        }
        sinks.push(Box::new(ReportSink::new(
            Output::create(p, "--report", Mode::AtEnd)?,
            cli.worst as usize,
            cli.worst_gap()?,
        )));
    }
    if let Some(dir) = &cli.dump_worst {
        vqm::monitor::worst::prepare_dir(dir)?;
    }
    if !cli.quiet {
        // draws only when stderr is a terminal
        sinks.push(Box::new(ProgressSink::new(cli.live)));
    }
    if let Some(addr) = &cli.prometheus {
        let (sink, local) = PrometheusSink::bind(addr)?;
        if !cli.quiet {
            eprintln!("vqm: serving metrics at http://{local}/metrics");
        }
        sinks.push(Box::new(sink));
    }
    // SIGINT/SIGTERM (`stop`, installed first thing) end the run cleanly
    // (sinks flushed, summary written); a second one ends the process at
    // once.
    // VQM_CPU caps the kernels' code path: scalar (portable), avx2 (AVX2
    // without fused multiply-adds), fma (AVX2 with them) or avx512; by
    // default the best the CPU has. A level the CPU lacks is refused, so a
    // run never says it measured on a path it did not take.
    // set but empty means unset, as for any variable
    if let Ok(name) = std::env::var("VQM_CPU")
        && !name.is_empty()
    {
        use vqm::cpu::{CpuLevel, detected_level, force_level};
        let level = CpuLevel::from_name(&name).ok_or_else(|| {
            Error::Usage(format!(
                "VQM_CPU={name}: choose scalar, avx2, fma or avx512"
            ))
        })?;
        if level > detected_level() {
            return Err(Error::Usage(format!(
                "VQM_CPU={name}: this CPU runs at most {}",
                detected_level().name()
            )));
        }
        force_level(Some(level));
    }
    ffmpeg_next::init()
        .map_err(|e| Error::Internal(format!("FFmpeg initialisation failed: {e}")))?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Quiet);
    let quiet = cli.quiet;
    let warn: Warn = Arc::new(move |msg: &str| {
        if !quiet {
            eprintln!("vqm: warning: {}", one_line(&redact(msg)));
        }
    });
    let report = pipeline::run(&settings, sinks, warn, pipeline::Control { stop, opened })?;
    if !cli.quiet {
        eprint!(
            "{}",
            vqm::output::table::table(&report.header, &report.summaries, &report.timing)
        );
    }
    if report.alerts_fired || report.gates_failed {
        // why the exit code is 3 is said even with -q (without it, the
        // failed gates were warned about already)
        for s in report.summaries.iter().filter(|_| cli.quiet) {
            for g in s.gates.iter().filter(|g| g.failed) {
                let seen = g.value.map_or("missing".to_string(), |v| v.to_string());
                eprintln!(
                    "vqm: '{}': quality gate failed: {} (value {seen})",
                    s.path, g.gate
                );
            }
        }
        let what = match (report.alerts_fired, report.gates_failed) {
            (true, true) => "an alert rule fired and a quality gate failed",
            (true, false) => "an alert rule fired",
            _ => "a quality gate failed",
        };
        eprintln!("vqm: {what} (exit 3)");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
