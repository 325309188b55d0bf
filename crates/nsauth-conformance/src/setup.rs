//! Set-up shared by the broker checks: an emulator with a logged-in profile on the store under
//! test, short broker limits, a recovery journal in a temporary directory, a store whose writes
//! fail, and the clean-up after a check.

use crate::Fixture;
use nsauth_core::account::AccountId;
use nsauth_core::broker::{Broker, BrokerConfig};
use nsauth_core::http::{Http, HttpConfig};
use nsauth_core::journal::Journal;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{self, Lease, Precondition, Record};
use nsauth_core::TokenStore;
use nsauth_emulator::{ClientSpec, Emulator};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const USER: &str = "conformance@example.com";
const PASSWORD: &str = "conformance-password";
const CLIENT: &str = "conformance-public";
const REDIRECT: &str = "https://127.0.0.1:53682/callback";

/// A NetSuite emulator on a free local port.
pub(crate) async fn emulator() -> Emulator {
    Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator")
}

/// An emulator and a profile logged in on the store under test whose access token expires
/// within two minutes, so that asking for 300 s of validity refreshes.
pub(crate) async fn expiring_login(fx: &dyn Fixture) -> (Emulator, ProfileName) {
    let emu = emulator().await;
    emu.set_access_ttl(120);
    let name = logged_in_profile(fx, &emu).await;
    (emu, name)
}

pub(crate) async fn logged_in_profile(fx: &dyn Fixture, emu: &Emulator) -> ProfileName {
    emu.add_user(USER, PASSWORD);
    emu.add_client(ClientSpec::public(CLIENT, REDIRECT));
    let name = crate::sample::scratch_name(fx, "sf");
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

/// The record `name` holds in `store`.
pub(crate) async fn load(store: &dyn TokenStore, name: &ProfileName) -> Record {
    store::load_existing(store, name)
        .await
        .expect("load")
        .record
}

/// Leaves a lease of `holder`, valid until `until`, in `name`'s record, as a process that
/// died in the middle of a refresh would.
pub(crate) async fn plant_lease(
    store: &dyn TokenStore,
    name: &ProfileName,
    holder: &str,
    until: time::OffsetDateTime,
    what: &str,
) {
    store::update(store, name, |rec| {
        rec.lease = Some(Lease {
            holder: holder.into(),
            until,
            ttl_ms: None,
        });
        Ok(())
    })
    .await
    .expect(what);
}

/// A new empty directory under the system's temporary directory.
pub(crate) fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("nsauth-journal-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The recovery journal in `dir`, sealed with the key in that directory.
pub(crate) fn journal_in(dir: &Path) -> Journal {
    Journal::new(dir.join("journal"), Some(dir.join("journal.key")))
}

/// A broker on `store` with [`config`]'s limits and the recovery journal in `dir`.
pub(crate) fn journaled_broker(store: Arc<dyn TokenStore>, dir: &Path) -> Broker {
    Broker::new(store, http(), config()).with_journal(journal_in(dir))
}

/// Removes `name` from `store` and stops the emulator: the end of every broker check.
pub(crate) async fn clean_up(store: &dyn TokenStore, name: &ProfileName, emu: Emulator) {
    store.delete(name, None).await.expect("cleanup");
    emu.shutdown().await;
}

/// Wraps a store and fails every write after the first `allowed` ones, as a store that goes
/// down in the middle of a refresh would.
#[derive(Debug)]
pub(crate) struct FailingWrites {
    pub(crate) inner: Arc<dyn TokenStore>,
    pub(crate) allowed: std::sync::atomic::AtomicUsize,
}

impl FailingWrites {
    /// `inner`, whose writes fail after the first `allowed`.
    pub(crate) fn after(inner: Arc<dyn TokenStore>, allowed: usize) -> Arc<Self> {
        Arc::new(FailingWrites {
            inner,
            allowed: allowed.into(),
        })
    }
}

#[async_trait::async_trait]
impl TokenStore for FailingWrites {
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
