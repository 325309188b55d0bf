//! The agent's token cache: the current token of each served profile, ready as the JSON the
//! token route sends, handed out from memory while it has the life a caller asks for. Only
//! when it has not does a request go to the broker — one broker call per profile at a time
//! inside the agent (and the broker's single flight across processes and hosts).

use crate::metrics::Metrics;
use crate::refresher::Schedule;
use crate::watch::Watcher;
use bytes::Bytes;
use nsauth_core::broker::Outcome;
use nsauth_core::store::{load_existing, within, Record};
use nsauth_core::token::TokenSet;
use nsauth_core::{Error, ProfileName, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long a "login needed" answer is repeated without asking the broker again — unless
/// the record's tokens change meanwhile (someone logged in).
const LOGIN_NEEDED_HOLD: Duration = Duration::from_secs(2);

/// A recent "login needed" for one profile.
#[derive(Clone, Debug)]
struct Held {
    until: Instant,
    message: String,
    /// When the record's tokens then in the store were obtained (`None`: no tokens).
    tokens_at: Option<OffsetDateTime>,
}

/// The current token of one profile.
#[derive(Clone)]
pub struct Cached {
    /// The 200 body of the token route.
    pub body: Bytes,
    /// When NetSuite ends the access token.
    pub expires_at: OffsetDateTime,
    /// When it was obtained (the start of its lifetime).
    pub obtained_at: OffsetDateTime,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("body", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One served profile.
#[derive(Debug)]
pub struct Slot {
    name: ProfileName,
    current: RwLock<Option<Cached>>,
    /// Held while this agent calls the broker for the profile.
    flight: tokio::sync::Mutex<()>,
    /// A recent "login needed".
    held_error: Mutex<Option<Held>>,
}

impl Slot {
    fn new(name: ProfileName) -> Self {
        Self {
            name,
            current: RwLock::new(None),
            flight: tokio::sync::Mutex::new(()),
            held_error: Mutex::new(None),
        }
    }

    /// The profile.
    pub fn name(&self) -> &ProfileName {
        &self.name
    }

    /// The cached token if it stays valid for `min_ttl` after `now`.
    fn fresh(&self, now: OffsetDateTime, min_ttl: Duration) -> Option<Bytes> {
        let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
        let c = cur.as_ref()?;
        (c.expires_at - now >= min_ttl).then(|| c.body.clone())
    }

    /// The cached token, whatever its life.
    pub fn current(&self) -> Option<Cached> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What one broker call of the agent gave.
#[derive(Debug)]
pub struct Fetched {
    /// The record read after the call (profile, refresh-token end, certificate).
    pub record: Record,
    /// How the broker got the token.
    pub outcome: Outcome,
}

/// The token cache of every served profile.
#[derive(Debug)]
pub struct Tokens {
    client: nsauth::Client,
    metrics: Arc<Metrics>,
    schedule: Arc<Schedule>,
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    /// `--all`: a profile asked for by name is served if the store has it.
    open: bool,
    /// The deadline watch, told about every broker call's result.
    watcher: Option<Arc<Watcher>>,
}

impl Tokens {
    /// An empty cache over `client`'s broker.
    pub fn new(
        client: nsauth::Client,
        metrics: Arc<Metrics>,
        schedule: Arc<Schedule>,
        open: bool,
    ) -> Self {
        Self {
            client,
            metrics,
            schedule,
            slots: RwLock::new(HashMap::new()),
            open,
            watcher: None,
        }
    }

    /// Tells `watcher` the result of every broker call (a refresh attempt), in order per
    /// profile, with the record read after it.
    pub fn with_watcher(mut self, watcher: Arc<Watcher>) -> Self {
        self.watcher = Some(watcher);
        self
    }

    /// The client (store and broker).
    pub fn client(&self) -> &nsauth::Client {
        &self.client
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The slot of `profile`, if served.
    pub fn slot(&self, profile: &str) -> Option<Arc<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(profile)
            .cloned()
    }

    /// The served profiles.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Serves exactly `names` from now on: new ones are fetched at once, dropped ones
    /// forgotten.
    pub fn set_profiles(&self, names: &[ProfileName]) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.retain(|k, slot| {
            let keep = names.iter().any(|n| n.as_str() == k);
            if let (false, Some(w)) = (keep, &self.watcher) {
                w.forget(slot.name());
            }
            keep
        });
        for n in names {
            if !slots.contains_key(n.as_str()) {
                slots.insert(n.as_str().to_owned(), Arc::new(Slot::new(n.clone())));
                self.metrics.register(n.as_str());
                self.schedule.set(n.as_str(), Instant::now());
            }
        }
        self.schedule.retain(&|k| slots.contains_key(k));
        self.metrics.retain(&|k| slots.contains_key(k));
    }

    /// Profiles whose last attempt failed are tried again now (SIGHUP: a person may have
    /// fixed the cause).
    pub fn retry_unhealthy(&self) {
        for u in self.metrics.unhealthy() {
            if self.slot(&u.profile).is_some() {
                self.schedule.set(&u.profile, Instant::now());
            }
        }
    }

    /// The token route: the 200 body for `profile` with at least `min_ttl` left.
    pub async fn get(&self, profile: &str, min_ttl: Duration) -> Result<Bytes, Error> {
        let slot = match self.slot(profile) {
            Some(s) => s,
            None => self.open_slot(profile)?,
        };
        if let Some(body) = slot.fresh(OffsetDateTime::now_utc(), min_ttl) {
            self.metrics
                .served_from_cache
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(body);
        }
        let _flight = slot.flight.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(body) = slot.fresh(OffsetDateTime::now_utc(), min_ttl) {
            self.metrics
                .served_from_cache
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(body);
        }
        let held = slot
            .held_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(held) = held.filter(|h| Instant::now() < h.until) {
            // Held, unless the tokens changed since (a login): one store read, no NetSuite.
            let now_at = self
                .load(slot.name())
                .await
                .and_then(|r| r.tokens.map(|t| t.obtained_at));
            if now_at == held.tokens_at {
                return Err(Error::LoginNeeded(held.message));
            }
        }
        self.metrics
            .served_from_broker
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch(&slot, min_ttl).await {
            Ok(_) => slot
                .fresh(OffsetDateTime::now_utc(), Duration::ZERO)
                .ok_or_else(|| Error::Other("the token expired while it was handed out".into())),
            Err(e) => {
                if matches!(e, Error::Store(StoreError::NotFound(_))) && self.open {
                    self.forget(profile);
                }
                Err(e)
            }
        }
    }

    /// `Ok` when this agent serves `profile` (listed, or any valid name with `--all`; the
    /// store then decides), else the 404-kind error the token route gives.
    pub fn serves(&self, profile: &str) -> Result<(), Error> {
        if self.slot(profile).is_some() {
            return Ok(());
        }
        ProfileName::parse(profile)?;
        if self.open {
            return Ok(());
        }
        Err(not_served(profile))
    }

    /// Forgets the cached token of `profile` (NetSuite refused it): the next request goes to
    /// the broker.
    pub fn invalidate(&self, profile: &str) {
        if let Some(slot) = self.slot(profile) {
            *slot.current.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Forgets every cached token (SIGHUP: tokens revoked or replaced behind the agent's
    /// back): each profile's next request asks the broker once.
    pub fn invalidate_all(&self) {
        for name in self.names() {
            self.invalidate(&name);
        }
    }

    /// A slot for a profile not listed at start: only with `--all`.
    fn open_slot(&self, profile: &str) -> Result<Arc<Slot>, Error> {
        let name = ProfileName::parse(profile)?;
        if !self.open {
            return Err(not_served(profile));
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        Ok(slots
            .entry(profile.to_owned())
            .or_insert_with(|| Arc::new(Slot::new(name)))
            .clone())
    }

    /// Drops a profile asked for under `--all` that the store does not have, so that
    /// requests for made-up names leave nothing behind (no slot, no metrics, no health entry).
    fn forget(&self, profile: &str) {
        let gone = self
            .slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(profile);
        if let (Some(slot), Some(w)) = (gone, &self.watcher) {
            w.forget(slot.name());
        }
        self.metrics.retain(&|k| k != profile);
        self.schedule.retain(&|k| k != profile);
    }

    /// Background refresh of `slot`: asks the broker for a token with more life than the
    /// cached one has, so the broker refreshes unless another process already has (then
    /// the store's newer token is taken). Returns the record read after the call, or the
    /// error.
    pub async fn renew(&self, slot: &Slot) -> Result<Fetched, Error> {
        let _flight = slot.flight.lock().await;
        let now = OffsetDateTime::now_utc();
        let left = slot
            .current()
            .map(|c| (c.expires_at - now).max(time::Duration::ZERO))
            .unwrap_or(time::Duration::ZERO);
        let ask = Duration::try_from(left)
            .unwrap_or(Duration::ZERO)
            .saturating_add(Duration::from_secs(1))
            .min(Duration::from_secs(3300));
        self.fetch(slot, ask).await
    }

    /// One broker call for `slot` (caller holds its flight lock); the cache, metrics and
    /// the refresh schedule follow the result.
    async fn fetch(&self, slot: &Slot, min_ttl: Duration) -> Result<Fetched, Error> {
        let name = slot.name();
        let res = self.call_broker(name, min_ttl).await;
        let (set, outcome, record) = match res {
            Ok(v) => v,
            Err(e) => {
                self.metrics.failure(name.as_str(), &e);
                let record = self.load(name).await;
                if let Error::LoginNeeded(message) = &e {
                    *slot.held_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held {
                        until: Instant::now() + LOGIN_NEEDED_HOLD,
                        message: message.clone(),
                        tokens_at: record
                            .as_ref()
                            .and_then(|r| r.tokens.as_ref().map(|t| t.obtained_at)),
                    });
                }
                if let Some(record) = &record {
                    self.watch(name, record, Some(&e)).await;
                }
                return Err(e);
            }
        };
        *slot.held_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let certificate = record
            .profile
            .certificate_pem
            .as_deref()
            .and_then(|pem| nsauth_core::m2m::inspect_certificate(pem).ok())
            .map(|c| c.not_after);
        self.metrics.refresh(name.as_str(), outcome);
        self.metrics.token(
            name.as_str(),
            set.access_expires_at,
            set.refresh_expires_at,
            certificate,
        );
        let cached = Cached {
            body: render(&set, &record),
            expires_at: set.access_expires_at,
            obtained_at: set.obtained_at,
        };
        self.schedule.set(
            name.as_str(),
            crate::refresher::due(&cached, Instant::now(), OffsetDateTime::now_utc()),
        );
        *slot.current.write().unwrap_or_else(|p| p.into_inner()) = Some(cached);
        tracing::debug!(profile = %name, ?outcome, fingerprint = %set.access_token.fingerprint(), "agent token updated");
        self.watch(name, &record, None).await;
        Ok(Fetched { record, outcome })
    }

    /// The deadline watch's check after a broker call.
    async fn watch(&self, name: &ProfileName, record: &Record, error: Option<&Error>) {
        if let Some(watcher) = &self.watcher {
            let store = self.client.store();
            let now = OffsetDateTime::now_utc();
            watcher
                .check(store.as_ref(), name, record, error, now)
                .await;
        }
    }

    /// The record of `name`, if the store has it and answers in time.
    async fn load(&self, name: &ProfileName) -> Option<Record> {
        let started = Instant::now();
        let deadline = started + self.client.broker().config().store_timeout;
        let res = within(deadline, self.client.store().load(name)).await;
        self.metrics.store_latency(started.elapsed());
        match res {
            Ok(v) => v.map(|v| v.record),
            Err(e) => {
                tracing::debug!(profile = %name, error = %e, "the record cannot be read");
                None
            }
        }
    }

    async fn call_broker(
        &self,
        name: &ProfileName,
        min_ttl: Duration,
    ) -> Result<(TokenSet, Outcome, Record), Error> {
        let broker = self.client.broker();
        let (set, outcome) = broker.access_token(name, min_ttl).await?;
        let started = Instant::now();
        let record = within(
            started + broker.config().store_timeout,
            load_existing(broker.store().as_ref(), name),
        )
        .await?
        .record;
        self.metrics.store_latency(started.elapsed());
        Ok((set, outcome, record))
    }
}

/// The error for a profile this agent does not serve (404, exit 2).
fn not_served(profile: &str) -> Error {
    Error::Store(StoreError::NotFound(format!(
        "{profile} (not served by this agent; start it with --profile {profile} or --all)"
    )))
}

/// The token route's 200 body: the token object ([`crate::token_json`]).
fn render(set: &TokenSet, record: &Record) -> Bytes {
    let body = crate::token_json::render(
        &set.access_token,
        set.access_expires_at,
        record.profile.account_id.as_str(),
        record.profile.endpoints().rest.as_str(),
    );
    Bytes::copy_from_slice(body.as_bytes())
}
