//! Profile names ↔ secret names (`PREFIX/PROFILE`).
//!
//! Secret names allow only ASCII letters, digits and `/_+=.@-`, while profile names may
//! hold any Unicode letter. ASCII profile names are used as they are; every other character
//! is written `+HEX=` (its code point in lower-case hex), e.g. `ünï` → `+fc=n+ef=`. Profile
//! names never contain `+` or `=`, so the mapping is one-to-one and reversible.

use nsauth_store::ProfileName;
use std::fmt::Write;

/// The secret name of `profile` under `prefix`.
pub(crate) fn secret_name(prefix: &str, profile: &ProfileName) -> String {
    let mut out = String::with_capacity(prefix.len() + 1 + profile.as_str().len());
    out.push_str(prefix);
    out.push('/');
    for c in profile.as_str().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let _ = write!(out, "+{:x}=", u32::from(c));
        }
    }
    out
}

/// The profile a secret name under `prefix` stands for; `None` for names that are not
/// nsauth's (nested deeper, badly escaped, or not a valid profile name).
pub(crate) fn profile_name(prefix: &str, secret: &str) -> Option<ProfileName> {
    let rest = secret.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut name = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '/' | '=' => return None,
            '+' => {
                let hex: String = chars.by_ref().take_while(|&c| c != '=').collect();
                let decoded = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)?;
                if decoded.is_ascii() || hex.len() > 6 || hex.starts_with('0') {
                    return None;
                }
                name.push(decoded);
            }
            c => name.push(c),
        }
    }
    let parsed = ProfileName::parse(&name).ok()?;
    (secret_name(prefix, &parsed) == secret).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ascii_and_unicode() {
        for raw in ["prod", "a.b@c-d_e", "ünïcødé-名前", "Ωmega", "x𐐀"] {
            let name = ProfileName::parse(raw).unwrap();
            let secret = secret_name("nsauth/team", &name);
            assert!(
                secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)),
                "{secret}"
            );
            assert_eq!(profile_name("nsauth/team", &secret), Some(name));
        }
        assert_eq!(
            secret_name("p", &ProfileName::parse("ünï").unwrap()),
            "p/+fc=n+ef="
        );
    }

    #[test]
    fn foreign_names_are_skipped() {
        for secret in [
            "other/prod",
            "nsauth/team",
            "nsauth/teamx/prod",
            "nsauth/team/sub/prod",
            "nsauth/team/",
            "nsauth/team/+41=",
            "nsauth/team/+0fc=",
            "nsauth/team/+zz=",
            "nsauth/team/a=b",
            "nsauth/team/+fc",
            "nsauth/team/.hidden",
        ] {
            assert_eq!(profile_name("nsauth/team", secret), None, "{secret}");
        }
    }
}
