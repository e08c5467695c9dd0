//! The crate's import graph has no circle: no module of `shared/src` imports one that imports it
//! back, between the top-level modules (`crate::x`) and between the files of one folder module
//! (`super::x`, `crate::folder::x`). Comment lines and a file's test module (from its
//! `#[cfg(test)]` on) do not count: a test may reach across.
//!
//! `cargo test -p cardbot --test module_graph -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `prefix<ident>` in the code lines of `text`.
fn references(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at + prefix.len()..];
            let ident: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                found.insert(ident);
            }
            rest = tail;
        }
    }
    found
}

/// A circle in `graph`, as the path that closes it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The top-level graph and, per folder module, the graph of its files.
fn graphs() -> (Graph, BTreeMap<String, Graph>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut top = Graph::new();
    let mut folders: BTreeMap<String, Graph> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let parts: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts == ["lib"] {
            continue;
        }
        let whole = std::fs::read_to_string(&file).unwrap();
        let text = whole.split("#[cfg(test)]").next().unwrap_or_default();
        let module = parts[0].clone();
        let targets = references(text, "crate::");
        let edges = top.entry(module.clone()).or_default();
        edges.extend(targets.into_iter().filter(|t| *t != module));
        if parts.len() == 2 && parts[1] != "mod" {
            let file_module = parts[1].clone();
            let mut siblings = references(text, "super::");
            siblings.extend(references(text, &format!("crate::{module}::")));
            let graph = folders.entry(module).or_default();
            let edges = graph.entry(file_module.clone()).or_default();
            edges.extend(siblings.into_iter().filter(|s| *s != file_module));
        }
    }
    // Names reached through a folder's `mod.rs` re-exports are not files: keep only real nodes.
    for graph in folders.values_mut() {
        let nodes: BTreeSet<String> = graph.keys().cloned().collect();
        for edges in graph.values_mut() {
            edges.retain(|e| nodes.contains(e));
        }
    }
    (top, folders)
}

fn print(name: &str, graph: &Graph) {
    println!("{name}:");
    for (node, edges) in graph {
        let list: Vec<&str> = edges.iter().map(String::as_str).collect();
        println!("  {node} -> {}", list.join(", "));
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let (top, folders) = graphs();
    print("shared/src", &top);
    assert_eq!(find_cycle(&top), None, "an import circle between modules");
    for (folder, graph) in &folders {
        print(&format!("shared/src/{folder}"), graph);
        assert_eq!(
            find_cycle(graph),
            None,
            "an import circle between the files of {folder}"
        );
    }
    assert!(top["approval"].contains("cards") && !top["approval"].contains("jobs"));
}

#[test]
fn the_check_finds_a_circle() {
    let mut graph = Graph::new();
    graph.insert("approval".into(), ["jobs".into()].into());
    graph.insert("jobs".into(), ["cards".into()].into());
    graph.insert("cards".into(), ["approval".into()].into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec![
            "approval".into(),
            "jobs".into(),
            "cards".into(),
            "approval".into()
        ])
    );
    graph.insert("cards".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    assert_eq!(
        references(
            "use crate::jobs::X;\n// crate::store\n    /// [`crate::deliver`]",
            "crate::"
        ),
        ["jobs".to_owned()].into()
    );
}
