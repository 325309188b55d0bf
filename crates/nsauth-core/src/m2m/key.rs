//! Private keys: reading the PEM forms people have, refusing what NetSuite would refuse,
//! generating new ones, and signing with them.

use p256::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding, PrivateKeyInfo,
};
use rand::rngs::OsRng;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::Sha256;
use x509_cert::der::asn1::{Any, AnyRef, ObjectIdentifier};
use x509_cert::der::{Decode, Tag, TagNumber, Tagged};
use x509_cert::spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use super::{pem, KeyAlgorithm, KeyInfo};
use crate::secret::PrivateKeyPem;
use crate::Error;

pub(super) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(super) const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

pub(super) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(super) const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(super) const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

/// What NetSuite accepts, for the end of refusal messages.
pub(super) const ACCEPTED: &str = "NetSuite accepts RSA 3072/4096 or EC P-256/384/521 keys";

const KEYGEN_HINT: &str = "create a new key with: nsauth m2m keygen";

/// Describes a private key after checking that nsauth can sign with it for NetSuite.
///
/// Accepts PKCS#8 (`BEGIN PRIVATE KEY`), SEC1 (`BEGIN EC PRIVATE KEY`) and PKCS#1
/// (`BEGIN RSA PRIVATE KEY`) PEM. Refuses anything else with an [`Error::Invalid`] that says
/// what to do: text that is not a PEM private key, encrypted keys, public keys and certificates,
/// RSA keys other than 3072 or 4096 bits, and curves other than P-256, P-384 and P-521.
pub fn inspect_private_key(key: &PrivateKeyPem) -> Result<KeyInfo, Error> {
    let algorithm = LoadedKey::load(key)?.algorithm();
    Ok(KeyInfo {
        algorithm,
        jws_alg: algorithm.jws_alg(),
        description: algorithm.description().to_owned(),
    })
}

/// Generates a private key and returns it as PKCS#8 PEM.
pub(super) fn generate(algorithm: KeyAlgorithm) -> Result<PrivateKeyPem, Error> {
    let encoded = match algorithm {
        KeyAlgorithm::EcP256 => p256::SecretKey::random(&mut OsRng).to_pkcs8_pem(LineEnding::LF),
        KeyAlgorithm::EcP384 => p384::SecretKey::random(&mut OsRng).to_pkcs8_pem(LineEnding::LF),
        KeyAlgorithm::EcP521 => p521::SecretKey::random(&mut OsRng).to_pkcs8_pem(LineEnding::LF),
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let bits = if algorithm == KeyAlgorithm::Rsa3072 {
                3072
            } else {
                4096
            };
            RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| Error::Other(format!("RSA key generation failed: {e}")))?
                .to_pkcs8_pem(LineEnding::LF)
        }
    };
    let pem = encoded.map_err(|e| Error::Other(format!("encoding the new key failed: {e}")))?;
    Ok(PrivateKeyPem::new(pem.as_str()))
}

/// A private key nsauth can sign with.
pub(super) struct LoadedKey {
    kind: KeyKind,
    /// The public half as SubjectPublicKeyInfo DER.
    spki_der: Vec<u8>,
}

enum KeyKind {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Rsa(RsaPrivateKey, KeyAlgorithm),
}

impl LoadedKey {
    /// Reads a PEM private key, refusing what NetSuite would refuse (see [`inspect_private_key`]).
    pub(super) fn load(key: &PrivateKeyPem) -> Result<Self, Error> {
        let blocks = pem::blocks(key.secret());
        let encrypted = blocks.iter().any(|b| {
            b.label == "ENCRYPTED PRIVATE KEY"
                || b.text
                    .lines()
                    .any(|line| line.starts_with("Proc-Type:") && line.contains("ENCRYPTED"))
        });
        if encrypted {
            return Err(invalid(
                "the private key is encrypted; decrypt it first with: openssl pkey -in KEY.pem -out KEY-plain.pem",
            ));
        }
        let Some(block) = blocks.iter().find(|b| {
            matches!(
                b.label,
                "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY"
            )
        }) else {
            return Err(not_a_private_key(&blocks));
        };
        let (label, der) =
            x509_cert::der::pem::decode_vec(block.text.as_bytes()).map_err(|_| damaged())?;
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => Self::from_pkcs8(&der),
            "EC PRIVATE KEY" => Self::from_sec1(&der),
            _ => Self::from_rsa(RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| damaged())?),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let info = PrivateKeyInfo::try_from(der).map_err(|_| damaged())?;
        match info.algorithm.oid {
            OID_RSA_ENCRYPTION => {
                Self::from_rsa(RsaPrivateKey::from_pkcs8_der(der).map_err(|_| damaged())?)
            }
            OID_EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
                Ok(OID_P256) => {
                    Self::from_p256(p256::SecretKey::from_pkcs8_der(der).map_err(|_| damaged())?)
                }
                Ok(OID_P384) => {
                    Self::from_p384(p384::SecretKey::from_pkcs8_der(der).map_err(|_| damaged())?)
                }
                Ok(OID_P521) => {
                    Self::from_p521(p521::SecretKey::from_pkcs8_der(der).map_err(|_| damaged())?)
                }
                _ => Err(other_curve()),
            },
            _ => Err(invalid(&format!(
                "the private key type is not accepted (only RSA and EC are); {ACCEPTED}; {KEYGEN_HINT}"
            ))),
        }
    }

    /// SEC1 keys name their curve in an optional `[0]` field: use it when present (the
    /// RustCrypto decoders do not check it), otherwise go by the key's size.
    fn from_sec1(der: &[u8]) -> Result<Self, Error> {
        match sec1_curve(der)? {
            Some(OID_P256) => {
                Self::from_p256(p256::SecretKey::from_sec1_der(der).map_err(|_| damaged())?)
            }
            Some(OID_P384) => {
                Self::from_p384(p384::SecretKey::from_sec1_der(der).map_err(|_| damaged())?)
            }
            Some(OID_P521) => {
                Self::from_p521(p521::SecretKey::from_sec1_der(der).map_err(|_| damaged())?)
            }
            Some(_) => Err(other_curve()),
            None => {
                if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
                    Self::from_p256(key)
                } else if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
                    Self::from_p384(key)
                } else if let Ok(key) = p521::SecretKey::from_sec1_der(der) {
                    Self::from_p521(key)
                } else {
                    Err(other_curve())
                }
            }
        }
    }

    fn from_p256(key: p256::SecretKey) -> Result<Self, Error> {
        let spki_der = spki_der(key.public_key().to_public_key_der())?;
        Ok(Self {
            kind: KeyKind::P256(key.into()),
            spki_der,
        })
    }

    fn from_p384(key: p384::SecretKey) -> Result<Self, Error> {
        let spki_der = spki_der(key.public_key().to_public_key_der())?;
        Ok(Self {
            kind: KeyKind::P384(key.into()),
            spki_der,
        })
    }

    fn from_p521(key: p521::SecretKey) -> Result<Self, Error> {
        let spki_der = spki_der(key.public_key().to_public_key_der())?;
        let scalar = Zeroizing::new(key.to_bytes());
        let signing = p521::ecdsa::SigningKey::from_bytes(&scalar).map_err(|_| damaged())?;
        Ok(Self {
            kind: KeyKind::P521(signing),
            spki_der,
        })
    }

    fn from_rsa(key: RsaPrivateKey) -> Result<Self, Error> {
        let algorithm = match key.n().bits() {
            3072 => KeyAlgorithm::Rsa3072,
            4096 => KeyAlgorithm::Rsa4096,
            bits => {
                return Err(invalid(&format!(
                    "the private key is RSA {bits} bits; {ACCEPTED}; {KEYGEN_HINT}"
                )))
            }
        };
        key.validate().map_err(|_| damaged())?;
        let spki_der = spki_der(key.to_public_key().to_public_key_der())?;
        Ok(Self {
            kind: KeyKind::Rsa(key, algorithm),
            spki_der,
        })
    }

    /// The key's algorithm and size.
    pub(super) fn algorithm(&self) -> KeyAlgorithm {
        match &self.kind {
            KeyKind::P256(_) => KeyAlgorithm::EcP256,
            KeyKind::P384(_) => KeyAlgorithm::EcP384,
            KeyKind::P521(_) => KeyAlgorithm::EcP521,
            KeyKind::Rsa(_, algorithm) => *algorithm,
        }
    }

    /// The public half as SubjectPublicKeyInfo DER.
    pub(super) fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// A JWS signature of `message` with [`KeyAlgorithm::jws_alg`]: ECDSA as raw `r || s`,
    /// RSA as RSASSA-PSS with SHA-256 and a 32-byte salt.
    pub(super) fn sign_jws(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(match &self.kind {
            KeyKind::P256(key) => Signer::<p256::ecdsa::Signature>::try_sign(key, message)
                .map_err(signing_failed)?
                .to_vec(),
            KeyKind::P384(key) => Signer::<p384::ecdsa::Signature>::try_sign(key, message)
                .map_err(signing_failed)?
                .to_vec(),
            KeyKind::P521(key) => Signer::<p521::ecdsa::Signature>::try_sign(key, message)
                .map_err(signing_failed)?
                .to_vec(),
            KeyKind::Rsa(key, _) => rsa::pss::BlindedSigningKey::<Sha256>::new(key.clone())
                .try_sign_with_rng(&mut OsRng, message)
                .map_err(signing_failed)?
                .to_vec(),
        })
    }

    /// The X.509 signature algorithm [`Self::sign_x509`] produces.
    pub(super) fn x509_signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        let (oid, parameters) = match &self.kind {
            KeyKind::P256(_) => (OID_ECDSA_SHA256, None),
            KeyKind::P384(_) => (OID_ECDSA_SHA384, None),
            KeyKind::P521(_) => (OID_ECDSA_SHA512, None),
            KeyKind::Rsa(..) => (OID_SHA256_WITH_RSA, Some(Any::null())),
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }

    /// An X.509 signature of `message`: ECDSA as DER with the curve's hash, RSA as
    /// PKCS#1 v1.5 with SHA-256.
    pub(super) fn sign_x509(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(match &self.kind {
            KeyKind::P256(key) => Signer::<p256::ecdsa::Signature>::try_sign(key, message)
                .map_err(signing_failed)?
                .to_der()
                .to_vec(),
            KeyKind::P384(key) => Signer::<p384::ecdsa::Signature>::try_sign(key, message)
                .map_err(signing_failed)?
                .to_der()
                .to_vec(),
            KeyKind::P521(key) => Signer::<p521::ecdsa::Signature>::try_sign(key, message)
                .map_err(signing_failed)?
                .to_der()
                .to_vec(),
            KeyKind::Rsa(key, _) => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
                .try_sign(message)
                .map_err(signing_failed)?
                .to_vec(),
        })
    }
}

/// The named curve of an EC SubjectPublicKeyInfo or PKCS#8 algorithm identifier.
pub(super) fn curve_oid(algorithm: &AlgorithmIdentifierOwned) -> Option<ObjectIdentifier> {
    algorithm.parameters.as_ref()?.decode_as().ok()
}

/// The named curve of a SEC1 `ECPrivateKey` (RFC 5915), read without copying the secret:
/// `SEQUENCE { version, privateKey, [0] EXPLICIT parameters OPTIONAL, [1] publicKey OPTIONAL }`.
fn sec1_curve(der: &[u8]) -> Result<Option<ObjectIdentifier>, Error> {
    let fields = Vec::<AnyRef<'_>>::from_der(der).map_err(|_| damaged())?;
    let parameters = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    match fields.iter().find(|field| field.tag() == parameters) {
        Some(field) => ObjectIdentifier::from_der(field.value())
            .map(Some)
            .map_err(|_| other_curve()),
        None => Ok(None),
    }
}

fn spki_der<E>(encoded: Result<x509_cert::der::Document, E>) -> Result<Vec<u8>, Error> {
    encoded
        .map(|doc| doc.into_vec())
        .map_err(|_| Error::Other("encoding the public key failed".into()))
}

fn signing_failed(e: rsa::signature::Error) -> Error {
    Error::Other(format!("signing with the private key failed: {e}"))
}

fn invalid(message: &str) -> Error {
    Error::Invalid(message.to_owned())
}

fn damaged() -> Error {
    invalid(&format!(
        "the private key PEM is damaged (its contents do not decode); export the key again or {KEYGEN_HINT}"
    ))
}

fn other_curve() -> Error {
    invalid(&format!(
        "the private key is EC on a curve other than P-256, P-384 or P-521 (or is damaged); {ACCEPTED}; {KEYGEN_HINT}"
    ))
}

fn not_a_private_key(blocks: &[pem::Block<'_>]) -> Error {
    let public = blocks
        .iter()
        .any(|b| b.label.ends_with("PUBLIC KEY") || b.label.ends_with("CERTIFICATE"));
    if public {
        invalid("this is a public key or certificate, not a private key; give the private key (-----BEGIN PRIVATE KEY-----)")
    } else if blocks.iter().any(|b| b.label == "OPENSSH PRIVATE KEY") {
        invalid("OpenSSH private keys are not supported; convert a copy with: ssh-keygen -p -m PKCS8 -f KEY")
    } else {
        invalid("this is not a PEM private key (expected -----BEGIN PRIVATE KEY-----); give the key file nsauth m2m keygen or openssl wrote")
    }
}
