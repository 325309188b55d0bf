//! The broker's single-flight refresh, on top of the store under test.

use crate::Fixture;
use nsauth_core::account::AccountId;
use nsauth_core::broker::{Broker, BrokerConfig, Outcome};
use nsauth_core::http::{Http, HttpConfig};
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{self, Lease, Precondition, Record};
use nsauth_emulator::{ClientSpec, Emulator};
use std::time::Duration;

const USER: &str = "conformance@example.com";
const PASSWORD: &str = "conformance-password";
const CLIENT: &str = "conformance-public";
const REDIRECT: &str = "https://127.0.0.1:53682/callback";

pub(crate) async fn logged_in_profile(fx: &dyn Fixture, emu: &Emulator) -> ProfileName {
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
    nsauth_core::login::finish(store.as_ref(), &http(), &name, &landed)
        .await
        .expect("login finish");
    name
}

/// Short limits so that lease checks run in seconds: a 2 s HTTP deadline and a 2 s store
/// timeout allow a 4 s lease (the broker refuses a lease shorter than the two together).
pub(crate) fn config() -> BrokerConfig {
    BrokerConfig {
        lease_ttl: Duration::from_secs(4),
        wait_limit: Duration::from_secs(30),
        store_timeout: Duration::from_secs(2),
        ..BrokerConfig::default()
    }
}

/// An HTTP client whose deadline fits [`config`]'s lease.
pub(crate) fn http() -> Http {
    Http::with_config(HttpConfig {
        deadline: Duration::from_secs(2),
        ..HttpConfig::default()
    })
    .expect("http")
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
            let broker = Broker::new(store, http(), config());
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
            ttl_ms: None,
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
            Broker::new(store, http(), config())
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

/// Wraps a store and fails every write after the first `allowed` ones, as a store that goes
/// down in the middle of a refresh would.
#[derive(Debug)]
pub(crate) struct FailingWrites {
    pub(crate) inner: std::sync::Arc<dyn nsauth_core::TokenStore>,
    pub(crate) allowed: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl nsauth_core::TokenStore for FailingWrites {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn capabilities(&self) -> nsauth_core::store::Capabilities {
        self.inner.capabilities()
    }
    async fn load(
        &self,
        name: &ProfileName,
    ) -> Result<Option<nsauth_core::store::Versioned>, nsauth_core::StoreError> {
        self.inner.load(name).await
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<nsauth_core::store::Version, nsauth_core::StoreError> {
        use std::sync::atomic::Ordering;
        if self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(nsauth_core::StoreError::Unavailable {
                message: "injected: store went away".into(),
                retryable: false,
            });
        }
        self.inner.put(name, record, condition).await
    }
    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&nsauth_core::store::Version>,
    ) -> Result<(), nsauth_core::StoreError> {
        self.inner.delete(name, version).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, nsauth_core::StoreError> {
        self.inner.list().await
    }
}

/// The store fails after NetSuite rotated a public client's refresh token: the new tokens go
/// to the recovery journal, the caller still gets its token, and the next run writes them to
/// the store — no login needed, the rotated refresh token is not lost.
pub async fn journal_keeps_rotated_token_when_store_fails(fx: &dyn Fixture) {
    use nsauth_core::journal::Journal;
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    emu.set_access_ttl(120);
    let name = logged_in_profile(fx, &emu).await;
    let dir = tempfile_dir();
    let journal = || Journal::new(dir.join("journal"), Some(dir.join("journal.key")));
    // The lease write succeeds, the write of the refreshed tokens fails.
    let failing = std::sync::Arc::new(FailingWrites {
        inner: fx.open().await,
        allowed: 1.into(),
    });
    let a = Broker::new(failing, http(), config()).with_journal(journal());
    let (t2, outcome) = a
        .access_token(&name, Duration::from_secs(300))
        .await
        .expect("the caller still gets its token");
    assert_eq!(outcome, Outcome::Refreshed);
    assert!(
        a.recovery_pending(&name),
        "the refreshed tokens must be in the journal"
    );
    let store = fx.open().await;
    let stale = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
    assert_ne!(
        stale
            .tokens
            .as_ref()
            .map(|t| t.access_token.secret().to_owned()),
        Some(t2.access_token.secret().to_owned())
    );

    // Next run, store healthy: the journal is written first, then a forced refresh works
    // with the rotated refresh token (the old one is dead at NetSuite).
    let b = Broker::new(fx.open().await, http(), config()).with_journal(journal());
    let (t, _) = b
        .access_token(&name, Duration::from_secs(60))
        .await
        .expect("token after recovery");
    assert_eq!(
        t.access_token.secret(),
        t2.access_token.secret(),
        "the journaled token is served"
    );
    assert!(
        !b.recovery_pending(&name),
        "the journal entry is gone once stored"
    );
    b.force_refresh(&name)
        .await
        .expect("the rotated refresh token was kept: no login needed");
    assert_eq!(emu.counters().refresh_token, 2);
    store.delete(&name, None).await.expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}

pub(crate) fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nsauth-journal-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
