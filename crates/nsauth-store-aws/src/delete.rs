//! Deleting a profile so that no writer holding a deleted version can bring it back.
//!
//! Secrets Manager has no conditional delete. So a delete first moves `AWSCURRENT` from the
//! version read to a new tombstone version (the same compare-and-swap as every write: a
//! writer landing in between makes it a conflict), then deletes the secret (with the
//! recovery window, or for good with `force-delete`). A writer still holding the deleted
//! version can then never move `AWSCURRENT` from it, on any server, and a re-create during
//! the recovery window restores the secret and swaps from the tombstone. Version IDs are
//! random UUIDs, so they are never reused anyway.
//!
//! A tombstone left by a delete whose last step failed reads as absent; deleting again, or
//! creating, replaces it.

use crate::errors::{self, code};
use crate::store::AwsStore;
use aws_sdk_secretsmanager::Client;
use nsauth_store::{ProfileName, StoreError, Version};

/// The tombstone's only field; a record never has it.
const TOMBSTONE_FIELD: &str = "nsauth_deleted";

/// How often an unconditional delete starts again when writers keep landing in between.
const ATTEMPTS: usize = 5;

/// Whether a secret value is a delete's tombstone rather than a record.
pub(crate) fn is_tombstone(body: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body)
        .is_ok_and(|m| m.len() == 1 && m.contains_key(TOMBSTONE_FIELD))
}

fn tombstone() -> String {
    serde_json::json!({ TOMBSTONE_FIELD: nsauth_store::actor() }).to_string()
}

impl AwsStore {
    /// [`TokenStore::delete`](nsauth_store::TokenStore::delete) for Secrets Manager; see the
    /// module docs.
    pub(crate) async fn delete_profile(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let secret = self.secret_name(name);
        let profile = name.as_str();
        let not_found = || StoreError::NotFound(name.to_string());
        let mut attempts = 0;
        loop {
            let current = self
                .current_version(client, &secret, profile)
                .await?
                .ok_or_else(not_found)?;
            if version.is_some_and(|v| v.0 != current) {
                return Err(StoreError::Conflict(name.to_string()));
            }
            match self
                .swap(client, &secret, profile, &tombstone(), &current)
                .await
            {
                Ok(_) => break,
                Err(StoreError::Conflict(_)) if version.is_none() && attempts + 1 < ATTEMPTS => {
                    attempts += 1;
                }
                Err(StoreError::Conflict(_)) if version.is_none() => {
                    return Err(StoreError::Unavailable {
                        message: format!(
                            "profile {name} kept being written by other processes while it was being deleted; try again"
                        ),
                        retryable: true,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        let uri = &self.inner.uri;
        let mut request = client.delete_secret().secret_id(&secret);
        request = if uri.force_delete {
            request.force_delete_without_recovery(true)
        } else {
            request.recovery_window_in_days(uri.recovery_window_days)
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    code(&e),
                    Some("ResourceNotFoundException" | "InvalidRequestException")
                ) && self
                    .current_version(client, &secret, profile)
                    .await?
                    .is_none() =>
            {
                Err(not_found())
            }
            Err(e) => Err(errors::map(e, "DeleteSecret", &secret, profile)),
        }
    }

    /// Whether `version` of `secret` holds a tombstone. Any failure to tell is "no": the
    /// caller then reports the conflict it would have reported anyway.
    pub(crate) async fn holds_tombstone(
        &self,
        client: &Client,
        secret: &str,
        version: &str,
    ) -> bool {
        client
            .get_secret_value()
            .secret_id(secret)
            .version_id(version)
            .send()
            .await
            .ok()
            .and_then(|out| out.secret_string().map(is_tombstone))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_is_never_a_record() {
        assert!(is_tombstone(&tombstone()));
        assert!(!is_tombstone(r#"{"schema":1,"nsauth_deleted":"x"}"#));
        assert!(!is_tombstone("not json"));
        assert!(!is_tombstone(r#"{"schema":1}"#));
    }
}
