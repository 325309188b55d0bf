//! Helpers shared by the emulator's integration tests: a started emulator with a user and
//! clients, PKCE, authorization URLs, and token requests the way a client sends them.
#![allow(dead_code, missing_docs)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use nsauth_emulator::{ClientSpec, Emulator};
use rand::RngCore as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const USER: &str = "user@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const PUBLIC: &str = "public-client";
pub const CONF: &str = "confidential-client";
pub const SECRET: &str = "s3cret-9f8e7d6c5b4a";
pub const REDIRECT: &str = "https://app.example.com/callback";
pub const STATE: &str = "state-0123456789abcdefghij";

pub async fn emulator() -> Emulator {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start");
    emu.add_user(USER, PASSWORD);
    emu.add_client(ClientSpec::public(PUBLIC, REDIRECT));
    emu.add_client(ClientSpec::confidential(CONF, SECRET, REDIRECT));
    emu
}

/// A client that does not follow redirects, like the tests' view of a browser.
pub fn http() -> reqwest::Client {
    // reqwest has no rustls provider of its own here (see nsauth_core::http::tls).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A random PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    let verifier = URL_SAFE_NO_PAD.encode(b);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization URL; `extra` overrides or adds parameters (an empty value removes one).
pub fn authorize_url(
    emu: &Emulator,
    client_id: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "rest_webservices restlets"),
        ("state", STATE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    let mut u =
        url::Url::parse(&format!("{}/app/login/oauth2/authorize.nl", emu.base_url())).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// POSTs a form to the token endpoint, with HTTP Basic when `basic` is given.
pub async fn token_request(
    emu: &Emulator,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http().post(emu.token_url()).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Logs the user in for `client_id` and returns the code and the verifier.
pub async fn code_for(emu: &Emulator, client_id: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let landed = nsauth_emulator::browser_login(
        &authorize_url(emu, client_id, &challenge, &[]),
        USER,
        PASSWORD,
        true,
    )
    .await
    .unwrap();
    assert_eq!(param(&landed, "state").as_deref(), Some(STATE), "{landed}");
    (
        param(&landed, "code").expect("code in the redirect"),
        verifier,
    )
}

/// A full login: returns the token response of the code exchange.
pub async fn login(emu: &Emulator, client_id: &str) -> Value {
    let (code, verifier) = code_for(emu, client_id).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    let (status, _, body) = if client_id == CONF {
        token_request(emu, Some((CONF, SECRET)), &form).await
    } else {
        let mut f = form.to_vec();
        f.push(("client_id", client_id));
        token_request(emu, None, &f).await
    };
    assert_eq!(status, 200, "{body}");
    body
}

/// A refresh as the client sends it.
pub async fn refresh(emu: &Emulator, client_id: &str, refresh_token: &str) -> (u16, Value) {
    let (status, _, body) = if client_id == CONF {
        token_request(
            emu,
            Some((CONF, SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    } else {
        token_request(
            emu,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ],
        )
        .await
    };
    (status, body)
}

/// Status of the metadata catalog with this bearer token (`None`: no Authorization header).
pub async fn api_status(emu: &Emulator, token: Option<&str>) -> u16 {
    let mut req = http().get(format!(
        "{}/services/rest/record/v1/metadata-catalog",
        emu.base_url()
    ));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
