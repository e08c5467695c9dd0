//! Each crate's import graph has no circle: no module of the app (`shared/src`) or of the kit
//! (`shared/kit/src`) imports one that imports it back, between the top-level modules and between the files of every folder module, at any
//! depth. Every `crate::`, `super::` and `self::` path is resolved to the module it names, with
//! `{a, b::c}` groups expanded and names a folder's `mod.rs` re-exports (`pub use x::{…}`)
//! followed to the file that defines them. Comment lines and `#[cfg(test)] mod` blocks do not
//! count: a test may reach across.
//!
//! That the kit never imports the app is Cargo's to enforce (its manifest has no dependency on it).
//!
//! `cargo test -p cardbot --test module_graph -- --nocapture` prints the graphs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;
type ModPath = Vec<String>;

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

/// The code of a file that counts: no comment lines, nothing from a `#[cfg(test)] mod` on.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if !trimmed.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn ident_at(text: &[u8], mut at: usize) -> (String, usize) {
    let start = at;
    while at < text.len() && (text[at].is_ascii_alphanumeric() || text[at] == b'_') {
        at += 1;
    }
    (String::from_utf8_lossy(&text[start..at]).into_owned(), at)
}

/// The paths of a use tree starting at `at` (after a `::`), groups expanded.
fn use_tree(text: &[u8], at: usize, prefix: &ModPath, out: &mut Vec<ModPath>) -> usize {
    let mut at = at;
    while at < text.len() && text[at].is_ascii_whitespace() {
        at += 1;
    }
    if text.get(at) == Some(&b'{') {
        at += 1;
        loop {
            while at < text.len() && (text[at].is_ascii_whitespace() || text[at] == b',') {
                at += 1;
            }
            if at >= text.len() || text[at] == b'}' {
                return at + 1;
            }
            at = use_tree(text, at, prefix, out);
        }
    }
    let (ident, next) = ident_at(text, at);
    if ident.is_empty() {
        out.push(prefix.clone());
        return next.max(at + 1);
    }
    let mut path = prefix.clone();
    path.push(ident);
    if text[next..].starts_with(b"::") {
        use_tree(text, next + 2, &path, out)
    } else {
        out.push(path);
        next
    }
}

/// Every path in `code` that starts at `crate`, `super` or `self`, made absolute for a file whose
/// module is `module`.
fn absolute_paths(code: &str, module: &ModPath) -> Vec<ModPath> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let starts_word = at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b':');
        let (word, next) = ident_at(bytes, at);
        if word.is_empty() {
            at += 1;
            continue;
        }
        if starts_word
            && matches!(word.as_str(), "crate" | "super" | "self")
            && bytes[next..].starts_with(b"::")
        {
            let mut base: ModPath = match word.as_str() {
                "crate" => Vec::new(),
                "super" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.clone(),
            };
            let mut rest = next + 2;
            loop {
                let (more, after) = ident_at(bytes, rest);
                if more == "super" && bytes[after..].starts_with(b"::") {
                    base.pop();
                    rest = after + 2;
                } else {
                    break;
                }
            }
            let mut found = Vec::new();
            at = use_tree(bytes, rest, &base, &mut found);
            out.extend(found);
        } else {
            at = next;
        }
    }
    out
}

struct Crate {
    /// How the graphs name the crate's source folder (`shared/src`, `shared/kit/src`).
    root: String,
    /// Each file's module path and the absolute paths its code names.
    files: Vec<(ModPath, Vec<ModPath>)>,
    modules: BTreeSet<ModPath>,
    /// `folder + [name]` re-exported by the folder's `mod.rs` → the path it names.
    reexports: BTreeMap<ModPath, ModPath>,
}

/// The crates under `shared/`: the app (`src`) and the kit (`kit/src`).
const CRATES: [&str; 2] = ["src", "kit/src"];

fn read_crate(dir: &'static str) -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut files = Vec::new();
    let mut reexports = BTreeMap::new();
    for file in paths {
        let mut module: ModPath = file
            .strip_prefix(&src)
            .unwrap()
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let is_mod = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
        if is_mod {
            module.pop();
        }
        let code = code(&std::fs::read_to_string(&file).unwrap());
        if is_mod {
            for line in code
                .split(';')
                .filter(|s| s.trim_start().starts_with("pub use "))
            {
                let tree = line.trim_start().trim_start_matches("pub use ");
                let mut found = Vec::new();
                use_tree(tree.as_bytes(), 0, &module, &mut found);
                for target in found {
                    let mut name = module.clone();
                    name.extend(target.last().cloned());
                    if target.len() > module.len() + 1 {
                        reexports.insert(name, target);
                    }
                }
            }
        }
        let paths = absolute_paths(&code, &module);
        files.push((module, paths));
    }
    let modules = files.iter().map(|(m, _)| m.clone()).collect();
    Crate {
        root: format!("shared/{dir}"),
        files,
        modules,
        reexports,
    }
}

impl Crate {
    /// The module file `path` lands in: re-exports followed, then its longest module prefix.
    fn target(&self, path: &ModPath) -> ModPath {
        let mut path = path.clone();
        for _ in 0..8 {
            let hit = (1..=path.len())
                .rev()
                .find_map(|n| self.reexports.get(&path[..n]).map(|to| (n, to.clone())));
            match hit {
                Some((n, to)) if !self.modules.contains(&path[..n]) => {
                    let mut next = to;
                    next.extend_from_slice(&path[n..]);
                    path = next;
                }
                _ => break,
            }
        }
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| self.modules.contains(prefix))
            .unwrap_or_default()
    }

    /// For each folder module, the graph of its children (files or subfolders).
    fn graphs(&self) -> BTreeMap<String, Graph> {
        let mut graphs: BTreeMap<String, Graph> = BTreeMap::new();
        for (module, paths) in &self.files {
            for depth in 0..module.len() {
                let folder = &module[..depth];
                let name = if folder.is_empty() {
                    self.root.clone()
                } else {
                    format!("{}/{}", self.root, folder.join("/"))
                };
                let child = module[depth].clone();
                let edges = graphs
                    .entry(name)
                    .or_default()
                    .entry(child.clone())
                    .or_default();
                for path in paths {
                    let target = self.target(path);
                    if target.len() > depth && target[..depth] == *folder && target[depth] != child
                    {
                        edges.insert(target[depth].clone());
                    }
                }
            }
        }
        graphs
    }
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

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graphs: BTreeMap<String, Graph> = CRATES
        .into_iter()
        .flat_map(|dir| read_crate(dir).graphs())
        .collect();
    for (folder, graph) in &graphs {
        println!("{folder}:");
        for (node, edges) in graph {
            let list: Vec<&str> = edges.iter().map(String::as_str).collect();
            println!("  {node} -> {}", list.join(", "));
        }
        assert_eq!(find_cycle(graph), None, "an import circle in {folder}");
    }
    let top = &graphs["shared/src"];
    assert!(top["deliver"].contains("approval"));
    for delivery in ["jobs", "deliver", "entry"] {
        assert!(
            !top["approval"].contains(delivery),
            "approval imports {delivery}"
        );
    }
    let kit = &graphs["shared/kit/src"];
    assert!(kit["card_update"].contains("api"));
    assert!(!kit["api"].contains("card_update"));
    assert!(
        graphs.contains_key("shared/kit/src/store/dynamo"),
        "nested folders are read"
    );
}

fn path(p: &str) -> ModPath {
    p.split("::").map(str::to_owned).collect()
}

#[test]
fn paths_are_resolved_groups_expanded_and_comments_skipped() {
    let module = path("approval::click");
    let code = code(
        "use crate::{jobs::X, cards::{Card, text}};\nuse super::views::render;\n\
         use super::super::store::Job;\n// crate::deliver\n    /// [`crate::feishu`]\n\
         let x = self::inner::f();\n#[cfg(test)]\nmod tests { use crate::webhook; }",
    );
    let found: BTreeSet<ModPath> = absolute_paths(&code, &module).into_iter().collect();
    let expected: BTreeSet<ModPath> = [
        "jobs::X",
        "cards::Card",
        "cards::text",
        "approval::views::render",
        "store::Job",
        "approval::click::inner::f",
    ]
    .into_iter()
    .map(path)
    .collect();
    assert_eq!(found, expected);
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
}

#[test]
fn re_exports_lead_to_the_defining_file() {
    let krate = read_crate("src");
    // `crate::approval::decide_click` is `pub use click::{decide_click, …}` in approval/mod.rs.
    assert_eq!(
        krate.target(&path("approval::decide_click")),
        path("approval::click")
    );
    assert_eq!(
        krate.target(&path("approval::views::pending_card")),
        path("approval::views")
    );
    let kit = read_crate("kit/src");
    assert_eq!(
        kit.target(&path("store::dynamo::DynamoStore")),
        path("store::dynamo")
    );
}
