//! The proxy (`ANY /v1/proxy/NAME/<path>`) as an app uses it, against the in-process NetSuite
//! emulator or a fake REST base that records what reaches it: round trips, where the token
//! and the caller's credentials go (and do not), 401 → one refresh → one retry, hostile
//! paths, redirects, streaming both ways, slow callers and NetSuite, and the JSON errors.

#[path = "support/agent.rs"]
mod agent;
#[path = "../../nsauth/tests/support/mod.rs"]
mod support;

use agent::{fake_rest, other_host, raw, Fed};
use bytes::Bytes;
use nsauth::{AccessToken, Client, MemoryStore, Token, TokenStore};
use nsauth_agent::proxy::{Limits, Proxy, TokenSource};
use nsauth_emulator::Emulator;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    emu: Emulator,
    store: Arc<MemoryStore>,
    client: Client,
    agent: String,
    http: reqwest::Client,
}

/// The emulator, profile `prod` logged in over an in-memory store, an agent in front.
async fn setup_with(limits: Limits) -> Setup {
    let emu = support::emulator().await;
    let store = Arc::new(MemoryStore::new());
    support::log_in(&emu, store.as_ref(), "prod").await;
    let client = Client::builder()
        .store_instance(store.clone() as Arc<dyn TokenStore>)
        .without_journal()
        .build()
        .unwrap();
    let agent = agent::agent(client.clone(), Proxy::new(limits)).await;
    let http = nsauth_core::http::tls::client_builder()
        .no_proxy()
        .build()
        .unwrap();
    Setup {
        emu,
        store,
        client,
        agent,
        http,
    }
}

async fn setup() -> Setup {
    setup_with(Limits::default()).await
}

impl Setup {
    fn url(&self, rest: &str) -> String {
        format!("{}/v1/proxy/prod/{rest}", self.agent)
    }

    /// The access token the agent holds for `prod` now.
    async fn token(&self) -> String {
        let t = self.client.token("prod", Duration::ZERO).await.unwrap();
        t.access_token.secret().to_owned()
    }

    /// Points `prod`'s REST base at `url`.
    async fn set_rest(&self, url: &str) {
        let name = nsauth_store::ProfileName::parse("prod").unwrap();
        nsauth_core::store::update(self.store.as_ref(), &name, |r| {
            r.profile.endpoints.rest_url = Some(url.parse().unwrap());
            Ok(())
        })
        .await
        .unwrap();
    }

    async fn suiteql(&self, retry: Option<&str>) -> reqwest::Response {
        let mut rb = self
            .http
            .post(self.url("query/v1/suiteql"))
            .header("prefer", "transient")
            .header("content-type", "application/json")
            .body(r#"{"q":"SELECT id FROM customer"}"#);
        if let Some(v) = retry {
            rb = rb.header("x-nsauth-retry", v);
        }
        rb.send().await.unwrap()
    }
}

/// Every header line and the body of a response, as one text to search.
async fn seen_by_caller(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let mut text = String::new();
    for (n, v) in resp.headers() {
        text += &format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes()));
    }
    text += &resp.text().await.unwrap();
    (status, text)
}

#[tokio::test]
async fn get_and_suiteql_round_trip_and_the_token_never_reaches_the_caller() {
    let s = setup().await;
    let token = s.token().await;
    let resp = s
        .http
        .get(s.url("record/v1/metadata-catalog"))
        .send()
        .await
        .unwrap();
    let (status, text) = seen_by_caller(resp).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("x-test-retried: 0"), "{text}");
    assert!(text.contains("\"items\""), "{text}");
    assert!(!text.contains(&token), "the token reached the caller");

    let (status, text) = seen_by_caller(s.suiteql(None).await).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("SELECT id FROM customer"), "{text}");
    assert!(!text.contains(&token), "the token reached the caller");
    assert_eq!(s.emu.counters().api_calls, 2);
    assert_eq!(s.emu.counters().refresh_token, 0);
}

#[tokio::test]
async fn the_callers_credentials_and_the_agents_controls_never_reach_netsuite() {
    let s = setup().await;
    let (fake, _) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    let token = s.token().await;
    let head = [
        "GET /v1/proxy/prod/record/v1/customer/42?limit=5 HTTP/1.1",
        "Host: evil.test",
        "Authorization: Bearer caller-secret",
        "Proxy-Authorization: Basic cHJveHk6c2VjcmV0",
        "Cookie: JSESSIONID=caller-session",
        "X-Nsauth-Retry: always",
        "X-Nsauth-Debug: 1",
        "Connection: x-private",
        "X-Private: hop",
        "Keep-Alive: timeout=5",
        "TE: trailers",
        "X-Request-Id: r-1",
    ]
    .join("\r\n");
    let (status, answer) = raw(&s.agent, &head, b"").await;
    assert_eq!(status, 200, "{answer}");
    let low = answer.to_ascii_lowercase();
    assert!(
        !low.contains("set-cookie") && !low.contains("session-secret"),
        "{answer}"
    );
    assert!(
        !low.contains("x-hop"),
        "a hop-by-hop header came back: {answer}"
    );
    assert!(!answer.contains(&token));

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.method, "GET");
    assert_eq!(
        got.path_and_query,
        "/services/rest/record/v1/customer/42?limit=5"
    );
    let auth: Vec<&str> = got
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        auth,
        [format!("Bearer {token}")],
        "exactly the agent's token"
    );
    let names: Vec<&str> = got.headers.iter().map(|(n, _)| n.as_str()).collect();
    for gone in [
        "proxy-authorization",
        "cookie",
        "x-nsauth-retry",
        "x-nsauth-debug",
        "x-private",
        "keep-alive",
        "te",
    ] {
        assert!(!names.contains(&gone), "{gone} reached NetSuite: {names:?}");
    }
    let all = format!("{:?}", got.headers);
    assert!(
        !all.contains("caller-secret")
            && !all.contains("caller-session")
            && !all.contains("evil.test"),
        "{all}"
    );
    assert!(got
        .headers
        .iter()
        .any(|(n, v)| n == "x-request-id" && v == "r-1"));
}

#[tokio::test]
async fn a_401_causes_exactly_one_refresh_and_one_retry() {
    let s = setup().await;
    let before = s.token().await;
    s.emu.expire_access_tokens();
    let resp = s
        .http
        .get(s.url("record/v1/metadata-catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-test-retried"], "1");
    assert_eq!(s.emu.counters().refresh_token, 1, "exactly one refresh");
    assert_eq!(s.emu.counters().api_calls, 2, "the 401, then one retry");
    assert_ne!(s.token().await, before, "the new token was saved");
}

#[tokio::test]
async fn a_post_hit_by_401_is_retried_only_when_the_caller_says_always() {
    let s = setup().await;
    s.emu.expire_access_tokens();
    let resp = s.suiteql(None).await;
    assert_eq!(
        resp.status(),
        401,
        "POST without X-Nsauth-Retry is not retried"
    );
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(s.emu.counters().api_calls, 1);
    assert_eq!(s.emu.counters().refresh_token, 0);

    let resp = s.suiteql(Some("always")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(s.emu.counters().api_calls, 3, "one 401, one retry");
    assert_eq!(s.emu.counters().refresh_token, 1);

    s.emu.expire_access_tokens();
    let resp = s
        .http
        .get(s.url("record/v1/metadata-catalog"))
        .header("x-nsauth-retry", "never")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "never: not even a GET is retried");
    assert_eq!(s.emu.counters().refresh_token, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_requests_hit_by_a_401_at_once_cause_one_refresh() {
    let s = setup().await;
    s.emu.expire_access_tokens();
    let calls = (0..16).map(|_| {
        let rb = s.http.get(s.url("record/v1/metadata-catalog"));
        async move { rb.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_join_all(calls).await;
    assert_eq!(statuses, vec![200; 16]);
    assert_eq!(s.emu.counters().refresh_token, 1, "one refresh for all 16");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_that_lands_after_the_refresh_reuses_the_new_token() {
    let s = setup().await;
    let (fake, _) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    // Both go out with the same token; the second 401 comes once the first's retry, with the
    // refreshed token, has arrived. A plain forced refresh would refresh a second time.
    let calls = (0..2).map(|_| {
        let rb = s.http.get(s.url("gate"));
        async move { rb.send().await.unwrap().status().as_u16() }
    });
    assert_eq!(futures_join_all(calls).await, [200, 200]);
    assert_eq!(
        s.emu.counters().refresh_token,
        1,
        "one refresh for both 401s"
    );
    let gates = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path_and_query.ends_with("/gate"))
        .count();
    assert_eq!(gates, 4, "two requests, each retried once");
}

/// A token source standing for the server's cache: counts what the proxy asks of it.
struct Counting {
    client: Client,
    fresh: Arc<AtomicUsize>,
    after_401: Arc<AtomicUsize>,
}

impl TokenSource for Counting {
    async fn fresh_token(&self, profile: &str, min_ttl: Duration) -> Result<Token, nsauth::Error> {
        self.fresh.fetch_add(1, Ordering::SeqCst);
        self.client.token(profile, min_ttl).await
    }

    async fn token_after_401(
        &self,
        profile: &str,
        rejected: &AccessToken,
    ) -> Result<Token, nsauth::Error> {
        self.after_401.fetch_add(1, Ordering::SeqCst);
        self.client.token_after_rejection(profile, rejected).await
    }
}

#[tokio::test]
async fn tokens_come_from_the_token_source_the_server_gives() {
    let s = setup().await;
    let (fresh, after_401) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let source = Counting {
        client: s.client.clone(),
        fresh: fresh.clone(),
        after_401: after_401.clone(),
    };
    let agent = agent::agent_over(source, Proxy::new(Limits::default())).await;
    let url = format!("{agent}/v1/proxy/prod/record/v1/metadata-catalog");
    assert_eq!(s.http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(
        (
            fresh.load(Ordering::SeqCst),
            after_401.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    s.emu.expire_access_tokens();
    assert_eq!(s.http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(
        (
            fresh.load(Ordering::SeqCst),
            after_401.load(Ordering::SeqCst)
        ),
        (2, 1)
    );
    assert_eq!(s.emu.counters().refresh_token, 1);
}

/// Runs futures concurrently on the runtime's threads, in order of results.
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn hostile_paths_never_reach_another_host() {
    let s = setup().await;
    let (hp, reached) = other_host().await;
    // (path after /v1/proxy/prod/, refused by the path rules); characters that cannot stand
    // in a request line are sent percent-encoded, as a client would have to.
    let hostile = [
        (format!("\\\\{hp}/x"), true),
        (format!("/\\/{hp}/x"), true),
        (format!("\\/{hp}/x"), true),
        (format!("%09//{hp}/x"), true),
        (format!("/%09/{hp}/x"), true),
        (format!("%0A//{hp}/x"), true),
        (format!("%0D%0A//{hp}/x"), true),
        (format!("%20//{hp}/x"), true),
        (format!("https:{hp}/x"), true),
        (format!("http:{hp}/x"), true),
        (format!("https://{hp}/x"), true),
        (format!("//{hp}/x"), true),
        (format!("%2F%2F{hp}/x"), true),
        (format!("%5C%5C{hp}/x"), true),
        (format!("..//{hp}/x"), true),
        (format!("record/../../../{hp}/x"), true),
        // The request-line parser drops a fragment: `record/v1/x` goes to the REST base.
        (format!("record/v1/x#//{hp}/"), false),
        (format!("@{hp}/x"), false),
        (format!("%EF%BC%8F%EF%BC%8F{hp}/x"), false),
        (format!("%E2%88%95%E2%88%95{hp}/x"), false),
        (format!("record/v1/x?next=http://{hp}/"), false),
    ];
    for (path, refused) in &hostile {
        // The Host header names the other host too: it must not matter.
        let head = format!("GET /v1/proxy/prod/{path} HTTP/1.1\r\nHost: {hp}");
        let (status, answer) = raw(&s.agent, &head, b"").await;
        if *refused {
            assert_eq!(status, 400, "{path:?}: {answer}");
        }
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "{path:?} reached another host"
        );
    }
    // The ones the rules let through stayed under the REST base (the emulator's 404s).
    assert_eq!(s.emu.counters().api_calls, 0);
    let resp = s
        .http
        .get(s.url("record/v1/metadata-catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the agent still works");
}

#[tokio::test]
async fn a_redirect_reaches_the_caller_unfollowed() {
    let s = setup().await;
    let (hp, reached) = other_host().await;
    let (fake, _) = fake_rest(format!("http://{hp}/steal")).await;
    s.set_rest(&fake.rest_url).await;
    let (status, answer) = raw(
        &s.agent,
        "GET /v1/proxy/prod/redirect HTTP/1.1\r\nHost: a",
        b"",
    )
    .await;
    assert_eq!(status, 302, "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("location: http://{hp}/steal")),
        "{answer}"
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the agent followed the redirect"
    );
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

/// `n` pieces of 64 KiB (bytes 0..=255 repeating), streamed with no declared length; the
/// byte sum.
fn streamed_body(n: usize) -> (reqwest::Body, u64) {
    let piece: Vec<u8> = (0..65_536).map(|i| (i % 256) as u8).collect();
    let sum = piece.iter().map(|b| u64::from(*b)).sum::<u64>() * n as u64;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        for _ in 0..n {
            if tx.send(Bytes::from(piece.clone())).await.is_err() {
                return;
            }
        }
    });
    (reqwest::Body::wrap(Fed(rx)), sum)
}

#[tokio::test]
async fn a_body_larger_than_the_retry_buffer_streams_through_and_is_not_retried() {
    let s = setup().await;
    let (fake, _) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    // 3 MiB of unknown length: the agent starts holding it for a retry, then streams.
    let (body, sum) = streamed_body(48);
    let resp = s
        .http
        .post(s.url("echo"))
        .header("x-nsauth-retry", "always")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["bytes"], 48 * 65_536);
    assert_eq!(got["sum"], sum);

    // A declared 2 MiB PUT goes straight through too.
    let big = vec![7u8; 2 << 20];
    let resp = s.http.put(s.url("echo")).body(big).send().await.unwrap();
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["bytes"], 2 << 20);

    // Refused with 401: too large to have been held, so returned, not retried.
    let (body, _) = streamed_body(32);
    let resp = s
        .http
        .post(s.url("deny"))
        .header("x-nsauth-retry", "always")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let denies = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path_and_query.ends_with("/deny"))
        .count();
    assert_eq!(denies, 1);
    assert_eq!(s.emu.counters().refresh_token, 0);

    // A small one refused with 401 is held, and sent again after one refresh.
    let resp = s
        .http
        .post(s.url("deny"))
        .header("x-nsauth-retry", "always")
        .body("small")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the fake refuses every token");
    let seen = fake.seen.lock().unwrap().clone();
    let small: Vec<_> = seen
        .iter()
        .filter(|r| r.path_and_query.ends_with("/deny") && r.body_len == 5)
        .collect();
    assert_eq!(small.len(), 2, "sent, then retried once with the same body");
    assert_eq!(s.emu.counters().refresh_token, 1);
}

#[tokio::test]
async fn a_slowly_streamed_response_arrives_piece_by_piece() {
    let s = setup().await;
    let (fake, tx) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    const LONG: Duration = Duration::from_secs(20);
    let mut resp = tokio::time::timeout(LONG, s.http.get(s.url("slow")).send())
        .await
        .expect("headers came")
        .unwrap();
    assert_eq!(resp.status(), 200);
    tx.send(Bytes::from_static(b"first piece")).await.unwrap();
    let first = tokio::time::timeout(LONG, resp.chunk())
        .await
        .expect("the first piece came before the last was sent");
    assert_eq!(first.unwrap().unwrap(), "first piece");
    tx.send(Bytes::from_static(b"last piece")).await.unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(c) = tokio::time::timeout(LONG, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"last piece");
}

#[tokio::test]
async fn past_the_in_flight_cap_the_agent_answers_503_until_a_streaming_response_ends() {
    let mut limits = Limits::default();
    limits.max_in_flight = 1;
    let s = setup_with(limits).await;
    let (fake, tx) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    let mut slow = s.http.get(s.url("slow")).send().await.unwrap();
    let busy = s.http.get(s.url("echo")).send().await.unwrap();
    assert_eq!(
        busy.status(),
        503,
        "the streaming response holds the one slot"
    );
    assert_eq!(busy.headers()["retry-after"], "1");
    drop(tx);
    while slow.chunk().await.unwrap().is_some() {}
    // The slot is given back when the body is dropped: poll with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = s.http.get(s.url("echo")).send().await.unwrap();
        if resp.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn netsuite_silent_mid_body_ends_the_response_instead_of_holding_it() {
    let mut limits = Limits::default();
    limits.upstream_idle = Duration::from_millis(300);
    let s = setup_with(limits).await;
    let (fake, tx) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    const LONG: Duration = Duration::from_secs(20);
    let mut resp = tokio::time::timeout(LONG, s.http.get(s.url("slow")).send())
        .await
        .expect("headers came")
        .unwrap();
    tx.send(Bytes::from_static(b"first piece")).await.unwrap();
    let first = tokio::time::timeout(LONG, resp.chunk()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), "first piece");
    // NetSuite says nothing more (the sender stays open): the agent ends the body.
    let next = tokio::time::timeout(LONG, resp.chunk())
        .await
        .expect("the agent let go");
    assert!(
        next.is_err(),
        "the body ended in an error, not as complete: {next:?}"
    );
    drop(tx);
}

#[tokio::test]
async fn a_slow_answer_is_waited_for_up_to_the_response_timeout_then_504() {
    // The idle limit is for a body already flowing; waiting for the headers has its own.
    let mut limits = Limits::default();
    limits.upstream_idle = Duration::from_millis(200);
    limits.response_timeout = Duration::from_millis(1500);
    let s = setup_with(limits).await;
    let (fake, _) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    let started = std::time::Instant::now();
    let head = "GET /v1/proxy/prod/hang HTTP/1.1\r\nHost: a";
    let (status, answer) = tokio::time::timeout(Duration::from_secs(20), raw(&s.agent, head, b""))
        .await
        .expect("the agent let go");
    assert_eq!(status, 504, "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "gave up early"
    );
}

#[tokio::test]
async fn a_caller_that_stops_sending_gets_408_and_a_silent_netsuite_504() {
    let mut limits = Limits::default();
    limits.body_idle = Duration::from_millis(300);
    limits.response_timeout = Duration::from_millis(500);
    let s = setup_with(limits).await;
    let (fake, _) = fake_rest(String::new()).await;
    s.set_rest(&fake.rest_url).await;
    let within = |f| tokio::time::timeout(Duration::from_secs(20), f);
    for (head, what) in [
        (
            "PUT /v1/proxy/prod/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100",
            "held for a retry",
        ),
        (
            "POST /v1/proxy/prod/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100",
            "streamed",
        ),
    ] {
        let (status, answer) = within(raw(&s.agent, head, b"only 2"))
            .await
            .expect("the agent let go");
        assert_eq!(status, 408, "{what}: {answer}");
        assert!(answer.contains(r#""exit_code":2"#), "{answer}");
    }
    let (status, answer) = within(raw(
        &s.agent,
        "GET /v1/proxy/prod/hang HTTP/1.1\r\nHost: a",
        b"",
    ))
    .await
    .unwrap();
    assert_eq!(status, 504, "{answer}");
    assert!(
        answer.contains(r#""error":"netsuite_timeout""#) && answer.contains(r#""exit_code":5"#),
        "{answer}"
    );
}

#[tokio::test]
async fn errors_are_json_with_the_status_that_fits() {
    let s = setup().await;
    let json = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        (
            status,
            v["error"].as_str().unwrap().to_owned(),
            v["exit_code"].as_i64().unwrap(),
            v["message"].as_str().unwrap().to_owned(),
        )
    };
    let get = |url: String| s.http.get(url).send();

    let (st, err, code, msg) = json(
        get(format!("{}/v1/proxy/nobody/record/v1/x", s.agent))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, err.as_str(), code),
        (404, "unknown_profile", 2),
        "{msg}"
    );

    let (status, answer) = raw(
        &s.agent,
        "GET /v1/proxy/prod/record/%2e%2e/x HTTP/1.1\r\nHost: a",
        b"",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains(r#""error":"invalid""#) && answer.contains(r#""exit_code":2"#),
        "{answer}"
    );

    let resp = s
        .http
        .request(reqwest::Method::TRACE, s.url("record/v1/metadata-catalog"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(resp).await.0, 405, "TRACE would echo the token");

    // A profile nobody logged in to.
    let name = nsauth_store::ProfileName::parse("prod").unwrap();
    let mut record = s.store.load(&name).await.unwrap().unwrap().record;
    record.tokens = None;
    let fresh = nsauth_store::ProfileName::parse("fresh").unwrap();
    s.store
        .put(&fresh, &record, nsauth_store::Precondition::Create)
        .await
        .unwrap();
    let (st, err, code, msg) = json(
        get(format!("{}/v1/proxy/fresh/record/v1/x", s.agent))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, err.as_str(), code), (409, "login_needed", 3), "{msg}");

    // NetSuite unreachable: nothing listens at the REST base.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    s.set_rest(&format!("http://127.0.0.1:{port}/services/rest/"))
        .await;
    let (st, err, code, msg) = json(get(s.url("record/v1/x")).await.unwrap()).await;
    assert_eq!(
        (st, err.as_str(), code),
        (502, "netsuite_unreachable", 5),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(s.emu.counters().api_calls, 0);
}
