//! `nsauth serve`: opens the listeners, loads the profile list, runs the refresher and
//! answers HTTP/1.1 (keep-alive) on every listener until SIGTERM or SIGINT; SIGHUP reloads the
//! profile list and drops the cached tokens (the store is asked again). Shutdown lets in-flight requests finish (up to a deadline) and removes the
//! socket.

use crate::config::{Listen, Profiles, ServeConfig};
use crate::key::ServeKey;
use crate::listen::{self, Listener};
use crate::metrics::Metrics;
use crate::refresher::{self, Schedule};
use crate::routes::{self, App};
use crate::token::Tokens;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use nsauth_core::{Error, ProfileName};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch, Notify};

/// What the agent tells its caller once it is ready (printed by the CLI).
#[derive(Debug, Clone)]
pub struct Started {
    /// `unix:PATH` / `http://ADDR` of each listener.
    pub listening: Vec<String>,
    /// The serve key file, when a TCP listener needs it.
    pub key_file: Option<PathBuf>,
    /// The profiles served at start.
    pub profiles: Vec<String>,
}

/// Runs the agent on its own multi-threaded runtime (one worker per core, at most 4) until
/// it is told to stop. `ready` is called once every listener is open.
pub fn run_blocking(
    cfg: ServeConfig,
    client: impl FnOnce() -> Result<nsauth::Client, Error> + Send,
    ready: impl FnOnce(&Started) + Send,
) -> Result<(), Error> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("nsauth-agent")
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the agent's runtime: {e}")))?;
    rt.block_on(async move { serve(cfg, client()?, ready).await })
}

/// Runs the agent (inside a tokio runtime) until SIGTERM/SIGINT.
pub async fn serve(
    cfg: ServeConfig,
    client: nsauth::Client,
    ready: impl FnOnce(&Started),
) -> Result<(), Error> {
    let listeners = open_listeners(&cfg)?;
    let key_file = if listeners.iter().any(Listener::needs_key) {
        Some(match &cfg.key_file {
            Some(p) => p.clone(),
            None => crate::config::default_key_file()?,
        })
    } else {
        None
    };
    let key = key_file
        .as_deref()
        .map(ServeKey::load_or_create)
        .transpose()?;
    let metrics = Arc::new(Metrics::default());
    let schedule = Arc::new(Schedule::default());
    let watcher = Arc::new(crate::watch::Watcher::new(cfg.watch.clone()));
    let tokens = Arc::new(
        Tokens::new(
            client,
            metrics,
            schedule.clone(),
            cfg.profiles == Profiles::All,
        )
        .with_watcher(watcher),
    );
    tokens.set_profiles(&profile_list(&cfg.profiles, &tokens).await?);
    let app = Arc::new(App {
        tokens: tokens.clone(),
        key,
        started: Instant::now(),
    });
    let mut signals = Signals::new()?;
    let stop_refresher = Arc::new(Notify::new());
    let refresher = tokio::spawn(refresher::run(
        tokens.clone(),
        schedule,
        stop_refresher.clone(),
    ));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (conn_tx, mut conn_rx) = mpsc::channel::<()>(1);
    let started = Started {
        listening: listeners.iter().map(|l| l.label().to_owned()).collect(),
        key_file,
        profiles: tokens.names(),
    };
    let mut owned_sockets = Vec::new();
    let mut accept_loops = Vec::new();
    for l in listeners {
        let (app, rx, conns) = (app.clone(), shutdown_rx.clone(), conn_tx.clone());
        match l {
            Listener::Unix {
                listener, owned, ..
            } => {
                owned_sockets.push(owned);
                accept_loops.push(tokio::spawn(async move {
                    accept_loop(|| listener.accept(), app, false, rx, conns).await
                }));
            }
            Listener::Tcp { listener, .. } => {
                accept_loops.push(tokio::spawn(async move {
                    // Small answers on keep-alive connections: no Nagle delay.
                    let accept = || async {
                        let (stream, addr) = listener.accept().await?;
                        let _ = stream.set_nodelay(true);
                        Ok((stream, addr))
                    };
                    accept_loop(accept, app, true, rx, conns).await
                }));
            }
        }
    }
    drop(conn_tx);
    ready(&started);
    while let Signal::Reload = signals.next().await {
        match profile_list(&cfg.profiles, &tokens).await {
            Ok(names) => {
                tokens.set_profiles(&names);
                tokens.invalidate_all();
                tokens.retry_unhealthy();
                tracing::info!(profiles = names.len(), "profile list reloaded");
            }
            Err(e) => tracing::warn!(error = %e, "profile list not reloaded"),
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    let _ = shutdown_tx.send(true);
    for a in accept_loops {
        let _ = a.await;
    }
    // Every connection holds a sender: the channel closes when the last one ends.
    if tokio::time::timeout(cfg.shutdown_grace, conn_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?cfg.shutdown_grace, "requests still in flight at the shutdown deadline were cut off");
    }
    stop_refresher.notify_one();
    if tokio::time::timeout(cfg.shutdown_grace, refresher)
        .await
        .is_err()
    {
        tracing::warn!("a background refresh was still running at the shutdown deadline");
    }
    drop(owned_sockets);
    Ok(())
}

fn open_listeners(cfg: &ServeConfig) -> Result<Vec<Listener>, Error> {
    let mut out = listen::inherited()?;
    let default_dir = crate::config::runtime_dir();
    let mut wanted = cfg.listen.clone();
    if wanted.is_empty() && out.is_empty() {
        wanted.push(Listen::Unix(crate::config::default_socket()?));
    }
    for l in &wanted {
        out.push(listen::open(l, default_dir.as_deref())?);
    }
    Ok(out)
}

/// The profiles to serve: the named ones, or every profile in the store.
async fn profile_list(profiles: &Profiles, tokens: &Tokens) -> Result<Vec<ProfileName>, Error> {
    match profiles {
        Profiles::Named(names) => Ok(names.clone()),
        Profiles::All => {
            let store = tokens.client().store();
            let deadline = Instant::now() + tokens.client().broker().config().store_timeout;
            Ok(nsauth_core::store::within(deadline, store.list()).await?)
        }
    }
}

async fn accept_loop<S, F, Fut, A>(
    mut accept: F,
    app: Arc<App>,
    keyed: bool,
    mut shutdown: watch::Receiver<bool>,
    conns: mpsc::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<(S, A)>>,
{
    loop {
        let stream = tokio::select! {
            _ = shutdown.changed() => return,
            r = accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (app, mut shutdown, held) = (app.clone(), shutdown.clone(), conns.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::handle(app, keyed, req).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(held);
        });
    }
}

enum Signal {
    Stop,
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, Error> {
        let make = |k| signal(k).map_err(|e| Error::Other(format!("cannot handle signals: {e}")));
        Ok(Self {
            term: make(SignalKind::terminate())?,
            int: make(SignalKind::interrupt())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
