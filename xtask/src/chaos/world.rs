//! The world a campaign runs in: a sandbox HOME and store key, the emulator (in this
//! process, recording every token), a proxy in front of it and of each remote store, the
//! stores, and the slots (one profile of one flavour on one store, each with its own client).

use super::exec::{self, Ran, Registry};
use super::proxy::Proxy;
use crate::bench::{Sandbox, Store};
use nsauth_emulator::{CertificateMapping, ClientSpec, Emulator};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const USER: &str = "chaos@example.com";
pub const PASSWORD: &str = "chaos password 7b1e";
pub const REDIRECT: &str = "https://nsauth.example.com/callback";
/// The emulator's access token lifetime: `token` (min TTL 60 s) refreshes after 30 s.
pub const ACCESS_TTL: u64 = 90;
/// `nsauth token`'s default `--min-ttl`.
pub const MIN_TTL: u64 = 60;
/// How long one nsauth process may run before it counts as hung.
pub const OP_DEADLINE: Duration = Duration::from_secs(120);
pub(crate) const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// What kind of client a slot's profile has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Confidential,
    Public,
    M2m,
}

/// One profile on one store, with its own client at the emulator.
#[derive(Clone, Debug)]
pub struct Slot {
    pub profile: String,
    pub store: Store,
    pub flavor: Flavor,
    pub client_id: String,
    /// `conf@sqlite`
    pub label: String,
}

/// Everything the campaign drives.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub emu: Emulator,
    pub emu_proxy: Proxy,
    pub store_proxies: Vec<(String, Proxy)>,
    pub sb: Sandbox,
    pub tmp: PathBuf,
    pub slots: Vec<Slot>,
    /// Client secrets and the store key: must never appear in any output.
    pub secrets: Vec<String>,
    pub recipient: String,
    pub identity: PathBuf,
    pub faketime: bool,
    pub notes: Vec<String>,
    /// Per slot: (certificate id, private key path) for M2M, client secret for confidential.
    m2m_keys: Vec<Option<(String, PathBuf)>>,
    client_secrets: Vec<Option<String>>,
}

impl World {
    /// Sets everything up; `remote` is the `.services/env` of running OpenBao/moto, if any.
    pub fn new(bin: PathBuf, remote: &[(String, String)]) -> Result<World, String> {
        let run_id = hex::encode(crate::bench::random_bytes::<4>());
        let tmp =
            std::env::temp_dir().join(format!("nsauth-chaos-{}-{run_id}", std::process::id()));
        let home = tmp.join("home");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let key = crate::bench::random_store_key();
        let base_env = crate::bench::sandbox_env(&home, key.clone());
        let sb = Sandbox { bin, base_env };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let emu = rt
            .block_on(Emulator::start("127.0.0.1:0".parse().map_err(|_| "addr")?))
            .map_err(|e| format!("cannot start the emulator: {e}"))?;
        emu.record_tokens(true);
        emu.set_access_ttl(ACCESS_TTL);
        emu.add_user(USER, PASSWORD);
        let emu_host = emu.base_url().trim_start_matches("http://").to_owned();
        let emu_proxy = Proxy::start(emu_host)?;

        let mut notes = Vec::new();
        let mut stores = vec![
            Store {
                label: "sqlite",
                uri: format!("sqlite://{}", tmp.join("sqlite/nsauth.db").display()),
                env: vec![],
            },
            Store {
                label: "file",
                uri: format!("file://{}", tmp.join("file/profiles").display()),
                env: vec![],
            },
        ];
        let mut store_proxies = Vec::new();
        let mut vault_token = None;
        let get = |k: &str| {
            remote
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        match (
            get("NSAUTH_TEST_VAULT_ADDR"),
            get("NSAUTH_TEST_VAULT_TOKEN"),
        ) {
            (Some(addr), Some(token)) => {
                vault_token = Some(token.clone());
                let p = Proxy::start(
                    addr.trim_start_matches("http://")
                        .trim_end_matches('/')
                        .into(),
                )?;
                stores.push(Store {
                    label: "vault",
                    uri: format!("vault+http://{}/secret/nsauth/chaos-{run_id}", p.addr),
                    env: vec![("VAULT_TOKEN".into(), token)],
                });
                store_proxies.push(("vault".to_owned(), p));
            }
            _ => notes
                .push("vault: skipped — OpenBao is not running (cargo xtask services up)".into()),
        }
        match get("NSAUTH_TEST_AWS_ENDPOINT") {
            Some(ep) => {
                let p = Proxy::start(
                    ep.trim_start_matches("http://")
                        .trim_end_matches('/')
                        .into(),
                )?;
                let env = crate::bench::AWS_ENV
                    .iter()
                    .filter_map(|k| get(k).map(|v| ((*k).to_owned(), v)))
                    .collect();
                stores.push(Store {
                    label: "aws-sm",
                    uri: format!(
                        "aws-sm://nsauth-chaos/{run_id}?endpoint=http://{}&region=us-east-1&force-delete=true",
                        p.addr
                    ),
                    env,
                });
                store_proxies.push(("aws-sm".to_owned(), p));
            }
            None => {
                notes.push("aws-sm: skipped — moto is not running (cargo xtask services up)".into())
            }
        }
        let faketime = Path::new(FAKETIME_LIB).exists();
        if !faketime {
            notes.push(format!(
                "clock skew: skipped — {FAKETIME_LIB} is missing (apt-get install faketime); nsauth has no clock override"
            ));
        }
        let mut w = World {
            rt,
            emu,
            emu_proxy,
            store_proxies,
            sb,
            tmp,
            slots: Vec::new(),
            secrets: std::iter::once(key).chain(vault_token).collect(),
            recipient: String::new(),
            identity: PathBuf::new(),
            faketime,
            notes,
            m2m_keys: Vec::new(),
            client_secrets: Vec::new(),
        };
        w.identity = w.tmp.join("share/identity.txt");
        let id = w.identity.display().to_string();
        w.recipient =
            w.sb.ok(None, &["share", "keygen", "--out", &id])?
                .trim()
                .to_owned();
        for store in stores {
            for flavor in [Flavor::Confidential, Flavor::Public, Flavor::M2m] {
                w.add_slot(store.clone(), flavor)?;
            }
        }
        Ok(w)
    }

    fn add_slot(&mut self, store: Store, flavor: Flavor) -> Result<(), String> {
        let short = match flavor {
            Flavor::Confidential => "conf",
            Flavor::Public => "pub",
            Flavor::M2m => "m2m",
        };
        let client_id = format!("chaos-{short}-{}", store.label);
        let (mut secret, mut m2m) = (None, None);
        match flavor {
            Flavor::Confidential => {
                let s = hex::encode(crate::bench::random_bytes::<24>());
                self.emu
                    .add_client(ClientSpec::confidential(&client_id, &s, REDIRECT));
                self.secrets.push(s.clone());
                secret = Some(s);
            }
            Flavor::Public => self
                .emu
                .add_client(ClientSpec::public(&client_id, REDIRECT)),
            Flavor::M2m => {
                self.emu.add_client(ClientSpec::m2m(&client_id));
                let dir = self.tmp.join(format!("keys/{client_id}"));
                let d = dir.display().to_string();
                self.sb.ok(
                    None,
                    &["m2m", "keygen", "--out", &d, "--algorithm", "ec-p256"],
                )?;
                let cert = std::fs::read_to_string(dir.join("certificate.pem"))
                    .map_err(|e| e.to_string())?;
                let kid = format!("kid-{client_id}");
                self.emu.add_certificate(
                    &client_id,
                    CertificateMapping {
                        kid: kid.clone(),
                        certificate_pem: cert,
                    },
                );
                m2m = Some((kid, dir.join("private-key.pem")));
            }
        }
        self.slots.push(Slot {
            profile: short.to_owned(),
            label: format!("{short}@{}", store.label),
            store,
            flavor,
            client_id,
        });
        self.m2m_keys.push(m2m);
        self.client_secrets.push(secret);
        Ok(())
    }

    /// `nsauth --store S --profile P` with the clock shifted by `skew` seconds.
    pub fn cmd(&self, slot: usize, store: &Store, skew: i64) -> Command {
        let mut c = self.sb.nsauth(Some(store));
        c.args(["--profile", &self.slots[slot].profile]);
        if skew != 0 && self.faketime {
            c.env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", format!("{skew:+}s"))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_NO_CACHE", "1");
        }
        c
    }

    /// `profile set` for a slot on `store` (the slot's own or a copy's).
    pub fn profile_set(&self, slot: usize) -> Result<(), String> {
        let s = &self.slots[slot];
        // M2M assertions carry the token URL as `aud`, which the emulator checks against its
        // own address: M2M profiles talk to it directly (its injected faults still apply).
        let base = if s.flavor == Flavor::M2m {
            self.emu.base_url()
        } else {
            format!("http://{}", self.emu_proxy.addr)
        };
        let mut args: Vec<String> = [
            "profile",
            "set",
            &s.profile,
            "--account-id",
            self.emu.account_id(),
            "--client-id",
            &s.client_id,
            "--scope",
            "rest_webservices",
            "--base-url",
            &base,
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        match (&self.m2m_keys[slot], &self.client_secrets[slot]) {
            (Some((kid, key)), _) => args.extend(
                [
                    "--grant",
                    "client-credentials",
                    "--certificate-id",
                    kid,
                    "--private-key-file",
                    &key.display().to_string(),
                ]
                .map(str::to_owned),
            ),
            (None, secret) => {
                args.extend(["--redirect-uri", REDIRECT].map(str::to_owned));
                if secret.is_some() {
                    args.push("--client-secret-stdin".into());
                }
            }
        }
        let mut c = self.sb.nsauth(Some(&s.store));
        c.args(&args);
        let input = self.client_secrets[slot].as_ref().map(|s| format!("{s}\n"));
        let ran = exec::run(
            &Registry::default(),
            0,
            slot,
            c,
            input.as_deref(),
            OP_DEADLINE,
        );
        if ran.outcome.ok() {
            Ok(())
        } else {
            Err(format!(
                "profile set for {} failed: {:?} {}",
                s.label,
                ran.outcome,
                ran.stderr.trim()
            ))
        }
    }

    /// `login start`, the user's browser at the emulator, `login finish`; every step's result.
    pub fn login(&self, reg: &Registry, op: usize, slot: usize, skew: i64) -> Vec<Ran> {
        let store = self.slots[slot].store.clone();
        let mut c = self.cmd(slot, &store, skew);
        c.args(["login", "start"]);
        let start = exec::run(reg, op, slot, c, None, OP_DEADLINE);
        if !start.outcome.ok() {
            return vec![start];
        }
        let url = start
            .stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http"))
            .unwrap_or_default()
            .to_owned();
        let landed = self
            .rt
            .block_on(nsauth_emulator::browser_login(&url, USER, PASSWORD, true));
        let landed = match landed {
            Ok(l) => l,
            Err(e) => {
                return vec![
                    start,
                    Ran {
                        outcome: super::history::Outcome::Failed(format!("browser login: {e}")),
                        stdout: String::new(),
                        stderr: String::new(),
                    },
                ]
            }
        };
        let mut c = self.cmd(slot, &store, skew);
        c.args(["login", "finish", &landed]);
        let finish = exec::run(reg, op, slot, c, None, OP_DEADLINE);
        vec![start, finish]
    }

    /// Sets every profile up and logs the interactive ones in, with no faults.
    pub fn prepare(&self) -> Result<(), String> {
        let reg = Registry::default();
        for (i, s) in self.slots.iter().enumerate() {
            self.profile_set(i)?;
            if s.flavor != Flavor::M2m {
                if let Some(bad) = self
                    .login(&reg, 0, i, 0)
                    .into_iter()
                    .find(|r| !r.outcome.ok())
                {
                    return Err(format!(
                        "login for {} failed: {:?} {}",
                        s.label,
                        bad.outcome,
                        bad.stderr.trim()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Stops the proxies and the emulator; removes the sandbox unless `keep`.
    pub fn finish(self, keep: bool) {
        self.emu_proxy.stop();
        for (_, p) in &self.store_proxies {
            p.stop();
        }
        let emu = self.emu.clone();
        self.rt.block_on(emu.shutdown());
        if !keep {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
