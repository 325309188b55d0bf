//! The sandbox every measured `nsauth` runs in: its environment, the stores under test, the
//! emulator it talks to, the running OpenBao/moto, and the cleanup of all of it.

use super::http::{self, TokenProxy};
use super::measure;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A store under test.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub(crate) label: &'static str,
    pub(crate) uri: String,
    /// Its environment; in a storm, `{n}` in a value becomes the process's index.
    pub(crate) env: Vec<(String, String)>,
}

/// The sandbox every `nsauth` runs in.
pub(crate) struct Sandbox {
    pub(crate) bin: PathBuf,
    pub(crate) base_env: Vec<(String, String)>,
}

impl Sandbox {
    pub(crate) fn nsauth(&self, store: Option<&Store>) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .envs(self.base_env.iter().map(|(k, v)| (k, v)));
        if let Some(s) = store {
            c.envs(s.env.iter().map(|(k, v)| (k, v)))
                .args(["--store", &s.uri]);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs nsauth and returns stdout; an error with stderr on failure.
    pub(crate) fn ok(&self, store: Option<&Store>, args: &[&str]) -> Result<String, String> {
        let mut c = self.nsauth(store);
        c.args(args);
        let out = c.output().map_err(|e| format!("cannot run nsauth: {e}"))?;
        measure::check(&c, &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// What the emulator printed on start.
pub(super) struct Emu {
    pub(super) child: Child,
    pub(super) base: String,
    pub(super) host: String,
    pub(super) account: String,
    pub(super) client_id: String,
    pub(super) redirect: String,
    pub(super) email: String,
    pub(super) password: String,
}

pub(super) fn start_emulator(sb: &Sandbox) -> Result<Emu, String> {
    let mut child = sb
        .nsauth(None)
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nsauth emulator: {e}"))?;
    let stdout = child.stdout.take().ok_or("no emulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut account, mut email, mut password) = (None, None, None, None);
    let (mut client_id, mut redirect) = (None, None);
    while let Some(Ok(line)) = lines.next() {
        let line = line.trim().to_owned();
        if let Some(url) = line.strip_prefix("NetSuite emulator listening on ") {
            base = Some(url.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("account ") {
            // account 1234567_SB1; user demo@example.com / demo-password
            if let Some((acc, user)) = rest.split_once("; user ") {
                account = Some(acc.trim().to_owned());
                if let Some((e, p)) = user.split_once(" / ") {
                    email = Some(e.trim().to_owned());
                    password = Some(p.trim().to_owned());
                }
            }
        } else if line.starts_with("nsauth profile set") {
            let words: Vec<&str> = line.split_whitespace().collect();
            let after = |flag: &str| {
                words
                    .iter()
                    .position(|w| *w == flag)
                    .and_then(|i| words.get(i + 1))
                    .map(|s| (*s).to_owned())
            };
            client_id = after("--client-id");
            redirect = after("--redirect-uri");
        }
        if line.starts_with("(Ctrl-C") {
            break;
        }
    }
    let missing = || "the emulator did not print its address, account, user and client".to_owned();
    if [&base, &account, &client_id, &redirect, &email, &password]
        .iter()
        .any(|v| v.is_none())
    {
        let _ = child.kill();
        let _ = child.wait();
        return Err(missing());
    }
    let base = base.ok_or_else(missing)?;
    let host = http::split_url(&base)?.0;
    Ok(Emu {
        child,
        host,
        base,
        account: account.ok_or_else(missing)?,
        client_id: client_id.ok_or_else(missing)?,
        redirect: redirect.ok_or_else(missing)?,
        email: email.ok_or_else(missing)?,
        password: password.ok_or_else(missing)?,
    })
}

/// Stops what the bench started, whatever happens.
#[derive(Default)]
pub(super) struct Cleanup {
    pub(super) emulator: Option<Child>,
    pub(super) services: bool,
    pub(super) proxy: Option<TokenProxy>,
    pub(super) tmp: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.emulator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(p) = self.proxy.take() {
            p.stop();
        }
        if self.services {
            crate::services::down();
        }
        if let Some(t) = self.tmp.take() {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b
}

/// A fresh random store key, as `NSAUTH_STORE_KEY` takes it (base64 of 32 bytes).
pub(crate) fn random_store_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
}

fn pid_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid.trim()).exists()
}

/// The environment of OpenBao and moto when `cargo xtask services up` (or a test run) has
/// them running: `.services/env` as `KEY=VALUE` pairs.
pub(crate) fn running_services() -> Option<Vec<(String, String)>> {
    let pids = std::fs::read_to_string(crate::services::dir().join("pids")).unwrap_or_default();
    let env_file = std::fs::read_to_string(crate::services::dir().join("env")).unwrap_or_default();
    let running = pids.lines().any(|p| !p.trim().is_empty() && pid_alive(p));
    (running && !env_file.is_empty()).then(|| {
        env_file
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    })
}

/// The variables of `.services/env` an `nsauth` on moto needs.
pub(crate) const AWS_ENV: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
];

/// The environment of an `nsauth` confined to `home`, with the store key `key` (base64).
pub(crate) fn sandbox_env(home: &Path, key: String) -> Vec<(String, String)> {
    let under = |p: &str| home.join(p).display().to_string();
    vec![
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_owned(), home.display().to_string()),
        ("XDG_CONFIG_HOME".to_owned(), under(".config")),
        ("XDG_DATA_HOME".to_owned(), under(".local/share")),
        ("XDG_STATE_HOME".to_owned(), under(".local/state")),
        ("NSAUTH_STORE_KEY".to_owned(), key),
    ]
}

/// The AWS variables of the services' environment that the aws-sm store needs.
pub(super) fn aws_env(svc: &[(String, String)]) -> Vec<(String, String)> {
    AWS_ENV
        .iter()
        .filter_map(|k| {
            svc.iter()
                .find(|(n, v)| n == k && !v.is_empty())
                .map(|(n, v)| (n.clone(), v.clone()))
        })
        .collect()
}

pub(super) fn ensure_awscli() -> Result<PathBuf, String> {
    let bin = crate::services::dir().join("venv/bin");
    let aws = bin.join("aws");
    if !aws.exists() {
        crate::run(Command::new(bin.join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "awscli",
        ]))?;
    }
    if aws.exists() {
        Ok(aws)
    } else {
        Err("pip did not install the aws command".into())
    }
}

/// The first integer under `key` anywhere in the JSON `text` (`nsauth status --json`).
pub(super) fn json_int(text: &str, key: &str) -> Option<i64> {
    fn find(v: &serde_json::Value, key: &str) -> Option<i64> {
        match v {
            serde_json::Value::Object(m) => m
                .get(key)
                .and_then(serde_json::Value::as_i64)
                .or_else(|| m.values().find_map(|v| find(v, key))),
            serde_json::Value::Array(a) => a.iter().find_map(|v| find(v, key)),
            _ => None,
        }
    }
    find(&serde_json::from_str(text).ok()?, key)
}
