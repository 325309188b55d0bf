//! Certificate rotation for client-credentials profiles (`nsauth m2m rotate`).
//!
//! A rotation has three steps, and the profile keeps minting tokens with its current key the
//! whole time:
//! 1. [`rotate`] makes a new key and self-signed certificate and stores them as the record's
//!    `next_certificate`, by compare-and-swap. The key exists only in memory until that write,
//!    and only in the (sealed) record after it; the certificate is public.
//! 2. The NetSuite administrator maps the certificate (NetSuite allows up to five active
//!    certificates per integration, so old and new work side by side) and sends back its ID.
//! 3. `nsauth profile set NAME --certificate-id NEW_ID` calls [`switch_certificate`]: the next
//!    key becomes current, and the old one is kept as `previous_certificate` (so that
//!    `profile set --certificate-id OLD_ID` switches back) until [`finish`] forgets it.

use time::OffsetDateTime;

use super::{cert, generate_key, inspect_certificate, inspect_private_key, KeyAlgorithm};
use crate::profile::{GrantKind, StoredCertificate};
use crate::store::{self, Record, TokenStore};
use crate::{Error, ProfileName};

/// Validity of a rotated certificate when `--days` is not given.
pub const DEFAULT_DAYS: u32 = 365;

/// What to make.
#[derive(Clone, Debug)]
pub struct RotateRequest {
    /// The key algorithm; `None` keeps the algorithm of the current key (EC P-256 when that
    /// cannot be read).
    pub algorithm: Option<KeyAlgorithm>,
    /// Certificate validity in days, 1 to 730.
    pub days: u32,
    /// The certificate's common name.
    pub subject: String,
    /// Replace a next certificate that is already waiting, instead of refusing.
    pub replace: bool,
}

/// What [`rotate`] made.
#[derive(Clone, Debug)]
pub struct Rotated {
    /// The certificate to upload to NetSuite (public).
    pub certificate_pem: String,
    /// Its validity and key.
    pub info: super::CertificateInfo,
    /// The key algorithm used.
    pub algorithm: KeyAlgorithm,
    /// `true` when a waiting next certificate was replaced (`--replace`).
    pub replaced: bool,
}

/// Refuses validities NetSuite would refuse, with a one-line message.
pub fn check_days(days: u32) -> Result<(), Error> {
    if (1..=cert::MAX_DAYS).contains(&days) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "--days {days} is refused: NetSuite accepts certificates valid for at most two years ({} days); use --days 1 to {}",
        cert::MAX_DAYS,
        cert::MAX_DAYS
    )))
}

/// Makes a new key and certificate for profile `name` and stores them as its next certificate.
/// Nothing is written unless the whole record write succeeds; the current key keeps working.
pub async fn rotate(
    store: &dyn TokenStore,
    name: &ProfileName,
    request: RotateRequest,
) -> Result<Rotated, Error> {
    check_days(request.days)?;
    let current = store::load_existing(store, name).await?.record;
    // Refuse before spending seconds on an RSA key.
    check_can_begin(&current, name, request.replace)?;
    let algorithm = request
        .algorithm
        .or_else(|| {
            let key = current.profile.private_key.as_ref()?;
            inspect_private_key(key).ok().map(|i| i.algorithm)
        })
        .unwrap_or(KeyAlgorithm::EcP256);
    let (days, subject) = (request.days, request.subject.clone());
    let generated = tokio::task::spawn_blocking(move || generate_key(algorithm, days, &subject))
        .await
        .map_err(|e| Error::Other(format!("key generation stopped: {e}")))??;
    let info = inspect_certificate(&generated.certificate_pem)?;
    let next = StoredCertificate {
        private_key: generated.private_key,
        certificate_pem: generated.certificate_pem.clone(),
        certificate_id: None,
        created_at: OffsetDateTime::now_utc(),
    };
    let (replaced, _) = store::update(store, name, |rec| {
        begin(rec, name, next.clone(), request.replace)
    })
    .await?;
    Ok(Rotated {
        certificate_pem: generated.certificate_pem,
        info,
        algorithm,
        replaced,
    })
}

/// Stores `next` as the record's next certificate. Refuses a profile that is not
/// client-credentials, and a second rotation while one waits unless `replace`. Returns whether
/// a waiting certificate was replaced.
pub fn begin(
    rec: &mut Record,
    name: &ProfileName,
    next: StoredCertificate,
    replace: bool,
) -> Result<bool, Error> {
    let replaced = check_can_begin(rec, name, replace)?;
    rec.next_certificate = Some(next);
    Ok(replaced)
}

fn check_can_begin(rec: &Record, name: &ProfileName, replace: bool) -> Result<bool, Error> {
    if rec.profile.grant != GrantKind::ClientCredentials {
        return Err(Error::Invalid(format!(
            "profile {name} does not use client credentials; only M2M certificates can be rotated"
        )));
    }
    match &rec.next_certificate {
        Some(waiting) if !replace => Err(Error::Invalid(format!(
            "a new certificate for profile {name} has been waiting since {}; upload it and run `nsauth profile set {name} --certificate-id NEW_ID`, print it again with `nsauth m2m rotate --profile {name} --show`, or make another with --replace",
            crate::token::format_time(waiting.created_at)
        ))),
        waiting => Ok(waiting.is_some()),
    }
}

/// What `profile set --certificate-id` did to the certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// No rotation involved.
    Unchanged,
    /// The next certificate became current; the old one is kept as previous.
    ToNext,
    /// The previous certificate became current again; the other one is kept as previous.
    BackToPrevious,
}

/// Applies a certificate ID change made by `profile set` to a rotation. Call it after the new
/// profile is in `rec`, with the certificate ID the record had before (`old_id`) and whether a
/// private key file was given explicitly (then the key is the user's choice: nothing switches).
///
/// When the ID changed and a next certificate waits, the next key becomes current under the
/// new ID; when the ID is the previous certificate's, the previous key comes back.
pub fn switch_certificate(rec: &mut Record, old_id: Option<&str>, key_given: bool) -> Switch {
    let new_id = rec.profile.certificate_id.clone();
    if key_given || new_id.is_none() || new_id.as_deref() == old_id {
        return Switch::Unchanged;
    }
    let into_current = if let Some(next) = rec.next_certificate.take() {
        (next, Switch::ToNext)
    } else if let Some(prev) = rec
        .previous_certificate
        .take_if(|p| p.certificate_id == new_id)
    {
        (prev, Switch::BackToPrevious)
    } else {
        return Switch::Unchanged;
    };
    let (incoming, switch) = into_current;
    let outgoing = rec
        .profile
        .private_key
        .take()
        .map(|private_key| StoredCertificate {
            private_key,
            certificate_pem: rec.profile.certificate_pem.take().unwrap_or_default(),
            certificate_id: old_id.map(str::to_owned),
            created_at: OffsetDateTime::now_utc(),
        });
    rec.profile.private_key = Some(incoming.private_key);
    rec.profile.certificate_pem = Some(incoming.certificate_pem);
    if outgoing.is_some() {
        rec.previous_certificate = outgoing;
    }
    switch
}

/// Forgets the previous certificate's key (after it was removed in NetSuite). Returns it, or
/// `None` when there was none.
pub fn finish(rec: &mut Record) -> Option<StoredCertificate> {
    rec.previous_certificate.take()
}

/// Drops a waiting next certificate. Returns it, or `None` when there was none.
pub fn cancel(rec: &mut Record) -> Option<StoredCertificate> {
    rec.next_certificate.take()
}

/// One certificate of a profile, for `nsauth status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateStatus {
    /// `active` (signs assertions now), `next` (waiting for upload and switch-over) or
    /// `previous` (replaced, kept until `m2m rotate --finish`).
    pub role: &'static str,
    /// The NetSuite certificate ID, when known.
    pub certificate_id: Option<String>,
    /// End of validity, when the certificate is known and readable.
    pub not_after: Option<OffsetDateTime>,
}

/// Every certificate the record holds, the active one first.
pub fn certificates(rec: &Record) -> Vec<CertificateStatus> {
    let not_after = |pem: Option<&str>| {
        pem.and_then(|p| inspect_certificate(p).ok())
            .map(|i| i.not_after)
    };
    let mut out = Vec::new();
    if rec.profile.grant == GrantKind::ClientCredentials || rec.profile.private_key.is_some() {
        out.push(CertificateStatus {
            role: "active",
            certificate_id: rec.profile.certificate_id.clone(),
            not_after: not_after(rec.profile.certificate_pem.as_deref()),
        });
    }
    for (role, c) in [
        ("next", &rec.next_certificate),
        ("previous", &rec.previous_certificate),
    ] {
        if let Some(c) = c {
            out.push(CertificateStatus {
                role,
                certificate_id: c.certificate_id.clone(),
                not_after: not_after(Some(&c.certificate_pem)),
            });
        }
    }
    out
}
