//! The storage contract (re-exported from `nsauth-store`) and the read-modify-write helpers
//! core builds on it.
//!
//! Backends implement [`TokenStore`] from the `nsauth-store` crate; everything else nsauth
//! needs (the refresh lease, pending logins, bounded retries) is built on top, once, here.

use crate::profile::ProfileName;
pub use nsauth_store::record::*;
pub use nsauth_store::{
    load_existing, Capabilities, Precondition, StoreError, TokenStore, Version, Versioned,
};

/// How long [`update`] may take in all, store calls and retries included.
pub const UPDATE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Read-modify-write with CAS and bounded retries on conflict (64) and on temporary failures
/// (8), all within [`UPDATE_LIMIT`]. `f` runs on every attempt, on the freshly read record.
pub async fn update<T>(
    store: &dyn TokenStore,
    name: &ProfileName,
    f: impl FnMut(&mut Record) -> Result<T, crate::Error>,
) -> Result<(T, Version), crate::Error> {
    update_until(store, name, std::time::Instant::now() + UPDATE_LIMIT, f).await
}

/// [`update`] that gives up at `deadline`: every store call is cut off there (a hung store is
/// reported as unavailable), and no retry starts after it.
pub async fn update_until<T>(
    store: &dyn TokenStore,
    name: &ProfileName,
    deadline: std::time::Instant,
    mut f: impl FnMut(&mut Record) -> Result<T, crate::Error>,
) -> Result<(T, Version), crate::Error> {
    let mut attempt = 0u32;
    loop {
        let Versioned {
            mut record,
            version,
        } = within(deadline, load_existing(store, name)).await?;
        let out = f(&mut record)?;
        record.touch();
        let put = within(
            deadline,
            store.put(name, &record, Precondition::Match(version)),
        )
        .await;
        let pause = match put {
            Ok(v) => return Ok((out, v)),
            Err(StoreError::Conflict(_)) if attempt < 64 => {
                std::time::Duration::from_millis(5 * u64::from(attempt.min(20) + 1))
            }
            Err(StoreError::Unavailable {
                retryable: true, ..
            }) if attempt < 8 => std::time::Duration::from_millis(50 * u64::from(attempt + 1)),
            Err(e) => return Err(e.into()),
        };
        attempt += 1;
        let pause = crate::retry::jitter(pause);
        if std::time::Instant::now() + pause >= deadline {
            return Err(StoreError::Unavailable {
                message: format!("profile {name} could not be updated in time (the store kept refusing or conflicting)"),
                retryable: true,
            }
            .into());
        }
        tokio::time::sleep(pause).await;
    }
}

/// Runs a store call, reporting it as unavailable (retryable) if it has not answered by
/// `deadline`.
pub async fn within<T>(
    deadline: std::time::Instant,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable {
            message: "the store did not answer in time".into(),
            retryable: true,
        }),
    }
}

/// Marks `record` as having handed its single-use tokens to `to`: the tokens (and any
/// lease) are dropped, and only their fingerprints stay, in the [`Moved`] marker. A moved
/// copy can then neither refresh nor revoke the grant that now lives elsewhere.
pub fn mark_moved(record: &mut Record, to: impl Into<String>, at: time::OffsetDateTime) -> Moved {
    let fingerprints = record
        .tokens
        .take()
        .map(|t| {
            let mut f = vec![t.access_token.fingerprint()];
            f.extend(t.refresh_token.as_ref().map(|r| r.fingerprint()));
            f
        })
        .unwrap_or_default();
    record.lease = None;
    let mark = Moved {
        at,
        to: to.into(),
        fingerprints,
    };
    record.moved = Some(mark.clone());
    mark
}
