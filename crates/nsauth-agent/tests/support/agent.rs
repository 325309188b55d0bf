//! A tiny agent (only the proxy route), a fake REST base that records what reaches it, a
//! listener standing for another host, and a raw HTTP/1.1 client for request targets no
//! well-behaved client would send.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nsauth::Client;
use nsauth_agent::body::Body;
use nsauth_agent::proxy::{Outcome, Proxy, TokenSource};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

/// Serves `make(req)` for every request on a free local port; its address.
async fn serve<F, Fut>(make: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let make = make.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let fut = make(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    addr
}

/// An agent serving `ANY /v1/proxy/NAME/<rest>` through `proxy`; its base URL.
pub async fn agent(client: Client, proxy: Proxy) -> String {
    agent_over(client, proxy).await
}

/// [`agent`] taking its tokens from any [`TokenSource`].
pub async fn agent_over<T: TokenSource + 'static>(source: T, proxy: Proxy) -> String {
    let client = Arc::new(source);
    let addr = serve(move |req: Request<Incoming>| {
        let (client, proxy) = (client.clone(), proxy.clone());
        async move {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let Some((name, rest)) = target
                .strip_prefix("/v1/proxy/")
                .and_then(|t| t.split_once('/'))
            else {
                let mut resp = Response::new(full("no route"));
                *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
                return resp;
            };
            let mut resp = proxy.forward(&*client, name, rest, req).await;
            // What the proxy did, made visible to the tests.
            if let Some(outcome) = resp.extensions().get::<Outcome>().copied() {
                let v = if outcome.retried { "1" } else { "0" };
                resp.headers_mut()
                    .insert("x-test-retried", hyper::header::HeaderValue::from_static(v));
            }
            resp
        }
    })
    .await;
    format!("http://{addr}")
}

/// One request as the fake REST base saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

/// A fake REST base: records every request and answers by path (see [`fake_answer`]); the
/// sender feeds the body of `GET slow` piece by piece.
pub struct FakeRest {
    pub rest_url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

/// `GET gate`: refuses the first token it sees, in two requests: the first once the second
/// has come too, the second only once a request with another token has come (so its 401
/// lands after a refresh); any other token is welcome.
#[derive(Default)]
pub struct Gate {
    first: Mutex<Option<String>>,
    refused: AtomicUsize,
    other_seen: AtomicBool,
    wake: Notify,
}

impl Gate {
    async fn answer(&self, auth: String) -> u16 {
        let first = self
            .first
            .lock()
            .unwrap()
            .get_or_insert(auth.clone())
            .clone();
        if first != auth {
            self.other_seen.store(true, Ordering::SeqCst);
            self.wake.notify_waiters();
            return 200;
        }
        let nth = self.refused.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_waiters();
        loop {
            let woken = self.wake.notified();
            let ready = if nth == 0 {
                self.refused.load(Ordering::SeqCst) >= 2
            } else {
                self.other_seen.load(Ordering::SeqCst)
            };
            if ready {
                return 401;
            }
            woken.await;
        }
    }
}

pub async fn fake_rest(redirect_to: String) -> (FakeRest, mpsc::Sender<Bytes>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel(4);
    let slow = Arc::new(Mutex::new(Some(rx)));
    let (s, sl, gate) = (seen.clone(), slow.clone(), Arc::new(Gate::default()));
    let addr = serve(move |req: Request<Incoming>| {
        let (seen, slow, redirect_to, gate) =
            (s.clone(), sl.clone(), redirect_to.clone(), gate.clone());
        async move { fake_answer(req, &seen, &slow, &redirect_to, &gate).await }
    })
    .await;
    let rest_url = format!("http://{addr}/services/rest/");
    (FakeRest { rest_url, seen }, tx)
}

/// `echo`: the body's length and byte sum; `deny`: the same with 401; `redirect`: 302 to
/// `redirect_to`; `gate`: see [`Gate`]; `slow`: a body fed by the test; `hang`: never answers; else `{}` with a
/// session cookie.
async fn fake_answer(
    req: Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
    slow: &Mutex<Option<mpsc::Receiver<Bytes>>>,
    redirect_to: &str,
    gate: &Gate,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into(),
            )
        })
        .collect();
    headers.sort();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path_and_query: parts.uri.path_and_query().unwrap().as_str().to_owned(),
        headers,
        body_len: bytes.len(),
    });
    let sum: u64 = bytes.iter().map(|b| u64::from(*b)).sum();
    let counted = format!(r#"{{"bytes":{},"sum":{sum}}}"#, bytes.len());
    let answer = |status: u16, body: Body| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body)
            .unwrap()
    };
    match path.trim_start_matches("/services/rest/") {
        "echo" => answer(200, full(counted)),
        "deny" => answer(401, full(counted)),
        "redirect" => Response::builder()
            .status(302)
            .header("location", redirect_to)
            .body(full(""))
            .unwrap(),
        "slow" => {
            let rx = slow.lock().unwrap().take().expect("slow is served once");
            answer(200, Fed(rx).boxed())
        }
        "gate" => {
            let auth = parts
                .headers
                .get("authorization")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            answer(gate.answer(auth).await, full("{}"))
        }
        "hang" => std::future::pending::<Response<Body>>().await,
        _ => Response::builder()
            .status(200)
            .header("set-cookie", "JSESSIONID=session-secret")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "1")
            .body(full("{}"))
            .unwrap(),
    }
}

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|n| match n {}).boxed()
}

/// A body whose pieces come from a channel, ending when the sender is dropped.
pub struct Fed(pub mpsc::Receiver<Bytes>);

impl HttpBody for Fed {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A listener standing for another host: counts connections, answers nothing.
pub async fn other_host() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    (format!("127.0.0.1:{}", addr.port()), seen)
}

/// Sends `head` (request line and headers, `\r\n`-separated, without the blank line) and
/// `body` on a new connection to `base`; the status and the whole answer.
pub async fn raw(base: &str, head: &str, body: &[u8]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    sock.write_all(body).await.unwrap();
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
