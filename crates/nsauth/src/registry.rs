//! Every store is opened through this one registry, keyed by URI scheme. Adding a backend is
//! one new crate and one entry here.

use nsauth_store::{StoreError, TokenStore};
use std::sync::Arc;

/// A compiled-in store backend.
pub struct Backend {
    /// URI scheme(s), e.g. `sqlite`.
    pub schemes: &'static [&'static str],
    /// URI syntax for `nsauth backends`.
    pub help: &'static str,
    /// Opens a store from a full URI.
    pub open: fn(&str) -> Result<Arc<dyn TokenStore>, StoreError>,
}

/// The compiled-in backends.
pub fn backends() -> Vec<Backend> {
    vec![
        #[cfg(feature = "sqlite")]
        Backend {
            schemes: &[nsauth_store_sqlite::SCHEME],
            help: nsauth_store_sqlite::URI_HELP,
            open: |uri| Ok(Arc::new(nsauth_store_sqlite::SqliteStore::from_uri(uri)?)),
        },
        #[cfg(feature = "file")]
        Backend {
            schemes: &[nsauth_store_file::SCHEME],
            help: nsauth_store_file::URI_HELP,
            open: |uri| Ok(Arc::new(nsauth_store_file::FileStore::from_uri(uri)?)),
        },
        #[cfg(feature = "vault")]
        Backend {
            schemes: nsauth_store_vault::SCHEMES,
            help: nsauth_store_vault::URI_HELP,
            open: |uri| Ok(Arc::new(nsauth_store_vault::VaultStore::from_uri(uri)?)),
        },
        #[cfg(feature = "aws")]
        Backend {
            schemes: &[nsauth_store_aws::SCHEME],
            help: nsauth_store_aws::URI_HELP,
            open: |uri| Ok(Arc::new(nsauth_store_aws::AwsStore::from_uri(uri)?)),
        },
        #[cfg(feature = "plugin")]
        Backend {
            schemes: &[nsauth_store_plugin::SCHEME],
            help: nsauth_store_plugin::URI_HELP,
            open: |uri| Ok(Arc::new(nsauth_store_plugin::PluginStore::from_uri(uri)?)),
        },
        #[cfg(feature = "postgres")]
        Backend {
            schemes: nsauth_store_postgres::SCHEMES,
            help: nsauth_store_postgres::URI_HELP,
            open: |uri| {
                Ok(Arc::new(nsauth_store_postgres::PostgresStore::from_uri(
                    uri,
                )?))
            },
        },
    ]
}

/// The default store: `sqlite://$XDG_DATA_HOME/nsauth/nsauth.db` (`~/.local/share/...`).
pub fn default_store_uri() -> Result<String, StoreError> {
    let base = nsauth_store_local::paths::nsauth_dir(nsauth_store_local::paths::Base::Data)
        .ok_or_else(|| {
            StoreError::Config(
                "no default store location (HOME is not set); pass --store URI or set NSAUTH_STORE"
                    .into(),
            )
        })?;
    Ok(format!("sqlite://{}", base.join("nsauth.db").display()))
}

/// Opens the store named by `uri` with the backend registered for its scheme.
///
/// A URI this build cannot open (bad syntax, unknown scheme) is [`StoreError::Config`].
///
/// ```
/// let err = nsauth::open_store("bogus://x").unwrap_err();
/// assert!(matches!(err, nsauth_store::StoreError::Config(_)));
/// ```
pub fn open_store(uri: &str) -> Result<Arc<dyn TokenStore>, StoreError> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(StoreError::Config(format!(
            "invalid store URI {:?}: expected SCHEME://..., e.g. sqlite:///path/nsauth.db (see: nsauth backends)",
            shown(uri)
        )));
    };
    if rest.is_empty() || uri.chars().any(char::is_control) {
        return Err(StoreError::Config(format!(
            "invalid store URI {:?}: it needs a location after {scheme}://",
            shown(uri)
        )));
    }
    let all = backends();
    let Some(b) = all.iter().find(|b| b.schemes.contains(&scheme)) else {
        let known: Vec<&str> = all.iter().flat_map(|b| b.schemes.iter().copied()).collect();
        return Err(StoreError::Config(format!(
            "unknown store scheme {:?}; this nsauth supports: {} (see: nsauth backends)",
            shown(scheme),
            known.join(", ")
        )));
    };
    (b.open)(uri)
}

fn shown(s: &str) -> String {
    s.chars().take(80).flat_map(char::escape_default).collect()
}
