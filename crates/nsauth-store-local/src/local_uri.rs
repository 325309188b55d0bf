//! Parsing the URIs of the local stores: `SCHEME://PATH[?key-file=PATH]`.
//!
//! Paths come out absolute and canonical (symbolic links of the existing part resolved), so a
//! store's `describe()` names one place whatever the current directory: `sqlite://nsauth.db`
//! opened in two project directories is two stores, and the recovery journal (one per user)
//! keys its entries by that identity.

use std::path::{Component, Path, PathBuf};

/// The parts of a local store URI.
#[derive(Debug, PartialEq, Eq)]
pub struct LocalStoreUri {
    /// The database file or directory.
    pub path: PathBuf,
    /// `?key-file=`, if given.
    pub key_file: Option<PathBuf>,
}

impl LocalStoreUri {
    /// Parses `SCHEME://PATH[?key-file=PATH]`. Everything between `SCHEME://` and `?` is the
    /// path (so `SCHEME:///abs` is absolute and `SCHEME://rel` relative to the current
    /// directory), percent-decoded; a leading `~/` is the home directory. Both paths are
    /// returned absolute and canonical (see [`canonical`]). `syntax` and `example` complete the one-line error
    /// ("expected sqlite://PATH, e.g. …").
    pub fn parse(uri: &str, scheme: &str, syntax: &str, example: &str) -> Result<Self, String> {
        parse_inner(uri, scheme).map_err(|why| {
            let shown: String = uri
                .chars()
                .take(120)
                .flat_map(char::escape_default)
                .collect();
            format!(
                "invalid {scheme} store URI \"{shown}\": {why}; expected {syntax}, e.g. {example}"
            )
        })
    }
}

fn parse_inner(uri: &str, scheme: &str) -> Result<LocalStoreUri, String> {
    let prefix = format!("{scheme}://");
    let rest = match uri.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(&prefix) => &uri[prefix.len()..],
        _ => return Err(format!("it does not start with {prefix}")),
    };
    if rest.chars().any(char::is_control) {
        return Err("it contains control characters".into());
    }
    let (raw_path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if raw_path.is_empty() {
        return Err("the path is empty".into());
    }
    let path = canonical(&expand_home(percent_decode(raw_path)?)?)?;
    let mut key_file = None;
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "key-file" if v.is_empty() => return Err("key-file needs a path".into()),
            "key-file" if key_file.is_some() => return Err("key-file is given twice".into()),
            "key-file" => key_file = Some(canonical(&expand_home(percent_decode(v)?)?)?),
            other => {
                let shown: String = other
                    .chars()
                    .take(40)
                    .flat_map(char::escape_default)
                    .collect();
                return Err(format!(
                    "unknown option \"{shown}\" (the only option is key-file)"
                ));
            }
        }
    }
    Ok(LocalStoreUri { path, key_file })
}

/// `path` made absolute (against the current directory), `.`/`..` resolved, and the longest
/// existing ancestor canonicalised (symbolic links resolved); the part that does not exist yet
/// (a database about to be created) is appended as written.
pub fn canonical(path: &Path) -> Result<PathBuf, String> {
    let abs = std::path::absolute(path)
        .map_err(|e| format!("cannot make the path absolute (current directory: {e})"))?;
    // Lexically drop `.` and resolve `..` of the part that may not exist.
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    let mut existing = clean.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Ok(out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(clean),
        }
    }
}

fn expand_home(path: String) -> Result<PathBuf, String> {
    match path.strip_prefix("~/") {
        Some(rest) => {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .ok_or("it starts with ~/ but HOME is not set")?;
            Ok(PathBuf::from(home).join(rest))
        }
        None => Ok(PathBuf::from(path)),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            let Some(hex) = hex else {
                return Err(
                    "a '%' is not followed by two hex digits (write %25 for a literal %)".into(),
                );
            };
            let hex = std::str::from_utf8(hex).map_err(|_| "bad percent escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded path is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Result<LocalStoreUri, String> {
        LocalStoreUri::parse(
            uri,
            "sqlite",
            "sqlite://PATH",
            "sqlite:///home/me/nsauth.db",
        )
    }

    #[test]
    fn absolute_relative_and_key_file() {
        let u = parse("sqlite:///var/lib/nsauth/ns.db").unwrap();
        assert_eq!(u.path, PathBuf::from("/var/lib/nsauth/ns.db"));
        assert_eq!(u.key_file, None);
        let u = parse("sqlite://data/ns.db?key-file=/run/secrets/store.key").unwrap();
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(u.path, cwd.join("data/ns.db"));
        assert_eq!(u.key_file, Some(PathBuf::from("/run/secrets/store.key")));
        let u = parse("sqlite:///nonexistent-nsauth/with%20space%3F.db?key-file=k%25.key").unwrap();
        assert_eq!(u.path, PathBuf::from("/nonexistent-nsauth/with space?.db"));
        assert_eq!(u.key_file, Some(cwd.join("k%.key")));
    }

    /// The same relative URI names different stores in different directories, and one store
    /// reached through a symbolic link or `..` has one name.
    #[test]
    fn relative_and_linked_paths_are_canonical() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("a")).unwrap();
        let via_dots = canonical(&real.join("a/../a/./ns.db")).unwrap();
        assert_eq!(via_dots, real.join("a/ns.db"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
            assert_eq!(
                canonical(&real.join("link/ns.db")).unwrap(),
                real.join("a/ns.db")
            );
        }
        assert!(parse("sqlite://nsauth.db").unwrap().path.is_absolute());
        assert!(
            parse("sqlite://~/x.db").unwrap().path.is_absolute()
                || std::env::var_os("HOME").is_none()
        );
    }

    #[test]
    fn bad_uris_say_what_is_expected() {
        for bad in [
            "sqlite://",
            "sqlite://?key-file=x",
            "file:///x.db",
            "sqlite:///x.db?mode=ro",
            "sqlite:///x%zz.db",
            "sqlite:///x.db?key-file=",
            "sqlite:///x.db?key-file=a&key-file=b",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("expected sqlite://PATH"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
