//! The broker: hands out access tokens that stay valid for a requested time, refreshing (or
//! minting, for client credentials) when needed — single-flight across processes and hosts.
//!
//! Single flight uses nothing but the store's compare-and-swap: the operation that must
//! refresh first writes a [`Lease`](crate::store::Lease) into the record. Others see the lease, poll the store with
//! growing, jittered pauses, never shorter than twice their last read took (`broker/wait.rs`),
//! and reuse the winner's token. How a waiter decides that a lease is
//! dead (by its own monotonic clock, never by comparing wall clocks across hosts) and how the
//! holder renews it is in `broker/lease.rs`. A failed refresh is written to the record so that
//! waiters report it instead of each hammering NetSuite in turn.
//!
//! Refreshed tokens go to the recovery journal (if the broker has one) before the store, and
//! leave it once the store holds them (`broker/recovery.rs`, `journal.rs`).
//!
//! Every call ends within [`Broker::call_limit`]: waiting (store calls included) within
//! `wait_limit`, then one refresh within the HTTP deadline, then saving within `store_timeout`.
//! Every store call is cut off at `store_timeout`.

mod lease;
mod local;
mod recovery;
mod wait;

use crate::error::Error;
use crate::flows;
use crate::http::Http;
use crate::journal::Journal;
use crate::profile::{GrantKind, ProfileName};
use crate::store::{
    load_existing, within, FailureKind, Precondition, Record, RefreshFailure, StoreError,
    TokenStore, Version, Versioned,
};
use crate::token::TokenSet;
use recovery::Recovered;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The wall clock the broker reads (injectable, so tests can give one broker another clock).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(Arc::new(OffsetDateTime::now_utc))
    }

    /// The system clock shifted by `offset` (a host whose clock is off).
    pub fn offset(offset: time::Duration) -> Self {
        Clock(Arc::new(move || OffsetDateTime::now_utc() + offset))
    }

    /// Now, by this clock.
    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Broker policy. [`Broker::new`] raises `lease_ttl` to at least the HTTP deadline plus
/// `store_timeout` (a holder must be able to refresh and save within its lease even when no
/// renewal gets through), and `wait_limit` to at least twice the lease time.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// How long a refresh lease lasts without renewal.
    pub lease_ttl: Duration,
    /// The first pause of a waiter; later pauses grow (×1.6, jittered) up to `max_poll_interval`.
    /// No pause is shorter than twice the waiter's last store read (up to the cap): a slow
    /// store is a busy one.
    pub poll_interval: Duration,
    /// The longest pause of a waiter.
    pub max_poll_interval: Duration,
    /// How long a caller waits for another process's refresh before giving up.
    pub wait_limit: Duration,
    /// How long one store call may take; saving refreshed tokens that takes longer sends them
    /// to the recovery journal.
    pub store_timeout: Duration,
    /// The wall clock (token lifetimes, lease stamps).
    pub clock: Clock,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let lease_ttl = Duration::from_secs(40);
        Self {
            lease_ttl,
            poll_interval: Duration::from_millis(40),
            max_poll_interval: Duration::from_secs(1),
            wait_limit: lease_ttl * 2 + Duration::from_secs(5),
            store_timeout: Duration::from_secs(10),
            clock: Clock::system(),
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
    journal: Option<Journal>,
}

impl Broker {
    /// A broker over `store`; see [`BrokerConfig`] for the limits it enforces.
    pub fn new(store: Arc<dyn TokenStore>, http: Http, mut cfg: BrokerConfig) -> Self {
        let floor = http.config().deadline + cfg.store_timeout;
        if cfg.lease_ttl < floor {
            tracing::debug!(asked = ?cfg.lease_ttl, used = ?floor, "lease time raised to the HTTP deadline plus the store timeout");
            cfg.lease_ttl = floor;
        }
        cfg.wait_limit = cfg.wait_limit.max(cfg.lease_ttl * 2);
        Self {
            store,
            http,
            cfg,
            journal: None,
        }
    }

    /// Keeps refreshed tokens in `journal` until the store holds them, and writes pending
    /// recoveries to the store before anything else.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The policy in force (after [`Broker::new`]'s adjustments).
    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    /// The longest any call of this broker takes: waiting, one refresh, saving, plus a margin
    /// for the journal's local writes.
    pub fn call_limit(&self) -> Duration {
        self.cfg.wait_limit
            + self.http.config().deadline
            + Duration::from_secs(1)
            + self.cfg.store_timeout * 2
            + Duration::from_secs(1)
    }

    /// `true` when refreshed tokens for `name` wait in the journal for the store.
    pub fn recovery_pending(&self, name: &ProfileName) -> bool {
        self.journal
            .as_ref()
            .is_some_and(|j| j.has(&self.store.describe(), name))
    }

    /// The journal, if any.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
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

    /// The deadline of one store call made before `limit`.
    fn store_deadline(&self, limit: Instant) -> Instant {
        limit.min(Instant::now() + self.cfg.store_timeout)
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
        let op = lease::Op::begin();
        let started = self.cfg.clock.now();
        let wait_until = Instant::now() + self.cfg.wait_limit;
        let mut tried: HashSet<PathBuf> = HashSet::new();
        if let Recovered::Failed(e, usable) = self.recover(name, wait_until, &mut tried).await {
            // The store cannot take the journal's tokens now: hand out the journal's token
            // (checked against the record's grant) if it is good enough, else the error.
            let now = self.cfg.clock.now();
            return match usable.filter(|t| !force && t.access_valid_for(now, min_ttl)) {
                Some(t) => {
                    tracing::warn!(profile = %name, error = %e, "store unavailable; using the token kept in the recovery journal");
                    Ok((t, Outcome::Cached))
                }
                None => Err(e),
            };
        }
        let mut watch = lease::LeaseWatch::default();
        let mut pause = wait::WaitSchedule::new(self.cfg.poll_interval, self.cfg.max_poll_interval);
        // What the record held when this call first read it: "refreshed since" and "failed
        // since" are judged by change, not by comparing timestamps written by other hosts.
        let mut first: Option<(Option<String>, Option<RefreshFailure>)> = None;
        let mut waited = false;
        // Processes of this machine meet on a lock file first (`broker/local.rs`).
        let lock = self
            .journal
            .as_ref()
            .map(|j| local::lock_path(j.dir(), &self.store.describe(), name));
        let local_started = Instant::now();
        // Waiting on the lock needs no store reads: the holder releases it once the tokens
        // are saved (or it fails, or dies). Only a holder hung for the lease time is bypassed.
        let local_left = || self.cfg.lease_ttl.saturating_sub(local_started.elapsed());
        // A refresh already running on this machine: read the store once it is saved, not
        // before as well (in a storm, most processes start after the winner took the lock).
        // Bounded (a NetSuite refresh usually answers well within it), so that a hung holder
        // only briefly delays a caller whose cached token would do.
        if let Some(p) = &lock {
            local::wait_while_held(p, local::BEFORE_FIRST_READ, wait_until).await;
        }
        loop {
            if Instant::now() >= wait_until {
                return Err(Error::Store(StoreError::Unavailable {
                    message: format!(
                        "gave up on profile {name} after {:.0?}: another process held the refresh lease or the store kept refusing; try again later",
                        self.cfg.wait_limit
                    ),
                    retryable: true,
                }));
            }
            let read_started = Instant::now();
            let Versioned { record, version } = within(
                self.store_deadline(wait_until),
                load_existing(self.store.as_ref(), name),
            )
            .await?;
            pause.read_took(read_started.elapsed());
            let now = self.cfg.clock.now();
            let access_fp = record.tokens.as_ref().map(|t| t.access_token.fingerprint());
            let (first_fp, first_failure) =
                first.get_or_insert_with(|| (access_fp.clone(), record.last_failure.clone()));
            let changed = *first_fp != access_fp;
            if let Some(t) = &record.tokens {
                // A token that appeared while we waited on a lease was just obtained by its
                // holder: take it even if our clock gives it less life than asked for (the
                // holder's host may have another clock; refreshing again would not help).
                // A token obtained since this call started (by this host's clock: a hint
                // only, a skewed refresher makes it hand out a shorter-lived token, never
                // a second refresh) is taken for the same reason. `--force` trusts only
                // an observed change.
                let obtained_since = t.obtained_at >= started && t.access_expires_at > now;
                let good_enough = t.access_valid_for(now, min_ttl)
                    || (waited && changed)
                    || (!force && obtained_since);
                if (!force || changed) && good_enough {
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
                if waited && Some(f) != first_failure.as_ref() {
                    return Err(failure_error(f));
                }
            }
            check_can_refresh(name, &record, now)?;
            let live = record.lease.as_ref().is_some_and(|l| {
                watch.is_live(l, &op.id, self.cfg.lease_ttl, self.cfg.max_poll_interval)
            });
            // Tokens a process of this machine kept in the journal (perhaps the lease holder,
            // which then exited) go first; each entry is tried once per call.
            if self.has_untried(name, &tried) {
                match self.recover(name, wait_until, &mut tried).await {
                    Recovered::Failed(e, _) => return Err(e),
                    Recovered::Applied => continue,
                    Recovered::Nothing => {}
                }
            }
            // A holder hung with the lock is bypassed once its lease is judged dead, or after
            // the lease time without a lease in the store.
            let lock = lock.as_deref().filter(|_| {
                (live || record.lease.is_none()) && local_started.elapsed() < self.cfg.lease_ttl
            });
            if live {
                waited = true;
                let local = match lock {
                    Some(p) => local::wait_while_held(p, local_left(), wait_until).await,
                    None => local::Waited::Free,
                };
                if local == local::Waited::Free {
                    self.pause_for_change(name, &version, &mut pause, wait_until)
                        .await;
                }
                continue;
            }
            let _local_hold = match lock.map(local::try_take) {
                Some(local::Try::Taken(held)) => Some(held),
                Some(local::Try::Busy) => {
                    // Another process of this machine is taking the lease: wait for it.
                    waited = true;
                    if let Some(p) = lock {
                        local::wait_while_held(p, local_left(), wait_until).await;
                    }
                    continue;
                }
                Some(local::Try::Unsupported) | None => None,
            };
            // Take the lease.
            let mut leased = record.clone();
            leased.lease = Some(lease::lease_for(&op.id, now, self.cfg.lease_ttl));
            leased.touch();
            let put = within(
                self.store_deadline(wait_until),
                self.store.put(name, &leased, Precondition::Match(version)),
            )
            .await;
            let lease_version = match put {
                Ok(v) => v,
                Err(e @ StoreError::Conflict(_))
                | Err(
                    e @ StoreError::Unavailable {
                        retryable: true, ..
                    },
                ) => {
                    tracing::debug!(profile = %name, error = %e, "lease not taken; reading again");
                    self.pause(&mut pause, wait_until).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tracing::debug!(profile = %name, "took the refresh lease");
            let (result, lease_version) = self
                .refresh_under_lease(name, &leased, lease_version, &op.id)
                .await;
            return match result {
                Ok(tokens) => {
                    self.finish(name, leased, lease_version, tokens, &op.id)
                        .await
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

    fn has_untried(&self, name: &ProfileName, tried: &HashSet<PathBuf>) -> bool {
        self.journal.as_ref().is_some_and(|j| {
            j.pending(&self.store.describe(), name)
                .iter()
                .any(|p| !tried.contains(p))
        })
    }

    /// Sleeps the next waiter pause, never past `limit`.
    async fn pause(&self, pause: &mut wait::WaitSchedule, limit: Instant) {
        let d = pause.next_delay();
        tokio::time::sleep_until((Instant::now() + d).min(limit).into()).await;
    }

    /// Waits for the lease holder: on a store that announces changes, until the record
    /// changes (or the longest pause passes, to judge the lease again); elsewhere, a pause.
    async fn pause_for_change(
        &self,
        name: &ProfileName,
        seen: &Version,
        pause: &mut wait::WaitSchedule,
        limit: Instant,
    ) {
        let most = self
            .cfg
            .max_poll_interval
            .min(limit.saturating_duration_since(Instant::now()));
        if !self.store.wait_for_change(name, seen, most).await {
            self.pause(pause, limit).await;
        }
    }

    /// Calls NetSuite while renewing the lease every third of its time. Returns the result and
    /// the record's version after the last renewal that landed.
    async fn refresh_under_lease(
        &self,
        name: &ProfileName,
        leased: &Record,
        version: Version,
        me: &str,
    ) -> (Result<TokenSet, Error>, Version) {
        let deadline = self.http.config().deadline + Duration::from_secs(1);
        let call = async {
            let fut = async {
                match leased.profile.grant {
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
                }
            };
            tokio::time::timeout(deadline, fut)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Unreachable(format!(
                        "NetSuite did not answer the token request within {deadline:.0?}"
                    )))
                })
        };
        let version = std::sync::Mutex::new(version);
        let renew = async {
            let every = self.cfg.lease_ttl / 3;
            let mut record = leased.clone();
            loop {
                tokio::time::sleep(every).await;
                record.lease = Some(lease::lease_for(
                    me,
                    self.cfg.clock.now(),
                    self.cfg.lease_ttl,
                ));
                record.touch();
                let current = version.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let put = within(
                    Instant::now() + self.cfg.store_timeout,
                    self.store.put(name, &record, Precondition::Match(current)),
                )
                .await;
                match put {
                    Ok(v) => *version.lock().unwrap_or_else(|e| e.into_inner()) = v,
                    Err(e) => {
                        // The lease still has at least two thirds of its time; a waiter that
                        // takes over after that finds our tokens saved or journaled.
                        tracing::debug!(profile = %name, error = %e, "could not renew the refresh lease");
                    }
                }
            }
        };
        let result = tokio::select! {
            r = call => r,
            _ = renew => unreachable!("the renewal loop never ends"),
        };
        (
            result,
            version.into_inner().unwrap_or_else(|e| e.into_inner()),
        )
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
            at: self.cfg.clock.now(),
            kind: err.kind(),
            message: err.to_string(),
        });
        record.touch();
        let put = within(
            Instant::now() + self.cfg.store_timeout,
            self.store.put(name, &record, Precondition::Match(version)),
        )
        .await;
        if let Err(e) = put {
            tracing::warn!(profile = %name, error = %e, "could not release the refresh lease; waiters will take it over after the lease time");
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
    match f.kind {
        FailureKind::Invalid => Error::Invalid(msg),
        FailureKind::LoginNeeded => Error::LoginNeeded(msg),
        FailureKind::Store => Error::Store(StoreError::Unavailable {
            message: msg,
            retryable: false,
        }),
        FailureKind::Unreachable => Error::Unreachable(msg),
        FailureKind::Rejected => Error::Rejected(msg),
        FailureKind::Other => Error::Other(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiter reports the failure the refreshing process recorded as an error of the same
    /// kind, so both exit alike.
    #[test]
    fn a_recorded_failure_comes_back_as_the_same_kind() {
        for kind in FailureKind::ALL {
            let recorded = RefreshFailure {
                at: OffsetDateTime::UNIX_EPOCH,
                kind,
                message: "invalid_grant".into(),
            };
            let err = failure_error(&recorded);
            assert_eq!(err.kind(), kind, "{err}");
            assert!(
                err.to_string().contains("invalid_grant (reported by"),
                "{err}"
            );
        }
    }
}
