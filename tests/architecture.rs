//! The house's shape (ARCHITECTURE.md), checked on the sources: no two
//! files import each other (directly or around a loop), no stage imports a
//! stage that runs after it, and no file outside the SIMD kernels grows
//! past ~600 lines. Imports are read from `crate::…` and `super::…` paths
//! in the code before each file's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Stages from the one that wires the run down to the shared pieces: a
/// module may import its own stage or one further down, never one above.
const ORDER: &[&[&str]] = &[
    &["main", "cli", "config", "batch"],
    &["pipeline"],
    &["monitor"],
    &["output"],
    &["input"],
    &["metrics"],
    &["frame", "stats", "cpu", "error", "redact"],
];

/// Files allowed past the size limit: the SIMD kernels.
const LARGE: &[&str] = &["metrics::ssim_f32"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The code before the file's tests, without comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `crate::` or `super::`, with `use` groups expanded
/// one level (`crate::a::{b, c::d}` → `a::b`, `a::c::d`).
fn paths(code: &str) -> Vec<(bool, Vec<String>)> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (start, base) in [("crate::", false), ("super::", true)] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && code[..at].ends_with(|c: char| ident(c) || c == ':') {
                continue;
            }
            let rest = &code[from..];
            let mut segs = Vec::new();
            let mut r = rest;
            loop {
                let n = r.find(|c: char| !ident(c)).unwrap_or(r.len());
                if n == 0 {
                    break;
                }
                segs.push(r[..n].to_string());
                r = &r[n..];
                if let Some(t) = r.strip_prefix("::") {
                    r = t;
                } else {
                    break;
                }
            }
            if let Some(group) = r.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let mut s = segs.clone();
                    s.extend(
                        item.trim()
                            .split("::")
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty() && x != "self"),
                    );
                    out.push((base, s));
                }
            } else {
                out.push((base, segs));
            }
        }
    }
    out
}

fn stage(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or("");
    ORDER.iter().position(|s| s.contains(&top))
}

#[test]
fn no_import_cycles_no_upward_imports_no_oversized_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        modules.insert(module_of(&src, f), (f.clone(), text));
    }
    assert!(
        modules.contains_key("pipeline::pair"),
        "{:?}",
        modules.keys()
    );
    let resolve = |parts: &[String]| -> Option<String> {
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (m, (path, text)) in &modules {
        let mut deps = BTreeSet::new();
        for (is_super, segs) in paths(&code(text)) {
            let full: Vec<String> = if is_super {
                // `super` of module a::b (a file a/b.rs or a folder
                // a/b/mod.rs) is a
                let mut base: Vec<String> = m.split("::").map(String::from).collect();
                base.pop();
                base.into_iter().chain(segs).collect()
            } else {
                segs
            };
            if let Some(t) = resolve(&full)
                && t != *m
                && !t.is_empty()
            {
                deps.insert(t);
            }
        }
        for d in &deps {
            if let (Some(a), Some(b)) = (stage(m), stage(d))
                && b < a
            {
                problems.push(format!(
                    "{} imports {d}, a stage that runs after it",
                    path.display()
                ));
            }
        }
        let lines = text.lines().count();
        if lines > 650 && !LARGE.contains(&m.as_str()) {
            problems.push(format!("{} has {lines} lines", path.display()));
        }
        edges.insert(m.clone(), deps);
    }
    // a loop of imports: a module that reaches itself
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    problems.push(format!("import cycle: {} → {start}", trail.join(" → ")));
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_reader_sees_groups_and_super() {
    let p = paths("use crate::a::{b, c::d};\nuse super::e::f;\nlet x = crate::g::h(1);");
    let want: Vec<(bool, Vec<String>)> = vec![
        (false, vec!["a".into(), "b".into()]),
        (false, vec!["a".into(), "c".into(), "d".into()]),
        (false, vec!["g".into(), "h".into()]),
        (true, vec!["e".into(), "f".into()]),
    ];
    assert_eq!(p, want);
}
