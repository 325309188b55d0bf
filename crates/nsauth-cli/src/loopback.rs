//! The loopback listener for interactive logins: HTTPS on 127.0.0.1 (and ::1 for
//! `localhost`) with a certificate generated on the spot (or the user's), waiting for the
//! one redirect that carries our `state`. Wrong callbacks get an error page and the listener
//! keeps waiting.
//!
//! Any local user can connect, so the listener is bounded: at most [`MAX_CONNECTIONS`] at
//! once (a new one closes the oldest that has sent no request), a TLS handshake and the request head must each arrive
//! within [`HANDSHAKE_TIMEOUT`], a connection lives at most [`CONNECTION_LIFETIME`], and
//! accept errors (EMFILE) back off instead of spinning.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use nsauth_core::Error;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use url::Url;

/// Connections served at once; one more closes the oldest idle one.
pub const MAX_CONNECTIONS: usize = 32;
/// Time allowed for the TLS handshake, and then for the request head.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection may stay open.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// TLS material for the listener.
pub enum Tls {
    /// Plain http (only when the redirect URI is http on loopback).
    None,
    /// Generated self-signed certificate for 127.0.0.1/localhost/::1.
    Generated,
    /// The user's certificate and key.
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
}

/// A bound listener.
pub struct Listener {
    listeners: Vec<TcpListener>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    path: String,
}

fn server_config(tls: &Tls) -> Result<Option<rustls::ServerConfig>, Error> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (certs, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) = match tls {
        Tls::None => return Ok(None),
        Tls::Generated => {
            let ck = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".into(),
                "localhost".into(),
                "::1".into(),
            ])
            .map_err(|e| {
                Error::Other(format!("cannot generate the loopback TLS certificate: {e}"))
            })?;
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| Error::Other(format!("loopback TLS key: {e}")))?;
            (vec![ck.cert.der().clone()], key)
        }
        Tls::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Other(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Invalid(format!("the --tls-cert/--tls-key pair is not usable: {e}")))?;
    Ok(Some(cfg))
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Invalid(format!("cannot read --tls-cert {}: {e}", path.display())))?
        .collect();
    let certs = certs
        .map_err(|e| Error::Invalid(format!("--tls-cert {} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Invalid(format!(
            "--tls-cert {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, Error> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).map_err(|e| {
        Error::Invalid(format!(
            "--tls-key {} is not a PEM private key: {e}",
            path.display()
        ))
    })
}

impl Listener {
    /// Binds the host and port of the redirect URI (loopback only); `localhost` binds both
    /// 127.0.0.1 and ::1 (the latter when the system has IPv6), since a browser may resolve
    /// it to either.
    pub async fn bind(redirect: &Url, tls: Tls) -> Result<Self, Error> {
        let port = redirect.port_or_known_default().unwrap_or(443);
        let (ips, localhost): (Vec<IpAddr>, bool) = match redirect.host() {
            Some(url::Host::Ipv4(ip)) => (vec![ip.into()], false),
            Some(url::Host::Ipv6(ip)) => (vec![ip.into()], false),
            _ => (
                vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
                true,
            ),
        };
        if ips.iter().any(|ip| !ip.is_loopback()) {
            return Err(Error::Invalid(
                "the loopback listener only binds 127.0.0.1, ::1 or localhost".into(),
            ));
        }
        let mut listeners = Vec::new();
        for ip in ips {
            match TcpListener::bind(SocketAddr::new(ip, port)).await {
                Ok(l) => listeners.push(l),
                // No IPv6 on this system: 127.0.0.1 alone serves localhost.
                Err(e) if localhost && ip.is_ipv6() && e.kind() != std::io::ErrorKind::AddrInUse => {
                    tracing::debug!(error = %e, "::1 unavailable; listening on 127.0.0.1 only");
                }
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "cannot listen on {ip}:{port} for the redirect ({e}); free the port, or use `nsauth login start` and `login finish`"
                    )))
                }
            }
        }
        let acceptor = server_config(&tls)?.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
        let path = if redirect.path().is_empty() {
            "/".into()
        } else {
            redirect.path().to_owned()
        };
        Ok(Self {
            listeners,
            acceptor,
            path,
        })
    }

    /// Serves until a request carrying `state` arrives on the redirect path; returns its full
    /// query string. Other requests get a 400 page and the wait goes on.
    pub async fn wait_for(self, state: String) -> Result<String, Error> {
        let (tx, mut rx) = mpsc::channel::<String>(1);
        let shared = Arc::new((self.path, state, tx));
        let acceptor = self.acceptor;
        let listeners = self.listeners;
        let server = async move {
            let mut open = Open::default();
            let mut backoff = Duration::from_millis(10);
            loop {
                let tcp = match accept_any(&listeners).await {
                    Ok(tcp) => {
                        backoff = Duration::from_millis(10);
                        tcp
                    }
                    Err(e) => {
                        // Out of descriptors (or another transient error): free the oldest
                        // connection and wait a little instead of spinning.
                        tracing::debug!(error = %e, "loopback accept failed; backing off");
                        open.close_one();
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                open.make_room();
                let busy = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(serve(tcp, acceptor.clone(), shared.clone(), busy.clone()));
                open.0.push_back((task.abort_handle(), busy));
            }
        };
        tokio::select! {
            q = rx.recv() => q.ok_or_else(|| Error::Other("the loopback listener stopped".into())),
            () = server => Err(Error::Other("the loopback listener stopped".into())),
        }
    }
}

type Shared = Arc<(String, String, mpsc::Sender<String>)>;

/// The connections being served, oldest first, each with a flag set once a request arrived.
#[derive(Default)]
struct Open(VecDeque<(tokio::task::AbortHandle, Arc<AtomicBool>)>);

impl Open {
    /// Closes one connection: the oldest that never sent a request, else the oldest.
    fn close_one(&mut self) {
        let idle = self
            .0
            .iter()
            .position(|(_, busy)| !busy.load(Ordering::Relaxed));
        if let Some((task, _)) = self.0.remove(idle.unwrap_or(0)) {
            task.abort();
        }
    }

    /// Forgets finished connections and closes others until a new one fits.
    fn make_room(&mut self) {
        self.0.retain(|(task, _)| !task.is_finished());
        while self.0.len() >= MAX_CONNECTIONS {
            self.close_one();
        }
    }
}

async fn accept_any(listeners: &[TcpListener]) -> std::io::Result<TcpStream> {
    match listeners {
        [one] => one.accept().await.map(|(s, _)| s),
        [a, b, ..] => tokio::select! {
            r = a.accept() => r.map(|(s, _)| s),
            r = b.accept() => r.map(|(s, _)| s),
        },
        [] => std::future::pending().await,
    }
}

/// Serves one connection: one request, within the time limits.
async fn serve(
    tcp: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Shared,
    busy: Arc<AtomicBool>,
) {
    let svc = hyper::service::service_fn(move |req| {
        busy.store(true, Ordering::Relaxed);
        let shared = shared.clone();
        async move {
            Ok::<_, std::convert::Infallible>(handle(req, &shared.0, &shared.1, &shared.2).await)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .keep_alive(false);
    let work = async {
        match acceptor {
            Some(a) => {
                if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(tcp)).await {
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                }
            }
            None => {
                let _ = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            }
        }
    };
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, work).await;
}

fn page(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>nsauth: {title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{title}</h1><p>{body}</p></body></html>"
    );
    let mut r = Response::new(Full::new(Bytes::from(html)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "text/html; charset=utf-8".parse().expect("static"),
    );
    r.headers_mut()
        .insert("cache-control", "no-store".parse().expect("static"));
    r.headers_mut()
        .insert("referrer-policy", "no-referrer".parse().expect("static"));
    r
}

async fn handle(
    req: Request<Incoming>,
    path: &str,
    state: &str,
    tx: &mpsc::Sender<String>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "nsauth only expects the browser's redirect (GET).",
        );
    }
    if req.uri().path() != path {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This is nsauth's login listener; it only answers the NetSuite redirect.",
        );
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    if query.len() > nsauth_core::flows::MAX_CALLBACK_LEN {
        return page(
            StatusCode::URI_TOO_LONG,
            "Request too long",
            "This is not a NetSuite redirect.",
        );
    }
    let mut states = url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "state");
    let st = states.next().map(|(_, v)| v.into_owned());
    if states.next().is_some() || st.as_deref() != Some(state) {
        return page(StatusCode::BAD_REQUEST, "Unexpected request", "This redirect does not belong to the login nsauth is waiting for. Still waiting for the right one.");
    }
    let has = |k: &str| url::form_urlencoded::parse(query.as_bytes()).any(|(kk, _)| kk == k);
    if !has("code") && !has("error") {
        return page(
            StatusCode::BAD_REQUEST,
            "Missing code",
            "The redirect carries no authorization code. Still waiting.",
        );
    }
    let is_error = has("error");
    let _ = tx.try_send(query);
    if is_error {
        page(StatusCode::OK, "Login not completed", "NetSuite did not authorise the request. See the terminal for details; you can close this tab.")
    } else {
        page(
            StatusCode::OK,
            "Logged in",
            "nsauth received the authorization. You can close this tab and return to the terminal.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_listener_closes_the_oldest_idle_connection_first() {
        let mut open = Open::default();
        let mut tasks = Vec::new();
        for busy in [true, false, false] {
            let task = tokio::spawn(std::future::pending::<()>());
            open.0
                .push_back((task.abort_handle(), Arc::new(AtomicBool::new(busy))));
            tasks.push(task);
        }
        open.close_one();
        let mut tasks = tasks.into_iter();
        let (first, second, third) = (tasks.next(), tasks.next(), tasks.next());
        assert!(second.unwrap().await.unwrap_err().is_cancelled());
        assert_eq!(open.0.len(), 2);
        // Then the other idle one; then, with only busy ones left, the oldest.
        open.close_one();
        assert!(third.unwrap().await.unwrap_err().is_cancelled());
        open.close_one();
        assert!(first.unwrap().await.unwrap_err().is_cancelled());
        assert!(open.0.is_empty());
    }
}
