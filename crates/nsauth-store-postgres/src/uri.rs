//! `postgres://USER@HOST:PORT/DB?table=…&sslmode=…` and the standard `PG*` variables that
//! fill in what the URI leaves out, parsed into [`Settings`].
//!
//! The password never comes from the URI (a URI is shown in logs and process lists): it is
//! `PGPASSWORD`, else the matching line of `PGPASSFILE` or `~/.pgpass`, as for `psql`.

use nsauth_store::StoreError;
use std::fmt;
use std::path::{Path, PathBuf};

/// The table used when the URI names none.
pub const DEFAULT_TABLE: &str = "nsauth_records";

/// The longest table name: PostgreSQL's 63-byte identifiers, less the `_version` suffix
/// of the table's sequence.
const MAX_TABLE: usize = 63 - "_version".len();

const EXAMPLE: &str =
    "postgres://nsauth@db.example.com:5432/nsauth?table=nsauth_records&sslmode=verify-full";

/// How the connection uses TLS (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it (no certificate check), else plain TCP; libpq's default.
    Prefer,
    /// TLS, without checking the certificate (libpq's meaning), unless a root certificate
    /// is given, which makes it `VerifyCa`.
    Require,
    /// TLS, certificate signed by a trusted root; the host name is not checked.
    VerifyCa,
    /// TLS, certificate signed by a trusted root and naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// The password, kept out of `Debug`.
#[derive(Clone)]
pub(crate) struct Password(pub(crate) String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Everything needed to connect, resolved once when the store is opened.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) dbname: String,
    pub(crate) table: String,
    pub(crate) sslmode: SslMode,
    pub(crate) root_cert: Option<PathBuf>,
    /// Whether waiters may LISTEN for changes (`notify=false` turns it off).
    pub(crate) notify: bool,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) password: Option<Password>,
}

fn config(msg: impl fmt::Display) -> StoreError {
    StoreError::Config(format!(
        "invalid postgres store URI: {msg} (e.g. {EXAMPLE})"
    ))
}

/// Whether `table` is a plain lower-case SQL identifier nsauth may use as a table name.
pub(crate) fn valid_table(table: &str) -> bool {
    let mut chars = table.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && table.len() <= MAX_TABLE
}

impl Settings {
    /// Parses `uri`, taking what it omits from `env` (the process environment in
    /// production, a map in tests).
    pub(crate) fn parse(
        uri: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, StoreError> {
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let url = url::Url::parse(uri).map_err(|e| config(format!("{e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(config("the scheme must be postgres:// or postgresql://"));
        }
        if url.password().is_some() {
            return Err(StoreError::Config(
                "the postgres store URI carries a password; remove it and set PGPASSWORD or use a ~/.pgpass file (a URI is shown in logs and process lists)".into(),
            ));
        }
        let mut table = DEFAULT_TABLE.to_owned();
        let mut sslmode = None;
        let mut root_cert = None;
        let mut notify = true;
        let mut key_file = None;
        let mut host_param = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "table" => table = v.into_owned(),
                "sslmode" => sslmode = Some(v.into_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
                "host" => host_param = Some(v.into_owned()),
                "key-file" => key_file = Some(PathBuf::from(v.as_ref())),
                "notify" => {
                    notify = match v.as_ref() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(config(format!("notify must be true or false, not {v:?}"))),
                    }
                }
                other => {
                    return Err(config(format!(
                        "unknown parameter {other:?}; known: table, sslmode, sslrootcert, host, notify, key-file"
                    )))
                }
            }
        }
        if !valid_table(&table) {
            return Err(config(format!(
                "table {table:?} is not a valid name: use lower-case letters, digits and _, starting with a letter or _, at most {MAX_TABLE} characters"
            )));
        }
        let sslmode_text = sslmode.or_else(|| env("PGSSLMODE"));
        let sslmode = match sslmode_text.as_deref() {
            None => SslMode::Prefer,
            Some(s) => SslMode::parse(s).ok_or_else(|| {
                config(format!(
                    "sslmode {s:?} is not one of disable, prefer, require, verify-ca, verify-full"
                ))
            })?,
        };
        let root_cert = root_cert.or_else(|| env("PGSSLROOTCERT").map(PathBuf::from));
        let sslmode = match (sslmode, &root_cert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| config(format!("{s:?} is not valid percent-encoding")))
        };
        let host = match (url.host_str().filter(|h| !h.is_empty()), host_param) {
            (_, Some(h)) => h,
            (Some(h), None) => decode(h.trim_start_matches('[').trim_end_matches(']'))?,
            (None, None) => env("PGHOST").unwrap_or_else(|| "localhost".into()),
        };
        let port = match url.port() {
            Some(p) => p,
            None => match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .map_err(|_| config(format!("PGPORT {p:?} is not a port number")))?,
                None => 5432,
            },
        };
        let user = match url.username() {
            "" => env("PGUSER").or_else(|| env("USER")).ok_or_else(|| {
                config("no user: put one in the URI (postgres://USER@HOST/DB) or set PGUSER")
            })?,
            u => decode(u)?,
        };
        let dbname = match url.path().trim_start_matches('/') {
            "" => env("PGDATABASE").unwrap_or_else(|| user.clone()),
            db if db.contains('/') => return Err(config(format!("database {db:?} contains /"))),
            db => decode(db)?,
        };
        if [&host, &user, &dbname]
            .iter()
            .any(|s| s.chars().any(char::is_control))
        {
            return Err(config(
                "host, user and database must not contain control characters",
            ));
        }
        let password = env("PGPASSWORD").map(Password).or_else(|| {
            let file = env("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
            pgpass_lookup(&file, &host, port, &dbname, &user).map(Password)
        });
        Ok(Settings {
            host,
            port,
            user,
            dbname,
            table,
            sslmode,
            root_cert,
            notify,
            key_file,
            password,
        })
    }

    /// The secret-free identity of the store: `postgres://USER@HOST:PORT/DB?table=T`.
    pub(crate) fn describe(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}@{host}:{}/{}?table={}",
            self.user, self.port, self.dbname, self.table
        )
    }

    /// The table's name, quoted for SQL (it was validated, the quotes are belt and braces).
    pub(crate) fn quoted_table(&self) -> String {
        format!("\"{}\"", self.table)
    }

    /// The sequence that hands out versions.
    pub(crate) fn quoted_sequence(&self) -> String {
        format!("\"{}_version\"", self.table)
    }

    /// The NOTIFY channel of the table.
    pub(crate) fn channel(&self) -> String {
        format!("nsauth_{}", self.table).chars().take(63).collect()
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The password of the first matching `host:port:db:user:password` line of a `.pgpass`
/// file (`*` matches anything; `\:` and `\\` escape), as libpq reads it. A file others may
/// read is ignored, as libpq does.
fn pgpass_lookup(file: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %file.display(), "ignoring a password file that group or others can read; chmod 0600 it");
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    let want = [host, port.as_str(), db, user];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w || (f == "localhost" && w.starts_with('/')));
            matches.then(|| fields[4].clone())
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_with(uri: &str, vars: &[(&str, &str)]) -> Result<Settings, StoreError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(uri, &|k| map.get(k).cloned())
    }

    fn config_error(uri: &str) -> String {
        match parse_with(uri, &[("USER", "me")]) {
            Err(StoreError::Config(m)) => m,
            other => panic!("{uri}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn uri_fields_win_over_the_environment() {
        let s = parse_with(
            "postgresql://app@db.example.com:6543/tokens?table=t1&sslmode=verify-full",
            &[
                ("PGHOST", "other"),
                ("PGPORT", "1"),
                ("PGUSER", "x"),
                ("PGDATABASE", "y"),
                ("PGSSLMODE", "disable"),
                ("PGPASSWORD", "pw"),
            ],
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str(), s.dbname.as_str()),
            ("db.example.com", 6543, "app", "tokens")
        );
        assert_eq!((s.table.as_str(), s.sslmode), ("t1", SslMode::VerifyFull));
        assert_eq!(s.password.unwrap().0, "pw");
        assert!(s.notify);
    }

    #[test]
    fn the_environment_fills_what_the_uri_omits() {
        let s = parse_with(
            "postgres://",
            &[
                ("PGHOST", "/run/postgresql"),
                ("PGPORT", "5433"),
                ("PGUSER", "svc"),
                ("PGDATABASE", "db"),
                ("PGSSLMODE", "require"),
                ("PGSSLROOTCERT", "/etc/ca.pem"),
            ],
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str(), s.dbname.as_str()),
            ("/run/postgresql", 5433, "svc", "db")
        );
        // libpq: require with a root certificate verifies the chain.
        assert_eq!(s.sslmode, SslMode::VerifyCa);
        assert_eq!(s.table, DEFAULT_TABLE);
        let d = parse_with("postgres://", &[("USER", "me")]).unwrap();
        assert_eq!(
            d.describe(),
            "postgres://me@localhost:5432/me?table=nsauth_records"
        );
        assert_eq!(d.sslmode, SslMode::Prefer);
    }

    #[test]
    fn describe_never_shows_the_password() {
        let s = parse_with(
            "postgres://u@h/d?notify=false",
            &[("PGPASSWORD", "hunter2-secret")],
        )
        .unwrap();
        assert!(!s.describe().contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
        assert!(!s.notify);
    }

    #[test]
    fn a_password_in_the_uri_is_refused_without_echoing_it() {
        let m = config_error("postgres://u:hunter2@h/d");
        assert!(m.contains("PGPASSWORD") && !m.contains("hunter2"), "{m}");
    }

    #[test]
    fn bad_uris_are_one_line_config_errors() {
        for (uri, says) in [
            ("postgres://u@h/d?table=Robert%22;drop", "not a valid name"),
            ("postgres://u@h/d?table=1abc", "not a valid name"),
            ("postgres://u@h/d?table=", "not a valid name"),
            (
                &format!("postgres://u@h/d?table={}", "a".repeat(56)),
                "not a valid name",
            ),
            ("postgres://u@h/d?sslmode=verify", "sslmode"),
            ("postgres://u@h/d?colour=red", "unknown parameter"),
            ("postgres://u@h/d?notify=maybe", "notify"),
            ("postgres://u@h/a/b", "contains /"),
            ("postgres://u@h:99999/d", "invalid"),
            ("mysql://u@h/d", "scheme"),
        ] {
            let m = config_error(uri);
            assert!(m.contains(says), "{uri}: {m}");
            assert!(!m.contains('\n'), "{uri}: {m}");
        }
    }

    #[test]
    fn table_names_follow_identifier_rules() {
        for ok in ["t", "_x", "nsauth_records", "a1_b2"] {
            assert!(valid_table(ok), "{ok}");
        }
        for bad in ["", "T", "a-b", "a b", "a\"b", "é", "1a", "a.b"] {
            assert!(!valid_table(bad), "{bad}");
        }
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let dir = std::env::temp_dir().join(format!("nsauth-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:u:wrong\ndb\\:x:*:d:u:p\\:w\\\\d\n*:*:*:*:fallback\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(
            pgpass_lookup(&file, "db:x", 5432, "d", "u").as_deref(),
            Some("p:w\\d")
        );
        assert_eq!(
            pgpass_lookup(&file, "else", 1, "d", "v").as_deref(),
            Some("fallback")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(pgpass_lookup(&file, "else", 1, "d", "v"), None);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
