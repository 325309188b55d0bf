//! Names that end up in host names, file names and redirects: `AccountId::parse`,
//! `ProfileName::parse`, `validate_redirect_uri` (and `validate_endpoint_url`,
//! `validate_scopes`) never panic, and what they accept is safe:
//! an account ID's host form is only `[0-9a-z-]` and the derived endpoints stay on
//! NetSuite's domains; a profile name cannot escape a directory; an accepted redirect URI
//! has no fragment, no dangerous scheme and uses http only on loopback.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsauth_core::account::AccountId;
use nsauth_core::profile::{
    is_loopback_host, validate_endpoint_url, validate_redirect_uri, validate_scopes,
    EndpointOverrides, GrantKind, Profile, ProfileName,
};
use url::Url;

fn check_account(input: &str) {
    let Ok(acct) = AccountId::parse(input) else {
        return;
    };
    let host = acct.host_form();
    assert!(!host.is_empty());
    assert!(
        host.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-'),
        "host form {host:?} of {input:?} has a character outside [0-9a-z-]"
    );
    // Canonical form parses to itself.
    let again = AccountId::parse(acct.as_str()).expect("canonical form parses");
    assert_eq!(again, acct);
    // The derived endpoints stay on NetSuite's hosts (this `expect`s inside core).
    let profile = Profile {
        account_id: acct,
        client_id: "cid".into(),
        client_secret: None,
        redirect_uri: None,
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: None,
    };
    let e = profile.endpoints();
    assert_eq!(
        e.authorize.host_str(),
        Some(format!("{host}.app.netsuite.com").as_str())
    );
    let api = format!("{host}.suitetalk.api.netsuite.com");
    for u in [&e.token, &e.revoke, &e.rest] {
        assert_eq!(u.host_str(), Some(api.as_str()));
        assert_eq!(u.scheme(), "https");
    }
}

fn check_profile_name(input: &str) {
    let Ok(name) = ProfileName::parse(input) else {
        return;
    };
    let s = name.as_str();
    assert!(!s.is_empty() && s.chars().count() <= 64);
    assert!(s != "." && s != "..", "accepted {s:?}");
    assert!(!s.starts_with('.') && !s.starts_with('-'), "accepted {s:?}");
    assert!(
        !s.chars()
            .any(|c| matches!(c, '/' | '\\' | ':' | '\0') || c.is_control()),
        "accepted {s:?}"
    );
}

fn check_url(input: &str) {
    let Ok(url) = Url::parse(input) else {
        return;
    };
    if validate_redirect_uri(&url).is_ok() {
        assert!(url.fragment().is_none(), "accepted a fragment: {url}");
        let scheme = url.scheme();
        assert!(
            !matches!(
                scheme,
                "javascript" | "data" | "file" | "ftp" | "ws" | "wss"
            ),
            "accepted scheme {scheme}"
        );
        if scheme == "http" {
            assert!(is_loopback_host(&url), "accepted non-loopback http: {url}");
        }
        if scheme == "https" {
            assert!(url.host().is_some(), "accepted https without host: {url}");
        }
    }
    if validate_endpoint_url(&url).is_ok() {
        assert!(
            url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(&url)),
            "accepted endpoint {url}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    check_account(&input);
    check_profile_name(&input);
    check_url(&input);
    let scopes: Vec<String> = input.split([',', ' ']).map(str::to_owned).collect();
    let _ = validate_scopes(&scopes);
});
