//! End to end: what scripts read. `token --json` is the agent's token object (from the store
//! and through `--via`), `token --header` one exact line, every `--json` output an object with
//! `"schema": 1`, and a command without a JSON form refuses `--json` (exit 2) instead of
//! printing text a script would mis-read.

use nsauth_e2e::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::Duration;

fn json(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Checks the token object's fields and types; returns the token.
fn assert_token_object(v: &Value, emu: &nsauth_emulator::Emulator) -> String {
    assert_eq!(
        keys(v),
        BTreeSet::from([
            "schema",
            "access_token",
            "token_type",
            "expires_at",
            "account_id",
            "rest_url"
        ]),
        "{v}"
    );
    assert_eq!(v["schema"], 1, "schema is the number 1: {v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["account_id"], emu.account_id());
    let rest = v["rest_url"].as_str().expect("rest_url is a string");
    assert!(
        rest.starts_with(&emu.base_url()) && rest.ends_with("/services/rest/"),
        "{v}"
    );
    // RFC 3339, UTC, whole seconds, in the future.
    let at = v["expires_at"].as_str().expect("expires_at is a string");
    let b = at.as_bytes();
    assert!(
        at.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[13] == b':' && at.ends_with('Z'),
        "expires_at {at:?} is not RFC 3339 UTC"
    );
    assert!(at > "2026-01-01T00:00:00Z", "{at}");
    v["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_json_is_the_token_object_and_header_is_one_exact_line() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let bare = sb.ok(&["--profile", "prod", "token"]);
    // --json after the subcommand, or before it (a global flag): the same object.
    for args in [
        ["--profile", "prod", "token", "--json"],
        ["--profile", "prod", "--json", "token"],
    ] {
        let out = sb.ok(&args);
        assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
        let v = json(&out, "token --json");
        let token = assert_token_object(&v, &emu);
        assert_eq!(
            format!("{token}\n"),
            bare,
            "the same token as plain `token`"
        );
        assert!(token_works(&emu, &token).await);
    }
    let header = sb.ok(&["--profile", "prod", "token", "--header"]);
    assert_eq!(header, format!("Authorization: Bearer {bare}"));
    // The two forms cannot be combined, on either side of the subcommand; nothing printed.
    for args in [
        ["--profile", "prod", "token", "--json", "--header"],
        ["--profile", "prod", "token", "--header", "--json"],
        ["--profile", "prod", "--json", "token", "--header"],
    ] {
        let out = sb.run(&args);
        assert_exit(&out, 2, &args);
        assert!(out.stdout.is_empty(), "{args:?} printed a token");
        assert!(contains(&out.stderr, "cannot be used with"), "{args:?}");
    }
}

/// A running `nsauth serve`, killed on drop.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(sb: &Sandbox, socket: &str) -> Agent {
    let run = sb.dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut child = sb
        .cmd()
        .env("XDG_RUNTIME_DIR", &run)
        .args(["serve", "--profile", "prod", "--listen", socket])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn nsauth serve");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let agent = Agent(child);
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("nsauth serve: profiles") => return agent,
            Ok(_) => {}
            Err(e) => panic!("nsauth serve did not get ready: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_json_through_an_agent_is_the_same_object_as_from_the_store() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let from_store = json(&sb.ok(&["--profile", "prod", "token", "--json"]), "store");
    let socket = format!("unix:{}/nsauth/a.sock", sb.dir.path().join("run").display());
    let _agent = start_agent(&sb, &socket);
    // A wrong store key: the answer can only have come from the agent.
    let via = |args: &[&str]| {
        let out = sb
            .cmd()
            .env(
                "NSAUTH_STORE_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .args(["--profile", "prod", "token", "--via", &socket])
            .args(args)
            .output()
            .unwrap();
        assert_ok(&out, args);
        String::from_utf8(out.stdout).unwrap()
    };
    let from_agent = json(&via(&["--json"]), "token --via --json");
    assert_token_object(&from_agent, &emu);
    assert_eq!(from_agent, from_store, "one store, one token, one object");
    let bare = via(&[]);
    assert_eq!(via(&["--header"]), format!("Authorization: Bearer {bare}"));
    assert_eq!(
        format!("{}\n", from_agent["access_token"].as_str().unwrap()),
        bare
    );
}

/// Commands with a JSON form, each run with `--json` in a sandbox that makes it succeed (or
/// fail in its documented way, like `check` on an expiring profile).
const WITH_JSON: [&str; 17] = [
    "conformance",
    "token",
    "refresh",
    "status",
    "check",
    "profile list",
    "profile show",
    "m2m keygen",
    "m2m rotate",
    "share keygen",
    "share export",
    "share import",
    "migrate",
    "audit",
    "doctor",
    "backends",
    "status --all",
];

/// Commands without one, with arguments that would otherwise run: `--json` is refused
/// before anything runs.
const WITHOUT_JSON: [(&str, &[&str]); 12] = [
    (
        "profile set",
        &["profile", "set", "new", "--account-id", "1"],
    ),
    ("profile delete", &["profile", "delete", "prod"]),
    ("login", &["login", "--no-browser"]),
    ("login start", &["login", "start"]),
    ("login finish", &["login", "finish"]),
    ("revoke", &["revoke"]),
    ("exec", &["exec", "--", "true"]),
    ("api", &["api", "GET", "record/v1/metadata-catalog"]),
    ("serve", &["serve"]),
    ("completions", &["completions", "bash"]),
    ("emulator", &["emulator"]),
    ("demo", &["demo"]),
];

#[test]
fn every_command_either_has_a_json_form_or_refuses_json() {
    let sb = Sandbox::new(Kind::Sqlite);
    let listed = listed_commands(&sb);
    assert!(
        listed.contains("profile set") && listed.contains("token"),
        "{listed:?}"
    );
    for cmd in &listed {
        assert!(
            WITH_JSON.contains(&cmd.as_str()) || WITHOUT_JSON.iter().any(|(n, _)| n == cmd),
            "`nsauth {cmd}` is new: give it a schema-1 JSON form and add it to WITH_JSON, or add it to WITHOUT_JSON"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_output_is_an_object_with_schema_1() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let p = |name: &str| sb.dir.path().join(name).display().to_string();
    // A client-credentials profile for `m2m rotate`.
    let (k0, k1, key) = (p("k0"), p("k1"), p("k0/private-key.pem"));
    sb.ok(&["m2m", "keygen", "--out", &k0]);
    let base = emu.base_url();
    sb.ok(&[
        "profile",
        "set",
        "m2m",
        "--grant",
        "client-credentials",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "m2m-client",
        "--scope",
        "rest_webservices",
        "--certificate-id",
        "OLD",
        "--private-key-file",
        &key,
        "--base-url",
        &base,
    ]);
    let other = Sandbox::new(Kind::File);
    let (identity, bundle) = (p("id.txt"), p("bundle.age"));
    let mut seen = BTreeSet::new();
    // `code`: the exit code expected; None for commands whose code depends on the
    // emulator's token lifetimes (check: 3 when the refresh token ends within 24 h;
    // doctor: the worst check) — their JSON is printed either way.
    let mut run = |what: &'static str, args: &[&str], code: Option<i32>| -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = sb.run(&args);
        if let Some(code) = code {
            assert_exit(&out, code, &args);
        }
        let text = String::from_utf8(out.stdout).unwrap();
        let v = json(&text, what);
        assert!(v.is_object(), "{what}: an object, not {v}");
        assert_eq!(v["schema"], 1, "{what}: {text}");
        seen.insert(what);
        v
    };
    run("token", &["--profile", "prod", "token"], Some(0));
    let scratch = format!("sqlite://{}", p("conformance.db"));
    let suite = run(
        "conformance",
        &["--store", &scratch, "conformance", "--only", "round_trip"],
        Some(0),
    );
    assert!(suite["checks"].is_array(), "{suite}");
    run("refresh", &["--profile", "prod", "refresh"], Some(0));
    run("status", &["--profile", "prod", "status"], Some(0));
    let all = run("status --all", &["status", "--all"], Some(0));
    assert!(all["profiles"].is_array(), "{all}");
    let check = run("check", &["check", "--all"], None);
    assert!(check["profiles"].is_array(), "{check}");
    let list = run("profile list", &["profile", "list"], Some(0));
    assert_eq!(list["profiles"], serde_json::json!(["m2m", "prod"]));
    run("profile show", &["profile", "show", "prod"], Some(0));
    run("m2m keygen", &["m2m", "keygen", "--out", &k1], Some(0));
    run(
        "m2m rotate",
        &["--profile", "m2m", "m2m", "rotate"],
        Some(0),
    );
    let recipient = run(
        "share keygen",
        &["share", "keygen", "--out", &identity],
        Some(0),
    )["recipient"]
        .as_str()
        .expect("recipient")
        .to_owned();
    run(
        "share export",
        &[
            "--profile",
            "prod",
            "share",
            "export",
            "--recipient",
            &recipient,
            "--out",
            &bundle,
        ],
        Some(0),
    );
    run(
        "share import",
        &[
            "share",
            "import",
            &bundle,
            "--identity",
            &identity,
            "--as",
            "copy",
            "--yes",
        ],
        Some(0),
    );
    let migrate = run(
        "migrate",
        &["migrate", "--to", &other.store_uri, "--all", "--dry-run"],
        Some(0),
    );
    assert!(migrate["profiles"].is_array(), "{migrate}");
    let audit = run("audit", &["audit"], Some(0));
    assert!(
        audit["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{audit}"
    );
    let doctor = run("doctor", &["--profile", "prod", "doctor"], None);
    assert!(doctor["checks"].is_array(), "{doctor}");
    let backends = run("backends", &["backends"], Some(0));
    assert!(backends["backends"].is_array(), "{backends}");
    for what in WITH_JSON {
        assert!(seen.contains(what), "`{what} --json` was not run");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_on_a_command_without_a_json_form_exits_2_and_does_nothing() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let token = sb.ok(&["--profile", "prod", "token"]);
    for (_, args) in WITHOUT_JSON {
        for json_first in [false, true] {
            let mut a: Vec<&str> = vec!["--profile", "prod"];
            if json_first {
                a.push("--json");
                a.extend_from_slice(args);
            } else {
                // Before `--` for exec: after it, `--json` would be the child's argument.
                let at = args.iter().position(|w| *w == "--").unwrap_or(args.len());
                a.extend_from_slice(&args[..at]);
                a.push("--json");
                a.extend_from_slice(&args[at..]);
            }
            let out = sb.run(&a);
            assert_exit(&out, 2, &a);
            assert!(
                out.stdout.is_empty(),
                "{a:?} printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                contains(&out.stderr, "has no machine-readable output"),
                "{a:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Nothing ran: the profile is there, not revoked, the same token still handed out.
    assert_eq!(sb.ok(&["--profile", "prod", "token"]), token);
    assert!(token_works(&emu, token.trim()).await);
    let list = json(&sb.ok(&["profile", "list", "--json"]), "profile list");
    assert_eq!(list["profiles"], serde_json::json!(["prod"]));
}

/// An "agent" on a Unix socket that answers every request with `body` (200).
fn fake_agent(socket: &std::path::Path, body: String) {
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            use std::io::{Read, Write};
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

#[test]
fn a_token_with_a_line_break_is_never_printed_bare_or_as_a_header() {
    let sb = Sandbox::new(Kind::Sqlite);
    let socket = sb.dir.path().join("agent.sock");
    let body = serde_json::json!({"schema": 1, "access_token": "abc\r\nX-Evil: 1", "token_type": "Bearer",
        "expires_at": "2030-01-01T00:00:00Z", "account_id": "1", "rest_url": "https://x/"});
    fake_agent(&socket, body.to_string());
    let via = format!("unix:{}", socket.display());
    for form in [None, Some("--header")] {
        let mut args = vec!["token", "--via", &via];
        args.extend(form);
        let out = sb.run(&args);
        assert_exit(&out, 1, &args);
        assert!(
            out.stdout.is_empty(),
            "{args:?}: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(contains(&out.stderr, "control characters"), "{args:?}");
    }
    // JSON escapes it: one line, the token intact for a JSON reader.
    let out = sb.ok(&["token", "--via", &via, "--json"]);
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert_eq!(
        json(&out, "token --json")["access_token"],
        "abc\r\nX-Evil: 1"
    );
}
