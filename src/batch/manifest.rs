//! A batch manifest: CSV with a header (`id,reference,distorted`, then
//! optional columns named after a run's options, e.g. `metrics`,
//! `dist_offset`), or JSON Lines with the same keys. Relative paths are
//! resolved against the manifest's directory. Every problem is reported
//! with its line number.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Options a row may set, by column name, and the flag each becomes.
pub const ROW_OPTIONS: [(&str, &str); 10] = [
    ("metrics", "--metrics"),
    ("ssim_mode", "--ssim-mode"),
    ("dist_offset", "--dist-offset"),
    ("ref_offset", "--ref-offset"),
    ("sync", "--sync"),
    ("align", "--align"),
    ("frames", "--frames"),
    ("start", "--start"),
    ("ref_filter", "--ref-filter"),
    ("dist_filter", "--dist-filter"),
];

/// The largest manifest read: a catalog of some hundred thousand rows.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// One row of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its 1-based line in the manifest.
    pub line: usize,
    /// The row's name: its output files are `<id>.summary.json`, ...
    pub id: String,
    /// The reference, resolved.
    pub reference: String,
    /// The distorted input, resolved.
    pub distorted: String,
    /// The row's own options, as flag and value, in column order.
    pub options: Vec<(String, String)>,
}

/// A manifest's rows, in order.
#[derive(Debug)]
pub struct Manifest {
    /// The manifest's path, as given.
    pub path: String,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// Whether `id` can name files: letters, digits, `.`, `_`, `-`, not
/// starting with a dot.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A path of the manifest resolved against its directory (URLs, `-` and
/// absolute paths as they are).
fn resolve(dir: &Path, p: &str) -> String {
    if p.contains("://") || p == "-" || Path::new(p).is_absolute() {
        p.to_string()
    } else {
        dir.join(p).display().to_string()
    }
}

/// The fields of one record, by name.
type Fields = Vec<(String, String)>;

/// Reads CSV records with their line numbers.
fn csv_records(text: &str, label: &str) -> Result<Vec<(usize, Fields)>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let bad = |line: usize, e: &dyn std::fmt::Display| {
        Error::Usage(format!("manifest '{label}' line {line}: {e}"))
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(1, &e))?
        .iter()
        .map(str::to_string)
        .collect();
    // The line of a record from its byte offset: the reader's own line
    // count, and its offset, include the blank lines it skipped before it.
    let bytes = text.as_bytes();
    let line_at = |p: Option<&csv::Position>| {
        p.map_or(0, |p| {
            let mut at = usize::try_from(p.byte())
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
                at += 1;
            }
            bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
        })
    };
    let mut out = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = line_at(e.position());
            match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => bad(
                    line,
                    &format!("{len} field(s) where the header has {expected_len}"),
                ),
                _ => bad(line, &e),
            }
        })?;
        let line = line_at(rec.position());
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let fields = header
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_string))
            .collect();
        out.push((line, fields));
    }
    if out.is_empty() && !header.iter().any(|h| h == "id") {
        return Err(bad(1, &"a header naming id,reference,distorted is needed"));
    }
    Ok(out)
}

/// Reads JSON Lines records with their line numbers.
fn jsonl_records(text: &str, label: &str) -> Result<Vec<(usize, Fields)>, Error> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l)
            .map_err(|e| Error::Usage(format!("manifest '{label}' line {line}: {e}")))?;
        let Some(obj) = v.as_object() else {
            return Err(Error::Usage(format!(
                "manifest '{label}' line {line}: a JSON object is needed"
            )));
        };
        let fields = obj
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect();
        out.push((line, fields));
    }
    Ok(out)
}

impl Manifest {
    /// Reads and checks the manifest at `path`: CSV, or JSON Lines when
    /// it ends in `.jsonl`/`.ndjson` or its first character is `{`.
    pub fn read(path: &str) -> Result<Self, Error> {
        let text = if path == "-" {
            crate::textfile::read_from(std::io::stdin().lock(), MAX_MANIFEST_BYTES)
                .map_err(|why| Error::Usage(format!("manifest '-' (stdin): {why}")))?
        } else {
            crate::textfile::read(Path::new(path), MAX_MANIFEST_BYTES)
                .map_err(|why| Error::Usage(format!("manifest '{path}' {why}")))?
        };
        // spreadsheets often save CSV with a byte-order mark
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
        let jsonl = path.ends_with(".jsonl")
            || path.ends_with(".ndjson")
            || text.trim_start().starts_with('{');
        let records = if jsonl {
            jsonl_records(&text, path)?
        } else {
            csv_records(&text, path)?
        };
        let dir = Path::new(path)
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut rows = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut folded: HashMap<String, (usize, String)> = HashMap::new();
        for (line, fields) in records {
            let bad = |what: String| Error::Usage(format!("manifest '{path}' line {line}: {what}"));
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            for k in ["id", "reference", "distorted"] {
                if get(k).is_empty() {
                    return Err(bad(format!("no {k}")));
                }
            }
            let id = get("id");
            if !valid_id(&id) {
                return Err(bad(format!(
                    "id '{id}' cannot name files: use letters, digits, '.', '_' and '-', not a leading '.'"
                )));
            }
            if let Some(first) = seen.insert(id.clone(), line) {
                return Err(bad(format!("id '{id}' is also on line {first}")));
            }
            // ids name files: on a file system that ignores case (macOS,
            // Windows shares), ids that differ only in case would share them
            if let Some((first, other)) = folded.insert(id.to_ascii_lowercase(), (line, id.clone()))
            {
                return Err(bad(format!(
                    "id '{id}' differs from '{other}' on line {first} only in case: on a file system that ignores case they would name the same files"
                )));
            }
            let mut options = Vec::new();
            for (name, value) in &fields {
                if matches!(name.as_str(), "id" | "reference" | "distorted") {
                    continue;
                }
                let Some((_, flag)) = ROW_OPTIONS.iter().find(|(c, _)| c == name) else {
                    return Err(bad(format!(
                        "unknown column '{name}' (a row may set: {})",
                        ROW_OPTIONS.map(|(c, _)| c).join(", ")
                    )));
                };
                if !value.is_empty() {
                    options.push((flag.to_string(), value.clone()));
                }
            }
            rows.push(Row {
                line,
                reference: resolve(&dir, &get("reference")),
                distorted: resolve(&dir, &get("distorted")),
                id,
                options,
            });
        }
        if rows.is_empty() {
            return Err(Error::Usage(format!("manifest '{path}': no rows")));
        }
        Ok(Manifest {
            path: path.to_string(),
            rows,
        })
    }
}

/// Why a row's input cannot be read, if it cannot (files only: URLs and
/// pipes are left to the run).
pub fn unreadable(input: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    if input.contains("://") || input == "-" {
        return None;
    }
    // a FIFO is opened by the run (opening it here would wait for a writer)
    if std::fs::metadata(input).is_ok_and(|m| m.file_type().is_fifo()) {
        return None;
    }
    match std::fs::File::open(input) {
        Ok(f) => match f.metadata() {
            Ok(m) if m.is_dir() => Some(format!("'{input}' is a directory")),
            _ => None,
        },
        Err(e) => Some(format!("cannot open '{input}': {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let s = p.display().to_string();
        (dir, s)
    }

    #[test]
    fn csv_and_json_lines_give_the_same_rows() {
        let (d1, csv) = manifest(
            "m.csv",
            "id,reference,distorted,metrics\na,ref.mp4,\"x, y.mp4\",\"psnr,ssim\"\n\nb,/abs/ref.mp4,d.mp4,\n",
        );
        let (_d2, jsonl) = manifest(
            "m.jsonl",
            "{\"id\":\"a\",\"reference\":\"ref.mp4\",\"distorted\":\"x, y.mp4\",\"metrics\":\"psnr,ssim\"}\n{\"id\":\"b\",\"reference\":\"/abs/ref.mp4\",\"distorted\":\"d.mp4\"}\n",
        );
        let a = Manifest::read(&csv).unwrap();
        let b = Manifest::read(&jsonl).unwrap();
        assert_eq!(a.rows.len(), 2);
        assert_eq!(a.rows[0].line, 2);
        assert_eq!(a.rows[1].line, 4);
        assert_eq!(
            a.rows[0].distorted,
            d1.path().join("x, y.mp4").display().to_string()
        );
        assert_eq!(a.rows[1].reference, "/abs/ref.mp4");
        assert_eq!(
            a.rows[0].options,
            [("--metrics".to_string(), "psnr,ssim".to_string())]
        );
        assert!(a.rows[1].options.is_empty());
        for (x, y) in a.rows.iter().zip(&b.rows) {
            assert_eq!((&x.id, &x.options), (&y.id, &y.options));
            assert!(x.distorted.ends_with("x, y.mp4") || x.distorted.ends_with("d.mp4"));
        }
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_are_read_as_spreadsheets_write_them() {
        let (_d, p) = manifest(
            "m.csv",
            "\u{feff}id,reference,distorted\r\na,r.mp4,d.mp4\r\n",
        );
        let m = Manifest::read(&p).unwrap();
        assert_eq!(m.rows.len(), 1);
        assert_eq!((m.rows[0].id.as_str(), m.rows[0].line), ("a", 2));
        assert!(m.rows[0].distorted.ends_with("d.mp4"));
        let (_d, p) = manifest(
            "m.jsonl",
            "\u{feff}{\"id\":\"a\",\"reference\":\"r\",\"distorted\":\"d\"}\r\n",
        );
        assert_eq!(Manifest::read(&p).unwrap().rows[0].id, "a");
    }

    #[test]
    fn bad_rows_are_named_by_line() {
        for (text, want) in [
            ("id,reference\na,r.mp4\n", "line 2: no distorted"),
            (
                "id,reference,distorted\na,r,d\nb,r,d\na,r,e\n",
                "line 4: id 'a' is also on line 2",
            ),
            ("id,reference,distorted\n../x,r,d\n", "line 2: id '../x'"),
            (
                "id,reference,distorted\nok1,r,d\nOK1,r,d\n",
                "line 3: id 'OK1' differs from 'ok1' on line 2 only in case",
            ),
            (
                "id,reference,distorted,crf\na,r,d,23\n",
                "unknown column 'crf'",
            ),
            (
                "id,reference,distorted\na,r,d,extra\n",
                "line 2: 4 field(s)",
            ),
            ("id,reference,distorted\n", "no rows"),
        ] {
            let (_d, p) = manifest("m.csv", text);
            let e = Manifest::read(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        for (text, want) in [
            (
                "{\"id\":\"a\",\"reference\":\"r\"}\n",
                "line 1: no distorted",
            ),
            (
                "{\"id\":\"a\",\"reference\":\"r\",\"distorted\":\"d\"}\n\nnot json\n",
                "line 3: ",
            ),
            ("[1]\n", "line 1: a JSON object is needed"),
        ] {
            let (_d, p) = manifest("m.jsonl", text);
            let e = Manifest::read(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(Manifest::read("/nonexistent/m.csv").is_err());
    }
}
