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
mod hot;
mod http;
mod machine;
mod measure;
mod plugin;
mod render;
mod run;
mod scale;
mod setup;
mod startup;
mod storms;
mod storms_report;
mod targets;

pub(crate) use run::{
    random_bytes, random_store_key, running_services, sandbox_env, Sandbox, Store, AWS_ENV,
};

use measure::Stats;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--runs N] [--profiles N] [--remote-profiles N] \
[--storm-reps N] [--storm-sizes N,N] [--refresh-delay-ms MS] [--only storms|agent|plugin] [--agent-profiles N] \
[--stores sqlite,file,vault,aws,postgres] [--bin PATH] [--before-bin PATH] [--no-build] [--out FILE]";

const BEGIN: &str = "<!-- BEGIN cargo xtask bench: generated, edits inside are overwritten -->";
const END: &str = "<!-- END cargo xtask bench -->";
const STORMS_BEGIN: &str =
    "<!-- BEGIN cargo xtask bench storms: generated, edits inside are overwritten -->";
const STORMS_END: &str = "<!-- END cargo xtask bench storms -->";

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
    /// `--only plugin`: a cached `token` through the example store plugin against `file://`.
    only_plugin: bool,
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
        only_plugin: false,
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
                Some("plugin") => o.only_plugin = true,
                other => {
                    return Err(format!(
                        "--only takes `storms`, `agent` or `plugin`, not `{}`\n{USAGE}",
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
                        "sqlite" | "file" | "vault" | "aws-sm" | "postgres" | "postgres-poll"
                        | "postgres-hosts" | "postgres-hosts-poll" => l.to_owned(),
                        "aws" => "aws-sm".to_owned(),
                        other => {
                            return Err(format!(
                            "--stores: unknown store {other:?} (sqlite, file, vault, aws, postgres)\n{USAGE}"
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

/// All results, for the report.
#[derive(Default)]
struct Results {
    notes: Vec<String>,
    hot: Vec<(String, Stats)>,
    rss: Vec<(String, Stats, Stats)>,
    rss_note: Option<String>,
    hot_refreshes: u64,
    storms: storms::StormReport,
    scale: Vec<scale::ScaleRow>,
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

/// Entry point: `cargo xtask bench ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_opts(args)?;
    let mut m = machine::machine();
    let mut res = Results::default();
    let mut cleanup = run::Cleanup::default();
    let started = Instant::now();

    let bin = setup::binary(&opts)?;
    if opts.only_agent {
        return agent::standalone(&bin, opts.quick, opts.agent_profiles, &opts.out);
    }
    if opts.only_plugin {
        return plugin::standalone(&bin, opts.runs, &opts.out);
    }
    let bench = setup::Bench::start(&opts, bin, &mut cleanup, &mut res)?;
    bench.login_profiles(&opts)?;

    if !opts.only_storms {
        hot::hot_and_memory(&bench, &opts, &mut res)?;
    }

    // 3. Refresh storms, with their baselines.
    let proxy = &bench.proxy;
    proxy
        .refresh_delay_ms
        .store(opts.refresh_delay_ms, Ordering::SeqCst);
    let storm_stores = bench.storm_stores()?;
    res.storms = storms::run(
        &bench.bins(),
        &storm_stores,
        &opts.storm_sizes,
        opts.storm_reps,
        proxy,
    )?;
    proxy.refresh_delay_ms.store(0, Ordering::SeqCst);

    if !opts.only_storms {
        // 4. Scale.
        scale::scale(&bench, &opts, &mut res)?;
        // 5. Startup: where a cached `token` spends its time.
        if let Some(sqlite) = bench.stores.iter().find(|s| s.label == "sqlite") {
            startup::startup_profile(&bench.sb, sqlite, &bench.stores, &bench.tmp, &mut res);
        }
        // 6. nsauth serve (issue #11), beside nsauth token as a process.
        let serve = agent::standalone(&bench.sb.bin, opts.quick, opts.agent_profiles, &opts.out);
        if let Err(e) = serve {
            log(format!("nsauth serve not measured: {e}"));
            res.notes.push(format!("nsauth serve not measured: {e}"));
        }
        // 7. A store plugin's round trip (issue #12), beside the file store.
        if let Err(e) = plugin::standalone(&bench.sb.bin, opts.runs, &opts.out) {
            log(format!("store plugin not measured: {e}"));
            res.notes.push(format!("store plugin not measured: {e}"));
        }
    }

    m.load_after = machine::loadavg();
    write_report(&opts, &m, &bench, &mut res, started.elapsed())?;
    drop(cleanup);
    Ok(())
}

/// Rewrites the storms' block (and, unless `--only storms`, the main block) of the report.
fn write_report(
    opts: &Opts,
    m: &machine::Machine,
    bench: &setup::Bench,
    res: &mut Results,
    took: Duration,
) -> Result<(), String> {
    let storms_header = render::storms_header(opts, m, &bench.version, res, took);
    render::write_block(
        &opts.out,
        STORMS_BEGIN,
        STORMS_END,
        &storms_report::render(&res.storms, &storms_header),
    )?;
    if !opts.only_storms {
        targets::targets(res);
        let report = render::render(opts, m, &bench.version, &bench.stores, res, took);
        render::write_block(&opts.out, BEGIN, END, &report)?;
        eprintln!("{}", render::summary_text(res));
    }
    log(format!("wrote {}", opts.out.display()));
    eprintln!("storms:\n{}", storms_report::summary(&res.storms));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn store_keys_are_32_random_bytes_in_base64() {
        let (a, b) = (random_store_key(), random_store_key());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .expect("base64");
        assert_eq!(decoded.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn json_and_hashes() {
        assert_eq!(
            run::json_int("{\n  \"refresh_count\": 3\n}", "refresh_count"),
            Some(3)
        );
        assert_eq!(
            run::json_int(
                "[{\"name\": \"a\", \"refresh_count\": -2}]",
                "refresh_count"
            ),
            Some(-2)
        );
        assert_eq!(run::json_int("not json", "refresh_count"), None);
        assert_eq!(
            startup::demangle_hashes("a::b::h0123456789abcdef (x)"),
            "a::b (x)".to_owned()
        );
    }

    #[test]
    fn options_parse_as_documented() {
        let o = parse_opts(&["--quick".into(), "--stores".into(), "sqlite,aws".into()]).unwrap();
        assert_eq!((o.runs, o.profiles), (7, 1000));
        assert_eq!(
            o.stores,
            Some(vec!["sqlite".to_owned(), "aws-sm".to_owned()])
        );
        assert!(parse_opts(&["--stores".into(), "s3".into()]).is_err());
        assert!(parse_opts(&["--only".into(), "hot".into()]).is_err());
    }

    #[test]
    fn postgres_variants_belong_to_the_postgres_family() {
        let o = parse_opts(&["--stores".into(), "postgres,postgres-hosts-poll".into()]).unwrap();
        assert_eq!(o.stores.unwrap().len(), 2);
        for v in [
            "postgres",
            "postgres-poll",
            "postgres-hosts",
            "postgres-hosts-poll",
        ] {
            assert_eq!(setup::family(v), "postgres");
        }
        assert_eq!(setup::family("aws-sm"), "aws-sm");
        assert_eq!(setup::family("sqlite"), "sqlite");
    }
}
