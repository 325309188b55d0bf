//! Parsing `aws-sm://PREFIX?region=R&endpoint=URL&kms-key-id=K&force-delete=true&recovery-window-days=N`.

/// The parts of a store URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoreUri {
    /// Secret name prefix, without a trailing `/`.
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub kms_key_id: Option<String>,
    pub force_delete: bool,
    pub recovery_window_days: i64,
}

/// Secrets Manager's default and allowed recovery windows.
const RECOVERY_DAYS: std::ops::RangeInclusive<i64> = 7..=30;

/// Parses a store URI. The error is one line, without the `Err` framing.
pub(crate) fn parse(uri: &str) -> Result<StoreUri, String> {
    parse_inner(uri).map_err(|why| {
        let shown: String = uri
            .chars()
            .take(160)
            .flat_map(char::escape_default)
            .collect();
        format!(
            "invalid aws-sm store URI \"{shown}\": {why}; expected aws-sm://PREFIX?region=…&endpoint=…&kms-key-id=…, e.g. aws-sm://nsauth/prod?region=eu-west-1"
        )
    })
}

fn parse_inner(uri: &str) -> Result<StoreUri, String> {
    let scheme = "aws-sm://";
    let rest = match uri.get(..scheme.len()) {
        Some(p) if p.eq_ignore_ascii_case(scheme) => &uri[scheme.len()..],
        _ => return Err("it does not start with aws-sm://".into()),
    };
    let (prefix, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let prefix = prefix.trim_end_matches('/');
    check_prefix(prefix)?;
    let mut out = StoreUri {
        prefix: prefix.to_owned(),
        region: None,
        endpoint: None,
        kms_key_id: None,
        force_delete: false,
        recovery_window_days: *RECOVERY_DAYS.start(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&key) {
            return Err(format!("option {} is given twice", shown(key)));
        }
        seen.push(key);
        let value = percent_decode(raw)?;
        if value.is_empty() {
            return Err(format!("option {} needs a value", shown(key)));
        }
        match key {
            "region" => {
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err(format!("region {} is not an AWS region name", shown(&value)));
                }
                out.region = Some(value);
            }
            "endpoint" => {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(format!(
                        "endpoint {} must start with http:// or https://",
                        shown(&value)
                    ));
                }
                out.endpoint = Some(value);
            }
            "kms-key-id" => out.kms_key_id = Some(value),
            "force-delete" => {
                out.force_delete = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err("force-delete must be true or false".into()),
                }
            }
            "recovery-window-days" => {
                out.recovery_window_days = value
                    .parse()
                    .ok()
                    .filter(|d| RECOVERY_DAYS.contains(d))
                    .ok_or("recovery-window-days must be a whole number from 7 to 30")?;
            }
            other => {
                return Err(format!(
                    "unknown option {} (options: region, endpoint, kms-key-id, force-delete, recovery-window-days)",
                    shown(other)
                ))
            }
        }
    }
    if out.force_delete && seen.contains(&"recovery-window-days") {
        return Err("force-delete=true and recovery-window-days exclude each other".into());
    }
    Ok(out)
}

/// Secret names allow ASCII letters, digits and `/_+=.@-`; the profile name and a `/` are
/// appended, so the prefix must leave room for them (names are at most 512 characters).
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("the prefix is empty".into());
    }
    if prefix.len() > 256 {
        return Err("the prefix is longer than 256 characters".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Err(format!(
            "the prefix contains {}; secret names allow only ASCII letters, digits and /_+=.@-",
            shown(&c.to_string())
        ));
    }
    if prefix.starts_with('/') || prefix.contains("//") {
        return Err("the prefix has an empty path segment".into());
    }
    Ok(())
}

fn shown(s: &str) -> String {
    let s: String = s.chars().take(60).flat_map(char::escape_default).collect();
    format!("\"{s}\"")
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a '%' is not followed by two hex digits (write %25 for a literal %)")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| "an option value is not UTF-8")?;
    if text.chars().any(char::is_control) {
        return Err("an option value contains control characters".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_options() {
        let u = parse("aws-sm://nsauth/prod").unwrap();
        assert_eq!(u.prefix, "nsauth/prod");
        assert_eq!((u.region, u.endpoint, u.kms_key_id), (None, None, None));
        assert!(!u.force_delete);
        assert_eq!(u.recovery_window_days, 7);

        let u = parse(
            "AWS-SM://team.a/nsauth/?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A4566&kms-key-id=alias/nsauth&force-delete=true",
        )
        .unwrap();
        assert_eq!(u.prefix, "team.a/nsauth");
        assert_eq!(u.region.as_deref(), Some("eu-west-1"));
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(u.kms_key_id.as_deref(), Some("alias/nsauth"));
        assert!(u.force_delete);

        let u = parse("aws-sm://p?endpoint=https://sm.example&recovery-window-days=30").unwrap();
        assert_eq!(u.endpoint.as_deref(), Some("https://sm.example"));
        assert_eq!(u.recovery_window_days, 30);
    }

    #[test]
    fn bad_uris_say_what_is_expected() {
        for bad in [
            "aws-sm://",
            "aws-sm:///",
            "aws-sm://?region=us-east-1",
            "aws-sm:/nsauth",
            "vault://nsauth",
            "aws-sm://nsauth//x",
            "aws-sm:///nsauth",
            "aws-sm://ns auth",
            "aws-sm://naïve",
            "aws-sm://a!b",
            "aws-sm://nsauth?region=",
            "aws-sm://nsauth?region=us east",
            "aws-sm://nsauth?endpoint=localhost:4566",
            "aws-sm://nsauth?profile=dev",
            "aws-sm://nsauth?region=a&region=b",
            "aws-sm://nsauth?force-delete=yes",
            "aws-sm://nsauth?recovery-window-days=3",
            "aws-sm://nsauth?recovery-window-days=7&force-delete=true",
            "aws-sm://nsauth?kms-key-id=%zz",
            "aws-sm://nsauth?kms-key-id=%0a",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.starts_with("invalid aws-sm store URI") && e.contains("expected aws-sm://PREFIX"),
                "{bad}: {e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse(&format!("aws-sm://{}", "p".repeat(257))).is_err());
    }
}
