//! Logging a public-client profile in against the NetSuite emulator, for tests that need a
//! store holding real tokens.

use nsauth_core::account::AccountId;
use nsauth_core::http::Http;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile, ProfileName};
use nsauth_core::store::{Precondition, Record};
use nsauth_core::TokenStore;
use nsauth_emulator::Emulator;

/// The redirect URI of the emulator's public clients.
pub const REDIRECT: &str = "https://127.0.0.1:53682/callback";

/// A NetSuite emulator on a free local port.
pub async fn emulator() -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Creates profile `name` for the public `client` of `emu` in `store`, then logs it in as
/// `user` with `password` (both already known to `emu`), finishing the login over `http`.
pub async fn log_in(
    emu: &Emulator,
    store: &dyn TokenStore,
    name: &ProfileName,
    client: &str,
    (user, password): (&str, &str),
    http: &Http,
) {
    let profile = Profile {
        account_id: AccountId::parse(emu.account_id()).unwrap(),
        client_id: client.into(),
        client_secret: None,
        redirect_uri: Some(REDIRECT.parse().unwrap()),
        scopes: vec!["rest_webservices".into()],
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
        .put(name, &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    let (url, _) = nsauth_core::login::start(store, name, None, time::Duration::minutes(5))
        .await
        .unwrap();
    let landed = nsauth_emulator::browser_login(url.as_str(), user, password, true)
        .await
        .unwrap();
    nsauth_core::login::finish(store, http, name, &landed)
        .await
        .unwrap();
}
