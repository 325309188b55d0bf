//! `plugin://NAME/REST`: the plugin's name, where its executable is, and a secret-free
//! description.

use nsauth_store::StoreError;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Colon-separated directories searched for `nsauth-store-NAME` before `PATH`.
pub const PLUGIN_PATH_ENV: &str = "NSAUTH_PLUGIN_PATH";

/// The executable of plugin `NAME` is `nsauth-store-NAME`.
pub const EXECUTABLE_PREFIX: &str = "nsauth-store-";

const SYNTAX: &str = "expected plugin://NAME/REST, e.g. plugin://pydir//var/lib/nsauth";

/// A parsed `plugin://NAME/REST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PluginUri {
    /// The whole URI, as given (sent to the plugin in `hello`).
    pub uri: String,
    /// `NAME`: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
    pub name: String,
    /// Everything after `NAME/`, the plugin's own business (may be empty).
    pub rest: String,
}

impl PluginUri {
    pub fn parse(uri: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| {
            StoreError::Config(format!(
                "invalid plugin store URI \"{}\": {why}; {SYNTAX}",
                shown(uri, 120)
            ))
        };
        let rest = match uri.get(..9) {
            Some(p) if p.eq_ignore_ascii_case("plugin://") => &uri[9..],
            _ => return Err(bad("it does not start with plugin://")),
        };
        if uri.chars().any(char::is_control) {
            return Err(bad("it contains control characters"));
        }
        let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        check_name(name).map_err(|why| bad(&why))?;
        Ok(Self {
            uri: uri.to_owned(),
            name: name.to_owned(),
            rest: rest.to_owned(),
        })
    }

    /// The executable's file name, `nsauth-store-NAME`.
    pub fn executable(&self) -> String {
        format!("{EXECUTABLE_PREFIX}{}", self.name)
    }

    /// `plugin://NAME/REST` with what may be a credential redacted: anything before an `@`
    /// in the path (`user:password@host`), and the values of query parameters whose names
    /// say key, secret, token, password, pass, auth or credential. The rest stays, so two
    /// stores differing in a setting describe differently (the journal and the broker's
    /// local locks key on this).
    pub fn describe(&self) -> String {
        let (path, query) = match self.rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.rest.as_str(), None),
        };
        let mut out = format!("plugin://{}/", self.name);
        match path.rfind('@') {
            Some(at) => {
                out.push_str("[redacted]");
                out.push_str(&path[at..]);
            }
            None => out.push_str(path),
        }
        if let Some(q) = query {
            let pairs: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_key(k) => format!("{k}=[redacted]"),
                    _ => pair.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        out
    }
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "pass",
        "auth",
        "credential",
        "sig",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// `NAME` is a lowercase word: it becomes part of a file name, so no separators, no `..`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the plugin NAME is empty".into());
    }
    if name.len() > 64 {
        return Err("the plugin NAME is longer than 64 characters".into());
    }
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !first_ok || !rest_ok {
        return Err(format!(
            "the plugin NAME \"{}\" must be lowercase letters, digits, '-' and '_', starting with a letter or digit",
            shown(name, 40)
        ));
    }
    Ok(())
}

/// Finds `nsauth-store-NAME`: the first executable regular file of that name in
/// `NSAUTH_PLUGIN_PATH`, then in `PATH`.
pub(crate) fn find_executable(
    plugin: &PluginUri,
    plugin_path: Option<&OsStr>,
    path: Option<&OsStr>,
) -> Result<PathBuf, StoreError> {
    let exe = plugin.executable();
    let dirs = plugin_path
        .into_iter()
        .chain(path)
        .flat_map(std::env::split_paths)
        // An empty entry would mean the current directory; plugins come from named places.
        .filter(|d| !d.as_os_str().is_empty() && d.is_absolute());
    for dir in dirs {
        let candidate = dir.join(&exe);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(StoreError::Config(format!(
        "store plugin {exe} not found in {PLUGIN_PATH_ENV} or PATH; install it, or set {PLUGIN_PATH_ENV} to the directory that holds it"
    )))
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    meta.is_file()
}

/// At most `max` characters of `s`, escaped, for a message.
pub(crate) fn shown(s: &str, max: usize) -> String {
    s.chars().take(max).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_message(r: Result<PluginUri, StoreError>) -> String {
        match r {
            Err(StoreError::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn names_and_rest() {
        let p = PluginUri::parse("plugin://pydir//tmp/store").unwrap();
        assert_eq!((p.name.as_str(), p.rest.as_str()), ("pydir", "/tmp/store"));
        assert_eq!(p.executable(), "nsauth-store-pydir");
        let p = PluginUri::parse("plugin://op_1-x").unwrap();
        assert_eq!((p.name.as_str(), p.rest.as_str()), ("op_1-x", ""));
    }

    #[test]
    fn hostile_names_are_refused_with_what_to_write() {
        for uri in [
            "plugin://",
            "plugin:///x",
            "plugin://../x",
            "plugin://..",
            "plugin://a\\b/x",
            "plugin://Upper/x",
            "plugin://-x/x",
            "plugin://_x/x",
            "plugin://a.b/x",
            "plugin://a b/x",
            "plugin://a\u{7}/x",
            "plugin://ünï/x",
            "vault://x/y",
        ] {
            let m = config_message(PluginUri::parse(uri));
            assert!(m.contains("expected plugin://NAME/REST"), "{uri}: {m}");
            assert_eq!(m.lines().count(), 1, "{uri}: {m}");
        }
        let long = format!("plugin://{}/x", "a".repeat(65));
        assert!(config_message(PluginUri::parse(&long)).contains("longer than 64"));
    }

    #[test]
    fn describe_drops_what_may_be_secret() {
        let d = |u: &str| PluginUri::parse(u).unwrap().describe();
        assert_eq!(d("plugin://pydir//tmp/x"), "plugin://pydir//tmp/x");
        assert_eq!(
            d("plugin://vault/https://user:hunter2@host/p?db=2&API_TOKEN=s3cret&password=x&sig=y"),
            "plugin://vault/[redacted]@host/p?db=2&API_TOKEN=[redacted]&password=[redacted]&sig=[redacted]"
        );
        // Stores that differ in a setting describe differently.
        assert_ne!(d("plugin://x/a?db=1"), d("plugin://x/a?db=2"));
    }

    #[test]
    fn lookup_prefers_the_plugin_path_and_needs_an_executable_file() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let plugin = PluginUri::parse("plugin://demo/x").unwrap();
        let write = |dir: &Path, mode: u32| {
            let p = dir.join("nsauth-store-demo");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let err = find_executable(&plugin, Some(a.path().as_os_str()), None).unwrap_err();
        let m = err.to_string();
        assert!(
            m.contains("nsauth-store-demo")
                && m.contains("NSAUTH_PLUGIN_PATH")
                && m.contains("PATH"),
            "{m}"
        );
        // Not executable: skipped.
        write(a.path(), 0o644);
        assert!(find_executable(&plugin, Some(a.path().as_os_str()), None).is_err());
        let in_b = write(b.path(), 0o755);
        let joined = std::env::join_paths([a.path(), b.path()]).unwrap();
        assert_eq!(find_executable(&plugin, Some(&joined), None).unwrap(), in_b);
        // NSAUTH_PLUGIN_PATH comes before PATH.
        let in_a = write(a.path(), 0o755);
        assert_eq!(
            find_executable(
                &plugin,
                Some(a.path().as_os_str()),
                Some(b.path().as_os_str())
            )
            .unwrap(),
            in_a
        );
        assert_eq!(
            find_executable(&plugin, None, Some(b.path().as_os_str())).unwrap(),
            in_b
        );
    }
}
