//! Copying a profile and its tokens from one store to another without ever losing the only
//! working tokens.
//!
//! A public client's refresh token is single-use: after a move it must live in one place
//! only, so the source copy is *retired* (tokens dropped, marked [`Moved`]). The rule that
//! keeps this safe: **the source is retired only by a compare-and-swap on the exact version
//! whose tokens were read back from the destination.** A source refreshed meanwhile, a
//! destination that holds other tokens or none, a refresh lease held by another process:
//! each refuses ([`Error::Invalid`], exit 2) and leaves both stores as they were.

use crate::journal::Journal;
use crate::store::{self, Precondition, Record, Versioned};
use crate::{Error, ProfileName, StoreError, TokenStore};
use time::OffsetDateTime;

/// What happened to one profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The profile was copied (with its tokens, if any) and read back.
    Copied {
        /// Whether tokens were copied.
        tokens: bool,
        /// Whether the source's single-use tokens were retired.
        source_retired: bool,
    },
    /// The destination already holds this profile (and the source's tokens, when they
    /// matter).
    AlreadyThere {
        /// Whether the source's single-use tokens were retired by this run.
        source_retired: bool,
    },
    /// Dry run: what would be copied.
    WouldCopy {
        /// Whether tokens would be copied.
        tokens: bool,
    },
}

/// Copies profile `name` from `src` to `dst` (see the module docs for the rules). `journal`
/// is the recovery journal of this machine, if any: refreshed tokens of the source still
/// waiting there are newer than the stored ones, so migrate refuses until they are written
/// back.
pub async fn migrate_profile(
    src: &dyn TokenStore,
    dst: &dyn TokenStore,
    name: &ProfileName,
    dry_run: bool,
    journal: Option<&Journal>,
) -> Result<Outcome, Error> {
    if journal.is_some_and(|j| j.has(&src.describe(), name)) {
        return Err(Error::Invalid(format!(
            "refreshed tokens of profile {name} are waiting in the recovery journal, newer than the stored ones; nothing was changed; run `nsauth --profile {name} token` once to write them back, then migrate again"
        )));
    }
    let Versioned {
        record: source,
        version: source_version,
    } = store::load_existing(src, name).await?;
    let single_use = source.profile.is_public()
        && source
            .tokens
            .as_ref()
            .is_some_and(|t| t.refresh_token.is_some());
    if single_use && source.moved.is_none() {
        refuse_if_refreshing(&source, name)?;
    }
    if let Some(existing) = dst.load(name).await? {
        return already_there(src, dst, name, &source, source_version, &existing, dry_run).await;
    }
    if source.moved.is_some() {
        return Err(Error::Invalid(format!(
            "the tokens of profile {name} were already moved elsewhere; nothing to copy"
        )));
    }
    let with_tokens = source.tokens.is_some();
    if dry_run {
        return Ok(Outcome::WouldCopy {
            tokens: with_tokens,
        });
    }
    let mut copy = Record::new(source.profile.clone());
    copy.tokens = source.tokens.clone();
    copy.next_certificate = source.next_certificate.clone();
    copy.previous_certificate = source.previous_certificate.clone();
    copy.meta.refresh_count = source.meta.refresh_count;
    copy.touch();
    let copy_version = match dst.put(name, &copy, Precondition::Create).await {
        Ok(v) => v,
        Err(StoreError::Conflict(_)) => {
            return Err(Error::Invalid(format!(
                "profile {name} was created in {} while migrating; nothing was changed; run migrate again",
                dst.describe()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let back = store::load_existing(dst, name).await?;
    if back.record.profile != copy.profile || back.record.tokens != copy.tokens {
        return Err(Error::Store(StoreError::Corrupt {
            what: format!("the copy of {name} in {}", dst.describe()),
            why: "it does not read back as written; the source was left untouched".into(),
        }));
    }
    if single_use {
        match retire(src, name, &source, source_version, &dst.describe()).await {
            Ok(()) => {}
            // Definitely not retired: someone wrote the source after we read it. The copy
            // holds tokens the source may have replaced since: take it back so that a re-run
            // starts clean (by CAS, so a copy someone already used stays).
            Err(Error::Store(StoreError::Conflict(_))) => {
                return Err(match dst.delete(name, Some(&copy_version)).await {
                    Ok(()) => Error::Invalid(format!(
                        "profile {name} changed in the source while it was copied (a refresh by another process?); the copy was removed and nothing was changed; run migrate again"
                    )),
                    Err(undo) => Error::Invalid(format!(
                        "profile {name} changed in the source while it was copied, and removing the copy from {} failed ({undo}); check which copy works with `nsauth token` and delete the other",
                        dst.describe()
                    )),
                })
            }
            // The retire may or may not have landed (a timeout, a lost answer): the copy
            // stays, since it may now be the only one. A re-run finishes the job: it retires
            // the source only if the copy still holds the source's tokens.
            Err(e) => {
                return Err(Error::Store(StoreError::Unavailable {
                    message: format!(
                        "profile {name} was copied to {}, but retiring the source failed ({e}); run migrate again to finish",
                        dst.describe()
                    ),
                    retryable: true,
                }))
            }
        }
    }
    Ok(Outcome::Copied {
        tokens: with_tokens,
        source_retired: single_use,
    })
}

/// The destination already holds `name`: finish a previous run if (and only if) the
/// destination provably holds the source's current tokens.
async fn already_there(
    src: &dyn TokenStore,
    dst: &dyn TokenStore,
    name: &ProfileName,
    source: &Record,
    source_version: store::Version,
    existing: &Versioned,
    dry_run: bool,
) -> Result<Outcome, Error> {
    let to = dst.describe();
    if existing.record == *source {
        // Book-keeping included: a copy made by migrate has its own update time. This is the
        // source itself, reached under another name (a path alias, a symlink): retiring it
        // would wipe the only copy.
        return Err(Error::Invalid(format!(
            "profile {name} in {to} is the very record of the source (the same store under another name?); nothing was changed"
        )));
    }
    if existing.record.profile != source.profile {
        return Err(Error::Invalid(format!(
            "profile {name} already exists in {to} with other content; it was not overwritten (delete it there first, or migrate under another store)"
        )));
    }
    let Some(tokens) = source.tokens.as_ref().filter(|_| source.moved.is_none()) else {
        // The source has nothing to hand over (never logged in, or retired already).
        return Ok(Outcome::AlreadyThere {
            source_retired: false,
        });
    };
    match existing.record.tokens.as_ref() {
        Some(there) if there == tokens => {}
        // A confidential client's refresh token is reusable: two copies refresh
        // independently and neither is retired.
        Some(_) if !source.profile.is_public() => {
            return Ok(Outcome::AlreadyThere {
                source_retired: false,
            })
        }
        Some(_) => {
            return Err(Error::Invalid(format!(
                "profile {name} already exists in {to} with other tokens than the source's; nothing was changed; only one copy of a public client's tokens works: check which with `nsauth --store URI --profile {name} token`, then delete the other copy (or run nsauth login)"
            )))
        }
        None => {
            return Err(Error::Invalid(format!(
                "profile {name} already exists in {to} but without tokens; nothing was changed; delete it there (nsauth --store {to} profile delete {name}) and run migrate again"
            )))
        }
    }
    let single_use = tokens.refresh_token.is_some() && source.profile.is_public();
    if !single_use || dry_run {
        return Ok(Outcome::AlreadyThere {
            source_retired: false,
        });
    }
    retire(src, name, source, source_version, &to)
        .await
        .map_err(|e| match e {
            Error::Store(StoreError::Conflict(_)) => Error::Invalid(format!(
                "profile {name} changed in the source while migrating (a refresh by another process?); nothing was changed; run migrate again"
            )),
            e => e,
        })?;
    Ok(Outcome::AlreadyThere {
        source_retired: true,
    })
}

/// A refresh under way in another process would write tokens the destination never sees.
fn refuse_if_refreshing(source: &Record, name: &ProfileName) -> Result<(), Error> {
    match &source.lease {
        Some(lease) if lease.until > OffsetDateTime::now_utc() => Err(Error::Invalid(format!(
            "profile {name} is being refreshed by another process ({}); nothing was changed; run migrate again in a few seconds",
            lease.holder
        ))),
        _ => Ok(()),
    }
}

/// Retires the source copy of a public client by a compare-and-swap on `version`, the
/// version whose tokens the destination was shown to hold. Any other writer in between
/// makes this fail with [`StoreError::Conflict`]; nothing is re-read.
async fn retire(
    src: &dyn TokenStore,
    name: &ProfileName,
    source: &Record,
    version: store::Version,
    to: &str,
) -> Result<(), Error> {
    let mut retired = source.clone();
    // Tokens and lease go; only their fingerprints stay, so this copy can neither refresh
    // nor revoke the grant the destination now holds.
    crate::store::mark_moved(&mut retired, to, OffsetDateTime::now_utc());
    retired.touch();
    src.put(name, &retired, Precondition::Match(version))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
