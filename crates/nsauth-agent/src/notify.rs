//! Where watch events go: `--notify-command CMD` (the event JSON on stdin) and
//! `--notify-webhook URL` (the event JSON POSTed; its `text` field makes it a Slack incoming
//! webhook message as is). See docs/notifications.md.
//!
//! Delivery never holds up a refresh: [`Notifier::send`] puts the event on a bounded queue
//! (a full queue drops the event, logged and counted) and one background task delivers
//! events in order, to the command and the webhook at once, each within its own limit:
//!
//! - **Command**: run as `/bin/sh -c CMD` in its own process group, stdin the event JSON,
//!   stdout discarded, stderr the agent's. `NSAUTH_EVENT` and `NSAUTH_EVENT_PROFILE` name
//!   the event; nsauth's own secrets (`NSAUTH_STORE_KEY` and every `NSAUTH_*` variable whose
//!   name says key, secret, token, password, passphrase, credential or webhook) are removed
//!   from its environment. After [`Limits::command_timeout`] the whole group is killed. Its
//!   exit status is logged; a failure is not retried (the command decides about retries).
//! - **Webhook**: https, or http to 127.0.0.1/::1/localhost only; redirects are not
//!   followed; connection failures, timeouts, 429 and 5xx are retried with doubling pauses,
//!   [`Limits::webhook_attempts`] times at most; any other answer ends the delivery. Logs
//!   name the URL's scheme and host only (a Slack webhook's path is its secret).

use crate::watch::Event;
use nsauth_core::profile::is_loopback_host;
use std::ffi::{OsStr, OsString};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use url::Url;

/// How long delivery may take, and how many events may wait.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A notify command still running after this is killed (default 30 s).
    pub command_timeout: Duration,
    /// One webhook request may take this long (default 10 s).
    pub webhook_timeout: Duration,
    /// Webhook attempts per event (default 4).
    pub webhook_attempts: u32,
    /// The first pause between webhook attempts; each later one doubles (default 1 s).
    pub webhook_backoff: Duration,
    /// Events waiting for delivery; more are dropped (default 64).
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_timeout: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(10),
            webhook_attempts: 4,
            webhook_backoff: Duration::from_secs(1),
            queue: 64,
        }
    }
}

/// Delivery counts since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Deliveries that worked (one per command run or webhook POST that succeeded).
    pub delivered: u64,
    /// Deliveries that failed (command failed or killed, webhook gave up).
    pub failed: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The sender side of the delivery queue.
#[derive(Debug)]
pub struct Notifier {
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
}

impl Notifier {
    /// Starts the delivery task; must be called inside a Tokio runtime. With neither
    /// command nor webhook, events are only logged. A webhook URL that
    /// [`check_webhook_url`] refuses is logged and not used (check it at start-up).
    pub fn spawn(command: Option<String>, webhook: Option<Url>, limits: Limits) -> Notifier {
        let webhook = webhook.and_then(|url| match check_webhook_url(&url) {
            Ok(()) => match webhook_client(&url, &limits) {
                Ok(client) => Some((url, client)),
                Err(e) => {
                    tracing::error!("notify webhook {} unusable: {e}", redact(&url));
                    None
                }
            },
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        });
        let (tx, mut rx) = mpsc::channel::<Event>(limits.queue.max(1));
        let counters = Arc::new(Counters::default());
        let count = counters.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                deliver(
                    &event,
                    command.as_deref(),
                    webhook.as_ref(),
                    &limits,
                    &count,
                )
                .await;
            }
        });
        Notifier { tx, counters }
    }

    /// Queues `event`; never waits. A full queue drops it (logged, counted).
    pub fn send(&self, event: Event) {
        tracing::info!(
            event = event.event.as_str(),
            profile = %event.profile,
            "{}",
            event.message
        );
        if let Err(e) = self.tx.try_send(event) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let ev = match &e {
                mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev) => ev,
            };
            tracing::warn!(
                "notification {} for profile {} dropped: the delivery queue is full",
                ev.event.as_str(),
                ev.profile
            );
        }
    }

    /// Delivery counts so far.
    pub fn stats(&self) -> Stats {
        Stats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

async fn deliver(
    event: &Event,
    command: Option<&str>,
    webhook: Option<&(Url, reqwest::Client)>,
    limits: &Limits,
    count: &Counters,
) {
    let body = event.to_json();
    let run = async {
        match command {
            Some(cmd) => Some(run_command(cmd, event, &body, limits.command_timeout).await),
            None => None,
        }
    };
    let post = async {
        match webhook {
            Some((url, client)) => Some(post_webhook(client, url, &body, limits).await),
            None => None,
        }
    };
    let (ran, posted) = tokio::join!(run, post);
    for (sink, result) in [("notify command", ran), ("notify webhook", posted)] {
        match result {
            Some(Ok(())) => {
                count.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "{sink}: {} for {} delivered",
                    event.event.as_str(),
                    event.profile
                );
            }
            Some(Err(why)) => {
                count.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "{sink}: {} for {} not delivered: {why}",
                    event.event.as_str(),
                    event.profile
                );
            }
            None => {}
        }
    }
}

/// Runs the notify command once with `body` on stdin.
async fn run_command(
    command: &str,
    event: &Event,
    body: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env("NSAUTH_EVENT", event.event.as_str())
        .env("NSAUTH_EVENT_PROFILE", &event.profile)
        .kill_on_drop(true);
    for name in withheld_env() {
        cmd.env_remove(name);
    }
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh: {e}"))?;
    let pid = child.id();
    let waited = tokio::time::timeout(timeout, async {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that exits without reading its stdin is not an error.
            let _ = stdin.write_all(body).await;
        }
        child.wait().await
    })
    .await;
    match waited {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("it ended with {status}")),
        Ok(Err(e)) => Err(format!("waiting for it failed: {e}")),
        Err(_) => {
            #[cfg(unix)]
            if let Some(pgid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.kill().await;
            Err(format!(
                "it was still running after {} s and was killed",
                timeout.as_secs_f32()
            ))
        }
    }
}

/// Refuses webhook URLs that are neither https nor loopback http.
pub fn check_webhook_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback_host(url) => Ok(()),
        _ => Err(format!(
            "--notify-webhook {} must use https (http is allowed only to 127.0.0.1, ::1 or localhost)",
            redact(url)
        )),
    }
}

fn webhook_client(url: &Url, limits: &Limits) -> Result<reqwest::Client, String> {
    let mut b = nsauth_core::http::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(limits.webhook_timeout)
        .connect_timeout(limits.webhook_timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("nsauth-agent/", env!("CARGO_PKG_VERSION")));
    if is_loopback_host(url) {
        b = b.no_proxy();
    }
    b.build().map_err(|e| e.without_url().to_string())
}

/// POSTs `body` to `url`, retrying what may pass.
async fn post_webhook(
    client: &reqwest::Client,
    url: &Url,
    body: &[u8],
    limits: &Limits,
) -> Result<(), String> {
    let attempts = limits.webhook_attempts.max(1);
    let mut pause = limits.webhook_backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        let sent = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                last = format!("HTTP {}", r.status().as_u16());
            }
            Ok(r) => {
                return Err(format!(
                    "{} answered HTTP {} (redirects are not followed; not retried)",
                    redact(url),
                    r.status().as_u16()
                ))
            }
            Err(e) => {
                last = if e.is_timeout() {
                    format!(
                        "no answer within {} s",
                        limits.webhook_timeout.as_secs_f32()
                    )
                } else if e.is_connect() {
                    "connection failed".into()
                } else {
                    "the request failed".into()
                };
            }
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
    }
    Err(format!("{}: {last} after {attempts} attempts", redact(url)))
}

/// `https://hooks.example.com/…`: scheme, host and port only.
pub fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// Name parts that mark an `NSAUTH_*` variable as secret. The same rule as `nsauth exec`
/// (crates/nsauth-cli/src/commands/tokens/child_env.rs) plus `WEBHOOK`: a Slack webhook URL
/// is itself a credential.
const SECRET_PARTS: [&str; 7] = [
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSPHRASE",
    "CREDENTIAL",
    "WEBHOOK",
];

fn is_nsauth_secret(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    upper.starts_with("NSAUTH_") && SECRET_PARTS.iter().any(|p| upper.contains(p))
}

/// The variables of this process a notify command must not inherit.
pub fn withheld_env() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| is_nsauth_secret(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_are_withheld() {
        for s in [
            "NSAUTH_STORE_KEY",
            "NSAUTH_STORE_KEY_FILE",
            "NSAUTH_CLIENT_SECRET",
            "nsauth_store_key",
            "NSAUTH_NOTIFY_WEBHOOK",
        ] {
            assert!(is_nsauth_secret(OsStr::new(s)), "{s}");
        }
        for s in ["NSAUTH_STORE", "NSAUTH_PROFILE", "PATH", "HOME"] {
            assert!(!is_nsauth_secret(OsStr::new(s)), "{s}");
        }
    }

    #[test]
    fn webhook_urls() {
        for ok in [
            "https://hooks.slack.com/services/T/B/secret",
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://localhost/x",
        ] {
            check_webhook_url(&Url::parse(ok).unwrap()).unwrap();
        }
        for bad in [
            "http://hooks.example.com/x",
            "ftp://127.0.0.1/x",
            "file:///tmp/x",
        ] {
            let e = check_webhook_url(&Url::parse(bad).unwrap()).unwrap_err();
            assert!(e.contains("https"), "{e}");
        }
        let secret = Url::parse("http://hooks.example.com/services/T/B/sekrit?x=1").unwrap();
        assert!(!check_webhook_url(&secret).unwrap_err().contains("sekrit"));
    }
}
