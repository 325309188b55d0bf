//! Parsing `file://DIR?key-file=PATH`.

use std::path::PathBuf;

/// The parts of a store URI.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StoreUri {
    pub path: PathBuf,
    pub key_file: Option<PathBuf>,
}

/// Parses `file://DIR[?key-file=PATH]`. Everything between `file://` and `?` is the
/// path (so `file:///abs/dir` is absolute and `file://rel/dir` relative), percent-decoded;
/// a leading `~/` is the home directory. The error is one line, without the `Err` framing.
pub(crate) fn parse(uri: &str) -> Result<StoreUri, String> {
    parse_inner(uri).map_err(|why| {
        let shown: String = uri.chars().take(120).flat_map(char::escape_default).collect();
        format!("invalid file store URI \"{shown}\": {why}; expected file://DIR, e.g. file:///home/me/.nsauth-profiles or file://profiles?key-file=store.key")
    })
}

fn parse_inner(uri: &str) -> Result<StoreUri, String> {
    let prefix = "file://";
    let rest = match uri.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &uri[prefix.len()..],
        _ => return Err("it does not start with file://".into()),
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
    let path = expand_home(percent_decode(raw_path)?)?;
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
            "key-file" => key_file = Some(expand_home(percent_decode(v)?)?),
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
    Ok(StoreUri { path, key_file })
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

    #[test]
    fn absolute_relative_and_key_file() {
        let u = parse("file:///var/lib/nsauth/profiles").unwrap();
        assert_eq!(u.path, PathBuf::from("/var/lib/nsauth/profiles"));
        assert_eq!(u.key_file, None);
        let u = parse("file://profiles?key-file=/run/secrets/store.key").unwrap();
        assert_eq!(u.path, PathBuf::from("profiles"));
        assert_eq!(u.key_file, Some(PathBuf::from("/run/secrets/store.key")));
        let u = parse("file:///tmp/with%20space%3F?key-file=k%25.key").unwrap();
        assert_eq!(u.path, PathBuf::from("/tmp/with space?"));
        assert_eq!(u.key_file, Some(PathBuf::from("k%.key")));
    }

    #[test]
    fn bad_uris_say_what_is_expected() {
        for bad in [
            "file://",
            "file://?key-file=x",
            "sqlite:///x",
            "file:///x?mode=ro",
            "file:///x%zz",
            "file:///x?key-file=",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("expected file://DIR"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
