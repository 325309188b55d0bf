//! Test set-up shared by the library's tests and the example's: an emulator, and a store
//! holding a profile logged in against it.
#![allow(dead_code)]

use nsauth_core::account::AccountId;
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{Precondition, Record};
use nsauth_core::TokenStore;
use nsauth_emulator::{ClientSpec, Emulator};
use std::path::{Path, PathBuf};

/// The redirect URI of the emulator's public client.
pub const REDIRECT: &str = "https://127.0.0.1:53682/callback";
/// The public client's ID.
pub const CLIENT: &str = "svc-client";
/// The user who logs in.
pub const USER: (&str, &str) = ("svc@example.com", "svc-password");

/// An emulator on a free local port with [`CLIENT`] and [`USER`].
pub async fn emulator() -> Emulator {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emu.add_user(USER.0, USER.1);
    emu.add_client(ClientSpec::public(CLIENT, REDIRECT));
    emu
}

/// A sqlite store in `dir` (key file beside it): its URI and key file.
pub fn sqlite_in(dir: &Path) -> (String, PathBuf) {
    let key = dir.join("store.key");
    (
        format!(
            "sqlite://{}/nsauth.db?key-file={}",
            dir.display(),
            key.display()
        ),
        key,
    )
}

/// Creates profile `name` for [`CLIENT`] of `emu` in `store`, and logs [`USER`] in.
pub async fn log_in(emu: &Emulator, store: &dyn TokenStore, name: &str) {
    log_in_with_scope(emu, store, name, "rest_webservices").await
}

/// [`log_in`] granting `scope` only.
pub async fn log_in_with_scope(emu: &Emulator, store: &dyn TokenStore, name: &str, scope: &str) {
    let name = ProfileName::parse(name).unwrap();
    let profile = Profile {
        account_id: AccountId::parse(emu.account_id()).unwrap(),
        client_id: CLIENT.into(),
        client_secret: None,
        redirect_uri: Some(REDIRECT.parse().unwrap()),
        scopes: vec![scope.into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides {
            base_url: Some(emu.base_url().parse().unwrap()),
            ..Default::default()
        },
        refresh_token_validity_hours: None,
    };
    store
        .put(&name, &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    let (url, _) = nsauth_core::login::start(store, &name, None, time::Duration::minutes(5))
        .await
        .unwrap();
    let landed = nsauth_emulator::browser_login(url.as_str(), USER.0, USER.1, true)
        .await
        .unwrap();
    nsauth_core::login::finish(store, &Http::new().unwrap(), &name, &landed)
        .await
        .unwrap();
}
