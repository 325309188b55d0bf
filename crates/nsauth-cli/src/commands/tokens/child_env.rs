//! What `nsauth exec` keeps out of the child's environment: nsauth's own secrets. The child
//! gets the token variables, never the key that opens every sealed record.

use std::ffi::OsStr;

/// Name parts that mark an `NSAUTH_*` variable as secret (or as pointing at a secret).
const SECRET_PARTS: [&str; 6] = [
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSPHRASE",
    "CREDENTIAL",
];

/// `true` for `NSAUTH_STORE_KEY`, `NSAUTH_STORE_KEY_FILE`, `NSAUTH_CLIENT_SECRET` and any
/// other `NSAUTH_*` variable whose name says it holds a key, secret, token or password.
pub fn is_nsauth_secret(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    upper.starts_with("NSAUTH_") && SECRET_PARTS.iter().any(|p| upper.contains(p))
}

/// The variables of this process that the child must not inherit.
pub fn withheld() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| is_nsauth_secret(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_are_recognised() {
        for s in [
            "NSAUTH_STORE_KEY",
            "NSAUTH_STORE_KEY_FILE",
            "NSAUTH_CLIENT_SECRET",
            "nsauth_store_key",
            "NSAUTH_FUTURE_API_TOKEN",
        ] {
            assert!(is_nsauth_secret(OsStr::new(s)), "{s}");
        }
        for s in [
            "NSAUTH_STORE",
            "NSAUTH_PROFILE",
            "NETSUITE_ACCESS_TOKEN",
            "PATH",
            "HOME",
        ] {
            assert!(!is_nsauth_secret(OsStr::new(s)), "{s}");
        }
    }
}
