//! Logins that span processes: `login start` keeps the state and PKCE verifier in the store,
//! `login finish` (maybe hours later, maybe on another machine) claims them exactly once.

use crate::error::Error;
use crate::flows::{self, parse_callback};
use crate::http::Http;
use crate::profile::ProfileName;
use crate::store::{self, PendingLogin, TokenStore};
use crate::token::TokenSet;
use time::OffsetDateTime;
use url::Url;

/// How long a started login stays valid by default.
pub const DEFAULT_PENDING_TTL: time::Duration = time::Duration::hours(24);
/// At most this many logins may be pending per profile; the oldest is dropped.
pub const MAX_PENDING: usize = 16;

/// Starts a login: stores a pending login and returns the authorization URL.
pub async fn start(
    store: &dyn TokenStore,
    name: &ProfileName,
    prompt: Option<&str>,
    ttl: time::Duration,
) -> Result<(Url, OffsetDateTime), Error> {
    if ttl <= time::Duration::ZERO || ttl > time::Duration::days(30) {
        return Err(Error::Invalid(
            "the login lifetime must be between 1 second and 30 days".into(),
        ));
    }
    let (out, _) = store::update(store, name, |rec| {
        let req = flows::authorization_request(&rec.profile, prompt, ttl)?;
        let now = OffsetDateTime::now_utc();
        rec.pending.retain(|p| p.expires_at > now);
        while rec.pending.len() >= MAX_PENDING {
            rec.pending.remove(0);
        }
        rec.pending.push(req.pending);
        Ok((
            req.url,
            rec.pending.last().map(|p| p.expires_at).unwrap_or(now),
        ))
    })
    .await?;
    Ok(out)
}

fn same_state(a: &str, b: &str) -> bool {
    // Constant-time comparison: the state is a CSRF secret.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Claims the pending login matching the callback's state (removing it, so a code is
/// exchanged only once), exchanges the code and stores the tokens.
pub async fn finish(
    store: &dyn TokenStore,
    http: &Http,
    name: &ProfileName,
    callback: &str,
) -> Result<TokenSet, Error> {
    let cb = parse_callback(callback)?;
    let (claimed, _) = store::update(store, name, |rec| {
        let now = OffsetDateTime::now_utc();
        let expired_match = rec.pending.iter().any(|p| p.expires_at <= now && same_state(&p.state, &cb.state));
        rec.pending.retain(|p| p.expires_at > now);
        let Some(i) = rec.pending.iter().position(|p| same_state(&p.state, &cb.state)) else {
            return Err(Error::Invalid(if expired_match {
                format!("this login for profile {name} has expired; run: nsauth login start --profile {name}")
            } else {
                format!("the redirect's state matches no pending login of profile {name} (already used, expired, or started for another profile or store); run: nsauth login start --profile {name}")
            }));
        };
        if let Some(company) = &cb.company {
            if !company.eq_ignore_ascii_case(rec.profile.account_id.as_str()) {
                return Err(Error::Invalid(format!(
                    "the user logged in to account {company:?}, but profile {name} is for account {}; log in to the right account",
                    rec.profile.account_id
                )));
            }
        }
        let p: PendingLogin = rec.pending.remove(i);
        Ok((p, rec.profile.clone()))
    })
    .await?;
    let (pending, profile) = claimed;
    let tokens = flows::exchange_code(
        http,
        &profile,
        &cb.code,
        &pending.verifier,
        &pending.redirect_uri,
    )
    .await?;
    save_tokens(store, name, &tokens).await?;
    Ok(tokens)
}

/// Stores a fresh token set (after a login), clearing any lease and failure note.
pub async fn save_tokens(
    store: &dyn TokenStore,
    name: &ProfileName,
    tokens: &TokenSet,
) -> Result<(), Error> {
    store::update(store, name, |rec| {
        rec.tokens = Some(tokens.clone());
        rec.last_failure = None;
        rec.moved = None;
        Ok(())
    })
    .await?;
    Ok(())
}
