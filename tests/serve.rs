//! End to end: `nsauth serve` against the emulator — tokens over the Unix socket and loopback
//! TCP (key enforced), the socket's privacy, refusals (non-loopback, a second agent), SIGTERM
//! and SIGHUP, background refresh ahead of expiry with one refresh per expiry while plain
//! `nsauth token` runs too, and `token --via` falling back when the agent is gone.

use nsauth_e2e::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `nsauth serve`, killed on drop.
struct Agent {
    child: Child,
    listening: Vec<String>,
    key_file: Option<PathBuf>,
    stdout: String,
}

impl Agent {
    fn socket(&self) -> PathBuf {
        let l = self.listening.iter().find_map(|l| l.strip_prefix("unix:"));
        PathBuf::from(l.expect("a unix listener"))
    }

    fn tcp(&self) -> String {
        let l = self
            .listening
            .iter()
            .find_map(|l| l.strip_prefix("http://"));
        l.expect("a tcp listener").to_owned()
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the agent to exit; its exit code.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        poll(limit, || self.child.try_wait().expect("try_wait")).map(|s| s.code().unwrap_or(-1))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The private runtime directory of the sandbox (`XDG_RUNTIME_DIR`).
fn run_dir(sb: &Sandbox) -> PathBuf {
    let d = sb.dir.path().join("run");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn serve_cmd(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let mut c = sb.cmd();
    c.env("XDG_RUNTIME_DIR", run_dir(sb))
        .arg("serve")
        .args(args);
    c
}

/// Starts `nsauth serve ARGS` and waits until it says where it listens.
fn start(sb: &Sandbox, args: &[&str]) -> Agent {
    let mut child = serve_cmd(sb, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn nsauth serve");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout = String::new();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                stdout.push_str(&line);
                stdout.push('\n');
                if line.starts_with("nsauth serve: profiles") {
                    break;
                }
            }
            Err(e) => panic!("nsauth serve {args:?} did not get ready ({e}); stdout: {stdout}"),
        }
    }
    let listening = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("nsauth serve: listening on "))
        .map(str::to_owned)
        .collect();
    let key_file = stdout
        .lines()
        .find_map(|l| l.strip_prefix("nsauth serve: serve key file "))
        .and_then(|l| l.split(" (").next())
        .map(PathBuf::from);
    Agent {
        child,
        listening,
        key_file,
        stdout,
    }
}

/// A raw HTTP/1.1 GET; (status, body).
fn get(mut stream: impl Read + Write, target: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: agent\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn get_unix(socket: &Path, target: &str) -> (u16, String) {
    get(
        std::os::unix::net::UnixStream::connect(socket).unwrap(),
        target,
        None,
    )
}

fn get_tcp(addr: &str, target: &str, auth: Option<&str>) -> (u16, String) {
    get(std::net::TcpStream::connect(addr).unwrap(), target, auth)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The value of a metric line `name{labels} value` in `/metrics`.
fn metric(socket: &Path, line_start: &str) -> Option<i64> {
    let (status, text) = get_unix(socket, "/metrics");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_over_the_socket_and_tcp_with_the_key_enforced() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    set_public_profile(&sb, &emu, "nologin");
    login(&sb, "prod").await;
    let socket = run_dir(&sb).join("nsauth/nsauth.sock");
    let agent = start(
        &sb,
        &[
            "--profile",
            "prod",
            "--profile",
            "nologin",
            "--listen",
            &format!("unix:{}", socket.display()),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(agent.socket(), socket);

    // The socket and its directory are private.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600, "socket mode");
    assert_eq!(
        mode(socket.parent().unwrap()),
        0o700,
        "socket directory mode"
    );

    // Over the socket: a working token with its account and REST base.
    let (status, body) = get_unix(&socket, "/v1/token?profile=prod&min_ttl=60");
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert!(token_works(&emu, &token).await);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["account_id"], emu.account_id());
    assert!(
        v["rest_url"].as_str().unwrap().ends_with("/services/rest/"),
        "{v}"
    );
    let expires_at = v["expires_at"].as_str().unwrap();
    assert!(
        expires_at.len() >= 20 && expires_at.as_bytes()[10] == b'T' && expires_at.ends_with('Z'),
        "not RFC 3339: {expires_at}"
    );
    // The same token as plain `nsauth token` (one store, one token).
    assert_eq!(sb.ok(&["--profile", "prod", "token"]).trim(), token);

    // Over TCP: the key file's key is required; the key itself was never printed.
    let key_file = agent.key_file.clone().expect("key file printed");
    assert_eq!(mode(&key_file), 0o600, "key file mode");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(!agent.stdout.contains(&key), "the key was printed");
    let addr = agent.tcp();
    let target = "/v1/token?profile=prod";
    for auth in [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Basic {key}")),
        Some(format!("Bearer {key}0")),
    ] {
        let (status, body) = get_tcp(&addr, target, auth.as_deref());
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(
            !body.contains(&token),
            "a token went to an unauthenticated caller"
        );
    }
    let (status, body) = get_tcp(&addr, target, Some(&format!("Bearer {key}")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["access_token"], token.as_str());

    // Errors: the CLI's exit code and a fitting status, one line.
    for (target, want_status, want_code) in [
        ("/v1/token?profile=nologin", 409, 3),
        ("/v1/token?profile=elsewhere", 404, 2),
        ("/v1/token?profile=..%2Fetc", 400, 2),
        ("/v1/token?profile=prod&verbose=1", 400, 2),
        ("/v1/token?profile=prod&min_ttl=99999", 400, 2),
        ("/v1/token", 400, 2),
    ] {
        let (status, body) = get_unix(&socket, target);
        assert_eq!(status, want_status, "{target}: {body}");
        let v = json(&body);
        assert_eq!(v["exit_code"], want_code, "{target}: {body}");
        assert!(!v["message"].as_str().unwrap().contains('\n'));
    }
    let huge = format!("/v1/token?profile={}", "a".repeat(10_000));
    assert_eq!(get_unix(&socket, &huge).0, 400);

    // Health names the profile that needs a login; metrics show the token's life.
    let (status, body) = get_unix(&socket, "/healthz");
    assert_eq!(status, 200);
    let h = json(&body);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["unhealthy"][0]["profile"], "nologin", "{h}");
    assert_eq!(h["unhealthy"][0]["exit_code"], 3, "{h}");
    let left = metric(
        &socket,
        "nsauth_agent_access_token_seconds_left{profile=\"prod\"} ",
    )
    .expect("access token gauge");
    assert!(left > 60, "{left}");
    assert!(metric(
        &socket,
        "nsauth_agent_refresh_token_seconds_left{profile=\"prod\"} "
    )
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_a_clean_shutdown() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;

    // TCP on anything but loopback: refused before listening.
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let out = serve_cmd(&sb, &["--profile", "prod", "--listen", addr])
            .output()
            .unwrap();
        assert_exit(&out, 2, &["serve --listen", addr]);
        assert!(
            contains(&out.stderr, "loopback"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A socket directory others can write to: refused.
    let open_dir = sb.dir.path().join("shared");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let listen = format!("unix:{}/a.sock", open_dir.display());
    let out = serve_cmd(&sb, &["--profile", "prod", "--listen", &listen])
        .output()
        .unwrap();
    assert_exit(&out, 2, &["serve --listen", &listen]);
    assert!(contains(&out.stderr, "writable by others"));

    // The default socket; a second agent on it is refused, the first keeps serving.
    let mut agent = start(&sb, &["--profile", "prod"]);
    let socket = agent.socket();
    assert_eq!(socket, run_dir(&sb).join("nsauth/nsauth.sock"));
    let out = serve_cmd(&sb, &["--profile", "prod"]).output().unwrap();
    assert_exit(&out, 2, &["serve (second)"]);
    assert!(
        contains(&out.stderr, "another agent is serving on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get_unix(&socket, "/v1/token?profile=prod").0, 200);

    // SIGTERM: exit 0 and the socket is gone.
    agent.signal("-TERM");
    assert_eq!(agent.wait(Duration::from_secs(20)), Some(0));
    assert!(!socket.exists(), "the socket outlived the agent");

    // Killed hard, the socket stays behind; a new agent replaces the stale one.
    let mut agent = start(&sb, &["--profile", "prod"]);
    agent.signal("-KILL");
    agent.wait(Duration::from_secs(20)).expect("killed");
    assert!(socket.exists());
    let agent = start(&sb, &["--profile", "prod"]);
    assert_eq!(get_unix(&agent.socket(), "/v1/token?profile=prod").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_profile_list() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "one");
    login(&sb, "one").await;
    set_public_profile(&sb, &emu, "late");
    let agent = start(&sb, &["--all"]);
    let socket = agent.socket();
    let health = || json(&get_unix(&socket, "/healthz").1);
    let profiles = || health()["profiles"].clone();
    assert_eq!(profiles(), serde_json::json!(["late", "one"]));
    // Made-up names are 404 and leave nothing behind.
    for i in 0..20 {
        assert_eq!(
            get_unix(&socket, &format!("/v1/token?profile=ghost{i}")).0,
            404
        );
    }
    assert_eq!(profiles(), serde_json::json!(["late", "one"]));
    assert!(!get_unix(&socket, "/metrics").1.contains("ghost"));
    // "late" needs a login: unhealthy, retried only rarely in the background.
    let sick = poll(Duration::from_secs(20), || {
        (health()["unhealthy"][0]["profile"] == "late").then_some(())
    });
    assert!(sick.is_some(), "{}", health());
    set_public_profile(&sb, &emu, "two");
    login(&sb, "two").await;
    login(&sb, "late").await;
    agent.signal("-HUP");
    let seen = poll(Duration::from_secs(20), || {
        (profiles() == serde_json::json!(["late", "one", "two"])).then_some(())
    });
    assert!(
        seen.is_some(),
        "SIGHUP did not add the new profile: {}",
        profiles()
    );
    // Its token is fetched ahead of any request.
    let fetched = poll(Duration::from_secs(20), || {
        metric(
            &socket,
            "nsauth_agent_access_token_seconds_left{profile=\"two\"} ",
        )
    });
    assert!(fetched.is_some_and(|s| s > 0));
    assert_eq!(get_unix(&socket, "/v1/token?profile=two").0, 200);
    // SIGHUP also retried the profile that needed a login: healthy without a request.
    let healed = poll(Duration::from_secs(20), || {
        metric(
            &socket,
            "nsauth_agent_access_token_seconds_left{profile=\"late\"} ",
        )
    });
    assert!(healed.is_some(), "{}", health());
    assert_eq!(health()["unhealthy"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_runs_ahead_of_expiry_once_per_expiry() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    emu.set_access_ttl(10);
    login(&sb, "prod").await;
    let first = sb
        .ok(&["--profile", "prod", "token", "--min-ttl", "0"])
        .trim()
        .to_owned();
    let agent = start(&sb, &["--profile", "prod"]);
    let socket = agent.socket();
    let before = emu.counters().refresh_token;

    // Plain `nsauth token` callers run all along (asking for little life, as a service
    // would that uses each token at once).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loop_sb_cmd = {
        let stop = stop.clone();
        let mut cmd = sb.cmd();
        cmd.args(["--profile", "prod", "token", "--min-ttl", "1"]);
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut calls = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = cmd.output().expect("nsauth token");
                calls += 1;
                if !out.status.success() {
                    failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            (calls, failures)
        })
    };

    // The first refresh comes before the first token expires: it still works then.
    let refreshed = poll(Duration::from_secs(30), || {
        (emu.counters().refresh_token > before).then_some(())
    });
    assert!(refreshed.is_some(), "no background refresh");
    assert!(
        token_works(&emu, &first).await,
        "the refresh came after the token expired"
    );

    // Three more expiries: one refresh each, all by the agent (none by the token loop,
    // none twice).
    let done = poll(Duration::from_secs(60), || {
        (emu.counters().refresh_token >= before + 4).then_some(())
    });
    assert!(done.is_some(), "background refresh stalled");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (calls, failures) = loop_sb_cmd.join().unwrap();
    assert!(
        failures.is_empty(),
        "nsauth token failed meanwhile: {failures:?}"
    );
    assert!(calls > 0);
    let by_agent = || {
        metric(
            &socket,
            "nsauth_agent_refreshes_total{profile=\"prod\",outcome=\"refreshed\"} ",
        )
        .unwrap_or(0)
    };
    let settled = poll(Duration::from_secs(10), || {
        let (a, e) = (by_agent(), emu.counters().refresh_token - before);
        (a as u64 == e).then_some(e)
    });
    assert!(
        settled.is_some(),
        "agent refreshed {} times, NetSuite saw {}",
        by_agent(),
        emu.counters().refresh_token - before
    );
    // The agent's current token has life left.
    let (status, body) = get_unix(&socket, "/v1/token?profile=prod&min_ttl=1");
    assert_eq!(status, 200, "{body}");
    assert!(token_works(&emu, json(&body)["access_token"].as_str().unwrap()).await);
}

/// systemd socket activation: the socket comes in as descriptor 3 (`LISTEN_FDS`), as
/// `contrib/systemd/nsauth.socket` sets it up. Run with `systemd-socket-activate`, which
/// listens, then starts the agent on the first connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_from_the_service_manager_is_served() {
    let Ok(activate) = which("systemd-socket-activate") else {
        eprintln!("SKIPPED: systemd-socket-activate is not installed");
        return;
    };
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let socket = run_dir(&sb).join("activated.sock");
    let env = [
        format!("HOME={}", sb.dir.path().display()),
        format!("NSAUTH_STORE={}", sb.store_uri),
        format!("NSAUTH_STORE_KEY={}", sb.key_b64),
        format!("XDG_RUNTIME_DIR={}", run_dir(&sb).display()),
    ];
    let mut cmd = std::process::Command::new(activate);
    cmd.arg("-l").arg(&socket);
    for e in &env {
        cmd.args(["-E", e]);
    }
    let child = cmd
        .arg(nsauth_bin())
        .args(["serve", "--profile", "prod"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut agent = Agent {
        child,
        listening: Vec::new(),
        key_file: None,
        stdout: String::new(),
    };
    assert!(
        poll(Duration::from_secs(20), || socket.exists().then_some(())).is_some(),
        "systemd-socket-activate did not listen"
    );
    let (status, body) = get_unix(&socket, "/v1/token?profile=prod");
    assert_eq!(status, 200, "{body}");
    assert!(token_works(&emu, json(&body)["access_token"].as_str().unwrap()).await);
    // The agent did not open its default socket beside the inherited one.
    assert!(!run_dir(&sb).join("nsauth/nsauth.sock").exists());
    agent.signal("-TERM");
    assert_eq!(agent.wait(Duration::from_secs(20)), Some(0));
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_via_asks_the_agent_and_falls_back_only_when_none_answers() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    set_public_profile(&sb, &emu, "nologin");
    login(&sb, "prod").await;
    let mut agent = start(
        &sb,
        &[
            "--profile",
            "prod",
            "--profile",
            "nologin",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            &format!("unix:{}/nsauth/a.sock", run_dir(&sb).display()),
        ],
    );
    let socket = agent.socket();
    let unix = format!("unix:{}", socket.display());
    let tcp = format!("http://{}", agent.tcp());
    let key_file = agent.key_file.clone().unwrap();
    let stored = sb.ok(&["--profile", "prod", "token"]);
    // A caller whose store key is wrong can only have got its token from the agent.
    let wrong_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let via = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = sb.cmd();
        c.env("NSAUTH_STORE_KEY", wrong_key).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = via(&["--profile", "prod", "token", "--via", &unix], &[]);
    assert_ok(&out, &["token --via unix"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), stored);
    let out = via(&["--profile", "prod", "token"], &[("NSAUTH_AGENT", &unix)]);
    assert_ok(&out, &["token with NSAUTH_AGENT"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), stored);
    // TCP: the key comes from NSAUTH_AGENT_KEY_FILE; without it the agent says 401 (exit 2),
    // and that answer is final: no fallback.
    let key = key_file.display().to_string();
    let out = via(
        &["--profile", "prod", "token", "--via", &tcp],
        &[("NSAUTH_AGENT_KEY_FILE", &key)],
    );
    assert_ok(&out, &["token --via tcp"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), stored);
    let missing = sb.dir.path().join("no.key").display().to_string();
    let out = via(
        &["--profile", "prod", "token", "--via", &tcp],
        &[("NSAUTH_AGENT_KEY_FILE", &missing)],
    );
    assert_exit(&out, 2, &["token --via tcp without key"]);
    assert!(out.stdout.is_empty());
    // The agent's own error keeps its exit code.
    let out = via(&["--profile", "nologin", "token", "--via", &unix], &[]);
    assert_exit(&out, 3, &["token --via for a profile that needs a login"]);
    assert!(
        contains(&out.stderr, "agent:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A bad address: exit 2.
    for bad in ["10.1.2.3:80", "unix:relative.sock", "ftp://127.0.0.1:1"] {
        let out = via(&["--profile", "prod", "token", "--via", bad], &[]);
        assert_exit(&out, 2, &["token --via", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--via/NSAUTH_AGENT") && !err.contains("--listen"),
            "{err}"
        );
    }

    // The agent killed (its socket left behind), or never started: the store answers.
    agent.signal("-KILL");
    agent.wait(Duration::from_secs(20)).expect("killed");
    assert!(socket.exists());
    for target in [
        unix.clone(),
        tcp.clone(),
        format!("unix:{}/absent.sock", run_dir(&sb).display()),
    ] {
        let out = sb.run(&["--profile", "prod", "token", "--via", &target]);
        assert_ok(&out, &["token --via (no agent)", &target]);
        assert_eq!(String::from_utf8(out.stdout).unwrap(), stored, "{target}");
        // With a wrong store key, the fallback really went to the store.
        let out = via(&["--profile", "prod", "token", "--via", &target], &[]);
        assert!(
            !out.status.success(),
            "{target}: no agent and no store key, yet a token"
        );
    }
}

/// The deadline watch through `nsauth serve`: NetSuite refusing the refresh token gives the
/// notify command exactly one `reapproval_needed` event whose handoff link works; the login
/// through it gives exactly one `recovered`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_notifies_once_and_recovery_once() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    emu.set_access_ttl(120);
    login(&sb, "prod").await;
    emu.set_access_ttl(3600);
    let events = sb.dir.path().join("events.jsonl");
    let command = format!("cat >> '{0}'; echo >> '{0}'", events.display());
    let agent = start(&sb, &["--profile", "prod", "--notify-command", &command]);
    let socket = agent.socket();
    let read_events = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(json)
            .collect()
    };
    let of_kind = |kind: &str| {
        read_events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(get_unix(&socket, "/v1/token?profile=prod").0, 200);

    // NetSuite ends the refresh token; callers that need a new access token get 409 (exit 3).
    emu.revoke_all();
    for _ in 0..3 {
        let (status, body) = get_unix(&socket, "/v1/token?profile=prod&min_ttl=300");
        assert_eq!(status, 409, "{body}");
        assert_eq!(json(&body)["exit_code"], 3);
    }
    let raised = poll(Duration::from_secs(30), || {
        let e = of_kind("reapproval_needed");
        (!e.is_empty()).then_some(e)
    })
    .expect("no reapproval_needed event");
    // More refused attempts, past the agent's 2 s hold: still one event.
    let later = Instant::now() + Duration::from_secs(3);
    poll(Duration::from_secs(10), || {
        (Instant::now() > later).then_some(())
    });
    assert_eq!(
        get_unix(&socket, "/v1/token?profile=prod&min_ttl=300").0,
        409
    );
    assert_eq!(of_kind("reapproval_needed").len(), 1, "{:?}", read_events());
    let link = raised[0]["handoff_url"]
        .as_str()
        .expect("a handoff link")
        .to_owned();

    // The NetSuite user opens the link; the person finishes the login with where it landed.
    let landed = nsauth_emulator::browser_login(&link, USER, PASSWORD, true)
        .await
        .expect("the handoff link works");
    sb.ok(&["--profile", "prod", "login", "finish", &landed]);
    let (status, body) = get_unix(&socket, "/v1/token?profile=prod&min_ttl=300");
    assert_eq!(status, 200, "{body}");
    assert!(token_works(&emu, json(&body)["access_token"].as_str().unwrap()).await);
    let recovered = poll(Duration::from_secs(30), || {
        let e = of_kind("recovered");
        (!e.is_empty()).then_some(e)
    });
    assert!(
        recovered.is_some(),
        "no recovered event: {:?}",
        read_events()
    );
    assert_eq!(get_unix(&socket, "/v1/token?profile=prod").0, 200);
    assert_eq!(of_kind("recovered").len(), 1, "{:?}", read_events());
    assert_eq!(of_kind("reapproval_needed").len(), 1, "{:?}", read_events());
}

/// Agents started at the same moment on one socket: exactly one serves, the others exit 2,
/// and the socket the winner answers on is not removed by a loser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_started_at_once_on_one_socket_leave_exactly_one_serving() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let socket = run_dir(&sb).join("nsauth/nsauth.sock");
    for _round in 0..3 {
        let mut children: Vec<Child> = (0..4)
            .map(|_| {
                serve_cmd(&sb, &["--profile", "prod"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // The losers exit 2 on their own; the winner keeps running.
        let exited = poll(Duration::from_secs(30), || {
            let done: Vec<_> = children
                .iter_mut()
                .filter_map(|c| c.try_wait().unwrap())
                .collect();
            (done.len() == 3).then_some(done)
        })
        .expect("three of four agents should have given up");
        assert!(exited.iter().all(|s| s.code() == Some(2)), "{exited:?}");
        let (status, body) = get_unix(&socket, "/v1/token?profile=prod");
        assert_eq!(status, 200, "{body}");
        let mut winner = children
            .into_iter()
            .find_map(|mut c| c.try_wait().unwrap().is_none().then_some(c))
            .expect("one agent serves");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &winner.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let code = poll(Duration::from_secs(20), || winner.try_wait().unwrap()).expect("stops");
        assert_eq!(code.code(), Some(0));
        assert!(!socket.exists());
    }
}

/// The REST proxy through `nsauth serve`: a round trip without the token reaching the caller,
/// NetSuite's 401 answered by one refresh and one retry, a profile the agent does not serve
/// refused, and the statuses counted per profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_calls_netsuite_without_handing_out_the_token() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    set_public_profile(&sb, &emu, "other");
    login(&sb, "prod").await;
    login(&sb, "other").await;
    let agent = start(&sb, &["--profile", "prod"]);
    let socket = agent.socket();
    let token = json(&get_unix(&socket, "/v1/token?profile=prod").1)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let target = "/v1/proxy/prod/record/v1/metadata-catalog";
    let calls = emu.counters().api_calls;
    let (status, body) = get_unix(&socket, target);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(&token), "the token reached the caller");
    assert_eq!(emu.counters().api_calls, calls + 1);

    // NetSuite ends every access token: the proxy refreshes once and retries.
    emu.expire_access_tokens();
    let refreshes = emu.counters().refresh_token;
    let (status, body) = get_unix(&socket, target);
    assert_eq!(status, 200, "{body}");
    assert_eq!(emu.counters().refresh_token, refreshes + 1);
    // The token route no longer hands out the token NetSuite refused.
    let (status, body) = get_unix(&socket, "/v1/token?profile=prod");
    assert_eq!(status, 200, "{body}");
    let now = json(&body)["access_token"].as_str().unwrap().to_owned();
    assert_ne!(now, token, "the refused token is still handed out");
    assert!(token_works(&emu, &now).await);
    assert_eq!(
        emu.counters().refresh_token,
        refreshes + 1,
        "no second refresh"
    );

    // Only served profiles are proxied.
    let (status, body) = get_unix(&socket, "/v1/proxy/other/record/v1/metadata-catalog");
    assert_eq!(status, 404, "{body}");
    assert_eq!(json(&body)["exit_code"], 2);
    assert_eq!(
        metric(
            &socket,
            "nsauth_agent_proxy_requests_total{profile=\"prod\",status=\"200\"} "
        ),
        Some(2)
    );
}

/// `nsauth revoke` while the agent runs, then SIGHUP: the agent stops handing out the
/// revoked token (its cache is dropped; the store has no tokens any more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_after_a_revoke_stops_the_revoked_token() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    login(&sb, "prod").await;
    let agent = start(&sb, &["--profile", "prod"]);
    let socket = agent.socket();
    assert_eq!(get_unix(&socket, "/v1/token?profile=prod").0, 200);
    sb.ok(&["--profile", "prod", "revoke"]);
    agent.signal("-HUP");
    let refused = poll(Duration::from_secs(20), || {
        let (status, body) = get_unix(&socket, "/v1/token?profile=prod");
        (status == 409).then_some(body)
    });
    assert!(
        refused.is_some(),
        "the revoked token is still handed out after SIGHUP"
    );
}

/// SIGTERM while a request waits for NetSuite: the request still gets its token, then the
/// agent exits 0 and removes its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    set_public_profile(&sb, &emu, "prod");
    emu.set_access_ttl(120);
    login(&sb, "prod").await;
    emu.set_access_ttl(3600);
    let mut agent = start(&sb, &["--profile", "prod"]);
    let socket = agent.socket();
    // Wait for the agent's start-up fetch, so the next token request is the one in flight.
    poll(Duration::from_secs(20), || {
        metric(
            &socket,
            "nsauth_agent_access_token_seconds_left{profile=\"prod\"} ",
        )
    })
    .expect("start-up fetch");
    emu.inject(nsauth_emulator::Fault::Delay(Duration::from_secs(2)));
    let before = emu.counters().token_requests;
    let in_flight = {
        let socket = socket.clone();
        std::thread::spawn(move || get_unix(&socket, "/v1/token?profile=prod&min_ttl=300"))
    };
    poll(Duration::from_secs(20), || {
        (emu.counters().token_requests > before).then_some(())
    })
    .expect("the refresh reached NetSuite");
    agent.signal("-TERM");
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(token_works(&emu, json(&body)["access_token"].as_str().unwrap()).await);
    assert_eq!(agent.wait(Duration::from_secs(20)), Some(0));
    assert!(!socket.exists());
}
