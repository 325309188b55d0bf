//! The [`Emulator`] handle: starts the HTTP server and configures it while it runs.

use crate::config::{
    CertificateMapping, CertificateRefused, ClientSpec, Counters, DemoFixtures, Fault,
};
use crate::pages::{CONSENT_PATH, LOGIN_PATH};
use crate::record::IssuedToken;
use crate::respond::BODY_LIMIT;
use crate::state::{Shared, User};
use crate::{api, authorize, token};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use rand::RngCore as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The account ID of an emulator made by [`Emulator::start`].
pub const DEFAULT_ACCOUNT_ID: &str = "1234567_SB1";

/// Path of the authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/app/login/oauth2/authorize.nl";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/services/rest/auth/oauth2/v1/token";
/// Path of the revocation endpoint.
pub const REVOKE_PATH: &str = "/services/rest/auth/oauth2/v1/revoke";

#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A running emulator. Cheap to clone; every clone configures the same server.
#[derive(Debug, Clone)]
pub struct Emulator {
    inner: Arc<Running>,
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize::authorize))
        .route(LOGIN_PATH, post(authorize::login))
        .route(CONSENT_PATH, post(authorize::consent))
        .route(TOKEN_PATH, post(token::token))
        .route(REVOKE_PATH, post(token::revoke))
        .route(
            "/services/rest/record/v1/metadata-catalog",
            get(api::metadata_catalog),
        )
        .route("/services/rest/query/v1/suiteql", post(api::suiteql))
        .route(
            "/.well-known/openid-configuration",
            get(api::openid_configuration),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free port) and serves on the current Tokio runtime, with
    /// the account ID [`DEFAULT_ACCOUNT_ID`].
    pub async fn start(listen: SocketAddr) -> std::io::Result<Emulator> {
        Self::start_with_account(listen, DEFAULT_ACCOUNT_ID).await
    }

    /// [`Emulator::start`] with another account ID.
    pub async fn start_with_account(
        listen: SocketAddr,
        account_id: &str,
    ) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let shared = Arc::new(Shared::new(format!("http://{addr}"), account_id.to_owned()));
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the NetSuite emulator stopped");
            }
        });
        tracing::debug!(%addr, "NetSuite emulator listening");
        Ok(Emulator {
            inner: Arc::new(Running {
                shared,
                stop: Mutex::new(Some(tx)),
                task: Mutex::new(Some(task)),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash); every endpoint is under it.
    pub fn base_url(&self) -> String {
        self.shared().base_url.clone()
    }

    /// The account ID (the `company` parameter of the redirect, the realm of 401 answers).
    pub fn account_id(&self) -> &str {
        &self.shared().account_id
    }

    /// The token endpoint URL (also the `aud` client assertions must carry).
    pub fn token_url(&self) -> String {
        self.shared().token_url()
    }

    /// Adds an integration record, replacing one with the same client ID.
    pub fn add_client(&self, spec: ClientSpec) {
        self.shared()
            .lock()
            .clients
            .insert(spec.client_id.clone(), spec);
    }

    /// Maps a certificate to a client for the client credentials grant (replacing one with the
    /// same `kid`). Has no effect when the client is unknown.
    pub fn add_certificate(&self, client_id: &str, mapping: CertificateMapping) {
        let mut st = self.shared().lock();
        match st.clients.get_mut(client_id) {
            Some(c) => {
                c.certificates.retain(|m| m.kid != mapping.kid);
                c.certificates.push(mapping);
            }
            None => tracing::warn!(client_id, "add_certificate: no such client"),
        }
    }

    /// Maps a certificate as a NetSuite administrator does (replacing one with the same `kid`),
    /// with NetSuite's rules: X.509 PEM with an RSA 3072/4096 or EC P-256/384/521 key, not
    /// expired, valid for at most two years, and at most [`crate::MAX_ACTIVE_CERTIFICATES`]
    /// unexpired certificates per integration. [`Emulator::add_certificate`] skips these checks
    /// (to test what the token endpoint does with a bad mapping).
    pub fn map_certificate(
        &self,
        client_id: &str,
        mapping: CertificateMapping,
    ) -> Result<(), CertificateRefused> {
        crate::assertion::check_mapping(&mapping.certificate_pem)
            .map_err(CertificateRefused::Invalid)?;
        let mut st = self.shared().lock();
        let client = st
            .clients
            .get_mut(client_id)
            .ok_or_else(|| CertificateRefused::UnknownClient(client_id.to_owned()))?;
        let now = crate::state::now();
        let active = client
            .certificates
            .iter()
            .filter(|m| {
                m.kid != mapping.kid && crate::assertion::not_after(&m.certificate_pem) > now
            })
            .count();
        if active >= crate::config::MAX_ACTIVE_CERTIFICATES {
            return Err(CertificateRefused::TooMany);
        }
        client.certificates.retain(|m| m.kid != mapping.kid);
        client.certificates.push(mapping);
        Ok(())
    }

    /// Removes a certificate mapping; assertions with its `kid` are refused from then on.
    /// Returns whether it was mapped.
    pub fn remove_certificate(&self, client_id: &str, kid: &str) -> bool {
        let mut st = self.shared().lock();
        let Some(client) = st.clients.get_mut(client_id) else {
            return false;
        };
        let before = client.certificates.len();
        client.certificates.retain(|m| m.kid != kid);
        client.certificates.len() != before
    }

    /// Adds a NetSuite user who can log in (e-mail compared case-insensitively).
    pub fn add_user(&self, email: &str, password: &str) {
        let mut st = self.shared().lock();
        let key = email.trim().to_lowercase();
        let entity = match st.users.get(&key) {
            Some(u) => u.entity,
            None => {
                st.next_entity += 1;
                st.next_entity
            }
        };
        st.users.insert(
            key,
            User {
                email: email.trim().to_owned(),
                password: password.to_owned(),
                entity,
            },
        );
    }

    /// Lifetime of access tokens issued from now on (default 3600 s, as NetSuite).
    pub fn set_access_ttl(&self, secs: u64) {
        self.shared().lock().access_ttl = secs;
    }

    /// The integration's refresh token validity for chains started from now on (default 7 days).
    /// It also bounds a public client's rotation chain; each public refresh token lives at most
    /// 3 hours within it.
    pub fn set_refresh_validity(&self, secs: u64) {
        self.shared().lock().refresh_validity = secs;
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared().lock().counters.clone()
    }

    /// Starts (or stops) keeping every token issued from now on, for
    /// [`Emulator::issued_tokens`]. Off by default.
    pub fn record_tokens(&self, on: bool) {
        self.shared().lock().record.set_on(on);
    }

    /// Every token issued while recording, in order, with what became of it.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        let st = self.shared().lock();
        st.record.snapshot(&st)
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared().lock().faults.clear();
    }

    /// Queues a fault for the next token endpoint request (faults apply in order, one each).
    pub fn inject(&self, fault: Fault) {
        self.shared().lock().faults.push_back(fault);
    }

    /// Makes every access token issued so far expire now, while refresh tokens stay valid: the
    /// next REST call with a cached token gets 401, as after NetSuite ended a session early.
    pub fn expire_access_tokens(&self) {
        let mut st = self.shared().lock();
        st.access.values_mut().for_each(|a| a.exp = 0);
    }

    /// Revokes every token and unused code, and logs every browser out, as an administrator
    /// revoking the application does.
    pub fn revoke_all(&self) {
        let mut st = self.shared().lock();
        st.chains.values_mut().for_each(|r| *r = true);
        st.access.values_mut().for_each(|a| a.revoked = true);
        st.codes.values_mut().for_each(|c| c.used = true);
        st.browser_sessions.clear();
    }

    /// Adds the demo user and clients: `demo@example.com` / `demo-password`, the public client
    /// `nsauth-demo` and the confidential client `nsauth-demo-confidential` (random secret), both
    /// with the redirect URI `https://127.0.0.1:53682/callback`.
    pub fn install_demo_fixtures(&self) -> DemoFixtures {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let fx = DemoFixtures {
            email: "demo@example.com".into(),
            password: "demo-password".into(),
            public_client_id: "nsauth-demo".into(),
            confidential_client_id: "nsauth-demo-confidential".into(),
            client_secret: secret.iter().map(|b| format!("{b:02x}")).collect(),
            redirect_uri: "https://127.0.0.1:53682/callback".into(),
        };
        self.add_user(&fx.email, &fx.password);
        self.add_client(ClientSpec::public(&fx.public_client_id, &fx.redirect_uri));
        self.add_client(ClientSpec::confidential(
            &fx.confidential_client_id,
            &fx.client_secret,
            &fx.redirect_uri,
        ));
        fx
    }

    /// Stops the server (open connections get up to five seconds to finish).
    pub async fn shutdown(self) {
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tx) = stop {
            let _ = tx.send(());
        }
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut task) = task {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}
