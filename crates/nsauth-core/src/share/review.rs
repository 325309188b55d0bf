//! What a receiver sees before a bundle is stored. age authenticates nothing about the
//! sender: anyone holding the receiver's public key can write a bundle, so every field shown
//! is escaped (no control characters or ANSI sequences reach the terminal) and every
//! endpoint that is not NetSuite's is named, for the receiver to confirm.

use super::Bundle;
use url::Url;

/// `s` made safe to print: control characters (ESC included, so no ANSI sequence) are
/// escaped as `\n`, `\u{1b}`, …, and so are the invisible characters that reorder or hide
/// text (zero-width and bidirectional controls).
pub fn shown(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let hidden = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
            let escaped: Vec<char> = if c.is_control() || hidden || c == '\\' {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// `true` for an `https` URL on NetSuite's own domains (`*.netsuite.com`: `*.app.netsuite.com`,
/// `*.suitetalk.api.netsuite.com`, `system.netsuite.com`, …) on the default port.
pub fn is_netsuite_url(url: &Url) -> bool {
    url.scheme() == "https"
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && matches!(url.host(), Some(url::Host::Domain(d))
            if d.strip_suffix(".netsuite.com").is_some_and(|sub| !sub.is_empty() && !sub.starts_with('.') && !sub.ends_with('.')))
}

/// One endpoint of a bundle's profile, as nsauth will use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// What it is for ("authorize (login page)", "token", …).
    pub what: &'static str,
    /// The URL.
    pub url: Url,
    /// It is on NetSuite's own domains.
    pub netsuite: bool,
}

impl Bundle {
    /// Every endpoint the imported profile would use, resolved as nsauth will use them.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let e = self.profile.endpoints();
        [
            ("authorize (login page)", e.authorize),
            ("token", e.token),
            ("revoke", e.revoke),
            ("REST API", e.rest),
        ]
        .into_iter()
        .map(|(what, url)| Endpoint {
            what,
            netsuite: is_netsuite_url(&url),
            url,
        })
        .collect()
    }

    /// The hosts (scheme://host:port) of the endpoints that are not NetSuite's, each once.
    pub fn foreign_hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.endpoints().into_iter().filter(|e| !e.netsuite) {
            let o = e.url.origin().ascii_serialization();
            if !out.contains(&o) {
                out.push(o);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_terminal_controls() {
        assert_eq!(shown("me@host"), "me@host");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown("x\ny\rz\t"), "x\\ny\\rz\\t");
        assert_eq!(shown("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(shown("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(
            shown("a\\nb"),
            "a\\\\nb",
            "a literal backslash cannot fake an escape"
        );
    }

    #[test]
    fn netsuite_hosts_only() {
        for ok in [
            "https://1234567.app.netsuite.com/app/login/oauth2/authorize.nl",
            "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/",
            "https://system.netsuite.com/x",
            "https://1234567.restlets.api.netsuite.com/",
        ] {
            assert!(is_netsuite_url(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://1234567.app.netsuite.com/",
            "https://netsuite.com/",
            "https://evilnetsuite.com/",
            "https://1234567.app.netsuite.com.evil.test/",
            "https://1234567.app.netsuite.com:8443/",
            "https://user@1234567.app.netsuite.com/",
            "https://127.0.0.1/",
            "https://netsuite.com.evil.test/",
        ] {
            assert!(!is_netsuite_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
