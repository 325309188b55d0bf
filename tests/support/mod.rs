//! Helpers for the end-to-end tests: run the real `nsauth` binary against the in-process
//! NetSuite emulator, with a throwaway store and home directory.
#![allow(missing_docs)]

use nsauth_emulator::{ClientSpec, Emulator};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "tester@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const PUBLIC_CLIENT: &str = "e2e-public-client";
pub const CONF_CLIENT: &str = "e2e-confidential-client";
pub const CLIENT_SECRET: &str = "e2e-client-secret-9f8e7d6c5b4a";
pub const REDIRECT: &str = "https://nsauth.example.com/callback";

/// The `nsauth` binary under test: `$NSAUTH_BIN`, else the one beside the test executable
/// (built by `cargo xtask test`).
pub fn nsauth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NSAUTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("nsauth{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p nsauth-cli` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// Which local store a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    File,
}

pub const KINDS: [Kind; 2] = [Kind::Sqlite, Kind::File];

/// A sandbox: temp HOME, a store, and a fixed store key.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub store_uri: String,
    pub store_path: PathBuf,
    pub key_b64: String,
    /// Extra environment for remote stores (VAULT_TOKEN, AWS_*).
    pub extra_env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store_uri, store_path) = match kind {
            Kind::Sqlite => {
                let p = dir.path().join("data/nsauth.db");
                (format!("sqlite://{}", p.display()), p)
            }
            Kind::File => {
                let p = dir.path().join("data/profiles");
                (format!("file://{}", p.display()), p)
            }
        };
        // A fixed, test-only key: 32 bytes of 0x2a.
        let key_b64 = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=".to_owned();
        Self {
            dir,
            store_uri,
            store_path,
            key_b64,
            extra_env: Vec::new(),
        }
    }

    /// A sandbox on a remote store URI with extra environment.
    pub fn remote(store_uri: String, extra_env: Vec<(String, String)>) -> Self {
        let mut sb = Self::new(Kind::Sqlite);
        sb.store_path = PathBuf::new();
        sb.store_uri = store_uri;
        sb.extra_env = extra_env;
        sb
    }

    /// A command with a clean environment pointing at this sandbox.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(nsauth_bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("share"))
            .env("NSAUTH_STORE", &self.store_uri)
            .env("NSAUTH_STORE_KEY", &self.key_b64)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    /// Runs `nsauth ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run nsauth")
    }

    /// Runs with stdin.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_ok(&out, args);
        String::from_utf8(out.stdout).expect("utf8 stdout")
    }

    /// Every byte under the sandbox's data directory (store files, key files, WAL...).
    pub fn store_bytes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.dir.path().join("data"), &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
}

pub fn assert_ok(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "nsauth {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn assert_exit(out: &Output, code: i32, args: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "nsauth {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `true` when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// An emulator with a user, a public and a confidential client (redirect: [`REDIRECT`]).
pub async fn emulator() -> Emulator {
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start emulator");
    emu.add_user(USER, PASSWORD);
    emu.add_client(ClientSpec::public(PUBLIC_CLIENT, REDIRECT));
    emu.add_client(ClientSpec::confidential(
        CONF_CLIENT,
        CLIENT_SECRET,
        REDIRECT,
    ));
    emu
}

/// `profile set` for the public client against `emu`.
pub fn set_public_profile(sb: &Sandbox, emu: &Emulator, profile: &str) {
    let base = emu.base_url();
    sb.ok(&[
        "profile",
        "set",
        profile,
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

/// `profile set` for the confidential client, secret through stdin.
pub fn set_confidential_profile(sb: &Sandbox, emu: &Emulator, profile: &str) {
    let base = emu.base_url();
    let args = [
        "profile",
        "set",
        profile,
        "--account-id",
        emu.account_id(),
        "--client-id",
        CONF_CLIENT,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "rest_webservices",
        "--scope",
        "restlets",
        "--base-url",
        &base,
        "--client-secret-stdin",
    ];
    let out = sb.run_stdin(&args, &format!("{CLIENT_SECRET}\n"));
    assert_ok(&out, &args);
}

/// `login start` in one process, the user's browser, `login finish` in another.
pub async fn login(sb: &Sandbox, profile: &str) {
    let url = sb.ok(&["--profile", profile, "login", "start"]);
    let url = url.trim().to_owned();
    assert!(url.starts_with("http"), "login start printed {url:?}");
    let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
        .await
        .expect("browser login");
    sb.ok(&["--profile", profile, "login", "finish", &landed]);
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Calls the emulator's REST API with a token; `true` when accepted.
pub async fn token_works(emu: &Emulator, token: &str) -> bool {
    let url = format!(
        "{}/services/rest/record/v1/metadata-catalog",
        emu.base_url()
    );
    http()
        .build()
        .unwrap()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

/// The remote stores started by `cargo xtask services up`, as (label, sandbox) pairs. Empty
/// (with a note on stderr) when the services are not running, unless
/// `NSAUTH_REQUIRE_SERVICES=1`, which turns a missing service into a failure.
pub fn remote_sandboxes() -> Vec<(&'static str, Sandbox)> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let required = get("NSAUTH_REQUIRE_SERVICES").as_deref() == Some("1");
    let run = uuid_like();
    let mut out = Vec::new();
    match (get("NSAUTH_TEST_VAULT_ADDR"), get("NSAUTH_TEST_VAULT_TOKEN")) {
        (Some(addr), Some(token)) => {
            let hostport = addr.trim_start_matches("http://").trim_end_matches('/');
            let mount = get("NSAUTH_TEST_VAULT_MOUNT").unwrap_or_else(|| "secret".into());
            out.push(("vault", Sandbox::remote(format!("vault+http://{hostport}/{mount}/nsauth/e2e-{run}"), vec![("VAULT_TOKEN".into(), token)])));
        }
        _ if required => panic!("NSAUTH_REQUIRE_SERVICES=1 but OpenBao is not configured (NSAUTH_TEST_VAULT_ADDR/TOKEN); run cargo xtask test"),
        _ => eprintln!("SKIPPED vault: no OpenBao (run cargo xtask services up)"),
    }
    match get("NSAUTH_TEST_AWS_ENDPOINT") {
        Some(ep) => {
            let env = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_EC2_METADATA_DISABLED"]
                .iter()
                .filter_map(|k| get(k).map(|v| (k.to_string(), v)))
                .collect();
            out.push(("aws-sm", Sandbox::remote(format!("aws-sm://nsauth-e2e/{run}?endpoint={ep}&region=us-east-1&force-delete=true"), env)));
        }
        None if required => panic!("NSAUTH_REQUIRE_SERVICES=1 but moto is not configured (NSAUTH_TEST_AWS_ENDPOINT); run cargo xtask test"),
        None => eprintln!("SKIPPED aws-sm: no moto (run cargo xtask services up)"),
    }
    out
}

fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Starts every command at once (stdout and stderr captured) and waits for all of them.
pub async fn run_concurrently(cmds: impl IntoIterator<Item = Command>) -> Vec<Output> {
    let children: Vec<_> = cmds
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn nsauth")
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect()
    })
    .await
    .expect("join")
}

/// The visible commands as `nsauth --help` lists them (`profile set`, `token`, `login`, ...;
/// a group such as `profile` only through its subcommands, `help` excluded).
pub fn listed_commands(sb: &Sandbox) -> std::collections::BTreeSet<String> {
    fn subcommands(sb: &Sandbox, prefix: &[&str]) -> Vec<String> {
        let mut args = prefix.to_vec();
        args.push("--help");
        let help = sb.ok(&args);
        let Some((_, rest)) = help.split_once("Commands:\n") else {
            return Vec::new();
        };
        rest.lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| *w != "help")
            .map(str::to_owned)
            .collect()
    }
    let mut all = std::collections::BTreeSet::new();
    for top in subcommands(sb, &[]) {
        let nested = subcommands(sb, &[&top]);
        if nested.is_empty() || top == "login" {
            all.insert(top.clone());
        }
        for sub in nested {
            all.insert(format!("{top} {sub}"));
        }
    }
    all
}

/// `reqwest::Client::builder()` after installing ring as the test process's rustls provider
/// (reqwest is built without one; the libraries hand it an explicit config instead).
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
