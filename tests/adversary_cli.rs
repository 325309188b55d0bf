//! End to end, as an adversary: `api` must never hand the bearer token to another host,
//! `exec` must not leak nsauth's own secrets to the child, a moved profile must not revoke
//! the grant it gave away, and login hints must not put the code or state in argv.

use nsauth_e2e::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OK_REPLY: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";

/// A loopback listener that records the request head of every connection it gets and
/// answers each with a fixed reply.
struct Recorder {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start(reply: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                while !contains(&buf, "\r\n\r\n") && buf.len() < 65_536 {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let _ = c.write_all(reply.as_bytes());
            }
        });
        Self { addr, heads }
    }

    /// Takes every head received so far. A sentinel connection, handled after all earlier
    /// ones (the listener serves in order), proves none is still in the backlog.
    fn drain(&self) -> Vec<String> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(b"SENTINEL\r\n\r\n").unwrap();
        poll(Duration::from_secs(30), || {
            let h = self.heads.lock().unwrap();
            h.iter().any(|x| x.starts_with("SENTINEL")).then_some(())
        })
        .expect("the recorder never saw its sentinel");
        let mut h = self.heads.lock().unwrap();
        let out = h.drain(..).filter(|x| !x.starts_with("SENTINEL")).collect();
        out
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_never_sends_the_token_to_another_host() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_confidential_profile(&sb, &emu, "ops");
    login(&sb, "ops").await;
    let other = Recorder::start(OK_REPLY.into());
    let hp = format!("127.0.0.1:{}", other.addr.port());
    // (path, must be refused with exit 2)
    let table: Vec<(String, bool)> = vec![
        (format!("\\\\{hp}/x"), true),
        (format!("/\\/{hp}/x"), true),
        (format!("\\/{hp}/x"), true),
        (format!("\t//{hp}/x"), true),
        (format!("/\t/{hp}/x"), true),
        (format!("\n//{hp}/x"), true),
        (format!("\r\n//{hp}/x"), true),
        (format!(" //{hp}/x"), true),
        (format!("https:{hp}/x"), true),
        (format!("http:{hp}/x"), true),
        (format!("https://{hp}/x"), true),
        (format!("//{hp}/x"), true),
        (format!("%2F%2F{hp}/x"), true),
        (format!("%5C%5C{hp}/x"), true),
        (format!("..//{hp}/x"), true),
        (format!("record/../../../{hp}/x"), true),
        (format!("record/v1/x#//{hp}/"), true),
        (format!("@{hp}/x"), false),
        (format!("\u{ff0f}\u{ff0f}{hp}/x"), false),
        (format!("\u{2215}\u{2215}{hp}/x"), false),
        (format!("record/v1/x?next=http://{hp}/"), false),
    ];
    for (path, must_refuse) in &table {
        let args = ["--profile", "ops", "api", "GET", path.as_str()];
        let out = sb.run(&args);
        if *must_refuse {
            assert_exit(&out, 2, &args);
            let err = stderr(&out);
            assert_eq!(err.trim_end().lines().count(), 1, "{path:?}: {err}");
            assert!(
                !err.trim_end().contains(['\t', '\r']),
                "{path:?}: raw control characters in {err:?}"
            );
        }
        let reached = other.drain();
        assert!(
            reached.is_empty(),
            "api GET {path:?} reached another listener: {reached:?}"
        );
    }
    // Still usable for a normal path.
    assert!(!sb
        .ok(&[
            "--profile",
            "ops",
            "api",
            "GET",
            "/record/v1/metadata-catalog"
        ])
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_does_not_follow_a_redirect_with_the_token() {
    let emu = emulator().await;
    let other = Recorder::start(OK_REPLY.into());
    let rest = Recorder::start(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://{}/stolen\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        other.addr
    ));
    let sb = Sandbox::new(Kind::File);
    let base = emu.base_url();
    let args = [
        "profile",
        "set",
        "ops",
        "--account-id",
        emu.account_id(),
        "--client-id",
        CONF_CLIENT,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "rest_webservices",
        "--authorize-url",
        &format!("{base}/app/login/oauth2/authorize.nl"),
        "--token-url",
        &format!("{base}/services/rest/auth/oauth2/v1/token"),
        "--revoke-url",
        &format!("{base}/services/rest/auth/oauth2/v1/revoke"),
        "--rest-url",
        &format!("http://{}/services/rest/", rest.addr),
        "--client-secret-stdin",
    ];
    assert_ok(&sb.run_stdin(&args, &format!("{CLIENT_SECRET}\n")), &args);
    login(&sb, "ops").await;
    let args = [
        "--profile",
        "ops",
        "api",
        "GET",
        "record/v1/metadata-catalog",
    ];
    let out = sb.run(&args);
    assert_exit(&out, 1, &args);
    assert!(stderr(&out).contains("302"), "{}", stderr(&out));
    let at_base = rest.drain();
    assert!(
        at_base
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization: bearer")),
        "the REST base got no token: {at_base:?}"
    );
    assert!(other.drain().is_empty(), "the redirect was followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_child_gets_the_token_not_nsauths_secrets() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_confidential_profile(&sb, &emu, "ops");
    login(&sb, "ops").await;
    let out = sb
        .cmd()
        .env("NSAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("NSAUTH_EXTRA_API_TOKEN", "zz-extra-secret-value")
        .args(["--profile", "ops", "exec", "--", "env"])
        .output()
        .unwrap();
    assert_ok(&out, &["exec -- env"]);
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(env.contains("NETSUITE_ACCESS_TOKEN="), "{env}");
    assert!(env.contains("NSAUTH_STORE="), "plain settings pass: {env}");
    for leaked in [
        "NSAUTH_STORE_KEY",
        sb.key_b64.as_str(),
        "NSAUTH_CLIENT_SECRET",
        CLIENT_SECRET,
        "NSAUTH_EXTRA_API_TOKEN",
        "zz-extra-secret-value",
    ] {
        assert!(!env.contains(leaked), "the child saw {leaked}");
    }
}

/// `share keygen` in `sb`; returns (identity path, recipient).
fn keygen(sb: &Sandbox) -> (String, String) {
    let path = sb.dir.path().join("keys/me.txt");
    let path = path.to_str().unwrap().to_owned();
    let recipient = sb
        .ok(&["share", "keygen", "--out", &path])
        .trim()
        .to_owned();
    (path, recipient)
}

fn assert_revoke_refused(sb: &Sandbox, emu: &nsauth_emulator::Emulator) {
    let out = sb.run(&["--profile", "pub", "revoke"]);
    assert_exit(&out, 2, &["revoke on a moved profile"]);
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("moved")
            && err.contains("nsauth revoke where")
            && err.contains("profile delete"),
        "{err}"
    );
    assert_eq!(
        emu.counters().revoke,
        0,
        "the moved source revoked the grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_source_cannot_revoke_the_partners_grant() {
    let emu = emulator().await;
    let (a, b) = (Sandbox::new(Kind::Sqlite), Sandbox::new(Kind::File));
    set_public_profile(&a, &emu, "pub");
    login(&a, "pub").await;
    let (identity, recipient) = keygen(&b);
    let bundle = a.dir.path().join("pub.age");
    let bundle = bundle.to_str().unwrap();
    a.ok(&[
        "--profile",
        "pub",
        "share",
        "export",
        "-r",
        &recipient,
        "--with-tokens",
        "--out",
        bundle,
    ]);
    b.ok(&["share", "import", bundle, "--identity", &identity, "--yes"]);
    assert_revoke_refused(&a, &emu);
    // The partner's grant is alive: it refreshes and the new token works.
    let t = b.ok(&["--profile", "pub", "token", "--min-ttl", "3300"]);
    assert!(token_works(&emu, t.trim()).await);
    // The source kept no token at all (fingerprints only).
    let st: serde_json::Value =
        serde_json::from_str(&a.ok(&["--profile", "pub", "status", "--json"])).unwrap();
    assert!(st["access_token_expires_at"].is_null(), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_source_cannot_revoke_the_destinations_grant() {
    let emu = emulator().await;
    let (a, b) = (Sandbox::new(Kind::File), Sandbox::new(Kind::Sqlite));
    set_public_profile(&a, &emu, "pub");
    login(&a, "pub").await;
    a.ok(&["--profile", "pub", "migrate", "--to", &b.store_uri]);
    assert_revoke_refused(&a, &emu);
    let t = b.ok(&["--profile", "pub", "token", "--min-ttl", "3300"]);
    assert!(token_works(&emu, t.trim()).await);
}

/// The lines of `text` that tell the user to run `login finish`.
fn finish_hints(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("login finish"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_finish_reads_stdin_and_hints_keep_secrets_out_of_argv() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "p");
    for args in [
        &["--profile", "p", "login", "start"][..],
        &["--profile", "p", "login", "start", "--handoff"][..],
    ] {
        let out = sb.run(args);
        assert_ok(&out, args);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        let hints = finish_hints(&all);
        assert!(!hints.is_empty(), "{args:?} gave no finish hint: {all}");
        for h in hints {
            let after = h.split("login finish --profile p").nth(1).unwrap_or("?");
            assert!(
                !after.starts_with(" '")
                    && !after.starts_with(" <")
                    && !after.starts_with(" -")
                    && !h.contains("--state")
                    && !h.contains("code="),
                "{args:?}: the hint puts the redirect on the command line: {h}"
            );
        }
    }
    // The stdin form: no argument at all.
    let url = sb.ok(&["--profile", "p", "login", "start"]);
    let landed = nsauth_emulator::browser_login(url.trim(), USER, PASSWORD, true)
        .await
        .unwrap();
    let args = ["--profile", "p", "login", "finish"];
    let out = sb.run_stdin(&args, &format!("{landed}\n"));
    assert_ok(&out, &args);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // The old argument form still works, with a warning that says what to do instead.
    let url = sb.ok(&["--profile", "p", "login", "start"]);
    let landed = nsauth_emulator::browser_login(url.trim(), USER, PASSWORD, true)
        .await
        .unwrap();
    let out = sb.run(&["--profile", "p", "login", "finish", &landed]);
    assert_ok(&out, &["login finish URL"]);
    let err = stderr(&out);
    assert!(err.contains("warning") && err.contains("stdin"), "{err}");
    assert!(
        !err.contains(&landed),
        "the warning echoes the redirect: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_import_escapes_bundle_fields_and_confirms_foreign_endpoints() {
    let emu = emulator().await;
    let (a, b) = (Sandbox::new(Kind::File), Sandbox::new(Kind::Sqlite));
    set_public_profile(&a, &emu, "pub");
    let (identity, recipient) = keygen(&b);
    let bundle = a.dir.path().join("pub.age");
    let bundle = bundle.to_str().unwrap();
    // The sender's name is whatever the sender's environment says: here, terminal escapes.
    let out = a
        .cmd()
        .env(
            "USER",
            "mallory\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nimported profile prod",
        )
        .env("HOSTNAME", "h\u{202e}gpj.exe")
        .args([
            "--profile",
            "pub",
            "share",
            "export",
            "-r",
            &recipient,
            "--out",
            bundle,
        ])
        .output()
        .unwrap();
    assert_ok(&out, &["share export"]);
    let no_raw_controls = |out: &Output, what: &str| {
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(
                !text.contains(['\u{1b}', '\u{7}', '\r', '\u{202e}']),
                "{what}: raw control characters reached the terminal: {text:?}"
            );
        }
    };
    // Without --yes: every endpoint is shown, the emulator's host is named, nothing stored.
    let args = ["share", "import", bundle, "--identity", &identity];
    let out = b.run(&args);
    assert_exit(&out, 2, &args);
    no_raw_controls(&out, "refused import");
    let shown = String::from_utf8_lossy(&out.stdout);
    let host = emu.base_url();
    for what in ["authorize", "token", "revoke", "REST"] {
        assert!(
            shown.lines().any(|l| l.contains(what) && l.contains(&host)),
            "endpoint {what} not shown: {shown}"
        );
    }
    let err = stderr(&out);
    assert!(
        err.contains("--yes") && err.contains(host.trim_end_matches('/')),
        "{err}"
    );
    assert!(
        !b.ok(&["profile", "list"]).contains("pub"),
        "a refused import stored the profile"
    );
    // With --yes it is imported, and still nothing raw reaches the terminal.
    let args = ["share", "import", bundle, "--identity", &identity, "--yes"];
    let out = b.run(&args);
    assert_ok(&out, &args);
    no_raw_controls(&out, "import --yes");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mallory\\u{1b}[2J"), "{text}");
    let json = b.run(&[
        "--json",
        "share",
        "import",
        bundle,
        "--identity",
        &identity,
        "--as",
        "p2",
        "--yes",
    ]);
    assert_ok(&json, &["import --json"]);
    no_raw_controls(&json, "import --json");
}
