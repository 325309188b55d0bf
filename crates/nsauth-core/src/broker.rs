//! The broker: hands out access tokens that stay valid for a requested time, refreshing (or
//! minting, for client credentials) when needed — single-flight across processes.
//!
//! Single flight uses nothing but the store's compare-and-swap: the process that must refresh
//! first writes a short [`Lease`] into the record. Others see the lease, poll the store with a
//! deadline and reuse the winner's token. A lease whose holder died expires after
//! [`BrokerConfig::lease_ttl`] and one waiter takes over. A failed refresh is written to the
//! record so that waiters report it instead of each hammering NetSuite in turn.

use crate::error::Error;
use crate::flows;
use crate::http::Http;
use crate::journal::Journal;
use crate::profile::{GrantKind, ProfileName};
use crate::retry::jitter;
use crate::store::{
    load_existing, Lease, Precondition, Record, RefreshFailure, StoreError, TokenStore, Version,
    Versioned,
};
use crate::token::TokenSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Broker policy.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// How long a refresh lease lasts if its holder never releases it.
    pub lease_ttl: Duration,
    /// How often waiters poll the store.
    pub poll_interval: Duration,
    /// How long a caller waits for another process's refresh before giving up.
    pub wait_limit: Duration,
    /// How long saving refreshed tokens may take before they go to the recovery journal.
    pub store_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let lease_ttl = Duration::from_secs(30);
        Self {
            lease_ttl,
            poll_interval: Duration::from_millis(100),
            wait_limit: lease_ttl * 2 + Duration::from_secs(5),
            store_timeout: Duration::from_secs(10),
        }
    }
}

/// How a token was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// From the store, still valid.
    Cached,
    /// This process refreshed (or minted) it.
    Refreshed,
    /// Another process refreshed it while this one waited.
    Waited,
}

/// Hands out fresh tokens from a store.
#[derive(Debug)]
pub struct Broker {
    store: Arc<dyn TokenStore>,
    http: Http,
    cfg: BrokerConfig,
    holder: String,
    journal: Option<Journal>,
}

impl Broker {
    /// A broker over `store`.
    pub fn new(store: Arc<dyn TokenStore>, http: Http, cfg: BrokerConfig) -> Self {
        let holder = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            store,
            http,
            cfg,
            holder,
            journal: None,
        }
    }

    /// Keeps refreshed tokens that cannot be stored in `journal`, and writes pending
    /// recoveries to the store before anything else.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Writes a pending recovery from the journal to the store. Returns the journal's tokens
    /// when the store cannot take them now (the caller may still use them).
    async fn recover(&self, name: &ProfileName) -> Result<(), (Error, Option<TokenSet>)> {
        let Some(j) = &self.journal else {
            return Ok(());
        };
        let desc = self.store.describe();
        if !j.has(&desc, name) {
            return Ok(());
        }
        let tokens = match j.load(&desc, name) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(profile = %name, error = %e, "unreadable recovery journal entry left in place");
                return Ok(());
            }
        };
        let written = crate::store::update(self.store.as_ref(), name, |rec| {
            if rec
                .tokens
                .as_ref()
                .is_none_or(|cur| cur.obtained_at < tokens.obtained_at)
            {
                rec.tokens = Some(tokens.clone());
                rec.last_failure = None;
                rec.meta.refresh_count += 1;
            }
            if rec
                .lease
                .as_ref()
                .is_some_and(|l| l.until <= OffsetDateTime::now_utc())
            {
                rec.lease = None;
            }
            Ok(())
        })
        .await;
        match written {
            Ok(_) => {
                j.remove(&desc, name);
                tracing::warn!(profile = %name, "recovered refreshed tokens from the journal into the store");
                Ok(())
            }
            Err(e) => Err((e, Some(tokens))),
        }
    }

    /// `true` when refreshed tokens for `name` wait in the journal for the store.
    pub fn recovery_pending(&self, name: &ProfileName) -> bool {
        self.journal
            .as_ref()
            .is_some_and(|j| j.has(&self.store.describe(), name))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// The HTTP client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Returns a token set whose access token is valid for at least `min_ttl`.
    pub async fn access_token(
        &self,
        name: &ProfileName,
        min_ttl: Duration,
    ) -> Result<(TokenSet, Outcome), Error> {
        self.obtain(name, min_ttl, false).await
    }

    /// Refreshes now, whatever the current token's lifetime.
    pub async fn force_refresh(&self, name: &ProfileName) -> Result<TokenSet, Error> {
        self.obtain(name, Duration::ZERO, true)
            .await
            .map(|(t, _)| t)
    }

    async fn obtain(
        &self,
        name: &ProfileName,
        min_ttl: Duration,
        force: bool,
    ) -> Result<(TokenSet, Outcome), Error> {
        if min_ttl > Duration::from_secs(3300) {
            return Err(Error::Invalid(
                "--min-ttl cannot exceed 3300 seconds: NetSuite access tokens live 60 minutes"
                    .into(),
            ));
        }
        let min_ttl = time::Duration::try_from(min_ttl).unwrap_or(time::Duration::ZERO);
        let started = OffsetDateTime::now_utc();
        let t0 = Instant::now();
        if let Err((e, journaled)) = self.recover(name).await {
            // The store still cannot take the recovered tokens: hand out the journal's
            // token if it is good enough, else report the store error.
            let now = OffsetDateTime::now_utc();
            return match journaled.filter(|t| !force && t.access_valid_for(now, min_ttl)) {
                Some(t) => {
                    tracing::warn!(profile = %name, error = %e, "store unavailable; using the token kept in the recovery journal");
                    Ok((t, Outcome::Cached))
                }
                None => Err(e),
            };
        }
        let mut waited = false;
        let mut conflicts = 0u32;
        loop {
            let Versioned { record, version } = load_existing(self.store.as_ref(), name).await?;
            let now = OffsetDateTime::now_utc();
            if let Some(t) = &record.tokens {
                let refreshed_since = t.obtained_at >= started;
                // A caller that waited for another process's refresh takes its token even if
                // NetSuite gave it less life than asked for: refreshing again would not help.
                let good_enough = t.access_valid_for(now, min_ttl)
                    || (waited && refreshed_since && t.access_expires_at > now);
                if (!force || refreshed_since) && good_enough {
                    let outcome = if waited {
                        Outcome::Waited
                    } else {
                        Outcome::Cached
                    };
                    return Ok((t.clone(), outcome));
                }
            }
            if let Some(f) = &record.last_failure {
                // Someone refreshed and failed after we started waiting: report it.
                if waited && f.at >= started {
                    return Err(failure_error(f));
                }
            }
            check_can_refresh(name, &record, now)?;
            if let Some(lease) = record
                .lease
                .as_ref()
                .filter(|l| l.until > now && l.holder != self.holder)
            {
                if t0.elapsed() > self.cfg.wait_limit {
                    return Err(Error::Store(StoreError::Unavailable {
                        message: format!(
                            "another process ({}) has held the refresh lease of profile {name} for too long; try again later",
                            lease.holder
                        ),
                        retryable: true,
                    }));
                }
                waited = true;
                tokio::time::sleep(jitter(self.cfg.poll_interval)).await;
                continue;
            }
            // Tokens another run of this machine kept in the journal go first.
            if self.recovery_pending(name) && self.recover(name).await.is_ok() {
                continue;
            }
            // Take the lease.
            let mut leased = record.clone();
            leased.lease = Some(Lease {
                holder: self.holder.clone(),
                until: now + self.cfg.lease_ttl,
            });
            leased.touch();
            let lease_version = match self
                .store
                .put(name, &leased, Precondition::Match(version))
                .await
            {
                Ok(v) => v,
                Err(StoreError::Conflict(_)) => {
                    conflicts += 1;
                    if t0.elapsed() > self.cfg.wait_limit {
                        return Err(Error::Store(StoreError::Conflict(name.to_string())));
                    }
                    tokio::time::sleep(jitter(Duration::from_millis(
                        10 * u64::from(conflicts.min(10)),
                    )))
                    .await;
                    continue;
                }
                Err(e) if e.is_retryable() && t0.elapsed() < self.cfg.wait_limit => {
                    tokio::time::sleep(jitter(self.cfg.poll_interval)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tracing::debug!(profile = %name, "took the refresh lease");
            let result = match leased.profile.grant {
                GrantKind::AuthorizationCode => {
                    let tokens = leased
                        .tokens
                        .as_ref()
                        .expect("checked by check_can_refresh");
                    flows::refresh(&self.http, &leased.profile, tokens).await
                }
                GrantKind::ClientCredentials => {
                    flows::client_credentials(&self.http, &leased.profile).await
                }
            };
            return match result {
                Ok(tokens) => {
                    let used = leased.tokens.as_ref().and_then(|t| t.refresh_token.clone());
                    match self.save(name, leased, lease_version, &tokens, used).await {
                        Ok(()) => Ok((tokens, Outcome::Refreshed)),
                        Err(e) => self.keep_in_journal(name, tokens, e),
                    }
                }
                Err(e) => {
                    let e = match e {
                        Error::LoginNeeded(m)
                            if leased.profile.grant == GrantKind::AuthorizationCode =>
                        {
                            Error::LoginNeeded(format!("{m}; run: nsauth login --profile {name}"))
                        }
                        other => other,
                    };
                    self.release_with_failure(name, leased, lease_version, &e)
                        .await;
                    Err(e)
                }
            };
        }
    }

    /// Writes new tokens and drops the lease. If the record changed meanwhile (the lease
    /// expired and someone else wrote), merge: our tokens win unless a newer set is stored.
    async fn save(
        &self,
        name: &ProfileName,
        mut record: Record,
        mut version: Version,
        tokens: &TokenSet,
        used: Option<crate::secret::RefreshToken>,
    ) -> Result<(), Error> {
        // Bounded: a store that hangs must not hold the new tokens hostage; the caller
        // journals them instead.
        let deadline = Instant::now() + self.cfg.store_timeout;
        let timed = |remaining: Duration| {
            move |_| StoreError::Unavailable {
                message: format!("the store did not answer within {:.0?}", remaining),
                retryable: false,
            }
        };
        for attempt in 0u32.. {
            let keep_theirs = record.tokens.as_ref().is_some_and(|cur| {
                cur.obtained_at > tokens.obtained_at && cur.refresh_token != used
            });
            if !keep_theirs {
                record.tokens = Some(tokens.clone());
            }
            if record
                .lease
                .as_ref()
                .is_some_and(|l| l.holder == self.holder)
            {
                record.lease = None;
            }
            record.last_failure = None;
            record.meta.refresh_count += 1;
            record.touch();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let put = tokio::time::timeout(
                remaining,
                self.store
                    .put(name, &record, Precondition::Match(version.clone())),
            )
            .await
            .map_err(timed(self.cfg.store_timeout))
            .and_then(|r| r);
            match put {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_))
                | Err(StoreError::Unavailable {
                    retryable: true, ..
                }) if Instant::now() < deadline => {
                    tokio::time::sleep(jitter(Duration::from_millis(
                        20 * u64::from(attempt.min(10) + 1),
                    )))
                    .await;
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let fresh =
                        tokio::time::timeout(remaining, load_existing(self.store.as_ref(), name))
                            .await
                            .map_err(timed(self.cfg.store_timeout))
                            .and_then(|r| r)?;
                    record = fresh.record;
                    version = fresh.version;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// NetSuite issued tokens but the store would not take them: keep them in the journal
    /// (a public client's old refresh token is already dead) and hand out the access token.
    fn keep_in_journal(
        &self,
        name: &ProfileName,
        tokens: TokenSet,
        err: Error,
    ) -> Result<(TokenSet, Outcome), Error> {
        let Some(j) = &self.journal else {
            return Err(err);
        };
        match j.save(&self.store.describe(), name, &tokens) {
            Ok(path) => {
                tracing::warn!(profile = %name, error = %err, journal = %path.display(),
                    "refreshed tokens could not be stored; kept in the recovery journal and written to the store on the next run");
                Ok((tokens, Outcome::Refreshed))
            }
            Err(je) => Err(Error::Store(StoreError::Unavailable {
                message: format!("{err}; and the recovery journal failed too: {je}"),
                retryable: false,
            })),
        }
    }

    /// Best effort: release our lease and note the failure for waiters.
    async fn release_with_failure(
        &self,
        name: &ProfileName,
        mut record: Record,
        version: Version,
        err: &Error,
    ) {
        record.lease = None;
        record.last_failure = Some(RefreshFailure {
            at: OffsetDateTime::now_utc(),
            exit_code: err.exit_code(),
            message: err.to_string(),
        });
        record.touch();
        if let Err(e) = self
            .store
            .put(name, &record, Precondition::Match(version))
            .await
        {
            tracing::warn!(profile = %name, error = %e, "could not release the refresh lease; it will expire by itself");
        }
    }
}

fn check_can_refresh(
    name: &ProfileName,
    record: &Record,
    now: OffsetDateTime,
) -> Result<(), Error> {
    if record.profile.grant == GrantKind::ClientCredentials {
        return Ok(());
    }
    if let Some(m) = &record.moved {
        return Err(Error::LoginNeeded(format!(
            "the tokens of profile {name} were moved to {} at {}; use them there, or log in here again: nsauth login --profile {name}",
            m.to,
            crate::token::format_time(m.at)
        )));
    }
    let Some(tokens) = &record.tokens else {
        return Err(Error::LoginNeeded(format!(
            "profile {name} has no tokens yet; run: nsauth login --profile {name}"
        )));
    };
    if tokens.refresh_token.is_none() {
        return Err(Error::LoginNeeded(format!(
            "profile {name} has no refresh token; run: nsauth login --profile {name}"
        )));
    }
    if let Some(end) = tokens.refresh_expires_at.filter(|end| *end <= now) {
        return Err(Error::LoginNeeded(format!(
            "the refresh token of profile {name} expired at {}; run: nsauth login --profile {name}",
            crate::token::format_time(end)
        )));
    }
    Ok(())
}

fn failure_error(f: &RefreshFailure) -> Error {
    let msg = format!("{} (reported by the process that refreshed)", f.message);
    match f.exit_code {
        2 => Error::Invalid(msg),
        3 => Error::LoginNeeded(msg),
        4 => Error::Store(StoreError::Unavailable {
            message: msg,
            retryable: false,
        }),
        5 => Error::Unreachable(msg),
        _ => Error::Rejected(msg),
    }
}
