//! Tidy checks: the architecture's invariants that a compiler does not enforce.
//!
//! - a backend crate (and the contract and local helpers) never depends, even transitively, on
//!   `nsauth-core` or on the share/signing crypto (age, rsa, rcgen, p256, p384, p521);
//! - the contract crate keeps a tiny, serde/time/url/zeroize-level dependency list;
//! - every path named in the codemap of docs/ARCHITECTURE.md exists.
//!
//! (That core names no store scheme and that exit codes are written in one place is checked by
//! `crates/nsauth-cli/tests/tidy.rs`.)

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

/// Package name of every package id, and each package's normal (non-dev, non-build)
/// dependencies by id, from the resolved graph.
struct Graph {
    names: HashMap<String, String>,
    normal: HashMap<String, Vec<String>>,
}

impl Graph {
    fn load() -> Self {
        let m = metadata();
        let names = m["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let normal = m["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let deps = n["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| {
                        d["dep_kinds"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|k| k["kind"].is_null())
                    })
                    .map(|d| d["pkg"].as_str().unwrap().to_owned())
                    .collect();
                (n["id"].as_str().unwrap().to_owned(), deps)
            })
            .collect();
        Graph { names, normal }
    }

    fn id(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("package {name} is not in the workspace graph"))
    }

    fn direct(&self, name: &str) -> BTreeSet<String> {
        self.normal[&self.id(name)]
            .iter()
            .map(|d| self.names[d].clone())
            .collect()
    }

    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.id(name)];
        while let Some(id) = todo.pop() {
            for d in &self.normal[&id] {
                if seen.insert(self.names[d].clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    }
}

const BACKENDS: &[&str] = &[
    "nsauth-store",
    "nsauth-store-local",
    "nsauth-store-sqlite",
    "nsauth-store-file",
    "nsauth-store-vault",
    "nsauth-store-aws",
    "nsauth-store-plugin",
    "nsauth-store-postgres",
];

const FORBIDDEN_IN_BACKENDS: &[&str] = &[
    "nsauth-core",
    "nsauth-emulator",
    "age",
    "rsa",
    "rcgen",
    "p256",
    "p384",
    "p521",
];

#[test]
fn backends_never_depend_on_core_or_its_crypto() {
    let g = Graph::load();
    let mut bad = Vec::new();
    for b in BACKENDS {
        let all = g.closure(b);
        assert!(
            !all.is_empty() || *b == "nsauth-store",
            "{b} has no dependencies at all?"
        );
        for f in FORBIDDEN_IN_BACKENDS {
            if all.contains(*f) {
                bad.push(format!("{b} depends on {f}"));
            }
        }
    }
    assert!(bad.is_empty(), "a backend pulls in core code: {bad:?}");
    // The check can fail: the CLI does depend on core and its crypto.
    let cli = g.closure("nsauth-cli");
    assert!(
        cli.contains("nsauth-core") && cli.contains("rsa"),
        "{cli:?}"
    );
}

#[test]
fn the_contract_has_a_tiny_dependency_list() {
    let g = Graph::load();
    let allowed: BTreeSet<String> = [
        "async-trait",
        "hex",
        "serde",
        "serde_json",
        "sha2",
        "thiserror",
        "time",
        "url",
        "zeroize",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let direct = g.direct("nsauth-store");
    let extra: Vec<_> = direct.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "nsauth-store must stay serde/time/url/zeroize-level; new dependencies: {extra:?}"
    );
    assert!(direct.contains("serde"), "{direct:?}");
}

/// Backticked repository paths in the codemap table.
fn codemap_paths(text: &str) -> Vec<String> {
    let table = text
        .split("## Codemap")
        .nth(1)
        .expect("ARCHITECTURE.md has a Codemap section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut out = Vec::new();
    for line in table.lines().filter(|l| l.starts_with('|')) {
        for (i, piece) in line.split('`').enumerate() {
            let top = [
                "crates/",
                "xtask/",
                "tests/",
                "docs/",
                "examples/",
                "contrib/",
                "fuzz/",
            ];
            if i % 2 == 1 && top.iter().any(|t| piece.starts_with(t)) {
                out.push(piece.trim_end_matches(',').to_owned());
            }
        }
    }
    out
}

#[test]
fn every_codemap_path_exists() {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let paths = codemap_paths(&text);
    assert!(
        paths.len() >= 20,
        "the codemap names too few paths: {paths:?}"
    );
    let missing: Vec<_> = paths.iter().filter(|p| !root().join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
    // The parser really finds paths: a made-up one would be reported.
    assert_eq!(
        codemap_paths("## Codemap\n| `crates/nope/x.rs` | y |\n## Next\n"),
        vec!["crates/nope/x.rs"]
    );
}
