//! End to end: many processes starting at once on a fresh machine (no key file, no store)
//! all succeed, end up with one store key, and can read every record the others wrote.

use nsauth_e2e::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const PROCESSES: usize = 32;
/// Rounds per test; `NSAUTH_FIRST_RUN_ROUNDS` raises it for a longer hunt.
fn rounds() -> usize {
    std::env::var("NSAUTH_FIRST_RUN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// A command on `sb`'s fresh HOME with neither `NSAUTH_STORE_KEY` nor (for the default
/// store) `NSAUTH_STORE`: the key file and the store are created by whoever comes first.
fn fresh_cmd(sb: &Sandbox, store: Option<&str>) -> Command {
    let mut c = sb.cmd();
    c.env_remove("NSAUTH_STORE_KEY");
    match store {
        Some(uri) => c.env("NSAUTH_STORE", uri),
        None => c.env_remove("NSAUTH_STORE"),
    };
    c
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Starts every command behind a gate (a shell waiting for a line on stdin), then opens the
/// gate for all of them at once, so that they reach their first file-system calls together
/// instead of one fork apart.
async fn run_at_once(cmds: impl IntoIterator<Item = Command>) -> Vec<Output> {
    let mut children: Vec<_> = cmds
        .into_iter()
        .map(|c| {
            let mut gated = Command::new("sh");
            gated
                .env_clear()
                .args(["-c", "read _ && exec \"$0\" \"$@\""])
                .arg(c.get_program())
                .args(c.get_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    gated.env(k, v);
                }
            }
            gated.spawn().expect("spawn sh")
        })
        .collect();
    let gates: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdin.take().unwrap())
        .collect();
    for mut g in gates {
        g.write_all(b"go\n").expect("open the gate");
    }
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect()
    })
    .await
    .expect("join")
}

async fn storm(emu: &nsauth_emulator::Emulator, file_store: bool) {
    let base = emu.base_url();
    for round in 0..rounds() {
        let sb = Sandbox::new(Kind::Sqlite);
        let uri =
            file_store.then(|| format!("file://{}", sb.dir.path().join("profiles").display()));
        let cmds = (0..PROCESSES).map(|i| {
            let mut c = fresh_cmd(&sb, uri.as_deref());
            if i % 4 == 3 {
                // Readers start at the same moment as the writers.
                c.args(["profile", "list"]);
            } else {
                c.args([
                    "profile",
                    "set",
                    &format!("p{i}"),
                    "--account-id",
                    emu.account_id(),
                    "--client-id",
                    PUBLIC_CLIENT,
                    "--redirect-uri",
                    REDIRECT,
                    "--scope",
                    "rest_webservices",
                    "--base-url",
                    &base,
                ]);
            }
            c
        });
        let outs = run_at_once(cmds).await;
        for (i, o) in outs.iter().enumerate() {
            assert_ok(
                o,
                &[&format!(
                    "round {round}, process {i}, file store {file_store}"
                )],
            );
        }
        let key_dir = sb.dir.path().join("config/nsauth");
        assert_eq!(
            files_in(&key_dir),
            ["store.key"],
            "round {round}: one key file, nothing else"
        );
        // Every record opens with that one key.
        let listed = fresh_cmd(&sb, uri.as_deref())
            .args(["profile", "list"])
            .output()
            .unwrap();
        assert_ok(&listed, &["profile list after the storm"]);
        let listed = String::from_utf8(listed.stdout).unwrap();
        let writers = (0..PROCESSES).filter(|i| i % 4 != 3).count();
        assert_eq!(listed.lines().count(), writers, "round {round}: {listed}");
        for i in (0..PROCESSES).filter(|i| i % 4 != 3) {
            let out = fresh_cmd(&sb, uri.as_deref())
                .args(["profile", "show", &format!("p{i}")])
                .output()
                .unwrap();
            assert_ok(&out, &["profile show after the storm"]);
        }
        if !file_store {
            let data = sb.dir.path().join("share/nsauth");
            let db: Vec<_> = files_in(&data)
                .into_iter()
                .filter(|f| {
                    f.starts_with("nsauth.db") && !f.ends_with("-wal") && !f.ends_with("-shm")
                })
                .collect();
            assert_eq!(db, ["nsauth.db"], "round {round}: one database");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_runs_on_the_default_sqlite_store_all_succeed() {
    let emu = emulator().await;
    storm(&emu, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_runs_on_a_file_store_all_succeed() {
    let emu = emulator().await;
    storm(&emu, true).await;
}
