//! What a Vault user would notice, against a live OpenBao server: refused tokens say which
//! policy is missing, an unreachable server is worth retrying, Vault's history names the
//! writer, delete leaves nothing behind, AppRole works for CI, and foreign secrets are
//! reported, not overwritten.

mod common;

use nsauth_conformance::{sample_record, unique_name};
use nsauth_store::{Precondition, Version};
use nsauth_store::{StoreError, TokenStore};
use nsauth_store_vault::{VaultSecret, VaultSettings, VaultStore};
use serde_json::json;

macro_rules! bao_or_skip {
    () => {
        match common::bao() {
            Some(bao) => bao,
            None => return,
        }
    };
}

fn expect_denied<T: std::fmt::Debug>(r: Result<T, StoreError>, needles: &[&str]) {
    match r {
        Err(e @ StoreError::Denied(_)) => {
            let msg = e.to_string();
            eprintln!("{msg}");
            for n in needles {
                assert!(msg.contains(n), "{msg:?} should mention {n:?}");
            }
        }
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_without_the_policy_is_denied_with_the_missing_capability() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let token = bao.token_without_policy().await;
    let store = VaultStore::from_uri_with(&bao.uri(&prefix), &bao.settings(&token)).unwrap();
    let name = unique_name("denied");
    let data = format!("{}/data/{prefix}/*", bao.mount);
    let metadata = format!("{}/metadata/{prefix}/*", bao.mount);

    expect_denied(
        store
            .put(&name, &sample_record("d"), Precondition::Create)
            .await,
        &[r#"needs "create","update" on "#, &data, "vault-policy.hcl"],
    );
    expect_denied(store.load(&name).await, &[r#"needs "read" on "#, &data]);
    expect_denied(store.list().await, &[r#"needs "list" on "#, &metadata]);
    expect_denied(
        store.delete(&name, None).await,
        &[r#"needs "read" on "#, &metadata],
    );

    // A token Vault does not know at all is refused the same way.
    let store =
        VaultStore::from_uri_with(&bao.uri(&prefix), &bao.settings("s.not-a-real-token")).unwrap();
    expect_denied(store.load(&name).await, &["expired"]);
}

#[tokio::test]
async fn an_unreachable_server_is_retryable_and_opening_does_no_io() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = VaultSettings::default();
    settings.token = Some(VaultSecret::new("s.whatever"));
    // Opening succeeds although nothing listens: the first call is what fails.
    let store = VaultStore::from_uri_with(
        &format!("vault+http://127.0.0.1:{port}/secret/nsauth"),
        &settings,
    )
    .unwrap();
    match store.load(&unique_name("closed")).await {
        Err(
            e @ StoreError::Unavailable {
                retryable: true, ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
            assert!(msg.contains("cannot reach Vault"), "{msg}");
            assert!(!msg.contains("s.whatever"), "{msg}");
        }
        other => panic!("expected a retryable Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn no_token_at_all_says_how_to_get_one() {
    let mut settings = VaultSettings::default();
    settings.token_file = Some(std::path::PathBuf::from("/nonexistent/.vault-token"));
    let store =
        VaultStore::from_uri_with("vault+http://127.0.0.1:1/secret/nsauth", &settings).unwrap();
    assert_eq!(store.auth_method(), "token-file");
    expect_denied(
        store.load(&unique_name("none")).await,
        &["VAULT_TOKEN", "~/.vault-token", "VAULT_ROLE_ID"],
    );

    settings.role_id = Some("role".into());
    match VaultStore::from_uri_with("vault+http://127.0.0.1:1/secret/nsauth", &settings) {
        Err(e @ StoreError::Config(_)) => assert!(e.to_string().contains("VAULT_SECRET_ID")),
        other => panic!("half an AppRole is a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn custom_metadata_names_the_writer_of_each_version() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let store = bao.store(&prefix);
    let name = unique_name("history");
    let v1 = store
        .put(&name, &sample_record("h1"), Precondition::Create)
        .await
        .unwrap();
    let v2 = store
        .put(&name, &sample_record("h2"), Precondition::Match(v1.clone()))
        .await
        .unwrap();
    assert_eq!(
        (v1.0.as_str(), v2.0.as_str()),
        ("1", "2"),
        "versions are KV versions"
    );

    let actor = nsauth_store::actor();
    let history = store.history(&name).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.version).collect::<Vec<_>>(),
        [1, 2]
    );
    for h in &history {
        let who = h.written_by.as_deref().expect("writer recorded");
        assert!(who.starts_with(&format!("{actor} at ")), "{who}");
        assert!(!h.deleted && !h.created_time.is_empty());
    }

    // What an operator sees with `bao kv metadata get`.
    let meta = bao
        .root_ok(
            "GET",
            &format!("{}/metadata/{prefix}/{name}", bao.mount),
            None,
        )
        .await;
    let custom = &meta["data"]["custom_metadata"];
    assert!(
        custom["nsauth_v1"].as_str().unwrap().contains(&actor),
        "{custom}"
    );
    assert!(
        custom["nsauth_v2"].as_str().unwrap().contains(&actor),
        "{custom}"
    );
    store.delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn old_writer_entries_are_dropped() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let store = bao.store(&prefix);
    let name = unique_name("prune");
    let mut version = store
        .put(&name, &sample_record("p"), Precondition::Create)
        .await
        .unwrap();
    for _ in 0..24 {
        version = store
            .put(&name, &sample_record("p"), Precondition::Match(version))
            .await
            .unwrap();
    }
    assert_eq!(version.0, "25");
    let meta = bao
        .root_ok(
            "GET",
            &format!("{}/metadata/{prefix}/{name}", bao.mount),
            None,
        )
        .await;
    let custom = meta["data"]["custom_metadata"].as_object().unwrap();
    let mut kept: Vec<u64> = custom
        .keys()
        .filter_map(|k| k.strip_prefix("nsauth_v")?.parse().ok())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        (6..=25).collect::<Vec<_>>(),
        "the last 20 writers are kept"
    );
    store.delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn delete_destroys_every_version_and_versions_keep_counting() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let store = bao.store(&prefix);
    let name = unique_name("purge");
    let v1 = store
        .put(&name, &sample_record("a"), Precondition::Create)
        .await
        .unwrap();
    let v2 = store
        .put(&name, &sample_record("b"), Precondition::Match(v1.clone()))
        .await
        .unwrap();
    store.delete(&name, Some(&v2)).await.unwrap();

    // No record data is left: every version, and the delete's tombstone (3), is destroyed.
    let meta = bao
        .root_ok(
            "GET",
            &format!("{}/metadata/{prefix}/{name}", bao.mount),
            None,
        )
        .await;
    let versions = meta["data"]["versions"].as_object().unwrap();
    assert_eq!(versions.len(), 3, "{meta}");
    assert!(
        versions.values().all(|v| v["destroyed"] == json!(true)),
        "{meta}"
    );
    for v in 1..=3 {
        let (status, body) = bao
            .root(
                "GET",
                &format!("{}/data/{prefix}/{name}?version={v}", bao.mount),
                None,
            )
            .await;
        assert_eq!(status, 404, "version {v} is gone: {body}");
    }
    assert!(store.load(&name).await.unwrap().is_none());
    assert!(!store.list().await.unwrap().contains(&name));

    // The name continues after the tombstone instead of starting again at 1, so the old
    // versions never match the new record.
    let again = store
        .put(&name, &sample_record("c"), Precondition::Create)
        .await
        .unwrap();
    assert_eq!(again, Version("4".into()));
    for old in [&v1, &v2] {
        assert!(matches!(
            store
                .put(
                    &name,
                    &sample_record("stale"),
                    Precondition::Match(old.clone())
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
    store.delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn a_token_that_may_not_destroy_cannot_delete_and_changes_nothing() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let name = unique_name("keep");
    // The documented policy without its destroy path: an older nsauth's policy.
    let mount = &bao.mount;
    let policy = format!(
        r#"path "{mount}/data/nsauth/*" {{ capabilities = ["create", "read", "update"] }}
path "{mount}/metadata/nsauth/*" {{ capabilities = ["list", "read", "patch", "delete"] }}"#
    );
    let policy_name = format!("no-destroy-{}", uuid::Uuid::new_v4().simple());
    bao.root_ok(
        "PUT",
        &format!("sys/policies/acl/{policy_name}"),
        Some(json!({ "policy": policy })),
    )
    .await;
    let created = bao
        .root_ok(
            "POST",
            "auth/token/create",
            Some(json!({ "policies": [policy_name], "ttl": "10m" })),
        )
        .await;
    let token = created["auth"]["client_token"].as_str().unwrap();
    let store = VaultStore::from_uri_with(&bao.uri(&prefix), &bao.settings(token)).unwrap();
    let record = sample_record("keep");
    let v1 = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();

    let destroy = format!("{mount}/destroy/{prefix}/*");
    expect_denied(
        store.delete(&name, Some(&v1)).await,
        &[r#"needs "update" on "#, &destroy],
    );
    expect_denied(store.delete(&name, None).await, &[&destroy]);
    let got = store.load(&name).await.unwrap().expect("still there");
    assert_eq!((got.version, got.record), (v1, record));
    bao.store(&prefix).delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn the_tombstone_of_an_unfinished_delete_reads_as_absent() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let store = bao.store(&prefix);
    let name = unique_name("tomb");
    let v1 = store
        .put(&name, &sample_record("t"), Precondition::Create)
        .await
        .unwrap();
    // A delete that wrote its tombstone (version 2) but could not destroy it.
    let path = format!("{}/data/{prefix}/{name}", bao.mount);
    bao.root_ok(
        "POST",
        &path,
        Some(json!({ "options": { "cas": 1 }, "data": { "nsauth_deleted": "x at t" } })),
    )
    .await;
    assert!(store.load(&name).await.unwrap().is_none());
    assert!(matches!(
        store
            .put(&name, &sample_record("stale"), Precondition::Match(v1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let record = sample_record("again");
    let v3 = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    assert_eq!(v3, Version("3".into()));
    assert_eq!(store.load(&name).await.unwrap().unwrap().record, record);
    store.delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn approle_login_from_role_and_secret_ids() {
    let bao = bao_or_skip!();
    let mount = "nsauth-test-approle";
    let (status, body) = bao
        .root(
            "POST",
            &format!("sys/auth/{mount}"),
            Some(json!({ "type": "approle" })),
        )
        .await;
    assert!(
        (200..300).contains(&status) || body.to_string().contains("already in use"),
        "enable approle: {status} {body}"
    );
    bao.root_ok(
        "POST",
        &format!("auth/{mount}/role/nsauth-ci"),
        Some(json!({ "token_policies": ["nsauth"], "token_ttl": "10m" })),
    )
    .await;
    let role_id = bao
        .root_ok("GET", &format!("auth/{mount}/role/nsauth-ci/role-id"), None)
        .await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .root_ok(
            "POST",
            &format!("auth/{mount}/role/nsauth-ci/secret-id"),
            None,
        )
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut settings = VaultSettings::default();
    settings.role_id = Some(role_id);
    settings.secret_id = Some(VaultSecret::new(secret_id));
    settings.approle_mount = mount.into();
    let prefix = bao.unique_prefix();
    let store = VaultStore::from_uri_with(&bao.uri(&prefix), &settings).unwrap();
    assert_eq!(store.auth_method(), "approle");
    let name = unique_name("approle");
    let record = sample_record("ci");
    let v1 = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let got = store.load(&name).await.unwrap().unwrap();
    assert_eq!((got.record, got.version), (record, v1));
    store.delete(&name, None).await.unwrap();

    settings.secret_id = Some(VaultSecret::new("00000000-0000-0000-0000-000000000000"));
    let store = VaultStore::from_uri_with(&bao.uri(&prefix), &settings).unwrap();
    expect_denied(
        store.load(&name).await,
        &["AppRole login", "VAULT_SECRET_ID"],
    );
}

#[tokio::test]
async fn a_token_file_is_used_when_no_token_is_given() {
    let bao = bao_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".vault-token");
    std::fs::write(&file, format!("{}\n", bao.token)).unwrap();
    let mut settings = VaultSettings::default();
    settings.token_file = Some(file);
    let store = VaultStore::from_uri_with(&bao.uri(&bao.unique_prefix()), &settings).unwrap();
    assert_eq!(store.auth_method(), "token-file");
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_secret_nsauth_did_not_write_is_corrupt_and_left_alone() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let store = bao.store(&prefix);
    let newer = {
        let mut r = serde_json::to_value(sample_record("n")).unwrap();
        r["schema"] = json!(99);
        r.to_string()
    };
    for (tag, data, why) in [
        (
            "foreign",
            json!({ "password": "hunter2" }),
            "no \"record\" text field",
        ),
        (
            "garbled",
            json!({ "record": "{\"schema\": 1, \"profile\"" }),
            "not a record",
        ),
        ("newer", json!({ "record": newer }), "upgrade nsauth"),
    ] {
        let name = unique_name(tag);
        let path = format!("{}/data/{prefix}/{name}", bao.mount);
        bao.root_ok("POST", &path, Some(json!({ "data": data })))
            .await;
        match store.load(&name).await {
            Err(e @ StoreError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(why), "{tag}: {msg}");
                assert!(
                    msg.contains(&format!("{prefix}/{name} (version 1)")),
                    "{msg}"
                );
                assert!(!msg.contains("hunter2"), "{msg}");
            }
            other => panic!("{tag}: expected Corrupt, got {other:?}"),
        }
        // Create-only cannot overwrite it.
        assert!(matches!(
            store
                .put(&name, &sample_record("x"), Precondition::Create)
                .await,
            Err(StoreError::Conflict(_))
        ));
        let (_, still) = bao.root("GET", &path, None).await;
        assert_eq!(still["data"]["data"], data, "{tag} is untouched");
        store.delete(&name, None).await.unwrap();
    }
}

#[tokio::test]
async fn a_secret_deleted_with_kv_delete_reads_as_absent_and_can_be_created_again() {
    let bao = bao_or_skip!();
    let prefix = bao.unique_prefix();
    let store = bao.store(&prefix);
    let name = unique_name("soft");
    let v1 = store
        .put(&name, &sample_record("s"), Precondition::Create)
        .await
        .unwrap();
    // `bao kv delete`: a soft delete of the latest version.
    bao.root_ok(
        "DELETE",
        &format!("{}/data/{prefix}/{name}", bao.mount),
        None,
    )
    .await;
    assert!(store.load(&name).await.unwrap().is_none());
    assert!(matches!(
        store.delete(&name, Some(&v1)).await,
        Err(StoreError::NotFound(_))
    ));
    let record = sample_record("again");
    let v2 = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    assert_eq!(v2.0, "2");
    assert_eq!(store.load(&name).await.unwrap().unwrap().record, record);
    store.delete(&name, None).await.unwrap();
}

#[tokio::test]
async fn a_kv_version_1_mount_is_named_as_the_problem() {
    let bao = bao_or_skip!();
    let mount = format!("kv1-{}", uuid::Uuid::new_v4().simple());
    bao.root_ok(
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(json!({ "type": "kv", "options": { "version": "1" } })),
    )
    .await;
    let hostport = bao.addr.trim_start_matches("http://");
    let store = VaultStore::from_uri_with(
        &format!("vault+http://{hostport}/{mount}/nsauth"),
        &bao.settings(&bao.root_token),
    )
    .unwrap();
    let result = store
        .put(
            &unique_name("v1"),
            &sample_record("v1"),
            Precondition::Create,
        )
        .await;
    bao.root_ok("DELETE", &format!("sys/mounts/{mount}"), None)
        .await;
    match result {
        Err(
            e @ StoreError::Unavailable {
                retryable: false, ..
            },
        ) => assert!(e.to_string().contains("KV version 1"), "{e}"),
        other => panic!("expected a non-retryable Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_mount_that_does_not_exist_is_named_as_the_problem() {
    let bao = bao_or_skip!();
    let hostport = bao.addr.trim_start_matches("http://");
    let store = VaultStore::from_uri_with(
        &format!("vault+http://{hostport}/no-such-mount/nsauth"),
        &bao.settings(&bao.root_token),
    )
    .unwrap();
    // Without this check a load would read "no such mount" as "no such profile".
    for result in [
        store.load(&unique_name("m")).await.map(|_| ()),
        store.list().await.map(|_| ()),
    ] {
        match result {
            Err(
                e @ StoreError::Unavailable {
                    retryable: false, ..
                },
            ) => assert!(
                e.to_string()
                    .contains("no secrets engine mounted at \"no-such-mount\""),
                "{e}"
            ),
            other => panic!("expected a non-retryable Unavailable, got {other:?}"),
        }
    }
}
