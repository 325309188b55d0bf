//! Deleting a profile so that its versions are never reused and its tokens are gone.
//!
//! Deleting the secret's metadata would remove every version, but KV v2 then numbers a
//! re-created secret from 1 again, and a very stale writer holding version 1 would match the
//! new record. So a delete keeps the metadata (the version counter) and instead:
//! 1. destroys the older versions' data (which also proves the token may destroy before
//!    anything changes);
//! 2. writes a tombstone version with check-and-set on the current version, which is the
//!    atomic, conditional delete KV v2 otherwise lacks: a writer landing in between makes it
//!    fail, and a writer holding the deleted version can no longer match;
//! 3. destroys the deleted version and the tombstone, leaving no record data at all.
//!
//! A profile whose current version is deleted or destroyed does not exist. A tombstone left
//! by a delete that failed at step 3 reads as absent too; deleting again clears it.

use crate::errors::{self, Op};
use crate::store::VaultStore;
use nsauth_store::{ProfileName, StoreError, Version};
use reqwest::Method;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The data field of a tombstone; its value says who deleted the profile, and when.
pub(crate) const TOMBSTONE_FIELD: &str = "nsauth_deleted";

/// How often an unconditional delete starts again when writers keep landing in between.
const ATTEMPTS: usize = 5;

impl VaultStore {
    /// [`TokenStore::delete`](nsauth_store::TokenStore::delete) for Vault; see the module docs.
    pub(crate) async fn delete_profile(
        &self,
        name: &ProfileName,
        want: Option<&Version>,
    ) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound(name.to_string());
        for _ in 0..ATTEMPTS {
            let meta = self.read_metadata(name).await?.ok_or_else(not_found)?;
            if !meta.current_is_live() {
                return Err(not_found());
            }
            let current = meta.current_version;
            if want.is_some_and(|w| w.0 != current.to_string()) {
                return Err(StoreError::Conflict(name.to_string()));
            }
            let mut older: Vec<u64> = meta
                .versions
                .iter()
                .filter(|(_, v)| !v.destroyed)
                .filter_map(|(n, _)| n.parse::<u64>().ok())
                .filter(|n| *n != current)
                .collect();
            if older.is_empty() {
                // Version 0 never exists: destroying it changes nothing but still checks
                // that the policy allows destroying, before the record is touched.
                older.push(0);
            }
            self.destroy(name, &older).await?;
            let Some(tombstone) = self.write_data(name, tombstone(), current).await? else {
                if want.is_some() {
                    return Err(StoreError::Conflict(name.to_string()));
                }
                continue;
            };
            return self.destroy(name, &[current, tombstone]).await;
        }
        Err(StoreError::Unavailable {
            message: format!(
                "profile {name} kept being written by other processes while it was being deleted; try again"
            ),
            retryable: true,
        })
    }

    /// `POST MOUNT/destroy/PREFIX/NAME`: removes the data of `versions` for good.
    async fn destroy(&self, name: &ProfileName, versions: &[u64]) -> Result<(), StoreError> {
        let url = self.client.kv_url("destroy", Some(name.as_str()));
        let body = serde_json::json!({ "versions": versions });
        let answer = self
            .client
            .kv(Op::Destroy, Method::POST, url, Some(body))
            .await?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(errors::status(
            Op::Destroy,
            answer.status,
            &answer.body,
            &self.client.target(),
        ))
    }
}

/// The data of a tombstone version: who deleted, and when. No record, no secret.
fn tombstone() -> serde_json::Value {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    serde_json::json!({ TOMBSTONE_FIELD: format!("{} at {now}", nsauth_store::actor()) })
}
