//! The `nsauth` command: thin — parses flags, opens a store by URI, calls nsauth-core, prints.

mod cli;
mod commands;
mod complete;
mod exit;
mod loopback;
mod machine;
mod man;
mod manners;
mod output;

use clap::{CommandFactory, FromArgMatches};
use nsauth_core::store::FailureKind;
use std::process::ExitCode;

fn main() -> ExitCode {
    harden();
    // The one place the process-wide rustls provider is installed: ring, the only one compiled
    // in. The libraries hand reqwest an explicit ring config (nsauth_core::http::tls); this
    // covers any client built without it. Err only means one was installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `NSAUTH_COMPLETE=$SHELL nsauth …`: the shell asks for completions; answers and exits.
    // Not clap's generic `COMPLETE`: a variable of that name set for another reason must
    // not turn every nsauth command into a completion request.
    clap_complete::CompleteEnv::with_factory(complete::command)
        .var("NSAUTH_COMPLETE")
        .complete();
    if let Some(exit) = man::hidden_entry() {
        return ExitCode::from(exit.code());
    }
    let matches = cli::Cli::command().color(manners::clap()).get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Err(e) = machine::check(&cli, &matches) {
        e.exit();
    }
    init_logging(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{} cannot start the async runtime: {e}",
                manners::error_prefix()
            );
            return ExitCode::from(exit::Exit::Failed(FailureKind::Other).code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            eprintln!("{} {e}", manners::error_prefix());
            ExitCode::from(exit::exit_code(&e))
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("NSAUTH_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=warn,hyper_util=warn,rustls=warn,reqwest=warn,h2=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(manners::stderr())
        .with_target(false)
        .try_init();
}

/// The process holds secrets in memory: make sure they cannot end up in a core dump. On
/// Linux, "not dumpable" (which also blocks ptrace by other users' processes) is reset when
/// `nsauth exec` runs a program; elsewhere the core size limit is set to zero.
fn harden() {
    #[cfg(target_os = "linux")]
    {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let none = rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        let _ = rustix::process::setrlimit(rustix::process::Resource::Core, none);
    }
}
