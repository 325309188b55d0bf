//! Unit tests of share bundles: round trips with age and SSH keys made here, refusals,
//! files, and export/import over a small in-memory CAS store.

use super::*;
use crate::account::AccountId;
use crate::profile::EndpointOverrides;
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use crate::store::{Capabilities, Version};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::Write;
use std::sync::Mutex;

const SECRET: &str = "client-secret-do-not-leak-7f3a";
const RT: &str = "refresh-token-do-not-leak-91bc";

fn profile(public: bool) -> Profile {
    Profile {
        account_id: AccountId::parse("1234567_SB1").unwrap(),
        client_id: "cid".into(),
        client_secret: (!public).then(|| ClientSecret::new(SECRET)),
        redirect_uri: Some(url::Url::parse("https://example.com/cb").unwrap()),
        scopes: vec!["rest_webservices".into()],
        grant: GrantKind::AuthorizationCode,
        certificate_id: None,
        private_key: None,
        certificate_pem: None,
        endpoints: EndpointOverrides::default(),
        refresh_token_validity_hours: None,
    }
}

fn record(public: bool) -> Record {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut r = Record::new(profile(public));
    r.tokens = Some(TokenSet {
        access_token: AccessToken::new("access-token-do-not-leak"),
        access_expires_at: now + time::Duration::hours(1),
        refresh_token: Some(RefreshToken::new(RT)),
        refresh_expires_at: Some(now + time::Duration::days(7)),
        obtained_at: now,
    });
    r
}

fn bundle() -> Bundle {
    let mut b = Bundle::from_record(&ProfileName::parse("prod").unwrap(), &record(false), true);
    b.exported_at = b.exported_at.replace_nanosecond(0).unwrap();
    b
}

fn x25519() -> (Identity, Recipient) {
    let g = generate_identity();
    (
        Identity::parse(&g.file_contents, "id.txt").unwrap(),
        Recipient::parse(&g.recipient).unwrap(),
    )
}

fn err(r: Result<Bundle, Error>) -> String {
    match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// --- OpenSSH keys made in the test, so that no ssh-keygen is needed -------------------

fn ssh_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn ssh_mpint(out: &mut Vec<u8>, n: &rsa::BigUint) {
    let mut b = n.to_bytes_be();
    if b.first().is_some_and(|x| x & 0x80 != 0) {
        b.insert(0, 0);
    }
    ssh_string(out, &b);
}

/// (public key line, OpenSSH private key file) from a public blob and private fields.
fn openssh(kind: &str, public_blob: Vec<u8>, private_fields: Vec<u8>) -> (String, String) {
    let mut private = vec![0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a];
    private.extend_from_slice(&private_fields);
    ssh_string(&mut private, b"test@nsauth");
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut file = b"openssh-key-v1\0".to_vec();
    for s in [&b"none"[..], b"none", b""] {
        ssh_string(&mut file, s);
    }
    file.extend_from_slice(&1u32.to_be_bytes());
    ssh_string(&mut file, &public_blob);
    ssh_string(&mut file, &private);
    let body = B64.encode(&file);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    (
        format!("{kind} {} test@nsauth", B64.encode(&public_blob)),
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        ),
    )
}

fn ssh_ed25519() -> (String, String) {
    use sha2::Digest;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).unwrap();
    let h = sha2::Sha512::digest(seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&h[..32]);
    let pk = curve25519_dalek::EdwardsPoint::mul_base_clamped(scalar)
        .compress()
        .to_bytes();
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-ed25519");
    ssh_string(&mut blob, &pk);
    let mut fields = Vec::new();
    ssh_string(&mut fields, b"ssh-ed25519");
    ssh_string(&mut fields, &pk);
    ssh_string(&mut fields, &[&seed[..], &pk[..]].concat());
    openssh("ssh-ed25519", blob, fields)
}

fn ssh_rsa() -> (String, String) {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let (p, q) = (&key.primes()[0], &key.primes()[1]);
    let iqmp = key.crt_coefficient().unwrap();
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-rsa");
    ssh_mpint(&mut blob, key.e());
    ssh_mpint(&mut blob, key.n());
    let mut fields = Vec::new();
    ssh_string(&mut fields, b"ssh-rsa");
    for n in [key.n(), key.e(), key.d(), &iqmp, p, q] {
        ssh_mpint(&mut fields, n);
    }
    openssh("ssh-rsa", blob, fields)
}

// --- Round trips ------------------------------------------------------------------------

#[test]
fn x25519_round_trip_keeps_everything_and_hides_secrets() {
    let (id, r) = x25519();
    let b = bundle();
    let ct = seal(&b, &[r]).unwrap();
    assert!(ct.starts_with(b"age-encryption.org/v1\n"));
    for secret in [SECRET, RT, "access-token-do-not-leak", "cid", "1234567"] {
        assert!(
            !ct.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is visible in the bundle"
        );
    }
    let opened = open(&ct, &id).unwrap();
    assert_eq!(opened, b);
    assert_eq!(opened.profile.client_secret.unwrap().secret(), SECRET);
}

#[test]
fn ssh_ed25519_round_trip() {
    let (public, private) = ssh_ed25519();
    let r = Recipient::parse(&public).unwrap();
    assert_eq!(r.kind(), "ssh-ed25519");
    let id = Identity::parse(&private, "id_ed25519").unwrap();
    let b = bundle();
    let ct = seal(&b, &[r]).unwrap();
    assert_eq!(open(&ct, &id).unwrap(), b);
}

#[test]
fn ssh_rsa_and_several_recipients() {
    let (rsa_pub, rsa_priv) = ssh_rsa();
    let (ed_pub, ed_priv) = ssh_ed25519();
    let (x_id, x_r) = x25519();
    let list = format!("# the team\n\n{rsa_pub}\n  {ed_pub}  \n# me\n{x_r}\n");
    let recipients = Recipient::parse_list(&list, "team.txt").unwrap();
    assert_eq!(
        recipients.iter().map(Recipient::kind).collect::<Vec<_>>(),
        ["ssh-rsa", "ssh-ed25519", "age X25519"]
    );
    let ct = seal(&bundle(), &recipients).unwrap();
    for id in [
        Identity::parse(&rsa_priv, "id_rsa").unwrap(),
        Identity::parse(&ed_priv, "id_ed25519").unwrap(),
        x_id,
    ] {
        assert_eq!(open(&ct, &id).unwrap().profile_name.as_str(), "prod");
    }
}

// --- Refusals ---------------------------------------------------------------------------

#[test]
fn tampered_bundles_are_refused() {
    let (id, r) = x25519();
    let ct = seal(&bundle(), &[r]).unwrap();
    // A byte of the payload, of the header MAC, of a recipient stanza; and truncation.
    let header_end = ct.windows(4).position(|w| w == b"\n---").unwrap();
    for at in [ct.len() - 1, ct.len() - 40, header_end + 8, header_end - 5] {
        let mut bad = ct.clone();
        bad[at] ^= 0x01;
        let m = err(open(&bad, &id));
        assert!(
            m.contains("damaged")
                || m.contains("not an nsauth share bundle")
                || m.contains("not encrypted to this"),
            "byte {at}: {m}"
        );
        assert!(
            m.contains("export it again") || m.contains("nsauth share export"),
            "{m}"
        );
    }
    let m = err(open(&ct[..ct.len() - 10], &id));
    assert!(m.contains("damaged"), "{m}");
    let mut bad = ct.clone();
    let last = bad.len() - 20;
    bad[last] ^= 0x80;
    assert!(err(open(&bad, &id)).contains("modified after export"));
}

#[test]
fn wrong_identity_is_refused() {
    let (_, r) = x25519();
    let (other, _) = x25519();
    let ct = seal(&bundle(), &[r]).unwrap();
    let m = err(open(&ct, &other));
    assert!(
        m.contains("not encrypted to this age X25519 identity"),
        "{m}"
    );
    let (_, ed_priv) = ssh_ed25519();
    let m = err(open(&ct, &Identity::parse(&ed_priv, "k").unwrap()));
    assert!(m.contains("not encrypted to this ssh identity"), "{m}");
}

#[test]
fn foreign_files_are_refused() {
    let (id, r) = x25519();
    assert!(err(open(b"{\"format\":\"nsauth-share\"}", &id)).contains("not an age-encrypted file"));
    assert!(err(open(b"", &id)).contains("not an age-encrypted file"));
    let foreign = |json: &str| {
        let enc = age::Encryptor::with_recipients(std::iter::once(r.as_age())).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(json.as_bytes()).unwrap();
        w.finish().unwrap();
        open(&out, &id)
    };
    assert!(err(foreign("hello")).contains("not an nsauth share bundle"));
    assert!(
        err(foreign(r#"{"format":"other","version":1}"#)).contains("not an nsauth share bundle")
    );
    assert!(err(foreign(r#"{"format":"nsauth-share","version":2}"#)).contains("upgrade nsauth"));
    let m = err(foreign(&format!(
        r#"{{"format":"nsauth-share","version":1,"profile_name":"x","profile":{{"client_secret":"{SECRET}"}}}}"#
    )));
    assert!(m.contains("malformed") && !m.contains(SECRET), "{m}");
    // A profile that fails validation (bad scope) is refused.
    let json = String::from_utf8(bundle().to_json().to_vec()).unwrap();
    let m = err(foreign(&json.replace("rest_webservices", "everything")));
    assert!(
        m.contains("profile in it is not valid") && m.contains("unknown scope"),
        "{m}"
    );
}

#[test]
fn recipients_and_identities_are_checked_without_echoing_secrets() {
    let g = generate_identity();
    let secret_line = g.file_contents.lines().last().unwrap().to_owned();
    assert!(secret_line.starts_with("AGE-SECRET-KEY-1"));
    let Err(Error::Invalid(m)) = Recipient::parse(&secret_line) else {
        panic!("a secret key was accepted as a recipient")
    };
    assert!(
        m.contains("private key") && !m.contains(&secret_line[15..]),
        "{m}"
    );
    let (_, ed_priv) = ssh_ed25519();
    let Err(Error::Invalid(m)) = Recipient::parse_list(&ed_priv, "keys.txt") else {
        panic!("a private SSH key was accepted as a recipient")
    };
    assert!(m.contains("private key"), "{m}");
    for bad in ["age1xyz", "ssh-ed25519 AAAA", "hello", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHFliOyIZs1gxGF3fmDxFykQhE88wy6AKDGFBfn0R6ZuvRmENABZQa9+pj9hMki+LX0qDJbmHTiWDbYv/cmFt/Q="] {
        assert!(Recipient::parse(bad).is_err(), "{bad}");
    }
    assert!(Recipient::parse_list("# nobody\n", "f").is_err());
    let m = Identity::parse(&format!("# mine\n{}\n", g.recipient), "id").unwrap_err();
    assert!(m.to_string().contains("public key"), "{m}");
    let m = Identity::parse("garbage line with SECRET", "id").unwrap_err();
    assert!(!m.to_string().contains("SECRET"), "{m}");
    assert!(Identity::parse("# only comments\n", "id").is_err());
    let broken = ed_priv.replace("-----END", "AAAA\n-----END");
    assert!(Identity::parse(&broken, "id").is_err());
    let id = Identity::parse(&g.file_contents, "id").unwrap();
    assert!(!format!("{id:?}").contains("AGE-SECRET"));
    assert!(!format!("{g:?}").contains("AGE-SECRET"));
    assert!(!format!("{:?}", bundle()).contains(SECRET));
    assert!(!format!("{:?}", bundle()).contains(RT));
}

#[test]
fn staged_files_are_private_and_never_replace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.age");
    Staged::write(&path, b"one").unwrap().publish().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"one");
    assert!(Staged::write(&path, b"two").is_err());
    // Created between staging and publishing: still not replaced.
    let other = dir.path().join("c.age");
    let staged = Staged::write(&other, b"three").unwrap();
    std::fs::write(&other, b"theirs").unwrap();
    assert!(staged
        .publish()
        .unwrap_err()
        .to_string()
        .contains("already exists"));
    assert_eq!(std::fs::read(&other).unwrap(), b"theirs");
    drop(Staged::write(&dir.path().join("d.age"), b"x").unwrap());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

// --- Export and import over a store ----------------------------------------------------

/// [`MemoryStore`](nsauth_store::MemoryStore) with injected faults: `conflicts` makes that
/// many writes fail as if someone wrote first.
#[derive(Debug, Default)]
struct Memory {
    store: nsauth_store::MemoryStore,
    conflicts: Mutex<u32>,
    /// The next write is applied, but its caller never hears back (a process killed right
    /// after the store took the write).
    hang_next_write: Mutex<bool>,
}

#[async_trait]
impl TokenStore for Memory {
    fn describe(&self) -> String {
        self.store.describe()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.store.load(name).await
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        {
            let mut conflicts = self.conflicts.lock().unwrap();
            if *conflicts > 0 {
                *conflicts -= 1;
                return Err(StoreError::Conflict(name.to_string()));
            }
        }
        let written = self.store.put(name, record, condition).await?;
        let hang = std::mem::take(&mut *self.hang_next_write.lock().unwrap());
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(written)
    }
    async fn delete(&self, _: &ProfileName, _: Option<&Version>) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        unimplemented!()
    }
}

#[tokio::test]
async fn public_export_with_tokens_moves_the_source_and_imports_create_only() {
    let (src, dst) = (Memory::default(), Memory::default());
    let name = ProfileName::parse("pub").unwrap();
    src.put(&name, &record(true), Precondition::Create)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pub.age");
    let (id, r) = x25519();
    *src.conflicts.lock().unwrap() = 2; // two lost races, then success
    let done = export(&src, &name, std::slice::from_ref(&r), true, &out)
        .await
        .unwrap();
    assert!(done.source_moved && done.public_client && done.with_tokens);
    let rec = src.load(&name).await.unwrap().unwrap().record;
    // The source keeps the fingerprints only: no token that could refresh or revoke.
    assert!(rec.tokens.is_none(), "the moved source kept its tokens");
    let moved = rec.moved.unwrap();
    assert_eq!(moved.to, "share bundle pub.age");
    let rt_fp = crate::secret::RefreshToken::new(RT).fingerprint();
    assert!(
        moved.fingerprints.contains(&rt_fp),
        "{:?}",
        moved.fingerprints
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let b = open(&std::fs::read(&out).unwrap(), &id).unwrap();
    assert_eq!(
        b.tokens
            .as_ref()
            .unwrap()
            .refresh_token
            .as_ref()
            .unwrap()
            .secret(),
        RT
    );
    // The tokens left already: a second export with tokens is refused.
    let again = export(
        &src,
        &name,
        std::slice::from_ref(&r),
        true,
        &dir.path().join("x.age"),
    )
    .await;
    assert!(again.unwrap_err().to_string().contains("already moved"));
    // Import: create-only.
    import(&dst, &b, &name).await.unwrap();
    let got = dst.load(&name).await.unwrap().unwrap().record;
    assert_eq!(got.tokens, b.tokens);
    assert!(got.moved.is_none());
    let e = import(&dst, &b, &name).await.unwrap_err();
    assert!(
        e.to_string().contains("already exists") && e.kind() == crate::store::FailureKind::Invalid,
        "{e}"
    );
    assert_eq!(dst.load(&name).await.unwrap().unwrap().version.0, "1");
}

#[tokio::test]
async fn an_export_killed_after_marking_the_source_leaves_the_tokens_in_the_source() {
    let src = Memory::default();
    let name = ProfileName::parse("pub").unwrap();
    src.put(&name, &record(true), Precondition::Create)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pub.age");
    let (_, r) = x25519();
    *src.hang_next_write.lock().unwrap() = true;
    // The process "dies" once the store took the moved mark, before the bundle is in place.
    let killed = tokio::time::timeout(
        Duration::from_millis(200),
        export(&src, &name, std::slice::from_ref(&r), true, &out),
    )
    .await;
    assert!(killed.is_err(), "the export should have hung on the store");
    assert!(!out.exists(), "no bundle was published");
    let rec = src.load(&name).await.unwrap().unwrap().record;
    assert!(
        rec.moved.is_some(),
        "the source is marked before the bundle exists"
    );
    let rt = rec
        .tokens
        .and_then(|t| t.refresh_token)
        .map(|r| r.secret().to_owned());
    assert_eq!(
        rt.as_deref(),
        Some(RT),
        "the only copy of the single-use refresh token was dropped"
    );
}

#[tokio::test]
async fn confidential_and_profile_only_exports_leave_the_source_alone() {
    let src = Memory::default();
    let name = ProfileName::parse("conf").unwrap();
    src.put(&name, &record(false), Precondition::Create)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (id, r) = x25519();
    let out = dir.path().join("conf.age");
    let done = export(&src, &name, std::slice::from_ref(&r), true, &out)
        .await
        .unwrap();
    assert!(!done.source_moved && !done.public_client);
    assert!(src
        .load(&name)
        .await
        .unwrap()
        .unwrap()
        .record
        .moved
        .is_none());
    // Never overwrites.
    let e = export(&src, &name, std::slice::from_ref(&r), false, &out)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let pub_name = ProfileName::parse("pub").unwrap();
    src.put(&pub_name, &record(true), Precondition::Create)
        .await
        .unwrap();
    let out2 = dir.path().join("profile-only.age");
    let done = export(&src, &pub_name, &[r], false, &out2).await.unwrap();
    assert!(!done.source_moved);
    assert!(open(&std::fs::read(&out2).unwrap(), &id)
        .unwrap()
        .tokens
        .is_none());
    assert!(src
        .load(&pub_name)
        .await
        .unwrap()
        .unwrap()
        .record
        .moved
        .is_none());
}
