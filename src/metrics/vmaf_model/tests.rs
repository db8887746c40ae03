//! The model checks against libvmaf's own models (its built-in ones, as
//! linked into vqm, and the files of its source) and against each thing
//! libvmaf 2.3.1 would fail, misread or crash on.

use super::*;
use serde_json::{Value, json};

// libvmaf's built-in models, as its build embeds them (model.c reads
// them by these names)
unsafe extern "C" {
    static src_vmaf_v0_6_1_json: u8;
    static src_vmaf_v0_6_1_json_len: i32;
    static src_vmaf_b_v0_6_3_json: u8;
    static src_vmaf_b_v0_6_3_json_len: i32;
    static src_vmaf_v0_6_1neg_json: u8;
    static src_vmaf_v0_6_1neg_json_len: i32;
    static src_vmaf_4k_v0_6_1_json: u8;
    static src_vmaf_4k_v0_6_1_json_len: i32;
}

/// libvmaf's built-in models by name, as text.
fn built_ins() -> Vec<(&'static str, String)> {
    // SAFETY: libvmaf's build defines each as `len` bytes of JSON text.
    let text = |data: *const u8, len: i32| unsafe {
        String::from_utf8(std::slice::from_raw_parts(data, len as usize).to_vec()).unwrap()
    };
    // SAFETY: reading the lengths, statics libvmaf never writes.
    unsafe {
        vec![
            (
                "vmaf_v0.6.1",
                text(&raw const src_vmaf_v0_6_1_json, src_vmaf_v0_6_1_json_len),
            ),
            (
                "vmaf_b_v0.6.3",
                text(
                    &raw const src_vmaf_b_v0_6_3_json,
                    src_vmaf_b_v0_6_3_json_len,
                ),
            ),
            (
                "vmaf_v0.6.1neg",
                text(
                    &raw const src_vmaf_v0_6_1neg_json,
                    src_vmaf_v0_6_1neg_json_len,
                ),
            ),
            (
                "vmaf_4k_v0.6.1",
                text(
                    &raw const src_vmaf_4k_v0_6_1_json,
                    src_vmaf_4k_v0_6_1_json_len,
                ),
            ),
        ]
    }
}

fn v061() -> String {
    built_ins().swap_remove(0).1
}

/// The integer features of the v0.6.x models, in their order.
const INTEGER: [&str; 6] = [
    "VMAF_integer_feature_adm2_score",
    "VMAF_integer_feature_motion2_score",
    "VMAF_integer_feature_vif_scale0_score",
    "VMAF_integer_feature_vif_scale1_score",
    "VMAF_integer_feature_vif_scale2_score",
    "VMAF_integer_feature_vif_scale3_score",
];

#[test]
fn libvmafs_built_in_models_pass() {
    let models = built_ins();
    assert!(
        models[1].1.len() > 400_000,
        "the bootstrap model is the largest"
    );
    for (name, text) in models {
        let (n, features) = check(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(n, if name.contains("_b_") { 21 } else { 1 }, "{name}");
        assert_eq!(features, INTEGER, "{name}");
        assert!((text.len() as u64) < MAX_MODEL_BYTES / 100, "{name}");
    }
}

/// libvmaf's source as the libvmaf-sys crate ships it, when its crate
/// source is where cargo unpacks it (`$CARGO_HOME/registry/src/*/`).
fn source_models() -> Vec<std::path::PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    let registries = home
        .map(|h| h.join("registry/src"))
        .and_then(|p| p.read_dir().ok());
    for reg in registries.into_iter().flatten().flatten() {
        for krate in reg.path().read_dir().into_iter().flatten().flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name.starts_with("libvmaf-sys-") {
                dirs.push(krate.path().join("vmaf/model"));
            }
        }
    }
    let mut files = Vec::new();
    while let Some(d) = dirs.pop() {
        for e in d.read_dir().into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn every_model_file_of_libvmafs_source_and_the_fixture_passes() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/models/vmaf_v0.6.1neg.json"
    );
    let m = read(fixture).unwrap();
    assert_eq!(
        (m.models, m.features),
        (1, INTEGER.map(String::from).to_vec())
    );
    let files = source_models();
    if files.is_empty() {
        eprintln!("libvmaf's source is not under $CARGO_HOME/registry: the fixture only");
    }
    for f in files {
        let path = f.to_string_lossy();
        let m = read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // the rb/b ones are collections, the float ones score VMAF_feature_*
        assert!(m.models == 1 || m.models >= 20, "{path}: {}", m.models);
        assert!(!m.features.is_empty(), "{path}");
    }
}

/// v0.6.1 with `edit` applied to its `model_dict`.
fn edited(edit: impl Fn(&mut serde_json::Map<String, Value>)) -> String {
    let mut v: Value = serde_json::from_str(&v061()).unwrap();
    edit(v["model_dict"].as_object_mut().unwrap());
    v.to_string()
}

fn refused(text: &str, says: &str) {
    match check(text) {
        Ok(_) => panic!("passed, expected {says}: {:.300}", text),
        Err(e) => assert!(e.contains(says), "{says}: {e}"),
    }
}

#[test]
fn a_model_without_what_libvmaf_predicts_with_is_refused() {
    refused(
        r#"{"model_dict": {}}"#,
        "\"model_dict\" has no \"model_type\"",
    );
    for key in [
        "model_type",
        "norm_type",
        "feature_names",
        "model",
        "slopes",
        "intercepts",
    ] {
        refused(
            &edited(|d| {
                d.remove(key);
            }),
            &format!("\"model_dict\" has no \"{key}\""),
        );
    }
    // without a rescale, no slopes nor intercepts are needed
    let none = edited(|d| {
        d.insert("norm_type".into(), json!("none"));
        d.remove("slopes");
        d.remove("intercepts");
    });
    assert_eq!(check(&none).unwrap().0, 1);
    refused(r#"[1, 2]"#, "holds an array, not an object");
    refused(
        r#"{"param_dict": {}}"#,
        "no \"model_dict\" (a model) and no \"0\"",
    );
    refused(r#"{"model_dict": []}"#, "\"model_dict\" is an array");
}

#[test]
fn fields_of_the_wrong_type_size_or_value_are_refused() {
    type Edit = Box<dyn Fn(&mut serde_json::Map<String, Value>)>;
    let set = |k: &'static str, v: Value| -> Edit {
        Box::new(move |d| drop(d.insert(k.into(), v.clone())))
    };
    let cases: Vec<(Edit, &str)> = vec![
        (
            set("model_type", json!("SVR")),
            "\"model_type\" is 'SVR', not one of",
        ),
        (set("norm_type", json!(1)), "\"norm_type\" is a number"),
        (set("feature_names", json!([])), "has 0 names"),
        (
            set("feature_names", json!(vec!["x"; 33])),
            "has 33 names: libvmaf takes 1 to 32",
        ),
        (
            set("feature_names", json!(["a", 1])),
            "holds a number, not a feature's name",
        ),
        (
            set("feature_names", json!("adm2")),
            "\"feature_names\" is a string",
        ),
        (
            set("slopes", json!([1.0, 2.0])),
            "\"slopes\" has 2 numbers; with 6 features it needs 7",
        ),
        (
            set("intercepts", json!([0, 0, 0, 0, 0, 0, 0, 0])),
            "\"intercepts\" has 8 numbers",
        ),
        (
            set("slopes", json!([0, 1, 1, 1, 1, 1, 1])),
            "\"slopes\" starts with 0",
        ),
        (
            set("slopes", json!([1, 1, 1, 1, 1, 1, "1"])),
            "\"slopes\" holds a string",
        ),
        (
            set("intercepts", json!({"a": 1})),
            "\"intercepts\" is an object, not an array",
        ),
        (
            set("score_clip", json!([0.0])),
            "\"score_clip\" is not [MIN, MAX]",
        ),
        (
            set("score_clip", json!([100.0, 0.0])),
            "\"score_clip\" is not [MIN, MAX]",
        ),
        (
            set("score_transform", json!({"p0": null})),
            "\"score_transform\": \"p0\" is null",
        ),
        (
            set("score_transform", json!({"enabled": "yes"})),
            "\"enabled\" is a string",
        ),
        (
            set("score_transform", json!({"knots": [[0, 0]]})),
            "1 knots",
        ),
        (
            set("score_transform", json!({"knots": [[0, 0], [1]]})),
            "a knot is not [X, Y]",
        ),
        (
            set("score_transform", json!({"knots": [[1, 0], [0, 1]]})),
            "do not rise",
        ),
        (
            set("score_transform", json!([1])),
            "\"score_transform\": an array, not an object",
        ),
        (
            set("feature_opts_dicts", json!([{}, {"x": "y"}])),
            "option \"x\" is a string",
        ),
        (
            set("feature_opts_dicts", json!(vec![json!({}); 7])),
            "7 entries for 6 features",
        ),
        (set("feature_opts_dicts", json!([1])), "holds a number"),
        (
            set("model", json!(42)),
            "\"model\" is a number, not a string",
        ),
        (
            set("model", json!("svm_type nu_svr\nkernel_type rbf\n")),
            "\"model\" (the SVM): no 'SV' line",
        ),
    ];
    for (edit, says) in cases {
        refused(&edited(edit), says);
    }
    // the SVM must match the features: v0.6.1's uses all six
    refused(
        &edited(|d| {
            d.insert("feature_names".into(), json!(INTEGER[..5]));
            d.insert("slopes".into(), json!([1, 1, 1, 1, 1, 1]));
            d.insert("intercepts".into(), json!([0, 0, 0, 0, 0, 0]));
        }),
        "feature 6, but the model names 5 feature(s)",
    );
    // ignored fields may hold anything
    let extra = edited(|d| drop(d.insert("feature_dict".into(), json!(null))));
    assert_eq!(check(&extra).unwrap().0, 1);
}

#[test]
fn a_file_cut_short_or_twice_keyed_is_not_json() {
    let text = v061();
    for cut in [1, 100, 380, text.len() / 2, 17_900, text.len() - 2] {
        refused(&text[..cut], "not JSON: EOF while parsing");
    }
    refused(
        &text.replacen(
            "\"model_dict\": {",
            "\"model_dict\": {\"norm_type\": \"none\", ",
            1,
        ),
        "not JSON: the key \"norm_type\" appears twice in one object",
    );
    refused(
        &text.replacen("100.0", "1e999", 1),
        "not JSON: number out of range",
    );
}

/// A collection of `n` copies of v0.6.1 as bootstrap models, under
/// `keys`, then `edit` on the whole.
fn collection_of(keys: &[&str], edit: impl Fn(&mut Value)) -> String {
    let mut one: Value = serde_json::from_str(&v061()).unwrap();
    one["model_dict"]["model_type"] = json!("BOOTSTRAP_LIBSVMNUSVR");
    let mut all = serde_json::Map::new();
    for k in keys {
        all.insert(k.to_string(), one.clone());
    }
    let mut v = Value::Object(all);
    edit(&mut v);
    v.to_string()
}

#[test]
fn a_collection_is_checked_model_by_model_and_as_a_whole() {
    let good = collection_of(&["0", "1", "2"], |_| {});
    assert_eq!(
        check(&good).unwrap(),
        (3, INTEGER.map(String::from).to_vec())
    );
    refused(
        &collection_of(&["0"], |_| {}),
        "needs \"0\" and \"1\" at least",
    );
    refused(
        &collection_of(&["0", "2", "1"], |_| {}),
        "model \"2\" where \"1\" is due",
    );
    refused(
        &collection_of(&["1", "0"], |_| {}),
        "model \"1\" where \"0\" is due",
    );
    refused(
        &collection_of(&["0", "1"], |v| {
            v["1"]["model_dict"]["model"] = json!("SV\n")
        }),
        "model \"1\": \"model\" (the SVM): the header has no svm_type",
    );
    refused(
        &collection_of(&["0", "1", "2"], |v| {
            v["2"]["model_dict"]["model_type"] = json!("RESIDUEBOOTSTRAP_LIBSVMNUSVR")
        }),
        "model \"2\" is of type RESIDUEBOOTSTRAP_LIBSVMNUSVR",
    );
    // "0" is the model itself, of any type; "1" onwards are bootstraps
    let plain = collection_of(&["0", "1"], |v| {
        v["0"]["model_dict"]["model_type"] = json!("LIBSVMNUSVR")
    });
    assert_eq!(check(&plain).unwrap().0, 2);
    refused(
        &collection_of(&["0", "1"], |v| {
            v["1"]["model_dict"]["model_type"] = json!("LIBSVMNUSVR")
        }),
        "model \"1\" is of type LIBSVMNUSVR",
    );
    refused(
        &collection_of(&["0", "1"], |v| {
            v["1"]["model_dict"]["feature_names"][0] = json!("VMAF_integer_feature_adm3_score")
        }),
        "model \"1\" has other \"feature_names\"",
    );
    let keys: Vec<String> = (0..=MAX_MODELS).map(|i| i.to_string()).collect();
    let tiny = r#"{"model_dict": {"model_type": "BOOTSTRAP_LIBSVMNUSVR", "norm_type": "none",
        "feature_names": ["f"], "model": "svm_type nu_svr\nkernel_type linear\nnr_class 2\ntotal_sv 1\nrho 0\nSV\n1 1:1\n"}}"#;
    let many = format!(
        "{{{}}}",
        keys.iter()
            .map(|k| format!("\"{k}\": {tiny}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    refused(&many, "more than 1000 models");
}

#[test]
fn only_a_regular_file_under_the_cap_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    assert!(read(&p("none.json")).unwrap_err().contains("No such file"));
    assert_eq!(
        read(&p("")).unwrap_err(),
        "it is a directory, not a regular file"
    );
    let fifo = std::ffi::CString::new(p("f.json")).unwrap();
    // SAFETY: a valid C string and a mode; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert_eq!(
        read(&p("f.json")).unwrap_err(),
        "it is a FIFO, not a regular file"
    );
    assert_eq!(
        read("/dev/zero").unwrap_err(),
        "it is a device, not a regular file"
    );
    let big = std::fs::File::create(p("big.json")).unwrap();
    big.set_len(MAX_MODEL_BYTES + 1).unwrap();
    assert_eq!(
        read(&p("big.json")).unwrap_err(),
        "it is larger than 64 MiB"
    );
    std::fs::write(p("m.json"), v061()).unwrap();
    let m = read(&p("m.json")).unwrap();
    assert_eq!(m.text, v061());
    // libvmaf reads the text checked, not the file as it is now
    if let Some(staged) = stage(&m.text) {
        std::fs::write(p("m.json"), "{}").unwrap();
        assert_eq!(std::fs::read_to_string(staged.path()).unwrap(), v061());
    }
    assert!(is_path("m.json") && is_path("./m") && !is_path("vmaf_v0.6.1"));
}

#[test]
fn a_refusal_of_float_features_says_so() {
    let float = vec!["VMAF_feature_adm2_score".to_string()];
    assert!(features_refused(&float, "2.3.1").contains("built without"));
    let other = vec!["my_feature".to_string()];
    let e = features_refused(&other, "2.3.1");
    assert!(
        e.contains("(my_feature)") && e.contains("feature_opts_dicts"),
        "{e}"
    );
}
