//! The token, revoke and REST endpoints with the authorization code and refresh grants.

mod common;

use common::*;

#[tokio::test]
async fn code_exchange_answers_like_netsuite() {
    let emu = emulator().await;
    let body = login(&emu, PUBLIC).await;
    assert_eq!(body["expires_in"], "3600", "expires_in is a string: {body}");
    assert_eq!(body["token_type"], "bearer");
    let (at, rt) = (
        body["access_token"].as_str().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    );
    let c = claims(at);
    for k in ["exp", "iat", "sub", "aud", "scope", "jti"] {
        assert!(c.get(k).is_some(), "access token lacks {k}: {c}");
    }
    let r = claims(rt);
    assert_eq!(r["oit"], r["iat"]);
    assert!(
        r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap() <= 3 * 3600,
        "public refresh token: at most 3 h"
    );
    assert_eq!(api_status(&emu, Some(at)).await, 200);
    let conf = login(&emu, CONF).await;
    let r = claims(conf["refresh_token"].as_str().unwrap());
    assert_eq!(
        r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap(),
        7 * 24 * 3600
    );
    assert_eq!(emu.counters().authorization_code, 2);
}

fn public_code_form<'a>(code: &'a str, verifier: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", PUBLIC),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn code_is_single_use_bound_to_verifier_and_redirect() {
    let emu = emulator().await;
    let (code, verifier) = code_for(&emu, PUBLIC).await;
    let (wrong, _) = pkce();
    let (s, _, b) = token_request(&emu, None, &public_code_form(&code, &wrong)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "wrong verifier"
    );
    // The failed attempt used the code up.
    let (s, _, b) = token_request(&emu, None, &public_code_form(&code, &verifier)).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (code, verifier) = code_for(&emu, PUBLIC).await;
    let mut f = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", PUBLIC),
        ("code_verifier", verifier.as_str()),
    ];
    f.push(("redirect_uri", "https://app.example.com/other"));
    let (s, _, b) = token_request(&emu, None, &f).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "redirect_uri must match"
    );

    let (code, verifier) = code_for(&emu, PUBLIC).await;
    let f = public_code_form(&code, &verifier);
    let (s, _, first) = token_request(&emu, None, &f).await;
    assert_eq!(s, 200);
    let (s, _, b) = token_request(&emu, None, &f).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "code reused"
    );
    assert_eq!(
        api_status(&emu, first["access_token"].as_str()).await,
        401,
        "reuse revokes what the code gave"
    );
    let (s, _) = refresh(&emu, PUBLIC, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    let c = emu.counters();
    assert_eq!(
        (c.authorization_code, c.token_errors, c.token_requests),
        (1, 5, 6)
    );
}

#[tokio::test]
async fn confidential_clients_must_use_basic() {
    let emu = emulator().await;
    let (code, verifier) = code_for(&emu, CONF).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let mut in_body = form.to_vec();
    in_body.extend([("client_id", CONF), ("client_secret", SECRET)]);
    let (s, h, b) = token_request(&emu, None, &in_body).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (401, Some("invalid_client")),
        "secret in the body refused"
    );
    assert_eq!(
        h["www-authenticate"],
        format!("Basic realm=\"{}\"", emu.account_id())
    );
    let mut id_only = form.to_vec();
    id_only.push(("client_id", CONF));
    assert_eq!(
        token_request(&emu, None, &id_only).await.0,
        401,
        "no secret at all"
    );
    assert_eq!(
        token_request(&emu, Some((CONF, "wrong")), &form).await.0,
        401,
        "wrong secret"
    );
    assert_eq!(
        token_request(&emu, Some((PUBLIC, "x")), &form).await.0,
        401,
        "a public client has no secret"
    );
    let (s, _, b) = token_request(&emu, Some((CONF, SECRET)), &form).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn only_form_bodies_of_bounded_size() {
    let emu = emulator().await;
    let resp = http()
        .post(emu.token_url())
        .json(&serde_json::json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let big = format!(
        "grant_type=refresh_token&refresh_token={}",
        "A".repeat(100 * 1024)
    );
    let resp = http()
        .post(emu.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let (s, _, b) = token_request(
        &emu,
        None,
        &[("grant_type", "password"), ("client_id", PUBLIC)],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, _, b) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_request")),
        "repeated parameter"
    );
    assert_eq!(emu.counters().token_requests, 4);
}

#[tokio::test]
async fn public_refresh_rotates_and_is_single_use() {
    let emu = emulator().await;
    let first = login(&emu, PUBLIC).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (s, second) = refresh(&emu, PUBLIC, rt1).await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(second["expires_in"], "3600");
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2, "a public client gets a new refresh token");
    assert_eq!(
        claims(rt2)["oit"],
        claims(rt1)["oit"],
        "oit is the chain's first issue time"
    );
    let (s, b) = refresh(&emu, PUBLIC, rt1).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "the old one died at once"
    );
    let (s, third) = refresh(&emu, PUBLIC, rt2).await;
    assert_eq!(s, 200, "{third}");
    assert_eq!(
        refresh(&emu, CONF, third["refresh_token"].as_str().unwrap())
            .await
            .0,
        400,
        "another client's token"
    );
    assert_eq!(emu.counters().refresh_token, 2);
}

#[tokio::test]
async fn confidential_refresh_token_is_reused() {
    let emu = emulator().await;
    let first = login(&emu, CONF).await;
    let rt = first["refresh_token"].as_str().unwrap();
    for _ in 0..3 {
        let (s, b) = refresh(&emu, CONF, rt).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["refresh_token"], rt, "the same refresh token comes back");
        assert_ne!(b["access_token"], first["access_token"]);
    }
    let (s, b) = refresh(&emu, CONF, "not.a.token").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn refresh_validity_and_revoke_all() {
    let emu = emulator().await;
    emu.set_refresh_validity(0);
    let b = login(&emu, CONF).await;
    let (s, e) = refresh(&emu, CONF, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "expired refresh token"
    );
    emu.set_refresh_validity(3600);
    let b = login(&emu, PUBLIC).await;
    emu.revoke_all();
    let (s, e) = refresh(&emu, PUBLIC, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(api_status(&emu, b["access_token"].as_str()).await, 401);
}

#[tokio::test]
async fn revoke_kills_the_refresh_token_and_its_access_tokens() {
    let emu = emulator().await;
    for client in [PUBLIC, CONF] {
        let b = login(&emu, client).await;
        let (rt, at) = (
            b["refresh_token"].as_str().unwrap(),
            b["access_token"].as_str().unwrap(),
        );
        let mut req = http().post(format!(
            "{}/services/rest/auth/oauth2/v1/revoke",
            emu.base_url()
        ));
        req = if client == CONF {
            req.basic_auth(CONF, Some(SECRET)).form(&[("token", rt)])
        } else {
            req.form(&[("token", rt), ("client_id", PUBLIC)])
        };
        assert_eq!(req.send().await.unwrap().status(), 200);
        assert_eq!(
            refresh(&emu, client, rt).await.1["error"],
            "invalid_grant",
            "{client}"
        );
        assert_eq!(api_status(&emu, Some(at)).await, 401, "{client}");
    }
    let resp = http()
        .post(format!(
            "{}/services/rest/auth/oauth2/v1/revoke",
            emu.base_url()
        ))
        .form(&[("token", "unknown"), ("client_id", PUBLIC)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "unknown tokens: 200 (RFC 7009)");
    let resp = http()
        .post(format!(
            "{}/services/rest/auth/oauth2/v1/revoke",
            emu.base_url()
        ))
        .form(&[("token", "x"), ("client_id", CONF)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a confidential client must authenticate"
    );
    assert_eq!(emu.counters().revoke, 3);
}

#[tokio::test]
async fn rest_api_needs_a_valid_unexpired_bearer() {
    let emu = emulator().await;
    assert_eq!(api_status(&emu, None).await, 401);
    assert_eq!(api_status(&emu, Some("garbage")).await, 401);
    emu.set_access_ttl(0);
    let b = login(&emu, PUBLIC).await;
    assert_eq!(b["expires_in"], "0");
    assert_eq!(
        api_status(&emu, b["access_token"].as_str()).await,
        401,
        "expired"
    );
    assert_eq!(
        api_status(&emu, b["refresh_token"].as_str()).await,
        401,
        "a refresh token is no bearer"
    );
    emu.set_access_ttl(3600);
    let b = login(&emu, PUBLIC).await;
    let at = b["access_token"].as_str().unwrap();
    let resp = http()
        .get(format!(
            "{}/services/rest/record/v1/metadata-catalog",
            emu.base_url()
        ))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<serde_json::Value>().await.unwrap()["items"]
        .as_array()
        .is_some_and(|i| !i.is_empty()));
    let q = http()
        .post(format!("{}/services/rest/query/v1/suiteql", emu.base_url()))
        .bearer_auth(at);
    let resp = q
        .json(&serde_json::json!({"q": "SELECT id FROM employee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "SuiteQL needs Prefer: transient");
    let resp = http()
        .post(format!("{}/services/rest/query/v1/suiteql", emu.base_url()))
        .bearer_auth(at)
        .header("Prefer", "transient")
        .json(&serde_json::json!({"q": "SELECT id FROM employee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["items"][0]["q"],
        "SELECT id FROM employee"
    );
    assert_eq!(emu.counters().api_calls, 7);
}

#[tokio::test]
async fn openid_configuration_and_demo_fixtures() {
    let emu = emulator().await;
    let fx = emu.install_demo_fixtures();
    assert!(
        !format!("{fx:?}").contains(&fx.client_secret),
        "Debug hides the secret"
    );
    let shown = format!("{emu:?}");
    assert!(
        !shown.contains(&fx.client_secret) && !shown.contains(SECRET) && !shown.contains(PASSWORD),
        "{shown}"
    );
    let conf: serde_json::Value = http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conf["token_endpoint"], emu.token_url());
    assert_eq!(
        conf["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let (verifier, challenge) = pkce();
    let mut u =
        url::Url::parse(&format!("{}/app/login/oauth2/authorize.nl", emu.base_url())).unwrap();
    u.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", fx.confidential_client_id.as_str()),
        ("redirect_uri", fx.redirect_uri.as_str()),
        ("scope", "rest_webservices"),
        ("state", STATE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let landed = nsauth_emulator::browser_login(u.as_str(), &fx.email, &fx.password, true)
        .await
        .unwrap();
    let code = param(&landed, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", fx.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (s, _, b) = token_request(
        &emu,
        Some((&fx.confidential_client_id, &fx.client_secret)),
        &form,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    emu.shutdown().await;
}
