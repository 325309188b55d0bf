//! End to end: colour only into a terminal. With stdout and stderr pipes (a CI log), no escape
//! byte reaches either — from log lines, the parser's errors or a failed command's message —
//! unless `CLICOLOR_FORCE` asks for it; `NO_COLOR` wins over `CLICOLOR_FORCE`. stdout never
//! gets colour, forced or not.

use nsauth_e2e::*;
use std::process::Output;

const ESC: u8 = 0x1b;

fn has_escape(b: &[u8]) -> bool {
    b.contains(&ESC)
}

/// A sandbox whose audit log has a damaged line: reading it logs a warning.
fn sandbox() -> (Sandbox, String) {
    let sb = Sandbox::new(Kind::Sqlite);
    let log = sb.dir.path().join("audit.jsonl");
    std::fs::write(&log, "not json\n").unwrap();
    let log = log.display().to_string();
    (sb, log)
}

/// Runs the cases (a warning, a failed command, a parser error, verbose logging, JSON) with
/// `env` set and stdout and stderr pipes; each case's output.
fn cases(env: &[(&str, &str)]) -> Vec<(&'static str, Output)> {
    let (sb, log) = sandbox();
    let run = |args: &[&str]| {
        let mut c = sb.cmd();
        // A terminal type that supports colour: only the pipe should stop it.
        c.env("TERM", "xterm-256color").args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run nsauth")
    };
    let warning = run(&["--audit-log", &log, "audit"]);
    assert!(
        contains(&warning.stderr, "damaged line"),
        "no warning: {}",
        String::from_utf8_lossy(&warning.stderr)
    );
    let failed = run(&["--profile", "missing", "status"]);
    assert_exit(&failed, 2, &["status of a missing profile"]);
    let usage = run(&["--no-such-flag"]);
    assert_exit(&usage, 2, &["--no-such-flag"]);
    vec![
        ("warning", warning),
        ("failed command", failed),
        ("parser error", usage),
        (
            "verbose",
            run(&["-vvv", "--audit-log", &log, "profile", "list"]),
        ),
        ("json", run(&["--audit-log", &log, "audit", "--json"])),
        (
            "hostile profile name",
            run(&["--profile", "\u{1b}[31mred", "status"]),
        ),
    ]
}

#[test]
fn nothing_written_into_a_pipe_holds_an_escape_sequence() {
    for env in [&[][..], &[("CLICOLOR", "1")], &[("CLICOLOR_FORCE", "0")]] {
        for (what, out) in cases(env) {
            assert!(
                !has_escape(&out.stderr),
                "{what} with {env:?}: escape on stderr: {:?}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !has_escape(&out.stdout),
                "{what} with {env:?}: escape on stdout"
            );
        }
    }
}

#[test]
fn clicolor_force_colours_stderr_even_into_a_pipe_but_never_stdout() {
    let outs = cases(&[("CLICOLOR_FORCE", "1")]);
    for (what, out) in &outs {
        if ["warning", "failed command", "parser error"].contains(what) {
            assert!(
                has_escape(&out.stderr),
                "{what}: CLICOLOR_FORCE=1 gave no colour"
            );
        }
        assert!(!has_escape(&out.stdout), "{what}: colour on stdout");
    }
    let (_, hostile) = outs
        .iter()
        .find(|(w, _)| *w == "hostile profile name")
        .unwrap();
    assert!(
        !contains(&hostile.stderr, "\u{1b}[31mred"),
        "the profile name's own escape was echoed"
    );
}

#[test]
fn no_color_wins_over_clicolor_force() {
    for value in ["1", "0", "anything"] {
        for (what, out) in cases(&[("NO_COLOR", value), ("CLICOLOR_FORCE", "1")]) {
            assert!(!has_escape(&out.stderr), "{what} with NO_COLOR={value}");
            assert!(!has_escape(&out.stdout), "{what} with NO_COLOR={value}");
        }
    }
}
