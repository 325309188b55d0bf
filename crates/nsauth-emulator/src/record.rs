//! The token ledger: when switched on ([`crate::Emulator::record_tokens`]), every token the
//! emulator issues is kept with the moment it was issued and the moment it stopped working
//! (rotated away, or its chain revoked), so that a fault campaign can judge what a client
//! printed against what the server knew at the time.
//!
//! Off by default: a long-running `nsauth emulator` keeps no token it does not need.

use crate::state::State;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Which kind of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A bearer access token.
    Access,
    /// A refresh token.
    Refresh,
}

/// The grant that issued a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuedBy {
    /// An authorization code exchange (a login).
    AuthorizationCode,
    /// A refresh token grant.
    RefreshToken,
    /// A client credentials (M2M) grant.
    ClientCredentials,
}

/// Why a token stopped working before its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidated {
    /// A public client's refresh token, used once and replaced.
    Rotated,
    /// Its chain (or the token itself) was revoked.
    Revoked,
}

/// One issued token, as [`crate::Emulator::issued_tokens`] reports it. Its `Debug` hides the
/// token itself.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// Access or refresh token.
    pub kind: TokenKind,
    /// The token as sent to the client.
    pub token: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The chain (one per login or client credentials grant).
    pub chain: String,
    /// The grant that issued it.
    pub issued_by: IssuedBy,
    /// When it was issued, ms since the epoch.
    pub issued_at_ms: u64,
    /// When it expires, s since the epoch.
    pub expires_at: u64,
    /// When and why it stopped working before expiry; the time is `None` when the emulator
    /// could not tell (revoked by [`crate::Emulator::revoke_all`] or by revoking the access
    /// token alone).
    pub invalidated: Option<(Invalidated, Option<u64>)>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("kind", &self.kind)
            .field("token", &"[redacted]")
            .field("client_id", &self.client_id)
            .field("chain", &self.chain)
            .field("issued_by", &self.issued_by)
            .field("issued_at_ms", &self.issued_at_ms)
            .field("expires_at", &self.expires_at)
            .field("invalidated", &self.invalidated)
            .finish()
    }
}

#[derive(Debug)]
struct Entry {
    kind: TokenKind,
    jti: String,
    token: String,
    issued_by: IssuedBy,
    issued_at_ms: u64,
}

/// The ledger inside [`State`].
#[derive(Debug, Default)]
pub(crate) struct Record {
    on: bool,
    entries: Vec<Entry>,
    /// Chain -> when it was revoked.
    chain_revoked_ms: HashMap<String, u64>,
    /// Refresh `jti` -> when it was rotated away.
    rotated_ms: HashMap<String, u64>,
}

impl Record {
    pub fn set_on(&mut self, on: bool) {
        self.on = on;
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Notes an issued token.
    pub fn issued(&mut self, kind: TokenKind, jti: &str, token: &str, issued_by: IssuedBy) {
        if self.on {
            self.entries.push(Entry {
                kind,
                jti: jti.to_owned(),
                token: token.to_owned(),
                issued_by,
                issued_at_ms: now_ms(),
            });
        }
    }

    /// Notes a chain's revocation (the first one counts).
    pub fn chain_revoked(&mut self, chain: &str) {
        if self.on {
            self.chain_revoked_ms
                .entry(chain.to_owned())
                .or_insert_with(now_ms);
        }
    }

    /// Notes rotations: refresh tokens marked used that were not yet noted.
    pub fn rotated(&mut self, jtis: impl Iterator<Item = String>) {
        if self.on {
            let at = now_ms();
            for j in jtis {
                self.rotated_ms.entry(j).or_insert(at);
            }
        }
    }

    /// `true` when `jti` is already noted as rotated.
    pub fn is_rotated(&self, jti: &str) -> bool {
        self.rotated_ms.contains_key(jti)
    }

    /// Everything noted, joined with the state's current view of each token.
    pub fn snapshot(&self, st: &State) -> Vec<IssuedToken> {
        self.entries
            .iter()
            .filter_map(|e| {
                let (client_id, chain, expires_at, own) = match e.kind {
                    TokenKind::Access => st.access.get(&e.jti).map(|a| {
                        let own = a.revoked.then_some((Invalidated::Revoked, None));
                        (a.client_id.clone(), a.chain.clone(), a.exp, own)
                    })?,
                    TokenKind::Refresh => st.refresh.get(&e.jti).map(|r| {
                        let own = r
                            .used
                            .then(|| (Invalidated::Rotated, self.rotated_ms.get(&e.jti).copied()));
                        (r.client_id.clone(), r.chain.clone(), r.exp, own)
                    })?,
                };
                let by_chain = st.chain_revoked(&chain).then(|| {
                    (
                        Invalidated::Revoked,
                        self.chain_revoked_ms.get(&chain).copied(),
                    )
                });
                // The earliest known reason wins.
                let invalidated = match (own, by_chain) {
                    (Some(a), Some(b)) => Some(match (a.1, b.1) {
                        (Some(x), Some(y)) if y < x => b,
                        (None, Some(_)) => b,
                        _ => a,
                    }),
                    (a, b) => a.or(b),
                };
                Some(IssuedToken {
                    kind: e.kind,
                    token: e.token.clone(),
                    client_id,
                    chain,
                    issued_by: e.issued_by,
                    issued_at_ms: e.issued_at_ms,
                    expires_at,
                    invalidated,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Shared, Subject};

    fn subject(chain: &str) -> Subject {
        Subject {
            client_id: "c".into(),
            scopes: vec!["rest_webservices".into()],
            entity: 7,
            chain: chain.into(),
        }
    }

    #[test]
    fn off_by_default_then_records_issue_rotation_and_revocation_in_order() {
        let sh = Shared::new("http://x".into(), "1234567_SB1".into());
        let s = subject("ch");
        {
            let mut st = sh.lock();
            sh.issue_access(&mut st, &s, "a-c");
            assert!(st.record.snapshot(&st).is_empty(), "nothing kept while off");
            st.record.set_on(true);
        }
        let mut st = sh.lock();
        let (access, _) = sh.issue_access(&mut st, &s, "a-c");
        let first = sh.issue_refresh(&mut st, &s, 1000, u64::MAX / 2);
        // A public client's rotation: the first refresh token is used, a second one issued.
        st.refresh.values_mut().for_each(|r| r.used = true);
        let second = sh.issue_refresh(&mut st, &s, 1000, u64::MAX / 2);
        let (again, _) = sh.issue_access(&mut st, &s, "a-r");
        let snap = st.record.snapshot(&st);
        let find = |t: &str| {
            snap.iter()
                .find(|i| i.token == t)
                .expect("recorded")
                .clone()
        };
        assert_eq!(find(&access).issued_by, IssuedBy::AuthorizationCode);
        assert_eq!(find(&again).issued_by, IssuedBy::RefreshToken);
        assert_eq!(find(&first).issued_by, IssuedBy::AuthorizationCode);
        assert_eq!(find(&second).issued_by, IssuedBy::RefreshToken);
        assert!(matches!(
            find(&first).invalidated,
            Some((Invalidated::Rotated, Some(_)))
        ));
        assert_eq!(find(&second).invalidated, None);
        assert_eq!(find(&access).invalidated, None);
        assert!(
            !format!("{:?}", find(&access)).contains(&access),
            "Debug hides the token"
        );

        st.revoke_chain("ch");
        let snap = st.record.snapshot(&st);
        for t in [&access, &again, &second] {
            let i = snap.iter().find(|i| i.token == *t).expect("recorded");
            assert!(
                matches!(i.invalidated, Some((Invalidated::Revoked, Some(_)))),
                "{i:?}"
            );
        }
        let rotated = snap.iter().find(|i| i.token == first).expect("recorded");
        assert!(
            matches!(rotated.invalidated, Some((Invalidated::Rotated, _))),
            "the earlier reason stays: {rotated:?}"
        );
    }
}
