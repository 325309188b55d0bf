//! [`Client`]: fresh access tokens for a Rust service, through the same broker as
//! `nsauth token` (single-flight refresh across processes and hosts, recovery journal,
//! refresh lease).

use crate::builder::ClientBuilder;
use nsauth_core::broker::Broker;
use nsauth_core::store::{load_existing, within, Precondition, StoreError, Versioned};
use nsauth_core::token::TokenSet;
use nsauth_core::{Error, ProfileName, TokenStore};
use nsauth_store::secret::AccessToken;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use url::Url;

/// An access token and what a caller needs to use it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Token {
    /// The profile it belongs to.
    pub profile: String,
    /// The access token (`Debug` prints it redacted; `.secret()` gives the value).
    pub access_token: AccessToken,
    /// When NetSuite ends it.
    pub expires_at: OffsetDateTime,
    /// The NetSuite account ID, e.g. `1234567_SB1`.
    pub account_id: String,
    /// The REST base URL, ending in `/` (e.g.
    /// `https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/`): the only origin this
    /// token may be sent to.
    pub rest_url: Url,
}

/// Hands out fresh NetSuite access tokens from an nsauth store. Cheap to clone; clones share
/// one broker. Any number of clients, in any number of processes or hosts, can use the same
/// store: when a token runs out, exactly one of them refreshes it.
#[derive(Clone, Debug)]
pub struct Client {
    broker: Arc<Broker>,
    profile: String,
}

impl Client {
    pub(crate) fn new(broker: Arc<Broker>, profile: String) -> Self {
        Self { broker, profile }
    }

    /// A client configured by the environment variables the `nsauth` CLI reads
    /// (`NSAUTH_STORE`, `NSAUTH_PROFILE`, `NSAUTH_STORE_KEY`/`_FILE`, `NSAUTH_JOURNAL_DIR`,
    /// `NSAUTH_LEASE_SECONDS`, `NSAUTH_STORE_TIMEOUT_SECONDS`), with the same defaults.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// A builder, for services that configure nsauth in code.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The default profile: `NSAUTH_PROFILE`, the builder's, or `default`.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        self.broker.store()
    }

    /// The broker underneath (the one `nsauth token` uses).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// An access token of `profile` valid for at least `min_ttl` (at most 55 minutes),
    /// refreshing it first if needed — once, whoever else asks at the same time. Errors:
    /// [`Error::LoginNeeded`] when a person must run `nsauth login`, [`Error::Store`],
    /// [`Error::Unreachable`] when NetSuite keeps failing, [`Error::Invalid`] for a bad name.
    pub async fn token(&self, profile: &str, min_ttl: Duration) -> Result<Token, Error> {
        let name = ProfileName::parse(profile)?;
        let (set, outcome) = self.broker.access_token(&name, min_ttl).await?;
        tracing::debug!(profile = %name, ?outcome, fingerprint = %set.access_token.fingerprint(), "access token handed out");
        self.token_of(&name, set).await
    }

    /// Refreshes the tokens of `profile` now, whatever their lifetime (`nsauth refresh
    /// --force`); callers that refresh at the same time share one refresh.
    pub async fn force_refresh(&self, profile: &str) -> Result<Token, Error> {
        let name = ProfileName::parse(profile)?;
        let set = self.broker.force_refresh(&name).await?;
        self.token_of(&name, set).await
    }

    /// Another token after NetSuite refused `rejected` (HTTP 401): the stored token if another
    /// caller has replaced it meanwhile, else one refresh shared by every caller that got the
    /// 401 for the same token (in any process or host).
    ///
    /// The refused token is first marked expired in the store (by compare-and-swap, only while
    /// the record still holds it and no refresh is under way), so that every caller then asks
    /// the broker for a token the ordinary way and single flight picks one refresher. A forced
    /// refresh instead would refresh once per caller that came in after the first one's save.
    pub async fn token_after_rejection(
        &self,
        profile: &str,
        rejected: &AccessToken,
    ) -> Result<Token, Error> {
        let name = ProfileName::parse(profile)?;
        self.mark_rejected(&name, rejected).await?;
        let (set, _) = self.broker.access_token(&name, Duration::ZERO).await?;
        let set = if set.access_token == *rejected {
            // A refresh not started by a 401 held the lease: wait for it, or refresh.
            self.broker.force_refresh(&name).await?
        } else {
            set
        };
        tracing::debug!(profile = %name, rejected = %rejected.fingerprint(), fingerprint = %set.access_token.fingerprint(), "access token replaced after a 401");
        self.token_of(&name, set).await
    }

    /// Marks `rejected` expired in the record, if the record still holds it and no lease.
    async fn mark_rejected(&self, name: &ProfileName, rejected: &AccessToken) -> Result<(), Error> {
        let timeout = self.broker.config().store_timeout;
        for _ in 0..5 {
            let Versioned {
                mut record,
                version,
            } = within(
                Instant::now() + timeout,
                load_existing(self.store().as_ref(), name),
            )
            .await?;
            let now = self.broker.config().clock.now();
            let Some(tokens) = record.tokens.as_mut() else {
                return Ok(());
            };
            if tokens.access_token != *rejected
                || record.lease.is_some()
                || tokens.access_expires_at <= now
            {
                return Ok(());
            }
            tokens.access_expires_at = now - time::Duration::seconds(1);
            record.touch();
            let put = self
                .store()
                .put(name, &record, Precondition::Match(version));
            match within(Instant::now() + timeout, put).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The token with its profile's account and REST base, read from the store (the
    /// profile may have changed since the client was built).
    async fn token_of(&self, name: &ProfileName, set: TokenSet) -> Result<Token, Error> {
        let deadline = Instant::now() + self.broker.config().store_timeout;
        let record = within(deadline, load_existing(self.store().as_ref(), name))
            .await?
            .record;
        Ok(Token {
            profile: name.as_str().to_owned(),
            access_token: set.access_token,
            expires_at: set.access_expires_at,
            account_id: record.profile.account_id.as_str().to_owned(),
            rest_url: record.profile.endpoints().rest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send_sync<T: Send + Sync>(_: &T) {}
    fn is_send<T: Send>(_: &T) {}

    /// Services call the client from spawned tasks (axum handlers): its futures must be Send.
    #[allow(dead_code)]
    fn clients_and_their_futures_are_send(c: Client) {
        is_send_sync(&c);
        is_send(&c.token("p", Duration::ZERO));
        is_send(&c.token_after_rejection("p", &AccessToken::new("t")));
        #[cfg(feature = "reqwest")]
        {
            let api = c.http("p");
            is_send_sync(&api);
            is_send(&api.get("x"));
        }
    }
}
