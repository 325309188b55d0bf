//! Startup: where a cached `token` (sqlite) spends its time — the binary's size and dynamic
//! relocations, `strace` (syscall mix, what happens before the first store access) and
//! `callgrind` (instructions, top functions).

use super::render::group_digits;
use super::run::{Sandbox, Store};
use super::{log, Results};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

/// strace and callgrind on a cached `token` (sqlite).
pub(super) fn startup_profile(
    sb: &Sandbox,
    store: &Store,
    all: &[Store],
    tmp: &Path,
    res: &mut Results,
) {
    binary_info(sb, res);
    let mut token = sb.nsauth(Some(store));
    token.args(TOKEN_ARGS);
    strace(&token, store, tmp, res);
    // callgrind: instructions and where they go.
    let mut ver = sb.nsauth(None);
    ver.arg("--version");
    let mut list = sb.nsauth(None);
    list.args([
        "--store",
        &format!("sqlite://{}", tmp.join("empty/nsauth.db").display()),
    ]);
    list.args(["profile", "list"]);
    let mut runs: Vec<(String, Command)> = vec![
        ("nsauth --version".into(), ver),
        ("nsauth profile list (empty sqlite store)".into(), list),
        ("nsauth token (sqlite, cached)".into(), token),
    ];
    for other in all
        .iter()
        .filter(|s| s.label != "sqlite" && super::setup::family(s.label) == s.label)
    {
        let mut c = sb.nsauth(Some(other));
        c.args(TOKEN_ARGS);
        runs.push((format!("nsauth token ({}, cached)", other.label), c));
    }
    for (name, cmd) in &runs {
        callgrind(name, cmd, tmp, res);
    }
}

const TOKEN_ARGS: [&str; 3] = ["--profile", "hot", "token"];

/// The binary: size and the dynamic relocations the loader applies at every start.
fn binary_info(sb: &Sandbox, res: &mut Results) {
    let size = std::fs::metadata(&sb.bin).map_or(0, |m| m.len());
    res.binary.push(format!(
        "{}: {} bytes",
        sb.bin.display(),
        group_digits(size)
    ));
    if let Ok(o) = Command::new("readelf").arg("-d").arg(&sb.bin).output() {
        res.binary.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| {
                    ["RELACOUNT", "RELASZ", "RELRSZ", "FLAGS", "NEEDED"]
                        .iter()
                        .any(|k| l.contains(k))
                })
                .map(|l| l.trim().to_owned()),
        );
    }
}

/// `strace -c` (the syscall mix) and `strace -ttt` (what happens before the first store
/// access) of one cached `token`.
fn strace(token: &Command, store: &Store, tmp: &Path, res: &mut Results) {
    let db = store.uri.trim_start_matches("sqlite://").to_owned();
    let out = tmp.join("strace-c.txt");
    if run_wrapped("strace", &["-f", "-c", "-S", "calls", "-o"], &out, token) {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        res.strace_summary = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(20)
            .map(str::to_owned)
            .collect();
        if let Some(total) = text.lines().find(|l| l.contains("total")) {
            res.strace_summary.push(total.to_owned());
        }
    } else {
        res.notes
            .push("strace unavailable: no syscall profile".into());
    }
    let out = tmp.join("strace-t.txt");
    if run_wrapped(
        "strace",
        &[
            "-f",
            "-ttt",
            "-e",
            "trace=%file,%network,%process,mmap",
            "-o",
        ],
        &out,
        token,
    ) {
        res.strace_timeline = timeline(&std::fs::read_to_string(&out).unwrap_or_default(), &db);
    }
}

/// One command under callgrind: its instruction count, and for `token` its top functions.
fn callgrind(name: &str, cmd: &Command, tmp: &Path, res: &mut Results) {
    let out = tmp.join(format!("callgrind.{}.out", res.callgrind.len()));
    let arg = format!("--callgrind-out-file={}", out.display());
    if !run_wrapped(
        "valgrind",
        &["--tool=callgrind", "-q", &arg],
        Path::new(""),
        cmd,
    ) {
        res.notes.push(format!(
            "valgrind/callgrind failed on {name}: no instruction counts"
        ));
        return;
    }
    let annotate = |extra: &[&str]| -> String {
        Command::new("callgrind_annotate")
            .args(extra)
            .arg(&out)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let plain = annotate(&[]);
    let total = plain
        .lines()
        .find(|l| l.contains("PROGRAM TOTALS"))
        .and_then(|l| l.split_whitespace().next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    res.callgrind.push((name.to_owned(), total));
    if name.starts_with("nsauth token (sqlite") {
        res.callgrind_self = top_functions(&plain, 15, false);
        res.callgrind_incl = top_functions(&annotate(&["--inclusive=yes"]), 25, false);
    } else if name.starts_with("nsauth token") {
        res.callgrind_remote.push((
            name.to_owned(),
            top_functions(&annotate(&["--inclusive=yes"]), 20, true),
        ));
    }
}

/// Runs `cmd` under `tool ARGS [OUT]`, with `cmd`'s environment. `true` on success.
fn run_wrapped(tool: &str, args: &[&str], out: &Path, cmd: &Command) -> bool {
    let mut t = Command::new(tool);
    t.args(args);
    if !out.as_os_str().is_empty() {
        t.arg(out);
    }
    t.arg(cmd.get_program()).args(cmd.get_args());
    t.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    t.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match t.output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            log(format!(
                "{tool} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            false
        }
        Err(e) => {
            log(format!("cannot run {tool}: {e}"));
            false
        }
    }
}

/// From an `strace -f -ttt` log: the time to the first access of the store file and the
/// files and sockets touched before it.
fn timeline(text: &str, db: &str) -> Vec<String> {
    let ts = |l: &str| -> Option<f64> { l.split_whitespace().nth(1)?.parse().ok() };
    let lines: Vec<&str> = text.lines().collect();
    let Some(t0) = lines.first().and_then(|l| ts(l)) else {
        return vec![];
    };
    let end = lines.iter().rev().find_map(|l| ts(l)).unwrap_or(t0);
    let first_store = lines
        .iter()
        .position(|l| l.contains(db) && !l.contains("execve"));
    let mut out = vec![];
    let total_ms = (end - t0) * 1000.0;
    match first_store {
        Some(i) => {
            let at = ts(lines[i]).unwrap_or(t0);
            out.push(format!(
                "first access to the store file at {:.1} ms of {:.1} ms (under strace, which slows syscalls)",
                (at - t0) * 1000.0,
                total_ms
            ));
            let mut seen = BTreeSet::new();
            let mut mmaps = 0;
            for l in &lines[..i] {
                if l.contains(" mmap(") {
                    mmaps += 1;
                    continue;
                }
                let call = l
                    .split_whitespace()
                    .nth(2)
                    .unwrap_or_default()
                    .split('(')
                    .next()
                    .unwrap_or_default();
                let path = l.split('"').nth(1).unwrap_or_default();
                let item = if path.is_empty() {
                    call.to_owned()
                } else {
                    format!("{call} {path}")
                };
                if seen.insert(item.clone()) {
                    let when = ts(l).map_or(0.0, |t| (t - t0) * 1000.0);
                    out.push(format!("{when:7.1} ms  {item}"));
                }
            }
            out.push(format!("(and {mmaps} mmap calls before the store access)"));
        }
        None => out.push(format!(
            "the store file {db} was not seen in the trace ({total_ms:.1} ms in total)"
        )),
    }
    out
}

/// Frames every call goes through (runtime, loader, closures): left out of the filtered lists.
const GENERIC_FRAMES: &[&str] = &[
    "(below main)",
    "libc-start",
    "libc_start",
    "std::rt::",
    "std::sys::backtrace",
    "tokio::runtime::",
    "LocalKey",
    "???:main",
    "nsauth::main",
    "FnOnce::call_once",
    "???:0x",
    "nsauth::commands::run",
    "core::ops::function",
];

fn top_functions(annotated: &str, n: usize, filter_generic: bool) -> Vec<String> {
    annotated
        .lines()
        .map(str::trim)
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|l| !l.contains("PROGRAM TOTALS"))
        .filter(|l| !filter_generic || !GENERIC_FRAMES.iter().any(|g| l.contains(g)))
        .take(n)
        .map(|l| {
            let mut s = demangle_hashes(l);
            // Drop the object file suffix `[/path/nsauth]`.
            if let Some(i) = s.rfind(" [") {
                s.truncate(i);
            }
            if s.chars().count() > 150 {
                s = s.chars().take(147).collect::<String>() + "...";
            }
            s
        })
        .collect()
}

/// Removes rustc's `::h0123456789abcdef` symbol hashes.
pub(super) fn demangle_hashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("::h") {
        let hash = &rest[i + 3..];
        let hex = hash.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(&rest[..i]);
        if hex == 16 {
            rest = &hash[16..];
        } else {
            out.push_str("::h");
            rest = hash;
        }
    }
    out.push_str(rest);
    out
}
