//! The on-disk envelope:
//! `{"format":"nsauth-file-record","version":N,"sealed":"…","incarnation":"…"}`.
//!
//! `version` counts the writes of one incarnation of a record; `incarnation` is random and
//! new at every create, so the version handed out (`INCARNATION.N`) is never reused for a
//! name, even after a delete and a re-create. Files written before incarnations existed have
//! none; their version is plain `N`, and their next write gives them an incarnation.

use serde::{Deserialize, Serialize};

/// The `format` value of every record file.
pub(crate) const FORMAT: &str = "nsauth-file-record";

/// One record file. Only `version` and `incarnation` are readable without the key.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub format: String,
    pub version: u64,
    pub sealed: String,
    /// Absent in files written by nsauth before incarnations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
}

impl Envelope {
    /// Wraps a sealed record at `version` of `incarnation`.
    pub fn new(incarnation: String, version: u64, sealed: String) -> Self {
        Self {
            format: FORMAT.into(),
            version,
            sealed,
            incarnation: Some(incarnation),
        }
    }

    /// A new random incarnation, for a create (or the first write to an old file).
    pub fn new_incarnation() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// The version handed out for this file: `INCARNATION.N`, or `N` for an old file.
    pub fn store_version(&self) -> String {
        match &self.incarnation {
            Some(inc) => format!("{inc}.{}", self.version),
            None => self.version.to_string(),
        }
    }

    /// The file contents, with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("envelopes serialise");
        out.push(b'\n');
        out
    }

    /// Parses file contents. The error says what is wrong without echoing the contents.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "it is not an nsauth record file ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        if env.format != FORMAT {
            return Err(format!(
                "it is not an nsauth record file (format is not {FORMAT:?})"
            ));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let e = Envelope::new("abc123".into(), 7, "nsauth-sealed-v1:abcd:AAAA".into());
        let bytes = e.to_bytes();
        assert!(bytes.starts_with(br#"{"format":"nsauth-file-record","version":7,"sealed":"#));
        assert!(bytes.ends_with(b",\"incarnation\":\"abc123\"}\n"));
        let back = Envelope::parse(&bytes).unwrap();
        assert_eq!(
            (back.version, back.sealed.as_str()),
            (7, "nsauth-sealed-v1:abcd:AAAA")
        );
        assert_eq!(back.store_version(), "abc123.7");
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"format":"other","version":1,"sealed":"x"}"#,
            br#"{"format":"nsauth-file-record","version":-1,"sealed":"SECRET"}"#,
        ] {
            let err = Envelope::parse(bad).unwrap_err();
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn an_old_file_without_incarnation_has_a_plain_version() {
        let old = br#"{"format":"nsauth-file-record","version":3,"sealed":"nsauth-sealed-v1:x"}"#;
        let env = Envelope::parse(old).unwrap();
        assert_eq!(env.incarnation, None);
        assert_eq!(env.store_version(), "3");
        // Two creates never share an incarnation.
        assert_ne!(Envelope::new_incarnation(), Envelope::new_incarnation());
    }
}
