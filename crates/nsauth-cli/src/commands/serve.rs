//! `nsauth serve`: thin — parses the flags into the agent's config and runs it
//! (crates/nsauth-agent does the work).

use super::Ctx;
use crate::exit::Exit;
use nsauth_agent::config::{Listen, Profiles, ServeConfig};
use nsauth_agent::watch::{self, WatchConfig};
use nsauth_core::{Error, ProfileName};
use std::io::Write;
use std::time::Duration;

/// `nsauth serve` flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen: unix:PATH or 127.0.0.1:PORT (repeat for several; default: the socket
    /// $XDG_RUNTIME_DIR/nsauth/nsauth.sock). TCP is loopback only and needs the serve key.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// A profile to serve (repeat for several; default: the --profile of every command).
    #[arg(long = "profile", id = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Serve every profile in the store (re-listed on SIGHUP).
    #[arg(long)]
    pub all: bool,
    /// Run this command with each deadline event's JSON on stdin.
    #[arg(long, value_name = "CMD")]
    pub notify_command: Option<String>,
    /// POST each deadline event (JSON, with a Slack-compatible "text") to this URL.
    #[arg(long, value_name = "URL")]
    pub notify_webhook: Option<String>,
    /// Warn when a refresh token's chain ends within these (units s, m, h, d; or none).
    #[arg(long, value_name = "LIST", default_value = "72h,24h,4h")]
    pub warn_refresh: String,
    /// Warn when a certificate expires within these (units s, m, h, d; or none).
    #[arg(long, value_name = "LIST", default_value = "30d,14d,3d")]
    pub warn_certificate: String,
}

/// Parses the flags into the agent's configuration (bad ones: exit 2).
pub fn config(ctx: &Ctx, args: &ServeArgs) -> Result<ServeConfig, Error> {
    let listen = args
        .listen
        .iter()
        .map(|l| Listen::parse(l))
        .collect::<Result<Vec<_>, _>>()?;
    let profiles = if args.all {
        Profiles::All
    } else {
        let given = if args.profiles.is_empty() {
            vec![ctx.profile.clone()]
        } else {
            args.profiles.clone()
        };
        let mut names = Vec::new();
        for p in &given {
            let n = ProfileName::parse(p)?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
        Profiles::Named(names)
    };
    let notify_webhook = args
        .notify_webhook
        .as_deref()
        .map(|u| {
            let url = url::Url::parse(u).map_err(|_| {
                Error::Invalid(
                    "--notify-webhook: not a URL; give an https:// URL (http only to loopback)"
                        .into(),
                )
            })?;
            nsauth_agent::notify::check_webhook_url(&url).map_err(Error::Invalid)?;
            Ok::<_, Error>(url)
        })
        .transpose()?;
    let notify_command = args.notify_command.clone().filter(|c| !c.trim().is_empty());
    let thresholds = |flag: &str, text: &str| {
        watch::parse_thresholds(text).map_err(|e| Error::Invalid(format!("{flag}: {e}")))
    };
    Ok(ServeConfig {
        listen,
        profiles,
        key_file: None,
        shutdown_grace: Duration::from_secs(10),
        watch: WatchConfig {
            refresh_thresholds: thresholds("--warn-refresh", &args.warn_refresh)?,
            certificate_thresholds: thresholds("--warn-certificate", &args.warn_certificate)?,
            notify_command,
            notify_webhook,
        },
    })
}

/// Runs the agent until SIGTERM/SIGINT; prints where it listens (and the key file's path,
/// never the key) once ready.
pub async fn run(ctx: &Ctx, args: ServeArgs) -> Result<Exit, Error> {
    let cfg = config(ctx, &args)?;
    let store_uri = ctx.store_uri.clone();
    let quiet = ctx.quiet;
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The agent runs on its own multi-threaded runtime; this command's runtime only waits.
    std::thread::Builder::new()
        .name("nsauth-agent".into())
        .spawn(move || {
            let client = move || {
                nsauth::ClientBuilder::from_env()?
                    .store(store_uri)
                    .build()
            };
            let ready = move |s: &nsauth_agent::server::Started| {
                let mut out = std::io::stdout().lock();
                for l in &s.listening {
                    let _ = writeln!(out, "nsauth serve: listening on {l}");
                }
                if let Some(k) = &s.key_file {
                    let _ = writeln!(
                        out,
                        "nsauth serve: serve key file {} (TCP clients send Authorization: Bearer <its content>)",
                        k.display()
                    );
                }
                if !quiet {
                    let _ = writeln!(out, "nsauth serve: profiles {}", s.profiles.join(", "));
                }
                let _ = out.flush();
            };
            let _ = tx.send(nsauth_agent::server::run_blocking(cfg, client, ready));
        })
        .map_err(|e| Error::Other(format!("cannot start the agent thread: {e}")))?;
    match rx.await {
        Ok(r) => r.map(|()| Exit::Success),
        Err(_) => Err(Error::Other("the agent stopped unexpectedly".into())),
    }
}
