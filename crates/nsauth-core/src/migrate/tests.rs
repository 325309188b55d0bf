//! `migrate` over an in-memory CAS store that can run a fault (another process's refresh)
//! at the worst moments: right after the copy lands, and right after the destination is
//! read.

use super::*;
use crate::account::AccountId;
use crate::profile::{EndpointOverrides, GrantKind, Profile};
use crate::secret::{AccessToken, RefreshToken};
use crate::store::{Capabilities, FailureKind, Lease, Version};
use crate::token::TokenSet;
use async_trait::async_trait;
use nsauth_store::MemoryStore;
use std::sync::{Arc, Mutex};

type Hook = Box<dyn FnOnce() + Send>;

/// [`MemoryStore`] with faults: `after_create` / `after_load` run once, right after that
/// operation.
#[derive(Default)]
struct Memory {
    store: MemoryStore,
    after_create: Mutex<Option<Hook>>,
    after_load: Mutex<Option<Hook>>,
    /// The next compare-and-swap lands, but its caller is told the store is unavailable.
    lose_next_cas_answer: Mutex<bool>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memory")
    }
}

/// Runs a [`MemoryStore`] call to completion right here: it never waits, and the hooks
/// that call it are synchronous.
fn now<T>(call: impl std::future::Future<Output = T>) -> T {
    let mut call = std::pin::pin!(call);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match call.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("MemoryStore never waits"),
    }
}

impl Memory {
    fn get(&self, name: &str) -> Option<Record> {
        let name = ProfileName::parse(name).unwrap();
        now(self.store.load(&name)).unwrap().map(|v| v.record)
    }
    /// Writes `record` whatever is there, as another process would.
    fn set(&self, name: &str, record: Record) {
        let name = ProfileName::parse(name).unwrap();
        let condition = match now(self.store.load(&name)).unwrap() {
            Some(current) => Precondition::Match(current.version),
            None => Precondition::Create,
        };
        now(self.store.put(&name, &record, condition)).unwrap();
    }
    fn fire(hook: &Mutex<Option<Hook>>) {
        let hook = hook.lock().unwrap().take();
        if let Some(h) = hook {
            h();
        }
    }
}

#[async_trait]
impl TokenStore for Memory {
    fn describe(&self) -> String {
        format!("memory://{:p}", self)
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let got = self.store.load(name).await;
        Memory::fire(&self.after_load);
        got
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let written = self.store.put(name, record, condition.clone()).await?;
        if condition == Precondition::Create {
            Memory::fire(&self.after_create);
        } else if std::mem::take(&mut *self.lose_next_cas_answer.lock().unwrap()) {
            return Err(StoreError::Unavailable {
                message: "timed out".into(),
                retryable: true,
            });
        }
        Ok(written)
    }
    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        self.store.delete(name, version).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.store.list().await
    }
}

fn profile(public: bool) -> Profile {
    Profile {
        account_id: AccountId::parse("1234567").unwrap(),
        client_id: "cid".into(),
        client_secret: (!public).then(|| crate::secret::ClientSecret::new("s3cret")),
        redirect_uri: Some(url::Url::parse("https://example.com/cb").unwrap()),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: None,
    }
}

fn tokens(generation: u32) -> TokenSet {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    TokenSet {
        access_token: AccessToken::new(format!("access-{generation}")),
        access_expires_at: now + time::Duration::hours(1),
        refresh_token: Some(RefreshToken::new(format!("refresh-{generation}"))),
        refresh_expires_at: Some(now + time::Duration::days(7)),
        obtained_at: now,
    }
}

fn logged_in(public: bool, generation: u32) -> Record {
    let mut r = Record::new(profile(public));
    r.tokens = Some(tokens(generation));
    r
}

fn refresh_token(r: &Record) -> Option<String> {
    r.tokens
        .as_ref()
        .and_then(|t| t.refresh_token.as_ref())
        .map(|t| t.secret().to_owned())
}

fn name() -> ProfileName {
    ProfileName::parse("pub").unwrap()
}

fn stores() -> (Arc<Memory>, Arc<Memory>) {
    (Arc::default(), Arc::default())
}

/// Stores where the source holds `src` and, when given, the destination holds `dst`.
fn stores_with(src: Record, dst: Option<Record>) -> (Arc<Memory>, Arc<Memory>) {
    let (s, d) = stores();
    s.set("pub", src);
    if let Some(dst) = dst {
        d.set("pub", dst);
    }
    (s, d)
}

/// Migrates profile "pub" from `src` to `dst`, without a recovery journal.
async fn run(src: &Memory, dst: &dyn TokenStore, dry_run: bool) -> Result<Outcome, Error> {
    migrate_profile(src, dst, &name(), dry_run, None).await
}

/// Runs a migration that must fail with an error of `kind`; returns its error.
async fn run_fails(src: &Memory, dst: &dyn TokenStore, kind: FailureKind) -> Error {
    let err = run(src, dst, false).await.unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    err
}

/// The refresh token `store` holds for "pub".
fn held(store: &Memory) -> String {
    refresh_token(&store.get("pub").unwrap()).unwrap()
}

/// Whether `store`'s "pub" record is marked moved.
fn moved(store: &Memory) -> bool {
    store.get("pub").unwrap().moved.is_some()
}

/// Sets `hook` to refresh the source to generation 2, as another process would.
fn refresh_source_on(hook: &Mutex<Option<Hook>>, src: &Arc<Memory>) {
    let s = Arc::clone(src);
    *hook.lock().unwrap() = Some(Box::new(move || {
        s.set("pub", logged_in(true, 2));
    }));
}

#[tokio::test]
async fn copies_and_retires_a_public_source() {
    let (src, dst) = stores_with(logged_in(true, 1), None);
    let out = run(&src, dst.as_ref(), false).await.unwrap();
    assert_eq!(
        out,
        Outcome::Copied {
            tokens: true,
            source_retired: true
        }
    );
    assert_eq!(held(&dst), "refresh-1");
    let s = src.get("pub").unwrap();
    assert!(s.tokens.is_none() && s.moved.is_some());
}

#[tokio::test]
async fn destination_created_first_without_tokens_is_refused_and_the_source_kept() {
    let (src, dst) = stores_with(logged_in(true, 1), Some(Record::new(profile(true))));
    let err = run_fails(&src, dst.as_ref(), FailureKind::Invalid).await;
    assert!(err.to_string().contains("without tokens"), "{err}");
    assert_eq!(held(&src), "refresh-1", "source tokens kept");
    assert!(!moved(&src));
    assert!(dst.get("pub").unwrap().tokens.is_none());
}

#[tokio::test]
async fn destination_with_older_tokens_is_refused_and_the_source_kept() {
    // A first run copied generation 1; its retire failed; the source refreshed since.
    let (src, dst) = stores_with(logged_in(true, 2), Some(logged_in(true, 1)));
    run_fails(&src, dst.as_ref(), FailureKind::Invalid).await;
    assert_eq!(held(&src), "refresh-2");
    assert!(!moved(&src));
    assert_eq!(held(&dst), "refresh-1");
}

#[tokio::test]
async fn rerun_after_a_failed_retire_finishes_when_the_destination_holds_the_tokens() {
    let (src, dst) = stores_with(logged_in(true, 1), Some(logged_in(true, 1)));
    let out = run(&src, dst.as_ref(), false).await.unwrap();
    assert_eq!(
        out,
        Outcome::AlreadyThere {
            source_retired: true
        }
    );
    assert!(moved(&src));
}

#[tokio::test]
async fn a_refresh_between_copy_and_retire_is_never_wiped() {
    let (src, dst) = stores_with(logged_in(true, 1), None);
    // Another process refreshes the source: generation 1 is now consumed.
    refresh_source_on(&dst.after_create, &src);
    let err = run_fails(&src, dst.as_ref(), FailureKind::Invalid).await;
    assert!(err.to_string().contains("run migrate again"), "{err}");
    assert_eq!(held(&src), "refresh-2", "the refresh survived");
    assert!(!moved(&src));
    assert!(dst.get("pub").is_none(), "the stale copy was taken back");
    // A re-run now copies the current tokens.
    run(&src, dst.as_ref(), false).await.unwrap();
    assert_eq!(held(&dst), "refresh-2");
}

#[tokio::test]
async fn a_refresh_during_a_rerun_is_never_wiped() {
    let (src, dst) = stores_with(logged_in(true, 1), Some(logged_in(true, 1)));
    refresh_source_on(&dst.after_load, &src);
    run_fails(&src, dst.as_ref(), FailureKind::Invalid).await;
    assert_eq!(held(&src), "refresh-2");
    assert!(!moved(&src));
}

#[tokio::test]
async fn a_live_refresh_lease_is_refused() {
    let mut r = logged_in(true, 1);
    r.lease = Some(Lease {
        holder: "other".into(),
        until: OffsetDateTime::now_utc() + time::Duration::seconds(30),
        ttl_ms: Some(30_000),
    });
    let (src, dst) = stores_with(r, None);
    run_fails(&src, dst.as_ref(), FailureKind::Invalid).await;
    assert!(dst.get("pub").is_none());
    assert!(!moved(&src));
}

#[tokio::test]
async fn a_confidential_client_is_copied_and_never_retired() {
    let (src, dst) = stores_with(logged_in(false, 1), None);
    let out = run(&src, dst.as_ref(), false).await.unwrap();
    assert_eq!(
        out,
        Outcome::Copied {
            tokens: true,
            source_retired: false
        }
    );
    // Both copies refresh independently afterwards; a re-run changes nothing.
    src.set("pub", logged_in(false, 2));
    let again = run(&src, dst.as_ref(), false).await.unwrap();
    assert_eq!(
        again,
        Outcome::AlreadyThere {
            source_retired: false
        }
    );
    assert!(src.get("pub").unwrap().tokens.is_some());
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let (src, dst) = stores_with(logged_in(true, 1), Some(logged_in(true, 1)));
    let out = run(&src, dst.as_ref(), true).await.unwrap();
    assert_eq!(
        out,
        Outcome::AlreadyThere {
            source_retired: false
        }
    );
    assert!(!moved(&src));
}

/// Two handles on one store, as two URIs naming the same file would give.
#[derive(Debug)]
struct Alias(Arc<Memory>);

#[async_trait]
impl TokenStore for Alias {
    fn describe(&self) -> String {
        "memory://alias".into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.0.load(name).await
    }
    async fn put(
        &self,
        n: &ProfileName,
        r: &Record,
        c: Precondition,
    ) -> Result<Version, StoreError> {
        self.0.put(n, r, c).await
    }
    async fn delete(&self, n: &ProfileName, v: Option<&Version>) -> Result<(), StoreError> {
        self.0.delete(n, v).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.0.list().await
    }
}

#[tokio::test]
async fn the_same_store_under_another_name_is_refused() {
    let (src, _) = stores_with(logged_in(true, 1), None);
    let alias = Alias(Arc::clone(&src));
    run_fails(&src, &alias, FailureKind::Invalid).await;
    assert_eq!(held(&src), "refresh-1", "the only copy was wiped");
    assert!(!moved(&src));
}

#[tokio::test]
async fn tokens_waiting_in_the_recovery_journal_are_refused() {
    let (src, dst) = stores_with(logged_in(true, 1), None);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::new(dir.path().join("journal"), Some(dir.path().join("key")));
    // A refresh whose tokens the store refused: generation 2 waits in the journal.
    let entry = crate::journal::Entry::new(
        src.describe(),
        &name(),
        &logged_in(true, 1),
        "holder-that-died",
        tokens(2),
    );
    journal.save(&entry).unwrap();
    let err = migrate_profile(src.as_ref(), dst.as_ref(), &name(), false, Some(&journal))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Invalid, "{err}");
    assert!(err.to_string().contains("recovery journal"), "{err}");
    assert!(dst.get("pub").is_none());
    assert!(!moved(&src));
}

#[tokio::test]
async fn a_retire_whose_answer_was_lost_keeps_the_copy_and_a_rerun_finishes() {
    let (src, dst) = stores_with(logged_in(true, 1), None);
    *src.lose_next_cas_answer.lock().unwrap() = true;
    let err = run_fails(&src, dst.as_ref(), FailureKind::Store).await;
    assert!(err.to_string().contains("run migrate again"), "{err}");
    // The retire landed: the copy is now the only one and must stay.
    assert!(moved(&src));
    assert_eq!(held(&dst), "refresh-1");
    let again = run(&src, dst.as_ref(), false).await.unwrap();
    assert_eq!(
        again,
        Outcome::AlreadyThere {
            source_retired: false
        }
    );
    assert_eq!(held(&dst), "refresh-1");
}

mod histories;

#[tokio::test]
async fn a_certificate_rotation_in_progress_moves_with_the_profile() {
    let key = crate::m2m::generate_key(crate::m2m::KeyAlgorithm::EcP256, 30, "t").unwrap();
    let stored = crate::profile::StoredCertificate {
        private_key: key.private_key,
        certificate_pem: key.certificate_pem,
        certificate_id: Some("OLD".into()),
        created_at: time::OffsetDateTime::now_utc(),
    };
    let mut src = logged_in(false, 1);
    src.next_certificate = Some(stored.clone());
    src.previous_certificate = Some(stored);
    let (s, d) = stores_with(src.clone(), None);
    run(&s, d.as_ref(), false).await.unwrap();
    let copy = d.get("pub").unwrap();
    assert_eq!(copy.next_certificate, src.next_certificate);
    assert_eq!(copy.previous_certificate, src.previous_certificate);
}
