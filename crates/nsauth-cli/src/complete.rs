//! Dynamic completion (clap_complete's `NSAUTH_COMPLETE=$SHELL nsauth` engine): everything the static
//! scripts of `nsauth completions` complete, plus the store's profile names after `--profile`,
//! `serve --profile`, `profile show|delete` and `audit --for-profile`.
//!
//! Completing a profile name only lists the store — never a login, a refresh or a NetSuite
//! call, never a file created, never a message on the terminal: a store that is missing, locked,
//! slow (over [`LIMIT`]) or failing gives no candidates.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use std::ffi::OsString;
use std::time::Duration;

/// The longest a completion waits for a (remote) store.
pub const LIMIT: Duration = Duration::from_secs(2);

/// The command line with the profile-name completers attached.
pub fn command() -> clap::Command {
    let names = || ArgValueCandidates::new(candidates);
    Cli::command()
        .mut_arg("profile", |a| a.add(names()))
        .mut_subcommand("serve", |s| s.mut_arg("profile", |a| a.add(names())))
        .mut_subcommand("audit", |s| s.mut_arg("for_profile", |a| a.add(names())))
        .mut_subcommand("profile", |p| {
            p.mut_subcommand("show", |s| s.mut_arg("name", |a| a.add(names())))
                .mut_subcommand("delete", |s| s.mut_arg("name", |a| a.add(names())))
        })
}

fn candidates() -> Vec<CompletionCandidate> {
    let words: Vec<OsString> = std::env::args_os().collect();
    profile_names(store_uri(&words).as_deref())
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The store the command line being completed names (`--store X`, `--store=X`), else
/// `NSAUTH_STORE`, else the default store.
fn store_uri(words: &[OsString]) -> Option<String> {
    // The shell passes `nsauth -- nsauth ARGS…`: only the words after `--` are the user's.
    let start = words.iter().position(|w| w == "--").map_or(0, |i| i + 1);
    let mut given = None;
    let mut it = words[start..].iter().filter_map(|w| w.to_str());
    while let Some(w) = it.next() {
        if w == "--store" {
            given = it.next().map(str::to_owned);
        } else if let Some(v) = w.strip_prefix("--store=") {
            given = Some(v.to_owned());
        }
    }
    given
        .or_else(|| std::env::var("NSAUTH_STORE").ok())
        .filter(|s| !s.is_empty())
        .or_else(|| nsauth::default_store_uri().ok())
}

/// The profile names in the store at `uri`, sorted; empty on any problem.
pub fn profile_names(uri: Option<&str>) -> Vec<String> {
    let Some(uri) = uri else {
        return Vec::new();
    };
    // A local store that does not exist yet stays that way: opening it would create it.
    for scheme in ["sqlite://", "file://"] {
        if let Some(path) = uri.strip_prefix(scheme) {
            if !std::path::Path::new(path).exists() {
                return Vec::new();
            }
        }
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let list = async {
        let store = nsauth::open_store(uri).ok()?;
        let names = tokio::time::timeout(LIMIT, store.list()).await.ok()?.ok()?;
        Some(names)
    };
    let listed = runtime.block_on(list);
    // A store call still running past the limit (a locked SQLite file waiting out its busy
    // timeout in a blocking thread) is left behind, not waited for.
    runtime.shutdown_background();
    let mut names: Vec<String> = listed
        .unwrap_or_default()
        .iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<OsString> {
        w.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_store_comes_from_the_line_being_completed() {
        let w = words(&[
            "nsauth",
            "--",
            "nsauth",
            "--store",
            "file:///x",
            "--profile",
            "p",
        ]);
        assert_eq!(store_uri(&w).as_deref(), Some("file:///x"));
        let w = words(&["nsauth", "--", "nsauth", "--store=sqlite:///y", "token"]);
        assert_eq!(store_uri(&w).as_deref(), Some("sqlite:///y"));
    }

    #[test]
    fn a_missing_or_broken_store_gives_no_candidates_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("none/nsauth.db");
        assert!(profile_names(Some(&format!("sqlite://{}", db.display()))).is_empty());
        assert!(!dir.path().join("none").exists());
        assert!(profile_names(Some("bogus://x")).is_empty());
        assert!(profile_names(Some("not a uri")).is_empty());
    }

    #[test]
    fn every_completer_is_attached_to_an_existing_argument() {
        // mut_arg panics on an unknown id: building the command is the check.
        command().build();
    }
}
