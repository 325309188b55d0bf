//! `cargo xtask bench [--quick] [--runs N] ...`: whole-process benchmarks of the release
//! `nsauth` binary — the cached-token hot path per store against baselines, peak memory,
//! refresh storms, scale, and startup cost — written to `docs/benchmarks.md`.
//!
//! Everything runs on loopback: the `nsauth emulator` (NetSuite), OpenBao and moto (through
//! `services::up`), and a small counting proxy in front of the emulator's token endpoint.
//! Stores, HOME and the store key live in a temporary directory that is removed afterwards.
//! Comparisons are interleaved round-robin in one go so that their ratios hold on a noisy
//! machine. CI does not run this.

mod agent;
mod http;
mod measure;
mod storms;

use http::TokenProxy;
use measure::{stats, Case, Stats};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--runs N] [--profiles N] [--remote-profiles N] \
[--storm-reps N] [--storm-sizes N,N] [--refresh-delay-ms MS] [--only storms|agent] [--agent-profiles N] \
[--stores sqlite,file,vault,aws] [--bin PATH] [--before-bin PATH] [--no-build] [--out FILE]";

const BEGIN: &str = "<!-- BEGIN cargo xtask bench: generated, edits inside are overwritten -->";
const END: &str = "<!-- END cargo xtask bench -->";
const STORMS_BEGIN: &str =
    "<!-- BEGIN cargo xtask bench storms: generated, edits inside are overwritten -->";
const STORMS_END: &str = "<!-- END cargo xtask bench storms -->";

/// Targets (from the benchmark issue).
const LOCAL_FLOOR_RATIO: f64 = 2.0;
const VAULT_BAO_RATIO: f64 = 0.1;
const AWS_CLI_RATIO: f64 = 0.05;
const MAX_RSS_MIB: f64 = 25.0;
const STATUS_ALL_MS: f64 = 1000.0;

#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    runs: usize,
    profiles: usize,
    remote_profiles: usize,
    storm_reps: usize,
    storm_sizes: Vec<usize>,
    refresh_delay_ms: u64,
    /// `--only storms`: storms and their baselines, nothing else.
    only_storms: bool,
    /// `--only agent`: `nsauth serve` and its `nsauth token` baseline, nothing else.
    only_agent: bool,
    /// `--agent-profiles`: profiles the agent serves (1,000).
    agent_profiles: usize,
    /// `--stores`: labels of the stores to measure (all when `None`).
    stores: Option<Vec<String>>,
    /// `--bin`: the nsauth to measure instead of building one.
    bin: Option<PathBuf>,
    /// `--before-bin`: an older nsauth whose storms run beside this one's.
    before_bin: Option<PathBuf>,
    build: bool,
    out: PathBuf,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Opts {
        quick,
        runs: if quick { 7 } else { 30 },
        profiles: if quick { 1000 } else { 10_000 },
        remote_profiles: if quick { 200 } else { 1000 },
        storm_reps: if quick { 1 } else { 3 },
        storm_sizes: vec![32, 128],
        refresh_delay_ms: 500,
        only_storms: false,
        only_agent: false,
        agent_profiles: 1000,
        stores: None,
        bin: None,
        before_bin: None,
        build: true,
        out: root().join("docs/benchmarks.md"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        };
        match a.as_str() {
            "--quick" => {}
            "--no-build" => o.build = false,
            "--runs" => o.runs = num("--runs")?.max(1) as usize,
            "--profiles" => o.profiles = num("--profiles")?.max(1) as usize,
            "--remote-profiles" => o.remote_profiles = num("--remote-profiles")?.max(1) as usize,
            "--agent-profiles" => o.agent_profiles = num("--agent-profiles")?.max(1) as usize,
            "--storm-reps" => o.storm_reps = num("--storm-reps")?.max(1) as usize,
            "--refresh-delay-ms" => o.refresh_delay_ms = num("--refresh-delay-ms")?,
            "--storm-sizes" => {
                o.storm_sizes = it
                    .next()
                    .map(|v| v.split(',').map(|n| n.trim().parse::<usize>()).collect())
                    .and_then(Result::ok)
                    .filter(|v: &Vec<usize>| !v.is_empty() && v.iter().all(|n| *n > 0))
                    .ok_or_else(|| format!("--storm-sizes needs numbers like 32,128\n{USAGE}"))?
            }
            "--only" => match it.next().map(String::as_str) {
                Some("storms") => o.only_storms = true,
                Some("agent") => o.only_agent = true,
                other => {
                    return Err(format!(
                        "--only takes `storms` or `agent`, not `{}`\n{USAGE}",
                        other.unwrap_or("nothing")
                    ))
                }
            },
            "--stores" => {
                let list = it
                    .next()
                    .ok_or_else(|| format!("--stores needs a list\n{USAGE}"))?;
                let mut labels = Vec::new();
                for l in list.split(',').map(str::trim) {
                    labels.push(match l {
                        "sqlite" | "file" | "vault" | "aws-sm" => l.to_owned(),
                        "aws" => "aws-sm".to_owned(),
                        other => {
                            return Err(format!(
                            "--stores: unknown store {other:?} (sqlite, file, vault, aws)\n{USAGE}"
                        ))
                        }
                    });
                }
                o.stores = Some(labels);
            }
            "--bin" | "--before-bin" => {
                let path = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("{a} needs a file\n{USAGE}"))?;
                if a == "--bin" {
                    o.bin = Some(path);
                } else {
                    o.before_bin = Some(path);
                }
            }
            "--out" => {
                o.out = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("--out needs a file\n{USAGE}"))?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

pub(crate) fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().expect("workspace root").to_path_buf()
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("xtask bench: {msg}");
}

/// A store under test.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub(crate) label: &'static str,
    pub(crate) uri: String,
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
struct Emu {
    child: Child,
    base: String,
    host: String,
    account: String,
    client_id: String,
    redirect: String,
    email: String,
    password: String,
}

fn start_emulator(sb: &Sandbox) -> Result<Emu, String> {
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

fn agent_emulator<'a>(
    base: &'a str,
    account: &'a str,
    client_id: &'a str,
    redirect: &'a str,
    email: &'a str,
    password: &'a str,
) -> agent::Emulator<'a> {
    agent::Emulator {
        base,
        account,
        client_id,
        redirect,
        email,
        password,
    }
}

/// Stops what the bench started, whatever happens.
#[derive(Default)]
struct Cleanup {
    emulator: Option<Child>,
    services: bool,
    proxy: Option<TokenProxy>,
    tmp: Option<PathBuf>,
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

pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The machine, for the report.
struct Machine {
    cpu: String,
    cores: usize,
    ram_gib: f64,
    kernel: String,
    rustc: String,
    date: String,
    load_before: String,
    load_after: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let ram_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ram_gib: ram_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        rustc: first_line(
            &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
            &["--version"],
        ),
        date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        load_before: loadavg(),
        load_after: String::new(),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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

/// All results, for the report.
#[derive(Default)]
struct Results {
    notes: Vec<String>,
    hot: Vec<(String, Stats)>,
    rss: Vec<(String, Stats, Stats)>,
    rss_note: Option<String>,
    hot_refreshes: u64,
    storms: storms::StormReport,
    scale: Vec<ScaleRow>,
    sqlite_bytes: Option<(u64, usize)>,
    binary: Vec<String>,
    strace_summary: Vec<String>,
    strace_timeline: Vec<String>,
    callgrind: Vec<(String, u64)>,
    callgrind_self: Vec<String>,
    callgrind_incl: Vec<String>,
    callgrind_remote: Vec<(String, Vec<String>)>,
    skipped: Vec<String>,
    targets: Vec<(String, String, Option<bool>)>,
}

struct ScaleRow {
    store: &'static str,
    profiles: usize,
    what: String,
    create_s: f64,
    stats: Stats,
}

/// Entry point: `cargo xtask bench ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_opts(args)?;
    let mut m = machine();
    let mut res = Results::default();
    let mut cleanup = Cleanup::default();
    let started = Instant::now();

    if opts.build && opts.bin.is_none() {
        crate::run(crate::cargo().args(["build", "--release", "-p", "nsauth-cli"]))?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = opts
        .bin
        .clone()
        .unwrap_or_else(|| target.join("release/nsauth"));
    for b in std::iter::once(&bin).chain(&opts.before_bin) {
        if !b.exists() {
            return Err(format!(
                "{} is missing: run without --no-build, or give an existing --bin/--before-bin",
                b.display()
            ));
        }
    }

    let run_id: String = random_bytes::<4>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tmp = std::env::temp_dir().join(format!("nsauth-bench-{}-{run_id}", std::process::id()));
    std::fs::create_dir_all(tmp.join("home")).map_err(|e| e.to_string())?;
    cleanup.tmp = Some(tmp.clone());
    let home = tmp.join("home");
    let base_env = sandbox_env(&home, base64(&random_bytes::<32>()));
    let before_sb = opts.before_bin.as_ref().map(|b| {
        Arc::new(Sandbox {
            bin: b.clone(),
            base_env: base_env.clone(),
        })
    });
    let sb = Arc::new(Sandbox {
        bin: bin.clone(),
        base_env,
    });
    let version = sb.ok(None, &["--version"])?.trim().to_owned();
    let backends = sb.ok(None, &["backends"])?;
    // `nsauth backends`: one line per backend, its schemes (comma-separated) first.
    let has_scheme = |scheme: &str| {
        backends.lines().any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|s| s.split(',').any(|s| s == scheme))
        })
    };

    if opts.only_agent {
        let emu = start_emulator(&sb)?;
        cleanup.emulator = Some(emu.child);
        agent::run(
            &sb,
            &agent_emulator(
                &emu.base,
                &emu.account,
                &emu.client_id,
                &emu.redirect,
                &emu.email,
                &emu.password,
            ),
            &tmp,
            &agent::AgentOpts::new(opts.quick, opts.agent_profiles),
            &opts.out,
        )?;
        log(format!("wrote {}", opts.out.display()));
        return Ok(());
    }

    // OpenBao and moto. If they already run (`cargo xtask services up`, or a test run), use
    // them and leave them running: `services::up` would stop them under their owner.
    let svc: Vec<(String, String)> = if let Some(env) = running_services() {
        let msg = "OpenBao and moto were already running (.services/env): used as they are and left running";
        log(msg);
        res.notes.push(msg.into());
        env
    } else {
        match crate::services::up() {
            Ok(env) => {
                cleanup.services = true;
                env
            }
            Err(e) => {
                cleanup.services = true;
                res.notes.push(format!(
                    "OpenBao/moto could not start ({e}); the vault and aws-sm stores are skipped."
                ));
                Vec::new()
            }
        }
    };
    let get = |k: &str| {
        svc.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };

    let emu = start_emulator(&sb)?;
    let Emu {
        child,
        base: emu_base,
        host: emu_host,
        account,
        client_id,
        redirect,
        email,
        password,
    } = emu;
    cleanup.emulator = Some(child);
    let proxy = TokenProxy::start(emu_host.clone())?;
    cleanup.proxy = Some(proxy.clone());
    log(format!(
        "emulator on {emu_base}, token proxy on {}, sandbox {}",
        proxy.base_url(),
        tmp.display()
    ));

    // The stores.
    let mut stores: Vec<Store> = Vec::new();
    let mut consider = |label: &'static str, scheme: &str, store: Option<Store>, why: &str| {
        if opts
            .stores
            .as_ref()
            .is_some_and(|l| !l.iter().any(|s| s == label))
        {
            log(format!("{label}: not measured (--stores)"));
        } else if !has_scheme(scheme) {
            let msg = format!(
                "{label}: skipped — this nsauth does not list `{scheme}://` in `nsauth backends`"
            );
            log(&msg);
            res.skipped.push(msg);
        } else if let Some(s) = store {
            stores.push(s);
        } else {
            let msg = format!("{label}: skipped — {why}");
            log(&msg);
            res.skipped.push(msg);
        }
    };
    consider(
        "sqlite",
        "sqlite",
        Some(Store {
            label: "sqlite",
            uri: format!("sqlite://{}", tmp.join("sqlite/nsauth.db").display()),
            env: vec![],
        }),
        "",
    );
    consider(
        "file",
        "file",
        Some(Store {
            label: "file",
            uri: format!("file://{}", tmp.join("file/profiles").display()),
            env: vec![],
        }),
        "",
    );
    let vault_addr = get("NSAUTH_TEST_VAULT_ADDR");
    consider(
        "vault",
        "vault+http",
        match (&vault_addr, get("NSAUTH_TEST_VAULT_TOKEN")) {
            (Some(addr), Some(token)) => Some(Store {
                label: "vault",
                uri: format!(
                    "vault+http://{}/secret/nsauth/bench-{run_id}",
                    addr.trim_start_matches("http://").trim_end_matches('/')
                ),
                env: vec![("VAULT_TOKEN".into(), token)],
            }),
            _ => None,
        },
        "OpenBao is not running",
    );
    let aws_env = aws_env(&svc);
    let aws_ep = get("NSAUTH_TEST_AWS_ENDPOINT");
    consider(
        "aws-sm",
        "aws-sm",
        aws_ep.as_ref().map(|ep| Store {
            label: "aws-sm",
            uri: format!(
                "aws-sm://nsauth-bench/{run_id}?endpoint={ep}&region=us-east-1&force-delete=true"
            ),
            env: aws_env.clone(),
        }),
        "moto is not running",
    );

    // Profiles: `hot` (a normal 3600 s token) and the storm profiles (told 120 s, so that
    // `--min-ttl 300` finds them expired, like the e2e tests' `set_access_ttl(120)`).
    let endpoints = [
        format!("--authorize-url={emu_base}{}", http::AUTHORIZE_PATH),
        format!("--token-url={}{}", proxy.base_url(), http::TOKEN_PATH),
        format!("--revoke-url={emu_base}{}", http::REVOKE_PATH),
        format!("--rest-url={emu_base}/services/rest/"),
    ];
    let set_profile = |store: &Store, name: &str| -> Result<(), String> {
        let mut args = vec![
            "profile",
            "set",
            name,
            "--account-id",
            &account,
            "--client-id",
            &client_id,
            "--redirect-uri",
            &redirect,
            "--scope",
            "rest_webservices",
        ];
        args.extend(endpoints.iter().map(String::as_str));
        sb.ok(Some(store), &args).map(|_| ())
    };
    let login = |store: &Store, name: &str| -> Result<(), String> {
        set_profile(store, name)?;
        let url = sb.ok(Some(store), &["--profile", name, "login", "start"])?;
        let url = url
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http"))
            .ok_or_else(|| format!("login start printed no URL: {url}"))?;
        let landed = http::browser_login(url, &email, &password)?;
        sb.ok(
            Some(store),
            &["--profile", name, "login", "finish", &landed],
        )
        .map(|_| ())
    };
    let mut bins = vec![storms::Binary {
        label: "this",
        sb: sb.clone(),
    }];
    if let Some(before) = &before_sb {
        bins.push(storms::Binary {
            label: "before",
            sb: before.clone(),
        });
    }
    for store in &stores {
        log(format!("{}: logging in the bench profiles", store.label));
        proxy.shorten.store(true, Ordering::SeqCst);
        for &n in &opts.storm_sizes {
            for rep in 0..opts.storm_reps {
                for b in &bins {
                    login(store, &b.profile(n, rep))?;
                }
            }
        }
        proxy.shorten.store(false, Ordering::SeqCst);
        login(store, "hot")?;
        sb.ok(Some(store), &["--profile", "hot", "token"])?;
    }

    if !opts.only_storms {
        hot_and_memory(
            &sb, &stores, &tmp, &home, &svc, &run_id, &proxy, &opts, &mut res,
        )?;
    }

    // 3. Refresh storms, with their baselines.
    proxy
        .refresh_delay_ms
        .store(opts.refresh_delay_ms, Ordering::SeqCst);
    let mut storm_stores = Vec::new();
    for store in &stores {
        let raw = match store.label {
            "vault" => match (&vault_addr, get("NSAUTH_TEST_VAULT_TOKEN")) {
                (Some(addr), Some(token)) => Some(storms::vault_raw_read(
                    addr,
                    format!("/v1/secret/data/nsauth/bench-{run_id}/hot"),
                    token,
                )?),
                _ => None,
            },
            "aws-sm" => match &aws_ep {
                Some(ep) => Some(storms::aws_raw_read(
                    ep,
                    format!("nsauth-bench/{run_id}/hot"),
                    get("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "testing".into()),
                )?),
                None => None,
            },
            _ => None,
        };
        storm_stores.push((store.clone(), raw));
    }
    res.storms = storms::run(
        &bins,
        &storm_stores,
        &opts.storm_sizes,
        opts.storm_reps,
        &proxy,
    )?;
    proxy.refresh_delay_ms.store(0, Ordering::SeqCst);

    if !opts.only_storms {
        // 4. Scale.
        scale(
            &sb, &opts, &stores, &tmp, &emu_base, &account, &client_id, &redirect, &mut res,
        )?;
        // 5. Startup: where a cached `token` spends its time.
        if let Some(sqlite) = stores.iter().find(|s| s.label == "sqlite") {
            startup_profile(&sb, sqlite, &stores, &tmp, &mut res);
        }
        // 6. nsauth serve (issue #11), beside nsauth token as a process.
        let e = agent_emulator(
            &emu_base, &account, &client_id, &redirect, &email, &password,
        );
        let agent_opts = agent::AgentOpts::new(opts.quick, opts.agent_profiles);
        if let Err(err) = agent::run(&sb, &e, &tmp, &agent_opts, &opts.out) {
            log(format!("nsauth serve not measured: {err}"));
            res.notes.push(format!("nsauth serve not measured: {err}"));
        }
    }

    m.load_after = loadavg();
    let took = started.elapsed();
    let storms_header = storms_header(&opts, &m, &version, &res, took);
    write_block(
        &opts.out,
        STORMS_BEGIN,
        STORMS_END,
        &storms::render(&res.storms, &storms_header),
    )?;
    if !opts.only_storms {
        targets(&mut res, &opts);
        let report = render(&opts, &m, &version, &stores, &res, took);
        write_block(&opts.out, BEGIN, END, &report)?;
        eprintln!("{}", summary_text(&res));
    }
    log(format!("wrote {}", opts.out.display()));
    eprintln!("storms:\n{}", storms::summary(&res.storms));
    drop(cleanup);
    Ok(())
}

/// The hot path (interleaved with the baselines `bao kv get` and `aws secretsmanager`) and
/// peak memory.
#[allow(clippy::too_many_arguments)]
fn hot_and_memory(
    sb: &Arc<Sandbox>,
    stores: &[Store],
    tmp: &Path,
    home: &Path,
    svc: &[(String, String)],
    run_id: &str,
    proxy: &TokenProxy,
    opts: &Opts,
    res: &mut Results,
) -> Result<(), String> {
    let get = |k: &str| {
        svc.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let vault_addr = get("NSAUTH_TEST_VAULT_ADDR");
    let aws_ep = get("NSAUTH_TEST_AWS_ENDPOINT");
    let aws_env = aws_env(svc);
    let home = home.to_path_buf();
    // Baselines.
    let bao_bin = get("NSAUTH_TEST_BAO_BIN");
    let root_token = get("NSAUTH_TEST_VAULT_ROOT_TOKEN");
    let mut cases: Vec<Case> = Vec::new();
    {
        let home = home.clone();
        cases.push(Case::new(
            "true (exec floor: spawn + exit of /bin/true)",
            move || {
                let mut c = Command::new("true");
                c.env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("HOME", &home);
                c
            },
        ));
    }
    {
        let sb = sb.clone();
        cases.push(Case::new("nsauth --version (process floor)", move || {
            let mut c = sb.nsauth(None);
            c.arg("--version");
            c
        }));
    }
    {
        let sb = sb.clone();
        let empty = Store {
            label: "sqlite",
            uri: format!("sqlite://{}", tmp.join("empty/nsauth.db").display()),
            env: vec![],
        };
        sb.ok(Some(&empty), &["profile", "list"])?;
        cases.push(Case::new(
            "nsauth profile list (empty sqlite store)",
            move || {
                let mut c = sb.nsauth(Some(&empty));
                c.args(["profile", "list"]);
                c
            },
        ));
    }
    for store in stores {
        let (sb, store) = (sb.clone(), store.clone());
        cases.push(Case::new(
            format!("nsauth token ({}, cached)", store.label),
            move || {
                let mut c = sb.nsauth(Some(&store));
                c.args(["--profile", "hot", "token"]);
                c
            },
        ));
    }
    if let (Some(store), Some(bao), Some(addr), Some(root_token)) = (
        stores.iter().find(|s| s.label == "vault"),
        &bao_bin,
        &vault_addr,
        &root_token,
    ) {
        let path = format!("nsauth/bench-{run_id}/hot");
        let (bao, addr, root_token, home) =
            (bao.clone(), addr.clone(), root_token.clone(), home.clone());
        let make = move || {
            let mut c = Command::new(&bao);
            c.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", &home)
                .env("VAULT_ADDR", &addr)
                .env("VAULT_TOKEN", &root_token)
                .args(["kv", "get", "-format=json", "-mount=secret", &path]);
            c
        };
        measure::time_once(make())
            .map_err(|e| format!("the bao baseline cannot read the vault store's secret ({e})"))?;
        let _ = store;
        cases.push(Case::new("bao kv get -format=json (same secret)", make));
    }
    if let (Some(_), Some(ep)) = (stores.iter().find(|s| s.label == "aws-sm"), &aws_ep) {
        match ensure_awscli() {
            Ok(aws) => {
                let id = format!("nsauth-bench/{run_id}/hot");
                let (ep, env, home) = (ep.clone(), aws_env.clone(), home.clone());
                let make = move || {
                    let mut c = Command::new(&aws);
                    c.env_clear()
                        .env("PATH", std::env::var("PATH").unwrap_or_default())
                        .env("HOME", &home)
                        .env("AWS_PAGER", "")
                        .envs(env.iter().map(|(k, v)| (k, v)))
                        .args([
                            "--endpoint-url",
                            &ep,
                            "--region",
                            "us-east-1",
                            "secretsmanager",
                            "get-secret-value",
                            "--secret-id",
                            &id,
                            "--output",
                            "json",
                        ]);
                    c
                };
                measure::time_once(make()).map_err(|e| {
                    format!("the aws baseline cannot read the aws-sm store's secret ({e})")
                })?;
                cases.push(Case::new(
                    "aws secretsmanager get-secret-value (same secret)",
                    make,
                ));
            }
            Err(e) => res
                .notes
                .push(format!("awscli unavailable ({e}); no aws-sm baseline")),
        }
    }

    // 1. The hot path, interleaved.
    log(format!(
        "hot path: {} commands x {} runs, interleaved",
        cases.len(),
        opts.runs
    ));
    let before = proxy.token_requests.load(Ordering::SeqCst);
    let samples = measure::interleaved(&cases, opts.runs, 2)?;
    res.hot_refreshes = proxy.token_requests.load(Ordering::SeqCst) - before;
    for (c, s) in cases.iter().zip(&samples) {
        res.hot.push((c.name.clone(), stats(s)));
    }

    // 2. Peak memory.
    if measure::have_gnu_time() {
        let rss_runs = opts.runs.min(10);
        log(format!("peak RSS: {rss_runs} runs per command"));
        let mut rss_cases: Vec<(String, Command)> =
            vec![("nsauth --version".into(), sb.nsauth(None))];
        rss_cases[0].1.arg("--version");
        for store in stores {
            let mut c = sb.nsauth(Some(store));
            c.args(["--profile", "hot", "token"]);
            rss_cases.push((format!("nsauth token ({})", store.label), c));
        }
        for (name, cmd) in &rss_cases {
            let (mut v, mut faults) = (Vec::new(), Vec::new());
            for _ in 0..rss_runs {
                let mut c = Command::new(cmd.get_program());
                c.args(cmd.get_args());
                for (k, val) in cmd.get_envs() {
                    if let Some(val) = val {
                        c.env(k, val);
                    }
                }
                let (kib, minflt) = measure::rusage(c)?;
                v.push(kib as f64 / 1024.0);
                faults.push(minflt as f64);
            }
            res.rss.push((name.clone(), stats(&v), stats(&faults)));
        }
    } else {
        res.rss_note =
            Some("GNU time (/usr/bin/time) is not installed: peak RSS not measured".into());
    }

    Ok(())
}

/// The AWS variables of the services' environment that the aws-sm store needs.
fn aws_env(svc: &[(String, String)]) -> Vec<(String, String)> {
    AWS_ENV
        .iter()
        .filter_map(|k| {
            svc.iter()
                .find(|(n, v)| n == k && !v.is_empty())
                .map(|(n, v)| (n.clone(), v.clone()))
        })
        .collect()
}

fn ensure_awscli() -> Result<PathBuf, String> {
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

fn json_int(text: &str, key: &str) -> Option<i64> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

#[allow(clippy::too_many_arguments)]
fn scale(
    sb: &Arc<Sandbox>,
    opts: &Opts,
    stores: &[Store],
    tmp: &Path,
    emu_base: &str,
    account: &str,
    client_id: &str,
    redirect: &str,
    res: &mut Results,
) -> Result<(), String> {
    let scale_runs = if opts.quick { 3 } else { 5 };
    for store in stores {
        if store.label == "file" {
            continue;
        }
        let count = if store.label == "sqlite" {
            opts.profiles
        } else {
            opts.remote_profiles
        };
        let mut s = store.clone();
        s.uri = match store.label {
            "sqlite" => format!("sqlite://{}", tmp.join("scale/nsauth.db").display()),
            "vault" => store.uri.replace("/bench-", "/scale-"),
            _ => store.uri.replace("nsauth-bench/", "nsauth-scale/"),
        };
        log(format!(
            "scale: creating {count} profiles on {} (nsauth profile set, 4 at a time)",
            store.label
        ));
        let t0 = Instant::now();
        let job = |i: usize| -> Result<(), String> {
            let name = format!("p{i:05}");
            let args = [
                "profile",
                "set",
                name.as_str(),
                "--account-id",
                account,
                "--client-id",
                client_id,
                "--redirect-uri",
                redirect,
                "--scope",
                "rest_webservices",
                "--base-url",
                emu_base,
            ];
            // Concurrent writers may meet a busy store; one retry after a pause.
            sb.ok(Some(&s), &args).or_else(|_| {
                std::thread::sleep(Duration::from_millis(200));
                sb.ok(Some(&s), &args)
            })?;
            Ok(())
        };
        measure::parallel(count, 4, &job)?;
        let create_s = t0.elapsed().as_secs_f64();
        let listed = sb.ok(Some(&s), &["profile", "list"])?;
        let n = listed.lines().filter(|l| l.contains('p')).count();
        if n < count {
            res.notes.push(format!(
                "scale on {}: {count} profiles created but `profile list` shows {n}",
                store.label
            ));
        }
        let mut cases = vec![{
            let (sb, s) = (sb.clone(), s.clone());
            Case::new("profile list", move || {
                let mut c = sb.nsauth(Some(&s));
                c.args(["profile", "list"]);
                c
            })
        }];
        {
            let (sb, s) = (sb.clone(), s.clone());
            cases.push(Case::new("status --all --json", move || {
                let mut c = sb.nsauth(Some(&s));
                c.args(["status", "--all", "--json"]);
                c
            }));
        }
        log(format!("scale: timing list and status on {}", store.label));
        let samples = measure::interleaved(&cases, scale_runs, 1)?;
        for (c, v) in cases.iter().zip(samples) {
            res.scale.push(ScaleRow {
                store: store.label,
                profiles: count,
                what: c.name.clone(),
                create_s,
                stats: stats(&v),
            });
        }
        if store.label == "sqlite" {
            let dir = tmp.join("scale");
            let bytes: u64 = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("nsauth.db"))
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            res.sqlite_bytes = Some((bytes, count));
        }
    }
    Ok(())
}

/// strace and callgrind on a cached `token` (sqlite).
fn startup_profile(sb: &Sandbox, store: &Store, all: &[Store], tmp: &Path, res: &mut Results) {
    let db = store.uri.trim_start_matches("sqlite://").to_owned();
    let token_args = ["--profile", "hot", "token"];
    // The binary: size and the dynamic relocations the loader applies at every start.
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
    // strace -c: the syscall mix.
    let out = tmp.join("strace-c.txt");
    let mut c = sb.nsauth(Some(store));
    c.args(token_args);
    if run_wrapped("strace", &["-f", "-c", "-S", "calls", "-o"], &out, &c) {
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
    // strace -ttt: what happens before the first store access.
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
        &c,
    ) {
        res.strace_timeline = timeline(&std::fs::read_to_string(&out).unwrap_or_default(), &db);
    }
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
        ("nsauth token (sqlite, cached)".into(), c),
    ];
    for other in all.iter().filter(|s| s.label != "sqlite") {
        let mut c = sb.nsauth(Some(other));
        c.args(token_args);
        runs.push((format!("nsauth token ({}, cached)", other.label), c));
    }
    for (name, cmd) in &runs {
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
            continue;
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
        res.callgrind.push((name.clone(), total));
        if name.starts_with("nsauth token (sqlite") {
            res.callgrind_self = top_functions(&plain, 15, false);
            res.callgrind_incl = top_functions(&annotate(&["--inclusive=yes"]), 25, false);
        } else if name.starts_with("nsauth token") {
            res.callgrind_remote.push((
                name.clone(),
                top_functions(&annotate(&["--inclusive=yes"]), 20, true),
            ));
        }
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
fn demangle_hashes(s: &str) -> String {
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

fn find_hot<'a>(res: &'a Results, prefix: &str) -> Option<&'a Stats> {
    res.hot
        .iter()
        .find(|(n, _)| n.starts_with(prefix))
        .map(|(_, s)| s)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn targets(res: &mut Results, opts: &Opts) {
    let mut t = Vec::new();
    let floor = find_hot(res, "nsauth --version").copied();
    for label in ["sqlite", "file"] {
        if let (Some(f), Some(s)) = (floor, find_hot(res, &format!("nsauth token ({label}"))) {
            let r = s.median / f.median;
            t.push((
                format!("`token` on {label} ≤ {LOCAL_FLOOR_RATIO}× the process floor"),
                format!("{:.2} ms vs {:.2} ms = **{r:.2}×**", s.median, f.median),
                Some(r <= LOCAL_FLOOR_RATIO),
            ));
        }
    }
    for (label, base, limit) in [
        ("vault", "bao kv get", VAULT_BAO_RATIO),
        ("aws-sm", "aws secretsmanager", AWS_CLI_RATIO),
    ] {
        match (
            find_hot(res, &format!("nsauth token ({label}")),
            find_hot(res, base),
        ) {
            (Some(s), Some(b)) => {
                let r = s.median / b.median;
                t.push((
                    format!("`token` on {label} ≤ {limit}× `{base}`"),
                    format!("{:.2} ms vs {:.2} ms = **{r:.3}×**", s.median, b.median),
                    Some(r <= limit),
                ));
            }
            (Some(_), None) => t.push((
                format!("`token` on {label} ≤ {limit}× `{base}`"),
                "baseline not available".into(),
                None,
            )),
            _ => {}
        }
    }
    for (name, s, _) in &res.rss {
        if name.starts_with("nsauth token") {
            t.push((
                format!("peak RSS of {name} ≤ {MAX_RSS_MIB} MiB"),
                format!("max {:.1} MiB (median {:.1})", s.max, s.median),
                Some(s.max <= MAX_RSS_MIB),
            ));
        }
    }
    if let Some(row) = res
        .scale
        .iter()
        .find(|r| r.store == "sqlite" && r.what.starts_with("status"))
    {
        let note = if row.profiles < 10_000 {
            format!(" (with {} profiles, not 10 000)", row.profiles)
        } else {
            String::new()
        };
        t.push((
            format!("`status --all --json` on sqlite with 10 000 profiles ≤ 1 s{note}"),
            format!(
                "median {:.0} ms, max {:.0} ms",
                row.stats.median, row.stats.max
            ),
            Some(row.stats.median <= STATUS_ALL_MS),
        ));
    }
    let _ = opts;
    res.targets = t;
}

fn fmt_stats(s: &Stats) -> String {
    format!("{:.2} | {:.2} | {:.2}", s.median, s.min, s.max)
}

fn render(
    opts: &Opts,
    m: &Machine,
    version: &str,
    stores: &[Store],
    res: &Results,
    took: Duration,
) -> String {
    let mut d = String::new();
    let w = &mut d;
    let _ = writeln!(w, "## Last run\n");
    let _ = writeln!(
        w,
        "{}, {} (`cargo xtask bench{}`; {} interleaved runs per command after 2 warm-up rounds, \
         {} storm(s) per size and store, {} ms simulated NetSuite latency on refresh; the whole \
         bench took {:.0} s).\n",
        m.date,
        version,
        if opts.quick { " --quick" } else { "" },
        opts.runs,
        opts.storm_reps,
        opts.refresh_delay_ms,
        took.as_secs_f64()
    );
    let _ = writeln!(w, "| Machine | |\n|---|---|");
    let _ = writeln!(w, "| CPU | {} |", m.cpu);
    let _ = writeln!(w, "| Cores | {} |", m.cores);
    let _ = writeln!(w, "| RAM | {:.1} GiB |", m.ram_gib);
    let _ = writeln!(w, "| Kernel | Linux {} |", m.kernel);
    let _ = writeln!(w, "| rustc | {} |", m.rustc);
    let _ = writeln!(
        w,
        "| Load average (1/5/15 min) | {} before, {} after |\n",
        m.load_before, m.load_after
    );
    let _ = writeln!(
        w,
        "Stores: {}.",
        stores
            .iter()
            .map(|s| format!("`{}`", s.label))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for s in &res.skipped {
        let _ = writeln!(w, "\n- {s}");
    }
    for n in &res.notes {
        let _ = writeln!(w, "\n- Note: {n}");
    }

    let _ = writeln!(
        w,
        "\n### Targets\n\n| Target | Measured | Result |\n|---|---|---|"
    );
    for (what, got, ok) in &res.targets {
        let _ = writeln!(w, "| {what} | {got} | {} |", ok.map_or("n/a", verdict));
    }

    let _ = writeln!(
        w,
        "\n### Hot path: one whole process, cached token\n\nWall time from spawn to exit, ms; \
         all commands interleaved round-robin in the same go. \
         Token-endpoint calls during these runs: {} (all from cache).\n",
        res.hot_refreshes
    );
    let _ = writeln!(
        w,
        "| Command | median | min | max | median / floor |\n|---|---|---|---|---|"
    );
    let floor = find_hot(res, "nsauth --version").map_or(f64::NAN, |s| s.median);
    for (name, s) in &res.hot {
        let _ = writeln!(
            w,
            "| {name} | {} | {:.2}× |",
            fmt_stats(s),
            s.median / floor
        );
    }

    let _ = writeln!(
        w,
        "\n### Peak memory (max RSS, GNU time's wait4 ru_maxrss)\n"
    );
    if let Some(n) = &res.rss_note {
        let _ = writeln!(w, "{n}");
    } else {
        let _ = writeln!(
            w,
            "| Command | median MiB | min | max | minor page faults (median) |\n|---|---|---|---|---|"
        );
        for (name, s, f) in &res.rss {
            let _ = writeln!(
                w,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.0} |",
                s.median, s.min, s.max, f.median
            );
        }
    }

    let _ = writeln!(
        w,
        "\n### Refresh storms\n\nIn their own section below (`cargo xtask bench --only storms` \
         rewrites it alone)."
    );

    let _ = writeln!(
        w,
        "\n### Scale\n\nProfiles created with `nsauth profile set` (4 processes at a time; \
         profiles without tokens), then `profile list` and `status --all --json` timed \
         (interleaved, {} runs), ms.\n",
        if opts.quick { 3 } else { 5 }
    );
    let _ = writeln!(
        w,
        "| Store | profiles | command | median | min | max | creation (all profiles) |\n|---|---|---|---|---|---|---|"
    );
    for r in &res.scale {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {:.1} s ({:.1} ms/profile) |",
            r.store,
            r.profiles,
            r.what,
            fmt_stats(&r.stats),
            r.create_s,
            r.create_s * 1000.0 / r.profiles as f64
        );
    }
    if let Some((bytes, n)) = res.sqlite_bytes {
        let _ = writeln!(
            w,
            "\nSQLite: {bytes} bytes for {n} profiles (database + WAL) = **{:.0} bytes per profile**.",
            bytes as f64 / n as f64
        );
    }

    let _ = writeln!(w, "\n### Startup: where a cached `token` goes (sqlite)\n");
    if !res.binary.is_empty() {
        let _ = writeln!(w, "The binary (`readelf -d`):\n\n```");
        for l in &res.binary {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```\n");
    }
    if !res.callgrind.is_empty() {
        let _ = writeln!(
            w,
            "Instructions executed (valgrind callgrind, whole process):\n\n| Command | instructions |\n|---|---|"
        );
        for (name, ir) in &res.callgrind {
            let _ = writeln!(w, "| {name} | {} |", group_digits(*ir));
        }
        let _ = writeln!(
            w,
            "\nTop functions of `token` by inclusive instructions (callgrind_annotate --inclusive=yes):\n\n```"
        );
        for l in &res.callgrind_incl {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```\n\nTop functions by self instructions:\n\n```");
        for l in &res.callgrind_self {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```");
        for (name, lines) in &res.callgrind_remote {
            let _ = writeln!(
                w,
                "\nTop functions of `{name}` by inclusive instructions (runtime and loader frames left out):\n\n```"
            );
            for l in lines {
                let _ = writeln!(w, "{l}");
            }
            let _ = writeln!(w, "```");
        }
    }
    if !res.strace_timeline.is_empty() {
        let _ = writeln!(
            w,
            "\nBefore the first store read (`strace -f -ttt`, file, network, process calls; \
             each path once):\n\n```"
        );
        for l in &res.strace_timeline {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```");
    }
    if !res.strace_summary.is_empty() {
        let _ = writeln!(
            w,
            "\nSyscalls of one `token` (`strace -f -c -S calls`):\n\n```"
        );
        for l in &res.strace_summary {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```");
    }
    d
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn summary_text(res: &Results) -> String {
    let mut s = String::from("targets:\n");
    for (what, got, ok) in &res.targets {
        let _ = writeln!(s, "  [{}] {what}: {got}", ok.map_or("n/a", verdict));
    }
    s
}

/// The storms section's first paragraph: when, what, on which machine.
fn storms_header(opts: &Opts, m: &Machine, version: &str, res: &Results, took: Duration) -> String {
    let mut h = format!(
        "{}, {version} (`cargo xtask bench{}`; {} storm(s) per size, store and binary; {} ms \
         simulated NetSuite latency on refresh; the run took {:.0} s). Machine: {} cores, load \
         average (1/5/15 min) {} before, {} after. N concurrent `nsauth token --min-ttl {}` \
         processes, released together by a barrier, on a profile whose access token nsauth was \
         told lives {} s (so all of them find it expiring).",
        m.date,
        if opts.only_storms {
            " --only storms"
        } else {
            ""
        },
        opts.storm_reps,
        opts.refresh_delay_ms,
        took.as_secs_f64(),
        m.cores,
        m.load_before,
        m.load_after,
        storms::STORM_MIN_TTL,
        http::SHORT_TTL,
    );
    if opts.before_bin.is_some() {
        h.push_str(
            " Binary `this` is the nsauth under test; `before` is the `--before-bin` nsauth, \
             run on its own profiles in the same go (interleaved per run).",
        );
    }
    for n in &res.notes {
        h.push_str(&format!(" Note: {n}."));
    }
    h
}

/// Writes `generated` between the markers `begin` and `end`, keeping the text around them
/// (appended at the end when the markers are missing).
fn write_block(path: &Path, begin: &str, end: &str, generated: &str) -> Result<(), String> {
    let block = format!("{begin}\n\n{generated}\n{end}\n");
    let text = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(begin), old.find(end)) {
            (Some(b), Some(e)) if e > b => {
                let after = &old[e + end.len()..];
                format!("{}{block}\n{}", &old[..b], after.trim_start_matches('\n'))
            }
            _ => format!("{}\n\n{block}", old.trim_end()),
        },
        Err(_) => format!(
            "# Benchmarks\n\n`cargo xtask bench` measures the release `nsauth` binary as whole \
             processes and rewrites the sections below.\n\n{block}"
        ),
    };
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(
            base64(&[42u8; 32]),
            "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn json_and_hashes() {
        assert_eq!(
            json_int("{\n  \"refresh_count\": 3,\n}", "refresh_count"),
            Some(3)
        );
        assert_eq!(
            demangle_hashes("a::b::h0123456789abcdef (x)"),
            "a::b (x)".to_owned()
        );
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
