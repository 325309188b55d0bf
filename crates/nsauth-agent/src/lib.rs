//! # nsauth-agent
//!
//! `nsauth serve`: one local process that keeps NetSuite tokens fresh ahead of time, hands
//! them out over a Unix socket (or a loopback TCP port with a key), proxies the REST API so
//! an app never holds a token, and raises its hand days before a person must act.
//!
//! Modules: `proxy` (forwarding to a profile's REST base), `watch` (the deadline state
//! machine) and `notify` (where events go) are independent of the server that wires them.
//! The server: [`server`] (listeners, connections, signals) over [`listen`] (safe sockets,
//! systemd's `LISTEN_FDS`), [`routes`] (HTTP), [`token`] (the in-memory token cache with
//! single flight), [`refresher`] (background refresh from one timer), [`metrics`], [`key`]
//! (the TCP serve key) and [`config`]. [`client`] is the other side: `nsauth token --via`.
//! [`token_json`] writes the token object, for the token route and `nsauth token --json` alike.
//!
//! Running an agent on the default socket for two profiles (what `nsauth serve --profile
//! prod --profile sb1` does), with a client configured from the environment:
//!
//! ```no_run
//! use nsauth_agent::config::{Profiles, ServeConfig};
//! use nsauth_agent::watch::WatchConfig;
//! use nsauth_core::ProfileName;
//! # fn main() -> Result<(), nsauth_core::Error> {
//! let cfg = ServeConfig {
//!     listen: Vec::new(), // the default socket, or the service manager's
//!     profiles: Profiles::Named(vec![ProfileName::parse("prod")?, ProfileName::parse("sb1")?]),
//!     key_file: None,
//!     shutdown_grace: std::time::Duration::from_secs(10),
//!     watch: WatchConfig::default(),
//! };
//! nsauth_agent::server::run_blocking(cfg, nsauth::Client::from_env, |started| {
//!     println!("listening on {}", started.listening.join(", "));
//! })
//! # }
//! ```
//!
//! Asking it, from another process:
//!
//! ```no_run
//! # async fn ask() -> Result<(), nsauth_core::Error> {
//! let via = nsauth_agent::client::parse_via("unix:/run/user/1000/nsauth/nsauth.sock")?;
//! match nsauth_agent::client::fetch(&via, "prod", 60, None).await {
//!     Ok(token) => println!("valid until {}", token.expires_at), // token.access_token.secret()
//!     Err(nsauth_agent::client::FetchError::NoAgent(why)) => eprintln!("{why}: use the store"),
//!     Err(nsauth_agent::client::FetchError::Agent(e)) => return Err(e),
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod body;
pub mod client;
pub mod config;
pub mod key;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod proxy;
pub mod refresher;
pub mod reply;
pub mod routes;
pub mod server;
pub mod token;
pub mod token_json;
pub mod watch;
