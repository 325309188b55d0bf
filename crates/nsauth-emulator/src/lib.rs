//! A NetSuite OAuth 2.0 server emulator, as strict as NetSuite, so that client code that passes
//! against it passes against NetSuite.
//!
//! It serves, under [`Emulator::base_url`], NetSuite's paths: the authorization endpoint with a
//! login form and a consent form, the token endpoint (authorization code with PKCE S256, refresh
//! token, client credentials with a signed JWT assertion), the revocation endpoint, a sliver of
//! the REST API to prove a token works, and the OpenID configuration document. It enforces what
//! NetSuite enforces: exact redirect URIs, `state` of 22 to 1024 characters, PKCE S256 only,
//! HTTP Basic for confidential clients, `expires_in` as a string, single-use rotating refresh
//! tokens for public clients, PS/ES assertion algorithms only, and more.
//!
//! It is used in-process by end-to-end tests, by `nsauth emulator` and by `nsauth demo`. It does
//! not depend on `nsauth-core`, so that a misunderstanding in one is not mirrored in the other.
//!
//! ```no_run
//! use nsauth_emulator::{browser_login, ClientSpec, Emulator, Fault};
//!
//! # async fn example() -> std::io::Result<()> {
//! let emu = Emulator::start("127.0.0.1:0".parse().unwrap()).await?;
//! emu.add_user("me@example.com", "secret password");
//! emu.add_client(ClientSpec::public("my-client", "https://127.0.0.1:53682/callback"));
//! emu.inject(Fault::Status { status: 503, retry_after: Some(1) });
//!
//! // The client under test builds an authorization URL for `emu.base_url()` ...
//! let authorize_url = format!("{}/app/login/oauth2/authorize.nl?...", emu.base_url());
//! // ... and a scripted person logs in; `landed` carries `code` and `state`.
//! let landed = browser_login(&authorize_url, "me@example.com", "secret password", true).await;
//! println!("{landed:?}; {:?}", emu.counters());
//! emu.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod api;
mod assertion;
mod authorize;
mod browser;
mod config;
mod jwt;
mod pages;
mod record;
mod respond;
mod server;
mod state;
mod token;

pub use assertion::ALGORITHMS;
pub use browser::{browser_login, Browser};
pub use config::{
    CertificateMapping, CertificateRefused, ClientSpec, ConsentPolicy, Counters, DemoFixtures,
    Fault, DEFAULT_SCOPES, MAX_ACTIVE_CERTIFICATES,
};
pub use record::{Invalidated, IssuedBy, IssuedToken, TokenKind};
pub use server::{Emulator, AUTHORIZE_PATH, DEFAULT_ACCOUNT_ID, REVOKE_PATH, TOKEN_PATH};
pub use token::JWT_BEARER;
