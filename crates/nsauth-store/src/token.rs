//! The tokens a record holds.

use crate::secret::{AccessToken, RefreshToken};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The tokens held for a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// When the access token ends.
    #[serde(with = "time::serde::rfc3339")]
    pub access_expires_at: OffsetDateTime,
    /// The refresh token (authorization code grant only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the refresh token ends (from its JWT `exp`, else the profile's validity).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_expires_at: Option<OffsetDateTime>,
    /// When this set was obtained.
    #[serde(with = "time::serde::rfc3339")]
    pub obtained_at: OffsetDateTime,
}

impl TokenSet {
    /// `true` when the access token is valid for at least `min_ttl` seconds more.
    pub fn access_valid_for(&self, now: OffsetDateTime, min_ttl: time::Duration) -> bool {
        self.access_expires_at - now >= min_ttl
    }

    /// `true` when a refresh token exists and has not ended.
    pub fn refresh_usable(&self, now: OffsetDateTime) -> bool {
        self.refresh_token.is_some() && self.refresh_expires_at.is_none_or(|t| t > now)
    }
}
