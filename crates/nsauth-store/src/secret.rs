//! Secret newtypes: redacted `Debug`, no `Display`, zeroed on drop.
//!
//! Every secret nsauth handles (client secret, tokens, private keys, PKCE verifier) is one of
//! these types. The value comes out only through `.secret()`.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value itself.
            ///
            /// # Security
            /// Never log, print or put this value into an error message or a command line.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// A short, non-reversible fingerprint (first 12 hex digits of SHA-256) that
            /// can be logged to tell two secrets apart.
            pub fn fingerprint(&self) -> String {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(self.0.as_bytes());
                hex::encode(&digest[..6])
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An OAuth 2.0 client secret of a confidential NetSuite integration.
    ClientSecret
);
secret_type!(
    /// A NetSuite access token (a JWT, valid for 60 minutes).
    AccessToken
);
secret_type!(
    /// A NetSuite refresh token (a JWT whose `exp` says when it ends).
    RefreshToken
);
secret_type!(
    /// A PEM-encoded PKCS#8 private key for the client credentials (M2M) flow.
    PrivateKeyPem
);
secret_type!(
    /// A PKCE code verifier.
    CodeVerifier
);
secret_type!(
    /// An authorization code returned on the redirect.
    AuthorizationCode
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        let t = RefreshToken::new("eyJ.secret.token");
        assert_eq!(format!("{t:?}"), "RefreshToken([redacted])");
        assert_eq!(
            format!("{:?}", Some(t.clone())),
            "Some(RefreshToken([redacted]))"
        );
        assert_eq!(t.secret(), "eyJ.secret.token");
    }

    #[test]
    fn fingerprint_is_stable_and_short() {
        let a = AccessToken::new("abc");
        assert_eq!(a.fingerprint(), AccessToken::new("abc").fingerprint());
        assert_ne!(a.fingerprint(), AccessToken::new("abd").fingerprint());
        assert_eq!(a.fingerprint().len(), 12);
    }
}
