//! `nsauth migrate --to URI [--all] [--dry-run]`: copy profiles and tokens between any two
//! stores (the rules live in `nsauth_core::migrate`); this module only reports.

use super::Ctx;
use crate::exit::Exit;
use nsauth_core::migrate::{migrate_profile, Outcome};
use nsauth_core::Error;
use serde_json::json;

pub async fn run(ctx: &Ctx, to: &str, all: bool, dry_run: bool) -> Result<Exit, Error> {
    // The destination first: a --to that cannot be opened must not create the source store.
    let dst = nsauth::open_store(to)?;
    let src = ctx.store()?;
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
    let journal = nsauth_core::journal::Journal::open_default();
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for name in &names {
        let res =
            migrate_profile(src.as_ref(), dst.as_ref(), name, dry_run, journal.as_ref()).await;
        if !dry_run {
            super::audit::record(
                ctx,
                src.as_ref(),
                &nsauth_core::audit::AuditEvent::new("migrate", name.as_str(), &src.describe())
                    .outcome(crate::exit::audit_outcome(&res))
                    .detail(format!("to {}", dst.describe())),
            );
        }
        let (status, text) = match &res {
            Ok(Outcome::Copied {
                tokens,
                source_retired,
            }) => (
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
            Ok(Outcome::AlreadyThere { source_retired }) => (
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
            Ok(Outcome::WouldCopy { tokens }) => (
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
            Err(e) => {
                failed.push(e.kind());
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
        crate::output::print_json_list("profiles", rows);
    }
    ctx.note(format!(
        "{} profile(s) from {} to {}",
        names.len(),
        src.describe(),
        dst.describe()
    ));
    Ok(Exit::worst(failed))
}
