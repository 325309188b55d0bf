//! # nsauth-agent
//!
//! `nsauth serve`: one local process that keeps NetSuite tokens fresh ahead of time, hands
//! them out over a Unix socket (or a loopback TCP port with a key), proxies the REST API so
//! an app never holds a token, and raises its hand days before a person must act.
//!
//! Modules: `proxy` (forwarding to a profile's REST base), `watch` (the deadline state
//! machine) and `notify` (where events go) are independent of the server that wires them.
#![warn(missing_docs)]

pub mod body;
pub mod notify;
pub mod proxy;
pub mod watch;
