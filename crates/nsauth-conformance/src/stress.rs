//! Size, names and concurrency.

use crate::checks::cleanup;
use crate::sample::{jwt_like, sample_record, scratch_name};
use crate::Fixture;
use nsauth_core::secret::RefreshToken;
use nsauth_core::store::{Precondition, Version};
use nsauth_core::{ProfileName, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records well over 8 KB (a 16 KB refresh token, an 8 KB certificate) survive exactly.
pub async fn large_record(fx: &dyn Fixture) {
    let store = fx.open().await;
    let name = scratch_name(fx, "large");
    let mut record = sample_record(name.as_str());
    let tokens = record.tokens.as_mut().expect("sample has tokens");
    tokens.refresh_token = Some(RefreshToken::new(jwt_like("refresh", 16 * 1024)));
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for _ in 0..128 {
        pem.push_str(&jwt_like("c", 64)[..64]);
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    record.profile.certificate_pem = Some(pem);
    let v1 = store
        .put(&name, &record, Precondition::Create)
        .await
        .expect("create a large record");
    let got = fx
        .open()
        .await
        .load(&name)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(
        got.record, record,
        "a large record must survive a round trip exactly"
    );
    assert_eq!(got.version, v1);
    cleanup(store.as_ref(), &[&name]).await;
}

/// Unicode, punctuation and maximum-length names work and are kept apart.
pub async fn odd_names(fx: &dyn Fixture) {
    let store = fx.open().await;
    let base = scratch_name(fx, "n");
    let long = format!("{base}-{}", "x".repeat(64 - base.as_str().len() - 1));
    let names: Vec<ProfileName> = [
        format!("{base}-ünïcødé-名前"),
        format!("{base}-a.b@c"),
        long,
    ]
    .iter()
    .map(|s| ProfileName::parse(s).expect("valid name"))
    .collect();
    assert_eq!(names[2].as_str().chars().count(), 64);
    let mut written = Vec::new();
    for n in &names {
        let record = sample_record(n.as_str());
        store
            .put(n, &record, Precondition::Create)
            .await
            .unwrap_or_else(|e| panic!("create {n}: {e}"));
        written.push(record);
    }
    let other = fx.open().await;
    for (n, record) in names.iter().zip(&written) {
        let got = other
            .load(n)
            .await
            .unwrap_or_else(|e| panic!("load {n}: {e}"))
            .expect("exists");
        assert_eq!(&got.record, record, "profile {n} must come back as written");
    }
    let listed = other.list().await.expect("list");
    for n in &names {
        assert!(listed.contains(n), "list must show {n}");
    }
    cleanup(store.as_ref(), &names.iter().collect::<Vec<_>>()).await;
}

/// 16 writers, each on its own handle, race to update one record; each retries on
/// `Conflict` until it has won once. Every win must be built on the previous one: the
/// counter each winner wrote (`meta.refresh_count`) takes every value 1..=16 exactly once,
/// each returned version is distinct, and the final record shows 16 with the last winner.
pub async fn concurrent_writers(fx: &dyn Fixture) {
    const WRITERS: u64 = 16;
    let store = fx.open().await;
    let name = scratch_name(fx, "concurrent");
    store
        .put(&name, &sample_record("concurrent"), Precondition::Create)
        .await
        .expect("create");

    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS as usize));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let handle = fx.open().await;
        let (name, barrier) = (name.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let marker = format!("writer-{writer}");
            barrier.wait().await;
            let mut conflicts = 0u32;
            loop {
                assert!(
                    Instant::now() < deadline,
                    "{marker} did not win within 120 s ({conflicts} conflicts)"
                );
                let current = handle.load(&name).await.expect("load").expect("exists");
                let mut record = current.record;
                record.meta.refresh_count += 1;
                record.meta.updated_by = marker.clone();
                // Give the other writers a chance to read the same version.
                tokio::task::yield_now().await;
                match handle
                    .put(&name, &record, Precondition::Match(current.version))
                    .await
                {
                    Ok(version) => return (marker, record.meta.refresh_count, version),
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(e) if e.is_retryable() => tokio::task::yield_now().await,
                    Err(e) => panic!("{marker}: unexpected error {e}"),
                }
            }
        }));
    }
    let mut by_count: BTreeMap<u64, String> = BTreeMap::new();
    let mut versions: HashSet<Version> = HashSet::new();
    for task in tasks {
        let (marker, count, version) = task.await.expect("writer task");
        if let Some(previous) = by_count.insert(count, marker.clone()) {
            panic!("lost update: {previous} and {marker} both wrote count {count}");
        }
        assert!(
            versions.insert(version.clone()),
            "version {version} was handed to two writers"
        );
    }
    let counts: Vec<u64> = by_count.keys().copied().collect();
    assert_eq!(
        counts,
        (1..=WRITERS).collect::<Vec<_>>(),
        "each win must build on the previous one"
    );

    let last = store.load(&name).await.expect("load").expect("exists");
    assert_eq!(
        last.record.meta.refresh_count, WRITERS,
        "the final record counts every win"
    );
    assert_eq!(
        Some(&last.record.meta.updated_by),
        by_count.get(&WRITERS),
        "the final record is the last winner's"
    );
    assert!(
        versions.contains(&last.version),
        "the final version is the last winner's"
    );
    cleanup(store.as_ref(), &[&name]).await;
}
