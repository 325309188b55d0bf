//! The messages of protocol 1: requests nsauth writes, replies it accepts, and how a
//! plugin's error kinds become [`StoreError`]s. Unknown fields in replies are ignored.

use nsauth_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this nsauth speaks.
pub const PROTOCOL: u64 = 1;

/// One request line: `{"id":N,"op":…, …}`.
#[derive(Serialize)]
pub(crate) struct Request<'a> {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op<'a>,
}

/// What is asked.
#[derive(Serialize, Clone, Copy)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Op<'a> {
    Hello {
        protocol: u64,
        uri: &'a str,
    },
    Get {
        name: &'a str,
    },
    Put {
        name: &'a str,
        record: &'a str,
        precondition: Condition<'a>,
    },
    Delete {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        precondition: Option<Condition<'a>>,
    },
    List,
}

impl Op<'_> {
    /// The op's name, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Op::Hello { .. } => "hello",
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Delete { .. } => "delete",
            Op::List => "list",
        }
    }

    /// The profile the op is about, if any.
    pub fn name(&self) -> &str {
        match self {
            Op::Get { name } | Op::Put { name, .. } | Op::Delete { name, .. } => name,
            Op::Hello { .. } | Op::List => "",
        }
    }
}

/// `{"create":true}` or `{"match":"<version>"}`.
#[derive(Serialize, Clone, Copy)]
pub(crate) enum Condition<'a> {
    #[serde(rename = "create")]
    Create(bool),
    #[serde(rename = "match")]
    Match(&'a str),
}

/// The capabilities a plugin declares in its `hello` reply; missing ones are `false`.
#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PluginCapabilities {
    /// Writes are atomic compare-and-swap on the version (required).
    #[serde(default)]
    pub compare_and_swap: bool,
    /// The plugin encrypts records itself, so nsauth sends them unsealed.
    #[serde(default)]
    pub encrypts_at_rest: bool,
    /// The backend keeps older versions of a record.
    #[serde(default)]
    pub versioned_history: bool,
}

/// The payload of a `hello` reply.
#[derive(Deserialize)]
pub(crate) struct Hello {
    pub protocol: u64,
    #[serde(default)]
    pub capabilities: PluginCapabilities,
}

/// The payload of a `get` reply for a present record.
#[derive(Deserialize)]
pub(crate) struct Got {
    pub record: String,
    pub version: String,
}

/// The payload of a `put` reply.
#[derive(Deserialize)]
pub(crate) struct Put {
    pub version: String,
}

/// The payload of a `list` reply.
#[derive(Deserialize)]
pub(crate) struct Listed {
    pub names: Vec<String>,
}

/// A reply that answered the request: its `ok` payload, or the plugin's error.
#[derive(Debug)]
pub(crate) enum Reply {
    Ok(Value),
    Error(PluginError),
}

/// `{"kind":…,"message":…,"retryable":…}`.
#[derive(Deserialize, Debug)]
pub(crate) struct PluginError {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
}

/// Why a line is not a reply to request `id`. Never carries the line itself (it may hold a
/// record).
pub(crate) fn parse_reply(line: &[u8], id: u64) -> Result<Reply, String> {
    let mut obj: Map<String, Value> = serde_json::from_slice(line).map_err(|e| {
        format!(
            "wrote a line that is not a JSON object ({:?} error at column {})",
            e.classify(),
            e.column()
        )
    })?;
    match obj.get("id").and_then(Value::as_u64) {
        Some(got) if got == id => {}
        Some(got) => {
            return Err(format!(
                "answered request {got} while nsauth waited for {id}"
            ))
        }
        None => return Err("wrote a reply without a numeric \"id\"".into()),
    }
    if let Some(err) = obj.remove("error") {
        let err: PluginError = serde_json::from_value(err)
            .map_err(|_| "wrote an \"error\" that is not {kind, message, retryable}".to_string())?;
        return Ok(Reply::Error(err));
    }
    match obj.remove("ok") {
        Some(v) => Ok(Reply::Ok(v)),
        None => Err("wrote a reply with neither \"ok\" nor \"error\"".into()),
    }
}

/// Decodes an `ok` payload; the error names what was expected.
pub(crate) fn payload<T: for<'de> Deserialize<'de>>(v: Value, verb: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| {
        format!(
            "answered {verb} with a payload of the wrong shape ({}; see docs/plugins.md)",
            first_line(&e.to_string(), 120)
        )
    })
}

impl PluginError {
    /// The store error for this reply to an op on profile `name` of plugin `exe`.
    pub fn into_store_error(self, exe: &str, name: &str) -> StoreError {
        let message = format!("{exe}: {}", first_line(&self.message, 300));
        match self.kind.as_str() {
            "conflict" => StoreError::Conflict(name.to_owned()),
            "not_found" => StoreError::NotFound(name.to_owned()),
            "unavailable" => StoreError::Unavailable {
                message,
                retryable: self.retryable,
            },
            "denied" => StoreError::Denied(message),
            "corrupt" => StoreError::Corrupt {
                what: format!("for profile {name:?}"),
                why: message,
            },
            "config" => StoreError::Config(message),
            other => StoreError::Unavailable {
                message: format!(
                    "{message} (unknown error kind \"{}\")",
                    crate::uri::shown(other, 40)
                ),
                retryable: false,
            },
        }
    }
}

/// The first line of `s`, control characters replaced, at most `max` characters.
pub(crate) fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default();
    let mut out: String = line
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64, op: Op<'_>) -> String {
        serde_json::to_string(&Request { id, op }).unwrap()
    }

    #[test]
    fn requests_have_the_documented_shape() {
        assert_eq!(
            line(
                1,
                Op::Hello {
                    protocol: 1,
                    uri: "plugin://x/y"
                }
            ),
            r#"{"id":1,"op":"hello","protocol":1,"uri":"plugin://x/y"}"#
        );
        assert_eq!(
            line(2, Op::Get { name: "prod" }),
            r#"{"id":2,"op":"get","name":"prod"}"#
        );
        let put = |c| {
            line(
                3,
                Op::Put {
                    name: "prod",
                    record: "r",
                    precondition: c,
                },
            )
        };
        assert_eq!(
            put(Condition::Create(true)),
            r#"{"id":3,"op":"put","name":"prod","record":"r","precondition":{"create":true}}"#
        );
        assert_eq!(
            put(Condition::Match("v1")),
            r#"{"id":3,"op":"put","name":"prod","record":"r","precondition":{"match":"v1"}}"#
        );
        assert_eq!(
            line(
                4,
                Op::Delete {
                    name: "prod",
                    precondition: None
                }
            ),
            r#"{"id":4,"op":"delete","name":"prod"}"#
        );
        assert_eq!(
            line(
                4,
                Op::Delete {
                    name: "prod",
                    precondition: Some(Condition::Match("v"))
                }
            ),
            r#"{"id":4,"op":"delete","name":"prod","precondition":{"match":"v"}}"#
        );
        assert_eq!(line(5, Op::List), r#"{"id":5,"op":"list"}"#);
    }

    #[test]
    fn replies_ok_null_error_and_garbage() {
        assert!(matches!(
            parse_reply(br#"{"id":2,"ok":null}"#, 2),
            Ok(Reply::Ok(Value::Null))
        ));
        assert!(matches!(
            parse_reply(br#"{"id":2,"ok":{"version":"a"},"extra":[1]}"#, 2),
            Ok(Reply::Ok(_))
        ));
        let e = parse_reply(br#"{"id":7,"error":{"kind":"conflict","message":"m"}}"#, 7);
        assert!(matches!(e, Ok(Reply::Error(PluginError { ref kind, .. })) if kind == "conflict"));
        for (bad, want) in [
            (&br#"{"id":3,"ok":true}"#[..], "waited for 2"),
            (b"{\"ok\":true}", "without a numeric"),
            (b"{\"id\":2}", "neither"),
            (b"SECRET-REFRESH not json", "not a JSON object"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"id":2,"error":"SECRET"}"#, "not {kind"),
        ] {
            let m = parse_reply(bad, 2).unwrap_err();
            assert!(m.contains(want), "{m}");
            assert!(!m.contains("SECRET"), "{m}");
        }
    }

    #[test]
    fn error_kinds_map_to_store_errors() {
        let e = |kind: &str, retryable| {
            PluginError {
                kind: kind.into(),
                message: "line one\nline two\u{1b}".into(),
                retryable,
            }
            .into_store_error("nsauth-store-x", "prod")
        };
        assert!(matches!(e("conflict", false), StoreError::Conflict(n) if n == "prod"));
        assert!(matches!(e("not_found", false), StoreError::NotFound(n) if n == "prod"));
        assert!(e("unavailable", true).is_retryable());
        assert!(!e("unavailable", false).is_retryable());
        assert!(matches!(e("denied", false), StoreError::Denied(_)));
        assert!(matches!(e("corrupt", false), StoreError::Corrupt { .. }));
        assert!(matches!(e("config", false), StoreError::Config(_)));
        let unknown = e("weird", true);
        assert!(!unknown.is_retryable());
        let m = unknown.to_string();
        assert!(
            m.contains("nsauth-store-x: line one") && m.contains("unknown error kind"),
            "{m}"
        );
        assert_eq!(m.lines().count(), 1);
    }
}
