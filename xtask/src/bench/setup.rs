//! Everything a bench run sets up before it measures: the sandbox, OpenBao and moto, the
//! emulator behind the counting token proxy, the stores under test and their logged-in
//! profiles.

use super::http::{self, TokenProxy};
use super::run::{self, Cleanup, Emu, Sandbox, Store};
use super::{log, root, storms, Opts, Results};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A bench run's world.
pub(super) struct Bench {
    pub(super) tmp: PathBuf,
    pub(super) home: PathBuf,
    pub(super) run_id: String,
    pub(super) sb: Arc<Sandbox>,
    before_sb: Option<Arc<Sandbox>>,
    pub(super) version: String,
    /// The environment of OpenBao and moto (`.services/env`); empty when they are not running.
    pub(super) svc: Vec<(String, String)>,
    pub(super) emu_base: String,
    pub(super) account: String,
    pub(super) client_id: String,
    pub(super) redirect: String,
    email: String,
    password: String,
    pub(super) proxy: TokenProxy,
    pub(super) stores: Vec<Store>,
}

/// The nsauth to measure: `--bin`, or the release build (built first unless `--no-build`).
pub(super) fn binary(opts: &Opts) -> Result<PathBuf, String> {
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
    Ok(bin)
}

/// `value` of `key` in the services' environment, when set and not empty.
pub(super) fn env_get(svc: &[(String, String)], key: &str) -> Option<String> {
    svc.iter()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// OpenBao and moto. If they already run (`cargo xtask services up`, or a test run), use
/// them and leave them running: `services::up` would stop them under their owner.
fn services(cleanup: &mut Cleanup, res: &mut Results) -> Vec<(String, String)> {
    if let Some(env) = run::running_services() {
        let msg = "OpenBao and moto were already running (.services/env): used as they are and left running";
        log(msg);
        res.notes.push(msg.into());
        return env;
    }
    cleanup.services = true;
    match crate::services::up() {
        Ok(env) => env,
        Err(e) => {
            res.notes.push(format!(
                "OpenBao/moto could not start ({e}); the vault and aws-sm stores are skipped."
            ));
            Vec::new()
        }
    }
}

impl Bench {
    /// Sets up the sandbox, services, emulator, proxy and the stores to measure.
    pub(super) fn start(
        opts: &Opts,
        bin: PathBuf,
        cleanup: &mut Cleanup,
        res: &mut Results,
    ) -> Result<Bench, String> {
        let run_id = hex::encode(run::random_bytes::<4>());
        let tmp =
            std::env::temp_dir().join(format!("nsauth-bench-{}-{run_id}", std::process::id()));
        std::fs::create_dir_all(tmp.join("home")).map_err(|e| e.to_string())?;
        cleanup.tmp = Some(tmp.clone());
        let home = tmp.join("home");
        let base_env = run::sandbox_env(&home, run::random_store_key());
        let before_sb = opts.before_bin.as_ref().map(|b| {
            Arc::new(Sandbox {
                bin: b.clone(),
                base_env: base_env.clone(),
            })
        });
        let sb = Arc::new(Sandbox { bin, base_env });
        let version = sb.ok(None, &["--version"])?.trim().to_owned();
        let backends = sb.ok(None, &["backends"])?;
        let svc = services(cleanup, res);

        let Emu {
            child,
            base: emu_base,
            host: emu_host,
            account,
            client_id,
            redirect,
            email,
            password,
        } = run::start_emulator(&sb)?;
        cleanup.emulator = Some(child);
        let proxy = TokenProxy::start(emu_host)?;
        cleanup.proxy = Some(proxy.clone());
        log(format!(
            "emulator on {emu_base}, token proxy on {}, sandbox {}",
            proxy.base_url(),
            tmp.display()
        ));
        let stores = stores(opts, &backends, &svc, &tmp, &run_id, res);
        Ok(Bench {
            tmp,
            home,
            run_id,
            sb,
            before_sb,
            version,
            svc,
            emu_base,
            account,
            client_id,
            redirect,
            email,
            password,
            proxy,
            stores,
        })
    }

    /// `value` of `key` in the services' environment.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        env_get(&self.svc, key)
    }

    /// The binaries under test: `this`, and `before` with `--before-bin`.
    pub(super) fn bins(&self) -> Vec<storms::Binary> {
        let mut bins = vec![storms::Binary {
            label: "this",
            sb: self.sb.clone(),
        }];
        if let Some(before) = &self.before_sb {
            bins.push(storms::Binary {
                label: "before",
                sb: before.clone(),
            });
        }
        bins
    }

    /// The `--before-bin` sandbox, if any.
    pub(super) fn before(&self) -> Option<&Arc<Sandbox>> {
        self.before_sb.as_ref()
    }

    fn set_profile(&self, store: &Store, name: &str) -> Result<(), String> {
        let emu_base = &self.emu_base;
        let endpoints = [
            format!("--authorize-url={emu_base}{}", http::AUTHORIZE_PATH),
            format!("--token-url={}{}", self.proxy.base_url(), http::TOKEN_PATH),
            format!("--revoke-url={emu_base}{}", http::REVOKE_PATH),
            format!("--rest-url={emu_base}/services/rest/"),
        ];
        let mut args = vec![
            "profile",
            "set",
            name,
            "--account-id",
            &self.account,
            "--client-id",
            &self.client_id,
            "--redirect-uri",
            &self.redirect,
            "--scope",
            "rest_webservices",
        ];
        args.extend(endpoints.iter().map(String::as_str));
        self.sb.ok(Some(store), &args).map(|_| ())
    }

    fn login(&self, store: &Store, name: &str) -> Result<(), String> {
        self.set_profile(store, name)?;
        let url = self
            .sb
            .ok(Some(store), &["--profile", name, "login", "start"])?;
        let url = url
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http"))
            .ok_or_else(|| format!("login start printed no URL: {url}"))?;
        let landed = http::browser_login(url, &self.email, &self.password)?;
        self.sb
            .ok(
                Some(store),
                &["--profile", name, "login", "finish", &landed],
            )
            .map(|_| ())
    }

    /// Profiles: `hot` (a normal 3600 s token) and the storm profiles (told 120 s, so that
    /// `--min-ttl 300` finds them expired, like the e2e tests' `set_access_ttl(120)`).
    pub(super) fn login_profiles(&self, opts: &Opts) -> Result<(), String> {
        let bins = self.bins();
        for store in &self.stores {
            log(format!("{}: logging in the bench profiles", store.label));
            self.proxy.shorten.store(true, Ordering::SeqCst);
            for &n in &opts.storm_sizes {
                for rep in 0..opts.storm_reps {
                    for b in &bins {
                        self.login(store, &b.profile(n, rep))?;
                    }
                }
            }
            self.proxy.shorten.store(false, Ordering::SeqCst);
            self.login(store, "hot")?;
            self.sb.ok(Some(store), &["--profile", "hot", "token"])?;
        }
        Ok(())
    }

    /// Each store with its raw-read baseline (remote stores only).
    pub(super) fn storm_stores(&self) -> Result<Vec<(Store, Option<storms::RawRead>)>, String> {
        let mut out = Vec::new();
        for store in &self.stores {
            let raw = match store.label {
                "vault" => match (
                    self.get("NSAUTH_TEST_VAULT_ADDR"),
                    self.get("NSAUTH_TEST_VAULT_TOKEN"),
                ) {
                    (Some(addr), Some(token)) => Some(storms::vault_raw_read(
                        &addr,
                        format!("/v1/secret/data/nsauth/bench-{}/hot", self.run_id),
                        token,
                    )?),
                    _ => None,
                },
                "aws-sm" => match self.get("NSAUTH_TEST_AWS_ENDPOINT") {
                    Some(ep) => Some(storms::aws_raw_read(
                        &ep,
                        format!("nsauth-bench/{}/hot", self.run_id),
                        self.get("AWS_ACCESS_KEY_ID")
                            .unwrap_or_else(|| "testing".into()),
                    )?),
                    None => None,
                },
                _ => None,
            };
            out.push((store.clone(), raw));
        }
        Ok(out)
    }
}

/// The store a bench variant measures: `postgres` for `postgres-poll` (LISTEN/NOTIFY off),
/// `postgres-hosts` (every storm process with a journal directory of its own, as on separate
/// hosts, so that no same-machine lock hides the store's wake-ups) and `postgres-hosts-poll`.
pub(super) fn family(label: &str) -> &str {
    match label.split_once('-') {
        Some(("postgres", _)) => "postgres",
        _ => label,
    }
}

/// The stores to measure: those `--stores` names, that this nsauth lists in `nsauth
/// backends`, and whose server runs; the others are logged and noted as skipped.
fn stores(
    opts: &Opts,
    backends: &str,
    svc: &[(String, String)],
    tmp: &Path,
    run_id: &str,
    res: &mut Results,
) -> Vec<Store> {
    // `nsauth backends`: one line per backend, its schemes (comma-separated) first.
    let has_scheme = |scheme: &str| {
        backends.lines().any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|s| s.split(',').any(|s| s == scheme))
        })
    };
    let local = |label: &'static str, uri: String| {
        Some(Store {
            label,
            uri,
            env: vec![],
        })
    };
    let vault = match (
        env_get(svc, "NSAUTH_TEST_VAULT_ADDR"),
        env_get(svc, "NSAUTH_TEST_VAULT_TOKEN"),
    ) {
        (Some(addr), Some(token)) => Some(Store {
            label: "vault",
            uri: format!(
                "vault+http://{}/secret/nsauth/bench-{run_id}",
                addr.trim_start_matches("http://").trim_end_matches('/')
            ),
            env: vec![("VAULT_TOKEN".into(), token)],
        }),
        _ => None,
    };
    let aws = env_get(svc, "NSAUTH_TEST_AWS_ENDPOINT").map(|ep| Store {
        label: "aws-sm",
        uri: format!(
            "aws-sm://nsauth-bench/{run_id}?endpoint={ep}&region=us-east-1&force-delete=true"
        ),
        env: run::aws_env(svc),
    });
    let postgres = |label: &'static str, params: &str, own_hosts: bool| {
        let uri = env_get(svc, "NSAUTH_TEST_POSTGRES")?;
        let mut env = vec![("PGPASSWORD".into(), env_get(svc, "PGPASSWORD")?)];
        if own_hosts {
            // `{n}`: each storm process journals (and meets its peers) in a directory of its
            // own, as if every process ran on a host of its own.
            let dir = tmp.join("hosts").join(label).join("{n}");
            env.push(("NSAUTH_JOURNAL_DIR".into(), dir.display().to_string()));
        }
        let table = format!("bench_{run_id}_{}", label.replace('-', "_"));
        Some(Store {
            label,
            uri: format!("{uri}&table={table}{params}"),
            env,
        })
    };
    let candidates = [
        (
            "sqlite",
            "sqlite",
            local(
                "sqlite",
                format!("sqlite://{}", tmp.join("sqlite/nsauth.db").display()),
            ),
            "",
        ),
        (
            "file",
            "file",
            local(
                "file",
                format!("file://{}", tmp.join("file/profiles").display()),
            ),
            "",
        ),
        ("vault", "vault+http", vault, "OpenBao is not running"),
        ("aws-sm", "aws-sm", aws, "moto is not running"),
        (
            "postgres",
            "postgres",
            postgres("postgres", "", false),
            "PostgreSQL is not running",
        ),
        (
            "postgres-poll",
            "postgres",
            postgres("postgres-poll", "&notify=false", false),
            "PostgreSQL is not running",
        ),
        (
            "postgres-hosts",
            "postgres",
            postgres("postgres-hosts", "", true),
            "PostgreSQL is not running",
        ),
        (
            "postgres-hosts-poll",
            "postgres",
            postgres("postgres-hosts-poll", "&notify=false", true),
            "PostgreSQL is not running",
        ),
    ];
    let mut stores = Vec::new();
    for (label, scheme, store, why) in candidates {
        if opts
            .stores
            .as_ref()
            .is_some_and(|l| !l.iter().any(|s| s == label || s == family(label)))
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
    }
    stores
}
