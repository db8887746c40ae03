//! Pipes, FIFOs and raw files: an input that ends early or never starts
//! cannot hang vqm, a signal ends a run whatever it waits on, and inputs
//! FFmpeg would misread get a message that names the way out.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(ok.success());
}

fn spawn(args: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vqm"))
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vqm runs")
}

/// Waits for `child` at most `limit`; kills it and fails the test if it
/// is still running then.
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> (ExitStatus, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, t0.elapsed());
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: vqm still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

fn term(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A FIFO that a writer fills with `bytes` and closes: vqm reads what it
/// got (FIFOs are never opened twice) and fails naming it, at once.
#[test]
fn a_fifo_that_ends_early_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let data = std::fs::read(&d).unwrap();
    for n in [0usize, 1, 100, 4096] {
        let f = dir.path().join(format!("f{n}"));
        mkfifo(&f);
        let mut child = spawn(&[&r, s(&f), "-q"], Stdio::null());
        let chunk = data[..n].to_vec();
        let path = f.clone();
        let writer = std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            // vqm may have stopped reading: a broken pipe is fine
            let _ = w.write_all(&chunk);
        });
        let (st, _) = wait_within(&mut child, Duration::from_secs(10), &format!("{n} bytes"));
        writer.join().unwrap();
        let err = stderr_of(&mut child);
        assert_eq!(st.code(), Some(1), "{n} bytes: {err}");
        assert!(err.contains(&format!("input '{}'", s(&f))), "{err}");
        if n == 0 {
            assert!(err.contains("is empty"), "{err}");
        }
    }
}

/// A whole stream through a FIFO measures like the file itself.
#[test]
fn a_whole_stream_through_a_fifo_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let f = dir.path().join("f");
    mkfifo(&f);
    let data = std::fs::read(&d).unwrap();
    let path = f.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        w.write_all(&data).unwrap();
    });
    let through = vqm(&[&r, s(&f), "--summary-json", "-", "-q"]);
    writer.join().unwrap();
    let direct = vqm(&[&r, &d, "--summary-json", "-", "-q"]);
    let a = &records_ok(&through)[0]["metrics"];
    let b = &records_ok(&direct)[0]["metrics"];
    assert_eq!(a, b);
}

/// No writer ever comes: SIGTERM ends the wait (exit 130) at once, and
/// no output is created.
#[test]
fn sigterm_ends_a_wait_for_a_fifo_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = c420();
    let f = dir.path().join("f");
    mkfifo(&f);
    let log = dir.path().join("log.ndjson");
    let mut child = spawn(&[&r, s(&f), "-q", "--log", s(&log)], Stdio::null());
    std::thread::sleep(Duration::from_millis(500));
    term(&child);
    let (st, took) = wait_within(&mut child, Duration::from_secs(5), "no writer");
    let err = stderr_of(&mut child);
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(err.contains("interrupted") && err.contains(s(&f)), "{err}");
    assert!(!log.exists());
}

/// Standard input whose writer sent a byte and went silent: FFmpeg is
/// blocked in a read no flag can end, and SIGTERM still ends the run
/// within 2 s (exit 130, nothing written).
#[test]
fn sigterm_ends_a_run_blocked_on_a_silent_stdin() {
    let (r, _) = c420();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("out.csv");
    let mut child = spawn(&[&r, "-", "-q", "--csv", s(&csv)], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"G").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    term(&child);
    let (st, took) = wait_within(&mut child, Duration::from_secs(5), "silent stdin");
    drop(stdin);
    let err = stderr_of(&mut child);
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(err.contains("interrupted"), "{err}");
    // the output's temporary file is gone too: nothing was written
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A FIFO whose writer goes silent mid-run: SIGTERM ends the run within
/// 2 s, and the log holds whole lines and the summary of what was done.
#[test]
fn sigterm_ends_a_run_whose_fifo_went_silent_and_keeps_the_records() {
    let dir = tempfile::tempdir().unwrap();
    // MPEG-TS: a stream read front to back, cut anywhere
    let r = dir.path().join("ref.ts");
    let d = dir.path().join("dist.ts");
    ffmpeg(&[
        "-i",
        &sample("ref.mp4"),
        "-c",
        "copy",
        "-f",
        "mpegts",
        s(&r),
    ]);
    ffmpeg(&[
        "-i",
        &sample("dist.mp4"),
        "-c",
        "copy",
        "-f",
        "mpegts",
        s(&d),
    ]);
    let r = s(&r).to_string();
    let f = dir.path().join("f");
    mkfifo(&f);
    let data = std::fs::read(&d).unwrap();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let path = f.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = w.write_all(&data[..data.len() / 2]);
        // silent, but open, until the test is done
        let _ = hold_rx.recv();
    });
    let log = dir.path().join("log.ndjson");
    let mut child = spawn(&[&r, s(&f), "-q", "--log", s(&log)], Stdio::null());
    // wait for the first frames of the half that arrived
    let t0 = Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no records");
        std::thread::sleep(Duration::from_millis(20));
    }
    term(&child);
    let (st, took) = wait_within(&mut child, Duration::from_secs(5), "silent FIFO");
    hold_tx.send(()).unwrap();
    writer.join().unwrap();
    let err = stderr_of(&mut child);
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let recs = ndjson(&std::fs::read_to_string(&log).unwrap());
    let summary = of_type(&recs, "summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["interrupted"], true);
    assert!(summary[0]["frames"].as_u64().unwrap() >= 1);
}

/// An empty standard input (a pipe closed at once, or an empty file) says
/// so.
#[test]
fn an_empty_stdin_says_it_is_empty() {
    let (r, _) = c420();
    let mut child = spawn(&[&r, "-", "-q"], Stdio::piped());
    drop(child.stdin.take());
    let (st, _) = wait_within(&mut child, Duration::from_secs(10), "empty pipe");
    let err = stderr_of(&mut child);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("input '-'") && err.contains("is empty"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut child = spawn(
        &[&r, "-", "-q"],
        Stdio::from(std::fs::File::open(&empty).unwrap()),
    );
    let (st, _) = wait_within(&mut child, Duration::from_secs(10), "empty file");
    let err = stderr_of(&mut child);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("is empty"), "{err}");
}

/// Raw frames in a `.bin` file: FFmpeg would read them as text art; vqm
/// refuses and names the options for raw video.
#[test]
fn a_raw_bin_file_gets_the_raw_video_options() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = c420();
    let bin = dir.path().join("frames.bin");
    ffmpeg(&["-i", &r, "-f", "rawvideo", "-pix_fmt", "yuv420p", s(&bin)]);
    let (code, _, err) = outcome(&vqm(&[&r, s(&bin), "-q"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("frames.bin") && err.contains("--input-format rawvideo"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // a size FFmpeg's text-art demuxer accepts: read as text art, refused
    let small = dir.path().join("small.bin");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "10",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        s(&small),
    ]);
    let (code, _, err) = outcome(&vqm(&[s(&small), s(&small), "-q"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("text art") && err.contains("--input-format rawvideo"),
        "{err}"
    );
}

/// A raw file read with the wrong pixel format: 8-bit frames read as
/// 10-bit are refused (their samples pass the 10-bit maximum); 10-bit
/// frames read as 8-bit are warned about; a size that is not a whole number
/// of frames is warned about.
#[test]
fn a_raw_file_with_the_wrong_pixel_format_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = c420();
    let (w, h) = picture_size(&r);
    let size = format!("{w}x{h}");
    let y8 = dir.path().join("a8.yuv");
    let y10 = dir.path().join("a10.yuv");
    ffmpeg(&["-i", &r, "-f", "rawvideo", "-pix_fmt", "yuv420p", s(&y8)]);
    ffmpeg(&[
        "-i",
        &r,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p10le",
        s(&y10),
    ]);
    let raw = |file: &Path, fmt: &str| {
        outcome(&vqm(&[
            s(file),
            s(file),
            "--input-format",
            "rawvideo",
            "--size",
            &size,
            "--pix-fmt",
            fmt,
        ]))
    };
    let (code, _, err) = raw(&y8, "yuv420p10le");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("10-bit maximum 1023") && err.contains("a8.yuv"),
        "{err}"
    );

    let (code, _, err) = raw(&y10, "yuv420p");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning") && err.contains("yuv420p10le?"),
        "{err}"
    );

    let (code, _, err) = raw(&y8, "yuv420p");
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");

    let cut = dir.path().join("cut.yuv");
    let bytes = std::fs::read(&y8).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let (_, _, err) = raw(&cut, "yuv420p");
    assert!(
        err.contains("not a whole number of") && err.contains("check --size and --pix-fmt"),
        "{err}"
    );
}

/// Numbers out of range, negative ones included, get a message that says
/// what is allowed.
#[test]
fn a_negative_count_is_out_of_range_not_an_unknown_flag() {
    let (r, d) = c420();
    for (flag, says) in [
        ("--threads", "from 1 to 1024"),
        ("--frames", "at least 1"),
        ("--ref-offset", "at least 0"),
        ("--stream", "from 0 to 1000"),
    ] {
        let (code, _, err) = outcome(&vqm(&[&r, &d, flag, "-1"]));
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(
            err.contains(&format!("invalid value '-1' for '{flag}")) && err.contains(says),
            "{flag}: {err}"
        );
    }
}

/// `ffmpeg -f nut` re-encodes to MPEG-4 unless told otherwise: a piped
/// input that arrives so is measured with a warning naming the way out;
/// raw video through the same pipe is not.
#[test]
fn a_pipe_that_reencodes_is_pointed_out() {
    let (r, d) = c420();
    let dir = tempfile::tempdir().unwrap();
    for (codec, warned) in [(None, true), (Some("rawvideo"), false)] {
        let nut = dir
            .path()
            .join(format!("{}.nut", codec.unwrap_or("default")));
        let mut args = vec!["-i", d.as_str()];
        if let Some(c) = codec {
            args.extend(["-c:v", c]);
        }
        args.extend(["-f", "nut", s(&nut)]);
        ffmpeg(&args);
        let mut child = spawn(
            &[&r, "-", "-m", "psnr"],
            Stdio::from(std::fs::File::open(&nut).unwrap()),
        );
        let (st, _) = wait_within(&mut child, Duration::from_secs(60), "nut on stdin");
        let err = stderr_of(&mut child);
        assert_eq!(st.code(), Some(0), "{err}");
        let said =
            err.contains("'-' arrives as MPEG-4 video in NUT") && err.contains("-c:v rawvideo");
        assert_eq!(said, warned, "{codec:?}: {err}");
    }
}

/// A reference smaller than a distorted input is almost always swapped
/// arguments: vqm says so (and still measures what it was asked to).
#[test]
fn a_reference_smaller_than_the_distorted_input_is_pointed_out() {
    let (r, _) = c420();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.mkv");
    ffmpeg(&["-i", &r, "-vf", "scale=168:162", "-c:v", "ffv1", s(&small)]);
    let (code, _, err) = outcome(&vqm(&[s(&small), &r, "-m", "psnr"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "distorted '{r}' (336x324) has more pixels than the reference"
        )) && err.contains("vqm REFERENCE DISTORTED"),
        "{err}"
    );
    let (code, _, err) = outcome(&vqm(&[&r, s(&small), "-m", "psnr"]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("more pixels"), "{err}");
}

/// Inputs are opened together, not one after another: a distorted FIFO
/// gets its reader while the reference still waits for its writer (a
/// live input likewise listens from the start). Here the reference's
/// writer starts only once the distorted FIFO has a reader: opened one
/// after the other, the run could never start.
#[test]
fn inputs_are_opened_together() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = c420();
    let (rf, df) = (dir.path().join("r"), dir.path().join("d"));
    mkfifo(&rf);
    mkfifo(&df);
    let mut child = spawn(
        &[s(&rf), s(&df), "--summary-json", "-", "-q"],
        Stdio::null(),
    );
    let (rdata, ddata) = (std::fs::read(&r).unwrap(), std::fs::read(&d).unwrap());
    let (rpath, dpath) = (rf.clone(), df.clone());
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let dwriter = std::thread::spawn(move || {
        // blocks until vqm opens the FIFO for reading
        let mut w = std::fs::OpenOptions::new().write(true).open(dpath).unwrap();
        opened_tx.send(()).unwrap();
        // vqm may stop reading early on failure: a broken pipe is its to report
        let _ = w.write_all(&ddata);
    });
    let reached = opened_rx.recv_timeout(Duration::from_secs(20)).is_ok();
    if !reached {
        let _ = child.kill();
        let _ = child.wait();
        // unblock the writer's open so the thread ends
        let _ = std::fs::File::open(&df);
        let _ = dwriter.join();
        panic!("the distorted FIFO got no reader while the reference waited for its writer");
    }
    let rwriter = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(rpath).unwrap();
        let _ = w.write_all(&rdata);
    });
    let (st, _) = wait_within(&mut child, Duration::from_secs(60), "two FIFOs");
    dwriter.join().unwrap();
    rwriter.join().unwrap();
    let err = stderr_of(&mut child);
    assert_eq!(st.code(), Some(0), "{err}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let direct = records_ok(&vqm(&[&r, &d, "--summary-json", "-", "-q"]));
    assert_eq!(ndjson(&out)[0]["metrics"], direct[0]["metrics"]);
}
