//! The broker's single-flight refresh, on top of the store under test.

use crate::Fixture;
use nsauth_core::account::AccountId;
use nsauth_core::broker::{Broker, BrokerConfig, Outcome};
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{self, Lease, Precondition, Record};
use nsauth_emulator::{ClientSpec, Emulator};
use std::time::Duration;

const USER: &str = "conformance@example.com";
const PASSWORD: &str = "conformance-password";
const CLIENT: &str = "conformance-public";
const REDIRECT: &str = "https://127.0.0.1:53682/callback";

async fn logged_in_profile(fx: &dyn Fixture, emu: &Emulator) -> ProfileName {
    emu.add_user(USER, PASSWORD);
    emu.add_client(ClientSpec::public(CLIENT, REDIRECT));
    let name =
        ProfileName::parse(&format!("sf-{}", uuid::Uuid::new_v4().simple())).expect("valid name");
    let profile = Profile {
        account_id: AccountId::parse(emu.account_id()).expect("emulator account"),
        client_id: CLIENT.into(),
        client_secret: None,
        redirect_uri: Some(REDIRECT.parse().expect("url")),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides {
            base_url: Some(emu.base_url().parse().expect("url")),
            ..Default::default()
        },
        refresh_token_validity_hours: None,
    };
    let store = fx.open().await;
    store
        .put(&name, &Record::new(profile), Precondition::Create)
        .await
        .expect("create profile");
    let (url, _) =
        nsauth_core::login::start(store.as_ref(), &name, None, time::Duration::minutes(5))
            .await
            .expect("login start");
    let landed = nsauth_emulator::browser_login(url.as_str(), USER, PASSWORD, true)
        .await
        .expect("browser login");
    nsauth_core::login::finish(store.as_ref(), &Http::new().expect("http"), &name, &landed)
        .await
        .expect("login finish");
    name
}

fn config() -> BrokerConfig {
    BrokerConfig {
        lease_ttl: Duration::from_secs(3),
        poll_interval: Duration::from_millis(50),
        wait_limit: Duration::from_secs(30),
    }
}

/// 16 brokers, each on its own store handle, ask for a token after expiry at the same time:
/// exactly one refresh reaches the token endpoint and all 16 get the winner's token.
pub async fn single_flight_refresh(fx: &dyn Fixture) {
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    emu.set_access_ttl(120);
    let name = logged_in_profile(fx, &emu).await;
    emu.set_access_ttl(3600);
    emu.inject(nsauth_emulator::Fault::Delay(Duration::from_millis(500)));
    let before = emu.counters();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = fx.open().await;
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let broker = Broker::new(store, Http::new().expect("http"), config());
            broker.access_token(&name, Duration::from_secs(300)).await
        }));
    }
    let mut tokens = std::collections::BTreeSet::new();
    let mut refreshed = 0;
    for t in tasks {
        let (set, outcome) = t.await.expect("task").expect("every caller gets a token");
        if outcome == Outcome::Refreshed {
            refreshed += 1;
        }
        tokens.insert(set.access_token.secret().to_owned());
    }
    let after = emu.counters();
    assert_eq!(
        after.refresh_token - before.refresh_token,
        1,
        "exactly one refresh must reach NetSuite"
    );
    assert_eq!(after.token_requests - before.token_requests, 1);
    assert_eq!(refreshed, 1, "exactly one caller refreshed");
    assert_eq!(tokens.len(), 1, "every caller got the winner's token");
    let store = fx.open().await;
    let rec = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
    assert!(rec.lease.is_none(), "the winner released its lease");
    assert_eq!(rec.meta.refresh_count, 1);
    store.delete(&name, None).await.expect("cleanup");
    emu.shutdown().await;
}

/// A lease left behind by a dead holder delays others by at most the lease time, then one
/// of them takes over and refreshes once.
pub async fn dead_lease_is_taken_over(fx: &dyn Fixture) {
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    emu.set_access_ttl(120);
    let name = logged_in_profile(fx, &emu).await;
    let store = fx.open().await;
    let lease_ttl = config().lease_ttl;
    store::update(store.as_ref(), &name, |rec| {
        rec.lease = Some(Lease {
            holder: "dead-process".into(),
            until: time::OffsetDateTime::now_utc() + lease_ttl,
        });
        Ok(())
    })
    .await
    .expect("plant a dead lease");
    let before = emu.counters();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = fx.open().await;
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            Broker::new(store, Http::new().expect("http"), config())
                .access_token(&name, Duration::from_secs(300))
                .await
        }));
    }
    for t in tasks {
        t.await
            .expect("task")
            .expect("a waiter takes over after the lease expires");
    }
    let waited = started.elapsed();
    assert!(
        waited < lease_ttl + Duration::from_secs(10),
        "waited {waited:?} for a {lease_ttl:?} lease"
    );
    assert!(
        waited + Duration::from_millis(500) >= lease_ttl,
        "the live lease was not honoured (waited {waited:?})"
    );
    assert_eq!(
        emu.counters().refresh_token - before.refresh_token,
        1,
        "one takeover refresh, not one per waiter"
    );
    store.delete(&name, None).await.expect("cleanup");
    emu.shutdown().await;
}
