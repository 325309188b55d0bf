//! The emulator's memory: clients, users, pending logins, codes, token chains, counters.
//!
//! Tokens are grouped in chains: one chain per authorization code exchange or client
//! credentials grant. Revoking a chain kills its refresh token and every access token issued
//! from it, which is what NetSuite's revoke endpoint and "revoke all" do.

use crate::config::{ClientSpec, Counters, Fault};
use crate::jwt;
use crate::record::{IssuedBy, Record, TokenKind};
use rand::RngCore as _;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Authorization codes live this long.
pub(crate) const CODE_TTL: u64 = 600;
/// A pending login (authorize request waiting for the login or consent form) lives this long.
pub(crate) const SESSION_TTL: u64 = 1800;
/// Public clients' refresh tokens live at most this long (then the next one of the chain).
pub(crate) const PUBLIC_REFRESH_TTL: u64 = 3 * 3600;
/// The role NetSuite reports in the redirect (`role=3`: Administrator).
pub(crate) const ROLE: u32 = 3;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random URL-safe identifier with `bytes` bytes of entropy.
pub(crate) fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    jwt::b64(&buf)
}

/// A NetSuite user who can log in.
#[derive(Debug)]
pub(crate) struct User {
    pub email: String,
    pub password: String,
    pub entity: u64,
}

/// An authorization request that passed validation and waits for login and consent.
#[derive(Debug, Clone)]
pub(crate) struct AuthSession {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: String,
    pub code_challenge: String,
    pub prompt: Vec<String>,
    /// Lower-cased e-mail once the user has logged in.
    pub user: Option<String>,
    pub expires: u64,
}

/// An issued authorization code.
#[derive(Debug)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub entity: u64,
    pub expires: u64,
    pub used: bool,
    /// The chain issued from this code, revoked if the code is presented again.
    pub chain: Option<String>,
}

/// A refresh token the emulator issued.
#[derive(Debug)]
pub(crate) struct RefreshRecord {
    pub token: String,
    pub client_id: String,
    pub chain: String,
    pub scopes: Vec<String>,
    pub entity: u64,
    pub oit: u64,
    pub exp: u64,
    /// Public clients' refresh tokens are single use.
    pub used: bool,
}

/// An access token the emulator issued.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub client_id: String,
    pub chain: String,
    pub scopes: Vec<String>,
    pub exp: u64,
    pub revoked: bool,
}

/// Everything that changes.
#[derive(Debug)]
pub(crate) struct State {
    pub clients: HashMap<String, ClientSpec>,
    /// Keyed by lower-cased e-mail.
    pub users: HashMap<String, User>,
    pub next_entity: u64,
    pub access_ttl: u64,
    pub refresh_validity: u64,
    pub counters: Counters,
    pub faults: VecDeque<Fault>,
    pub auth_sessions: HashMap<String, AuthSession>,
    /// Browser cookie value -> lower-cased e-mail of the logged-in user.
    pub browser_sessions: HashMap<String, String>,
    pub codes: HashMap<String, CodeGrant>,
    /// `user|client|sorted scopes` the user has consented to.
    pub consents: HashSet<String>,
    /// Chain id -> revoked.
    pub chains: HashMap<String, bool>,
    pub access: HashMap<String, AccessRecord>,
    pub refresh: HashMap<String, RefreshRecord>,
    /// `jti` of client assertions seen, with their `exp`, to refuse replays.
    pub seen_assertions: HashMap<String, u64>,
    /// The token ledger (off unless switched on).
    pub record: Record,
}

impl Default for State {
    fn default() -> Self {
        Self {
            clients: HashMap::new(),
            users: HashMap::new(),
            next_entity: 1001,
            access_ttl: 3600,
            refresh_validity: 7 * 24 * 3600,
            counters: Counters::default(),
            faults: VecDeque::new(),
            auth_sessions: HashMap::new(),
            browser_sessions: HashMap::new(),
            codes: HashMap::new(),
            consents: HashSet::new(),
            chains: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            seen_assertions: HashMap::new(),
            record: Record::default(),
        }
    }
}

/// What a new chain's tokens are about.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub entity: u64,
    pub chain: String,
}

/// Shared by every handler and the [`crate::Emulator`] handle. Its `Debug` shows no secrets.
pub(crate) struct Shared {
    pub base_url: String,
    pub account_id: String,
    key: [u8; 32],
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(base_url: String, account_id: String) -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            base_url,
            account_id,
            key,
            state: Mutex::new(State::default()),
        }
    }

    /// Locks the state; never held across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token endpoint URL, the only `aud` a client assertion may carry.
    pub fn token_url(&self) -> String {
        format!("{}/services/rest/auth/oauth2/v1/token", self.base_url)
    }

    fn claims(&self, s: &Subject, kind: &str, iat: u64, exp: u64) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("sub".into(), json!(format!("{ROLE};{}", s.entity)));
        c.insert("aud".into(), json!([s.client_id, self.account_id]));
        c.insert("scope".into(), json!(s.scopes));
        c.insert("iss".into(), json!("https://system.netsuite.com"));
        c.insert("iat".into(), json!(iat));
        c.insert("exp".into(), json!(exp));
        c.insert(
            "jti".into(),
            json!(format!(
                "{}.{kind}.{}",
                self.account_id,
                uuid::Uuid::new_v4()
            )),
        );
        c
    }

    /// Issues an access token for `s`; returns it and its lifetime in seconds.
    pub fn issue_access(&self, st: &mut State, s: &Subject, kind: &str) -> (String, u64) {
        let iat = now();
        let ttl = st.access_ttl;
        let claims = self.claims(s, kind, iat, iat + ttl);
        let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
        st.chains.entry(s.chain.clone()).or_insert(false);
        st.access.insert(
            jti.clone(),
            AccessRecord {
                client_id: s.client_id.clone(),
                chain: s.chain.clone(),
                scopes: s.scopes.clone(),
                exp: iat + ttl,
                revoked: false,
            },
        );
        let token = jwt::sign_hs256(&self.key, "emulator-access", &Value::Object(claims));
        let by = match kind {
            "a-c" => IssuedBy::AuthorizationCode,
            "a-r" => IssuedBy::RefreshToken,
            _ => IssuedBy::ClientCredentials,
        };
        st.record.issued(TokenKind::Access, &jti, &token, by);
        (token, ttl)
    }

    /// Issues a refresh token for `s`, first of its chain at `oit`, valid until `exp`.
    pub fn issue_refresh(&self, st: &mut State, s: &Subject, oit: u64, exp: u64) -> String {
        let mut claims = self.claims(s, "r", now(), exp);
        claims.insert("oit".into(), json!(oit));
        claims.insert("typ".into(), json!("refresh"));
        let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
        let token = jwt::sign_hs256(&self.key, "emulator-refresh", &Value::Object(claims));
        st.chains.entry(s.chain.clone()).or_insert(false);
        if st.record.is_on() {
            // A refresh token issued into a chain that already has one replaces it (public
            // clients' rotation): the used ones of the chain stopped working now.
            let rotated: Vec<String> = st
                .refresh
                .iter()
                .filter(|(j, r)| r.chain == s.chain && r.used && !st.record.is_rotated(j))
                .map(|(j, _)| j.clone())
                .collect();
            st.record.rotated(rotated.into_iter());
            let by = if st.refresh.values().any(|r| r.chain == s.chain) {
                IssuedBy::RefreshToken
            } else {
                IssuedBy::AuthorizationCode
            };
            st.record.issued(TokenKind::Refresh, &jti, &token, by);
        }
        st.refresh.insert(
            jti,
            RefreshRecord {
                token: token.clone(),
                client_id: s.client_id.clone(),
                chain: s.chain.clone(),
                scopes: s.scopes.clone(),
                entity: s.entity,
                oit,
                exp,
                used: false,
            },
        );
        token
    }

    /// The `jti` of a token this emulator signed, if the signature holds.
    pub fn our_jti(&self, token: &str) -> Option<String> {
        let claims = jwt::verify_hs256(&self.key, token)?;
        claims.get("jti").and_then(Value::as_str).map(str::to_owned)
    }

    /// The scopes of a valid (known, unexpired, unrevoked) access token.
    pub fn check_access(&self, token: &str) -> Result<Vec<String>, &'static str> {
        let jti = self
            .our_jti(token)
            .ok_or("not a token issued by this account")?;
        let st = self.lock();
        let rec = st.access.get(&jti).ok_or("not an access token")?;
        if rec.revoked || st.chains.get(&rec.chain).copied().unwrap_or(true) {
            return Err("the access token was revoked");
        }
        if rec.exp <= now() {
            return Err("the access token expired");
        }
        Ok(rec.scopes.clone())
    }
}

impl State {
    /// Revokes a chain: its refresh tokens and access tokens stop working.
    pub fn revoke_chain(&mut self, chain: &str) {
        self.chains.insert(chain.to_owned(), true);
        self.record.chain_revoked(chain);
    }

    /// `true` when the chain was revoked (or never existed).
    pub fn chain_revoked(&self, chain: &str) -> bool {
        self.chains.get(chain).copied().unwrap_or(true)
    }

    /// The refresh token lifetime for a client at `now`, bounded by the chain's start `oit`.
    pub fn refresh_exp(&self, public: bool, oit: u64, now: u64) -> u64 {
        let chain_end = oit + self.refresh_validity;
        if public {
            chain_end.min(now + PUBLIC_REFRESH_TTL.min(self.refresh_validity))
        } else {
            chain_end
        }
    }

    /// Drops expired pending logins, codes and replay records.
    pub fn sweep(&mut self, now: u64) {
        self.auth_sessions.retain(|_, s| s.expires > now);
        self.codes.retain(|_, c| c.expires + CODE_TTL > now);
        self.seen_assertions.retain(|_, exp| *exp + 120 > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_refresh_capped_at_three_hours_and_by_chain() {
        let st = State::default();
        assert_eq!(st.refresh_exp(true, 1000, 1000), 1000 + PUBLIC_REFRESH_TTL);
        assert_eq!(st.refresh_exp(false, 1000, 5000), 1000 + 7 * 24 * 3600);
        let end = 1000 + 7 * 24 * 3600;
        assert_eq!(
            st.refresh_exp(true, 1000, end - 60),
            end,
            "the chain bounds rotation"
        );
    }

    #[test]
    fn access_token_checks() {
        let sh = Shared::new("http://x".into(), "1234567_SB1".into());
        let s = Subject {
            client_id: "c".into(),
            scopes: vec!["rest_webservices".into()],
            entity: 7,
            chain: "ch".into(),
        };
        let (t, ttl) = {
            let mut st = sh.lock();
            sh.issue_access(&mut st, &s, "a-c")
        };
        assert_eq!(ttl, 3600);
        assert_eq!(
            sh.check_access(&t).unwrap(),
            vec!["rest_webservices".to_owned()]
        );
        let rt = {
            let mut st = sh.lock();
            sh.issue_refresh(&mut st, &s, now(), now() + 60)
        };
        assert!(
            sh.check_access(&rt).is_err(),
            "a refresh token is no bearer token"
        );
        sh.lock().revoke_chain("ch");
        assert_eq!(sh.check_access(&t), Err("the access token was revoked"));
    }
}
