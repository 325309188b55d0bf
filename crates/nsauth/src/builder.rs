//! [`ClientBuilder`]: where a [`Client`] keeps its tokens and how its broker behaves — from
//! the same environment variables as the `nsauth` CLI ([`ClientBuilder::from_env`]) or set
//! in code.

use crate::client::Client;
use nsauth_core::broker::{Broker, BrokerConfig};
use nsauth_core::http::Http;
use nsauth_core::journal::Journal;
use nsauth_core::{Error, TokenStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The store URI (default: [`crate::default_store_uri`]).
pub const STORE_ENV: &str = "NSAUTH_STORE";
/// The default profile (default: `default`).
pub const PROFILE_ENV: &str = "NSAUTH_PROFILE";
/// The refresh lease time in seconds (1–600).
pub const LEASE_SECONDS_ENV: &str = "NSAUTH_LEASE_SECONDS";
/// How long one store call may take, in seconds (1–300).
pub const STORE_TIMEOUT_SECONDS_ENV: &str = "NSAUTH_STORE_TIMEOUT_SECONDS";

/// Where the recovery journal lives.
#[derive(Clone, Debug, Default)]
enum JournalChoice {
    /// `$NSAUTH_JOURNAL_DIR`, else `$XDG_STATE_HOME/nsauth/journal` (as the CLI).
    #[default]
    Default,
    At(PathBuf),
    Off,
}

/// Builds a [`Client`]. Unset options take the CLI's defaults; [`ClientBuilder::from_env`]
/// first reads the CLI's environment variables.
///
/// ```
/// # fn main() -> Result<(), nsauth::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let client = nsauth::Client::builder()
///     .store(format!("sqlite://{}/nsauth.db", dir.path().display()))
///     .key_file(dir.path().join("store.key"))
///     .journal_dir(dir.path().join("journal"))
///     .profile("prod")
///     .lease(std::time::Duration::from_secs(60))
///     .build()?;
/// assert_eq!(client.profile(), "prod");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    store_uri: Option<String>,
    store: Option<Arc<dyn TokenStore>>,
    key_file: Option<PathBuf>,
    journal: JournalChoice,
    profile: Option<String>,
    lease: Option<Duration>,
    store_timeout: Option<Duration>,
}

impl ClientBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder set from the environment the `nsauth` CLI reads: `NSAUTH_STORE`,
    /// `NSAUTH_PROFILE`, `NSAUTH_LEASE_SECONDS`, `NSAUTH_STORE_TIMEOUT_SECONDS`. The store key
    /// (`NSAUTH_STORE_KEY`, `NSAUTH_STORE_KEY_FILE`) and `NSAUTH_JOURNAL_DIR` are read when the
    /// store or journal needs them, exactly as the CLI does. An empty variable counts as unset.
    /// A lease or timeout that is not a number in range is [`Error::Invalid`].
    pub fn from_env() -> Result<Self, Error> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut b = Self::new();
        b.store_uri = var(STORE_ENV);
        b.profile = var(PROFILE_ENV);
        if let Some(v) = var(LEASE_SECONDS_ENV) {
            b.lease = Some(seconds(&v, 1..=600, LEASE_SECONDS_ENV)?);
        }
        if let Some(v) = var(STORE_TIMEOUT_SECONDS_ENV) {
            b.store_timeout = Some(seconds(&v, 1..=300, STORE_TIMEOUT_SECONDS_ENV)?);
        }
        Ok(b)
    }

    /// The store URI, e.g. `sqlite:///var/lib/app/nsauth.db` or `vault://…` (see
    /// [`crate::backends`]).
    pub fn store(mut self, uri: impl Into<String>) -> Self {
        self.store_uri = Some(uri.into());
        self.store = None;
        self
    }

    /// An already opened store, e.g. a [`crate::MemoryStore`] in tests.
    pub fn store_instance(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self.store_uri = None;
        self
    }

    /// The key file of the local stores (`sqlite://`, `file://`) and of the journal, as
    /// `NSAUTH_STORE_KEY_FILE` (created 0600 if missing). `NSAUTH_STORE_KEY`, when set, still
    /// wins, as in the CLI. A store URI with its own `?key-file=` keeps it.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// The recovery journal's directory, as `NSAUTH_JOURNAL_DIR`. Processes that share a
    /// store on one machine should share it: it also holds the lock files they meet on.
    pub fn journal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.journal = JournalChoice::At(dir.into());
        self
    }

    /// No recovery journal: a refresh whose tokens cannot be saved loses them. For tests.
    pub fn without_journal(mut self) -> Self {
        self.journal = JournalChoice::Off;
        self
    }

    /// The profile [`Client::profile`] names (default `default`).
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// The refresh lease time, as `NSAUTH_LEASE_SECONDS` (default 40 s; raised to at least the
    /// HTTP deadline plus the store timeout).
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.lease = Some(ttl);
        self
    }

    /// How long one store call may take, as `NSAUTH_STORE_TIMEOUT_SECONDS` (default 10 s).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// Opens the store (no network call for the local stores) and builds the client. A bad
    /// store URI or profile name is [`Error::Invalid`] or [`nsauth_store::StoreError::Config`].
    pub fn build(mut self) -> Result<Client, Error> {
        let profile = self.profile.take().unwrap_or_else(|| "default".into());
        nsauth_core::ProfileName::parse(&profile)?;
        Ok(Client::new(Arc::new(self.build_broker()?), profile))
    }

    /// Only the broker this builder describes (store, journal, lease, timeouts) — what the
    /// `nsauth` CLI runs its commands on.
    pub fn build_broker(self) -> Result<Broker, Error> {
        let store = match self.store {
            Some(s) => s,
            None => {
                let uri = match self.store_uri {
                    Some(u) => u,
                    None => crate::default_store_uri()?,
                };
                crate::open_store(&with_key_file(&uri, self.key_file.as_deref())?)?
            }
        };
        let mut cfg = BrokerConfig::default();
        if let Some(lease) = self.lease {
            cfg.lease_ttl = lease;
            cfg.wait_limit = lease * 2 + Duration::from_secs(5);
        }
        if let Some(t) = self.store_timeout {
            cfg.store_timeout = t;
        }
        let broker = Broker::new(store, Http::new()?, cfg);
        let journal = match self.journal {
            JournalChoice::Default => Journal::default_dir(),
            JournalChoice::At(dir) => Some(dir),
            JournalChoice::Off => None,
        };
        Ok(match journal {
            Some(dir) => broker.with_journal(Journal::new(dir, self.key_file)),
            None => broker,
        })
    }
}

fn seconds(v: &str, range: std::ops::RangeInclusive<u64>, var: &str) -> Result<Duration, Error> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| range.contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{var} must be a number of seconds between {} and {}",
                range.start(),
                range.end()
            ))
        })
}

/// `uri` with `?key-file=` added for a local store that names none.
fn with_key_file(uri: &str, key_file: Option<&std::path::Path>) -> Result<String, Error> {
    let Some(path) = key_file else {
        return Ok(uri.to_owned());
    };
    let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let local = matches!(scheme.as_deref(), Some("sqlite" | "file"));
    if !local || uri.contains("key-file=") {
        return Ok(uri.to_owned());
    }
    let path = path.to_str().ok_or_else(|| {
        Error::Invalid(format!(
            "the key file path {} is not valid UTF-8; use another path",
            path.display()
        ))
    })?;
    let encoded = percent_encoding::utf8_percent_encode(path, KEY_FILE_ESCAPES);
    let sep = if uri.contains('?') { '&' } else { '?' };
    Ok(format!("{uri}{sep}key-file={encoded}"))
}

/// Everything but unreserved characters and `/` is escaped in a `key-file=` value.
const KEY_FILE_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_goes_into_local_store_uris_only() {
        let k = std::path::Path::new("/keys/a b&c=d%.key");
        assert_eq!(
            with_key_file("sqlite:///x/n.db", Some(k)).unwrap(),
            "sqlite:///x/n.db?key-file=/keys/a%20b%26c%3Dd%25.key"
        );
        assert_eq!(
            with_key_file("vault://h/kv/p", Some(k)).unwrap(),
            "vault://h/kv/p"
        );
        assert_eq!(
            with_key_file("file:///d?key-file=/other", Some(k)).unwrap(),
            "file:///d?key-file=/other"
        );
        assert_eq!(with_key_file("file:///d", None).unwrap(), "file:///d");
    }

    #[test]
    #[cfg(feature = "sqlite")]
    fn an_odd_key_file_path_opens_the_store_with_that_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("my key&file=1%.key");
        let client = ClientBuilder::new()
            .store(format!("sqlite://{}/n.db", dir.path().display()))
            .key_file(&key)
            .without_journal()
            .build()
            .unwrap();
        drop(client);
        assert!(key.exists(), "the key was created at the path given");
    }

    #[test]
    fn bad_lease_and_profile_are_refused_with_the_variable_named() {
        let e = seconds("0", 1..=600, LEASE_SECONDS_ENV).unwrap_err();
        assert!(e.to_string().contains("NSAUTH_LEASE_SECONDS"), "{e}");
        assert!(seconds("abc", 1..=600, LEASE_SECONDS_ENV).is_err());
        assert_eq!(
            seconds(" 30 ", 1..=600, LEASE_SECONDS_ENV).unwrap(),
            Duration::from_secs(30)
        );
        let e = ClientBuilder::new()
            .store_instance(Arc::new(nsauth_store::MemoryStore::new()))
            .profile("../etc")
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    }
}
