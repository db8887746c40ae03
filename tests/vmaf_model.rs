//! `--vmaf-model FILE` that libvmaf 2.3.1 would crash on, misread or wait
//! on forever: refused with exit 2 and one line naming the file and the
//! cause, before any output is touched, by a run and by `vqm batch`
//! (`--check` too); and a model libvmaf itself refuses is said to be one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Runs vqm with `args`; a run that has not ended in a minute is killed
/// and fails the test (libvmaf waits forever on a FIFO).
fn run(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vqm"));
    for k in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "VQM_SHARDS"] {
        c.env_remove(k);
    }
    let mut child = c
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vqm runs");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().expect("kill");
            child.wait().expect("wait");
            panic!("vqm {args:?} still runs after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// libvmaf's v0.6.1neg model, as a JSON value.
fn neg() -> Value {
    let text = std::fs::read_to_string(fixture("models/vmaf_v0.6.1neg.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn neg_text() -> String {
    std::fs::read_to_string(fixture("models/vmaf_v0.6.1neg.json")).unwrap()
}

/// The neg model with `edit` applied to its `model_dict`.
fn edited(edit: impl Fn(&mut serde_json::Map<String, Value>)) -> String {
    let mut v = neg();
    edit(v["model_dict"].as_object_mut().unwrap());
    v.to_string()
}

/// How each bad model file is made in `dir`.
enum Bad {
    Text(String),
    Fifo,
    Directory,
    Sparse(u64),
}

/// Makes `bad` at `dir/name`.
fn make(dir: &Path, name: &str, bad: &Bad) -> PathBuf {
    let p = dir.join(name);
    match bad {
        Bad::Text(t) => std::fs::write(&p, t).unwrap(),
        Bad::Fifo => {
            let c = std::ffi::CString::new(s(&p)).unwrap();
            // SAFETY: a valid C string and a mode; mkfifo only creates a
            // node
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        Bad::Directory => std::fs::create_dir(&p).unwrap(),
        Bad::Sparse(n) => std::fs::File::create(&p).unwrap().set_len(*n).unwrap(),
    }
    p
}

/// Every bad model file: its name, how it is made, what the message says.
fn bad_models() -> Vec<(&'static str, Bad, &'static str)> {
    let text = neg_text();
    let svm_end = text.find("\"feature_names\"").unwrap();
    vec![
        (
            "empty-dict.json",
            Bad::Text(r#"{"model_dict": {}}"#.into()),
            "not a VMAF model: \"model_dict\" has no \"model_type\"",
        ),
        (
            "truncated.json",
            Bad::Text(r#"{"model_dict""#.into()),
            "not JSON: EOF while parsing",
        ),
        (
            "half.json",
            Bad::Text(text[..text.len() / 2].into()),
            "not JSON: EOF while parsing",
        ),
        (
            "after-svm.json",
            Bad::Text(text[..svm_end].into()),
            "not JSON: EOF while parsing",
        ),
        (
            "last-brace.json",
            Bad::Text(text.trim_end()[..text.trim_end().len() - 1].into()),
            "not JSON: EOF while parsing",
        ),
        (
            "huge.json",
            Bad::Text(text.replacen("100.0", "1e999", 1)),
            "not JSON: number out of range",
        ),
        (
            "nan.json",
            Bad::Text(text.replacen("100.0", "NaN", 1)),
            "not JSON: expected value",
        ),
        (
            "twice.json",
            Bad::Text(text.replacen(
                "\"model_dict\": {",
                "\"model_dict\": {\"norm_type\": \"none\", ",
                1,
            )),
            "the key \"norm_type\" appears twice",
        ),
        (
            "slopes.json",
            Bad::Text(edited(|d| {
                drop(d.insert("slopes".into(), json!([1, 2, 3])))
            })),
            "\"slopes\" has 3 numbers; with 6 features it needs 7",
        ),
        (
            "no-svm.json",
            Bad::Text(edited(|d| drop(d.remove("model")))),
            "\"model_dict\" has no \"model\"",
        ),
        (
            "svm-header.json",
            Bad::Text(edited(|d| {
                d.insert("model".into(), json!("svm_type nu_svr\nkernel_type rbf\n"));
            })),
            "\"model\" (the SVM): no 'SV' line",
        ),
        ("fifo.json", Bad::Fifo, "it is a FIFO, not a regular file"),
        (
            "dir.json",
            Bad::Directory,
            "it is a directory, not a regular file",
        ),
        (
            "sparse.json",
            Bad::Sparse((64 << 20) + 1),
            "it is larger than 64 MiB",
        ),
    ]
}

#[test]
fn a_malformed_model_file_is_refused_before_any_output_is_touched() {
    let (r, d) = c420();
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("keep.ndjson");
    let summary = t.path().join("keep.summary.json");
    let kept = b"{\"type\":\"kept\"}\n";
    for (name, bad, says) in bad_models() {
        let model = make(t.path(), name, &bad);
        std::fs::write(&log, kept).unwrap();
        std::fs::write(&summary, kept).unwrap();
        let o = run(&[
            &r,
            &d,
            "-m",
            "vmaf",
            "--vmaf-model",
            s(&model),
            "--log",
            s(&log),
            "--summary-json",
            s(&summary),
            "-q",
        ]);
        let (_, _, err) = outcome(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {:?} {err}", o.status);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains(&format!("cannot load the model file '{}'", s(&model))),
            "{name}: {err}"
        );
        assert!(err.contains(says), "{name}: wanted {says}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(std::fs::read(&log).unwrap(), kept, "{name}: --log");
        assert_eq!(
            std::fs::read(&summary).unwrap(),
            kept,
            "{name}: --summary-json"
        );
    }
}

#[test]
fn batch_check_and_batch_runs_refuse_a_malformed_model_by_name() {
    let (r, d) = c420();
    let t = tempfile::tempdir().unwrap();
    let manifest = t.path().join("m.csv");
    std::fs::write(&manifest, format!("id,reference,distorted\na,{r},{d}\n")).unwrap();
    let out = t.path().join("out");
    for (name, bad, says) in bad_models() {
        let model = make(t.path(), name, &bad);
        for extra in [&["--check"][..], &["--out", s(&out)][..]] {
            let mut args = vec!["batch", s(&manifest), "-m", "vmaf"];
            args.extend(["--vmaf-model", s(&model)]);
            args.extend(extra);
            let o = run(&args);
            let (_, _, err) = outcome(&o);
            assert_eq!(o.status.code(), Some(2), "{name} {extra:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{name} {extra:?}: {err}");
            assert!(
                err.contains(s(&model)) && err.contains(says),
                "{name} {extra:?}: {err}"
            );
            assert!(!err.contains("signal"), "{name} {extra:?}: {err}");
        }
        let results = std::fs::read_dir(&out).map_or(0, |d| d.count());
        assert_eq!(results, 0, "{name}: the batch wrote results");
    }
}

#[test]
fn a_model_libvmaf_cannot_use_says_why_without_the_metrics_list() {
    let (r, d) = c420();
    let t = tempfile::tempdir().unwrap();
    // the float models: libvmaf here has the integer features only
    let float = edited(|d| {
        for f in d["feature_names"].as_array_mut().unwrap() {
            *f = json!(f.as_str().unwrap().replace("_integer", ""));
        }
    });
    let range = edited(|d| d["feature_opts_dicts"][0]["adm_enhn_gain_limit"] = json!(0.5));
    for (name, text, says) in [
        ("float.json", float, "float features (VMAF_feature_*)"),
        (
            "range.json",
            range,
            "\"feature_opts_dicts\" is out of its range",
        ),
    ] {
        let model = make(t.path(), name, &Bad::Text(text));
        let o = run(&[&r, &d, "-m", "vmaf", "--vmaf-model", s(&model), "-q"]);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 2, "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!err.contains("can run at this size"), "{name}: {err}");
    }
    let o = run(&[&r, &d, "-m", "vmaf,psnr", "--vmaf-model", "vmaf_v9", "-q"]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim_end(),
        "vqm: error: vmaf: no built-in model 'vmaf_v9'"
    );
}

#[test]
fn a_bootstrap_collection_file_still_loads_by_path() {
    let (r, d) = c420();
    let t = tempfile::tempdir().unwrap();
    let mut one = neg();
    one["model_dict"]["model_type"] = json!("BOOTSTRAP_LIBSVMNUSVR");
    let collection = json!({"0": one, "1": one, "2": one});
    let model = make(t.path(), "b.json", &Bad::Text(collection.to_string()));
    let recs = records_ok(&run(&[
        &r,
        &d,
        "-m",
        "vmaf",
        "--vmaf-model",
        s(&model),
        "--log",
        "-",
        "-q",
    ]));
    let frame = of_type(&recs, "frame")[0];
    // three copies of one model agree: the interval is the score
    let v = |k: &str| frame[k].as_f64().unwrap_or_else(|| panic!("{k}: {frame}"));
    assert!(
        (v("vmaf_bagging") - v("vmaf_ci_p95_lo")).abs() < 1e-9,
        "{frame}"
    );
    assert!(v("vmaf_stddev").abs() < 1e-9, "{frame}");
}
