//! Command-line definitions (clap). The names here are nsauth's public interface.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Get, keep fresh and safely store NetSuite OAuth 2.0 tokens.
#[derive(Debug, Parser)]
#[command(name = "nsauth", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Where profiles and tokens live (sqlite://PATH, file://DIR, ...; see `nsauth backends`).
    #[arg(long, global = true, env = "NSAUTH_STORE", value_name = "URI")]
    pub store: Option<String>,
    /// The profile to use.
    #[arg(
        long,
        global = true,
        env = "NSAUTH_PROFILE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub profile: String,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging on stderr (-v, -vv, -vvv).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Audit log (JSON Lines); default: audit.jsonl beside a local store, else
    /// ~/.local/state/nsauth/audit.jsonl.
    #[arg(long, global = true, env = "NSAUTH_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, show and delete profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Log in to NetSuite (interactive, or `login start` / `login finish` across processes).
    Login(LoginArgs),
    /// Print an access token valid for at least --min-ttl seconds (refreshing if needed).
    Token {
        /// Seconds the token must stay valid.
        #[arg(long, default_value_t = 60)]
        min_ttl: u64,
        /// Ask a running `nsauth serve` first (unix:PATH or http://127.0.0.1:PORT); the store
        /// answers when no agent does.
        #[arg(long, env = "NSAUTH_AGENT", value_name = "ADDR")]
        via: Option<String>,
        /// Print `Authorization: Bearer TOKEN` (for curl -H @-); --json prints the token object.
        #[arg(long, conflicts_with = "json")]
        header: bool,
    },
    /// Refresh the tokens now if they are close to expiry (or always, with --force).
    Refresh {
        /// Refresh even if the access token is still valid.
        #[arg(long)]
        force: bool,
    },
    /// Show token health: expiry of the access and refresh tokens.
    Status {
        /// All profiles in the store.
        #[arg(long)]
        all: bool,
    },
    /// Exit 0 when healthy; 3 when a login is needed or the refresh token ends within the window.
    Check {
        /// Window, e.g. 48h, 7d, 90m.
        #[arg(long, default_value = "24h")]
        within: String,
        /// All profiles in the store.
        #[arg(long)]
        all: bool,
    },
    /// Revoke the refresh token at NetSuite and forget the tokens (the profile stays).
    Revoke,
    /// Run a command with NETSUITE_ACCESS_TOKEN, NETSUITE_ACCOUNT_ID and NETSUITE_REST_URL set.
    Exec {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Call the NetSuite REST API with a fresh token; the body goes to stdout.
    Api {
        /// HTTP method.
        method: String,
        /// Path under services/rest/, e.g. record/v1/metadata-catalog.
        path: String,
        /// Request body: @FILE or - for stdin.
        #[arg(long)]
        data: Option<String>,
    },
    /// Machine-to-machine (client credentials) helpers.
    #[command(subcommand)]
    M2m(M2mCmd),
    /// Share a profile (and its tokens) with someone, encrypted to their age or SSH key.
    #[cfg(feature = "share")]
    #[command(subcommand)]
    Share(crate::commands::share::ShareCmd),
    /// Copy profiles and tokens to another store, verified, never leaving a single-use
    /// refresh token live in both.
    Migrate {
        /// Destination store URI.
        #[arg(long)]
        to: String,
        /// Every profile (default: the --profile one).
        #[arg(long)]
        all: bool,
        /// Say what would be copied; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the NetSuite OAuth 2.0 emulator on loopback.
    #[cfg(feature = "emulator")]
    Emulator {
        /// Address to listen on (loopback only).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Walk through profile set, login, token, refresh, status and revoke against the built-in emulator.
    #[cfg(feature = "emulator")]
    Demo,
    /// Run the store conformance suite against --store URI (writes, then deletes, scratch profiles).
    #[cfg(feature = "emulator")]
    Conformance(crate::commands::conformance::ConformanceArgs),
    /// Read the audit trail.
    Audit(crate::commands::audit::AuditArgs),
    /// Check the profile, store, credentials, clock and NetSuite reachability.
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Run the agent: hand out tokens over a Unix socket (or loopback TCP with a key) and
    /// keep them fresh ahead of expiry.
    Serve(crate::commands::serve::ServeArgs),
    /// List the compiled-in stores and their URI syntax.
    Backends,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `nsauth profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Create or update a profile. Secrets come from stdin or the environment, never flags.
    Set(Box<ProfileSetArgs>),
    /// List profiles.
    List,
    /// Show a profile (secrets redacted).
    Show {
        /// Profile name (default: --profile).
        name: Option<String>,
    },
    /// Delete a profile and its tokens.
    Delete {
        /// Profile name.
        name: String,
    },
}

/// Grant kinds on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GrantArg {
    /// A user logs in, then refresh.
    AuthorizationCode,
    /// Machine to machine with a certificate.
    ClientCredentials,
}

/// `nsauth profile set`
#[derive(Debug, Args)]
pub struct ProfileSetArgs {
    /// Profile name.
    pub name: String,
    /// NetSuite account ID, e.g. 1234567 or 1234567_SB1.
    #[arg(long)]
    pub account_id: Option<String>,
    /// The integration record's client ID.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Redirect URI, exactly as on the integration record.
    #[arg(long)]
    pub redirect_uri: Option<String>,
    /// Scope (repeat): restlets, rest_webservices, suite_analytics, mcp.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Read the client secret from stdin (else NSAUTH_CLIENT_SECRET; neither = public client).
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Make the profile a public client, dropping a stored secret.
    #[arg(long, conflicts_with = "client_secret_stdin")]
    pub public: bool,
    /// Grant kind.
    #[arg(long, value_enum)]
    pub grant: Option<GrantArg>,
    /// Certificate ID shown by NetSuite (client credentials).
    #[arg(long)]
    pub certificate_id: Option<String>,
    /// Private key PEM file (client credentials).
    #[arg(long)]
    pub private_key_file: Option<PathBuf>,
    /// Certificate PEM file, to warn before it expires (default: certificate.pem beside the key).
    #[arg(long)]
    pub certificate_file: Option<PathBuf>,
    /// One base URL for every endpoint (e.g. the emulator's).
    #[arg(long, conflicts_with_all = ["authorize_url", "token_url", "revoke_url", "rest_url"])]
    pub base_url: Option<String>,
    /// Authorization endpoint.
    #[arg(long)]
    pub authorize_url: Option<String>,
    /// Token endpoint.
    #[arg(long)]
    pub token_url: Option<String>,
    /// Revoke endpoint.
    #[arg(long)]
    pub revoke_url: Option<String>,
    /// REST base URL.
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Refresh token validity in hours, used when the token does not say (1-720).
    #[arg(long, value_name = "HOURS")]
    pub refresh_token_validity: Option<u32>,
}

/// `nsauth login ...`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LoginArgs {
    /// start / finish; none = interactive login.
    #[command(subcommand)]
    pub step: Option<LoginStep>,
    /// Do not open a browser; print the link only.
    #[arg(long)]
    pub no_browser: bool,
    /// prompt: none, login, consent or "login consent".
    #[arg(long)]
    pub prompt: Option<String>,
    /// Certificate PEM for the HTTPS loopback listener (default: generated on the spot).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key PEM for the HTTPS loopback listener.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds to wait for the browser.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// Login steps that can run in different processes.
#[derive(Debug, Subcommand)]
pub enum LoginStep {
    /// Print the authorization URL and remember the login in the store.
    Start {
        /// prompt: none, login, consent or "login consent".
        #[arg(long)]
        prompt: Option<String>,
        /// How long the link stays valid, e.g. 24h.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Print a message to forward to the NetSuite user who will approve the access.
        #[arg(long)]
        handoff: bool,
    },
    /// Finish with the URL the browser landed on (or `code=…&state=…`), read from stdin so
    /// that the code and state stay out of `ps` and shell history.
    Finish {
        /// Deprecated: the redirect URL as an argument (visible to other users; warns).
        /// Omit it, or give `-`, to read stdin.
        redirect_url: Option<String>,
        /// The `state` the user sent back, when they sent the code separately (stdin then
        /// holds just the code). Visible in `ps`; warns. A state may start with `-`.
        #[arg(long, allow_hyphen_values = true)]
        state: Option<String>,
    },
}

/// `nsauth m2m ...`
#[derive(Debug, Subcommand)]
pub enum M2mCmd {
    /// Make a key pair and a self-signed certificate to upload to NetSuite.
    Keygen {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// ec-p256, ec-p384, ec-p521, rsa-3072 or rsa-4096.
        #[arg(long, default_value = "ec-p256")]
        algorithm: String,
        /// Certificate validity in days (at most 730).
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Certificate subject (CN).
        #[arg(long, default_value = "nsauth")]
        subject: String,
    },
    /// Make the next key and certificate of the --profile (client credentials) while the
    /// current one keeps working; `profile set NAME --certificate-id NEW_ID` switches over.
    Rotate(M2mRotateArgs),
}

/// `nsauth m2m rotate`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("step").args(["replace", "show", "finish", "cancel"]))]
pub struct M2mRotateArgs {
    /// ec-p256, ec-p384, ec-p521, rsa-3072 or rsa-4096 (default: that of the current key).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Certificate validity in days (NetSuite accepts at most 730).
    #[arg(long, default_value_t = nsauth_core::m2m::rotate::DEFAULT_DAYS)]
    pub days: u32,
    /// Certificate subject (CN).
    #[arg(long, default_value = "nsauth")]
    pub subject: String,
    /// Also write the certificate (public) to this new file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Make a new next certificate even though one is already waiting.
    #[arg(long)]
    pub replace: bool,
    /// Print the waiting next certificate again.
    #[arg(long)]
    pub show: bool,
    /// Forget the previous key, once its certificate was removed in NetSuite.
    #[arg(long)]
    pub finish: bool,
    /// Drop the waiting next certificate.
    #[arg(long)]
    pub cancel: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_state_that_starts_with_a_dash_is_a_value_not_a_flag() {
        // base64url states start with '-' one time in 64 (a flaky handoff test found it).
        let cli = Cli::try_parse_from(["nsauth", "login", "finish", "--state", "-O3x_Yz", "-"])
            .expect("a state beginning with '-' parses");
        let text = format!("{:?}", cli.command);
        assert!(text.contains("-O3x_Yz"), "{text}");
    }

    #[test]
    fn serve_takes_many_profiles_and_the_global_one_otherwise() {
        let serve = |args: &[&str]| match Cli::try_parse_from(args).expect("parses").command {
            Command::Serve(a) => a,
            other => panic!("{other:?}"),
        };
        let a = serve(&["nsauth", "serve", "--profile", "a", "--profile", "b"]);
        assert_eq!(a.profiles, ["a", "b"]);
        let a = serve(&["nsauth", "--profile", "x", "serve", "--all"]);
        assert!(a.all);
        let cli = Cli::try_parse_from(["nsauth", "--profile", "x", "serve"]).unwrap();
        assert_eq!(cli.profile, "x");
    }
}
