//! The on-disk envelope: `{"format":"nsauth-file-record","version":N,"sealed":"…"}`.

use serde::{Deserialize, Serialize};

/// The `format` value of every record file.
pub(crate) const FORMAT: &str = "nsauth-file-record";

/// One record file. Only `version` is readable without the key.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub format: String,
    pub version: u64,
    pub sealed: String,
}

impl Envelope {
    /// Wraps a sealed record at `version`.
    pub fn new(version: u64, sealed: String) -> Self {
        Self {
            format: FORMAT.into(),
            version,
            sealed,
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
        let e = Envelope::new(7, "nsauth-sealed-v1:abcd:AAAA".into());
        let bytes = e.to_bytes();
        assert!(bytes.starts_with(br#"{"format":"nsauth-file-record","version":7,"sealed":"#));
        let back = Envelope::parse(&bytes).unwrap();
        assert_eq!(
            (back.version, back.sealed.as_str()),
            (7, "nsauth-sealed-v1:abcd:AAAA")
        );
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
}
