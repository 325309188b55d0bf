//! Which headers cross the proxy, each way.
//!
//! Towards NetSuite, never: the caller's credentials (`Authorization`, `Proxy-Authorization`,
//! `Cookie` — the agent's bearer token is the only credential NetSuite sees), the agent's own
//! `X-Nsauth-*` controls, `Host` and the framing headers (`Content-Length`: the body sent
//! upstream sets its own), and the hop-by-hop headers of RFC 9110 §7.6.1 (`Connection`, every
//! header it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
//! `Upgrade`) plus `Expect` (the agent has already answered it).
//!
//! Towards the caller, never: the hop-by-hop headers, `Proxy-Authenticate`, and `Set-Cookie`
//! (a NetSuite session cookie is a credential the app is not meant to hold).

use hyper::header::{self, HeaderMap, HeaderName};

/// The prefix of the agent's own control headers, never sent upstream.
pub(crate) const CONTROL_PREFIX: &str = "x-nsauth-";

/// RFC 9110 §7.6.1 hop-by-hop headers (and their common non-standard kin).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// Headers the caller may not send to NetSuite besides the hop-by-hop ones.
const NOT_UPSTREAM: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::EXPECT,
];

/// The names listed in the `Connection` header(s): hop-by-hop for this message.
fn named_by_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// The caller's headers as they may go to NetSuite.
pub(crate) fn upstream(mut headers: HeaderMap) -> HeaderMap {
    for name in named_by_connection(&headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP.iter().chain(NOT_UPSTREAM.iter()) {
        headers.remove(name);
    }
    let controls: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with(CONTROL_PREFIX))
        .cloned()
        .collect();
    for name in controls {
        headers.remove(name);
    }
    headers
}

/// NetSuite's response headers as they may go to the caller.
pub(crate) fn downstream(mut headers: HeaderMap) -> HeaderMap {
    for name in named_by_connection(&headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
    headers.remove(header::SET_COOKIE);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn credentials_controls_and_hop_by_hop_headers_stay_behind() {
        let h = upstream(map(&[
            ("authorization", "Bearer caller"),
            ("Proxy-Authorization", "Basic x"),
            ("cookie", "JSESSIONID=1"),
            ("host", "evil.test"),
            ("content-length", "3"),
            ("connection", "keep-alive, X-Private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("expect", "100-continue"),
            ("X-Nsauth-Retry", "always"),
            ("x-nsauth-anything", "1"),
            ("prefer", "transient"),
            ("accept", "application/json"),
            ("x-request-id", "r1"),
        ]));
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "prefer", "x-request-id"]);
    }

    #[test]
    fn set_cookie_and_hop_by_hop_headers_do_not_reach_the_caller() {
        let h = downstream(map(&[
            ("set-cookie", "JSESSIONID=1"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("content-type", "application/json"),
            ("location", "https://elsewhere.test/"),
            ("www-authenticate", "Bearer"),
        ]));
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "location", "www-authenticate"]);
    }
}
