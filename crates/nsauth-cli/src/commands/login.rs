//! `nsauth login [start|finish]`.

use super::Ctx;
use crate::cli::{LoginArgs, LoginStep};
use crate::exit::Exit;
use crate::loopback::{Listener, Tls};
use crate::output;
use nsauth_core::http::Http;
use nsauth_core::profile::is_loopback_host;
use nsauth_core::store::load_existing;
use nsauth_core::{login, Error};
use std::io::{BufRead, IsTerminal, Read};
use std::time::Duration;

pub async fn run(ctx: &Ctx, args: LoginArgs) -> Result<Exit, Error> {
    match args.step {
        Some(LoginStep::Start {
            prompt,
            ttl,
            handoff,
        }) => start(ctx, prompt.as_deref(), &ttl, handoff).await,
        Some(LoginStep::Finish {
            redirect_url,
            state,
        }) => finish(ctx, redirect_url.as_deref(), state.as_deref()).await,
        None => interactive(ctx, &args).await,
    }
}

async fn start(ctx: &Ctx, prompt: Option<&str>, ttl: &str, handoff: bool) -> Result<Exit, Error> {
    let ttl = output::parse_duration(ttl)?;
    let name = ctx.name()?;
    let store = ctx.store()?;
    let (url, expires) = login::start(store.as_ref(), &name, prompt, ttl).await?;
    let now = time::OffsetDateTime::now_utc();
    if !handoff {
        println!("{url}");
        ctx.note(format!(
            "open this link as a NetSuite user (it stays valid until {}), then run: nsauth login finish --profile {name} and paste the URL the browser landed on",
            output::when(expires, now)
        ));
        return Ok(Exit::Success);
    }
    let rec = load_existing(store.as_ref(), &name).await?.record;
    let redirect = rec
        .profile
        .redirect_uri
        .as_ref()
        .map(|u| u.to_string())
        .unwrap_or_default();
    let scopes = rec.profile.scopes.join(", ");
    println!(
        "Hello,\n\n\
         to let our integration call NetSuite account {acct} on your behalf, please open this link\n\
         (valid until {until}; it can be used once):\n\n  {url}\n\n\
         1. NetSuite asks you to log in (use the role that should grant access; it needs the\n\
            \"Log in using OAuth 2.0 Access Tokens\" permission).\n\
         2. NetSuite may show a consent screen for \"{client}\" asking for: {scopes}. Choose Allow.\n\
         3. Your browser is then sent to {redirect} — that page may fail to load;\n\
            that is expected. Copy the full address from the browser's address bar (it contains\n\
            code=... and state=...) and send it back to us.\n\n\
         You keep control: an administrator can revoke this access at any time under\n\
         Setup > Users/Roles > OAuth 2.0 Authorized Applications. We never see your password.",
        acct = rec.profile.account_id,
        until = crate::output::rfc3339(Some(expires)).as_str().unwrap_or_default(),
        client = rec.profile.client_id,
    );
    ctx.note(format!(
        "when the URL comes back, run: nsauth login finish --profile {name} and paste it, before {}",
        output::when(expires, now)
    ));
    Ok(Exit::Success)
}

fn read_stdin_line() -> Result<String, Error> {
    let mut s = String::new();
    std::io::stdin()
        .lock()
        .take(nsauth_core::flows::MAX_CALLBACK_LEN as u64 + 2)
        .read_line(&mut s)
        .map_err(|e| Error::Invalid(format!("cannot read the redirect URL from stdin: {e}")))?;
    if s.trim().is_empty() {
        return Err(Error::Invalid(
            "no redirect URL on stdin; paste the URL the browser landed on".into(),
        ));
    }
    Ok(s)
}

async fn finish(ctx: &Ctx, input: Option<&str>, state: Option<&str>) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let visible = match (input, state) {
        (Some(i), _) if i != "-" => Some("the redirect URL (or code)"),
        (_, Some(_)) => Some("--state"),
        _ => None,
    };
    if let Some(what) = visible {
        eprintln!(
            "warning: {what} on the command line is visible to other users (ps) and stays in shell history; next time give the URL (or code=…&state=…) on stdin: nsauth login finish --profile {name}"
        );
    }
    let input = match input {
        Some(i) if i != "-" => i.to_owned(),
        _ => {
            if std::io::stdin().is_terminal() {
                let what = if state.is_some() {
                    "code"
                } else {
                    "URL the browser landed on"
                };
                eprint!("Paste the {what}, then press Enter: ");
            }
            read_stdin_line()?
        }
    };
    // With --state, the input is just the code the user sent back.
    let input = match state {
        Some(st) => url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", input.trim())
            .append_pair("state", st.trim())
            .finish(),
        None => input,
    };
    let store = ctx.store()?;
    let res = login::finish(store.as_ref(), &Http::new()?, &name, &input).await;
    let mut ev = nsauth_core::audit::AuditEvent::new("login", name.as_str(), &store.describe())
        .outcome(crate::exit::audit_outcome(&res));
    if let Ok(t) = &res {
        ev = ev.fingerprint(t.access_token.fingerprint());
    }
    super::audit::record(ctx, store.as_ref(), &ev);
    let tokens = res?;
    report_login(ctx, &name, &tokens);
    Ok(Exit::Success)
}

fn report_login(ctx: &Ctx, name: &nsauth_core::ProfileName, tokens: &nsauth_core::token::TokenSet) {
    let now = time::OffsetDateTime::now_utc();
    let until = tokens
        .refresh_expires_at
        .map(|e| format!("; refresh token valid until {}", output::when(e, now)))
        .unwrap_or_default();
    ctx.note(format!("logged in: profile {name} has fresh tokens{until}"));
}

async fn interactive(ctx: &Ctx, args: &LoginArgs) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let store = ctx.store()?;
    let rec = load_existing(store.as_ref(), &name).await?.record;
    let redirect = rec.profile.redirect_uri.clone().ok_or_else(|| {
        Error::Invalid(format!(
            "profile {name} has no redirect URI; run nsauth profile set {name} --redirect-uri URI"
        ))
    })?;
    let loopback = matches!(redirect.scheme(), "http" | "https") && is_loopback_host(&redirect);
    // Bind before starting the login so that a busy port fails before anything is stored.
    let listener = if loopback {
        let tls = match (redirect.scheme(), &args.tls_cert, &args.tls_key) {
            ("http", _, _) => Tls::None,
            (_, Some(cert), Some(key)) => Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => Tls::Generated,
        };
        Some(Listener::bind(&redirect, tls).await?)
    } else {
        None
    };
    let (url, _) = login::start(
        store.as_ref(),
        &name,
        args.prompt.as_deref(),
        time::Duration::seconds(args.timeout.max(60) as i64 + 60),
    )
    .await?;
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    eprintln!("Open this link and log in to NetSuite:\n\n  {url}\n");
    if !args.no_browser {
        if let Err(e) = open::that_detached(url.as_str()) {
            eprintln!("(could not open a browser: {e}; open the link yourself)");
        }
    }
    let callback = match listener {
        Some(listener) => {
            if redirect.scheme() == "https" && args.tls_cert.is_none() {
                eprintln!("The browser will warn about nsauth's self-signed certificate on {}; that is expected: continue to the page.", redirect.host_str().unwrap_or("127.0.0.1"));
            }
            let spinner = spinner(ctx);
            let waited =
                tokio::time::timeout(Duration::from_secs(args.timeout), listener.wait_for(state))
                    .await;
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            match waited {
                Ok(q) => q?,
                Err(_) => {
                    return Err(Error::LoginNeeded(format!(
                        "no redirect arrived within {} s; run nsauth login again (or use --timeout, or `login start` / `login finish`)",
                        args.timeout
                    )))
                }
            }
        }
        None => {
            eprintln!(
                "After approving, paste the URL the browser landed on ({}...):",
                redirect.as_str()
            );
            tokio::task::spawn_blocking(read_stdin_line)
                .await
                .map_err(|e| Error::Other(e.to_string()))??
        }
    };
    let res = login::finish(store.as_ref(), &Http::new()?, &name, &callback).await;
    let mut ev = nsauth_core::audit::AuditEvent::new("login", name.as_str(), &store.describe())
        .outcome(crate::exit::audit_outcome(&res));
    if let Ok(t) = &res {
        ev = ev
            .fingerprint(t.access_token.fingerprint())
            .detail("interactive");
    }
    super::audit::record(ctx, store.as_ref(), &ev);
    let tokens = res?;
    report_login(ctx, &name, &tokens);
    Ok(Exit::Success)
}

fn spinner(ctx: &Ctx) -> Option<indicatif::ProgressBar> {
    if ctx.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let s = indicatif::ProgressBar::new_spinner();
    s.set_message("waiting for the browser to come back from NetSuite…");
    s.enable_steady_tick(Duration::from_millis(120));
    Some(s)
}
