//! Exit codes are decided in one function (`nsauth::exit_code`, crates/nsauth/src/exit.rs).
//!
//! This test reads the sources of the CLI, the agent, the library and nsauth-core and fails when an exit-code
//! number is written anywhere else: a command returning `Ok(3)`, a check built with
//! `exit_code: 3`, `std::process::exit(...)`, a match arm or block yielding a bare code. Core
//! decides kinds (`Error::kind`), commands end with an `Exit`; only `exit.rs` knows numbers.

use std::path::{Path, PathBuf};

/// Code shapes that hard-code an exit code; `#` stands for one ASCII digit.
const FORBIDDEN: &[&str] = &[
    "Ok(#)",
    "exit_code: #",
    "exit_code == #",
    ".exit_code()",
    "process::exit(",
    "ExitCode::from(#",
    "ExitCode::SUCCESS",
    "ExitCode::FAILURE",
    "Exit::Child(#",
    "=> #,",
    "{ # }",
    "return #;",
];

/// The one file allowed to hold exit-code numbers.
const THE_ONE_FUNCTION: &str = "crates/nsauth/src/exit.rs";

fn matches_at(line: &[u8], pattern: &[u8]) -> bool {
    line.len() >= pattern.len()
        && pattern.iter().zip(line).all(|(p, c)| match p {
            b'#' => c.is_ascii_digit(),
            p => p == c,
        })
}

/// The forbidden shapes found in `text`, as `line: shape`. Comment lines are skipped.
fn hard_coded(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let bytes = line.as_bytes();
        for pattern in FORBIDDEN {
            if (0..bytes.len()).any(|i| matches_at(&bytes[i..], pattern.as_bytes())) {
                found.push(format!("{}: {pattern}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_patterns_catch_what_they_are_meant_to() {
    for bad in [
        "        Ok(3)",
        "    Ok(if resp.status == 401 { 3 } else { 1 })",
        "            exit_code: 3,",
        ".filter(|f| f.exit_code == 3)",
        "    std::process::exit(4);",
        "    ExitCode::from(1)",
        "        Error::Invalid(_) => 2,",
        "        return 5;",
        "    let code = u8::try_from(err.exit_code()).unwrap_or(1);",
    ] {
        assert!(!hard_coded(bad).is_empty(), "not caught: {bad}");
    }
    for fine in [
        "    Ok(Exit::Success)",
        "    ExitCode::from(exit::exit_code(&e))",
        "        .map_or(Exit::Failed(FailureKind::Other), Exit::Child))",
        "    /// Bad input (`Ok(3)` was how it looked before).",
        "    let v = vec![0u8; 32];",
    ] {
        assert!(hard_coded(fine).is_empty(), "false alarm: {fine}");
    }
}

#[test]
fn exit_codes_are_written_only_in_the_one_function() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in [
        "crates/nsauth-cli/src",
        "crates/nsauth-core/src",
        "crates/nsauth/src",
        "crates/nsauth-agent/src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let the_one = root.join(THE_ONE_FUNCTION);
    assert!(
        files.contains(&the_one),
        "{THE_ONE_FUNCTION} is scanned: {} files",
        files.len()
    );
    assert!(
        files.len() > 40,
        "the walk found only {} files",
        files.len()
    );
    let mut elsewhere = Vec::new();
    let mut in_the_one = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let found = hard_coded(&text);
        if *f == the_one {
            in_the_one = found;
        } else {
            let shown = f.strip_prefix(&root).unwrap_or(f).display().to_string();
            elsewhere.extend(found.into_iter().map(|m| format!("{shown}:{m}")));
        }
    }
    // Not trivially passing: the one function's own codes are found.
    for code in 1..=5 {
        assert!(
            in_the_one
                .iter()
                .any(|m| m.contains(&format!("=> {code},"))),
            "exit code {code} not found in {THE_ONE_FUNCTION}: {in_the_one:#?}"
        );
    }
    assert!(
        elsewhere.is_empty(),
        "exit codes are decided only in {THE_ONE_FUNCTION} (return an Exit or an Error of the \
         right kind instead):\n{}",
        elsewhere.join("\n")
    );
}

/// "Core never learns about a store": its code names no backend scheme (it asks a store for
/// its capabilities instead). Test code may use such names as sample identities.
#[test]
fn core_code_names_no_store_scheme() {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("crates/nsauth-core/src"), &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            for scheme in ["sqlite", "file://", "vault", "aws-sm"] {
                if line.to_ascii_lowercase().contains(scheme) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        files.len() > 20,
        "the walk found only {} files",
        files.len()
    );
    assert!(
        found.is_empty(),
        "core names a store:\n{}",
        found.join("\n")
    );
}
