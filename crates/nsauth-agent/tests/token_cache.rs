//! The agent's token cache against the emulator: a cached token never touches the store, many
//! requests for a token that must be refreshed make one broker call and one refresh, and a
//! token fetched in the background is what requests get.

use async_trait::async_trait;
use nsauth_agent::metrics::Metrics;
use nsauth_agent::refresher::Schedule;
use nsauth_agent::token::Tokens;
use nsauth_core::account::AccountId;
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{Capabilities, Precondition, Record, StoreError, Version, Versioned};
use nsauth_core::TokenStore;
use nsauth_emulator::{ClientSpec, Emulator};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const REDIRECT: &str = "https://127.0.0.1:53682/callback";
const CLIENT: &str = "agent-client";
const USER: (&str, &str) = ("agent@example.com", "agent-password");

/// A memory store that counts its reads.
#[derive(Debug, Default)]
struct Counting {
    inner: nsauth_store::MemoryStore,
    loads: AtomicU64,
}

#[async_trait]
impl TokenStore for Counting {
    fn describe(&self) -> String {
        "memory://counting".into()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(name).await
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        self.inner.put(name, record, condition).await
    }
    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        self.inner.delete(name, version).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}

async fn emulator() -> Emulator {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emu.add_user(USER.0, USER.1);
    emu.add_client(ClientSpec::public(CLIENT, REDIRECT));
    emu
}

async fn log_in(emu: &Emulator, store: &dyn TokenStore, name: &str) {
    let name = ProfileName::parse(name).unwrap();
    let mut profile = Profile::new(AccountId::parse(emu.account_id()).unwrap(), CLIENT);
    profile.redirect_uri = Some(REDIRECT.parse().unwrap());
    profile.scopes = vec!["rest_webservices".into()];
    profile.grant = GrantKind::AuthorizationCode;
    profile.endpoints = EndpointOverrides {
        base_url: Some(emu.base_url().parse().unwrap()),
        ..Default::default()
    };
    store
        .put(&name, &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    let (url, _) = nsauth_core::login::start(store, &name, None, time::Duration::minutes(5))
        .await
        .unwrap();
    let landed = nsauth_emulator::browser_login(url.as_str(), USER.0, USER.1, true)
        .await
        .unwrap();
    nsauth_core::login::finish(store, &Http::new().unwrap(), &name, &landed)
        .await
        .unwrap();
}

fn tokens(store: Arc<Counting>) -> (Arc<Tokens>, Arc<Schedule>) {
    let client = nsauth::Client::builder()
        .store_instance(store)
        .without_journal()
        .build()
        .unwrap();
    let schedule = Arc::new(Schedule::default());
    let tokens = Tokens::new(
        client,
        Arc::new(Metrics::default()),
        schedule.clone(),
        false,
    );
    tokens.set_profiles(&[ProfileName::parse("p").unwrap()]);
    (Arc::new(tokens), schedule)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_handed_out_without_reading_the_store() {
    let emu = emulator().await;
    let store = Arc::new(Counting::default());
    log_in(&emu, store.as_ref(), "p").await;
    let (tokens, _) = tokens(store.clone());
    let first = tokens.get("p", Duration::from_secs(60)).await.unwrap();
    let loads = store.loads.load(Ordering::SeqCst);
    for _ in 0..1000 {
        assert_eq!(
            tokens.get("p", Duration::from_secs(60)).await.unwrap(),
            first
        );
    }
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        loads,
        "the hot path read the store"
    );
    let m = tokens.metrics();
    assert_eq!(m.served_from_cache.load(Ordering::Relaxed), 1000);
    assert_eq!(m.served_from_broker.load(Ordering::Relaxed), 1);
    // A profile not served is a 404-kind error without a store read.
    let e = tokens.get("other", Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(e, nsauth_core::Error::Store(StoreError::NotFound(_))),
        "{e:?}"
    );
    assert_eq!(store.loads.load(Ordering::SeqCst), loads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_for_more_life_make_one_broker_call_and_one_refresh() {
    let emu = emulator().await;
    emu.set_access_ttl(120);
    let store = Arc::new(Counting::default());
    log_in(&emu, store.as_ref(), "p").await;
    emu.set_access_ttl(3600);
    let (tokens, _) = tokens(store.clone());
    let before = emu.counters().refresh_token;
    emu.inject(nsauth_emulator::Fault::Delay(Duration::from_millis(300)));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let t = tokens.clone();
            tokio::spawn(async move { t.get("p", Duration::from_secs(600)).await.unwrap() })
        })
        .collect();
    let mut bodies = std::collections::BTreeSet::new();
    for t in tasks {
        bodies.insert(t.await.unwrap());
    }
    assert_eq!(emu.counters().refresh_token - before, 1, "one refresh");
    assert_eq!(bodies.len(), 1, "every caller got the one new token");
    assert_eq!(
        tokens.metrics().served_from_broker.load(Ordering::Relaxed),
        1,
        "one broker call inside the agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_renewal_refreshes_once_and_requests_get_the_new_token() {
    let emu = emulator().await;
    emu.set_access_ttl(120);
    let store = Arc::new(Counting::default());
    log_in(&emu, store.as_ref(), "p").await;
    let (tokens, schedule) = tokens(store.clone());
    let old = tokens.get("p", Duration::from_secs(60)).await.unwrap();
    assert!(schedule.due_at("p").is_some(), "a refresh is scheduled");
    let before = emu.counters().refresh_token;
    let slot = tokens.slot("p").unwrap();
    let fetched = tokens.renew(&slot).await.unwrap();
    assert_eq!(fetched.outcome, nsauth_core::broker::Outcome::Refreshed);
    assert_eq!(emu.counters().refresh_token - before, 1);
    let new = tokens.get("p", Duration::from_secs(60)).await.unwrap();
    assert_ne!(new, old, "requests get the renewed token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_after_another_process_refreshed_takes_its_token_without_refreshing() {
    let emu = emulator().await;
    emu.set_access_ttl(120);
    let store = Arc::new(Counting::default());
    log_in(&emu, store.as_ref(), "p").await;
    let (tokens, _) = tokens(store.clone());
    let old = tokens.get("p", Duration::from_secs(60)).await.unwrap();
    // Another process (here: another client on the same store) refreshes first.
    emu.set_access_ttl(3600);
    let other = nsauth::Client::builder()
        .store_instance(store.clone())
        .without_journal()
        .build()
        .unwrap();
    let theirs = other.force_refresh("p").await.unwrap();
    let before = emu.counters().refresh_token;
    let fetched = tokens.renew(&tokens.slot("p").unwrap()).await.unwrap();
    assert_eq!(fetched.outcome, nsauth_core::broker::Outcome::Cached);
    assert_eq!(
        emu.counters().refresh_token,
        before,
        "no second refresh for one expiry"
    );
    let now = tokens.get("p", Duration::from_secs(60)).await.unwrap();
    assert_ne!(now, old);
    let v: serde_json::Value = serde_json::from_slice(&now).unwrap();
    assert_eq!(v["access_token"], theirs.access_token.secret());
}
