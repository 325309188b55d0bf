//! `nsauth doctor`: checks one profile end to end and says what to fix.
//!
//! Each [`Check`] is `ok`, `warn` or `fail`; a failure carries a fix and its [`FailureKind`]
//! (invalid configuration, login needed, store, NetSuite unreachable). [`outcome`] is how the
//! command ends: success without failures (warnings allowed), else the failure whose exit code
//! (decided in `crate::exit`) is highest.
//!
//! Nothing here uses a token: the network check is an unauthenticated request to the token
//! endpoint, and the store check writes, swaps and deletes a scratch record that holds no
//! secret.

use super::{network, profile};
use crate::exit::Exit;
use nsauth_core::account::AccountId;
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{FailureKind, Precondition, Record, StoreError, TokenStore};
use nsauth_core::Error;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Broken.
    Fail,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name: `store`, `account`, `clock-skew`, ...
    pub check: &'static str,
    /// How it ended.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do (failures and warnings).
    pub fix: Option<String>,
    /// What kind of failure it is (failures only).
    #[serde(skip)]
    pub failure: Option<FailureKind>,
}

impl Check {
    /// A passing check.
    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            message: message.into(),
            fix: None,
            failure: None,
        }
    }

    /// A warning.
    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
            failure: None,
        }
    }

    /// A failure of kind `kind`.
    pub fn fail(
        check: &'static str,
        kind: FailureKind,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check,
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
            failure: Some(kind),
        }
    }

    /// A failure from an error, of the error's kind.
    pub fn from_error(check: &'static str, err: &Error, fix: impl Into<String>) -> Self {
        Self::fail(check, err.kind(), err.to_string(), fix)
    }
}

/// How `nsauth doctor` ends: success when nothing failed, else the worst failure.
pub fn outcome(checks: &[Check]) -> Exit {
    Exit::worst(checks.iter().filter_map(|c| c.failure))
}

/// Runs every check on profile `name`: the store (reachable, create/compare-and-swap/delete),
/// the profile, the credentials, the tokens, and the token endpoint and clock.
pub async fn run(store: &dyn TokenStore, http: &Http, name: &ProfileName) -> Vec<Check> {
    let described = store.describe();
    let loaded = match tokio::time::timeout(STORE_TIMEOUT, store.load(name)).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable {
            message: format!("no answer within {}s", STORE_TIMEOUT.as_secs()),
            retryable: true,
        }),
    };
    let mut checks = Vec::new();
    let record = match loaded {
        Err(e) => {
            checks.push(Check::from_error(
                "store",
                &Error::Store(e),
                format!("make {described} reachable (address, credentials, network) or pass another --store"),
            ));
            return checks;
        }
        Ok(v) => {
            checks.push(Check::ok("store", format!("{described} is reachable")));
            v.map(|v| v.record)
        }
    };
    checks.push(store_round_trip(store).await);
    let Some(record) = record else {
        checks.push(Check::fail(
            "profile",
            FailureKind::Invalid,
            format!("profile {name} is not in {described}"),
            format!("create it: nsauth profile set {name} --account-id ... --client-id ... (or pick another --profile)"),
        ));
        return checks;
    };
    let now = OffsetDateTime::now_utc();
    checks.extend(profile::profile_checks(&record, name, now));
    checks.extend(network::network_checks(http, &record.profile).await);
    checks
}

/// Writes, swaps and deletes a scratch record `nsauth-doctor-<random>` (holding no secret),
/// checking that create-only and compare-and-swap are enforced. The scratch record is always
/// deleted.
pub async fn store_round_trip(store: &dyn TokenStore) -> Check {
    let scratch = ProfileName::parse(&format!(
        "nsauth-doctor-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .expect("a valid name");
    let result = tokio::time::timeout(STORE_TIMEOUT, round_trip_steps(store, &scratch)).await;
    let result =
        result.unwrap_or_else(|_| Err(format!("no answer within {}s", STORE_TIMEOUT.as_secs())));
    match result {
        Ok(()) => {
            if store.capabilities().compare_and_swap {
                Check::ok(
                    "store-round-trip",
                    "create, compare-and-swap and delete work",
                )
            } else {
                Check::warn(
                    "store-round-trip",
                    "writes work, but this store does not declare compare-and-swap",
                    "use a store with compare-and-swap (see: nsauth backends) when several processes refresh the same profile",
                )
            }
        }
        Err(why) => {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), store.delete(&scratch, None)).await;
            Check::fail(
                "store-round-trip",
                FailureKind::Store,
                format!("the scratch record {scratch} could not be written, swapped and deleted: {why}"),
                "give nsauth write and delete access to the store (Vault policy, IAM, file permissions), and check that it keeps versions",
            )
        }
    }
}

async fn round_trip_steps(store: &dyn TokenStore, scratch: &ProfileName) -> Result<(), String> {
    let profile = Profile {
        account_id: AccountId::parse("1234567").expect("valid"),
        client_id: "nsauth-doctor".into(),
        client_secret: None,
        redirect_uri: url::Url::parse("https://127.0.0.1/nsauth-doctor").ok(),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: None,
    };
    let mut rec = Record::new(profile);
    let e = |step: &str, e: StoreError| format!("{step}: {e}");
    let v1 = store
        .put(scratch, &rec, Precondition::Create)
        .await
        .map_err(|x| e("create", x))?;
    match store.put(scratch, &rec, Precondition::Create).await {
        Err(StoreError::Conflict(_)) => {}
        Ok(_) => {
            return Err("a second create-only write succeeded (create-only is not enforced)".into())
        }
        Err(x) => return Err(e("second create", x)),
    }
    let read = store
        .load(scratch)
        .await
        .map_err(|x| e("read back", x))?
        .ok_or("the record written is not found when read back")?;
    if read.record != rec || read.version != v1 {
        return Err("the record read back differs from the one written".into());
    }
    rec.meta.refresh_count = 1;
    let v2 = store
        .put(scratch, &rec, Precondition::Match(v1.clone()))
        .await
        .map_err(|x| e("compare-and-swap", x))?;
    match store.put(scratch, &rec, Precondition::Match(v1)).await {
        Err(StoreError::Conflict(_)) => {}
        Ok(_) => {
            return Err(
                "a write against a stale version succeeded (compare-and-swap is not enforced)"
                    .into(),
            )
        }
        Err(x) => return Err(e("stale compare-and-swap", x)),
    }
    store
        .delete(scratch, Some(&v2))
        .await
        .map_err(|x| e("delete", x))?;
    match store.load(scratch).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err("the record is still there after delete".into()),
        Err(x) => Err(e("read after delete", x)),
    }
}
