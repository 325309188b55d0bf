//! `nsauth emulator` and `nsauth demo`.

use crate::exit::Exit;
use crate::output;
use nsauth_core::broker::{Broker, BrokerConfig};
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile};
use nsauth_core::store::{self, Precondition, Record};
use nsauth_core::{account::AccountId, flows, login, Error, ProfileName};
use nsauth_emulator::Emulator;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

fn loopback_addr(listen: &str) -> Result<SocketAddr, Error> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Error::Invalid(format!(
            "--listen {listen:?} is not an address like 127.0.0.1:8080"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::Invalid(
            "the emulator listens on loopback only (127.0.0.1 or ::1)".into(),
        ));
    }
    Ok(addr)
}

pub async fn emulator(listen: &str) -> Result<Exit, Error> {
    let emu = Emulator::start(loopback_addr(listen)?)
        .await
        .map_err(|e| Error::Invalid(format!("cannot start the emulator on {listen}: {e}")))?;
    let fx = emu.install_demo_fixtures();
    println!("NetSuite emulator listening on {}", emu.base_url());
    println!(
        "account {}; user {} / {}",
        emu.account_id(),
        fx.email,
        fx.password
    );
    println!();
    println!("Try it:");
    println!(
        "  nsauth profile set demo --account-id {} --client-id {} --redirect-uri {} --scope rest_webservices --base-url {}",
        emu.account_id(),
        fx.public_client_id,
        fx.redirect_uri,
        emu.base_url()
    );
    println!("  nsauth --profile demo login --no-browser");
    println!("(Ctrl-C to stop)");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    emu.shutdown().await;
    Ok(Exit::Success)
}

fn step(n: usize, what: &str, detail: impl std::fmt::Display) {
    println!("[{n}/7] {what:<9} {detail}");
}

pub async fn demo(store_uri: Option<String>) -> Result<Exit, Error> {
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::Other(format!("cannot create a temporary directory: {e}")))?;
    let uri = match store_uri {
        Some(u) => u,
        None => format!(
            "sqlite://{}?key-file={}",
            tmp.path().join("demo.db").display(),
            tmp.path().join("store.key").display()
        ),
    };
    let store = nsauth::open_store(&uri)?;
    let emu = Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| Error::Other(format!("cannot start the emulator: {e}")))?;
    let fx = emu.install_demo_fixtures();
    println!(
        "nsauth demo: a NetSuite emulator on {} and the store {}",
        emu.base_url(),
        store.describe()
    );

    let name = ProfileName::parse(&format!("demo-{}", std::process::id()))?;
    let profile = Profile {
        account_id: AccountId::parse(emu.account_id())?,
        client_id: fx.public_client_id.clone(),
        client_secret: None,
        redirect_uri: Some(Url::parse(&fx.redirect_uri).map_err(|e| Error::Other(e.to_string()))?),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides {
            base_url: Some(Url::parse(&emu.base_url()).map_err(|e| Error::Other(e.to_string()))?),
            ..Default::default()
        },
        refresh_token_validity_hours: None,
    };
    profile.validate().map_err(Error::Invalid)?;
    store
        .put(&name, &Record::new(profile), Precondition::Create)
        .await?;
    step(
        1,
        "profile",
        format!(
            "{name}: account {}, public client {}, PKCE S256",
            emu.account_id(),
            fx.public_client_id
        ),
    );

    let (url, _) = login::start(store.as_ref(), &name, None, time::Duration::minutes(10)).await?;
    let landed = nsauth_emulator::browser_login(url.as_str(), &fx.email, &fx.password, true)
        .await
        .map_err(Error::Other)?;
    let http = Http::new()?;
    let tokens = login::finish(store.as_ref(), &http, &name, &landed).await?;
    let now = time::OffsetDateTime::now_utc();
    step(
        2,
        "login",
        format!(
            "{} logged in on the emulator's page; refresh token valid until {}",
            fx.email,
            output::when(tokens.refresh_expires_at.unwrap_or(now), now)
        ),
    );

    let broker = Broker::new(store.clone(), http.clone(), BrokerConfig::default());
    let (t, outcome) = broker.access_token(&name, Duration::from_secs(60)).await?;
    step(
        3,
        "token",
        format!(
            "{outcome:?}: access token {} (fingerprint), valid until {}",
            t.access_token.fingerprint(),
            output::when(t.access_expires_at, now)
        ),
    );

    let old_rt = t
        .refresh_token
        .as_ref()
        .map(|r| r.fingerprint())
        .unwrap_or_default();
    let r = broker.force_refresh(&name).await?;
    let new_rt = r
        .refresh_token
        .as_ref()
        .map(|r| r.fingerprint())
        .unwrap_or_default();
    step(
        4,
        "refresh",
        format!(
            "new access token {}; public client, so the refresh token rotated {old_rt} -> {new_rt}",
            r.access_token.fingerprint()
        ),
    );

    let rec = store::load_existing(store.as_ref(), &name).await?.record;
    let st = output::status_json(name.as_str(), &rec, time::OffsetDateTime::now_utc());
    step(
        5,
        "status",
        format!(
            "health {}, {} refresh(es), access token until {}",
            st["health"].as_str().unwrap_or("?"),
            st["refresh_count"],
            st["access_token_expires_at"].as_str().unwrap_or("-")
        ),
    );

    let rt = rec
        .tokens
        .as_ref()
        .and_then(|t| t.refresh_token.clone())
        .ok_or_else(|| Error::Other("no refresh token after refresh".into()))?;
    flows::revoke(&http, &rec.profile, &rt).await?;
    store::update(store.as_ref(), &name, |r| {
        r.tokens = None;
        Ok(())
    })
    .await?;
    step(
        6,
        "revoke",
        "refresh token revoked at the emulator; tokens removed, profile kept",
    );

    let after = broker.access_token(&name, Duration::from_secs(60)).await;
    match after {
        Err(e @ Error::LoginNeeded(_)) => step(
            7,
            "token",
            format!("now says: {e} (exit code {})", crate::exit::exit_code(&e)),
        ),
        other => {
            return Err(Error::Other(format!(
                "after revoke, token should need a login, got {other:?}"
            )))
        }
    }
    let c = emu.counters();
    println!(
        "done: the emulator saw {} token request(s) ({} code exchange, {} refresh) and {} revoke",
        c.token_requests, c.authorization_code, c.refresh_token, c.revoke
    );
    store.delete(&name, None).await?;
    emu.shutdown().await;
    Ok(Exit::Success)
}
