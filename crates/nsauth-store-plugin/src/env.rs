//! The plugin's environment: `PATH`, `HOME`, `TMPDIR`, `LANG`, and the variables named in
//! `NSAUTH_PLUGIN_ENV`; never nsauth's own secrets.

use std::ffi::OsString;

/// Comma-separated names of extra variables a plugin receives (its own credentials).
pub const PLUGIN_ENV_ENV: &str = "NSAUTH_PLUGIN_ENV";

/// What every plugin receives, when set.
pub const BASE_VARS: &[&str] = &["PATH", "HOME", "TMPDIR", "LANG"];

/// Whether `name` is one of nsauth's own secrets (`NSAUTH_STORE_KEY`, and any `NSAUTH_*`
/// variable whose name says key, secret or token), which no plugin receives even if named.
pub fn is_nsauth_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("NSAUTH") && ["KEY", "SECRET", "TOKEN"].iter().any(|w| upper.contains(w))
}

/// The `(name, value)` pairs a plugin starts with, read through `get`. Names refused in
/// `NSAUTH_PLUGIN_ENV` are logged at warn level (by name only) and skipped.
pub fn plugin_env(get: impl Fn(&str) -> Option<OsString>) -> Vec<(String, OsString)> {
    let named = get(PLUGIN_ENV_ENV).unwrap_or_default();
    let named = named.to_string_lossy();
    let mut out: Vec<(String, OsString)> = Vec::new();
    let extra = named.split(',').map(str::trim).filter(|n| !n.is_empty());
    for name in BASE_VARS.iter().copied().chain(extra) {
        if is_nsauth_secret(name) {
            tracing::warn!(
                "{PLUGIN_ENV_ENV} names {name}, one of nsauth's own secrets; a store plugin never receives it"
            );
            continue;
        }
        let valid = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            tracing::warn!(
                "{PLUGIN_ENV_ENV} names {:?}, which is not an environment variable name; ignored",
                crate::uri::shown(name, 40)
            );
            continue;
        }
        if out.iter().any(|(n, _)| n == name) {
            continue;
        }
        if let Some(value) = get(name) {
            out.push((name.to_owned(), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> Vec<String> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        plugin_env(|k| map.get(k).cloned())
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn base_and_named_variables_only() {
        let got = env_of(&[
            ("PATH", "/bin"),
            ("HOME", "/h"),
            ("LANG", "C"),
            ("SECRET_THING", "x"),
            ("OP_TOKEN", "t"),
            ("NSAUTH_PLUGIN_ENV", " OP_TOKEN , ,HOME,MISSING"),
        ]);
        assert_eq!(got, ["PATH", "HOME", "LANG", "OP_TOKEN"]);
    }

    #[test]
    fn nsauth_secrets_are_never_passed_even_when_named() {
        let got = env_of(&[
            ("NSAUTH_STORE_KEY", "k"),
            ("nsauth_store_key", "k"),
            ("NSAUTH_STORE_KEY_FILE", "/k"),
            ("NSAUTH_CLIENT_SECRET", "s"),
            ("NSAUTH_TOKEN", "t"),
            ("NSAUTH_PROFILE", "prod"),
            ("A=B", "x"),
            (
                "NSAUTH_PLUGIN_ENV",
                "NSAUTH_STORE_KEY,nsauth_store_key,NSAUTH_STORE_KEY_FILE,NSAUTH_CLIENT_SECRET,NSAUTH_TOKEN,NSAUTH_PROFILE,A=B",
            ),
        ]);
        assert_eq!(got, ["NSAUTH_PROFILE"]);
    }
}
