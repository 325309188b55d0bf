//! A refresh storm: many callers find the token expiring at once. Exactly one refresh reaches
//! NetSuite, and the waiters back off (growing, jittered pauses) instead of polling the store
//! every 100 ms — which on Secrets Manager put 128 concurrent callers at a 3.7 s p99.

mod model;

use model::Memory;
use nsauth_core::account::AccountId;
use nsauth_core::broker::{Broker, BrokerConfig, Outcome};
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{Precondition, Record};
use nsauth_core::TokenStore;
use nsauth_emulator::{ClientSpec, Emulator, Fault};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const REDIRECT: &str = "https://127.0.0.1:53682/callback";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_back_off_and_one_refresh_reaches_netsuite() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emu.add_user("storm@example.com", "pw");
    emu.add_client(ClientSpec::public("storm", REDIRECT));
    emu.set_access_ttl(120);
    let memory = Arc::new(Memory::default());
    let name = ProfileName::parse("storm").unwrap();
    let profile = Profile {
        account_id: AccountId::parse(emu.account_id()).unwrap(),
        client_id: "storm".into(),
        client_secret: None,
        redirect_uri: Some(REDIRECT.parse().unwrap()),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides {
            base_url: Some(emu.base_url().parse().unwrap()),
            ..Default::default()
        },
        refresh_token_validity_hours: None,
    };
    memory
        .put(&name, &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    let (url, _) =
        nsauth_core::login::start(memory.as_ref(), &name, None, time::Duration::minutes(5))
            .await
            .unwrap();
    let landed = nsauth_emulator::browser_login(url.as_str(), "storm@example.com", "pw", true)
        .await
        .unwrap();
    nsauth_core::login::finish(memory.as_ref(), &Http::new().unwrap(), &name, &landed)
        .await
        .unwrap();
    emu.set_access_ttl(3600);
    emu.inject(Fault::Delay(Duration::from_millis(1500)));
    let before = emu.counters().token_requests;
    let calls_before = memory.calls.load(Ordering::Relaxed);
    const CALLERS: u64 = 16;
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let store: Arc<dyn TokenStore> = memory.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            Broker::new(store, Http::new().unwrap(), BrokerConfig::default())
                .access_token(&name, Duration::from_secs(300))
                .await
        }));
    }
    let mut refreshed = 0;
    for t in tasks {
        let (_, outcome) = t.await.unwrap().expect("every caller gets a token");
        refreshed += u64::from(outcome == Outcome::Refreshed);
    }
    assert_eq!(refreshed, 1);
    assert_eq!(
        emu.counters().token_requests - before,
        1,
        "one refresh reaches NetSuite"
    );
    // Polling every 100 ms costs each waiter ~15 reads during a 1.5 s refresh; backing off
    // from 40 ms by x1.6 costs ~7.
    let calls = memory.calls.load(Ordering::Relaxed) - calls_before;
    eprintln!("{calls} store calls for {CALLERS} callers during a 1.5 s refresh");
    assert!(
        calls <= CALLERS * 10,
        "{calls} store calls for {CALLERS} callers: waiters are hammering the store"
    );
    emu.shutdown().await;
}
