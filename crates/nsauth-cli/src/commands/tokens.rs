//! `nsauth token|refresh|status|check|revoke|exec|api` (`token` in [`hand_out`]).

use super::Ctx;
use crate::exit::Exit;
use crate::output::{self, Health};
use nsauth_core::broker::Outcome;
use nsauth_core::profile::GrantKind;
use nsauth_core::store::{self, load_existing, FailureKind};
use nsauth_core::{flows, Error, ProfileName};
use std::io::{Read, Write};
use std::time::Duration;
use time::OffsetDateTime;

mod child_env;
mod hand_out;

pub use hand_out::token;

pub async fn refresh(ctx: &Ctx, force: bool) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let store = ctx.store()?;
    let broker = ctx.broker(store.clone())?;
    let now = OffsetDateTime::now_utc();
    let res = if force {
        broker
            .force_refresh(&name)
            .await
            .map(|t| (t, Outcome::Refreshed))
    } else {
        broker.access_token(&name, Duration::from_secs(600)).await
    };
    let mut ev = nsauth_core::audit::AuditEvent::new("refresh", name.as_str(), &store.describe())
        .outcome(crate::exit::audit_outcome(&res));
    if let Ok((t, o)) = &res {
        ev = ev
            .fingerprint(t.access_token.fingerprint())
            .detail(format!("{o:?}").to_lowercase());
    }
    super::audit::record(ctx, store.as_ref(), &ev);
    let (tokens, outcome) = res?;
    let what = match outcome {
        Outcome::Refreshed => "refreshed",
        Outcome::Waited => "refreshed by another process",
        Outcome::Cached => "still valid (use --force to refresh anyway)",
    };
    let mut line = format!(
        "profile {name}: {what}; access token valid until {}",
        output::when(tokens.access_expires_at, now)
    );
    if let Some(end) = tokens.refresh_expires_at {
        line.push_str(&format!("; refresh token until {}", output::when(end, now)));
    }
    if ctx.json {
        output::print_json(
            serde_json::json!({"profile": name.as_str(), "outcome": format!("{outcome:?}").to_lowercase(),
            "access_token_expires_at": output::rfc3339(Some(tokens.access_expires_at)),
            "refresh_token_expires_at": output::rfc3339(tokens.refresh_expires_at)}),
        );
    } else {
        println!("{line}");
    }
    Ok(Exit::Success)
}

async fn selected(
    ctx: &Ctx,
    all: bool,
) -> Result<
    (
        std::sync::Arc<dyn nsauth_core::TokenStore>,
        Vec<ProfileName>,
    ),
    Error,
> {
    let store = ctx.store()?;
    let names = if all {
        store.list().await?
    } else {
        vec![ctx.name()?]
    };
    Ok((store, names))
}

pub async fn status(ctx: &Ctx, all: bool) -> Result<Exit, Error> {
    let (store, names) = selected(ctx, all).await?;
    let now = OffsetDateTime::now_utc();
    let journal = nsauth_core::journal::Journal::open_default();
    let described = store.describe();
    let mut rows = Vec::new();
    for name in &names {
        let v = load_existing(store.as_ref(), name).await?;
        let mut row = output::status_json(name.as_str(), &v.record, now);
        // The journal of this user, for this store (canonical identity) and profile:
        // entries waiting for the store, entries kept aside because they belong to no
        // current grant, and unreadable entries moved aside. Paths only, never contents.
        let listing = journal
            .as_ref()
            .map(|j| j.listing(&described, name))
            .unwrap_or_default();
        row["pending_recovery"] = serde_json::Value::Bool(!listing.pending.is_empty());
        let paths = |v: &[std::path::PathBuf]| {
            serde_json::Value::Array(
                v.iter()
                    .map(|p| serde_json::Value::String(p.display().to_string()))
                    .collect(),
            )
        };
        if !listing.kept.is_empty() {
            row["journal_kept_aside"] = paths(&listing.kept);
        }
        if !listing.quarantined.is_empty() {
            row["journal_quarantined"] = paths(&listing.quarantined);
        }
        rows.push(row);
    }
    if ctx.json {
        if all {
            output::print_json_list("profiles", rows);
        } else {
            output::print_json(rows.pop().unwrap_or_default());
        }
    } else {
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                println!();
            }
            output::print_object(false, row);
        }
    }
    Ok(Exit::Success)
}

pub async fn check(ctx: &Ctx, within: &str, all: bool) -> Result<Exit, Error> {
    let window = output::parse_duration(within)?;
    let (store, names) = selected(ctx, all).await?;
    let now = OffsetDateTime::now_utc();
    let mut worst = Exit::Success;
    let mut rows = Vec::new();
    for name in &names {
        let rec = load_existing(store.as_ref(), name).await?.record;
        let h = output::health(&rec, now, window);
        let msg = match (h, rec.profile.grant) {
            (Health::Ok, _) => "ok".to_string(),
            (Health::NeedsLogin, GrantKind::AuthorizationCode) => {
                format!("login needed; run: nsauth login --profile {name}")
            }
            (Health::NeedsLogin, GrantKind::ClientCredentials) => {
                format!("the certificate has expired; run: nsauth --profile {name} m2m rotate, and upload the certificate it prints")
            }
            (Health::Expiring, GrantKind::AuthorizationCode) => {
                let end = rec
                    .tokens
                    .as_ref()
                    .and_then(|t| t.refresh_expires_at)
                    .map(|e| output::when(e, now))
                    .unwrap_or_else(|| "soon".into());
                format!("the refresh token ends {end}, within {within}; run: nsauth login --profile {name}")
            }
            (Health::Expiring, GrantKind::ClientCredentials) => {
                format!("the certificate expires within 30 days; run: nsauth --profile {name} m2m rotate, and upload the certificate it prints (the current one keeps working meanwhile)")
            }
        };
        if h != Health::Ok {
            worst = Exit::Failed(FailureKind::LoginNeeded);
        }
        rows.push(
            serde_json::json!({"profile": name.as_str(), "health": h.as_str(), "message": msg}),
        );
        if !ctx.json {
            println!("{name}: {msg}");
        }
    }
    if ctx.json {
        output::print_json_list("profiles", rows);
    }
    Ok(worst)
}

pub async fn revoke(ctx: &Ctx) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let store = ctx.store()?;
    let broker = ctx.broker(store.clone())?;
    let rec = load_existing(store.as_ref(), &name).await?.record;
    if let Some(m) = &rec.moved {
        // The grant now lives at the destination; revoking here would end it there.
        return Err(Error::Invalid(format!(
            "the tokens of profile {name} were moved to {} at {}; nothing here to revoke. To end that grant, run nsauth revoke where they were moved to (or revoke the app in NetSuite: Setup > Users/Roles > OAuth 2.0 Authorized Applications); to forget this profile: nsauth profile delete {name}",
            m.to,
            nsauth_core::token::format_time(m.at)
        )));
    }
    if let Some(rt) = rec.tokens.as_ref().and_then(|t| t.refresh_token.as_ref()) {
        let res = flows::revoke(broker.http(), &rec.profile, rt).await;
        super::audit::record(
            ctx,
            store.as_ref(),
            &nsauth_core::audit::AuditEvent::new("revoke", name.as_str(), &store.describe())
                .outcome(crate::exit::audit_outcome(&res))
                .fingerprint(rt.fingerprint()),
        );
        res?;
        ctx.note(format!(
            "revoked the refresh token of profile {name} at NetSuite"
        ));
    } else if rec.tokens.is_none() {
        ctx.note(format!("profile {name} has no tokens; nothing to revoke"));
        return Ok(Exit::Success);
    }
    store::update(store.as_ref(), &name, |r| {
        r.tokens = None;
        r.lease = None;
        Ok(())
    })
    .await?;
    ctx.note(format!(
        "tokens of profile {name} removed; the profile is kept"
    ));
    Ok(Exit::Success)
}

pub async fn exec(ctx: &Ctx, command: Vec<String>) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let store = ctx.store()?;
    let broker = ctx.broker(store.clone())?;
    let (tokens, _) = broker.access_token(&name, Duration::from_secs(300)).await?;
    let rec = load_existing(store.as_ref(), &name).await?.record;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Error::Invalid("exec needs a command: nsauth exec -- CMD ARGS".into()))?;
    let mut child = tokio::process::Command::new(program);
    for k in child_env::withheld() {
        child.env_remove(k);
    }
    let status = child
        .args(args)
        .env("NETSUITE_ACCESS_TOKEN", tokens.access_token.secret())
        .env("NETSUITE_ACCOUNT_ID", rec.profile.account_id.as_str())
        .env("NETSUITE_REST_URL", rec.profile.endpoints().rest.as_str())
        .status()
        .await
        .map_err(|e| Error::Invalid(format!("cannot run {program:?}: {e}")))?;
    // A child killed by a signal has no code of its own.
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .map_or(Exit::Failed(FailureKind::Other), Exit::Child))
}

pub async fn api(ctx: &Ctx, method: &str, path: &str, data: Option<&str>) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let store = ctx.store()?;
    let broker = ctx.broker(store.clone())?;
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::Invalid(format!("invalid HTTP method {method:?}")))?;
    let body = match data {
        None => None,
        Some("-") => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| Error::Invalid(format!("cannot read stdin: {e}")))?;
            Some(b)
        }
        Some(d) => match d.strip_prefix('@') {
            Some(file) => Some(
                std::fs::read(file)
                    .map_err(|e| Error::Invalid(format!("cannot read {file}: {e}")))?,
            ),
            None => {
                return Err(Error::Invalid(
                    "--data takes @FILE or - (stdin), so that payloads stay out of argv".into(),
                ))
            }
        },
    };
    // Validate the path before any token is fetched or sent.
    let rest = load_existing(store.as_ref(), &name)
        .await?
        .record
        .profile
        .endpoints()
        .rest;
    let url = nsauth::rest::api_url(&rest, path)?;
    let (tokens, _) = broker.access_token(&name, Duration::from_secs(60)).await?;
    // The token goes only to the REST base's own scheme, host and port (the HTTP client
    // never follows redirects, so a 30x cannot carry it elsewhere either).
    if !nsauth::rest::same_origin(&url, &rest) {
        return Err(Error::Invalid(format!(
            "refusing to send the token to {}: it is not the profile's REST base",
            url.origin().ascii_serialization()
        )));
    }
    let mut req = nsauth_core::http::Request::new(method.as_str(), url.clone())
        .bearer(tokens.access_token.clone());
    if let Some(b) = &body {
        req = req
            .header("content-type", "application/json")
            .header("prefer", "transient")
            .body(b.clone());
    }
    let idempotent = matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
    let resp = broker
        .http()
        .send_with("REST API", &req, idempotent)
        .await?;
    std::io::stdout()
        .write_all(&resp.body)
        .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))?;
    if (200..300).contains(&resp.status) {
        Ok(Exit::Success)
    } else {
        let note = if (300..400).contains(&resp.status) {
            " (a redirect; nsauth does not follow redirects, so the token went nowhere else)"
        } else {
            ""
        };
        eprintln!(
            "error: NetSuite answered HTTP {} for {method} {}{note}",
            resp.status,
            url.path()
        );
        Ok(Exit::Failed(if resp.status == 401 {
            FailureKind::LoginNeeded
        } else {
            FailureKind::Rejected
        }))
    }
}
