//! End to end, as a local adversary against the interactive login's loopback listener:
//! idle connections must not starve the real redirect or stay open, and `localhost`
//! redirects must be served on ::1 too.

use nsauth_e2e::*;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A profile whose client redirects to `redirect`, and an interactive login waiting for it
/// (run through `sh` with `limit` file descriptors). Returns the child and the authorize URL.
fn start_login(
    emu: &nsauth_emulator::Emulator,
    sb: &Sandbox,
    redirect: &str,
    fd_limit: u32,
) -> (Child, String) {
    emu.add_client(nsauth_emulator::ClientSpec::public("loop", redirect));
    sb.ok(&[
        "profile",
        "set",
        "dev",
        "--account-id",
        emu.account_id(),
        "--client-id",
        "loop",
        "--redirect-uri",
        redirect,
        "--scope",
        "rest_webservices",
        "--base-url",
        &emu.base_url(),
    ]);
    let base = sb.cmd();
    let mut cmd = Command::new("sh");
    cmd.env_clear();
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .arg("-c")
        .arg(format!("ulimit -n {fd_limit} && exec \"$0\" \"$@\""))
        .arg(nsauth_bin())
        .args([
            "--profile",
            "dev",
            "login",
            "--no-browser",
            "--timeout",
            "120",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("nsauth printed no authorization URL");
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    (child, url)
}

fn browser() -> reqwest::Client {
    nsauth_e2e::http()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn finish(mut child: Child, landed: &str) {
    let page = browser().get(landed).send().await;
    if page.is_err() {
        let _ = child.kill();
    }
    let page = page.expect("the real redirect was not served");
    assert_eq!(page.status(), 200);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "login exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_redirect_gets_through_100_idle_connections() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    let port = free_port("127.0.0.1");
    let redirect = format!("https://127.0.0.1:{port}/callback");
    // 64 descriptors: fewer than the idle connections, as a busy machine's limit would be.
    let (child, url) = start_login(&emu, &sb, &redirect, 64);
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
        .await
        .unwrap();
    finish(child, &landed).await;
    drop(idle);
    let token = sb.ok(&["--profile", "dev", "token"]);
    assert!(token_works(&emu, token.trim()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_loopback_connections_are_closed_https() {
    idle_loopback_connections_are_closed("https", b"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_closed_http() {
    idle_loopback_connections_are_closed("http", b"GET /callback?state=x HTTP/1.1\r\nHost: a\r\n")
        .await;
}

/// An idle connection (TLS handshake never started) or one that stops half-way through the
/// request head is closed by the listener within the deadline.
async fn idle_loopback_connections_are_closed(scheme: &str, sent: &[u8]) {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::File);
    let port = free_port("127.0.0.1");
    let redirect = format!("{scheme}://127.0.0.1:{port}/callback");
    let (child, url) = start_login(&emu, &sb, &redirect, 1024);
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut idle, sent).unwrap();
    idle.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let closed = poll(Duration::from_secs(20), || {
        let mut b = [0u8; 64];
        match idle.read(&mut b) {
            Ok(0) => Some(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            _ => Some(()),
        }
    });
    if scheme == "https" {
        let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
            .await
            .unwrap();
        finish(child, &landed).await;
    } else {
        // NetSuite (and the emulator) refuse http redirect URIs: just end the login.
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        let _ = url;
    }
    assert!(
        closed.is_some(),
        "an idle connection to the loopback listener stayed open for 20 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_redirect_is_served_on_ipv6_too() {
    let Ok(v6) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    };
    drop(v6);
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    let port = loop {
        let p = free_port("127.0.0.1");
        if std::net::TcpListener::bind(("::1", p)).is_ok() {
            break p;
        }
    };
    let redirect = format!("https://localhost:{port}/callback");
    let (child, url) = start_login(&emu, &sb, &redirect, 1024);
    let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
        .await
        .unwrap();
    let via_v6 = landed.replacen("://localhost:", "://[::1]:", 1);
    assert_ne!(via_v6, landed);
    finish(child, &via_v6).await;
}
