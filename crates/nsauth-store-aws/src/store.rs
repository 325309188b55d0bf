//! [`AwsStore`]: the [`TokenStore`] implementation.

use crate::config::{self, Settings};
use crate::errors::{self, code};
use crate::identity::{self, Identity};
use crate::{names, uri};
use async_trait::async_trait;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use aws_sdk_secretsmanager::Client;
use nsauth_store::decode_record;
use nsauth_store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use std::fmt;
use std::sync::{Arc, OnceLock};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

/// The stage label of the version readers see.
const CURRENT: &str = "AWSCURRENT";
/// Writers park a new version under this label plus a random suffix until it is current.
pub(crate) const PENDING_LABEL_PREFIX: &str = "nsauth-pending-";
/// The description of every secret nsauth creates; a secret scheduled for deletion is
/// only restored and overwritten when it carries it.
pub(crate) const DESCRIPTION: &str = "nsauth token record (written by nsauth; do not edit)";
/// Secrets Manager's limit on a secret value.
const MAX_SECRET_BYTES: usize = 65_536;

/// A token store in AWS Secrets Manager: one secret per profile, named `PREFIX/PROFILE`.
/// Cheap to share behind an `Arc`; every handle has its own SDK client, built on first use.
pub struct AwsStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) uri: uri::StoreUri,
    settings: Settings,
    identity: OnceLock<Identity>,
    client: OnceCell<Client>,
}

impl fmt::Debug for AwsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsStore")
            .field("uri", &self.describe())
            .field("connected", &self.inner.client.initialized())
            .finish()
    }
}

impl AwsStore {
    /// Parses `aws-sm://PREFIX?region=…&endpoint=…&kms-key-id=…` with the default
    /// [`Settings`] (the standard AWS credential chain). Does no I/O: the AWS configuration
    /// is read, and credentials are looked for, on first use.
    pub fn from_uri(uri: &str) -> Result<AwsStore, StoreError> {
        Self::from_uri_with(uri, Settings::default())
    }

    /// As [`from_uri`](Self::from_uri), with explicit settings.
    pub fn from_uri_with(uri: &str, settings: Settings) -> Result<AwsStore, StoreError> {
        let uri = uri::parse(uri).map_err(StoreError::Config)?;
        Ok(AwsStore {
            inner: Arc::new(Inner {
                uri,
                settings,
                identity: OnceLock::new(),
                client: OnceCell::new(),
            }),
        })
    }

    /// The secret name prefix (without a trailing `/`).
    pub fn prefix(&self) -> &str {
        &self.inner.uri.prefix
    }

    /// The name of the secret that holds `profile`: `PREFIX/PROFILE`, with characters that
    /// secret names do not allow written as `+HEX=` (`ü` → `+fc=`).
    pub fn secret_name(&self, profile: &ProfileName) -> String {
        names::secret_name(self.prefix(), profile)
    }

    /// The region and endpoint this store's requests go to, resolved on first use (from the
    /// URI, the environment and the AWS config files) and then fixed.
    fn identity(&self) -> &Identity {
        self.inner
            .identity
            .get_or_init(|| identity::resolve(&self.inner.uri))
    }

    /// The Secrets Manager client, built on first use: reads the AWS configuration and
    /// finds credentials (within [`Settings::credentials_timeout`]).
    pub async fn client(&self) -> Result<&Client, StoreError> {
        let inner = &self.inner;
        let id = self.identity();
        inner
            .client
            .get_or_try_init(|| config::client(&inner.uri, id, &inner.settings))
            .await
    }

    /// Describes `secret`; `None` when it does not exist.
    pub(crate) async fn describe_secret(
        &self,
        client: &Client,
        secret: &str,
        profile: &str,
    ) -> Result<Option<DescribeSecretOutput>, StoreError> {
        match client.describe_secret().secret_id(secret).send().await {
            Ok(d) => Ok(Some(d)),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(errors::map(e, "DescribeSecret", secret, profile)),
        }
    }

    /// The version holding `AWSCURRENT`; `None` when the secret is missing or scheduled for
    /// deletion (the record does not exist).
    pub(crate) async fn current_version(
        &self,
        client: &Client,
        secret: &str,
        profile: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .describe_secret(client, secret, profile)
            .await?
            .filter(|d| d.deleted_date().is_none())
            .and_then(|d| current_of(&d)))
    }

    /// Creates the secret; see [`revive`](Self::revive) for a name scheduled for deletion.
    pub(crate) async fn create(
        &self,
        client: &Client,
        secret: &str,
        profile: &str,
        body: &str,
    ) -> Result<Version, StoreError> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut request = client
            .create_secret()
            .name(secret)
            .description(DESCRIPTION)
            .secret_string(body)
            .client_request_token(&token);
        if let Some(key) = &self.inner.uri.kms_key_id {
            request = request.kms_key_id(key);
        }
        let err = match request.send().await {
            Ok(out) => return Ok(Version(out.version_id().unwrap_or(&token).to_owned())),
            Err(e) => e,
        };
        // AWS answers InvalidRequest for a name scheduled for deletion; moto answers
        // ResourceExists. Either way the stage map tells which case this is.
        if !matches!(
            code(&err),
            Some("ResourceExistsException" | "InvalidRequestException")
        ) {
            return Err(errors::map(err, "CreateSecret", secret, profile));
        }
        match self.describe_secret(client, secret, profile).await? {
            Some(d) if d.deleted_date().is_some() => {
                self.revive(client, secret, profile, body, &d).await
            }
            Some(d) => match current_of(&d) {
                // A delete that wrote its tombstone but could not delete the secret.
                Some(at) if self.holds_tombstone(client, secret, &at).await => {
                    self.swap(client, secret, profile, body, &at).await
                }
                _ => Err(StoreError::Conflict(profile.to_owned())),
            },
            None => Err(StoreError::Unavailable {
                message: format!(
                    "secret {secret} is still being deleted by AWS Secrets Manager; try again in a few seconds"
                ),
                retryable: true,
            }),
        }
    }

    /// Creates a record whose secret is scheduled for deletion: Secrets Manager keeps the
    /// name for the recovery window, so nsauth restores its own secret and overwrites it
    /// with compare-and-swap on the version it had. A secret nsauth did not write is left
    /// alone.
    async fn revive(
        &self,
        client: &Client,
        secret: &str,
        profile: &str,
        body: &str,
        described: &DescribeSecretOutput,
    ) -> Result<Version, StoreError> {
        if described.description() != Some(DESCRIPTION) {
            return Err(StoreError::Unavailable {
                message: format!(
                    "secret {secret} is scheduled for deletion and was not written by nsauth; restore it (aws secretsmanager restore-secret --secret-id {secret}) or delete it for good (aws secretsmanager delete-secret --force-delete-without-recovery --secret-id {secret}), then try again"
                ),
                retryable: false,
            });
        }
        let Some(previous) = current_of(described) else {
            return Err(errors::backend(format!(
                "secret {secret} is scheduled for deletion and has no AWSCURRENT version; delete it for good (aws secretsmanager delete-secret --force-delete-without-recovery --secret-id {secret})"
            )));
        };
        if let Err(e) = client.restore_secret().secret_id(secret).send().await {
            if code(&e) == Some("InvalidRequestException") {
                return Err(StoreError::Unavailable {
                    message: format!(
                        "secret {secret} is being deleted for good and cannot be restored; try again in a few seconds"
                    ),
                    retryable: true,
                });
            }
            return Err(errors::map(e, "RestoreSecret", secret, profile));
        }
        tracing::debug!(
            secret,
            "restored a secret scheduled for deletion to re-create it"
        );
        self.swap(client, secret, profile, body, &previous).await
    }

    /// Compare-and-swap: writes `body` as a new version parked under a private stage label,
    /// then moves `AWSCURRENT` to it from `expected`. Secrets Manager refuses the move when
    /// `AWSCURRENT` is no longer on `expected`, which is the conflict.
    pub(crate) async fn swap(
        &self,
        client: &Client,
        secret: &str,
        profile: &str,
        body: &str,
        expected: &str,
    ) -> Result<Version, StoreError> {
        let conflict = || StoreError::Conflict(profile.to_owned());
        // Secrets Manager version IDs are 32-64 characters: anything else was never read.
        if !(32..=64).contains(&expected.len()) {
            return Err(conflict());
        }
        // The token makes the SDK's retries idempotent and becomes the new version ID.
        let token = uuid::Uuid::new_v4();
        let version = token.to_string();
        let label = format!("{PENDING_LABEL_PREFIX}{}", token.simple());
        let put = client
            .put_secret_value()
            .secret_id(secret)
            .secret_string(body)
            .client_request_token(&version)
            .version_stages(&label)
            .send()
            .await;
        if let Err(e) = put {
            return match code(&e) {
                Some("ResourceNotFoundException") => Err(conflict()),
                Some("InvalidRequestException")
                    if self
                        .current_version(client, secret, profile)
                        .await?
                        .is_none() =>
                {
                    Err(conflict())
                }
                _ => Err(errors::map(e, "PutSecretValue", secret, profile)),
            };
        }
        let moved = client
            .update_secret_version_stage()
            .secret_id(secret)
            .version_stage(CURRENT)
            .move_to_version_id(&version)
            .remove_from_version_id(expected)
            .send()
            .await;
        let outcome = match moved {
            Ok(_) => Ok(Version(version.clone())),
            // Either another writer moved AWSCURRENT first, or this move happened and its
            // answer was lost (the SDK's retry of it is then refused): the stages decide.
            Err(e) => match self.current_version(client, secret, profile).await {
                Ok(Some(current)) if current == version => Ok(Version(version.clone())),
                Ok(Some(current)) if current == expected => {
                    Err(errors::map(e, "UpdateSecretVersionStage", secret, profile))
                }
                Ok(_) => Err(conflict()),
                Err(_) => Err(errors::map(e, "UpdateSecretVersionStage", secret, profile)),
            },
        };
        // The label only kept the new version from being promoted or pruned; drop it so that
        // labels never pile up (a secret has a limit). A version left without a label is
        // deprecated and pruned by Secrets Manager.
        if let Err(e) = client
            .update_secret_version_stage()
            .secret_id(secret)
            .version_stage(&label)
            .remove_from_version_id(&version)
            .send()
            .await
        {
            tracing::debug!(secret, label, error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "cannot remove the pending stage label");
        }
        outcome
    }
}

/// The version holding `AWSCURRENT`.
fn current_of(d: &DescribeSecretOutput) -> Option<String> {
    d.version_ids_to_stages()?
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
        .map(|(id, _)| id.clone())
}

fn encode(name: &ProfileName, record: &Record) -> Result<Zeroizing<String>, StoreError> {
    let body = Zeroizing::new(
        serde_json::to_string(record)
            .map_err(|e| errors::backend(format!("cannot serialise the record of {name}: {e}")))?,
    );
    if body.len() > MAX_SECRET_BYTES {
        return Err(StoreError::Unavailable {
            message: format!(
                "the record of profile {name} is {} bytes, more than the {MAX_SECRET_BYTES} an AWS secret holds; remove pending logins or use another store",
                body.len()
            ),
            retryable: false,
        });
    }
    Ok(body)
}

#[async_trait]
impl TokenStore for AwsStore {
    /// `aws-sm://PREFIX?region=R&endpoint=URL` with the region and endpoint resolved as the
    /// client uses them, wherever they come from: the canonical identity of the store.
    fn describe(&self) -> String {
        self.identity().describe(&self.inner.uri.prefix)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::REMOTE_VERSIONED
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let client = self.client().await?;
        let secret = self.secret_name(name);
        let sent = client
            .get_secret_value()
            .secret_id(&secret)
            // Explicit: moto answers the version it created last without it.
            .version_stage(CURRENT)
            .send()
            .await;
        let mut out = match sent {
            Ok(out) => out,
            Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) if code(&e) == Some("InvalidRequestException") => {
                // Scheduled for deletion: the record is gone.
                let d = self.describe_secret(client, &secret, name.as_str()).await?;
                if d.is_none_or(|d| d.deleted_date().is_some()) {
                    return Ok(None);
                }
                return Err(errors::map(e, "GetSecretValue", &secret, name.as_str()));
            }
            Err(e) => return Err(errors::map(e, "GetSecretValue", &secret, name.as_str())),
        };
        let corrupt = |why: String| StoreError::Corrupt {
            what: format!("in secret {secret}"),
            why,
        };
        let body = Zeroizing::new(out.secret_string.take().ok_or_else(|| {
            corrupt(
                "it holds binary data, not an nsauth record; move it away from the nsauth prefix"
                    .into(),
            )
        })?);
        let version = out
            .version_id()
            .ok_or_else(|| corrupt("AWS returned it without a version ID".into()))?;
        if crate::delete::is_tombstone(&body) {
            return Ok(None);
        }
        let record = decode_record(body.as_bytes()).map_err(corrupt)?;
        Ok(Some(Versioned {
            record,
            version: Version(version.to_owned()),
        }))
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let body = encode(name, record)?;
        let client = self.client().await?;
        let secret = self.secret_name(name);
        match condition {
            Precondition::Create => self.create(client, &secret, name.as_str(), &body).await,
            Precondition::Match(v) => self.swap(client, &secret, name.as_str(), &body, &v.0).await,
        }
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        self.delete_profile(name, version).await
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        let client = self.client().await?;
        let prefix = self.prefix();
        let filter = Filter::builder()
            .key(FilterNameStringType::Name)
            .values(format!("{prefix}/"))
            .build();
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = client
                .list_secrets()
                .filters(filter.clone())
                .max_results(100)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| errors::map(e, "ListSecrets", &format!("{prefix}/*"), ""))?;
            names.extend(
                page.secret_list()
                    .iter()
                    .filter(|s| s.deleted_date().is_none())
                    .filter_map(|s| names::profile_name(prefix, s.name()?)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}
