//! What `nsauth serve` was asked to do: where to listen, which profiles, and the deadline
//! watch's settings ([`crate::watch::WatchConfig`]). Parsing only; nothing here opens a socket.

use nsauth_core::{Error, ProfileName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable naming the agent (`unix:PATH` or `http://127.0.0.1:PORT`).
pub const AGENT_ENV: &str = "NSAUTH_AGENT";
/// The environment variable naming the serve key file (TCP listeners).
pub const KEY_FILE_ENV: &str = "NSAUTH_AGENT_KEY_FILE";

/// One `--listen` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// A loopback TCP address (the key is required).
    Tcp(SocketAddr),
}

impl Listen {
    /// `unix:PATH`, `127.0.0.1:PORT`, `[::1]:PORT` or `localhost:PORT`. Any other host, and
    /// a relative socket path, is [`Error::Invalid`] (exit 2).
    pub fn parse(text: &str) -> Result<Listen, Error> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Error::Invalid(format!(
                    "--listen {text}: the socket path must be absolute, e.g. unix:/run/user/1000/nsauth/nsauth.sock"
                )));
            }
            return Ok(Listen::Unix(path));
        }
        let text_addr = text.strip_prefix("http://").unwrap_or(text);
        let text_addr = text_addr.trim_end_matches('/');
        let addr = match text_addr.strip_prefix("localhost:") {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
            None => text_addr.parse::<SocketAddr>().ok(),
        };
        let Some(addr) = addr else {
            return Err(Error::Invalid(format!(
                "--listen {text:?} is neither unix:PATH nor 127.0.0.1:PORT"
            )));
        };
        if !addr.ip().is_loopback() {
            return Err(Error::Invalid(format!(
                "--listen {addr}: the agent listens on loopback only (127.0.0.1 or [::1]); \
                 a token server on {} would hand tokens to the network",
                addr.ip()
            )));
        }
        Ok(Listen::Tcp(addr))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
            Listen::Tcp(a) => write!(f, "http://{a}"),
        }
    }
}

/// Which profiles the agent serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Profiles {
    /// These, and only these.
    Named(Vec<ProfileName>),
    /// Every profile in the store (re-listed on SIGHUP; a profile created later is served on
    /// its first request).
    All,
}

/// Everything `nsauth serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen; empty means the default socket ([`default_socket`]) unless the
    /// service manager passed sockets in (`LISTEN_FDS`).
    pub listen: Vec<Listen>,
    /// Which profiles.
    pub profiles: Profiles,
    /// The serve key file (TCP); default [`default_key_file`].
    pub key_file: Option<PathBuf>,
    /// How long in-flight requests may take to finish on SIGTERM.
    pub shutdown_grace: Duration,
    /// The deadline watch: thresholds and where its events go.
    pub watch: crate::watch::WatchConfig,
}

/// The directory of the agent's socket and key: `$XDG_RUNTIME_DIR/nsauth`, else
/// `~/.local/state/nsauth/run` (`$XDG_STATE_HOME`).
pub fn runtime_dir() -> Option<PathBuf> {
    nsauth_store_local::paths::absolute_var("XDG_RUNTIME_DIR")
        .map(|d| d.join("nsauth"))
        .or_else(|| {
            nsauth_store_local::paths::nsauth_dir(nsauth_store_local::paths::Base::State)
                .map(|d| d.join("run"))
        })
}

/// The default socket: `<runtime dir>/nsauth.sock`.
pub fn default_socket() -> Result<PathBuf, Error> {
    runtime_dir().map(|d| d.join("nsauth.sock")).ok_or_else(|| {
        Error::Invalid(
            "no default socket path: neither XDG_RUNTIME_DIR nor HOME is set; use --listen unix:PATH"
                .into(),
        )
    })
}

/// The default serve key file: `$NSAUTH_AGENT_KEY_FILE` (an absolute path), else
/// `<runtime dir>/serve.key`.
pub fn default_key_file() -> Result<PathBuf, Error> {
    key_file_from(std::env::var_os(KEY_FILE_ENV), runtime_dir())
}

fn key_file_from(
    var: Option<std::ffi::OsString>,
    runtime: Option<PathBuf>,
) -> Result<PathBuf, Error> {
    if let Some(v) = var.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if !p.is_absolute() {
            return Err(Error::Invalid(format!(
                "{KEY_FILE_ENV} must be an absolute path, not {}",
                p.display()
            )));
        }
        return Ok(p);
    }
    runtime.map(|d| d.join("serve.key")).ok_or_else(|| {
        Error::Invalid(format!(
            "no serve key file path: set {KEY_FILE_ENV} (neither XDG_RUNTIME_DIR nor HOME is set)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_loopback_or_absolute_sockets() {
        assert_eq!(
            Listen::parse("unix:/run/a b/n.sock").unwrap(),
            Listen::Unix("/run/a b/n.sock".into())
        );
        assert_eq!(
            Listen::parse("127.0.0.1:7000").unwrap(),
            Listen::Tcp("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("http://[::1]:7000/").unwrap(),
            Listen::Tcp("[::1]:7000".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("localhost:9").unwrap(),
            Listen::Tcp("127.0.0.1:9".parse().unwrap())
        );
        for bad in [
            "0.0.0.0:7000",
            "[::]:7000",
            "192.168.1.2:80",
            "unix:rel/n.sock",
            "unix:",
            "example.com:80",
            "7000",
            "127.0.0.1",
        ] {
            let e = Listen::parse(bad).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{bad}: {e}");
            assert!(!e.to_string().contains('\n'), "{bad}: one line: {e}");
        }
    }

    #[test]
    fn the_key_file_variable_must_be_absolute() {
        let run = Some(PathBuf::from("/run/user/7/nsauth"));
        assert_eq!(
            key_file_from(None, run.clone()).unwrap(),
            PathBuf::from("/run/user/7/nsauth/serve.key")
        );
        assert_eq!(
            key_file_from(Some("/k/serve.key".into()), run.clone()).unwrap(),
            PathBuf::from("/k/serve.key")
        );
        let e = key_file_from(Some("serve.key".into()), run).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        assert!(key_file_from(None, None).is_err());
    }
}
