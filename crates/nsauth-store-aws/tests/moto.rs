//! What Secrets Manager (here: a real moto server) ends up holding, and the behaviour that
//! depends on it: stage labels after a conflict, pagination, deletion and recovery.

mod common;

use common::{raw, stages};
use nsauth_conformance::{sample_record, unique_name};
use nsauth_store::{Precondition, Version};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_aws::{AwsStore, PENDING_LABEL_PREFIX};
use std::sync::Arc;

fn is_pending(label: &str) -> bool {
    label.starts_with(PENDING_LABEL_PREFIX)
}

/// The property compare-and-swap rests on, checked on the server itself: moving
/// `AWSCURRENT` with a `RemoveFromVersionId` that no longer holds it is refused, and of many
/// writers racing from one version exactly one move succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_refuses_a_stale_stage_move() {
    let store = moto_store!("&force-delete=true");
    let client = raw(&store).await.clone();
    let secret = format!("{}/raw-{}", store.prefix(), uuid::Uuid::new_v4().simple());
    let v1 = client
        .create_secret()
        .name(&secret)
        .secret_string("one")
        .send()
        .await
        .expect("create")
        .version_id()
        .expect("version")
        .to_owned();
    let put = |value: &'static str| {
        let (client, secret) = (client.clone(), secret.clone());
        async move {
            let token = uuid::Uuid::new_v4();
            client
                .put_secret_value()
                .secret_id(&secret)
                .secret_string(value)
                .client_request_token(token.to_string())
                .version_stages(format!("parked-{}", token.simple()))
                .send()
                .await
                .expect("put");
            token.to_string()
        }
    };
    let mv = {
        let (client, secret) = (client.clone(), secret.clone());
        move |from: String, to: String| {
            let (client, secret) = (client.clone(), secret.clone());
            async move {
                client
                    .update_secret_version_stage()
                    .secret_id(&secret)
                    .version_stage("AWSCURRENT")
                    .remove_from_version_id(from)
                    .move_to_version_id(to)
                    .send()
                    .await
            }
        }
    };
    let v2 = put("two").await;
    mv(v1.clone(), v2.clone())
        .await
        .expect("move from the current version");
    let v3 = put("three").await;
    let stale = mv(v1.clone(), v3.clone())
        .await
        .expect_err("a stale move must fail");
    assert_eq!(
        aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&stale),
        Some("InvalidParameterException")
    );
    let current = client
        .get_secret_value()
        .secret_id(&secret)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .expect("get");
    assert_eq!(current.secret_string(), Some("two"));

    let mut candidates = Vec::new();
    for _ in 0..16 {
        candidates.push(put("racer").await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(candidates.len()));
    let racers: Vec<_> = candidates
        .into_iter()
        .map(|to| {
            let (barrier, from, mv) = (Arc::clone(&barrier), v2.clone(), mv.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                mv(from, to).await.is_ok()
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.expect("racer"));
    }
    assert_eq!(won, 1, "exactly one move from the same version may succeed");
    client
        .delete_secret()
        .secret_id(&secret)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("cleanup");
}

/// After a lost race the loser's version carries no label (so it is pruned) and no private
/// label is left anywhere; the winner's version is `AWSCURRENT` only.
#[tokio::test]
async fn a_conflict_leaves_no_stage_labels_behind() {
    let store = moto_store!("&force-delete=true");
    let name = unique_name("labels");
    let secret = store.secret_name(&name);
    let v1 = store
        .put(&name, &sample_record("v1"), Precondition::Create)
        .await
        .expect("create");
    let v2 = store
        .put(&name, &sample_record("v2"), Precondition::Match(v1.clone()))
        .await
        .expect("update");
    match store
        .put(
            &name,
            &sample_record("late"),
            Precondition::Match(v1.clone()),
        )
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    let all = stages(&store, &secret).await;
    assert!(
        all.iter().flat_map(|(_, s)| s).all(|l| !is_pending(l)),
        "a private label was left behind: {all:?}"
    );
    let labelled: Vec<(String, Vec<String>)> =
        all.into_iter().filter(|(_, s)| !s.is_empty()).collect();
    assert_eq!(
        labelled,
        {
            let mut want = vec![
                (v1.0.clone(), vec!["AWSPREVIOUS".to_owned()]),
                (v2.0.clone(), vec!["AWSCURRENT".to_owned()]),
            ];
            want.sort();
            want
        },
        "only the winner is current"
    );
    store.delete(&name, None).await.expect("cleanup");
}

/// `list` follows `NextToken` past a page of 100, keeps to its own prefix level, and leaves
/// out secrets scheduled for deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_pages_through_more_than_a_hundred() {
    let store = Arc::new(moto_store!("&force-delete=true"));
    let names: Vec<ProfileName> = (0..120)
        .map(|i| ProfileName::parse(&format!("p{i:03}-é")).expect("name"))
        .collect();
    let mut tasks = Vec::new();
    for chunk in names.chunks(15) {
        let (store, chunk) = (Arc::clone(&store), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let record = sample_record("page");
            for n in &chunk {
                store
                    .put(n, &record, Precondition::Create)
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    // Secrets nsauth must not list: deeper, beside the prefix, and scheduled for deletion.
    let client = raw(&store).await;
    let prefix = store.prefix().to_owned();
    for other in [format!("{prefix}/sub/p1"), format!("{prefix}x/p2")] {
        client
            .create_secret()
            .name(other)
            .secret_string("{}")
            .send()
            .await
            .expect("create a foreign secret");
    }
    let gone = ProfileName::parse("zz-deleted").expect("name");
    store
        .put(&gone, &sample_record("gone"), Precondition::Create)
        .await
        .expect("create");
    client
        .delete_secret()
        .secret_id(store.secret_name(&gone))
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("schedule deletion");

    let listed = store.list().await.expect("list");
    assert_eq!(listed, names, "120 names, sorted, nothing else");

    for other in [
        format!("{prefix}/sub/p1"),
        format!("{prefix}x/p2"),
        store.secret_name(&gone),
    ] {
        client
            .delete_secret()
            .secret_id(other)
            .force_delete_without_recovery(true)
            .send()
            .await
            .expect("cleanup");
    }
    for n in &names {
        store.delete(n, None).await.expect("cleanup");
    }
    assert!(store.list().await.expect("list").is_empty());
}

/// By default a deleted record's secret stays recoverable for 7 days; creating the profile
/// again in that window restores nsauth's own secret and overwrites it. With
/// `force-delete=true` the secret is gone at once.
#[tokio::test]
async fn delete_keeps_a_recovery_window_unless_forced() {
    let store = moto_store!("");
    let name = unique_name("recover");
    let secret = store.secret_name(&name);
    let v1 = store
        .put(&name, &sample_record("first"), Precondition::Create)
        .await
        .expect("create");
    store.delete(&name, Some(&v1)).await.expect("delete");
    let d = raw(&store)
        .await
        .describe_secret()
        .secret_id(&secret)
        .send()
        .await
        .expect("the secret is still there, scheduled for deletion");
    let deleted = d.deleted_date().expect("scheduled for deletion").secs();
    let days = (deleted - time::OffsetDateTime::now_utc().unix_timestamp()) as f64 / 86_400.0;
    assert!(
        (6.9..=7.1).contains(&days),
        "recovery window of {days} days"
    );
    assert!(store.load(&name).await.expect("load").is_none());
    assert!(!store.list().await.expect("list").contains(&name));
    match store.delete(&name, None).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("deleting twice: expected NotFound, got {other:?}"),
    }
    // (A conditional write to a secret scheduled for deletion is refused by AWS with
    // InvalidRequestException, which nsauth reports as Conflict; moto accepts it, so that
    // path cannot be checked here.)

    let again = sample_record("again");
    let v2 = store
        .put(&name, &again, Precondition::Create)
        .await
        .expect("create again inside the recovery window");
    let got = store.load(&name).await.expect("load").expect("exists");
    assert_eq!((got.record, got.version), (again, v2));

    let forced = AwsStore::from_uri(&format!(
        "{}&force-delete=true",
        common::uri(&common::moto().expect("moto"), "")
    ))
    .expect("uri");
    let name2 = unique_name("forced");
    forced
        .put(&name2, &sample_record("f"), Precondition::Create)
        .await
        .expect("create");
    forced.delete(&name2, None).await.expect("force delete");
    let gone = raw(&forced)
        .await
        .describe_secret()
        .secret_id(forced.secret_name(&name2))
        .send()
        .await;
    assert_eq!(
        gone.as_ref()
            .err()
            .and_then(aws_sdk_secretsmanager::error::ProvideErrorMetadata::code),
        Some("ResourceNotFoundException"),
        "force-delete removes the secret at once"
    );

    // A secret scheduled for deletion that nsauth did not write is left alone.
    let foreign = unique_name("foreign");
    let client = raw(&store).await;
    client
        .create_secret()
        .name(store.secret_name(&foreign))
        .secret_string("{}")
        .send()
        .await
        .expect("create");
    client
        .delete_secret()
        .secret_id(store.secret_name(&foreign))
        .send()
        .await
        .expect("delete");
    match store
        .put(&foreign, &sample_record("mine"), Precondition::Create)
        .await
    {
        Err(
            e @ StoreError::Unavailable {
                retryable: false, ..
            },
        ) => assert!(e.to_string().contains("not written by nsauth"), "{e}"),
        other => panic!("expected a clear refusal, got {other:?}"),
    }
    for s in [secret, store.secret_name(&foreign)] {
        client
            .delete_secret()
            .secret_id(s)
            .force_delete_without_recovery(true)
            .send()
            .await
            .expect("cleanup");
    }
}

/// A secret under the prefix that is not an nsauth record is `Corrupt`, never overwritten
/// by a conditional write, and removed by an unconditional delete.
#[tokio::test]
async fn a_foreign_value_is_corrupt_and_left_alone() {
    let store = moto_store!("&force-delete=true");
    let client = raw(&store).await;
    for (tag, text) in [
        ("text", Some("not json")),
        ("newer", Some(r#"{"schema": 99}"#)),
        ("binary", None),
    ] {
        let name = unique_name(tag);
        let secret = store.secret_name(&name);
        let request = client.create_secret().name(&secret);
        let created = match text {
            Some(t) => request.secret_string(t),
            None => request.secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![
                0u8, 1, 2,
            ])),
        }
        .send()
        .await
        .expect("create");
        match store.load(&name).await {
            Err(e @ StoreError::Corrupt { .. }) => {
                assert!(e.to_string().contains(&secret), "{e}");
                if tag == "newer" {
                    assert!(e.to_string().contains("upgrade nsauth"), "{e}");
                }
            }
            other => panic!("{tag}: expected Corrupt, got {other:?}"),
        }
        assert!(matches!(
            store
                .put(&name, &sample_record("x"), Precondition::Create)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store
                .put(
                    &name,
                    &sample_record("x"),
                    Precondition::Match(Version("f".repeat(36)))
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
        let still = client
            .get_secret_value()
            .secret_id(&secret)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .expect("get");
        assert_eq!(still.version_id(), created.version_id(), "left untouched");
        store
            .delete(&name, None)
            .await
            .expect("an unconditional delete clears it");
    }
}
