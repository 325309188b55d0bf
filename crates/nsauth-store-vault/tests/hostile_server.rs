//! A server at the Vault address that misbehaves: a redirect to another listener must not
//! carry the Vault token there, and an endless answer must end in a clear error, not in
//! memory exhaustion. Both servers are small loopback listeners made here.

use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_vault::{VaultSecret, VaultSettings, VaultStore};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "hvs.do-not-leak-5c1e0a";

fn store(addr: std::net::SocketAddr) -> VaultStore {
    let mut settings = VaultSettings::default();
    settings.token = Some(VaultSecret::new(TOKEN));
    VaultStore::from_uri_with(&format!("vault+http://{addr}/secret/nsauth"), &settings).unwrap()
}

/// Reads one request head (up to the blank line, at most 64 KiB).
async fn read_head(sock: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// A listener that records every request head it gets and answers 200 with an empty JSON.
async fn recorder() -> (std::net::SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let head = read_head(&mut sock).await;
            log.lock().unwrap().push(head);
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .await;
        }
    });
    (addr, seen)
}

/// A listener that answers every request with `status` and a Location on `to`.
async fn redirector(status: &'static str, to: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let head = read_head(&mut sock).await;
            let path = String::from_utf8_lossy(&head)
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let answer = format!(
                "HTTP/1.1 {status}\r\nLocation: http://{to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_redirect_to_another_host_never_carries_the_token() {
    let (elsewhere, seen) = recorder().await;
    for status in [
        "307 Temporary Redirect",
        "308 Permanent Redirect",
        "302 Found",
    ] {
        let vault = redirector(status, elsewhere).await;
        let store = store(vault);
        let name = ProfileName::parse("prod").unwrap();
        let err = store.load(&name).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                StoreError::Unavailable {
                    retryable: false,
                    ..
                }
            ),
            "{status}: {err:?}"
        );
        assert!(
            msg.contains("redirect") && msg.contains(&elsewhere.to_string()),
            "{status}: the message names the redirect and where it pointed: {msg}"
        );
        assert!(!msg.contains(TOKEN));
        let heads = seen.lock().unwrap().clone();
        assert!(
            heads.is_empty(),
            "{status}: the other listener got {} request(s), token included: {}",
            heads.len(),
            heads
                .iter()
                .any(|h| String::from_utf8_lossy(h).contains(TOKEN))
        );
    }
}

/// A listener whose answer never ends: chunk after chunk, until the client hangs up (or
/// 256 MiB, to stay bounded).
async fn endless(chunked: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut sock).await;
                let head: &[u8] = if chunked {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
                };
                if sock.write_all(head).await.is_err() {
                    return;
                }
                let data = vec![b' '; 64 * 1024];
                let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
                frame.extend_from_slice(&data);
                frame.extend_from_slice(b"\r\n");
                let piece = if chunked { &frame } else { &data };
                for _ in 0..4096 {
                    if sock.write_all(piece).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_with_a_clear_error() {
    for chunked in [true, false] {
        let store = store(endless(chunked).await);
        let name = ProfileName::parse("prod").unwrap();
        let start = Instant::now();
        let err = store.load(&name).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("larger than 1024 KiB"),
            "chunked {chunked}: {msg}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "chunked {chunked}: took {:?}",
            start.elapsed()
        );
    }
}
