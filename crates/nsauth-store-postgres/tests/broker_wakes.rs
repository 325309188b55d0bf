//! The broker's lease waiters use LISTEN/NOTIFY: a waiter on the postgres store reads the
//! store once more after the holder saves its token, instead of at every pause. The same
//! wait with notifications hidden (the store's default `wait_for_change`) is the control.

mod common;

use async_trait::async_trait;
use nsauth_core::account::AccountId;
use nsauth_core::broker::{Broker, BrokerConfig, Outcome};
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_core::{StoreError, TokenStore};
use nsauth_emulator::{ClientSpec, Emulator, Fault};
use nsauth_store_local::seal::StoreKey;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "wakes-public";
const REDIRECT: &str = "https://127.0.0.1:53682/callback";

/// Counts loads; with `hide`, claims no notifications.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn TokenStore>,
    loads: AtomicUsize,
    hide: bool,
}

#[async_trait]
impl TokenStore for Counted {
    fn describe(&self) -> String {
        self.inner.describe()
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
    async fn wait_for_change(&self, name: &ProfileName, seen: &Version, timeout: Duration) -> bool {
        !self.hide && self.inner.wait_for_change(name, seen, timeout).await
    }
}

/// A profile logged in at `emu`, stored in `store`, whose access token expires in 2 min.
async fn logged_in(store: &dyn TokenStore, emu: &Emulator) -> ProfileName {
    emu.set_access_ttl(120);
    emu.add_user("u@example.com", "pw");
    emu.add_client(ClientSpec::public(CLIENT, REDIRECT));
    let name = ProfileName::parse("prod").unwrap();
    let profile = Profile {
        account_id: AccountId::parse(emu.account_id()).unwrap(),
        client_id: CLIENT.into(),
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
    store
        .put(&name, &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    let (url, _) = nsauth_core::login::start(store, &name, None, time::Duration::minutes(5))
        .await
        .unwrap();
    let landed = nsauth_emulator::browser_login(url.as_str(), "u@example.com", "pw", true)
        .await
        .unwrap();
    nsauth_core::login::finish(store, &Http::new().unwrap(), &name, &landed)
        .await
        .unwrap();
    name
}

/// How many times a waiter read the store while another broker's 2 s refresh ran.
async fn waiter_loads(pg: &common::Pg, hide: bool) -> usize {
    let table = common::unique_table();
    let key = StoreKey::generate();
    let open = || -> Arc<dyn TokenStore> { Arc::new(pg.store(&table, &key)) };
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let name = logged_in(open().as_ref(), &emu).await;
    emu.set_access_ttl(3600);
    emu.inject(Fault::Delay(Duration::from_secs(2)));
    let holder = Broker::new(open(), Http::new().unwrap(), BrokerConfig::default());
    let n = name.clone();
    let holding =
        tokio::spawn(async move { holder.access_token(&n, Duration::from_secs(300)).await });
    let probe = open();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while probe
        .load(&name)
        .await
        .unwrap()
        .unwrap()
        .record
        .lease
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the holder never took its lease"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counted = Arc::new(Counted {
        inner: open(),
        loads: AtomicUsize::new(0),
        hide,
    });
    // First pause 10 ms, growing to 10 s: without notifications about a dozen reads in
    // the 2 s, with them the waiter sleeps until the holder's save.
    let waiter = Broker::new(
        Arc::clone(&counted) as Arc<dyn TokenStore>,
        Http::new().unwrap(),
        BrokerConfig {
            poll_interval: Duration::from_millis(10),
            max_poll_interval: Duration::from_secs(10),
            ..BrokerConfig::default()
        },
    );
    let (got, outcome) = waiter
        .access_token(&name, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Waited);
    let (held, _) = holding.await.unwrap().unwrap();
    assert_eq!(got.access_token.secret(), held.access_token.secret());
    assert_eq!(emu.counters().refresh_token, 1);
    emu.shutdown().await;
    counted.loads.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_waiters_sleep_until_notified() {
    let Some(pg) = common::pg() else { return };
    let notified = waiter_loads(&pg, false).await;
    let polled = waiter_loads(&pg, true).await;
    eprintln!("store reads of one waiter: {notified} with NOTIFY, {polled} polling");
    assert!(
        notified <= 3,
        "with NOTIFY the waiter read {notified} times"
    );
    assert!(polled >= 6, "the control polled only {polled} times");
}
