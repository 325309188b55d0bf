//! `nsauth token`: the access token on stdout — bare, as an `Authorization` header line, or as
//! the token object (`--json`, the same object the agent's `/v1/token` answers) — from a
//! running agent (`--via`) or the store.

use super::super::Ctx;
use crate::exit::Exit;
use nsauth_core::store::load_existing;
use nsauth_core::Error;
use std::io::Write;
use std::time::Duration;
use zeroize::Zeroizing;

/// How the token is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The token and a newline.
    Bare,
    /// `Authorization: Bearer TOKEN` and a newline.
    Header,
    /// The token object ([`nsauth_agent::token_json`]) on one line.
    Json,
}

impl Format {
    /// From the flags (`--json` and `--header` conflict in the parser).
    pub fn new(json: bool, header: bool) -> Self {
        match (json, header) {
            (true, _) => Format::Json,
            (false, true) => Format::Header,
            (false, false) => Format::Bare,
        }
    }
}

/// `nsauth token [--via ADDR] [--json | --header]`.
pub async fn token(
    ctx: &Ctx,
    min_ttl: u64,
    via: Option<&str>,
    header: bool,
) -> Result<Exit, Error> {
    let format = Format::new(ctx.json, header);
    if let Some(exit) = from_agent(ctx, via, min_ttl, format).await? {
        return Ok(exit);
    }
    let name = ctx.name()?;
    let store = ctx.store()?;
    let broker = ctx.broker(store.clone())?;
    let res = broker
        .access_token(&name, Duration::from_secs(min_ttl))
        .await;
    let mut ev = nsauth_core::audit::AuditEvent::new("token", name.as_str(), &store.describe())
        .outcome(crate::exit::audit_outcome(&res));
    if let Ok((t, o)) = &res {
        ev = ev
            .fingerprint(t.access_token.fingerprint())
            .detail(format!("{o:?}").to_lowercase());
    }
    super::super::audit::record(ctx, store.as_ref(), &ev);
    let (tokens, outcome) = res?;
    tracing::info!(profile = %name, ?outcome, fingerprint = %tokens.access_token.fingerprint(), "access token handed out");
    let text = match format {
        Format::Json => {
            // The account and REST base live in the profile: one more read, only for --json.
            let profile = load_existing(store.as_ref(), &name).await?.record.profile;
            nsauth_agent::token_json::render(
                &tokens.access_token,
                tokens.access_expires_at,
                profile.account_id.as_str(),
                profile.endpoints().rest.as_str(),
            )
        }
        _ => Zeroizing::new(tokens.access_token.secret().to_owned()),
    };
    print(format, &text)?;
    Ok(Exit::Success)
}

/// The token from a running agent. `Ok(None)` when there is no `--via`, or no agent answers —
/// the caller then uses the store; an agent's error is returned as it is, with its exit code.
async fn from_agent(
    ctx: &Ctx,
    via: Option<&str>,
    min_ttl: u64,
    format: Format,
) -> Result<Option<Exit>, Error> {
    let Some(via) = via.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let target = nsauth_agent::client::parse_via(via)?;
    let name = ctx.name()?;
    match nsauth_agent::client::fetch(&target, name.as_str(), min_ttl, None).await {
        Ok(t) => {
            let text = match format {
                Format::Json => t.to_json()?,
                _ => Zeroizing::new(t.access_token.secret().to_owned()),
            };
            print(format, &text)?;
            tracing::info!(profile = %name, agent = %target, fingerprint = %t.access_token.fingerprint(), "access token from the agent");
            Ok(Some(Exit::Success))
        }
        Err(nsauth_agent::client::FetchError::NoAgent(why)) => {
            tracing::info!("{why}; using the store");
            Ok(None)
        }
        Err(nsauth_agent::client::FetchError::Agent(e)) => Err(e),
    }
}

/// Writes `text` (the token, or the token object for JSON) in `format`, in one write, from
/// a buffer that is zeroed afterwards. A "token" with a control character or a space (from a
/// broken agent or token endpoint) is not printed bare: it could end the line early and add
/// one of its own — a second header under `--header`. (JSON escapes it.)
fn print(format: Format, text: &str) -> Result<(), Error> {
    if format != Format::Json && !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Other(
            "the access token holds control characters or spaces, which no token has; not printed (a broken agent or token endpoint?)".into(),
        ));
    }
    let line = Zeroizing::new(match format {
        Format::Header => format!("Authorization: Bearer {text}\n"),
        Format::Bare | Format::Json => format!("{text}\n"),
    });
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))
}
