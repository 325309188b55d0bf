//! Waking waiters on `LISTEN`/`NOTIFY`: every write sends `pg_notify(channel, name)` in its
//! own statement's transaction; a dedicated connection per store handle, started by the
//! first waiter, listens on the table's channel and wakes the waiters of that name.
//!
//! If the listening connection cannot be made (a pooler in transaction mode, a server that
//! refuses), waiting reports "no notifications" and callers poll as on any store; the next
//! attempt to listen is made a while later. If the connection dies, every waiter is woken
//! (a notification may have been lost) and the next waiter starts a new one.

use crate::schema;
use crate::uri::Settings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long after a failed attempt to listen waiters poll without trying again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The live listening connection: a change counter per waited-on name.
pub(crate) struct Hub {
    names: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Keeps the connection open; dropping the hub closes it and ends its task.
    _client: Mutex<Option<tokio_postgres::Client>>,
    alive: std::sync::atomic::AtomicBool,
}

impl Hub {
    fn is_alive(&self) -> bool {
        self.alive.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A receiver that sees every change to `name` announced from now on.
    pub(crate) fn subscribe(&self, name: &str) -> watch::Receiver<u64> {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        names.retain(|_, tx| tx.receiver_count() > 0);
        names
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn wake(&self, name: &str) {
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = names.get(name) {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// The connection ended: wake everyone (their receivers see the sender go).
    fn close(&self) {
        self.alive.store(false, std::sync::atomic::Ordering::SeqCst);
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Starts a listening connection on first use, and again after it died.
#[derive(Default)]
pub(crate) struct Listener {
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    Running(Arc<Hub>),
    Failed(Instant),
}

impl Listener {
    /// The live hub, starting one if needed; `None` when listening is not possible now.
    pub(crate) async fn hub(
        &self,
        settings: &Settings,
        tls: &MakeRustlsConnect,
    ) -> Option<Arc<Hub>> {
        let mut state = self.state.lock().await;
        match &*state {
            State::Running(hub) if hub.is_alive() => return Some(Arc::clone(hub)),
            State::Failed(at) if at.elapsed() < RETRY_AFTER => return None,
            _ => {}
        }
        match start(settings, tls).await {
            Ok(hub) => {
                *state = State::Running(Arc::clone(&hub));
                Some(hub)
            }
            Err(e) => {
                tracing::debug!(store = %settings.describe(), error = %e, "cannot LISTEN; waiters poll instead");
                *state = State::Failed(Instant::now());
                None
            }
        }
    }
}

async fn start(settings: &Settings, tls: &MakeRustlsConnect) -> Result<Arc<Hub>, String> {
    let (client, mut conn) = schema::open(settings, tls)
        .await
        .map_err(|e| e.to_string())?;
    let hub = Arc::new(Hub {
        names: Mutex::new(HashMap::new()),
        _client: Mutex::new(None),
        alive: true.into(),
    });
    let weak: Weak<Hub> = Arc::downgrade(&hub);
    let channel = settings.channel();
    let shown = settings.describe();
    tokio::spawn(async move {
        loop {
            let msg = std::future::poll_fn(|cx| conn.poll_message(cx)).await;
            let Some(hub) = weak.upgrade() else { break };
            match msg {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == channel => {
                    hub.wake(n.payload());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(store = %shown, error = %e, "postgres listening connection failed");
                    hub.close();
                    break;
                }
                None => {
                    hub.close();
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"{}\"", settings.channel()))
        .await
        .map_err(|e| e.to_string())?;
    *hub._client.lock().unwrap_or_else(PoisonError::into_inner) = Some(client);
    Ok(hub)
}
