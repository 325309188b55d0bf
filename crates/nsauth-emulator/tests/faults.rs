//! Injected faults: each takes one token request, in order, then the emulator answers normally.

mod common;

use common::*;
use nsauth_emulator::Fault;
use std::time::{Duration, Instant};

async fn raw_refresh(emu: &nsauth_emulator::Emulator, rt: &str) -> reqwest::Response {
    http()
        .post(emu.token_url())
        .basic_auth(CONF, Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn faults_apply_in_order_one_request_each() {
    let emu = emulator().await;
    let rt = login(&emu, CONF).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = emu.counters();
    emu.inject(Fault::Status {
        status: 503,
        retry_after: None,
    });
    emu.inject(Fault::Status {
        status: 429,
        retry_after: Some(7),
    });
    emu.inject(Fault::GarbageJson);
    emu.inject(Fault::HtmlPage);
    emu.inject(Fault::MissingAccessToken);
    emu.inject(Fault::Oversized);

    let r = raw_refresh(&emu, &rt).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    let r = raw_refresh(&emu, &rt).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");

    let r = raw_refresh(&emu, &rt).await;
    assert_eq!(r.status(), 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap()).is_err(),
        "garbage JSON"
    );

    let r = raw_refresh(&emu, &rt).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    let r: serde_json::Value = raw_refresh(&emu, &rt).await.json().await.unwrap();
    assert!(
        r.get("access_token").is_none() && r["token_type"] == "bearer",
        "{r}"
    );

    let r = raw_refresh(&emu, &rt).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().len() >= 20 * 1024 * 1024);

    // The queue is empty: a normal answer, and the refresh token was never touched.
    let r: serde_json::Value = raw_refresh(&emu, &rt).await.json().await.unwrap();
    assert_eq!(r["refresh_token"], rt.as_str());
    let after = emu.counters();
    assert_eq!(
        after.token_requests - before.token_requests,
        7,
        "faulted requests count as token requests"
    );
    assert_eq!(
        after.refresh_token - before.refresh_token,
        1,
        "only the real answer counts as a refresh"
    );
    assert_eq!(
        after.token_errors, before.token_errors,
        "faults are not token errors"
    );
}

#[tokio::test]
async fn delay_then_a_normal_answer() {
    let emu = emulator().await;
    let rt = login(&emu, CONF).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.inject(Fault::Delay(Duration::from_millis(300)));
    let start = Instant::now();
    let r = raw_refresh(&emu, &rt).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status(), 200);
    assert_eq!(emu.counters().refresh_token, 1);
}

#[tokio::test]
async fn faults_do_not_touch_other_endpoints() {
    let emu = emulator().await;
    let b = login(&emu, PUBLIC).await;
    emu.inject(Fault::Status {
        status: 500,
        retry_after: None,
    });
    assert_eq!(api_status(&emu, b["access_token"].as_str()).await, 200);
    let (s, _) = refresh(&emu, PUBLIC, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 500, "the fault waited for the token endpoint");
    let (s, _) = refresh(&emu, PUBLIC, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        s, 200,
        "the faulted request did not use the refresh token up"
    );
}
