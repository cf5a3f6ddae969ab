//! The source tree's layers: data flows web → domain → db, and no
//! top-level module imports one that imports it back. Read from the source
//! files (every `crate::<module>` path outside test code), so a new import
//! that runs back up a layer fails here, naming the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → (module it imports → files that do).
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn top_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let re = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut g = Graph::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || name.ends_with("_tests.rs") || name.ends_with("_props.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules may reach anywhere; so may doc comments.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let from = top_of(&path, &src);
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for m in re.captures_iter(line) {
                    let to = m[1].to_string();
                    if to != from {
                        g.entry(from.clone())
                            .or_default()
                            .entry(to)
                            .or_default()
                            .insert(path.strip_prefix(&src).unwrap().display().to_string());
                    }
                }
            }
        }
    }
    g
}

fn imports(g: &Graph, from: &str) -> BTreeSet<String> {
    g.get(from)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_database_layer_imports_no_domain_module() {
    let g = graph();
    let leaves: BTreeSet<String> = ["error", "timefmt", "closed_set", "label_match"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let extra: Vec<_> = imports(&g, "db").difference(&leaves).cloned().collect();
    assert!(extra.is_empty(), "db imports {extra:?}: {:?}", g["db"]);
}

#[test]
fn nothing_below_the_web_layer_imports_it() {
    let g = graph();
    let above = ["web", "server", "app", "scheduler", "cli", "lib", "main"];
    for (from, to) in &g {
        if above.contains(&from.as_str()) {
            continue;
        }
        for up in ["web", "server", "scheduler", "cli", "app"] {
            assert!(
                !to.contains_key(up),
                "{from} imports {up}: {:?}",
                to.get(up)
            );
        }
    }
}

#[test]
fn top_level_modules_import_no_cycle() {
    let g = graph();
    let mut found = Vec::new();
    for (a, to) in &g {
        for b in to.keys() {
            // Is there a path back from b to a?
            let mut seen = BTreeSet::new();
            let mut todo = vec![b.clone()];
            while let Some(x) = todo.pop() {
                if !seen.insert(x.clone()) {
                    continue;
                }
                todo.extend(imports(&g, &x));
            }
            if seen.contains(a) {
                found.push(format!("{a} -> {b} (via {:?})", to[b]));
            }
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}
