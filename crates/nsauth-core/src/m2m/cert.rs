//! Self-signed certificates for NetSuite, and reading certificates back for status checks.
//!
//! Certificates are built with x509-cert rather than rcgen: rcgen's ring backend has no P-521
//! signature algorithm, and one code path for every key type is easier to trust.

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::asn1::{Any, BitString, GeneralizedTime, OctetString, SetOfVec, UtcTime};
use x509_cert::der::oid::db::rfc4519::CN;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{DateTime, Decode, DecodePem, Encode, EncodePem, Tag};
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::key::{self, LoadedKey};
use super::{pem, CertificateInfo, GeneratedKey, KeyAlgorithm};
use crate::secret::PrivateKeyPem;
use crate::Error;

/// NetSuite refuses certificates valid for more than two years.
pub(crate) const MAX_DAYS: u32 = 730;
/// X.520 upper bound for a common name.
const MAX_SUBJECT_CHARS: usize = 64;

/// Generates a key pair of `alg` and a self-signed certificate for it, ready to upload to
/// NetSuite (Setup > Integration > OAuth 2.0 Client Credentials (M2M) Setup).
///
/// `days` must be 1..=730 (NetSuite takes certificates valid for at most 2 years); `subject`
/// becomes the certificate's common name (CN), 1 to 64 characters. The certificate is valid
/// from five minutes ago (to allow for clock skew) for exactly `days` days. RSA 4096 key
/// generation takes a few seconds: call this from a blocking context.
pub fn generate_key(alg: KeyAlgorithm, days: u32, subject: &str) -> Result<GeneratedKey, Error> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::Invalid(format!(
            "certificate validity must be 1 to {MAX_DAYS} days (NetSuite accepts at most 2 years); got {days}"
        )));
    }
    let subject = subject.trim();
    let chars = subject.chars().count();
    if chars == 0 || chars > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "certificate subject must be 1 to {MAX_SUBJECT_CHARS} printable characters, e.g. the integration name"
        )));
    }
    let private_key = key::generate(alg)?;
    let loaded = LoadedKey::load(&private_key)?;
    let certificate_pem = self_signed(&loaded, subject, OffsetDateTime::now_utc(), days)?;
    Ok(GeneratedKey {
        private_key,
        certificate_pem,
    })
}

/// Reads the first certificate of a PEM file: subject, validity and the certified key.
pub fn inspect_certificate(pem: &str) -> Result<CertificateInfo, Error> {
    let cert = parse(pem)?;
    let tbs = &cert.tbs_certificate;
    let not_before = from_x509_time(tbs.validity.not_before)?;
    let not_after = from_x509_time(tbs.validity.not_after)?;
    Ok(CertificateInfo {
        subject: tbs.subject.to_string(),
        not_before,
        not_after,
        key_description: describe_public_key(&tbs.subject_public_key_info),
        validity_days: (not_after - not_before).whole_days(),
    })
}

/// True when the certificate (the first one in `certificate_pem`) certifies the public half
/// of `key`. Errors when either does not parse or the key is one NetSuite would refuse.
pub fn certificate_matches_key(certificate_pem: &str, key: &PrivateKeyPem) -> Result<bool, Error> {
    let cert = parse(certificate_pem)?;
    let loaded = LoadedKey::load(key)?;
    let ours = SubjectPublicKeyInfoOwned::from_der(loaded.spki_der())
        .map_err(|e| Error::Other(format!("reading the key's public half failed: {e}")))?;
    let theirs = &cert.tbs_certificate.subject_public_key_info;
    Ok(ours.algorithm.oid == theirs.algorithm.oid
        && key::curve_oid(&ours.algorithm) == key::curve_oid(&theirs.algorithm)
        && ours.subject_public_key == theirs.subject_public_key)
}

fn parse(text: &str) -> Result<Certificate, Error> {
    let blocks = pem::blocks(text);
    let Some(block) = blocks.iter().find(|b| b.label == "CERTIFICATE") else {
        return Err(Error::Invalid(
            "this is not a PEM certificate (expected -----BEGIN CERTIFICATE-----); give the certificate file uploaded to NetSuite".into(),
        ));
    };
    Certificate::from_pem(block.text).map_err(|e| {
        Error::Invalid(format!(
            "the certificate PEM is damaged ({e}); export it again or create a new one with: nsauth m2m keygen"
        ))
    })
}

fn self_signed(
    key: &LoadedKey,
    subject: &str,
    now: OffsetDateTime,
    days: u32,
) -> Result<String, Error> {
    let build_failed =
        |e: x509_cert::der::Error| Error::Other(format!("building the certificate failed: {e}"));
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let not_before = now - Duration::minutes(5);
    let not_after = not_before + Duration::days(i64::from(days));
    let name = common_name(subject).map_err(build_failed)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(key.spki_der()).map_err(build_failed)?;
    let signature_algorithm = key.x509_signature_algorithm();
    let tbs_certificate = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial().map_err(build_failed)?,
        signature: signature_algorithm.clone(),
        issuer: name.clone(),
        validity: Validity {
            not_before: to_x509_time(not_before).map_err(build_failed)?,
            not_after: to_x509_time(not_after).map_err(build_failed)?,
        },
        subject: name,
        extensions: Some(extensions(&spki).map_err(build_failed)?),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
    };
    let signature = key.sign_x509(&tbs_certificate.to_der().map_err(build_failed)?)?;
    let cert = Certificate {
        tbs_certificate,
        signature_algorithm,
        signature: BitString::from_bytes(&signature).map_err(build_failed)?,
    };
    cert.to_pem(LineEnding::LF).map_err(build_failed)
}

fn common_name(subject: &str) -> x509_cert::der::Result<Name> {
    let cn = AttributeTypeAndValue {
        oid: CN,
        value: Any::new(Tag::Utf8String, subject.as_bytes())?,
    };
    let rdn = RelativeDistinguishedName::from(SetOfVec::try_from(vec![cn])?);
    Ok(RdnSequence(vec![rdn]))
}

/// A random positive 128-bit serial number.
fn random_serial() -> x509_cert::der::Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes)
}

/// Basic constraints (not a CA) and a subject key identifier (RFC 7093 method 1: the leftmost
/// 160 bits of the SHA-256 of the public key bits).
fn extensions(spki: &SubjectPublicKeyInfoOwned) -> x509_cert::der::Result<Vec<Extension>> {
    let constraints = BasicConstraints {
        ca: false,
        path_len_constraint: None,
    };
    let key_id = Sha256::digest(spki.subject_public_key.raw_bytes());
    let key_id = SubjectKeyIdentifier(OctetString::new(&key_id[..20])?);
    Ok(vec![
        Extension {
            extn_id: BasicConstraints::OID,
            critical: true,
            extn_value: OctetString::new(constraints.to_der()?)?,
        },
        Extension {
            extn_id: SubjectKeyIdentifier::OID,
            critical: false,
            extn_value: OctetString::new(key_id.to_der()?)?,
        },
    ])
}

/// UTCTime through 2049 and GeneralizedTime after, as RFC 5280 asks.
fn to_x509_time(at: OffsetDateTime) -> x509_cert::der::Result<Time> {
    let secs = u64::try_from(at.unix_timestamp()).map_err(|_| Tag::UtcTime.value_error())?;
    let date = DateTime::from_unix_duration(std::time::Duration::from_secs(secs))?;
    if date.year() <= UtcTime::MAX_YEAR {
        Ok(Time::UtcTime(UtcTime::from_date_time(date)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(date)))
    }
}

fn from_x509_time(at: Time) -> Result<OffsetDateTime, Error> {
    let secs = i64::try_from(at.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::Invalid("the certificate has a validity date nsauth cannot represent; create a new one with: nsauth m2m keygen".into()))
}

/// `EC P-256`, `RSA 3072 bits`, or what the key is when NetSuite would not take it.
fn describe_public_key(spki: &SubjectPublicKeyInfoOwned) -> String {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    match spki.algorithm.oid {
        key::OID_RSA_ENCRYPTION => {
            let rsa = spki
                .to_der()
                .ok()
                .and_then(|der| rsa::RsaPublicKey::from_public_key_der(&der).ok());
            match rsa {
                Some(rsa) => format!("RSA {} bits", rsa.n().bits()),
                None => "RSA (damaged public key)".into(),
            }
        }
        key::OID_EC_PUBLIC_KEY => match key::curve_oid(&spki.algorithm) {
            Some(key::OID_P256) => "EC P-256".into(),
            Some(key::OID_P384) => "EC P-384".into(),
            Some(key::OID_P521) => "EC P-521".into(),
            Some(curve) => format!("EC on curve {curve} (not accepted by NetSuite)"),
            None => "EC without a named curve (not accepted by NetSuite)".into(),
        },
        other => format!("key type {other} (not accepted by NetSuite)"),
    }
}
