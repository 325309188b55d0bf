//! [`VaultStore`]: the [`TokenStore`] implementation over KV v2.

use crate::client::Client;
use crate::errors::{self, Op};
use crate::kv::{json_shape, Envelope, Metadata};
use crate::settings::VaultSettings;
use crate::uri;
use async_trait::async_trait;
use nsauth_store::decode_record;
use nsauth_store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroize;

use crate::delete::TOMBSTONE_FIELD;

/// What the current version of a profile's secret holds.
enum Current {
    /// No secret, or its current version was deleted or destroyed.
    Absent,
    /// The tombstone of a delete (at this KV version) whose destruction did not finish.
    Tombstone(u64),
    /// A record.
    Record(Box<Versioned>),
}

/// The field of the KV secret that holds the record JSON.
const RECORD_FIELD: &str = "record";
/// Custom-metadata keys are `nsauth_v{N}`; this many recent versions keep theirs.
const WRITERS_KEPT: u64 = 20;
/// Vault limits custom-metadata values to 512 bytes.
const MAX_WRITER_LEN: usize = 500;

/// A token store in a Vault or OpenBao KV v2 mount: one secret per profile under a prefix.
///
/// Every handle has its own HTTP client and its own token; handles in different processes
/// coordinate through KV v2's check-and-set. Cheap to share behind an `Arc`.
pub struct VaultStore {
    pub(crate) client: Client,
}

impl fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultStore")
            .field("addr", &self.client.shown_addr)
            .field("mount", &self.client.mount)
            .field("prefix", &self.client.prefix_joined)
            .field("namespace", &self.client.namespace)
            .field("auth", &self.client.auth.kind())
            .finish()
    }
}

/// One version of a profile's secret, from the KV v2 metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The KV version number (what [`Version`] holds, as a string).
    pub version: u64,
    /// When Vault stored it (RFC 3339, as Vault reports it).
    pub created_time: String,
    /// `user@host at TIME` of the nsauth process that wrote it, when recorded.
    pub written_by: Option<String>,
    /// Soft-deleted or destroyed.
    pub deleted: bool,
}

impl VaultStore {
    /// Opens the store named by `vault://HOST:PORT/MOUNT/PREFIX`, `vault+http://…` or
    /// `vault:///MOUNT/PREFIX`, with [`VaultSettings::from_env`]. Does no network I/O:
    /// authentication happens on first use.
    pub fn from_uri(uri: &str) -> Result<VaultStore, StoreError> {
        Self::from_uri_with(uri, &VaultSettings::from_env()?)
    }

    /// Like [`from_uri`](Self::from_uri), with explicit settings instead of the environment.
    pub fn from_uri_with(uri: &str, settings: &VaultSettings) -> Result<VaultStore, StoreError> {
        let parsed = uri::parse(uri, settings.addr.as_deref()).map_err(StoreError::Config)?;
        Ok(VaultStore {
            client: Client::new(parsed, settings)?,
        })
    }

    /// The Vault address, e.g. `https://vault.example.com:8200`.
    pub fn addr(&self) -> &str {
        &self.client.shown_addr
    }

    /// The KV v2 mount.
    pub fn mount(&self) -> &str {
        &self.client.mount
    }

    /// The prefix under the mount, e.g. `nsauth` or `nsauth/team-a`.
    pub fn prefix(&self) -> &str {
        &self.client.prefix_joined
    }

    /// How this store authenticates: `token`, `token-file`, `approle`, `jwt` or
    /// `kubernetes`.
    pub fn auth_method(&self) -> &'static str {
        self.client.auth.kind()
    }

    /// The versions Vault keeps of a profile, oldest first, with the nsauth process that
    /// wrote each (from the custom metadata). Empty when the profile never existed; after a
    /// delete, its versions (and the delete's tombstone) are listed as `deleted`, their data
    /// destroyed.
    pub async fn history(&self, name: &ProfileName) -> Result<Vec<VersionInfo>, StoreError> {
        let Some(meta) = self.read_metadata(name).await? else {
            return Ok(Vec::new());
        };
        let custom = meta.custom_metadata.unwrap_or_default();
        let mut out: Vec<VersionInfo> = meta
            .versions
            .iter()
            .filter_map(|(v, info)| {
                let version: u64 = v.parse().ok()?;
                Some(VersionInfo {
                    version,
                    created_time: info.created_time.clone(),
                    written_by: custom.get(&writer_key(version)).cloned(),
                    deleted: info.is_deleted(),
                })
            })
            .collect();
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    fn corrupt_answer(
        &self,
        name: &ProfileName,
        version: u64,
        e: &serde_json::Error,
    ) -> StoreError {
        errors::corrupt(
            &self.client.target(),
            name.as_str(),
            version,
            format!(
                "Vault's answer is not the expected JSON ({})",
                json_shape(e)
            ),
        )
    }

    /// `GET MOUNT/metadata/PREFIX/NAME`; `None` when there is no such secret.
    pub(crate) async fn read_metadata(
        &self,
        name: &ProfileName,
    ) -> Result<Option<Metadata>, StoreError> {
        let url = self.client.kv_url("metadata", Some(name.as_str()));
        let answer = self
            .client
            .kv(Op::ReadMetadata, Method::GET, url, None)
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => serde_json::from_slice::<Envelope<Metadata>>(&answer.body)
                .map(|e| Some(e.data))
                .map_err(|e| self.corrupt_answer(name, 0, &e)),
            s => Err(errors::status(
                Op::ReadMetadata,
                s,
                &answer.body,
                &self.client.target(),
            )),
        }
    }

    /// Writes the record with `options.cas = cas`; `Ok(None)` on a check-and-set mismatch.
    async fn write(
        &self,
        name: &ProfileName,
        record: &Record,
        cas: u64,
    ) -> Result<Option<u64>, StoreError> {
        let mut json = serde_json::to_string(record).expect("records serialise");
        let data = serde_json::json!({ RECORD_FIELD: &json });
        json.zeroize();
        self.write_data(name, data, cas).await
    }

    /// Writes `data` as the secret's next version with `options.cas = cas`; `Ok(None)` on a
    /// check-and-set mismatch.
    pub(crate) async fn write_data(
        &self,
        name: &ProfileName,
        data: serde_json::Value,
        cas: u64,
    ) -> Result<Option<u64>, StoreError> {
        let body = serde_json::json!({
            "options": { "cas": cas },
            "data": data,
        });
        let url = self.client.kv_url("data", Some(name.as_str()));
        let answer = self
            .client
            .kv(Op::Write, Method::POST, url, Some(body))
            .await?;
        if errors::is_cas_mismatch(answer.status, &answer.body) {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(errors::status(
                Op::Write,
                answer.status,
                &answer.body,
                &self.client.target(),
            ));
        }
        #[derive(Deserialize)]
        struct Written {
            version: u64,
        }
        serde_json::from_slice::<Envelope<Written>>(&answer.body)
            .map(|e| Some(e.data.version))
            .map_err(|e| StoreError::Backend {
                store: "vault",
                source: format!(
                    "Vault accepted the write but its answer has no version ({}); is \"{}\" a KV version 2 mount?",
                    json_shape(&e),
                    self.client.mount
                )
                .into(),
            })
    }

    /// Reads the current version: a record, a delete's tombstone, or nothing.
    async fn read_current(&self, name: &ProfileName) -> Result<Current, StoreError> {
        #[derive(Deserialize)]
        struct Read {
            data: Option<serde_json::Map<String, serde_json::Value>>,
            metadata: ReadMeta,
        }
        #[derive(Deserialize)]
        struct ReadMeta {
            version: u64,
        }
        let url = self.client.kv_url("data", Some(name.as_str()));
        let mut answer = self.client.kv(Op::Read, Method::GET, url, None).await?;
        match answer.status {
            // Absent, or its current version was deleted with `kv delete` / destroyed.
            StatusCode::NOT_FOUND => return Ok(Current::Absent),
            s if s.is_success() => {}
            s => {
                return Err(errors::status(
                    Op::Read,
                    s,
                    &answer.body,
                    &self.client.target(),
                ))
            }
        }
        let parsed = serde_json::from_slice::<Envelope<Read>>(&answer.body);
        answer.body.zeroize();
        let read = parsed.map_err(|e| self.corrupt_answer(name, 0, &e))?.data;
        let version = read.metadata.version;
        let corrupt =
            |why: &str| errors::corrupt(&self.client.target(), name.as_str(), version, why);
        let mut data = read.data.ok_or_else(|| corrupt("the secret has no data"))?;
        if data.contains_key(TOMBSTONE_FIELD) {
            return Ok(Current::Tombstone(version));
        }
        let Some(serde_json::Value::String(mut json)) = data.remove(RECORD_FIELD) else {
            return Err(corrupt(
                "the secret has no \"record\" text field, so nsauth did not write it; \
                 move it out of the nsauth prefix or delete it",
            ));
        };
        let record = decode_record(json.as_bytes());
        json.zeroize();
        let record = record.map_err(|why| corrupt(&why))?;
        Ok(Current::Record(Box::new(Versioned {
            record,
            version: Version(version.to_string()),
        })))
    }

    /// Records which nsauth process wrote `version` in the secret's custom metadata, and
    /// drops the entries of old versions. A failure here does not undo the write, so it
    /// is logged, not returned.
    async fn record_writer(&self, name: &ProfileName, version: u64) {
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        let mut who = format!("{} at {now}", nsauth_store::actor());
        if who.len() > MAX_WRITER_LEN {
            let mut cut = MAX_WRITER_LEN;
            while !who.is_char_boundary(cut) {
                cut -= 1;
            }
            who.truncate(cut);
        }
        let mut custom = serde_json::Map::new();
        custom.insert(writer_key(version), who.into());
        // Drop a window of old entries, so one failed update never leaves one behind for good.
        let newest_dropped = version.saturating_sub(WRITERS_KEPT);
        for old in newest_dropped.saturating_sub(7).max(1)..=newest_dropped {
            custom.insert(writer_key(old), serde_json::Value::Null);
        }
        let body = serde_json::json!({ "custom_metadata": custom });
        let url = self.client.kv_url("metadata", Some(name.as_str()));
        let result = match self
            .client
            .kv(Op::PatchMetadata, Method::PATCH, url, Some(body))
            .await
        {
            Ok(a) if a.status.is_success() => Ok(()),
            Ok(a) => Err(errors::status(
                Op::PatchMetadata,
                a.status,
                &a.body,
                &self.client.target(),
            )),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(profile = name.as_str(), version, error = %e, "the write succeeded, but its writer was not recorded in Vault's custom metadata");
        }
    }
}

/// `nsauth_v{N}`.
fn writer_key(version: u64) -> String {
    format!("nsauth_v{version}")
}

#[async_trait]
impl TokenStore for VaultStore {
    fn describe(&self) -> String {
        let (scheme, rest) = match self.client.shown_addr.split_once("://") {
            Some(("http", rest)) => ("vault+http", rest),
            Some((_, rest)) => ("vault", rest),
            None => ("vault", self.client.shown_addr.as_str()),
        };
        format!(
            "{scheme}://{rest}/{}/{}",
            self.client.mount, self.client.prefix_joined
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::REMOTE_VERSIONED
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        Ok(match self.read_current(name).await? {
            Current::Record(versioned) => Some(*versioned),
            Current::Absent | Current::Tombstone(_) => None,
        })
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let conflict = || StoreError::Conflict(name.to_string());
        let cas = match &condition {
            Precondition::Create => 0,
            // Versions this store hands out are positive integers; anything else cannot match.
            Precondition::Match(v) => match v.0.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => return Err(conflict()),
            },
        };
        let mut written = self.write(name, record, cas).await?;
        if written.is_none() && condition == Precondition::Create {
            // A secret whose current version was deleted with `kv delete` (or destroyed)
            // reads as absent, so create-only may replace it, still under check-and-set.
            // So may it replace the tombstone of a delete that could not destroy it.
            if let Some(meta) = self.read_metadata(name).await? {
                if !meta.current_is_live() {
                    written = self.write(name, record, meta.current_version).await?;
                } else {
                    match self.read_current(name).await {
                        Ok(Current::Tombstone(at)) => {
                            written = self.write(name, record, at).await?;
                        }
                        // A record (or a secret that is not one) is there: a conflict.
                        Ok(_) | Err(StoreError::Corrupt { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let version = written.ok_or_else(conflict)?;
        self.record_writer(name, version).await;
        Ok(Version(version.to_string()))
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        self.delete_profile(name, version).await
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        #[derive(Deserialize)]
        struct Keys {
            #[serde(default)]
            keys: Vec<String>,
        }
        let mut url = self.client.kv_url("metadata", None);
        url.set_query(Some("list=true"));
        let answer = self.client.kv(Op::List, Method::GET, url, None).await?;
        let keys = match answer.status {
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if s.is_success() => {
                serde_json::from_slice::<Envelope<Keys>>(&answer.body)
                    .map_err(|e| StoreError::Backend {
                        store: "vault",
                        source: format!(
                            "Vault's list answer is not the expected JSON ({})",
                            json_shape(&e)
                        )
                        .into(),
                    })?
                    .data
                    .keys
            }
            s => {
                return Err(errors::status(
                    Op::List,
                    s,
                    &answer.body,
                    &self.client.target(),
                ))
            }
        };
        let names: Vec<ProfileName> = keys
            .iter()
            // Sub-folders (`team-a/`) are other stores' prefixes, not profiles.
            .filter(|k| !k.ends_with('/'))
            .filter_map(|k| match ProfileName::parse(k) {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::debug!(
                        key = k.as_str(),
                        "skipping a secret whose name is not a profile name"
                    );
                    None
                }
            })
            .collect();
        // A deleted profile keeps its metadata (so that its versions are never reused):
        // only names whose current version is live are profiles.
        let mut live = Vec::with_capacity(names.len());
        for name in names {
            if self
                .read_metadata(&name)
                .await?
                .is_some_and(|m| m.current_is_live())
            {
                live.push(name);
            }
        }
        live.sort();
        Ok(live)
    }
}
