//! The library as a Rust service uses it, against the in-process NetSuite emulator: tokens,
//! the reqwest integration's 401 → refresh → retry path, what is not retried, where the token
//! may go, and single flight between clients.

mod support;

use nsauth::Client;
use reqwest::Method;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{emulator, log_in, sqlite_in};

/// A client over a sqlite store in `dir` (journal beside it), with profile `prod` logged in.
async fn logged_in(emu: &nsauth_emulator::Emulator, dir: &std::path::Path) -> Client {
    let client = client_in(dir);
    log_in(emu, client.store().as_ref(), "prod").await;
    client
}

/// Another client (as another process would build it) over the store in `dir`.
fn client_in(dir: &std::path::Path) -> Client {
    let (uri, key) = sqlite_in(dir);
    Client::builder()
        .store(uri)
        .key_file(key)
        .journal_dir(dir.join("journal"))
        .profile("prod")
        .build()
        .unwrap()
}

#[tokio::test]
async fn token_gives_the_access_token_account_and_rest_base() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = logged_in(&emu, dir.path()).await;
    let t = client.token("prod", Duration::from_secs(60)).await.unwrap();
    assert_eq!(t.account_id, emu.account_id());
    assert_eq!(
        t.rest_url.as_str(),
        format!("{}/services/rest/", emu.base_url())
    );
    assert!(t.expires_at > time::OffsetDateTime::now_utc() + time::Duration::minutes(55));
    assert!(!format!("{t:?}").contains(t.access_token.secret()));
    assert_eq!(
        emu.counters().refresh_token,
        0,
        "a fresh login needs no refresh"
    );
    let e = client
        .token("nobody", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), nsauth_core::store::FailureKind::Invalid, "{e}");
}

#[tokio::test]
async fn a_401_forces_one_refresh_and_the_request_is_retried_once() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = logged_in(&emu, dir.path()).await;
    let api = client.http("prod");
    let before = client.token("prod", Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        api.get("record/v1/metadata-catalog")
            .await
            .unwrap()
            .status(),
        200
    );
    emu.expire_access_tokens();
    let calls = emu.counters().api_calls;
    let resp = api.get("record/v1/metadata-catalog").await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(
        body["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{body}"
    );
    assert_eq!(emu.counters().refresh_token, 1, "exactly one refresh");
    assert_eq!(
        emu.counters().api_calls,
        calls + 2,
        "the 401, then one retry"
    );
    let after = client.token("prod", Duration::from_secs(60)).await.unwrap();
    assert_ne!(
        after.access_token, before.access_token,
        "the new token was saved"
    );
}

#[tokio::test]
async fn a_401_after_the_refresh_too_is_returned_without_a_second_retry() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = client_in(dir.path());
    // Tokens without the REST scope are refused every time.
    support::log_in_with_scope(&emu, client.store().as_ref(), "prod", "restlets").await;
    let resp = client
        .http("prod")
        .get("record/v1/metadata-catalog")
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(emu.counters().api_calls, 2, "one request, one retry");
    assert_eq!(emu.counters().refresh_token, 1, "one refresh");
}

#[tokio::test]
async fn a_post_is_not_retried_after_a_401_unless_the_caller_opts_in() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = logged_in(&emu, dir.path()).await;
    let query = |api: &nsauth::reqwest::Api| {
        let api = api.clone();
        async move {
            let rb = api
                .request(Method::POST, "query/v1/suiteql")
                .await
                .unwrap()
                .header("prefer", "transient")
                .header("content-type", "application/json")
                .body(r#"{"q":"SELECT id FROM customer"}"#);
            api.send(rb).await.unwrap()
        }
    };
    emu.expire_access_tokens();
    let calls = emu.counters().api_calls;
    let resp = query(&client.http("prod")).await;
    assert_eq!(resp.status(), 401, "POST without opt-in is not retried");
    assert_eq!(emu.counters().api_calls, calls + 1);
    assert_eq!(emu.counters().refresh_token, 0);

    let resp = query(&client.http("prod").retry_any_method(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(emu.counters().api_calls, calls + 3);
    assert_eq!(emu.counters().refresh_token, 1);
}

/// A listener that counts connections and answers nothing useful.
async fn recording_listener() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    (format!("127.0.0.1:{}", addr.port()), seen)
}

#[tokio::test]
async fn the_token_never_goes_to_another_host() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = logged_in(&emu, dir.path()).await;
    let api = client.http("prod");
    let (other, seen) = recording_listener().await;
    let emu_port = emu.base_url().rsplit(':').next().unwrap().to_owned();
    let elsewhere = [
        format!("http://{other}/services/rest/record/v1/metadata-catalog"),
        format!("https://127.0.0.1:{emu_port}/services/rest/record/v1/metadata-catalog"),
        format!("http://localhost:{emu_port}/services/rest/record/v1/metadata-catalog"),
    ];
    for url in &elsewhere {
        let rb = nsauth::reqwest::client_builder().build().unwrap().get(url);
        let e = api.send(rb).await.unwrap_err();
        assert_eq!(
            e.kind(),
            nsauth_core::store::FailureKind::Invalid,
            "{url}: {e}"
        );
        assert!(e.to_string().contains("refusing to send the token"), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    for path in [
        format!("//{other}/x"),
        format!("http://{other}/x"),
        format!("http:{other}/x"),
        format!("\\\\{other}/x"),
        format!("%2F%2F{other}/x"),
        "../../x".into(),
    ] {
        let e = api.get(&path).await.unwrap_err();
        assert_eq!(
            e.kind(),
            nsauth_core::store::FailureKind::Invalid,
            "{path}: {e}"
        );
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "nothing reached the other host"
    );
    assert_eq!(emu.counters().api_calls, 0);
}

#[tokio::test]
async fn a_redirect_from_the_rest_base_is_not_followed() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = logged_in(&emu, dir.path()).await;
    let (other, seen) = recording_listener().await;
    // The REST base answers with a redirect to another host.
    let base = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = format!("http://{}/services/rest/", base.local_addr().unwrap());
    let answer = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://{other}/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = base.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    let name = nsauth_store::ProfileName::parse("prod").unwrap();
    nsauth_core::store::update(client.store().as_ref(), &name, |r| {
        r.profile.endpoints.rest_url = Some(rest.parse().unwrap());
        Ok(())
    })
    .await
    .unwrap();
    let resp = client
        .http("prod")
        .get("record/v1/metadata-catalog")
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_hit_by_401_at_once_cause_one_refresh() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let _first = logged_in(&emu, dir.path()).await;
    let (a, b) = (
        client_in(dir.path()).http("prod"),
        client_in(dir.path()).http("prod"),
    );
    emu.expire_access_tokens();
    let (ra, rb) = tokio::join!(
        a.get("record/v1/metadata-catalog"),
        b.get("record/v1/metadata-catalog")
    );
    assert_eq!(ra.unwrap().status(), 200);
    assert_eq!(rb.unwrap().status(), 200);
    assert_eq!(emu.counters().refresh_token, 1);
    // The one that came second after the refresh reuses the new token, no refresh again.
    let rc = client_in(dir.path())
        .http("prod")
        .get("record/v1/metadata-catalog")
        .await;
    assert_eq!(rc.unwrap().status(), 200);
    assert_eq!(emu.counters().refresh_token, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_asking_after_expiry_cause_one_refresh() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let first = logged_in(&emu, dir.path()).await;
    // The access token ran out (as an hour later).
    let name = nsauth_store::ProfileName::parse("prod").unwrap();
    nsauth_core::store::update(first.store().as_ref(), &name, |r| {
        let t = r.tokens.as_mut().unwrap();
        t.access_expires_at = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        Ok(())
    })
    .await
    .unwrap();
    let (a, b) = (client_in(dir.path()), client_in(dir.path()));
    let want = Duration::from_secs(60);
    let (ta, tb) = tokio::join!(a.token("prod", want), b.token("prod", want));
    assert_eq!(ta.unwrap().access_token, tb.unwrap().access_token);
    assert_eq!(emu.counters().refresh_token, 1);
}
