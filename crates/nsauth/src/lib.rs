//! # nsauth
//!
//! NetSuite OAuth 2.0 tokens for Rust services: open any nsauth store by URI and get fresh
//! access tokens with single-flight refresh across processes and hosts.
//!
//! Backends are compiled in by cargo feature (`sqlite`, `file`, `vault`, `aws`; all on by
//! default).
#![warn(missing_docs)]

mod registry;

pub use registry::{backends, default_store_uri, open_store, Backend};
