//! The shapes of Vault's KV v2 answers that the store reads.

use serde::Deserialize;
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A serde error described by kind and position only: never by the data, which may be secret.
pub(crate) fn json_shape(e: &serde_json::Error) -> String {
    format!(
        "{:?} at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
}

#[derive(Deserialize)]
pub(crate) struct Metadata {
    pub(crate) current_version: u64,
    #[serde(default)]
    pub(crate) versions: HashMap<String, VersionMeta>,
    #[serde(default)]
    pub(crate) custom_metadata: Option<HashMap<String, String>>,
}

impl Metadata {
    /// Whether the current version can be read (not soft-deleted or destroyed).
    pub(crate) fn current_is_live(&self) -> bool {
        self.versions
            .get(&self.current_version.to_string())
            .is_some_and(|v| !v.is_deleted())
    }
}

#[derive(Deserialize)]
pub(crate) struct VersionMeta {
    #[serde(default)]
    pub(crate) created_time: String,
    #[serde(default)]
    pub(crate) deletion_time: String,
    #[serde(default)]
    pub(crate) destroyed: bool,
}

impl VersionMeta {
    pub(crate) fn is_deleted(&self) -> bool {
        if self.destroyed {
            return true;
        }
        match OffsetDateTime::parse(&self.deletion_time, &Rfc3339) {
            Ok(at) => at <= OffsetDateTime::now_utc(),
            Err(_) => !self.deletion_time.is_empty(),
        }
    }
}
