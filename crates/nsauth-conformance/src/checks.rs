//! The basic contract: round trip, create-only, compare-and-swap, delete, list, absence.

use crate::sample::{jwt_like, sample_record, scratch_name};
use crate::Fixture;
use nsauth_core::secret::RefreshToken;
use nsauth_core::store::{PendingLogin, Precondition, Version};
use nsauth_core::{ProfileName, StoreError, TokenStore};

/// Panics unless `result` is a [`StoreError::Conflict`].
pub(crate) fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

/// Removes `names` at the end of a check, so checks can share one live server.
pub(crate) async fn cleanup(store: &dyn TokenStore, names: &[&ProfileName]) {
    for name in names {
        match store.delete(name, None).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => panic!("cleaning up {name}: {e}"),
        }
    }
}

/// A record with tokens, secrets and a pending login comes back exactly as written, and
/// every write changes the version.
pub async fn round_trip(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "round-trip");
    let mut record = sample_record(name.as_str());
    let v1 = store
        .put(&name, &record, Precondition::Create)
        .await
        .expect("create");
    let got = store
        .load(&name)
        .await
        .expect("load")
        .expect("the record just written exists");
    assert_eq!(
        got.record, record,
        "the record must survive a round trip exactly"
    );
    assert_eq!(got.version, v1, "load returns the version put returned");

    let tokens = record.tokens.as_mut().expect("sample has tokens");
    tokens.refresh_token = Some(RefreshToken::new(jwt_like("refresh", 1536)));
    record.pending.push(PendingLogin {
        state: "second-state".into(),
        ..record.pending[0].clone()
    });
    record.meta.refresh_count = 1;
    record.touch();
    let v2 = store
        .put(&name, &record, Precondition::Match(v1.clone()))
        .await
        .expect("update");
    assert_ne!(v1, v2, "a write must change the version");

    // A second handle sees the same record at the same version.
    let other = fx.open().await;
    let got = other.load(&name).await.expect("load").expect("exists");
    assert_eq!(got.record, record);
    assert_eq!(got.version, v2);
    cleanup(store.as_ref(), &[&name]).await;
}

/// A second create-only write fails with `Conflict` and leaves the first record alone.
pub async fn create_only(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "create-only");
    let first = sample_record("first");
    let v1 = store
        .put(&name, &first, Precondition::Create)
        .await
        .expect("first create");
    let second = sample_record("second");
    assert_conflict(
        store.put(&name, &second, Precondition::Create).await,
        "second create",
    );
    assert_conflict(
        fx.open()
            .await
            .put(&name, &second, Precondition::Create)
            .await,
        "create from another handle",
    );
    let got = store.load(&name).await.expect("load").expect("exists");
    assert_eq!(
        got.record, first,
        "a failed create must not change the record"
    );
    assert_eq!(got.version, v1);
    cleanup(store.as_ref(), &[&name]).await;
}

/// A write against a stale version fails with `Conflict`; against the current one it works.
pub async fn cas_conflict(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "cas");
    let v1 = store
        .put(&name, &sample_record("v1"), Precondition::Create)
        .await
        .expect("create");
    let second = sample_record("v2");
    let v2 = store
        .put(&name, &second, Precondition::Match(v1.clone()))
        .await
        .expect("update at current version");

    let stale = sample_record("stale");
    assert_conflict(
        store
            .put(&name, &stale, Precondition::Match(v1.clone()))
            .await,
        "write at a stale version",
    );
    let bogus = Version("no-such-version".into());
    assert_conflict(
        store
            .put(&name, &stale, Precondition::Match(bogus.clone()))
            .await,
        "write at a made-up version",
    );
    let got = store.load(&name).await.expect("load").expect("exists");
    assert_eq!(
        got.record, second,
        "a failed write must not change the record"
    );
    assert_eq!(got.version, v2);

    let third = sample_record("v3");
    let v3 = fx
        .open()
        .await
        .put(&name, &third, Precondition::Match(v2.clone()))
        .await
        .expect("update at current version");
    assert!(
        v3 != v1 && v3 != v2,
        "versions must not repeat: {v1} {v2} {v3}"
    );

    let missing = scratch_name(fx, "cas-missing");
    assert_conflict(
        store.put(&missing, &third, Precondition::Match(v3)).await,
        "write at a version of an absent record",
    );
    assert!(
        store.load(&missing).await.expect("load").is_none(),
        "a failed write must not create the record"
    );
    cleanup(store.as_ref(), &[&name]).await;
}

/// Delete works at the current version, fails with `Conflict` at a stale one and with
/// `NotFound` when the record is missing; the name can be created again afterwards.
pub async fn delete(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "delete");
    let v1 = store
        .put(&name, &sample_record("d"), Precondition::Create)
        .await
        .expect("create");
    let v2 = store
        .put(&name, &sample_record("d2"), Precondition::Match(v1.clone()))
        .await
        .expect("update");
    assert_conflict(
        store.delete(&name, Some(&v1)).await,
        "delete at a stale version",
    );
    assert!(
        store.load(&name).await.expect("load").is_some(),
        "a failed delete must keep the record"
    );

    store
        .delete(&name, Some(&v2))
        .await
        .expect("delete at the current version");
    assert!(
        store.load(&name).await.expect("load").is_none(),
        "a deleted record is gone"
    );
    match store.delete(&name, None).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("deleting a missing record: expected NotFound, got {other:?}"),
    }
    match store.delete(&name, Some(&v2)).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("deleting a missing record at a version: expected NotFound, got {other:?}"),
    }

    let again = sample_record("again");
    store
        .put(&name, &again, Precondition::Create)
        .await
        .expect("create after delete");
    assert_eq!(
        store
            .load(&name)
            .await
            .expect("load")
            .expect("exists")
            .record,
        again
    );
    fx.open()
        .await
        .delete(&name, None)
        .await
        .expect("unconditional delete");
    assert!(store.load(&name).await.expect("load").is_none());
}

/// `list` returns the created names, sorted, without the deleted ones.
pub async fn list(fx: &dyn Fixture) {
    let store = fx.open().await;
    let base = scratch_name(fx, "list");
    let names: Vec<ProfileName> = ["c", "a", "b.x", "a-2"]
        .iter()
        .map(|s| ProfileName::parse(&format!("{base}-{s}")).expect("valid name"))
        .collect();
    for n in &names {
        store
            .put(n, &sample_record(n.as_str()), Precondition::Create)
            .await
            .expect("create");
    }
    store.delete(&names[0], None).await.expect("delete");

    let all = fx.open().await.list().await.expect("list");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "list must be sorted");
    let ours: Vec<&ProfileName> = all
        .iter()
        .filter(|n| n.as_str().starts_with(base.as_str()))
        .collect();
    let mut want: Vec<&ProfileName> = names[1..].iter().collect();
    want.sort();
    assert_eq!(ours, want, "list shows created names, not deleted ones");
    cleanup(store.as_ref(), &names.iter().collect::<Vec<_>>()).await;
}

/// Loading a name that was never written is `Ok(None)`, not an error.
pub async fn missing_is_none(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "missing");
    match store.load(&name).await {
        Ok(None) => {}
        other => panic!("loading a missing record: expected Ok(None), got {other:?}"),
    }
    assert!(!store.list().await.expect("list").contains(&name));
}
