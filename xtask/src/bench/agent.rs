//! `cargo xtask bench --only agent` (and the end of a full `cargo xtask bench`): the speed of
//! `nsauth serve` (issue #11) beside `nsauth token` run as a process, in one go.
//!
//! Against the emulator, with N profiles (1,000) logged in on a sqlite store, the agent
//! started as `nsauth serve --listen unix:PATH --all`:
//! - `GET /v1/token` over the Unix socket: latency at a fixed 1,000 requests/s (open loop,
//!   4 connections each sending on its own schedule), alternating in rounds with the same
//!   load against a trivial responder (a canned answer) that shows what the machine allows at
//!   that moment; then the most requests/s 4 connections get (closed loop; the bench's client
//!   threads share the machine's cores with the agent);
//! - the agent's RSS with every profile's token cached;
//! - `GET record/v1/metadata-catalog` through `/v1/proxy/NAME/` against the same request
//!   sent to the emulator directly with the token, interleaved, both over kept-alive
//!   connections: p50/p99 and the difference (the proxy's overhead);
//! - the agent's CPU while idle with every profile watched (utime+stime from /proc);
//! - `nsauth token` as a process on the same store: p50/p99 of one run, the requests/s of
//!   two running side by side, and its peak RSS (GNU time).
//!
//! HTTP is spoken by a few lines of blocking client code (`conn.rs`) so that no client
//! library's cost lands in the figures.

mod conn;
mod load;

use super::measure::{self, stats, Case, Stats};
use super::{log, Sandbox, Store};
use conn::Conn;
use load::{closed_loop, fixed_rate, floor_server, Load};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BEGIN: &str =
    "<!-- BEGIN cargo xtask bench agent: generated, edits inside are overwritten -->";
const END: &str = "<!-- END cargo xtask bench agent -->";

/// Targets from issue #11.
const TOKEN_P99_MS: f64 = 1.0;
const THROUGHPUT: f64 = 20_000.0;
const RSS_MIB: f64 = 20.0;
const PROXY_P50_MS: f64 = 1.0;
const PROXY_P99_MS: f64 = 3.0;
const IDLE_CPU_PCT: f64 = 1.0;

/// How much to measure.
#[derive(Clone, Debug)]
struct AgentOpts {
    pub profiles: usize,
    /// Seconds at 1,000 requests/s.
    pub rate_secs: u64,
    /// Seconds of closed-loop load.
    pub max_secs: u64,
    /// Proxied (and direct) requests.
    pub proxy_requests: usize,
    /// Seconds the idle CPU is measured over.
    pub idle_secs: u64,
    /// Runs of `nsauth token` as a process.
    pub process_runs: usize,
}

impl AgentOpts {
    fn new(quick: bool, profiles: usize) -> Self {
        Self {
            profiles,
            rate_secs: if quick { 5 } else { 20 },
            max_secs: if quick { 3 } else { 10 },
            proxy_requests: if quick { 300 } else { 2000 },
            idle_secs: if quick { 10 } else { 60 },
            process_runs: if quick { 20 } else { 100 },
        }
    }
}

/// The figures.
#[derive(Default)]
struct Figures {
    rate: Option<(Stats, usize, usize, f64)>,
    floor: Option<(Stats, usize, usize, f64)>,
    idle_ticks: u64,
    max_rps: f64,
    rss_kib: (u64, u64),
    direct: Stats,
    proxied: Stats,
    overhead: (f64, f64),
    idle_cpu_pct: f64,
    process: Stats,
    process_rps: f64,
    process_rss_kib: Option<u64>,
    errors: Vec<String>,
}

/// `cargo xtask bench --only agent`, and the last part of a full run: a sandbox and an
/// emulator of its own (no OpenBao or moto needed), then [`run`].
pub(crate) fn standalone(
    bin: &Path,
    quick: bool,
    profiles: usize,
    out: &Path,
) -> Result<(), String> {
    let mut cleanup = super::run::Cleanup::default();
    let run_id = hex::encode(super::run::random_bytes::<4>());
    let tmp = std::env::temp_dir().join(format!(
        "nsauth-bench-agent-{}-{run_id}",
        std::process::id()
    ));
    std::fs::create_dir_all(tmp.join("home")).map_err(|e| e.to_string())?;
    cleanup.tmp = Some(tmp.clone());
    let base_env = super::run::sandbox_env(&tmp.join("home"), super::run::random_store_key());
    let sb = Arc::new(Sandbox {
        bin: bin.to_owned(),
        base_env,
    });
    let emu = super::run::start_emulator(&sb)?;
    cleanup.emulator = Some(emu.child);
    let e = Emulator {
        base: &emu.base,
        account: &emu.account,
        client_id: &emu.client_id,
        redirect: &emu.redirect,
        email: &emu.email,
        password: &emu.password,
    };
    run(&sb, &e, &tmp, &AgentOpts::new(quick, profiles), out)
}

/// The emulator a run measures against, and its login details.
struct Emulator<'a> {
    pub base: &'a str,
    pub account: &'a str,
    pub client_id: &'a str,
    pub redirect: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

/// Measures the agent and `nsauth token` in `tmp/agent`; the markdown written into `out`.
fn run(
    sb: &Arc<Sandbox>,
    emu: &Emulator<'_>,
    tmp: &Path,
    opts: &AgentOpts,
    out: &Path,
) -> Result<(), String> {
    let started = Instant::now();
    let dir = tmp.join("agent");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let store = Store {
        label: "sqlite",
        uri: format!("sqlite://{}", dir.join("nsauth.db").display()),
        env: vec![],
    };
    log(format!(
        "agent: logging in {} profiles (4 at a time)",
        opts.profiles
    ));
    let t0 = Instant::now();
    measure::parallel(opts.profiles, 4, &|i| log_in(sb, &store, emu, &name(i)))?;
    let login_s = t0.elapsed().as_secs_f64();

    let sock = dir.join("run/nsauth.sock");
    let mut agent = Agent::start(sb, &store, &sock, &dir.join("agent.log"))?;
    let mut f = Figures::default();
    let load_before = super::machine::loadavg();
    let measured = measure_agent(&agent, opts, emu, &mut f);
    agent.stop();
    measured?;
    measure_process(sb, &store, opts, &mut f)?;
    let md = render(opts, &f, login_s, &load_before, started.elapsed());
    super::render::write_block(out, BEGIN, END, &md)?;
    eprintln!("{md}");
    Ok(())
}

pub(super) fn name(i: usize) -> String {
    format!("a{i:05}")
}

fn log_in(sb: &Sandbox, store: &Store, emu: &Emulator<'_>, name: &str) -> Result<(), String> {
    let args = [
        "profile",
        "set",
        name,
        "--account-id",
        emu.account,
        "--client-id",
        emu.client_id,
        "--redirect-uri",
        emu.redirect,
        "--scope",
        "rest_webservices",
        "--base-url",
        emu.base,
    ];
    sb.ok(Some(store), &args)?;
    let url = sb.ok(Some(store), &["--profile", name, "login", "start"])?;
    let url = url
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http"))
        .ok_or_else(|| format!("login start printed no URL: {url}"))?;
    let landed = super::http::browser_login(url, emu.email, emu.password)?;
    sb.ok(
        Some(store),
        &["--profile", name, "login", "finish", &landed],
    )
    .map(|_| ())
}

/// A running `nsauth serve`; stopped with SIGTERM (killed if it lingers) when dropped.
struct Agent {
    child: Option<Child>,
    sock: PathBuf,
    pid: u32,
}

impl Agent {
    fn start(sb: &Sandbox, store: &Store, sock: &Path, log_file: &Path) -> Result<Self, String> {
        let logf = std::fs::File::create(log_file).map_err(|e| e.to_string())?;
        // The agent wants its socket's directory to exist and be private.
        if let Some(parent) = sock.parent() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| e.to_string())?;
        }
        let listen = format!("unix:{}", sock.display());
        let mut cmd = sb.nsauth(Some(store));
        cmd.args(["serve", "--listen", &listen, "--all"])
            .stdout(Stdio::null())
            .stderr(logf);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start nsauth serve: {e}"))?;
        let pid = child.id();
        let mut agent = Agent {
            child: Some(child),
            sock: sock.to_owned(),
            pid,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = agent.child.as_mut().map_or(Ok(None), Child::try_wait) {
                let text = std::fs::read_to_string(log_file).unwrap_or_default();
                return Err(format!(
                    "nsauth serve exited with {status}: {}",
                    text.trim()
                ));
            }
            let healthy = Conn::unix(sock)
                .and_then(|mut c| c.get("/healthz", &[]))
                .is_ok_and(|(s, _)| s == 200);
            if healthy {
                log(format!(
                    "agent: nsauth serve (pid {pid}) answers on {}",
                    sock.display()
                ));
                return Ok(agent);
            }
            if Instant::now() > deadline {
                agent.stop();
                return Err("nsauth serve did not answer /healthz within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn measure_agent(
    agent: &Agent,
    opts: &AgentOpts,
    emu: &Emulator<'_>,
    f: &mut Figures,
) -> Result<(), String> {
    // Every profile's token once: the agent now holds all of them.
    let mut c = Conn::unix(&agent.sock)?;
    for i in 0..opts.profiles {
        let (status, body) = c.get(&token_target(i), &[])?;
        if status != 200 {
            return Err(format!(
                "GET /v1/token for {}: {status} {}",
                name(i),
                String::from_utf8_lossy(&body)
            ));
        }
    }
    log(format!(
        "agent: 1000 req/s for {} s, alternating with the trivial responder",
        opts.rate_secs
    ));
    let floor_sock = agent.sock.with_file_name("floor.sock");
    floor_server(&floor_sock)?;
    let (mut on_agent, mut on_floor) = (Load::default(), Load::default());
    let rounds = 4;
    let chunk = (opts.rate_secs / rounds).max(1);
    for round in 0..rounds {
        for leg in 0..2 {
            if (leg + round) % 2 == 0 {
                on_agent.add(fixed_rate(&agent.sock, 1000, chunk, opts.profiles)?);
            } else {
                on_floor.add(fixed_rate(&floor_sock, 1000, chunk, opts.profiles)?);
            }
        }
    }
    f.rate = Some(on_agent.summary());
    f.floor = Some(on_floor.summary());
    log(format!("agent: closed loop for {} s", opts.max_secs));
    f.max_rps = closed_loop(&agent.sock, opts.max_secs, 4, opts.profiles)?;
    f.rss_kib = rss_kib(agent.pid);
    log("agent: proxy against the emulator directly");
    proxy_vs_direct(agent, opts, emu, f)?;
    log(format!("agent: idle CPU over {} s", opts.idle_secs));
    // Let the last requests' work settle before the window opens.
    std::thread::sleep(Duration::from_secs(2));
    let (t0, c0) = (Instant::now(), cpu_ticks(agent.pid)?);
    std::thread::sleep(Duration::from_secs(opts.idle_secs));
    let (secs, c1) = (t0.elapsed().as_secs_f64(), cpu_ticks(agent.pid)?);
    f.idle_ticks = c1 - c0;
    f.idle_cpu_pct = (c1 - c0) as f64 / clk_tck() / secs * 100.0;
    Ok(())
}

pub(super) fn token_target(i: usize) -> String {
    format!("/v1/token?profile={}", name(i))
}

/// The same REST call through the proxy and straight to the emulator, interleaved.
fn proxy_vs_direct(
    agent: &Agent,
    opts: &AgentOpts,
    emu: &Emulator<'_>,
    f: &mut Figures,
) -> Result<(), String> {
    let mut via = Conn::unix(&agent.sock)?;
    let (status, body) = via.get(&token_target(0), &[])?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let token = body
        .split_once("\"access_token\":\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .filter(|_| status == 200)
        .ok_or_else(|| format!("GET /v1/token: {status}"))?
        .to_owned();
    let host = emu.base.trim_start_matches("http://").trim_end_matches('/');
    let mut direct = Conn::tcp(host)?;
    let bearer = format!("Bearer {token}");
    let path = "record/v1/metadata-catalog";
    let proxied_target = format!("/v1/proxy/{}/{path}", name(0));
    let direct_target = format!("/services/rest/{path}");
    let (mut pv, mut dv) = (Vec::new(), Vec::new());
    let warmup = 20;
    for i in 0..opts.proxy_requests + warmup {
        for leg in 0..2 {
            let proxied = (leg + i) % 2 == 0;
            let t = Instant::now();
            let (status, _) = if proxied {
                via.get(&proxied_target, &[])?
            } else {
                direct.get(&direct_target, &[("Authorization", &bearer)])?
            };
            let took = measure::ms(t.elapsed());
            if status != 200 {
                let what = if proxied { "proxied" } else { "direct" };
                return Err(format!("{what} GET {path}: {status}"));
            }
            if i >= warmup {
                if proxied {
                    pv.push(took)
                } else {
                    dv.push(took)
                }
            }
        }
    }
    f.proxied = stats(&pv);
    f.direct = stats(&dv);
    f.overhead = (
        f.proxied.median - f.direct.median,
        f.proxied.p99 - f.direct.p99,
    );
    Ok(())
}

/// `nsauth token` as a process on the same store: one run's p50/p99, two side by side.
fn measure_process(
    sb: &Arc<Sandbox>,
    store: &Store,
    opts: &AgentOpts,
    f: &mut Figures,
) -> Result<(), String> {
    log(format!(
        "agent: nsauth token as a process, {} runs",
        opts.process_runs
    ));
    let make = {
        let (sb, store) = (sb.clone(), store.clone());
        move || {
            let mut c = sb.nsauth(Some(&store));
            c.args(["--profile", &name(0), "token"]);
            c
        }
    };
    let cases = [Case::new("nsauth token", make.clone())];
    let samples = measure::interleaved(&cases, opts.process_runs, 3)?;
    f.process = stats(&samples[0]);
    let t = Instant::now();
    measure::parallel(opts.process_runs, 2, &|_| {
        measure::time_once(make()).map(|_| ())
    })?;
    f.process_rps = opts.process_runs as f64 / t.elapsed().as_secs_f64();
    if measure::have_gnu_time() {
        match measure::rusage(make()) {
            Ok((kib, _)) => f.process_rss_kib = Some(kib),
            Err(e) => f.errors.push(e),
        }
    }
    Ok(())
}

/// VmRSS and VmHWM of `pid`, KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime of `pid`, clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(format!("cannot read CPU times from /proc/{pid}/stat")),
    }
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn render(
    opts: &AgentOpts,
    f: &Figures,
    login_s: f64,
    load_before: &str,
    took: Duration,
) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut s = String::new();
    let _ = writeln!(s, "## nsauth serve\n");
    let _ = writeln!(
        s,
        "`nsauth serve --listen unix:PATH --all` with {} profiles logged in on a sqlite store \
         (logging them in took {login_s:.0} s), against the emulator, beside `nsauth token` run \
         as a process on the same store. {} cores; load average before: {load_before}, after: {}. \
         The bench's client threads run on the same cores as the agent. Took {:.0} s.\n",
        opts.profiles,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        super::machine::loadavg(),
        took.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "| | nsauth serve (Unix socket) | `nsauth token` (process) | target | |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    if let Some((st, errors, late, achieved)) = &f.rate {
        let _ = writeln!(
            s,
            "| token, p50 / p99 at 1,000 req/s ({} s; achieved {achieved:.0} req/s, {errors} errors, {late} sends > 1 ms late) | {:.3} / {:.3} ms | {:.1} / {:.1} ms per run | p99 ≤ {TOKEN_P99_MS} ms | {} |",
            opts.rate_secs, st.median, st.p99, f.process.median, f.process.p99,
            verdict(st.p99 <= TOKEN_P99_MS && *errors == 0)
        );
    }
    if let Some((st, _, late, _)) = &f.floor {
        let _ = writeln!(
            s,
            "| the same load against a trivial responder in the bench (a canned answer: what this machine allows now; {late} sends late) | {:.3} / {:.3} ms | | | |",
            st.median, st.p99
        );
    }
    let _ = writeln!(
        s,
        "| token, most requests/s (4 connections, {} s) | {:.0} | {:.0} (2 side by side) | ≥ {THROUGHPUT:.0} | {} |",
        opts.max_secs, f.max_rps, f.process_rps, verdict(f.max_rps >= THROUGHPUT)
    );
    let _ = writeln!(
        s,
        "| RSS with {} profiles cached (peak) | {:.1} MiB ({:.1} MiB) | {} | ≤ {RSS_MIB} MiB | {} |",
        opts.profiles,
        mib(f.rss_kib.0),
        mib(f.rss_kib.1),
        f.process_rss_kib.map_or("—".into(), |k| format!("{:.1} MiB peak per run", mib(k))),
        verdict(mib(f.rss_kib.0) <= RSS_MIB)
    );
    let _ = writeln!(
        s,
        "| REST GET through `/v1/proxy` vs the emulator directly, p50 / p99 ({} each, interleaved) | {:.3} / {:.3} ms vs {:.3} / {:.3} ms: overhead {:+.3} / {:+.3} ms | — | ≤ {PROXY_P50_MS} / ≤ {PROXY_P99_MS} ms | {} |",
        opts.proxy_requests, f.proxied.median, f.proxied.p99, f.direct.median, f.direct.p99,
        f.overhead.0, f.overhead.1,
        verdict(f.overhead.0 <= PROXY_P50_MS && f.overhead.1 <= PROXY_P99_MS)
    );
    let _ = writeln!(
        s,
        "| idle CPU, {} profiles watched ({} s) | {:.2} % | — | < {IDLE_CPU_PCT} % | {} |",
        opts.profiles,
        opts.idle_secs,
        f.idle_cpu_pct,
        verdict(f.idle_cpu_pct < IDLE_CPU_PCT)
    );
    for e in &f.errors {
        let _ = writeln!(s, "\nNote: {e}");
    }
    s
}
