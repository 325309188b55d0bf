//! The client credentials (machine to machine) flow: key pairs, certificates and the signed
//! JWT assertion NetSuite exchanges for an access token.
//!
//! NetSuite accepts RSA 3072/4096 and EC P-256/384/521 keys, certificates valid for at most two
//! years, and assertions signed with PS256/384/512 or ES256/384/512 (never RS256). nsauth signs
//! RSA assertions with PS256 and EC assertions with the ES algorithm matching the curve.
//!
//! ```
//! use nsauth_core::m2m::{self, KeyAlgorithm};
//! let generated = m2m::generate_key(KeyAlgorithm::EcP256, 365, "nsauth").unwrap();
//! let info = m2m::inspect_private_key(&generated.private_key).unwrap();
//! assert_eq!(info.jws_alg, "ES256");
//! assert!(m2m::certificate_matches_key(&generated.certificate_pem, &generated.private_key).unwrap());
//! ```
//!
//! Key material never appears in an error message: errors name the problem and the fix only.

mod cert;
mod jws;
mod key;
mod pem;
pub mod rotate;
#[cfg(test)]
mod rotate_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::secret::PrivateKeyPem;
use crate::Error;

pub use cert::{certificate_matches_key, generate_key, inspect_certificate};
pub use jws::sign_assertion;
pub use key::inspect_private_key;

/// Key algorithms offered by `nsauth m2m keygen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256, signs ES256.
    EcP256,
    /// ECDSA on NIST P-384, signs ES384.
    EcP384,
    /// ECDSA on NIST P-521, signs ES512.
    EcP521,
    /// RSA with a 3072-bit modulus, signs PS256.
    Rsa3072,
    /// RSA with a 4096-bit modulus, signs PS256.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order `nsauth m2m keygen --help` lists them.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::EcP521,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// The name used on the command line: `ec-p256`, `ec-p384`, `ec-p521`, `rsa-3072`, `rsa-4096`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::EcP521 => "ec-p521",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// The JWS `alg` nsauth signs assertions with for this key: ES256/ES384/ES512 for EC keys,
    /// PS256 for RSA keys.
    pub fn jws_alg(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "ES256",
            KeyAlgorithm::EcP384 => "ES384",
            KeyAlgorithm::EcP521 => "ES512",
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => "PS256",
        }
    }

    /// A human description: `EC P-256`, `RSA 3072 bits`.
    fn description(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "EC P-256",
            KeyAlgorithm::EcP384 => "EC P-384",
            KeyAlgorithm::EcP521 => "EC P-521",
            KeyAlgorithm::Rsa3072 => "RSA 3072 bits",
            KeyAlgorithm::Rsa4096 => "RSA 4096 bits",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let wanted = s.trim();
        KeyAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                let names: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
                Error::Invalid(format!(
                    "unknown key algorithm {wanted:?}; use one of: {}",
                    names.join(", ")
                ))
            })
    }
}

/// A freshly generated key pair with its self-signed certificate.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: PrivateKeyPem,
    /// The self-signed X.509 certificate to upload to NetSuite, as PEM.
    pub certificate_pem: String,
}

/// What a private key is: algorithm family, size and which JWS alg nsauth signs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The algorithm and size of the key.
    pub algorithm: KeyAlgorithm,
    /// The JWS `alg` nsauth signs assertions with (`ES256`, `PS256`, ...).
    pub jws_alg: &'static str,
    /// A human description: `EC P-256`, `RSA 3072 bits`.
    pub description: String,
}

/// Certificate facts for `nsauth status` and `nsauth doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject as an RFC 4514 string, e.g. `CN=nsauth`.
    pub subject: String,
    /// Start of validity.
    pub not_before: time::OffsetDateTime,
    /// End of validity.
    pub not_after: time::OffsetDateTime,
    /// The certified public key: `EC P-256`, `RSA 3072 bits`, or a note that NetSuite will not
    /// accept it.
    pub key_description: String,
    /// Whole days between `not_before` and `not_after`.
    pub validity_days: i64,
}
