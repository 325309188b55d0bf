//! NetSuite account IDs, validated before they ever reach a host name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated NetSuite account ID such as `1234567` or `1234567_SB1`.
///
/// Accepted: 1 to 12 digits (test-drive accounts may start with `TSTDRV`), optionally followed by `_` and a suffix of 2 to 3 letters and
/// 1 to 3 digits (`_SB1`, `_RP2`, `_TD12`). Anything else is refused, so the ID can be
/// placed into a host name without risk of sending credentials to another host.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

/// Why an account ID was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid NetSuite account ID {shown:?}: {why}; expected digits with an optional sandbox suffix, like 1234567 or 1234567_SB1 (see Setup > Company > Company Information)")]
pub struct InvalidAccountId {
    shown: String,
    why: &'static str,
}

impl AccountId {
    /// Parses and validates an account ID. Lower-case and `-` forms (`1234567-sb1`) are
    /// accepted and normalised to NetSuite's canonical form (`1234567_SB1`).
    pub fn parse(input: &str) -> Result<Self, InvalidAccountId> {
        let shown: String = input
            .chars()
            .take(40)
            .flat_map(char::escape_default)
            .collect();
        let err = |why| InvalidAccountId {
            shown: shown.clone(),
            why,
        };
        let trimmed = input.trim_matches(' ');
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        if trimmed.len() > 24 {
            return Err(err("it is too long"));
        }
        let upper = trimmed.to_ascii_uppercase().replace('-', "_");
        let (digits, suffix) = match upper.split_once('_') {
            Some((d, s)) => (d, Some(s)),
            None => (upper.as_str(), None),
        };
        // Test-drive accounts look like TSTDRV1234567.
        let digits = digits.strip_prefix("TSTDRV").unwrap_or(digits);
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("it must start with 1 to 12 digits"));
        }
        if let Some(s) = suffix {
            let letters = s.bytes().take_while(u8::is_ascii_uppercase).count();
            let rest = &s[letters..];
            if !(2..=3).contains(&letters)
                || rest.is_empty()
                || rest.len() > 3
                || !rest.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(err(
                    "the suffix after '_' must be letters and digits, like SB1",
                ));
            }
        }
        Ok(Self(upper))
    }

    /// The canonical form, e.g. `1234567_SB1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host form used in NetSuite domains, e.g. `1234567-sb1`.
    pub fn host_form(&self) -> String {
        self.0.to_ascii_lowercase().replace('_', "-")
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = InvalidAccountId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountId> for String {
    fn from(value: AccountId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_form() {
        assert_eq!(
            AccountId::parse("1234567_SB1").unwrap().host_form(),
            "1234567-sb1"
        );
        assert_eq!(
            AccountId::parse("1234567-sb1").unwrap().as_str(),
            "1234567_SB1"
        );
        assert_eq!(
            AccountId::parse("tstdrv123").unwrap().host_form(),
            "tstdrv123"
        );
        assert_eq!(AccountId::parse("1234567").unwrap().host_form(), "1234567");
    }

    #[test]
    fn refuses_host_injection() {
        for bad in [
            "",
            "abc",
            "123.evil.com",
            "123/../x",
            "123@evil",
            "123_",
            "123_S1",
            "123_SB",
            "123 456",
            "123\n",
            "1234567_SB1.attacker",
            "１２３",
            "1234567890123",
        ] {
            assert!(AccountId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
