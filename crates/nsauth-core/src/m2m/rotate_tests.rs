//! `nsauth m2m rotate` over an in-memory store: refusals, replace, switch-over and back,
//! old records, redaction and a write that never lands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use nsauth_store::{Capabilities, MemoryStore, Precondition, StoreError, Version, Versioned};

use super::rotate::{self, RotateRequest, Switch};
use super::{generate_key, KeyAlgorithm};
use crate::account::AccountId;
use crate::profile::{GrantKind, Profile};
use crate::store::{self, Record, TokenStore};
use crate::{Error, ProfileName};

fn name() -> ProfileName {
    ProfileName::parse("m2m").unwrap()
}

fn m2m_profile() -> Profile {
    let current = generate_key(KeyAlgorithm::EcP256, 30, "current").unwrap();
    let mut p = Profile::new(AccountId::parse("1234567").unwrap(), "client");
    p.grant = GrantKind::ClientCredentials;
    p.certificate_id = Some("OLD".into());
    p.private_key = Some(current.private_key);
    p.certificate_pem = Some(current.certificate_pem);
    p
}

async fn store_with(profile: Profile) -> MemoryStore {
    let s = MemoryStore::new();
    s.put(&name(), &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    s
}

fn request(replace: bool) -> RotateRequest {
    RotateRequest {
        algorithm: None,
        days: 365,
        subject: "nsauth".into(),
        replace,
    }
}

async fn load(s: &dyn TokenStore) -> Record {
    store::load_existing(s, &name()).await.unwrap().record
}

fn invalid(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Invalid(m)) => {
            assert!(!m.contains('\n'), "not one line: {m}");
            m
        }
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_rotation_while_one_waits_is_refused_unless_replace() {
    let s = store_with(m2m_profile()).await;
    let first = rotate::rotate(&s, &name(), request(false)).await.unwrap();
    assert!(!first.replaced);
    let rec = load(&s).await;
    let waiting = rec.next_certificate.clone().expect("next stored");
    assert_eq!(waiting.certificate_pem, first.certificate_pem);
    assert_eq!(rec.profile.certificate_id.as_deref(), Some("OLD"));
    assert_ne!(rec.profile.private_key, Some(waiting.private_key.clone()));

    let m = invalid(rotate::rotate(&s, &name(), request(false)).await);
    assert!(m.contains("--replace") && m.contains("waiting"), "{m}");
    assert_eq!(load(&s).await.next_certificate, Some(waiting.clone()));

    let second = rotate::rotate(&s, &name(), request(true)).await.unwrap();
    assert!(second.replaced);
    let now_waiting = load(&s).await.next_certificate.unwrap();
    assert_eq!(now_waiting.certificate_pem, second.certificate_pem);
    assert_ne!(now_waiting.certificate_pem, waiting.certificate_pem);
}

#[tokio::test]
async fn the_current_key_algorithm_is_kept_unless_another_is_asked_for() {
    let s = store_with(m2m_profile()).await;
    let kept = rotate::rotate(&s, &name(), request(false)).await.unwrap();
    assert_eq!(kept.algorithm, KeyAlgorithm::EcP256);
    let mut other = request(true);
    other.algorithm = Some(KeyAlgorithm::EcP384);
    let changed = rotate::rotate(&s, &name(), other).await.unwrap();
    assert_eq!(changed.info.key_description, "EC P-384");
    assert_eq!(changed.info.validity_days, 365);
}

#[tokio::test]
async fn more_than_two_years_and_non_m2m_profiles_are_refused_without_a_write() {
    let s = store_with(m2m_profile()).await;
    for days in [0, 731, 800] {
        let mut r = request(false);
        r.days = days;
        let m = invalid(rotate::rotate(&s, &name(), r).await);
        assert!(
            m.contains("two years") && m.contains(&days.to_string()),
            "{m}"
        );
    }
    assert!(load(&s).await.next_certificate.is_none());

    let mut p = m2m_profile();
    p.grant = GrantKind::AuthorizationCode;
    let s = store_with(p).await;
    let m = invalid(rotate::rotate(&s, &name(), request(false)).await);
    assert!(m.contains("client credentials"), "{m}");
}

#[tokio::test]
async fn profile_set_certificate_id_switches_to_the_next_key_and_back() {
    let s = store_with(m2m_profile()).await;
    rotate::rotate(&s, &name(), request(false)).await.unwrap();
    let before = load(&s).await;
    let old_key = before.profile.private_key.clone();
    let next = before.next_certificate.clone().unwrap();

    let mut rec = before.clone();
    rec.profile.certificate_id = Some("NEW".into());
    assert_eq!(
        rotate::switch_certificate(&mut rec, Some("OLD"), false),
        Switch::ToNext
    );
    assert_eq!(rec.profile.private_key, Some(next.private_key.clone()));
    assert_eq!(rec.profile.certificate_pem, Some(next.certificate_pem));
    assert!(rec.next_certificate.is_none());
    let prev = rec.previous_certificate.clone().unwrap();
    assert_eq!(prev.certificate_id.as_deref(), Some("OLD"));
    assert_eq!(Some(prev.private_key), old_key);
    let roles: Vec<_> = rotate::certificates(&rec).iter().map(|c| c.role).collect();
    assert_eq!(roles, ["active", "previous"]);

    // A wrong switch is undone by naming the old certificate again.
    rec.profile.certificate_id = Some("OLD".into());
    assert_eq!(
        rotate::switch_certificate(&mut rec, Some("NEW"), false),
        Switch::BackToPrevious
    );
    assert_eq!(rec.profile.private_key, old_key);
    assert_eq!(
        rec.previous_certificate
            .as_ref()
            .unwrap()
            .certificate_id
            .as_deref(),
        Some("NEW")
    );
    assert!(rotate::finish(&mut rec).is_some());
    assert!(rec.previous_certificate.is_none());
}

#[test]
fn no_switch_without_a_new_id_or_with_an_explicit_key() {
    let mut rec = Record::new(m2m_profile());
    let next = generate_key(KeyAlgorithm::EcP256, 30, "next").unwrap();
    rec.next_certificate = Some(crate::profile::StoredCertificate {
        private_key: next.private_key,
        certificate_pem: next.certificate_pem,
        certificate_id: None,
        created_at: time::OffsetDateTime::now_utc(),
    });
    let untouched = rec.clone();
    assert_eq!(
        rotate::switch_certificate(&mut rec, Some("OLD"), false),
        Switch::Unchanged
    );
    rec.profile.certificate_id = Some("NEW".into());
    assert_eq!(
        rotate::switch_certificate(&mut rec, Some("OLD"), true),
        Switch::Unchanged
    );
    assert_eq!(rec.next_certificate, untouched.next_certificate);
    assert_eq!(rec.profile.private_key, untouched.profile.private_key);
}

#[tokio::test]
async fn a_record_written_before_rotation_existed_loads_and_rotates() {
    // What an older nsauth wrote: no next/previous certificate fields.
    let old = Record::new(m2m_profile());
    let json = String::from_utf8(nsauth_store::record::encode_record(&old)).unwrap();
    assert!(!json.contains("next_certificate") && !json.contains("previous_certificate"));
    let decoded = nsauth_store::record::decode_record(json.as_bytes()).unwrap();
    let s = store_with(decoded.profile).await;
    rotate::rotate(&s, &name(), request(false)).await.unwrap();
    let rec = load(&s).await;
    let again = nsauth_store::record::encode_record(&rec);
    let back = nsauth_store::record::decode_record(&again).unwrap();
    assert_eq!(back.next_certificate, rec.next_certificate);
}

#[tokio::test]
async fn debug_of_a_record_with_next_and_previous_keys_shows_no_key() {
    let s = store_with(m2m_profile()).await;
    rotate::rotate(&s, &name(), request(false)).await.unwrap();
    let mut rec = load(&s).await;
    rec.profile.certificate_id = Some("NEW".into());
    rotate::switch_certificate(&mut rec, Some("OLD"), false);
    rotate::rotate(&s, &name(), request(true)).await.unwrap();
    rec.next_certificate = load(&s).await.next_certificate;
    let shown = format!("{rec:?}");
    for key in [
        rec.profile.private_key.as_ref().unwrap(),
        &rec.next_certificate.as_ref().unwrap().private_key,
        &rec.previous_certificate.as_ref().unwrap().private_key,
    ] {
        for line in key.secret().lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line.trim()), "key material in Debug");
        }
    }
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

/// A store whose writes never finish (a process stopped or killed mid-write) or fail.
#[derive(Debug)]
struct StuckWrites {
    inner: MemoryStore,
    reached: Arc<AtomicBool>,
    fail: bool,
}

#[async_trait]
impl TokenStore for StuckWrites {
    fn describe(&self) -> String {
        "stuck://".into()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.inner.load(name).await
    }
    async fn put(
        &self,
        _: &ProfileName,
        _: &Record,
        _: Precondition,
    ) -> Result<Version, StoreError> {
        self.reached.store(true, Ordering::SeqCst);
        if self.fail {
            return Err(StoreError::Unavailable {
                message: "disk full".into(),
                retryable: false,
            });
        }
        std::future::pending().await
    }
    async fn delete(&self, name: &ProfileName, v: Option<&Version>) -> Result<(), StoreError> {
        self.inner.delete(name, v).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}

#[tokio::test]
async fn a_rotation_stopped_or_failing_at_the_write_leaves_the_record_as_it_was() {
    for fail in [false, true] {
        let reached = Arc::new(AtomicBool::new(false));
        let s = Arc::new(StuckWrites {
            inner: store_with(m2m_profile()).await,
            reached: reached.clone(),
            fail,
        });
        let before = load(s.as_ref()).await;
        let task = {
            let s = s.clone();
            tokio::spawn(async move { rotate::rotate(s.as_ref(), &name(), request(false)).await })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !reached.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "rotate never wrote");
            tokio::task::yield_now().await;
        }
        if fail {
            let err = task.await.unwrap().unwrap_err();
            assert!(matches!(err, Error::Store(_)), "{err}");
        } else {
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
        }
        assert_eq!(load(s.as_ref()).await, before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rotations_at_once_store_exactly_one_next_certificate() {
    let s = Arc::new(store_with(m2m_profile()).await);
    let go = || {
        let s = s.clone();
        tokio::spawn(async move { rotate::rotate(s.as_ref(), &name(), request(false)).await })
    };
    let (a, b) = (go(), go());
    let results = [a.await.unwrap(), b.await.unwrap()];
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(matches!(lost, Error::Invalid(_)), "{lost}");
    assert_eq!(
        load(s.as_ref())
            .await
            .next_certificate
            .unwrap()
            .certificate_pem,
        won[0].certificate_pem
    );
}
