//! The authorization endpoint, login and consent, as a user and a client would notice them.

mod common;

use common::*;
use nsauth_emulator::{browser_login, Browser, ClientSpec, ConsentPolicy};

#[tokio::test]
async fn wrong_redirect_uri_or_client_is_an_error_page_never_a_redirect() {
    let emu = emulator().await;
    let (_, challenge) = pkce();
    for extra in [
        vec![("redirect_uri", "https://evil.example.com/callback")],
        vec![("redirect_uri", "https://app.example.com/callback/")],
        vec![("redirect_uri", "")],
        vec![("client_id", "unknown-client")],
        vec![("client_id", "")],
    ] {
        let resp = http()
            .get(authorize_url(&emu, PUBLIC, &challenge, &extra))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{extra:?}");
        assert!(
            resp.headers().get("location").is_none(),
            "{extra:?}: must not redirect"
        );
        assert!(resp.headers().contains_key("date"));
        assert!(resp.text().await.unwrap().contains("id=\"error\""));
    }
}

#[tokio::test]
async fn http_redirect_only_to_loopback_and_only_when_allowed() {
    let emu = emulator().await;
    let (_, challenge) = pkce();
    for (uri, allow, ok) in [
        ("http://127.0.0.1:9000/cb", false, false),
        ("http://127.0.0.1:9000/cb", true, true),
        ("http://localhost:9000/cb", true, true),
        ("http://[::1]:9000/cb", true, true),
        ("http://app.example.com/cb", true, false),
        ("com.example.app:/oauth", false, true),
    ] {
        let mut spec = ClientSpec::public("c", uri);
        spec.allow_loopback_http = allow;
        emu.add_client(spec);
        let resp = http()
            .get(authorize_url(
                &emu,
                "c",
                &challenge,
                &[("redirect_uri", uri)],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status() == 200,
            ok,
            "{uri} allow={allow}: {}",
            resp.status()
        );
    }
}

async fn error_of(
    emu: &nsauth_emulator::Emulator,
    extra: &[(&str, &str)],
) -> (Option<String>, Option<String>) {
    let (_, challenge) = pkce();
    let resp = http()
        .get(authorize_url(emu, PUBLIC, &challenge, extra))
        .send()
        .await
        .unwrap();
    match resp.headers().get("location") {
        Some(l) => {
            let l = l.to_str().unwrap().to_owned();
            assert!(l.starts_with(REDIRECT), "{l}");
            (param(&l, "error"), param(&l, "state"))
        }
        None => (None, None),
    }
}

#[tokio::test]
async fn state_pkce_scope_and_prompt_are_checked_and_errors_redirected() {
    let emu = emulator().await;
    let s21 = "a".repeat(21);
    let s22 = "b".repeat(22);
    assert_eq!(
        error_of(&emu, &[("state", &s21)]).await.0.as_deref(),
        Some("invalid_request"),
        "21 characters refused"
    );
    assert_eq!(
        error_of(&emu, &[("state", &s22)]).await,
        (None, None),
        "22 characters accepted: the login page shows"
    );
    assert_eq!(
        error_of(&emu, &[("state", &"c".repeat(1025))])
            .await
            .0
            .as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        error_of(&emu, &[("state", "")]).await.0.as_deref(),
        Some("invalid_request")
    );
    for (extra, want) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "")], "invalid_scope"),
        (
            vec![("scope", "restlets,rest_webservices")],
            "invalid_scope",
        ),
        (vec![("scope", "mcp restlets")], "invalid_scope"),
        (vec![("scope", "openid")], "invalid_scope"),
        (vec![("prompt", "select_account")], "invalid_request"),
    ] {
        let (err, state) = error_of(&emu, &extra).await;
        assert_eq!(err.as_deref(), Some(want), "{extra:?}");
        assert_eq!(
            state.as_deref(),
            Some(STATE),
            "{extra:?}: state is sent back"
        );
    }
}

#[tokio::test]
async fn never_ask_still_shows_the_login_form_and_the_redirect_has_netsuite_params() {
    let emu = emulator().await;
    let (_, challenge) = pkce();
    let page = http()
        .get(authorize_url(&emu, PUBLIC, &challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form id=\"login\"") && html.contains("name=\"password\""),
        "{html}"
    );
    let landed = browser_login(
        &authorize_url(&emu, PUBLIC, &challenge, &[]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    assert!(landed.starts_with(REDIRECT), "{landed}");
    assert!(param(&landed, "code").is_some());
    assert_eq!(param(&landed, "role").as_deref(), Some("3"));
    assert!(param(&landed, "entity").is_some());
    assert_eq!(param(&landed, "company").as_deref(), Some(emu.account_id()));
    let c = emu.counters();
    assert_eq!((c.logins, c.consents_shown), (1, 0));
    assert!(browser_login(
        &authorize_url(&emu, PUBLIC, &challenge, &[]),
        USER,
        "wrong",
        true
    )
    .await
    .is_err());
    assert!(browser_login(
        &authorize_url(&emu, PUBLIC, &challenge, &[]),
        "nobody@example.com",
        PASSWORD,
        true
    )
    .await
    .is_err());
    assert_eq!(emu.counters().logins, 1);
}

#[tokio::test]
async fn always_ask_shows_consent_even_with_prompt_none_and_deny_is_access_denied() {
    let emu = emulator().await;
    let mut spec = ClientSpec::public("always", REDIRECT);
    spec.consent = ConsentPolicy::AlwaysAsk;
    emu.add_client(spec);
    let (_, challenge) = pkce();
    let url = authorize_url(&emu, "always", &challenge, &[("prompt", "none")]);
    let landed = browser_login(&url, USER, PASSWORD, true).await.unwrap();
    assert!(param(&landed, "code").is_some(), "{landed}");
    assert_eq!(emu.counters().consents_shown, 1);
    let landed = browser_login(&url, USER, PASSWORD, false).await.unwrap();
    assert_eq!(param(&landed, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&landed, "state").as_deref(), Some(STATE));
    assert_eq!(emu.counters().consents_shown, 2);
}

#[tokio::test]
async fn ask_first_time_and_prompt_consent() {
    let emu = emulator().await;
    let mut spec = ClientSpec::public("first", REDIRECT);
    spec.consent = ConsentPolicy::AskFirstTime;
    emu.add_client(spec);
    let (_, challenge) = pkce();
    browser_login(
        &authorize_url(&emu, "first", &challenge, &[]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    browser_login(
        &authorize_url(&emu, "first", &challenge, &[]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        emu.counters().consents_shown,
        1,
        "asked the first time only"
    );
    browser_login(
        &authorize_url(&emu, "first", &challenge, &[("scope", "restlets")]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        emu.counters().consents_shown,
        2,
        "other scopes: asked again"
    );
    browser_login(
        &authorize_url(&emu, "first", &challenge, &[("prompt", "consent")]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    assert_eq!(emu.counters().consents_shown, 3, "prompt=consent forces it");
    // Never Ask shows consent only for prompt=consent.
    browser_login(
        &authorize_url(&emu, PUBLIC, &challenge, &[("prompt", "login consent")]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    assert_eq!(emu.counters().consents_shown, 4);
}

#[tokio::test]
async fn prompt_none_needs_a_logged_in_browser() {
    let emu = emulator().await;
    let (_, challenge) = pkce();
    let none = authorize_url(&emu, PUBLIC, &challenge, &[("prompt", "none")]);
    let landed = browser_login(&none, USER, PASSWORD, true).await.unwrap();
    assert_eq!(param(&landed, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&landed, "state").as_deref(), Some(STATE));

    let mut browser = Browser::new();
    browser
        .login(
            &authorize_url(&emu, PUBLIC, &challenge, &[]),
            USER,
            PASSWORD,
            true,
        )
        .await
        .unwrap();
    let landed = browser.login(&none, USER, PASSWORD, true).await.unwrap();
    assert!(
        param(&landed, "code").is_some(),
        "logged in, Never Ask: silent {landed}"
    );
    assert_eq!(emu.counters().logins, 1);
    // prompt=login asks again even when logged in.
    browser
        .login(
            &authorize_url(&emu, PUBLIC, &challenge, &[("prompt", "login")]),
            USER,
            PASSWORD,
            true,
        )
        .await
        .unwrap();
    assert_eq!(emu.counters().logins, 2);

    let mut spec = ClientSpec::public("first", REDIRECT);
    spec.consent = ConsentPolicy::AskFirstTime;
    emu.add_client(spec);
    let landed = browser
        .login(
            &authorize_url(&emu, "first", &challenge, &[("prompt", "none")]),
            USER,
            PASSWORD,
            true,
        )
        .await
        .unwrap();
    assert_eq!(param(&landed, "error").as_deref(), Some("consent_required"));
}
