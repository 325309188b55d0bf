//! Unit tests of the HTTP client: retry policy against loopback listeners, header parsing.
use super::*;

#[test]
fn retry_after_forms() {
    assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
    assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
    assert_eq!(parse_retry_after("soon"), None);
}

#[test]
fn redacts_query() {
    let u = Url::parse("https://u:p@host/path?code=SECRET").unwrap();
    assert_eq!(redact_url(&u), "https://host/path");
}

/// A listener that reads each request and closes the connection without answering;
/// returns its URL and a counter of requests received.
async fn answer_never() -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            if sock.read(&mut buf).await.unwrap_or(0) > 0 {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            drop(sock);
        }
    });
    (url, seen)
}

fn quick() -> Http {
    Http::with_config(HttpConfig {
        deadline: Duration::from_secs(3),
        max_attempts: 3,
        ..HttpConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn at_most_once_is_not_resent_after_the_request_went_out() {
    let (url, seen) = answer_never().await;
    let auth = ClientAuth::Public { client_id: "c" };
    let err = quick()
        .post_form_with(
            "token endpoint",
            &url,
            auth,
            &[("a", "b")],
            Delivery::AtMostOnce { if_lost: "do this" },
        )
        .await
        .unwrap_err();
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sent again"
    );
    assert!(err.to_string().ends_with("do this"), "{err}");
    assert_eq!(err.kind(), crate::store::FailureKind::Unreachable);
}

#[tokio::test]
async fn retry_delivery_sends_again() {
    let (url, seen) = answer_never().await;
    let auth = ClientAuth::Public { client_id: "c" };
    let err = quick()
        .post_form("token endpoint", &url, auth, &[("a", "b")])
        .await
        .unwrap_err();
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) >= 2, "{err}");
}

#[tokio::test]
async fn at_most_once_retries_when_no_connection_was_made() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/token", closed.local_addr().unwrap())).unwrap();
    drop(closed);
    let start = Instant::now();
    let err = quick()
        .post_form_with(
            "token endpoint",
            &url,
            ClientAuth::None,
            &[],
            Delivery::AtMostOnce { if_lost: "x" },
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("after") && !msg.ends_with("x"), "{msg}");
    assert!(
        start.elapsed() > Duration::from_millis(200),
        "no retry happened"
    );
}

/// A listener answering each request with the next status of `statuses` (then 200 with an
/// empty JSON body); returns its URL and a counter of requests.
async fn answering(
    statuses: &'static [u16],
) -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            if sock.read(&mut buf).await.unwrap_or(0) == 0 {
                continue;
            }
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let status = statuses.get(n).copied().unwrap_or(200);
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn at_most_once_retries_503_and_429_but_not_other_server_errors() {
    let once = Delivery::AtMostOnce { if_lost: "do this" };
    let (url, seen) = answering(&[503, 429]).await;
    let r = quick()
        .post_form_with("token endpoint", &url, ClientAuth::None, &[], once)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    for status in [&[500u16][..], &[502], &[504]] {
        let (url, seen) = answering(status).await;
        let err = quick()
            .post_form_with("token endpoint", &url, ClientAuth::None, &[], once)
            .await
            .unwrap_err();
        assert_eq!(
            seen.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{status:?}"
        );
        assert!(err.to_string().ends_with("do this"), "{err}");
    }
}

/// A listener answering every request with `answer`, keeping each raw request it read.
async fn recording(answer: &'static str) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/api", listener.local_addr().unwrap())).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 16384];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                continue;
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_plain_request_goes_out_with_its_method_headers_bearer_and_body() {
    let (url, seen) = recording(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    let req = Request::new("PATCH", url.clone())
        .header("prefer", "transient")
        .bearer(crate::secret::AccessToken::new("tok-123"))
        .body(b"{\"a\":1}".to_vec());
    let r = quick().send_with("REST API", &req, false).await.unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let raw = seen.lock().unwrap().join("\n").to_lowercase();
    assert!(raw.starts_with("patch /api http/1.1"), "{raw}");
    assert!(raw.contains("authorization: bearer tok-123"), "{raw}");
    assert!(raw.contains("prefer: transient"), "{raw}");
    assert!(raw.ends_with("{\"a\":1}"), "{raw}");
}

#[tokio::test]
async fn a_bad_method_or_header_is_refused_before_anything_is_sent() {
    let (url, seen) = recording("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    for req in [
        Request::new("GE T", url.clone()),
        Request::new("GET", url.clone()).header("x-a\n", "v"),
        Request::new("GET", url.clone()).header("x-a", "v\r\nx-injected: 1"),
    ] {
        let err = quick().send("REST API", &req).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_redirect_is_returned_not_followed() {
    let (url, seen) = recording(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let req = Request::new("GET", url).bearer(crate::secret::AccessToken::new("tok"));
    let r = quick().send("REST API", &req).await.unwrap();
    assert_eq!(r.status, 307);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_non_idempotent_request_is_not_resent_after_a_500() {
    let (url, seen) = answering(&[500]).await;
    let r = quick()
        .send_with("REST API", &Request::new("POST", url.clone()), false)
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (url, seen) = answering(&[500]).await;
    let r = quick()
        .send("REST API", &Request::new("GET", url))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
}
