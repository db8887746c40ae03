//! The ladder answer: several rungs against one reference give one JSON
//! document (an array of summaries with each rung's resolution, codec and
//! bitrate, and its place on the rate-quality hull) and a ladder table.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

/// The video stream's bit rate as ffprobe reads it from the container.
fn probe_bitrate(path: &str) -> u64 {
    let o = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=bit_rate", "-of", "csv=p=0", path])
        .output()
        .expect("ffprobe (Debian package ffmpeg)");
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// Whether rung `i` is on the upper rate-quality hull, by definition: no
/// other rung has no more bits and a better score, and it is not under
/// the chord between two undominated rungs on either side of it.
fn on_hull(p: &[(f64, f64)], i: usize) -> bool {
    let dominated = |i: usize| (0..p.len()).any(|j| j != i && p[j].0 <= p[i].0 && p[j].1 > p[i].1);
    if dominated(i) {
        return false;
    }
    let free: Vec<usize> = (0..p.len()).filter(|j| !dominated(*j)).collect();
    for &a in &free {
        for &b in &free {
            if p[a].0 < p[i].0 && p[i].0 < p[b].0 {
                let t = (p[i].0 - p[a].0) / (p[b].0 - p[a].0);
                if p[i].1 <= p[a].1 + t * (p[b].1 - p[a].1) {
                    return false;
                }
            }
        }
    }
    true
}

#[test]
fn a_ladder_gives_one_document_with_each_rungs_facts_and_hull_mark() {
    let dir = tempfile::tempdir().unwrap();
    let reference = sample("ref.mp4");
    // two small rungs, one large, and a small one at a bitrate the large
    // one beats
    let mut rungs = Vec::new();
    for (name, size, crf) in [
        ("a180", "320:180", "34"),
        ("b180", "320:180", "8"),
        ("c360", "640:360", "27"),
        ("d180", "320:180", "24"),
    ] {
        let out = dir.path().join(format!("{name}.mp4"));
        ffmpeg(&[
            "-i",
            &reference,
            "-vf",
            &format!("scale={size}"),
            "-c:v",
            "libx264",
            "-crf",
            crf,
            s(&out),
        ]);
        rungs.push(s(&out).to_string());
    }
    let sum = dir.path().join("ladder.json");
    let mut args = vec![reference.as_str()];
    args.extend(rungs.iter().map(|r| r.as_str()));
    let csv = dir.path().join("ladder.csv");
    args.extend([
        "-m",
        "psnr",
        "--summary-json",
        s(&sum),
        "--summary-csv",
        s(&csv),
    ]);
    let (code, _, err) = outcome(&vqm(&args));
    assert_eq!(code, 0, "{err}");
    // json.load-able: one document, an array in input order
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    let all = doc.as_array().expect("an array of summaries");
    assert_eq!(all.len(), 4);
    let mut points = Vec::new();
    for (i, (x, path)) in all.iter().zip(&rungs).enumerate() {
        assert_eq!(x["input"], i);
        assert_eq!(x["codec"], "h264");
        let want = if path.contains("360") {
            "640x360"
        } else {
            "320x180"
        };
        assert_eq!(x["resolution"], want);
        assert_eq!(
            x["bitrate"].as_u64().unwrap(),
            probe_bitrate(path),
            "{path}"
        );
        let q = x["metrics"]["psnr_avg"]["mean"].as_f64().unwrap();
        points.push((x["bitrate"].as_f64().unwrap(), q));
    }
    let mut by_rate: Vec<usize> = (0..4).collect();
    by_rate.sort_by(|a, b| points[*a].0.total_cmp(&points[*b].0));
    let mut off = 0;
    for (i, x) in all.iter().enumerate() {
        let m = &x["ladder"];
        assert_eq!(m["quality_key"], "psnr_avg");
        assert_eq!(m["quality"].as_f64().unwrap(), points[i].1);
        let rank = by_rate.iter().position(|j| *j == i).unwrap() + 1;
        assert_eq!(m["rank"], rank, "{x}");
        assert_eq!(m["on_hull"], on_hull(&points, i), "{points:?} {x}");
        off += usize::from(!on_hull(&points, i));
        // dominated_by names a rung with no more bits and a better score
        if let Some(j) = m["dominated_by"].as_u64() {
            let j = j as usize;
            assert!(points[j].0 <= points[i].0 && points[j].1 > points[i].1);
        }
    }
    // the CSV summary: the same figures, a row per rung in input order
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(lines.len(), 5, "{text}");
    let head = &lines[0];
    assert_eq!(
        head[..11],
        [
            "input",
            "path",
            "resolution",
            "codec",
            "bitrate",
            "frames",
            "unpaired_reference",
            "unpaired_distorted",
            "psnr_y_mean",
            "psnr_y_harmonic_mean",
            "psnr_y_p5"
        ]
    );
    let col = |name: &str| head.iter().position(|h| *h == name).expect(name);
    for (i, (row, x)) in lines[1..].iter().zip(all).enumerate() {
        assert_eq!(row.len(), head.len(), "{text}");
        assert_eq!(row[col("path")], rungs[i]);
        assert_eq!(row[col("resolution")], x["resolution"]);
        assert_eq!(row[col("bitrate")], x["bitrate"].to_string());
        assert_eq!(row[col("frames")], "75");
        for f in ["mean", "harmonic_mean", "p5"] {
            let v: f64 = row[col(&format!("psnr_avg_{f}"))].parse().unwrap();
            assert_eq!(v, x["metrics"]["psnr_avg"][f].as_f64().unwrap(), "{f}");
        }
        assert_eq!(row[col("on_hull")], on_hull(&points, i).to_string());
        assert_eq!(row[col("ladder_rank")], x["ladder"]["rank"].to_string());
        let dominated = &x["ladder"]["dominated_by"];
        let want = if dominated.is_null() {
            String::new()
        } else {
            dominated.to_string()
        };
        assert_eq!(row[col("dominated_by")], want);
    }
    // the 8-crf small rung costs more than the large one for less
    assert!(off >= 1, "{points:?}");
    assert!(all[1]["ladder"]["dominated_by"].is_u64(), "{:?}", all[1]);
    // the table: a row per rung, by bitrate
    let table = err.split("ladder, by bitrate").nth(1).expect(&err);
    let rows: Vec<&str> = table.lines().skip(2).take(4).collect();
    for (row, i) in rows.iter().zip(&by_rate) {
        let name = std::path::Path::new(&rungs[*i]).file_name().unwrap();
        assert!(row.contains(name.to_str().unwrap()), "{table}");
    }
    // one distorted input: the summary object itself
    let (code, _, err) = outcome(&vqm(&[
        &reference,
        &rungs[2],
        "--summary-json",
        s(&sum),
        "-q",
    ]));
    assert_eq!(code, 0, "{err}");
    let one: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    assert_eq!(one["type"], "summary");
    assert!(one["ladder"].is_null());
}

#[test]
fn the_readmes_ladder_example_is_what_vqm_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("ladder, by bitrate (hull")
        .nth(1)
        .expect("README's ladder example");
    let want: Vec<String> = block
        .lines()
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('$'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(want.len(), 4, "{want:?}");
    let mut args = vec![sample("ref.mp4")];
    for r in ["r180", "r270", "r360"] {
        args.push(s(&root().join(format!("samples/ladder/{r}.mp4"))).to_string());
    }
    let mut argv: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    argv.extend(["-m", "psnr,ssim,vmaf"]);
    let (code, _, err) = outcome(&vqm(&argv));
    assert_eq!(code, 0, "{err}");
    let table = err.split("ladder, by bitrate (hull").nth(1).expect(&err);
    let got: Vec<String> = table
        .lines()
        .skip(1)
        .take(4)
        .map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(&format!("{}/", root().display()), "")
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn every_scale_algorithm_resizes_as_ffmpegs_scale_filter() {
    let dir = tempfile::tempdir().unwrap();
    let reference = sample("ref.mp4");
    // a lossless 320x180 rung: what vqm resizes is exactly what FFmpeg's
    // scale filter gets
    let small = dir.path().join("small.mkv");
    ffmpeg(&[
        "-i",
        &reference,
        "-vf",
        "scale=320:180",
        "-c:v",
        "ffv1",
        s(&small),
    ]);
    for algo in ["bicubic", "lanczos", "bilinear", "spline", "neighbor"] {
        let up = dir.path().join(format!("up_{algo}.mkv"));
        let vf = format!("scale=640:360:flags={algo}+accurate_rnd+full_chroma_int");
        ffmpeg(&["-i", s(&small), "-vf", &vf, "-c:v", "ffv1", s(&up)]);
        let run = |d: &str, extra: &[&str]| {
            let mut args = vec![reference.as_str(), d, "-m", "psnr", "--log", "-", "-q"];
            args.extend(extra);
            records_ok(&vqm(&args))
        };
        let ours = run(s(&small), &["--scale-algo", algo]);
        let theirs = run(s(&up), &[]);
        assert_eq!(ours[0]["scale_algo"], algo);
        let conversion = ours[0]["distorted"][0]["conversion"].as_str().unwrap();
        assert!(conversion.contains(algo), "{conversion}");
        let (a, b) = (of_type(&ours, "frame"), of_type(&theirs, "frame"));
        assert_eq!(a.len(), 75);
        for (x, y) in a.iter().zip(&b) {
            for k in ["psnr_y", "psnr_u", "psnr_v"] {
                assert_eq!(x[k], y[k], "{algo} frame {}: {k}", x["frame"]);
            }
        }
    }
    let (code, _, err) = outcome(&vqm(&[&reference, s(&small), "--scale-algo", "area"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--scale-algo") && err.contains("lanczos"),
        "{err}"
    );
}

/// FFmpeg's psnr filter on `filters` applied to both inputs: each frame's
/// (mse_y, mse_u, mse_v), as its stats file prints them (two decimals).
fn ffmpeg_mse_through(
    reference: &str,
    distorted: &str,
    filters: &str,
    dir: &Path,
) -> Vec<[f64; 3]> {
    let stats = dir.join("psnr.log");
    let graph = format!(
        "[0:v]{filters}[d];[1:v]{filters}[r];[d][r]psnr=stats_file={}",
        stats.display()
    );
    ffmpeg(&[
        "-i", distorted, "-i", reference, "-lavfi", &graph, "-f", "null", "-",
    ]);
    std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .map(|l| {
            let get = |k: &str| -> f64 {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            [get("mse_y:"), get("mse_u:"), get("mse_v:")]
        })
        .collect()
}

#[test]
fn ffmpeg_filters_run_on_the_inputs_as_in_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let (r, d) = (sample("ref.mp4"), sample("dist.mp4"));
    // a crop (the size changes) and yadif (it holds a picture back, so the
    // last one comes out only when the graph is flushed)
    for filters in ["crop=320:180:10:20", "yadif", "crop=300:160:4:8,hflip"] {
        let want = ffmpeg_mse_through(&r, &d, filters, dir.path());
        let recs = records_ok(&vqm(&[
            &r,
            &d,
            "-m",
            "mse",
            "--ref-filter",
            filters,
            "--dist-filter",
            filters,
            "--log",
            "-",
            "-q",
        ]));
        assert_eq!(recs[0]["reference"]["filter"], filters);
        assert_eq!(recs[0]["distorted"][0]["filter"], filters);
        if let Some(size) = filters.strip_prefix("crop=") {
            let mut it = size.split(':');
            let w: u64 = it.next().unwrap().parse().unwrap();
            assert_eq!(recs[0]["reference"]["width"], w);
        }
        let frames = of_type(&recs, "frame");
        assert_eq!(frames.len(), want.len(), "{filters}");
        assert_eq!(count_events(&recs, "format_change"), 0, "{filters}");
        for (f, w) in frames.iter().zip(&want) {
            for (k, w) in ["mse_y", "mse_u", "mse_v"].iter().zip(w) {
                let got = f[*k].as_f64().unwrap();
                assert!(
                    (got - w).abs() <= 0.0051,
                    "{filters} frame {}: {k} {got} vs FFmpeg {w}",
                    f["frame"]
                );
            }
        }
    }
    // a graph FFmpeg refuses is a one-line input error
    let (code, _, err) = outcome(&vqm(&[&r, &d, "--dist-filter", "nosuchfilter"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("nosuchfilter") && err.contains("dist.mp4"),
        "{err}"
    );
}

fn count_events(recs: &[Value], kind: &str) -> usize {
    recs.iter().filter(|r| r["kind"] == kind).count()
}
