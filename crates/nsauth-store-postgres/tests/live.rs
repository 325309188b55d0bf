//! The store against the live server, beyond the shared suite: how failures map to error
//! kinds, the documented least-privilege role, the store key check, reconnecting after the
//! server dropped the connection, and waking waiters by LISTEN/NOTIFY.

mod common;

use nsauth_store::account::AccountId;
use nsauth_store::{Precondition, Profile, ProfileName, Record, StoreError, TokenStore, Version};
use nsauth_store_local::seal::StoreKey;
use nsauth_store_postgres::PostgresStore;
use std::sync::Arc;
use std::time::Duration;

fn name(s: &str) -> ProfileName {
    ProfileName::parse(s).unwrap()
}

fn record() -> Record {
    Record::new(Profile::new(
        AccountId::parse("1234567").unwrap(),
        "client-id",
    ))
}

/// Creates a login role with `password` and returns the store URI of `table` as that role.
async fn role(pg: &common::Pg, password: &str, table: &str) -> (String, String) {
    let role = format!("r{}", uuid::Uuid::new_v4().simple());
    pg.admin()
        .await
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        .await
        .unwrap();
    let uri = pg
        .uri_for(table, "")
        .replace("nsauth_test@", &format!("{role}@"));
    (role, uri)
}

fn pgpassword() -> String {
    std::env::var("PGPASSWORD").expect("PGPASSWORD from .services/env")
}

#[tokio::test]
async fn a_wrong_password_is_denied() {
    let Some(pg) = common::pg() else { return };
    let (_, uri) = role(&pg, "not-the-exported-password", &common::unique_table()).await;
    let store = PostgresStore::open(&uri, StoreKey::generate()).unwrap();
    let err = store.load(&name("prod")).await.unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("PGPASSWORD") && !shown.contains(&pgpassword()),
        "{shown}"
    );
}

#[tokio::test]
async fn a_server_that_is_down_is_unavailable_and_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = PostgresStore::open(
        &format!("postgres://u@127.0.0.1:{port}/d?sslmode=disable"),
        StoreKey::generate(),
    )
    .unwrap();
    let err = store.list().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert!(!err.to_string().contains('\n'));
}

#[tokio::test]
async fn the_documented_grants_are_enough_and_none_is_denied() {
    let Some(pg) = common::pg() else { return };
    let table = common::unique_table();
    let key = StoreKey::generate();
    // The owner creates the table (the first use migrates it).
    assert!(pg.store(&table, &key).list().await.unwrap().is_empty());
    let (app, app_uri) = role(&pg, &pgpassword(), &table).await;
    let (_, nobody_uri) = role(&pg, &pgpassword(), &table).await;
    // The grants of docs/stores/postgres.md, word for word.
    pg.admin()
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON nsauth_schema TO {app};
             GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {app};
             GRANT USAGE ON SEQUENCE {table}_version TO {app};"
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&app_uri, key.clone()).unwrap();
    let n = name("least-privilege");
    let v1 = store
        .put(&n, &record(), Precondition::Create)
        .await
        .unwrap();
    let v2 = store
        .put(&n, &record(), Precondition::Match(v1.clone()))
        .await
        .unwrap();
    assert_eq!(store.load(&n).await.unwrap().unwrap().version, v2);
    assert_eq!(store.list().await.unwrap(), vec![n.clone()]);
    assert!(
        store.wait_for_change(&n, &v1, Duration::from_secs(5)).await,
        "LISTEN needs no grant"
    );
    store.delete(&n, Some(&v2)).await.unwrap();

    let nobody = PostgresStore::open(&nobody_uri, key).unwrap();
    let err = nobody.load(&n).await.unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
    assert!(err.to_string().contains("docs/stores/postgres.md"), "{err}");
}

#[tokio::test]
async fn a_host_with_another_store_key_is_told_to_share_it() {
    let Some(pg) = common::pg() else { return };
    let table = common::unique_table();
    let first = pg.store(&table, &StoreKey::generate());
    first
        .put(&name("prod"), &record(), Precondition::Create)
        .await
        .unwrap();
    let other = pg.store(&table, &StoreKey::generate());
    let err = other.load(&name("prod")).await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("same store key"), "{err}");
}

#[tokio::test]
async fn a_dropped_connection_is_replaced() {
    let Some(pg) = common::pg() else { return };
    let table = common::unique_table();
    let key = StoreKey::generate();
    // The owner creates the table; a role of its own lets the test find the connection.
    assert!(pg.store(&table, &key).list().await.unwrap().is_empty());
    let (role, uri) = role(&pg, &pgpassword(), &table).await;
    pg.admin()
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON nsauth_schema TO {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role};
             GRANT USAGE ON SEQUENCE {table}_version TO {role};"
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&uri, key).unwrap();
    let n = name("prod");
    let v = store
        .put(&n, &record(), Precondition::Create)
        .await
        .unwrap();
    let killed: i64 = pg
        .admin()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // The next calls work on a new connection (the first may see the old one fail).
    let mut loaded = None;
    for _ in 0..2 {
        if let Ok(Some(got)) = store.load(&n).await {
            loaded = Some(got);
            break;
        }
    }
    assert_eq!(loaded.expect("reconnected").version, v);
    store
        .put(&n, &record(), Precondition::Match(v))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_wakes_when_another_handle_writes() {
    let Some(pg) = common::pg() else { return };
    let table = common::unique_table();
    let key = StoreKey::generate();
    let writer = pg.store(&table, &key);
    let waiter = Arc::new(pg.store(&table, &key));
    let n = name("prod");
    let v1 = writer
        .put(&n, &record(), Precondition::Create)
        .await
        .unwrap();
    // Already changed since the version the caller saw: at once.
    assert!(
        waiter
            .wait_for_change(&n, &Version("0".into()), Duration::from_secs(3600))
            .await
    );
    let w = Arc::clone(&waiter);
    let (n2, seen) = (n.clone(), v1.clone());
    let waiting = tokio::spawn(async move {
        w.wait_for_change(&n2, &seen, Duration::from_secs(3600))
            .await
    });
    // Writes to another profile do not wake it…
    let other = name("other");
    writer
        .put(&other, &record(), Precondition::Create)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "woken by another profile's write");
    // …a write to its own does, long before the hour is up.
    writer
        .put(&n, &record(), Precondition::Match(v1))
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiter woke on the write")
        .unwrap();
    assert!(woke);
}

#[tokio::test]
async fn notify_false_reports_no_notifications() {
    let Some(pg) = common::pg() else { return };
    let store = PostgresStore::open(
        &pg.uri_for(&common::unique_table(), "&notify=false"),
        StoreKey::generate(),
    )
    .unwrap();
    assert!(
        !store
            .wait_for_change(
                &name("prod"),
                &Version("1".into()),
                Duration::from_secs(3600)
            )
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_wakes_when_its_connection_drops() {
    let Some(pg) = common::pg() else { return };
    let table = common::unique_table();
    let key = StoreKey::generate();
    let owner = pg.store(&table, &key);
    let n = name("prod");
    let v = owner
        .put(&n, &record(), Precondition::Create)
        .await
        .unwrap();
    let (role, uri) = role(&pg, &pgpassword(), &table).await;
    pg.admin()
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON nsauth_schema TO {role}; GRANT SELECT ON {table} TO {role};"
        ))
        .await
        .unwrap();
    let waiter = Arc::new(PostgresStore::open(&uri, key).unwrap());
    let w = Arc::clone(&waiter);
    let (n2, seen) = (n.clone(), v.clone());
    let waiting = tokio::spawn(async move {
        w.wait_for_change(&n2, &seen, Duration::from_secs(3600))
            .await
    });
    // Once it listens, drop its connection: a notification may be lost, so it must wake.
    let admin = pg.admin().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listening: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'idle' AND query = $2",
                &[&role, &format!("SELECT version FROM \"{table}\" WHERE name = $1")],
            )
            .await
            .unwrap()
            .get(0);
        if listening == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the waiter never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiter woke when its connection dropped")
        .unwrap();
    assert!(woke);
    // And the handle works again.
    assert_eq!(waiter.load(&n).await.unwrap().unwrap().version, v);
}
