//! The one response body type of the agent, shared by every route (token, proxy, metrics).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The error a streamed body may end with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Every response the agent sends has this body: a whole buffer, or a stream (the proxy).
pub type Body = http_body_util::combinators::BoxBody<Bytes, BodyError>;

/// A body from bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}
