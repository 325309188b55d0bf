//! Refreshed tokens on their way to the store, through the recovery journal.
//!
//! - Write-ahead: new tokens are journaled before the store write and the entry is removed
//!   once the store holds them, so a process killed (or a future dropped) while saving loses
//!   nothing.
//! - An entry is written into the record only when the record is still the predecessor of
//!   that grant ([`Entry::verdict`]); otherwise it is kept aside (`kept/`) with a warning.
//! - An unreadable entry is quarantined (`quarantine/`) with one warning, never retried.
//! - Recovery clears the lease of the operation that journaled the entry: it got its tokens,
//!   so nobody needs to wait for it.

use super::{Broker, Outcome};
use crate::error::Error;
use crate::journal::{Entry, Verdict};
use crate::profile::ProfileName;
use crate::retry::Backoff;
use crate::store::{load_existing, within, Precondition, Record, StoreError, Version};
use crate::token::TokenSet;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What recovery did.
pub(super) enum Recovered {
    /// Nothing was written to the store (no entry, or none that belongs there).
    Nothing,
    /// At least one entry was written or found already stored.
    Applied,
    /// The store failed; with the journal's tokens when the record showed them to be this
    /// grant's current ones.
    Failed(Error, Option<TokenSet>),
}

/// How saving refreshed tokens ended.
enum Saved {
    /// The store holds them.
    Stored,
    /// The record is no longer the predecessor of these tokens; they were not written.
    NotOurs(Verdict),
}

impl Broker {
    /// Writes the pending journal entries of `name` not in `tried` to the store, oldest first.
    pub(super) async fn recover(
        &self,
        name: &ProfileName,
        limit: Instant,
        tried: &mut HashSet<PathBuf>,
    ) -> Recovered {
        let Some(j) = &self.journal else {
            return Recovered::Nothing;
        };
        let desc = self.store.describe();
        let mut entries = Vec::new();
        for path in j.pending(&desc, name) {
            if !tried.insert(path.clone()) {
                continue;
            }
            match j.read(&path, &desc, name) {
                Ok(Some(e)) => entries.push((path, e)),
                Ok(None) => {} // another process recovered it meanwhile
                Err(e @ StoreError::Corrupt { .. }) => match j.quarantine(&path) {
                    Ok(to) => tracing::warn!(profile = %name, error = %e, moved_to = %to.display(),
                        "unreadable recovery journal entry quarantined; it will not be retried (see nsauth status)"),
                    Err(qe) => tracing::warn!(profile = %name, error = %e, quarantine_error = %qe,
                        "unreadable recovery journal entry could not be moved aside; ignored"),
                },
                Err(e) => {
                    return Recovered::Failed(
                        Error::Store(StoreError::Unavailable {
                            message: format!("{e}; fix that (or move the file out of the journal directory) and try again"),
                            retryable: false,
                        }),
                        None,
                    )
                }
            }
        }
        entries.sort_by_key(|(_, e)| e.tokens.obtained_at);
        let mut outcome = Recovered::Nothing;
        for (path, entry) in entries {
            match self.apply_entry(name, &entry, limit).await {
                Ok(Verdict::Successor) => {
                    j.remove(&path);
                    tracing::warn!(profile = %name, "recovered refreshed tokens from the journal into the store");
                    outcome = Recovered::Applied;
                }
                Ok(Verdict::AlreadyStored) => {
                    j.remove(&path);
                    outcome = Recovered::Applied;
                }
                Ok(v) => {
                    let shown = j
                        .keep_aside(&path)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| path.display().to_string());
                    tracing::warn!(profile = %name, journal = %shown, verdict = ?v,
                        "a recovery journal entry does not belong to this profile's current grant (another client or account, or the record moved on); kept aside, not applied (see nsauth status)");
                }
                Err((e, seen)) => {
                    let usable = matches!(seen, Some(Verdict::Successor | Verdict::AlreadyStored))
                        .then(|| entry.tokens.clone());
                    return Recovered::Failed(e, usable);
                }
            }
        }
        outcome
    }

    /// Writes one entry if the record is its predecessor, and clears its holder's lease.
    /// Returns the verdict; on failure, the error and the last verdict seen.
    async fn apply_entry(
        &self,
        name: &ProfileName,
        entry: &Entry,
        limit: Instant,
    ) -> Result<Verdict, (Error, Option<Verdict>)> {
        let mut pause = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        let mut seen = None;
        loop {
            let loaded = within(
                self.store_deadline(limit),
                load_existing(self.store.as_ref(), name),
            )
            .await;
            let v = loaded.map_err(|e| (e.into(), seen))?;
            let mut record = v.record;
            let verdict = entry.verdict(&record);
            seen = Some(verdict);
            let mut changed = false;
            if verdict == Verdict::Successor {
                record.tokens = Some(entry.tokens.clone());
                record.last_failure = None;
                record.meta.refresh_count += 1;
                changed = true;
            }
            if entry.holder.is_some()
                && record.lease.as_ref().map(|l| &l.holder) == entry.holder.as_ref()
            {
                record.lease = None;
                changed = true;
            }
            if !changed {
                return Ok(verdict);
            }
            record.touch();
            let put = within(
                self.store_deadline(limit),
                self.store
                    .put(name, &record, Precondition::Match(v.version)),
            )
            .await;
            match put {
                Ok(_) => return Ok(verdict),
                Err(StoreError::Conflict(_))
                | Err(StoreError::Unavailable {
                    retryable: true, ..
                }) if Instant::now() + Duration::from_millis(20) < limit => {
                    tokio::time::sleep_until(
                        (Instant::now() + pause.next_delay()).min(limit).into(),
                    )
                    .await;
                }
                Err(e) => return Err((e.into(), seen)),
            }
        }
    }

    /// NetSuite issued `tokens` under our lease: journal them, save them, then drop the entry.
    pub(super) async fn finish(
        &self,
        name: &ProfileName,
        leased: Record,
        version: Version,
        tokens: TokenSet,
        me: &str,
    ) -> Result<(TokenSet, Outcome), Error> {
        let entry = Entry::new(self.store.describe(), name, &leased, me, tokens);
        let ahead = self.journal.as_ref().map(|j| j.save(&entry));
        if let Some(Err(e)) = &ahead {
            tracing::debug!(profile = %name, error = %e, "could not write ahead to the recovery journal");
        }
        let deadline = Instant::now() + self.cfg.store_timeout;
        let saved = self.save(name, leased, version, &entry, deadline).await;
        let tokens = entry.tokens.clone();
        match (saved, ahead) {
            (Ok(Saved::Stored), ahead) => {
                if let (Some(j), Some(Ok(path))) = (&self.journal, ahead) {
                    j.remove(&path);
                }
                Ok((tokens, Outcome::Refreshed))
            }
            (Ok(Saved::NotOurs(v)), ahead) => {
                // Someone else's tokens are in the record now (a takeover after our lease
                // ran out, a new login): keep ours aside rather than overwrite theirs.
                let kept = match (&self.journal, ahead) {
                    (Some(j), Some(Ok(path))) => j.keep_aside(&path).ok(),
                    (Some(j), _) => j.save_kept(&entry).ok(),
                    (None, _) => None,
                };
                tracing::warn!(profile = %name, verdict = ?v, kept = ?kept,
                    "the record changed while refreshing; the new tokens were not written over it and were kept aside in the recovery journal");
                if v == Verdict::Foreign {
                    return Err(Error::Store(StoreError::Conflict(name.to_string())));
                }
                Ok((tokens, Outcome::Refreshed))
            }
            (Err(err), Some(Ok(path))) => {
                tracing::warn!(profile = %name, error = %err, journal = %path.display(),
                    "refreshed tokens could not be stored; kept in the recovery journal and written to the store on the next run");
                Ok((tokens, Outcome::Refreshed))
            }
            (Err(err), Some(Err(je))) => Err(Error::Store(StoreError::Unavailable {
                message: format!("{err}; and the recovery journal failed too: {je}"),
                retryable: false,
            })),
            (Err(err), None) => Err(err),
        }
    }

    /// Writes the entry's tokens and drops our lease, by compare-and-swap, within `deadline`.
    /// After a conflict or a lost answer the record is read again and judged anew.
    async fn save(
        &self,
        name: &ProfileName,
        mut record: Record,
        mut version: Version,
        entry: &Entry,
        deadline: Instant,
    ) -> Result<Saved, Error> {
        let mut pause = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        let mut first = true;
        loop {
            let verdict = entry.verdict(&record);
            let ours = record
                .lease
                .as_ref()
                .is_some_and(|l| Some(&l.holder) == entry.holder.as_ref());
            match verdict {
                Verdict::Successor => {
                    record.tokens = Some(entry.tokens.clone());
                    record.last_failure = None;
                    record.meta.refresh_count += 1;
                }
                // A write reported failed had landed: done, once our lease is gone too.
                Verdict::AlreadyStored if !first && !ours => return Ok(Saved::Stored),
                Verdict::AlreadyStored => {}
                v if !ours => return Ok(Saved::NotOurs(v)),
                _ => {}
            }
            if ours {
                record.lease = None;
            }
            record.touch();
            let put = within(
                deadline,
                self.store
                    .put(name, &record, Precondition::Match(version.clone())),
            )
            .await;
            match put {
                Ok(_) => {
                    return Ok(match verdict {
                        Verdict::Successor | Verdict::AlreadyStored => Saved::Stored,
                        v => Saved::NotOurs(v),
                    })
                }
                Err(StoreError::Conflict(_))
                | Err(StoreError::Unavailable {
                    retryable: true, ..
                }) if Instant::now() < deadline => {
                    tokio::time::sleep_until(
                        (Instant::now() + pause.next_delay()).min(deadline).into(),
                    )
                    .await;
                    let fresh = within(deadline, load_existing(self.store.as_ref(), name)).await?;
                    record = fresh.record;
                    version = fresh.version;
                    first = false;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
