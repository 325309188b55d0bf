//! Plain HTTP/1.0 over loopback, std only: a client that plays the user's browser on the
//! emulator's login page, and a counting proxy in front of the emulator's token endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The emulator's token endpoint (nsauth_emulator::TOKEN_PATH).
pub const TOKEN_PATH: &str = "/services/rest/auth/oauth2/v1/token";
/// The emulator's authorization endpoint (nsauth_emulator::AUTHORIZE_PATH).
pub const AUTHORIZE_PATH: &str = "/app/login/oauth2/authorize.nl";
/// The emulator's revocation endpoint.
pub const REVOKE_PATH: &str = "/services/rest/auth/oauth2/v1/revoke";

/// An HTTP response.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `http://HOST:PORT/path?q` into (`HOST:PORT`, `/path?q`).
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((host.to_owned(), path.to_owned()))
}

fn parse_head(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (first, headers)
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("an HTTP answer without a header end")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let (first, headers) = parse_head(&head);
    let status = first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {first:?}"))?;
    Ok(Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/1.0 request (the server closes the connection after answering).
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut s = TcpStream::connect(host).map_err(|e| format!("cannot connect to {host}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| format!("cannot send to {host}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("cannot read from {host}: {e}"))?;
    parse_response(&raw)
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn unescape_html(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Plays the user's browser on the emulator, like `nsauth_emulator::browser_login`: opens the
/// authorization URL, submits the login form (hidden `session` field, no cookie needed), approves
/// a consent form if one shows, and returns the redirect `Location` (with `code` and `state`)
/// without visiting it.
pub fn browser_login(authorize_url: &str, email: &str, password: &str) -> Result<String, String> {
    let (host, path) = split_url(authorize_url)?;
    let mut resp = request("GET", &host, &path, &[], b"")?;
    let mut logged_in = false;
    for _ in 0..4 {
        if (300..400).contains(&resp.status) {
            return resp
                .header("location")
                .map(str::to_owned)
                .ok_or_else(|| "a redirect without Location".to_owned());
        }
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        let action = unescape_html(between(&text, "action=\"", "\"").unwrap_or_default());
        let session =
            unescape_html(between(&text, "name=\"session\" value=\"", "\"").unwrap_or_default());
        let form = if text.contains("<form id=\"login\"") && !logged_in {
            logged_in = true;
            form_encode(&[
                ("session", &session),
                ("email", email),
                ("password", password),
            ])
        } else if text.contains("<form id=\"consent\"") {
            form_encode(&[("session", &session), ("decision", "approve")])
        } else {
            let shown: String = text.chars().take(300).collect();
            return Err(format!(
                "the emulator's login page answered HTTP {}: {shown}",
                resp.status
            ));
        };
        resp = request(
            "POST",
            &host,
            &action,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )?;
    }
    Err("too many pages without a redirect".into())
}

/// When a refresh request arrived at the proxy, and when its answer left (if it did).
pub type RefreshTimes = (Instant, Option<Instant>);

/// A proxy in front of the emulator that counts token-endpoint requests, can hold refresh
/// answers for a while (NetSuite's latency), and can shorten the `expires_in` nsauth is told.
#[derive(Clone)]
pub struct TokenProxy {
    pub addr: SocketAddr,
    /// POSTs to the token endpoint, all grants.
    pub token_requests: Arc<AtomicU64>,
    /// POSTs with `grant_type=refresh_token`.
    pub refresh_requests: Arc<AtomicU64>,
    /// When set, a token answer's `expires_in` is rewritten to [`SHORT_TTL`].
    pub shorten: Arc<AtomicBool>,
    /// Milliseconds to hold a refresh answer.
    pub refresh_delay_ms: Arc<AtomicU64>,
    /// When the last refresh request arrived, and when its answer was sent.
    pub last_refresh: Arc<Mutex<Option<RefreshTimes>>>,
    stop: Arc<AtomicBool>,
}

/// The access-token lifetime nsauth is told while [`TokenProxy::shorten`] is set.
pub const SHORT_TTL: u64 = 120;

impl TokenProxy {
    /// Starts the proxy on a free loopback port, forwarding to `upstream` (`HOST:PORT`).
    pub fn start(upstream: String) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let proxy = Self {
            addr,
            token_requests: Arc::default(),
            refresh_requests: Arc::default(),
            shorten: Arc::default(),
            refresh_delay_ms: Arc::default(),
            last_refresh: Arc::default(),
            stop: Arc::default(),
        };
        let p = proxy.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if p.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (p, up) = (p.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = p.serve(conn, &up);
                });
            }
        });
        Ok(proxy)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }

    /// One request per connection: read it, forward it (HTTP/1.0), answer with
    /// `Connection: close`.
    fn serve(&self, conn: TcpStream, upstream: &str) -> Result<(), String> {
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push_str(&line);
        }
        let head = head.replace("\r\n", "\n");
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        let mut parts = first.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let is_token = method == "POST" && path.split('?').next() == Some(TOKEN_PATH);
        let mut is_refresh = false;
        if is_token {
            self.token_requests.fetch_add(1, Ordering::SeqCst);
            if find(&body, b"grant_type=refresh_token").is_some() {
                is_refresh = true;
                if let Ok(mut l) = self.last_refresh.lock() {
                    *l = Some((Instant::now(), None));
                }
                self.refresh_requests.fetch_add(1, Ordering::SeqCst);
                let ms = self.refresh_delay_ms.load(Ordering::SeqCst);
                if ms > 0 {
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
        }
        let mut fwd = format!("{method} {path} HTTP/1.0\r\n");
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
            fwd.push_str(&format!("{k}: {v}\r\n"));
        }
        fwd.push_str("Connection: close\r\n\r\n");
        let mut up = TcpStream::connect(upstream).map_err(|e| e.to_string())?;
        up.write_all(fwd.as_bytes())
            .and_then(|()| up.write_all(&body))
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        up.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let resp = parse_response(&raw)?;
        let mut out_body = resp.body.clone();
        if is_token && self.shorten.load(Ordering::SeqCst) {
            out_body = shorten_expires_in(&out_body);
        }
        let status_line = String::from_utf8_lossy(&raw[..find(&raw, b"\r\n").unwrap_or(0)])
            .replacen("HTTP/1.0", "HTTP/1.1", 1);
        let mut out = format!("{status_line}\r\n");
        for (k, v) in &resp.headers {
            if [
                "content-length",
                "connection",
                "transfer-encoding",
                "keep-alive",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            out_body.len()
        ));
        let mut conn = conn;
        let sent = conn
            .write_all(out.as_bytes())
            .and_then(|()| conn.write_all(&out_body))
            .and_then(|()| conn.flush())
            .map_err(|e| e.to_string());
        if is_refresh {
            if let Ok(mut l) = self.last_refresh.lock() {
                if let Some((_, answered)) = l.as_mut() {
                    *answered = Some(Instant::now());
                }
            }
        }
        sent
    }
}

/// Rewrites `"expires_in":"N"` (or `"expires_in":N`) to [`SHORT_TTL`].
fn shorten_expires_in(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let key = "\"expires_in\":";
    let Some(at) = text.find(key) else {
        return body.to_vec();
    };
    let start = at + key.len();
    let rest = &text[start..];
    let quoted = rest.starts_with('"');
    let digits_from = start + usize::from(quoted);
    let digits_len = text[digits_from..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..digits_from]);
    out.push_str(&SHORT_TTL.to_string());
    out.push_str(&text[digits_from + digits_len..]);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens() {
        assert_eq!(
            shorten_expires_in(
                br#"{"access_token":"a","expires_in":"3600","token_type":"bearer"}"#
            ),
            br#"{"access_token":"a","expires_in":"120","token_type":"bearer"}"#.to_vec()
        );
        assert_eq!(
            shorten_expires_in(br#"{"expires_in":3600}"#),
            br#"{"expires_in":120}"#.to_vec()
        );
    }

    #[test]
    fn encodes() {
        assert_eq!(
            form_encode(&[("email", "demo@example.com"), ("x", "a b")]),
            "email=demo%40example.com&x=a+b"
        );
    }
}
