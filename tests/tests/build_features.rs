//! Every build selection enables the same features on the dependencies it shares with the others.
//! `make test` builds the workspace with dev-dependencies, `make run` builds `cardbot-local`, and
//! `cargo lambda watch` runs one function at a time; a feature that only one of them turns on makes
//! cargo compile every dependent crate again for that selection, which on a cold machine costs
//! minutes (and the make-run test its deadline). The `workspace-hack` crate holds the union.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Features = BTreeMap<String, BTreeSet<String>>;

/// `cargo tree` for one selection: each package (`name vX.Y.Z`) with the features enabled on it.
fn features(selection: &[&str]) -> Features {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--locked", "--prefix", "none", "-f", "{p} {f}"])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .args(selection)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree {selection:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found = Features::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        let enabled = found.entry(format!("{name} {version}")).or_default();
        for word in words.filter(|w| !w.starts_with('(')) {
            enabled.extend(word.split(',').filter(|f| !f.is_empty()).map(str::to_owned));
        }
    }
    found
}

#[test]
fn every_build_selection_enables_the_same_dependency_features() {
    let selections: [(&str, &[&str]); 6] = [
        ("make test", &["-e", "normal,build,dev"]),
        ("make run", &["-p", "cardbot-tests", "-e", "normal,build"]),
        (
            "the three functions",
            &[
                "-p",
                "event-callback",
                "-p",
                "card-action",
                "-p",
                "card-updater",
            ],
        ),
        ("event-callback alone", &["-p", "event-callback"]),
        ("card-action alone", &["-p", "card-action"]),
        ("card-updater alone", &["-p", "card-updater"]),
    ];
    let trees: Vec<(&str, Features)> = selections
        .iter()
        .map(|(name, args)| (*name, features(args)))
        .collect();
    let mut union = Features::new();
    for (_, tree) in &trees {
        for (package, enabled) in tree {
            union
                .entry(package.clone())
                .or_default()
                .extend(enabled.iter().cloned());
        }
    }
    assert!(union.contains_key(&format!("serde_json v{}", serde_json_version())));
    let mut differences = Vec::new();
    for (name, tree) in &trees {
        for (package, enabled) in tree {
            let missing: Vec<_> = union[package].difference(enabled).collect();
            if !missing.is_empty() {
                differences.push(format!("{name}: {package} lacks {missing:?}"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "add these features to workspace-hack/Cargo.toml:\n{}",
        differences.join("\n")
    );
}

/// The locked serde_json version, so the check above knows `cargo tree` listed real packages.
fn serde_json_version() -> String {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"))
        .unwrap();
    let at = lock.find("name = \"serde_json\"\nversion = \"").unwrap();
    let rest = &lock[at + "name = \"serde_json\"\nversion = \"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}
