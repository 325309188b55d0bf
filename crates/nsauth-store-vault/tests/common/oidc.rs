//! Logging in to OpenBao without a long-lived secret, arranged with the root token: a JWT
//! issuer made here (an ES256 key pair, its public key given to OpenBao's `jwt` auth as a
//! static key), a least-privilege policy per prefix, and small loopback HTTP servers that
//! stand in for GitHub Actions' OIDC token endpoint and Kubernetes' TokenReview API.
//!
//! Shared by the store's tests and the end-to-end tests (`#[path]`); depends on reqwest,
//! rustls, serde_json, tokio, p256, rand, base64 and uuid only.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// OpenBao, called with the root token.
#[derive(Clone)]
pub struct Root {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    pub token: String,
}

impl Root {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        // With reqwest 0.13 the process must pick rustls' provider; ring, as nsauth does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut req = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/v1/{path}", self.addr.trim_end_matches('/')),
            )
            .header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("OpenBao answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {json}"
        );
        json
    }

    /// Writes the least-privilege policy for `MOUNT/PREFIX` (docs/stores/vault-policy.hcl,
    /// for this prefix only) and returns its name.
    pub async fn prefix_policy(&self, mount: &str, prefix: &str) -> String {
        let name = format!("nsauth-{}", prefix.replace('/', "-"));
        let hcl = format!(
            "path \"{mount}/data/{prefix}/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}\n\
             path \"{mount}/metadata/{prefix}/*\" {{ capabilities = [\"list\", \"read\", \"patch\"] }}\n\
             path \"{mount}/destroy/{prefix}/*\" {{ capabilities = [\"update\"] }}\n"
        );
        self.ok(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await;
        name
    }

    /// Enables an auth method at a fresh mount `{kind}-{random}` and returns the mount.
    pub async fn enable_auth(&self, kind: &str) -> String {
        let mount = format!(
            "{kind}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        self.ok(
            "POST",
            &format!("sys/auth/{mount}"),
            Some(json!({ "type": kind })),
        )
        .await;
        mount
    }

    /// The leases of the tokens issued by `auth/MOUNT/login` that Vault has not revoked
    /// (Vault revokes a token, and drops its lease, when it expires).
    pub async fn live_logins(&self, mount: &str) -> Vec<String> {
        let (status, list) = self
            .call(
                "LIST",
                &format!("sys/leases/lookup/auth/{mount}/login/"),
                None,
            )
            .await;
        assert!(status == 200 || status == 404, "{status} {list}");
        list["data"]["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A JWT issuer: an ES256 key pair made for one test.
pub struct Issuer {
    key: SigningKey,
    /// The public key, PEM (SPKI), as OpenBao's `jwt_validation_pubkeys` takes it.
    pub public_pem: String,
    /// The `iss` claim.
    pub iss: String,
}

impl Default for Issuer {
    fn default() -> Self {
        Self::new()
    }
}

impl Issuer {
    pub fn new() -> Self {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM");
        Self {
            key,
            public_pem,
            iss: "https://token.actions.example.test".into(),
        }
    }

    /// A signed JWT with `iss`, `iat`, `nbf`, `exp` (+10 min) and the given claims.
    pub fn sign(&self, claims: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut all = json!({ "iss": self.iss, "iat": now, "nbf": now - 5, "exp": now + 600 });
        for (k, v) in claims.as_object().cloned().unwrap_or_default() {
            all[k] = v;
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&all).unwrap());
        let input = format!("{header}.{payload}");
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// A CI job's token: `sub`, `aud` and `repository` as GitHub and GitLab put them.
    pub fn ci_jwt(&self, aud: &str, repository: &str) -> String {
        self.sign(json!({
            "sub": format!("repo:{repository}:ref:refs/heads/main"),
            "aud": aud,
            "repository": repository,
        }))
    }
}

/// Enables `jwt` auth at a fresh mount trusting `issuer`'s key, with role `ci` bound to
/// `audience` and `repository = acme/app`, whose tokens carry only `policy` and live `ttl`.
pub async fn jwt_role(
    root: &Root,
    issuer: &Issuer,
    audience: &str,
    policy: &str,
    ttl: &str,
) -> String {
    let mount = root.enable_auth("jwt").await;
    root.ok(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({ "jwt_validation_pubkeys": [issuer.public_pem], "bound_issuer": issuer.iss })),
    )
    .await;
    root.ok(
        "POST",
        &format!("auth/{mount}/role/ci"),
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": [audience],
            "user_claim": "sub",
            "bound_claims": { "repository": "acme/app" },
            "token_policies": [policy],
            "token_ttl": ttl,
            "token_max_ttl": ttl,
        })),
    )
    .await;
    mount
}

/// One HTTP request as the stand-in servers see it.
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `answer` on a loopback port (HTTP/1.1, one request per connection); returns the
/// address and a count of requests served.
pub async fn serve(
    answer: impl Fn(&Request) -> (u16, Value) + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let served = Arc::clone(&count);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let Some(req) = read_request(&mut sock).await else {
                    return;
                };
                served.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answer(&req);
                let body = body.to_string();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, count)
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

/// GitHub Actions' OIDC token endpoint: `GET /token?api-version=2.0&audience=AUD` with
/// `Authorization: Bearer REQUEST_TOKEN` answers `{"value": JWT}` signed by `issuer`, with
/// that audience; anything else is 401. Returns `ACTIONS_ID_TOKEN_REQUEST_URL`.
pub async fn github_oidc(
    issuer: Arc<Issuer>,
    request_token: &str,
    repository: &str,
) -> (String, Arc<AtomicUsize>) {
    let request_token = request_token.to_owned();
    let repository = repository.to_owned();
    let (addr, count) = serve(move |req| {
        let authorised = req
            .header("authorization")
            .and_then(|a| a.split_once(' '))
            .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t == request_token);
        let audience = url::form_urlencoded::parse(
            req.target.split_once('?').map_or("", |(_, q)| q).as_bytes(),
        )
        .find(|(k, _)| k == "audience")
        .map(|(_, v)| v.into_owned());
        match (req.method.as_str(), authorised, audience) {
            ("GET", true, Some(aud)) => (
                200,
                json!({ "count": 1, "value": issuer.ci_jwt(&aud, &repository) }),
            ),
            _ => (401, json!({ "message": "Unauthorized" })),
        }
    })
    .await;
    (format!("http://{addr}/token?api-version=2.0"), count)
}

/// The service account a Kubernetes test logs in as.
pub const SA_NAMESPACE: &str = "ci";
pub const SA_NAME: &str = "nsauth";
pub const SA_UID: &str = "5d1a8b3e-0c2f-4a7e-9d41-7f3b2c1e0a99";

/// A pod's service-account token (the claims Kubernetes puts in a projected token).
pub fn sa_token(issuer: &Issuer) -> String {
    issuer.sign(json!({
        "sub": format!("system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"),
        "aud": ["https://kubernetes.default.svc"],
        "kubernetes.io": {
            "namespace": SA_NAMESPACE,
            "serviceaccount": { "name": SA_NAME, "uid": SA_UID },
        },
    }))
}

/// Kubernetes' TokenReview API: `POST /apis/authentication.k8s.io/v1/tokenreviews`
/// authenticates `valid_token` as the service account above, and nothing else.
pub async fn token_review(valid_token: String) -> (SocketAddr, Arc<AtomicUsize>) {
    serve(move |req| {
        let review: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let token = review["spec"]["token"].as_str().unwrap_or_default();
        if req.method != "POST" || !req.target.starts_with("/apis/authentication.k8s.io/v1/tokenreviews") {
            return (404, json!({ "kind": "Status", "status": "Failure", "code": 404 }));
        }
        let status = if token == valid_token {
            json!({
                "authenticated": true,
                "user": {
                    "username": format!("system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"),
                    "uid": SA_UID,
                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{SA_NAMESPACE}")],
                },
                // The API server echoes the audiences asked for that the token holds.
                "audiences": review["spec"]["audiences"],
            })
        } else {
            json!({ "authenticated": false, "error": "invalid bearer token" })
        };
        (
            201,
            json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": review["spec"],
                "status": status,
            }),
        )
    })
    .await
}

/// A self-signed CA certificate nothing is signed with.
const UNUSED_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBmjCCAT+gAwIBAgIUSDdZQMlaNy1e+iA4ESEYSMNASCwwCgYIKoZIzj0EAwIw\nITEfMB0GA1UEAwwWa3ViZXJuZXRlcy1jYS1zdGFuZC1pbjAgFw0yNjEyMDIwODEx\nMzFaGA8yMTI2MTEwODA4MTEzMVowITEfMB0GA1UEAwwWa3ViZXJuZXRlcy1jYS1z\ndGFuZC1pbjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEEHF/xOhYK7OV3PQgS5\nNzCZI8h3kC+G7wY9apqvHjTCLV5OKciYz48wDrKdcB+QAOtpsivLKjzyC6J8Ldk9\nPzejUzBRMB0GA1UdDgQWBBTv5bJCkqSoObwBhKJ3CtySuHl6CTAfBgNVHSMEGDAW\ngBTv5bJCkqSoObwBhKJ3CtySuHl6CTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\nBAMCA0kAMEYCIQC8juVMzMA2GAoHNBbUNq49Wsfm5G6XHMEt7g6VwBKnvQIhAPbm\nmtYHo0LT12vFHV2OUYD/v2zgDJyQCP8OaYnaI6e2\n-----END CERTIFICATE-----\n";

/// Enables `kubernetes` auth at a fresh mount whose API server is `api` (the TokenReview
/// stand-in), with role `ci` bound to the service account above and `policy`.
pub async fn kubernetes_role(root: &Root, api: SocketAddr, policy: &str) -> String {
    let mount = root.enable_auth("kubernetes").await;
    root.ok(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({
            "kubernetes_host": format!("http://{api}"),
            // OpenBao runs outside a pod here: no local CA or reviewer JWT to read. The
            // reviewer is then the logging-in pod's own token. The stand-in speaks plain
            // HTTP, so the CA (which OpenBao insists on) is never used.
            "disable_local_ca_jwt": true,
            "kubernetes_ca_cert": UNUSED_CA,
        })),
    )
    .await;
    root.ok(
        "POST",
        &format!("auth/{mount}/role/ci"),
        Some(json!({
            "bound_service_account_names": [SA_NAME],
            "bound_service_account_namespaces": [SA_NAMESPACE],
            "token_policies": [policy],
            "token_ttl": "10m",
        })),
    )
    .await;
    mount
}
