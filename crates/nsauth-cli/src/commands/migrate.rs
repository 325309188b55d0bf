//! `nsauth migrate --to URI [--all] [--dry-run]`: copy profiles and tokens between any two
//! stores with create-only writes, read each back to verify, and never leave a public
//! client's single-use refresh token live in two places.

use super::Ctx;
use crate::registry;
use nsauth_core::store::{self, Precondition, Record};
use nsauth_core::{Error, ProfileName, StoreError, TokenStore};
use serde_json::json;

/// What happened to one profile.
enum Outcome {
    Copied { tokens: bool, source_retired: bool },
    AlreadyThere { source_retired: bool },
    WouldCopy { tokens: bool },
    Refused(Error),
}

pub async fn run(ctx: &Ctx, to: &str, all: bool, dry_run: bool) -> Result<u8, Error> {
    let src = ctx.store()?;
    let dst = registry::open(to)?;
    if src.describe() == dst.describe() {
        return Err(Error::Invalid(
            "--to names the same store as --store; nothing to migrate".into(),
        ));
    }
    let names = if all {
        src.list().await?
    } else {
        vec![ctx.name()?]
    };
    let mut worst = 0u8;
    let mut rows = Vec::new();
    for name in &names {
        let res = migrate_one(src.as_ref(), dst.as_ref(), name, dry_run).await;
        if !dry_run {
            super::audit::record(
                ctx,
                &nsauth_core::audit::AuditEvent::new("migrate", name.as_str(), &src.describe())
                    .result(&res)
                    .detail(format!("to {}", dst.describe())),
            );
        }
        let outcome = match res {
            Ok(o) => o,
            Err(e) => Outcome::Refused(e),
        };
        let (status, text) = match &outcome {
            Outcome::Copied {
                tokens,
                source_retired,
            } => (
                "copied",
                format!(
                    "copied {} and verified{}",
                    if *tokens {
                        "with its tokens"
                    } else {
                        "(no tokens)"
                    },
                    if *source_retired {
                        "; the source's single-use tokens were retired"
                    } else {
                        ""
                    }
                ),
            ),
            Outcome::AlreadyThere { source_retired } => (
                "already-migrated",
                format!(
                    "already in the destination{}",
                    if *source_retired {
                        "; source tokens retired now"
                    } else {
                        ""
                    }
                ),
            ),
            Outcome::WouldCopy { tokens } => (
                "dry-run",
                format!(
                    "would copy {}",
                    if *tokens {
                        "with its tokens"
                    } else {
                        "(no tokens)"
                    }
                ),
            ),
            Outcome::Refused(e) => {
                worst = worst.max(u8::try_from(e.exit_code()).unwrap_or(1));
                ("failed", e.to_string())
            }
        };
        if ctx.json {
            rows.push(json!({"profile": name.as_str(), "status": status, "message": text}));
        } else {
            println!("{name}: {text}");
        }
    }
    if ctx.json {
        println!("{}", serde_json::Value::Array(rows));
    }
    ctx.note(format!(
        "{} profile(s) from {} to {}",
        names.len(),
        src.describe(),
        dst.describe()
    ));
    Ok(worst)
}

/// Tokens and profile as they should be compared (book-keeping aside).
fn same_content(a: &Record, b: &Record) -> bool {
    a.profile == b.profile && a.tokens == b.tokens
}

async fn migrate_one(
    src: &dyn TokenStore,
    dst: &dyn TokenStore,
    name: &ProfileName,
    dry_run: bool,
) -> Result<Outcome, Error> {
    let source = store::load_existing(src, name).await?.record;
    let single_use = source.profile.is_public()
        && source
            .tokens
            .as_ref()
            .is_some_and(|t| t.refresh_token.is_some());
    if let Some(existing) = dst.load(name).await? {
        // Re-run after a failure: the copy landed; finish retiring the source if needed.
        // The same profile is there (its tokens may have been refreshed since): done.
        if existing.record.profile == source.profile {
            let retired = if single_use && source.moved.is_none() && !dry_run {
                retire(src, name, &dst.describe()).await?;
                true
            } else {
                false
            };
            return Ok(Outcome::AlreadyThere {
                source_retired: retired,
            });
        }
        return Err(Error::Invalid(format!(
            "profile {name} already exists in {} with other content; it was not overwritten (delete it there first, or migrate under another store)",
            dst.describe()
        )));
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
    copy.meta.refresh_count = source.meta.refresh_count;
    copy.touch();
    match dst.put(name, &copy, Precondition::Create).await {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(Error::Store(StoreError::Conflict(format!(
                "{name} (created in the destination meanwhile; run migrate again)"
            ))))
        }
        Err(e) => return Err(e.into()),
    }
    let back = store::load_existing(dst, name).await?.record;
    if !same_content(&back, &copy) {
        return Err(Error::Store(StoreError::Corrupt {
            what: format!("the copy of {name} in {}", dst.describe()),
            why: "it does not read back as written".into(),
        }));
    }
    if single_use {
        retire(src, name, &dst.describe()).await?;
    }
    Ok(Outcome::Copied {
        tokens: with_tokens,
        source_retired: single_use,
    })
}

/// The source copy of a public client must stop refreshing: its refresh token is single-use,
/// and the destination now owns it.
async fn retire(src: &dyn TokenStore, name: &ProfileName, to: &str) -> Result<(), Error> {
    store::update(src, name, |rec| {
        nsauth_core::share::mark_moved(rec, to, time::OffsetDateTime::now_utc());
        Ok(())
    })
    .await?;
    Ok(())
}
