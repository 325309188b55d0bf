//! # nsauth-store-plugin
//!
//! An nsauth [`TokenStore`](nsauth_store::TokenStore) kept by a program written in any
//! language: `plugin://NAME/REST` runs the executable `nsauth-store-NAME` (looked up in
//! `NSAUTH_PLUGIN_PATH`, then `PATH`) and speaks protocol 1 with it, one JSON message per
//! line on its stdin and stdout, the way git credential helpers and Terraform providers work.
//! The protocol is public and documented in `docs/plugins.md`:
//!
//! ```text
//! → {"id":1,"op":"hello","protocol":1,"uri":"plugin://NAME/REST"}
//! ← {"id":1,"ok":{"protocol":1,"capabilities":{"compare_and_swap":true,"encrypts_at_rest":false}}}
//! → {"id":2,"op":"get","name":"prod"}
//! ← {"id":2,"ok":{"record":"nsauth-sealed-v1:…","version":"7"}}
//! ```
//!
//! The plugin starts on the first request of a [`PluginStore`], with no arguments and a
//! reduced environment (`PATH`, `HOME`, `TMPDIR`, `LANG` and the variables named in
//! `NSAUTH_PLUGIN_ENV`; never `NSAUTH_STORE_KEY` or another nsauth secret), and serves every
//! later request. Records are sealed with the store key, as the local stores seal them,
//! unless the plugin declares `encrypts_at_rest`. A plugin that times out, dies, or writes
//! anything but the reply is stopped, the request fails with a one-line
//! [`StoreError::Unavailable`](nsauth_store::StoreError::Unavailable), and the next request
//! starts it again. This crate depends on the contract and the local sealing helpers only.
//!
//! ```
//! use nsauth_store_plugin::PluginStore;
//! let err = PluginStore::from_uri("plugin://no-such-plugin-here/x").unwrap_err();
//! assert!(err.to_string().contains("nsauth-store-no-such-plugin-here not found"));
//! let err = PluginStore::from_uri("plugin://../etc/x").unwrap_err();
//! assert!(err.to_string().contains("plugin NAME"));
//! ```
#![warn(missing_docs)]

mod env;
mod process;
mod protocol;
mod store;
mod uri;

pub use env::{is_nsauth_secret, PLUGIN_ENV_ENV};
pub use process::MAX_LINE;
pub use protocol::{PluginCapabilities, PROTOCOL};
pub use store::{PluginStore, DEFAULT_TIMEOUT, TIMEOUT_ENV};
pub use uri::{EXECUTABLE_PREFIX, PLUGIN_PATH_ENV};

/// The URI scheme of this store.
pub const SCHEME: &str = "plugin";

/// The URI syntax, as shown by `nsauth backends`.
pub const URI_HELP: &str =
    "plugin://NAME/REST  (runs nsauth-store-NAME from NSAUTH_PLUGIN_PATH or PATH; see docs/plugins.md)";
