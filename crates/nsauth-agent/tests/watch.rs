//! The deadline watch as the agent uses it: which events a history of checks produces (each
//! band once, no flapping, one "recovered"), a real notify command receiving a
//! re-approval whose handoff link works against the emulator, a webhook, and hostile sinks.

use nsauth_agent::notify::Limits;
use nsauth_agent::watch::{deadlines, Event, WatchConfig, Watcher};
use nsauth_core::account::AccountId;
use nsauth_core::profile::GrantKind;
use nsauth_core::secret::{AccessToken, ClientSecret, RefreshToken};
use nsauth_core::token::TokenSet;
use nsauth_core::{Error, Profile, ProfileName, Record, TokenStore};
use nsauth_store::{MemoryStore, Precondition};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const USER: &str = "watcher@example.com";
const PASSWORD: &str = "watch the deadlines";
const CLIENT: &str = "watch-public-client";
const REDIRECT: &str = "https://nsauth.example.com/callback";

fn base_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()
}

fn hours(h: f64) -> OffsetDateTime {
    base_time() + time::Duration::seconds_f64(h * 3600.0)
}

fn name() -> ProfileName {
    ProfileName::parse("prod").unwrap()
}

/// A confidential authorization-code profile whose refresh token ends at `end`.
fn confidential(end: OffsetDateTime, access: &str) -> Record {
    let mut p = Profile::new(AccountId::parse("1234567").unwrap(), "client-id");
    p.client_secret = Some(ClientSecret::new("client-secret-value"));
    p.redirect_uri = Some(REDIRECT.parse().unwrap());
    let mut r = Record::new(p);
    r.tokens = Some(TokenSet {
        access_token: AccessToken::new(access),
        access_expires_at: end.min(base_time() + time::Duration::hours(1)),
        refresh_token: Some(RefreshToken::new("refresh-token-secret")),
        refresh_expires_at: Some(end),
        obtained_at: base_time(),
    });
    r
}

async fn stored(record: &Record) -> MemoryStore {
    let store = MemoryStore::new();
    store
        .put(&name(), record, Precondition::Create)
        .await
        .unwrap();
    store
}

fn kinds(events: &[Event]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .map(|e| (e.event.as_str().to_owned(), e.threshold.clone()))
        .collect()
}

fn ev(kind: &str, threshold: Option<&str>) -> (String, Option<String>) {
    (kind.to_owned(), threshold.map(str::to_owned))
}

/// One step of a history: when, the stored record, the refresh error, the events expected.
type Row<'a, At, W> = (At, &'a Record, Option<Error>, W);
/// Events by name and threshold.
type Want = Vec<(String, Option<String>)>;
type Spec<'a> = &'a [(&'a str, Option<&'a str>)];

fn login_needed() -> Error {
    Error::LoginNeeded("NetSuite refused the refresh token: invalid_grant".into())
}

#[tokio::test]
async fn a_history_of_checks_gives_each_band_once_without_flapping_and_one_recovery() {
    let end = hours(100.0);
    let old = confidential(end, "access-1");
    let store = stored(&old).await;
    let renewed = confidential(hours(103.0 + 168.0), "access-2");
    let w = Watcher::new(WatchConfig::default());
    let none: &[(&str, Option<&str>)] = &[];
    // (hours after the start, record, refresh error, events expected)
    let table: Vec<Row<'_, f64, Spec<'_>>> = vec![
        (0.0, &old, None, none),
        (27.0, &old, None, none),
        (28.5, &old, None, &[("refresh_token_expiring", Some("72h"))]),
        (30.0, &old, None, none),
        // The clock wobbles around the 24 h threshold.
        (75.99, &old, None, none),
        (
            76.01,
            &old,
            None,
            &[("refresh_token_expiring", Some("24h"))],
        ),
        (75.99, &old, None, none),
        (76.01, &old, None, none),
        (75.5, &old, None, none),
        (96.5, &old, None, &[("refresh_token_expiring", Some("4h"))]),
        (90.0, &old, None, none),
        (100.0, &old, None, &[("refresh_token_expired", None)]),
        (100.5, &old, None, none),
        (
            101.0,
            &old,
            Some(login_needed()),
            &[("reapproval_needed", None)],
        ),
        (101.5, &old, Some(login_needed()), none),
        (102.0, &old, None, none),
        // A person logged in: a new chain and new tokens.
        (103.0, &renewed, None, &[("recovered", None)]),
        (104.0, &renewed, None, none),
        (
            105.0,
            &renewed,
            Some(Error::Unreachable("down".into())),
            none,
        ),
    ];
    for (i, (at, record, error, expected)) in table.into_iter().enumerate() {
        let got = w
            .evaluate(&store, &name(), record, error.as_ref(), hours(at))
            .await;
        let want: Vec<_> = expected.iter().map(|(k, t)| ev(k, *t)).collect();
        assert_eq!(kinds(&got), want, "step {i} at {at} h: {got:#?}");
        for e in &got {
            assert_eq!(e.profile, "prod");
            assert_eq!(e.account_id, "1234567");
            assert!(e.text.contains("nsauth") && !e.message.is_empty());
            let json = String::from_utf8(e.to_json()).unwrap();
            for secret in [
                "client-secret-value",
                "refresh-token-secret",
                "access-1",
                "access-2",
            ] {
                assert!(!json.contains(secret), "{secret} in {json}");
            }
        }
    }
}

#[tokio::test]
async fn a_jump_over_several_bands_fires_once_and_a_restart_announces_the_band_once() {
    let record = confidential(hours(100.0), "a");
    let store = stored(&record).await;
    let w = Watcher::new(WatchConfig::default());
    let got = w
        .evaluate(&store, &name(), &record, None, hours(98.0))
        .await;
    assert_eq!(kinds(&got), vec![ev("refresh_token_expiring", Some("4h"))]);
    assert_eq!(got[0].seconds_left, Some(7200));
    assert_eq!(got[0].deadline, Some(hours(100.0)));
    // A new agent process (state is not kept): the current band once.
    let again = Watcher::new(WatchConfig::default());
    let got = again
        .evaluate(&store, &name(), &record, None, hours(98.5))
        .await;
    assert_eq!(kinds(&got), vec![ev("refresh_token_expiring", Some("4h"))]);
    assert!(again
        .evaluate(&store, &name(), &record, None, hours(99.0))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_raise_one_reapproval_per_profile_and_profiles_stay_apart() {
    let record = confidential(hours(100.0), "a");
    let store = Arc::new(stored(&record).await);
    let other = ProfileName::parse("sb1").unwrap();
    store
        .put(&other, &record, Precondition::Create)
        .await
        .unwrap();
    let w = Arc::new(Watcher::new(WatchConfig::default()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (w, store, record) = (w.clone(), store.clone(), record.clone());
        let who = if i % 2 == 0 { name() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            w.evaluate(
                store.as_ref(),
                &who,
                &record,
                Some(&login_needed()),
                hours(1.0),
            )
            .await
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let mut got: Vec<(String, String)> = all
        .iter()
        .map(|e| (e.profile.clone(), e.event.as_str().to_owned()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("prod".to_owned(), "reapproval_needed".to_owned()),
            ("sb1".to_owned(), "reapproval_needed".to_owned())
        ]
    );
    // Each link belongs to its own profile's stored login.
    for e in &all {
        let who = ProfileName::parse(&e.profile).unwrap();
        let rec = store.load(&who).await.unwrap().unwrap().record;
        let state = rec.pending.last().unwrap().state.clone();
        assert!(e.handoff_url.as_ref().unwrap().contains(&state));
    }
}

#[tokio::test]
async fn a_reapproval_without_a_storable_login_says_what_to_run() {
    // The profile is not in this store: no pending login can be kept, no link is made up.
    let record = confidential(hours(100.0), "a");
    let empty = MemoryStore::new();
    let w = Watcher::new(WatchConfig::default());
    let got = w
        .evaluate(&empty, &name(), &record, Some(&login_needed()), hours(1.0))
        .await;
    assert_eq!(kinds(&got), vec![ev("reapproval_needed", None)]);
    assert!(got[0].handoff_url.is_none());
    assert!(
        got[0]
            .message
            .contains("nsauth login start --handoff --profile prod"),
        "{}",
        got[0].message
    );
}

fn m2m_record(certificate_pem: String) -> Record {
    let key = nsauth_core::m2m::generate_key(nsauth_core::m2m::KeyAlgorithm::EcP256, 1, "k")
        .unwrap()
        .private_key;
    let mut p = Profile::new(AccountId::parse("1234567").unwrap(), "m2m-client");
    p.grant = GrantKind::ClientCredentials;
    p.certificate_id = Some("cert-1".into());
    p.private_key = Some(key);
    p.certificate_pem = Some(certificate_pem);
    Record::new(p)
}

#[tokio::test]
async fn certificate_bands_and_a_rotation_recovers_once() {
    let cert = |days| {
        nsauth_core::m2m::generate_key(nsauth_core::m2m::KeyAlgorithm::EcP256, days, "watch")
            .unwrap()
            .certificate_pem
    };
    let old = m2m_record(cert(30));
    let n = deadlines(&old)
        .certificate_not_after
        .expect("certificate end");
    assert_eq!(
        deadlines(&old).refresh_chain_end,
        None,
        "M2M has no refresh token"
    );
    let store = stored(&old).await;
    let rotated = m2m_record(cert(90));
    let w = Watcher::new(WatchConfig::default());
    let day = |d: i64| n + time::Duration::days(d);
    let steps: Vec<Row<'_, OffsetDateTime, Want>> = vec![
        (day(-31), &old, None, vec![]),
        (
            day(-29),
            &old,
            None,
            vec![ev("certificate_expiring", Some("30d"))],
        ),
        (day(-20), &old, None, vec![]),
        (
            day(-13),
            &old,
            None,
            vec![ev("certificate_expiring", Some("14d"))],
        ),
        (
            day(-2),
            &old,
            None,
            vec![ev("certificate_expiring", Some("3d"))],
        ),
        (day(0), &old, None, vec![ev("certificate_expired", None)]),
        (
            day(1),
            &old,
            Some(login_needed()),
            vec![ev("reapproval_needed", None)],
        ),
        (day(1), &old, Some(login_needed()), vec![]),
        (day(2), &rotated, None, vec![ev("recovered", None)]),
        (day(3), &rotated, None, vec![]),
    ];
    for (i, (at, record, error, want)) in steps.into_iter().enumerate() {
        let got = w
            .evaluate(&store, &name(), record, error.as_ref(), at)
            .await;
        assert_eq!(kinds(&got), want, "step {i}: {got:#?}");
        if let Some(e) = got.iter().find(|e| e.event.as_str() == "reapproval_needed") {
            assert!(e.handoff_url.is_none(), "no login link for M2M");
            assert!(
                e.message.contains("nsauth m2m rotate --profile prod"),
                "{}",
                e.message
            );
        }
    }
}

#[test]
fn threshold_flags() {
    let h = |n: u64| Duration::from_secs(n * 3600);
    assert_eq!(
        nsauth_agent::watch::parse_thresholds("4h, 72h,24h").unwrap(),
        vec![h(72), h(24), h(4)]
    );
    assert_eq!(
        nsauth_agent::watch::parse_thresholds("30d,14d,3d").unwrap(),
        vec![h(720), h(336), h(72)]
    );
    assert_eq!(
        nsauth_agent::watch::parse_thresholds("90m,600").unwrap(),
        vec![Duration::from_secs(5400), Duration::from_secs(600)]
    );
    assert!(nsauth_agent::watch::parse_thresholds("none")
        .unwrap()
        .is_empty());
    for bad in [
        "",
        "h",
        "0h",
        "-4h",
        "4x",
        "4h,,2h",
        "24h,1d",
        "400d",
        "4h\u{1b}[2J",
        "99999999999999999999d",
    ] {
        let e = nsauth_agent::watch::parse_thresholds(bad).unwrap_err();
        assert!(!e.contains('\u{1b}') && !e.contains('\n'), "{bad:?}: {e}");
    }
}

async fn until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON events a notify command appended to `path`, one per line.
fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

fn names(events: &[serde_json::Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

fn public_profile(emu: &nsauth_emulator::Emulator) -> Profile {
    let mut p = Profile::new(AccountId::parse(emu.account_id()).unwrap(), CLIENT);
    p.redirect_uri = Some(REDIRECT.parse().unwrap());
    p.endpoints.base_url = Some(emu.base_url().parse().unwrap());
    p
}

#[tokio::test]
async fn a_notify_command_gets_one_reapproval_whose_handoff_link_works_then_one_recovered() {
    use nsauth_core::broker::{Broker, BrokerConfig};
    use nsauth_core::http::Http;
    use nsauth_core::login;

    let emu = nsauth_emulator::Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emu.add_user(USER, PASSWORD);
    emu.add_client(nsauth_emulator::ClientSpec::public(CLIENT, REDIRECT));
    // The first login's refresh tokens end after 2 seconds.
    emu.set_refresh_validity(2);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let env = dir.path().join("env.txt");
    let script = dir.path().join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {}\n{{ cat; echo; }} >> {}\n",
            shell_quote(&env),
            shell_quote(&events)
        ),
    )
    .unwrap();
    std::env::set_var("NSAUTH_STORE_KEY", "store-key-that-must-not-leak");
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    store
        .put(
            &name(),
            &Record::new(public_profile(&emu)),
            Precondition::Create,
        )
        .await
        .unwrap();
    let http = Http::new().unwrap();
    let log_in = |url: String| {
        let (store, http) = (store.clone(), http.clone());
        async move {
            let landed = nsauth_emulator::browser_login(&url, USER, PASSWORD, true)
                .await
                .expect("the link opens NetSuite's login page and lands on the redirect");
            login::finish(store.as_ref(), &http, &name(), &landed).await
        }
    };
    let (first, _) = login::start(store.as_ref(), &name(), None, time::Duration::hours(1))
        .await
        .unwrap();
    log_in(first.to_string()).await.unwrap();
    let watcher = Watcher::new(WatchConfig {
        notify_command: Some(format!("sh {}", shell_quote(&script))),
        ..WatchConfig::default()
    });
    let load = || async { store.load(&name()).await.unwrap().unwrap().record };
    let now = OffsetDateTime::now_utc;
    watcher
        .check(store.as_ref(), &name(), &load().await, None, now())
        .await;
    until(Duration::from_secs(10), "the first event", || {
        (lines(&events).len() == 1).then_some(())
    })
    .await;
    assert_eq!(names(&lines(&events)), ["refresh_token_expiring"]);

    // The agent's refresh is refused once the refresh token has ended.
    let broker = Broker::new(store.clone(), http.clone(), BrokerConfig::default());
    let refused = {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            match broker.force_refresh(&name()).await {
                Err(e @ Error::LoginNeeded(_)) => break e,
                other => assert!(Instant::now() < end, "still refreshing: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    for _ in 0..3 {
        // The refresher tries again and again: still one re-approval.
        watcher
            .check(
                store.as_ref(),
                &name(),
                &load().await,
                Some(&refused),
                now(),
            )
            .await;
    }
    until(Duration::from_secs(10), "the re-approval event", || {
        (lines(&events).len() == 3).then_some(())
    })
    .await;
    let got = lines(&events);
    assert_eq!(
        names(&got),
        [
            "refresh_token_expiring",
            "refresh_token_expired",
            "reapproval_needed"
        ]
    );
    let reapproval = &got[2];
    assert_eq!(reapproval["schema"], 1);
    assert_eq!(reapproval["profile"], "prod");
    assert_eq!(reapproval["account_id"], emu.account_id());
    let link = reapproval["handoff_url"]
        .as_str()
        .expect("a handoff link")
        .to_owned();
    assert!(reapproval["text"]
        .as_str()
        .unwrap()
        .contains("approve access"));
    // No secret in any event: not the PKCE verifier of the stored login, nor a token.
    let raw = std::fs::read_to_string(&events).unwrap();
    let rec = load().await;
    let verifier = rec
        .pending
        .last()
        .expect("a stored pending login")
        .verifier
        .clone();
    assert!(!raw.contains(verifier.secret()));
    let tokens = rec.tokens.clone().unwrap();
    assert!(!raw.contains(tokens.access_token.secret()));
    assert!(!raw.contains(tokens.refresh_token.as_ref().unwrap().secret()));
    // The command ran without nsauth's secrets in its environment.
    let seen = std::fs::read_to_string(&env).unwrap();
    assert!(!seen.contains("store-key-that-must-not-leak"), "{seen}");
    assert!(seen.contains("NSAUTH_EVENT=reapproval_needed"), "{seen}");

    // The NetSuite user opens the link; the login is finished through core.
    emu.set_refresh_validity(7 * 86_400);
    let fresh = log_in(link).await.expect("the handoff login finishes");
    let stored = load().await.tokens.expect("tokens stored");
    assert_eq!(stored.access_token, fresh.access_token);
    assert!(stored.refresh_usable(now()));
    // The next refresh works: exactly one "recovered".
    broker.force_refresh(&name()).await.unwrap();
    for _ in 0..3 {
        watcher
            .check(store.as_ref(), &name(), &load().await, None, now())
            .await;
    }
    until(Duration::from_secs(10), "the recovered event", || {
        (lines(&events).len() == 4).then_some(())
    })
    .await;
    assert_eq!(names(&lines(&events))[3], "recovered");
    assert!(watcher
        .evaluate(store.as_ref(), &name(), &load().await, None, now())
        .await
        .is_empty());
    assert_eq!(watcher.stats().failed, 0);
}

/// What the recording listener does with request number `n` (from 0): answer with a status
/// and extra header lines, or never answer.
type Behaviour = Arc<dyn Fn(usize) -> Option<(u16, String)> + Send + Sync>;

/// A loopback HTTP/1.1 listener recording each request's path and body.
async fn listener(
    behaviour: Behaviour,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let (tx, behaviour, count) = (tx.clone(), behaviour.clone(), count.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let _ = tx.send((path, buf[head_end..head_end + len].to_vec()));
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match behaviour(n) {
                    Some((status, extra)) => {
                        let resp = format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok");
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    (base, rx)
}

fn short_limits() -> Limits {
    Limits {
        command_timeout: Duration::from_secs(1),
        webhook_timeout: Duration::from_millis(500),
        webhook_attempts: 3,
        webhook_backoff: Duration::from_millis(20),
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_webhook_gets_slack_compatible_json_and_retries_a_failing_answer() {
    // Two 503s, then 200.
    let (base, mut rx) = listener(Arc::new(|n| {
        Some((if n < 2 { 503 } else { 200 }, String::new()))
    }))
    .await;
    let url = format!("{base}/services/T000/B000/webhook-secret-path");
    let record = confidential(hours(100.0), "a");
    let store = stored(&record).await;
    let w = Watcher::new(WatchConfig {
        notify_webhook: Some(url.parse().unwrap()),
        ..WatchConfig::default()
    })
    .with_limits(short_limits());
    w.check(&store, &name(), &record, None, hours(80.0)).await;
    for _ in 0..3 {
        let (path, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a POST")
            .unwrap();
        assert_eq!(path, "/services/T000/B000/webhook-secret-path");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["event"], "refresh_token_expiring");
        assert_eq!(v["threshold"], "24h");
        let text = v["text"].as_str().unwrap();
        assert!(
            text.contains("profile prod") && text.contains("nsauth login --profile prod"),
            "{text}"
        );
    }
    until(Duration::from_secs(10), "delivery", || {
        (w.stats().delivered == 1).then_some(())
    })
    .await;
    assert!(rx.try_recv().is_err(), "no POST after the 200");
}

#[tokio::test]
async fn a_webhook_redirect_is_not_followed() {
    let (other, mut elsewhere) = listener(Arc::new(|_| Some((200, String::new())))).await;
    let location = format!("Location: {other}/stolen\r\n");
    let (base, mut rx) = listener(Arc::new(move |_| Some((302, location.clone())))).await;
    let record = confidential(hours(100.0), "a");
    let store = stored(&record).await;
    let w = Watcher::new(WatchConfig {
        notify_webhook: Some(format!("{base}/hook").parse().unwrap()),
        ..WatchConfig::default()
    })
    .with_limits(short_limits());
    w.check(&store, &name(), &record, None, hours(80.0)).await;
    until(Duration::from_secs(10), "the failure", || {
        (w.stats().failed == 1).then_some(())
    })
    .await;
    assert!(rx.try_recv().is_ok(), "the webhook was called");
    assert!(rx.try_recv().is_err(), "a 302 is not retried");
    assert!(elsewhere.try_recv().is_err(), "the redirect was followed");
}

#[tokio::test]
async fn hostile_sinks_neither_block_checks_nor_stop_later_deliveries() {
    // A webhook that never answers, a command that hangs (with a child of its own), and
    // a command that fails: every event still reaches the command, checks return at once.
    let (base, _rx) = listener(Arc::new(|_| None)).await;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let pids = dir.path().join("pids");
    let hang = format!(
        "{{ cat; echo; }} >> {}; sleep 600 & echo $! >> {}; wait",
        shell_quote(&events),
        shell_quote(&pids)
    );
    let record = confidential(hours(100.0), "a");
    let store = stored(&record).await;
    let w = Watcher::new(WatchConfig {
        notify_command: Some(hang),
        notify_webhook: Some(format!("{base}/hook").parse().unwrap()),
        ..WatchConfig::default()
    })
    .with_limits(short_limits());
    for at in [30.0, 80.0, 97.0] {
        let started = Instant::now();
        w.check(&store, &name(), &record, None, hours(at)).await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "a check waited for delivery"
        );
    }
    until(
        Duration::from_secs(30),
        "three events through the hanging command",
        || (lines(&events).len() == 3).then_some(()),
    )
    .await;
    // 3 commands killed + 3 webhooks given up.
    until(Duration::from_secs(30), "six failures", || {
        (w.stats().failed == 6).then_some(())
    })
    .await;
    let alive: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
        })
        .map(str::to_owned)
        .collect();
    assert!(
        alive.is_empty(),
        "the command's children outlived the kill: {alive:?}"
    );

    let failing = dir.path().join("failing.jsonl");
    let w = Watcher::new(WatchConfig {
        notify_command: Some(format!("cat >> {}; echo; exit 1", shell_quote(&failing))),
        ..WatchConfig::default()
    })
    .with_limits(short_limits());
    w.check(&store, &name(), &record, None, hours(30.0)).await;
    w.check(&store, &name(), &record, None, hours(80.0)).await;
    until(Duration::from_secs(10), "two failed runs", || {
        (w.stats().failed == 2).then_some(())
    })
    .await;
    assert_eq!(w.stats().delivered, 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.jsonl");
    let record = confidential(hours(100.0), "a");
    let store = MemoryStore::new();
    let w = Watcher::new(WatchConfig {
        notify_command: Some(format!(
            "{{ cat; echo; }} >> {}; sleep 600",
            shell_quote(&seen)
        )),
        ..WatchConfig::default()
    })
    .with_limits(Limits {
        queue: 2,
        ..short_limits()
    });
    let started = Instant::now();
    for i in 0..10 {
        let who = ProfileName::parse(&format!("p{i}")).unwrap();
        w.check(&store, &who, &record, None, hours(30.0)).await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "checks waited for the queue"
    );
    let dropped = w.stats().dropped;
    assert!((7..=8).contains(&dropped), "dropped {dropped}");
    // What was queued is still delivered (each run killed after its timeout).
    let kept = 10 - dropped as usize;
    until(Duration::from_secs(30), "the queued events", || {
        (lines(&seen).len() == kept).then_some(())
    })
    .await;
    until(Duration::from_secs(10), "their failures", || {
        (w.stats().failed == kept as u64).then_some(())
    })
    .await;
}
