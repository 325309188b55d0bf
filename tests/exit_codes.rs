//! End to end: a store URI this build cannot open is a configuration error — exit 2, one line
//! on stderr saying what to do, and nothing created on disk — whichever command is run and
//! whether the URI comes from `--store` or `NSAUTH_STORE`.

use nsauth_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Every file and directory under `dir`.
fn everything_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Asserts exit 2, a single `error: ...` line on stderr holding every one of `says`, and an
/// untouched sandbox.
fn assert_config_error(sb: &Sandbox, out: &Output, args: &[&str], says: &[&str]) {
    assert_exit(out, 2, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "nsauth {args:?}: one line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "nsauth {args:?}: {stderr}");
    for s in says {
        assert!(
            lines[0].contains(s),
            "nsauth {args:?}: {s:?} missing in: {stderr}"
        );
    }
    let created = everything_under(sb.dir.path());
    assert!(created.is_empty(), "nsauth {args:?} created {created:#?}");
}

/// The registry's own refusals: no scheme, an unknown scheme, nothing after the scheme.
#[test]
fn a_store_uri_the_registry_cannot_open_exits_2() {
    let cases: &[(&str, &[&str])] = &[
        (
            "bogus://x",
            &["unknown store scheme \"bogus\"", "nsauth backends"],
        ),
        (
            "BOGUS://x/y?z=1",
            &["unknown store scheme", "nsauth backends"],
        ),
        ("nonsense", &["expected SCHEME://", "nsauth backends"]),
        ("sqlite://", &["needs a location after sqlite://"]),
        ("file://", &["needs a location after file://"]),
        ("vault://", &["needs a location after vault://"]),
        ("sqlite://data/\u{1b}[2Jx.db", &["invalid store URI"]),
    ];
    for (uri, says) in cases {
        for command in [
            &["status"][..],
            &["token"],
            &["refresh", "--force"],
            &["profile", "list"],
        ] {
            let sb = Sandbox::new(Kind::Sqlite);
            let mut args = vec!["--store", uri];
            args.extend_from_slice(command);
            let out = sb.run(&args);
            assert_config_error(&sb, &out, &args, says);
            assert!(
                !contains(&out.stderr, "\u{1b}"),
                "control characters are escaped: {:?}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The same from the environment.
        let sb = Sandbox::remote((*uri).to_owned(), Vec::new());
        let out = sb.run(&["status"]);
        assert_config_error(&sb, &out, &["status", "(NSAUTH_STORE)"], says);
    }
}

/// `doctor` reports the bad URI as its failed store check, with the same exit code.
#[test]
fn doctor_on_a_bad_store_uri_exits_2() {
    let sb = Sandbox::new(Kind::Sqlite);
    let out = sb.run(&["--store", "bogus://x", "doctor", "--json"]);
    assert_exit(&out, 2, &["doctor --store bogus://x"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let checks = &v["checks"];
    assert_eq!(checks[0]["check"], "store");
    assert_eq!(checks[0]["status"], "fail");
    assert!(
        checks[0]["fix"]
            .as_str()
            .unwrap()
            .contains("nsauth backends"),
        "{checks}"
    );
    assert!(everything_under(sb.dir.path()).is_empty());
}

/// URIs with a known scheme that its backend refuses. The backends turn their URI errors into
/// `StoreError::Config`; before that, these exited 4 ("store unavailable").
/// A store URI made from the sandbox directory, and what the error must say.
type Case = (fn(&str) -> String, &'static [&'static str]);

#[test]
fn a_store_uri_its_backend_refuses_exits_2() {
    // Each URI is made from the sandbox directory, so that anything it created is seen.
    let cases: &[Case] = &[
        (|_| "vault://127.0.0.1:8200".into(), &["expected vault://"]),
        (|_| "vault://127.0.0.1:8200/".into(), &["expected vault://"]),
        (
            |dir| format!("file://{dir}/profiles?colour=blue"),
            &["unknown option", "key-file"],
        ),
        (
            |dir| format!("sqlite://{dir}/nsauth.db?key-file="),
            &["key-file needs a path"],
        ),
    ];
    for (uri, says) in cases {
        let sb = Sandbox::new(Kind::Sqlite);
        let uri = uri(&sb.dir.path().display().to_string());
        let args = ["--store", uri.as_str(), "status"];
        let out = sb.run(&args);
        assert_config_error(&sb, &out, &args, says);
    }
}

/// `migrate --to` a URI that cannot be opened refuses before the source store is opened, so a
/// source that does not exist yet is not created by a command that then fails.
#[test]
fn migrate_to_a_bad_uri_creates_no_source_store() {
    for to in ["bogus://x", "nonsense", "vault://127.0.0.1:8200"] {
        let sb = Sandbox::new(Kind::Sqlite);
        let src = format!("sqlite://{}/never.db", sb.dir.path().display());
        let args = ["--store", src.as_str(), "migrate", "--to", to, "--all"];
        let out = sb.run(&args);
        assert_config_error(&sb, &out, &args, &[]);
    }
}
