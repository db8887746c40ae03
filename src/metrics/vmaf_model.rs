//! A VMAF model file (`--vmaf-model PATH`), read and checked before
//! libvmaf sees it. libvmaf 2.3.1's model reader (`read_json_model.c`)
//! accepts a model without its support vector machine, features or
//! normalisation, and an SVM without its coefficients (`svm.cpp`): such a
//! model loads, then crashes the process at the first score. So the file
//! is read here (a regular file, at most [`MAX_MODEL_BYTES`]), parsed by
//! serde_json, and every field libvmaf reads is checked: present when
//! prediction needs it, of the type and size libvmaf expects, finite, the
//! lengths consistent with `feature_names`. A bootstrap collection (keys
//! `"0"`, `"1"`, ...) is checked model by model. Then libvmaf reads the
//! very text that was checked ([`stage`]).

mod json;
mod svm;

use json::Json;

/// The largest model file read: libvmaf's largest (the bootstrap
/// `vmaf_b_v0.6.3.json`) is 0.4 MB.
pub const MAX_MODEL_BYTES: u64 = 64 << 20;

/// libvmaf's limit on a model's features (`MAX_FEATURE_COUNT`).
pub const MAX_FEATURES: usize = 32;

/// libvmaf's limit on a score transform's knots (`MAX_KNOT_COUNT`).
const MAX_KNOTS: usize = 10;

/// The most models of a collection read: libvmaf names them `vmaf_0001`
/// and so on in a buffer that model 10000 overflows; its collections hold
/// about 20.
pub const MAX_MODELS: usize = 1000;

/// Whether `--vmaf-model` names a file (a path or a `.json` name) rather
/// than one of libvmaf's built-in models.
pub fn is_path(model: &str) -> bool {
    model.contains('/') || model.ends_with(".json")
}

/// What a checked model file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The file's text, as checked.
    pub text: String,
    /// How many models: 1, or a bootstrap collection's count.
    pub models: usize,
    /// The features the model scores, by libvmaf's names.
    pub features: Vec<String>,
}

/// Reads the model file at `path` and checks it; the error says what is
/// wrong, for a message that names the file.
pub fn read(path: &str) -> Result<Model, String> {
    use crate::textfile::Refusal;
    let text =
        crate::textfile::read(std::path::Path::new(path), MAX_MODEL_BYTES).map_err(
            |r| match r {
                Refusal::Io(e) => e,
                other => format!("it {other}"),
            },
        )?;
    let (models, features) = check(&text)?;
    Ok(Model {
        text,
        models,
        features,
    })
}

/// Checks the text of a model file: how many models it holds and the
/// features they score, or what libvmaf would fail or crash on.
pub fn check(text: &str) -> Result<(usize, Vec<String>), String> {
    let json = Json::parse(text).map_err(|e| format!("not JSON: {e}"))?;
    collection(&json).map_err(|e| format!("not a VMAF model: {e}"))
}

/// A checked model's text where libvmaf reads it by path, so that it
/// reads the very text checked whatever happens to the file meanwhile: an
/// anonymous memory file, as `/proc/self/fd/N`.
pub struct Staged {
    /// Keeps the memory file open while libvmaf reads it.
    _file: std::fs::File,
    path: String,
}

impl Staged {
    /// The path libvmaf opens.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Stages `text` for libvmaf, or `None` where memory files or `/proc` are
/// not available: then libvmaf reads the file, checked a moment before.
#[cfg(target_os = "linux")]
pub fn stage(text: &str) -> Option<Staged> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name and valid flags; nothing else is read.
    let fd = unsafe { libc::memfd_create(c"vqm-vmaf-model".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(text.as_bytes()).ok()?;
    let path = format!("/proc/self/fd/{fd}");
    std::fs::metadata(&path).ok()?;
    Some(Staged { _file: file, path })
}

/// Stages `text` for libvmaf: not on this system (no memory files).
#[cfg(not(target_os = "linux"))]
pub fn stage(_text: &str) -> Option<Staged> {
    None
}

/// Why libvmaf would not set up the extractors of a model whose checks
/// passed (`vmaf_use_features_from_model` failed): a feature it has no
/// extractor for (the float ones, `VMAF_feature_*`, are not in the
/// libvmaf built here) or an option out of its range.
pub fn features_refused(features: &[String], version: &str) -> String {
    if features.iter().any(|f| f.starts_with("VMAF_feature_")) {
        format!(
            "vmaf: the model scores libvmaf's float features (VMAF_feature_*), which this \
             libvmaf {version} is built without: use a model of its integer features \
             (VMAF_integer_feature_*), such as vmaf_v0.6.1"
        )
    } else {
        format!(
            "vmaf: libvmaf {version} cannot compute the model's features ({}): one has no \
             extractor in it, or an option in \"feature_opts_dicts\" is out of its range",
            features.join(", ")
        )
    }
}

/// A single model (`model_dict`) or a collection of them (`"0"`, ...).
fn collection(json: &Json) -> Result<(usize, Vec<String>), String> {
    let Json::Object(top) = json else {
        return Err(format!("the file holds {}, not an object", json.kind()));
    };
    if json.get("model_dict").is_some() {
        return model(json).map(|(_, features)| (1, features));
    }
    // libvmaf reads "0", "1", ... in order and skips any other key
    let mut models = Vec::new();
    for (key, value) in top {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let next = models.len().to_string();
        if *key != next {
            return Err(format!(
                "model \"{key}\" where \"{next}\" is due: libvmaf reads a collection's models \
                 in order from \"0\" and would skip it"
            ));
        }
        if models.len() == MAX_MODELS {
            return Err(format!("more than {MAX_MODELS} models"));
        }
        models.push(model(value).map_err(|e| format!("model \"{key}\": {e}"))?);
    }
    let Some((_, first)) = models.first() else {
        return Err(
            "no \"model_dict\" (a model) and no \"0\" (a collection of models)".to_string(),
        );
    };
    if models.len() < 2 {
        return Err("a collection of models needs \"0\" and \"1\" at least".to_string());
    }
    // libvmaf scores the collection ("1" onwards; "0" is the model
    // itself) by the type of "1", and computes the features of "1"
    // onwards only
    let kind = models[1].0.as_str();
    for (i, (t, features)) in models.iter().enumerate().skip(1) {
        if !t.contains("BOOTSTRAP") || t != kind {
            return Err(format!(
                "model \"{i}\" is of type {t}: a collection's models after \"0\" are all \
                 BOOTSTRAP_LIBSVMNUSVR or all RESIDUEBOOTSTRAP_LIBSVMNUSVR"
            ));
        }
        if features != first {
            return Err(format!(
                "model \"{i}\" has other \"feature_names\" than model \"0\""
            ));
        }
    }
    Ok((models.len(), first.clone()))
}

/// The numbers of array `v`, or what is wrong with it.
fn numbers(name: &str, v: &Json) -> Result<Vec<f64>, String> {
    let Json::Array(items) = v else {
        return Err(format!("\"{name}\" is {}, not an array", v.kind()));
    };
    items
        .iter()
        .map(|x| match x {
            Json::Number(n) => Ok(*n),
            other => Err(format!("\"{name}\" holds {}, not a number", other.kind())),
        })
        .collect()
}

/// The string `name` of `dict`, one of `allowed`, when present.
fn one_of<'a>(dict: &'a Json, name: &str, allowed: &[&str]) -> Result<Option<&'a str>, String> {
    match dict.get(name) {
        None => Ok(None),
        Some(Json::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(other) => Err(format!(
            "\"{name}\" is {}, not one of {}",
            match other {
                Json::String(s) => format!("'{s}'"),
                o => o.kind().to_string(),
            },
            allowed.join(", ")
        )),
    }
}

/// One model (an object with `model_dict`): its type and features.
fn model(json: &Json) -> Result<(String, Vec<String>), String> {
    let dict = match json.get("model_dict") {
        Some(d @ Json::Object(_)) => d,
        Some(other) => return Err(format!("\"model_dict\" is {}", other.kind())),
        None => return Err(format!("{} without \"model_dict\"", json.kind())),
    };
    let lacks = |name: &str| format!("\"model_dict\" has no \"{name}\"");
    let kind = one_of(
        dict,
        "model_type",
        &[
            "LIBSVMNUSVR",
            "BOOTSTRAP_LIBSVMNUSVR",
            "RESIDUEBOOTSTRAP_LIBSVMNUSVR",
        ],
    )?
    .ok_or_else(|| lacks("model_type"))?;
    let norm = one_of(dict, "norm_type", &["linear_rescale", "none"])?
        .ok_or_else(|| lacks("norm_type"))?;
    let features: Vec<String> = match dict.get("feature_names") {
        None => return Err(lacks("feature_names")),
        Some(Json::Array(names)) => names
            .iter()
            .map(|n| match n {
                Json::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(format!(
                    "\"feature_names\" holds {}, not a feature's name",
                    other.kind()
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("\"feature_names\" is {}", other.kind())),
    };
    if features.is_empty() || features.len() > MAX_FEATURES {
        return Err(format!(
            "\"feature_names\" has {} names: libvmaf takes 1 to {MAX_FEATURES}",
            features.len()
        ));
    }
    // the model's own slope and intercept, then one per feature
    for name in ["slopes", "intercepts"] {
        let Some(v) = dict.get(name) else {
            if norm == "linear_rescale" {
                return Err(format!("{} (norm_type linear_rescale)", lacks(name)));
            }
            continue;
        };
        let v = numbers(name, v)?;
        if v.len() != features.len() + 1 {
            return Err(format!(
                "\"{name}\" has {} numbers; with {} features it needs {} (the model's own, \
                 then one per feature)",
                v.len(),
                features.len(),
                features.len() + 1
            ));
        }
        if name == "slopes" && norm == "linear_rescale" && v[0] == 0.0 {
            return Err("\"slopes\" starts with 0: libvmaf divides the score by it".to_string());
        }
    }
    if let Some(v) = dict.get("score_clip") {
        match numbers("score_clip", v)?.as_slice() {
            [lo, hi] if lo <= hi => {}
            _ => return Err("\"score_clip\" is not [MIN, MAX]".to_string()),
        }
    }
    if let Some(t) = dict.get("score_transform") {
        transform(t).map_err(|e| format!("\"score_transform\": {e}"))?;
    }
    if let Some(v) = dict.get("feature_opts_dicts") {
        options(v, features.len())?;
    }
    match dict.get("model") {
        Some(Json::String(text)) => {
            svm::check(text, features.len()).map_err(|e| format!("\"model\" (the SVM): {e}"))?
        }
        Some(other) => return Err(format!("\"model\" is {}, not a string", other.kind())),
        None => return Err(lacks("model")),
    }
    Ok((kind.to_string(), features))
}

/// A score transform: polynomial `p0`..`p2`, piecewise-linear `knots`.
fn transform(t: &Json) -> Result<(), String> {
    let Json::Object(fields) = t else {
        return Err(format!("{}, not an object", t.kind()));
    };
    for (key, v) in fields {
        match (key.as_str(), v) {
            ("enabled", Json::Bool(_)) => {}
            ("p0" | "p1" | "p2", Json::Number(_)) => {}
            ("out_lte_in" | "out_gte_in", Json::String(_)) => {}
            ("knots", Json::Array(knots)) => {
                let mut points = Vec::new();
                for k in knots {
                    match numbers("knots", k)?.as_slice() {
                        [x, y] => points.push((*x, *y)),
                        _ => return Err("a knot is not [X, Y]".to_string()),
                    }
                }
                if !(2..=MAX_KNOTS).contains(&points.len()) {
                    return Err(format!(
                        "{} knots: libvmaf takes 2 to {MAX_KNOTS}",
                        points.len()
                    ));
                }
                if points
                    .windows(2)
                    .any(|w| !(w[0].0 < w[1].0 && w[0].1 <= w[1].1))
                {
                    return Err("the knots do not rise from left to right".to_string());
                }
            }
            ("enabled" | "p0" | "p1" | "p2" | "out_lte_in" | "out_gte_in" | "knots", v) => {
                // libvmaf 2.3.1 reads null here as the next key, and fails
                return Err(format!("\"{key}\" is {}", v.kind()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `feature_opts_dicts`: per feature, its extractor's options (numbers or
/// booleans; libvmaf checks their ranges when it builds the extractors).
fn options(v: &Json, features: usize) -> Result<(), String> {
    let Json::Array(dicts) = v else {
        return Err(format!("\"feature_opts_dicts\" is {}", v.kind()));
    };
    if dicts.len() > features {
        return Err(format!(
            "\"feature_opts_dicts\" has {} entries for {features} features",
            dicts.len()
        ));
    }
    for d in dicts {
        let Json::Object(opts) = d else {
            return Err(format!("\"feature_opts_dicts\" holds {}", d.kind()));
        };
        if let Some((k, o)) = opts
            .iter()
            .find(|(_, o)| !matches!(o, Json::Number(_) | Json::Bool(_)))
        {
            return Err(format!(
                "\"feature_opts_dicts\": option \"{k}\" is {}, not a number or a boolean",
                o.kind()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
