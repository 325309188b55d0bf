//! One module per command group; `run` dispatches.

pub(crate) mod audit;
#[cfg(feature = "emulator")]
pub(crate) mod conformance;
#[cfg(feature = "emulator")]
mod demo;
pub(crate) mod doctor;
mod login;
mod m2m;
mod migrate;
mod profile;
pub(crate) mod serve;
#[cfg(feature = "share")]
pub(crate) mod share;
mod tokens;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use nsauth_core::broker::{Broker, BrokerConfig};
use nsauth_core::http::Http;
use nsauth_core::{Error, ProfileName, TokenStore};
use std::sync::Arc;
use std::time::Duration;

/// What every command needs: the store URI, the profile, output mode.
pub struct Ctx {
    /// Store URI.
    pub store_uri: String,
    /// Selected profile.
    pub profile: String,
    /// JSON output.
    pub json: bool,
    /// Quiet mode.
    pub quiet: bool,
    /// `--audit-log`, if given.
    pub audit_log: Option<std::path::PathBuf>,
}

impl Ctx {
    /// Opens the store.
    pub fn store(&self) -> Result<Arc<dyn TokenStore>, Error> {
        Ok(nsauth::open_store(&self.store_uri)?)
    }

    /// The validated profile name.
    pub fn name(&self) -> Result<ProfileName, Error> {
        Ok(ProfileName::parse(&self.profile)?)
    }

    /// A broker over the store, with the lease time from `NSAUTH_LEASE_SECONDS`.
    pub fn broker(&self, store: Arc<dyn TokenStore>) -> Result<Broker, Error> {
        let mut cfg = BrokerConfig::default();
        if let Ok(v) = std::env::var("NSAUTH_LEASE_SECONDS") {
            let secs: u64 = v
                .parse()
                .ok()
                .filter(|s| (1..=600).contains(s))
                .ok_or_else(|| {
                    Error::Invalid(
                        "NSAUTH_LEASE_SECONDS must be a number of seconds between 1 and 600".into(),
                    )
                })?;
            cfg.lease_ttl = Duration::from_secs(secs);
            cfg.wait_limit = cfg.lease_ttl * 2 + Duration::from_secs(5);
        }
        if let Ok(v) = std::env::var("NSAUTH_STORE_TIMEOUT_SECONDS") {
            let secs: u64 = v
                .parse()
                .ok()
                .filter(|s| (1..=300).contains(s))
                .ok_or_else(|| Error::Invalid("NSAUTH_STORE_TIMEOUT_SECONDS must be a number of seconds between 1 and 300".into()))?;
            cfg.store_timeout = Duration::from_secs(secs);
        }
        let broker = Broker::new(store, Http::new()?, cfg);
        Ok(match nsauth_core::journal::Journal::open_default() {
            Some(j) => broker.with_journal(j),
            None => broker,
        })
    }

    /// Prints a progress line on stderr unless quiet.
    pub fn note(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let store_uri = match cli.store.clone().filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => nsauth::default_store_uri()?,
    };
    let ctx = Ctx {
        store_uri,
        profile: cli.profile.clone(),
        json: cli.json,
        quiet: cli.quiet,
        audit_log: cli.audit_log.clone(),
    };
    match cli.command {
        Command::Profile(cmd) => profile::run(&ctx, cmd).await,
        Command::Login(args) => login::run(&ctx, args).await,
        Command::Token {
            min_ttl,
            via,
            header,
        } => tokens::token(&ctx, min_ttl, via.as_deref(), header).await,
        Command::Refresh { force } => tokens::refresh(&ctx, force).await,
        Command::Status { all } => tokens::status(&ctx, all).await,
        Command::Check { within, all } => tokens::check(&ctx, &within, all).await,
        Command::Revoke => tokens::revoke(&ctx).await,
        Command::Exec { command } => tokens::exec(&ctx, command).await,
        Command::Api { method, path, data } => {
            tokens::api(&ctx, &method, &path, data.as_deref()).await
        }
        Command::M2m(cmd) => m2m::run(&ctx, cmd).await,
        #[cfg(feature = "share")]
        Command::Share(cmd) => share::run(&ctx, cmd).await,
        Command::Migrate { to, all, dry_run } => migrate::run(&ctx, &to, all, dry_run).await,
        #[cfg(feature = "emulator")]
        Command::Emulator { listen } => demo::emulator(&listen).await,
        #[cfg(feature = "emulator")]
        Command::Demo => demo::demo(cli.store.clone()).await,
        #[cfg(feature = "emulator")]
        Command::Conformance(args) => conformance::run(&ctx, cli.store.clone(), args).await,
        Command::Audit(args) => audit::run(&ctx, args).await,
        Command::Doctor(args) => doctor::run(&ctx, args).await,
        Command::Serve(args) => serve::run(&ctx, args).await,
        Command::Backends => {
            backends(&ctx);
            Ok(Exit::Success)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "nsauth", &mut std::io::stdout());
            Ok(Exit::Success)
        }
    }
}

fn backends(ctx: &Ctx) {
    let all = nsauth::backends();
    if ctx.json {
        crate::output::print_json_list(
            "backends",
            all.iter()
                .map(|b| serde_json::json!({"schemes": b.schemes, "uri": b.help})),
        );
    } else {
        for b in all {
            println!("{:<18} {}", b.schemes.join(","), b.help);
        }
    }
}
