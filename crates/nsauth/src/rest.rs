//! Where a bearer token may go: a URL built from validated path segments under the profile's
//! REST base, never a URL a caller's path could point at another host. (`nsauth api` follows
//! the same rules.)
//!
//! URL joining is lenient (tabs and newlines are dropped, `\` counts as `/`, `https:host`
//! names a host), so PATH is never joined: it is split into segments, each percent-decoded,
//! checked and pushed (re-encoded) onto the REST base; the query is set as data. The result
//! is then compared with the base once more before the token is attached.

use nsauth_core::Error;
use url::Url;

/// The URL for `PATH` (e.g. `record/v1/customer/42?limit=5`) under `rest` (the profile's
/// REST base, ending in `/`).
pub fn api_url(rest: &Url, path: &str) -> Result<Url, Error> {
    let refuse = |why: &str| {
        let shown: String = path
            .chars()
            .take(80)
            .flat_map(char::escape_default)
            .collect();
        Error::Invalid(format!(
            "refusing API path \"{shown}\": {why}; give a path under the REST base, e.g. record/v1/metadata-catalog"
        ))
    };
    if path.chars().any(char::is_control) {
        return Err(refuse("it contains control characters (tab, newline, ...)"));
    }
    if path.contains('\\') {
        return Err(refuse("it contains a backslash"));
    }
    if path.trim() != path {
        return Err(refuse("it starts or ends with white space"));
    }
    if path.contains('#') {
        return Err(refuse("it contains a fragment (#)"));
    }
    let (raw_path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let raw_path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if raw_path.starts_with('/') {
        return Err(refuse("it starts with //, which names another host"));
    }
    if raw_path.is_empty() {
        return Err(refuse("it is empty"));
    }
    let first = raw_path.split('/').next().unwrap_or_default();
    if first.contains(':') {
        return Err(refuse("it starts like a URL scheme (xxx:)"));
    }
    let mut url = rest.clone();
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| refuse("the profile's REST base cannot take a path"))?;
        segs.pop_if_empty();
        let count = raw_path.split('/').count();
        for (i, raw) in raw_path.split('/').enumerate() {
            if raw.is_empty() && i + 1 < count {
                return Err(refuse("it contains an empty segment (//)"));
            }
            let seg = percent_decode(raw).ok_or_else(|| refuse("a % escape is not valid UTF-8"))?;
            if seg.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
                return Err(refuse(
                    "an escaped segment holds a slash, backslash or control character",
                ));
            }
            if seg == "." || seg == ".." {
                return Err(refuse("it contains . or .. segments"));
            }
            segs.push(&seg);
        }
    }
    if let Some(q) = query {
        url.set_query(Some(q));
    }
    if !same_origin(&url, rest) || !url.path().starts_with(rest.path()) {
        return Err(refuse("it leads outside the profile's REST base"));
    }
    Ok(url)
}

/// Same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays literal.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://123.suitetalk.api.netsuite.com/services/rest/").unwrap()
    }

    #[test]
    fn builds_paths_under_the_rest_base() {
        let u = api_url(&base(), "record/v1/metadata-catalog").unwrap();
        assert_eq!(
            u.as_str(),
            "https://123.suitetalk.api.netsuite.com/services/rest/record/v1/metadata-catalog"
        );
        let u = api_url(&base(), "/query/v1/suiteql?limit=5&q=http://x").unwrap();
        assert_eq!(u.path(), "/services/rest/query/v1/suiteql");
        assert_eq!(u.host_str(), Some("123.suitetalk.api.netsuite.com"));
        let u = api_url(&base(), "record/v1/").unwrap();
        assert_eq!(u.path(), "/services/rest/record/v1/");
        let u = api_url(&base(), "record/v1/customer/a b@c").unwrap();
        assert_eq!(u.path(), "/services/rest/record/v1/customer/a%20b@c");
        assert_eq!(u.host_str(), Some("123.suitetalk.api.netsuite.com"));
    }

    #[test]
    fn refuses_everything_that_could_leave_the_base() {
        for bad in [
            "//evil.test/x",
            "///evil.test/x",
            "\\\\evil.test/x",
            "/\\/evil.test/x",
            "\t//evil.test/x",
            "\n//evil.test/x",
            "\r\n//evil.test/x",
            "https:evil.test/x",
            "http:evil.test/x",
            "https://evil.test/x",
            "%2F%2Fevil.test/x",
            "x/%2F%2Fevil.test",
            "x/%5Cevil",
            "../x",
            "record/../../x",
            "record/%2e%2e/x",
            "x#frag",
            "",
            "/",
            "x/%0a",
            " //evil.test/x",
            "record//evil.test/x",
        ] {
            let e = api_url(&base(), bad).expect_err(bad);
            let m = e.to_string();
            assert!(!m.contains('\n') && !m.contains('\t'), "{m}");
        }
    }

    #[test]
    fn percent_escapes_are_decoded_then_re_encoded() {
        let u = api_url(&base(), "record/v1/customer/eid%3AABC").unwrap();
        assert_eq!(u.path(), "/services/rest/record/v1/customer/eid:ABC");
        let u = api_url(&base(), "x/100%").unwrap();
        assert_eq!(u.path(), "/services/rest/x/100%25");
    }
}
