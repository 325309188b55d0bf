//! Parsing `vault://HOST:PORT/MOUNT/PREFIX`, `vault+http://…` and `vault:///MOUNT/PREFIX`.

use url::Url;

/// Vault's default port, used when the URI names none.
const DEFAULT_PORT: u16 = 8200;

/// The parts of a store URI, with the server address resolved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StoreUri {
    /// Where the Vault API is: `https://host:port` (or `http://`), plus any base path that
    /// `VAULT_ADDR` carried.
    pub addr: Url,
    /// The KV v2 mount, e.g. `secret`.
    pub mount: String,
    /// The path segments under the mount, e.g. `["nsauth"]` or `["nsauth", "team-a"]`.
    pub prefix: Vec<String>,
}

/// Parses a store URI; `vault_addr` is `VAULT_ADDR`, used only by `vault:///MOUNT/PREFIX`.
/// The error is one line, without the `Err` framing.
pub(crate) fn parse(uri: &str, vault_addr: Option<&str>) -> Result<StoreUri, String> {
    parse_inner(uri, vault_addr).map_err(|why| {
        let shown: String = uri
            .chars()
            .take(120)
            .flat_map(char::escape_default)
            .collect();
        format!(
            "invalid vault store URI \"{shown}\": {why}; expected vault://HOST:PORT/MOUNT/PREFIX \
             (TLS), vault+http://HOST:PORT/MOUNT/PREFIX or vault:///MOUNT/PREFIX with VAULT_ADDR set"
        )
    })
}

fn parse_inner(uri: &str, vault_addr: Option<&str>) -> Result<StoreUri, String> {
    if uri.chars().any(char::is_control) {
        return Err("it contains control characters".into());
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or("it does not start with vault:// or vault+http://")?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "vault" => true,
        "vault+http" => false,
        _ => return Err("it does not start with vault:// or vault+http://".into()),
    };
    if rest.contains(['?', '#']) {
        return Err("it has a query or fragment, which this store does not take".into());
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = if authority.is_empty() {
        from_vault_addr(vault_addr)?
    } else {
        from_authority(authority, tls)?
    };
    let mut segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == "." || s == ".." {
                Err(format!("the path segment \"{s}\" is not allowed"))
            } else {
                Ok(s.to_owned())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if segments.is_empty() {
        return Err("the KV v2 mount and the prefix are missing".into());
    }
    let mount = segments.remove(0);
    if segments.is_empty() {
        return Err(format!(
            "the prefix under mount \"{mount}\" is missing (e.g. /{mount}/nsauth)"
        ));
    }
    Ok(StoreUri {
        addr,
        mount,
        prefix: segments,
    })
}

fn from_authority(authority: &str, tls: bool) -> Result<Url, String> {
    if authority.contains('@') {
        return Err(
            "it has user information before the host; pass the token in VAULT_TOKEN".into(),
        );
    }
    let scheme = if tls { "https" } else { "http" };
    let mut url = Url::parse(&format!("{scheme}://{authority}/"))
        .map_err(|e| format!("the host and port \"{authority}\" are not valid ({e})"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the host is missing".into());
    }
    if url.port().is_none() && !authority.ends_with(":443") && !authority.ends_with(":80") {
        url.set_port(Some(DEFAULT_PORT))
            .map_err(|()| "the port cannot be set".to_string())?;
    }
    Ok(url)
}

fn from_vault_addr(vault_addr: Option<&str>) -> Result<Url, String> {
    let raw = vault_addr
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or("it names no host, and VAULT_ADDR is not set")?;
    let mut url = Url::parse(raw).map_err(|e| format!("VAULT_ADDR is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("VAULT_ADDR must be an http:// or https:// address".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("VAULT_ADDR must not hold user information".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("VAULT_ADDR must not have a query or fragment".into());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str, addr: Option<&str>) -> (String, String, String) {
        let u = parse(uri, addr).unwrap_or_else(|e| panic!("{uri}: {e}"));
        (u.addr.to_string(), u.mount, u.prefix.join("/"))
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(
            ok("vault://vault.example.com:8200/secret/nsauth", None),
            (
                "https://vault.example.com:8200/".into(),
                "secret".into(),
                "nsauth".into()
            )
        );
        assert_eq!(
            ok("vault+http://127.0.0.1:8299/kv/teams/a/", None),
            (
                "http://127.0.0.1:8299/".into(),
                "kv".into(),
                "teams/a".into()
            )
        );
        assert_eq!(
            ok(
                "vault:///secret/nsauth",
                Some("https://vault.internal:8443")
            ),
            (
                "https://vault.internal:8443/".into(),
                "secret".into(),
                "nsauth".into()
            )
        );
        // VAULT_ADDR with a base path behind a proxy, and the form given as vault+http.
        assert_eq!(
            ok("vault+http:///secret/ns", Some("http://proxy:80/vault")),
            ("http://proxy/vault/".into(), "secret".into(), "ns".into())
        );
    }

    #[test]
    fn default_and_explicit_ports() {
        assert_eq!(ok("vault://vault/secret/p", None).0, "https://vault:8200/");
        assert_eq!(ok("vault://vault:443/secret/p", None).0, "https://vault/");
        assert_eq!(
            ok("VAULT+HTTP://[::1]:8200/secret/p", None).0,
            "http://[::1]:8200/"
        );
    }

    #[test]
    fn bad_uris_say_what_is_expected() {
        for (bad, why) in [
            ("vault://", "VAULT_ADDR is not set"),
            ("vault://host:8200", "mount and the prefix are missing"),
            (
                "vault://host:8200/secret",
                "prefix under mount \"secret\" is missing",
            ),
            ("vault:///secret/nsauth", "VAULT_ADDR is not set"),
            ("vaults://host/secret/p", "does not start with"),
            ("sqlite:///x.db", "does not start with"),
            ("vault://host:99999/secret/p", "not valid"),
            ("vault://user:pw@host/secret/p", "user information"),
            ("vault://host/secret/p?token=x", "query"),
            ("vault://host/secret/../p", "not allowed"),
            ("vault://host/secret/p\n", "control"),
        ] {
            let e = parse(bad, None).unwrap_err();
            assert!(
                e.contains("expected vault://HOST:PORT/MOUNT/PREFIX"),
                "{bad}: {e}"
            );
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = parse("vault:///secret/p", Some("vault.example.com")).unwrap_err();
        assert!(e.contains("VAULT_ADDR is not a valid URL"), "{e}");
        let e = parse("vault:///secret/p", Some("ftp://vault")).unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
    }
}
