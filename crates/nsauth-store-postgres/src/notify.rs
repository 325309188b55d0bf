//! Waking waiters on `LISTEN`/`NOTIFY`: every write sends `pg_notify(channel, name)` in its
//! own statement's transaction, and a handle's connection, once something waits on it, also
//! `LISTEN`s on the table's channel. The task driving the connection hands each notification
//! to the [`Hub`], which wakes the waiters of that name.
//!
//! The store's one connection carries the notifications too: a storm of waiters then costs
//! the server no second connection each. If `LISTEN` fails (a pooler in transaction mode),
//! waiting reports "no notifications" for that connection and callers poll as on any store.
//! When the connection ends, every waiter is woken (a notification may have been lost); the
//! next call makes a new connection with a new hub.

use crate::schema::Connection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{watch, OnceCell};
use tokio_postgres::{AsyncMessage, Client};

/// The notifications of one connection: a change counter per waited-on name.
pub(crate) struct Hub {
    channel: String,
    names: Mutex<HashMap<String, watch::Sender<u64>>>,
    alive: AtomicBool,
    /// Whether `LISTEN` succeeded on this connection (tried by the first waiter).
    listening: OnceCell<bool>,
}

impl Hub {
    /// Drives `conn` on a new task until it ends, handing notifications on `channel` to the
    /// returned hub.
    pub(crate) fn drive(mut conn: Connection, channel: String, shown: String) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            channel,
            names: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            listening: OnceCell::new(),
        });
        let driven = Arc::clone(&hub);
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) if n.channel() == driven.channel => {
                        driven.wake(n.payload());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(store = %shown, error = %e, "postgres connection failed");
                        break;
                    }
                    None => break,
                }
            }
            driven.close();
        });
        hub
    }

    /// Whether changes will be announced: `LISTEN`s on `client` (this hub's connection) the
    /// first time.
    pub(crate) async fn listen(&self, client: &Client) -> bool {
        *self
            .listening
            .get_or_init(|| async {
                match client
                    .batch_execute(&format!("LISTEN \"{}\"", self.channel))
                    .await
                {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot LISTEN; waiters poll instead");
                        false
                    }
                }
            })
            .await
            && self.alive.load(Ordering::SeqCst)
    }

    /// A receiver that sees every change to `name` announced from now on; it also returns
    /// (with an error) when the connection ends.
    pub(crate) fn subscribe(&self, name: &str) -> watch::Receiver<u64> {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        names.retain(|_, tx| tx.receiver_count() > 0);
        let rx = names
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        if !self.alive.load(Ordering::SeqCst) {
            names.clear();
        }
        rx
    }

    fn wake(&self, name: &str) {
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = names.get(name) {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// The connection ended: wake everyone (their receivers see the sender go).
    fn close(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
