//! The module graph of each crate: which of its modules a module `use`s (`crate::x`), outside
//! test code. A test keeps every crate free of cycles (no module imports one that imports it
//! back), so each module can be read, and changed, from the bottom up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules of the same crate it names through `crate::`.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph of the crate whose sources are under `src` (the top-level `*.rs` files and
/// folders; `lib.rs` and `main.rs` are the root, not modules).
pub fn crate_graph(src: &Path) -> std::io::Result<Graph> {
    let mut graph = Graph::new();
    let mut files = Vec::new();
    collect(src, &mut files)?;
    for file in files {
        let Ok(rel) = file.strip_prefix(src) else {
            continue;
        };
        let Some(top) = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
        else {
            continue;
        };
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        let deps = graph.entry(top.clone()).or_default();
        for dep in crate_paths(non_test(&text)) {
            if dep != top {
                deps.insert(dep);
            }
        }
    }
    Ok(graph)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The text before the first `#[cfg(test)]` (test modules sit at the end of a file).
fn non_test(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// The first segment after every `crate::` in the text, and every name of a
/// `use crate::{a, b::c}` group.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `$crate::` in macros names the defining crate's root items, not a module edge.
        if text[..i].ends_with('$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = group.split('}').next().unwrap_or("");
            for item in body.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            // Only paths that go on (`crate::x::y`) name a module; `crate::Item` is a root item.
            if !name.is_empty() && rest[name.len()..].starts_with("::") {
                out.insert(name);
            }
        }
    }
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every cycle of `graph` as a path `a -> b -> ... -> a` (each found once per start).
pub fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for start in graph.keys() {
        let mut stack = vec![start.clone()];
        walk(graph, start, &mut stack, &mut found);
    }
    found
}

fn walk(graph: &Graph, start: &str, stack: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    let Some(deps) = graph.get(stack.last().map(String::as_str).unwrap_or(start)) else {
        return;
    };
    for dep in deps {
        if dep == start {
            let mut cycle = stack.clone();
            cycle.push(dep.clone());
            found.push(cycle);
        } else if !stack.contains(dep) && dep.as_str() > start {
            // Only walk modules ordered after the start: each cycle is reported from its
            // smallest module, once.
            stack.push(dep.clone());
            walk(graph, start, stack, found);
            stack.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_use_lines_groups_and_paths() {
        let text = "use crate::a::X;\nuse crate::{b::Y, c};\nfn f() { crate::d::g(); crate::Root; $crate::e::h }\n\
                    #[cfg(test)]\nmod tests { use crate::z::Q; }";
        let names: Vec<String> = crate_paths(non_test(text)).into_iter().collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn finds_a_cycle_once() {
        let mut g = Graph::new();
        g.entry("a".into()).or_default().insert("b".into());
        g.entry("b".into()).or_default().insert("c".into());
        g.entry("c".into()).or_default().insert("a".into());
        g.entry("d".into()).or_default().insert("a".into());
        assert_eq!(cycles(&g), vec![vec!["a", "b", "c", "a"]]);
    }

    #[test]
    fn no_module_of_any_crate_imports_one_that_imports_it_back() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        for dir in ["crates", "."] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let src = entry.path().join("src");
                if !src.is_dir() || (dir == "." && !entry.path().ends_with("xtask")) {
                    continue;
                }
                let graph = crate_graph(&src).expect("readable sources");
                let found = cycles(&graph);
                assert!(
                    found.is_empty(),
                    "{}: module cycles {found:?}",
                    src.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 7, "checked {checked} crates");
    }
}
