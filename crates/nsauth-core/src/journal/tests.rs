use super::*;
use crate::account::AccountId;
use crate::profile::Profile;
use crate::secret::{AccessToken, RefreshToken};

fn tokens(at: &str, rt: &str) -> TokenSet {
    let now = time::OffsetDateTime::now_utc();
    TokenSet {
        access_token: AccessToken::new(at),
        access_expires_at: now + time::Duration::hours(1),
        refresh_token: Some(RefreshToken::new(rt)),
        refresh_expires_at: None,
        obtained_at: now,
    }
}

fn record(client: &str, rt: &str) -> Record {
    let mut r = Record::new(Profile::new(AccountId::parse("1234567").unwrap(), client));
    r.tokens = Some(tokens("AT-old", rt));
    r
}

fn journal(dir: &Path) -> Journal {
    Journal::new(dir.join("journal"), Some(dir.join("key")))
}

#[test]
fn save_read_remove() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let name = ProfileName::parse("prod").unwrap();
    let entry = Entry::new(
        "sqlite:///x".into(),
        &name,
        &record("c", "RT-1"),
        "h",
        tokens("AT-secret", "RT-secret"),
    );
    assert!(!j.has("sqlite:///x", &name));
    let path = j.save(&entry).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(9).any(|w| w == b"RT-secret"),
        "journal must be sealed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(j.has("sqlite:///x", &name));
    assert!(!j.has("sqlite:///y", &name), "entries are per store");
    assert_eq!(j.read(&path, "sqlite:///x", &name).unwrap(), Some(entry));
    assert!(
        j.read(&path, "sqlite:///y", &name).is_err(),
        "bound to its store"
    );
    j.remove(&path);
    assert!(!j.has("sqlite:///x", &name));
    assert_eq!(
        j.read(&path, "sqlite:///x", &name).unwrap(),
        None,
        "an entry another process recovered meanwhile is not an error"
    );
}

/// Two entries of one store and profile do not overwrite each other.
#[test]
fn entries_do_not_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let name = ProfileName::parse("prod").unwrap();
    let rec = record("c", "RT-1");
    j.save(&Entry::new(
        "s".into(),
        &name,
        &rec,
        "h",
        tokens("A1", "R1"),
    ))
    .unwrap();
    j.save(&Entry::new(
        "s".into(),
        &name,
        &rec,
        "h",
        tokens("A2", "R2"),
    ))
    .unwrap();
    assert_eq!(j.pending("s", &name).len(), 2);
}

#[test]
fn an_entry_applies_only_to_its_grants_predecessor() {
    let name = ProfileName::parse("prod").unwrap();
    let before = record("client-a", "RT-1");
    let e = Entry::new("s".into(), &name, &before, "h", tokens("AT-2", "RT-2"));
    assert_eq!(e.replaced, Some(RefreshToken::new("RT-1").fingerprint()));
    assert_eq!(e.verdict(&before), Verdict::Successor);
    // Another client's record with the same refresh token text: never.
    assert_eq!(e.verdict(&record("client-b", "RT-1")), Verdict::Foreign);
    // The record moved on (another refresh, a new login).
    assert_eq!(e.verdict(&record("client-a", "RT-9")), Verdict::Superseded);
    let mut revoked = before.clone();
    revoked.tokens = None;
    assert_eq!(e.verdict(&revoked), Verdict::Superseded);
    let mut moved = before.clone();
    moved.moved = Some(crate::store::Moved {
        at: time::OffsetDateTime::now_utc(),
        to: "x".into(),
        fingerprints: Vec::new(),
    });
    assert_eq!(e.verdict(&moved), Verdict::Superseded);
    // Already written (a store write that landed but was reported failed).
    let mut done = before.clone();
    done.tokens = Some(e.tokens.clone());
    assert_eq!(e.verdict(&done), Verdict::AlreadyStored);
    // Entries of older versions name no grant: never applied.
    let old = Entry {
        account: None,
        client_id: None,
        ..e
    };
    assert_eq!(old.verdict(&before), Verdict::Foreign);
}

#[test]
fn quarantined_and_kept_entries_leave_the_pending_list_but_stay_listed() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let name = ProfileName::parse("prod").unwrap();
    let rec = record("c", "RT-1");
    let a = j
        .save(&Entry::new(
            "s".into(),
            &name,
            &rec,
            "h",
            tokens("A1", "R1"),
        ))
        .unwrap();
    let b = j
        .save(&Entry::new(
            "s".into(),
            &name,
            &rec,
            "h",
            tokens("A2", "R2"),
        ))
        .unwrap();
    let q = j.quarantine(&a).unwrap();
    let k = j.keep_aside(&b).unwrap();
    assert!(!j.has("s", &name));
    let l = j.listing("s", &name);
    assert_eq!(l.quarantined, vec![q]);
    assert_eq!(l.kept, vec![k]);
    assert!(l.pending.is_empty());
    assert!(j.listing("other", &name).is_empty());
}

/// An entry sealed with another key is reported as unreadable, not as "nothing pending".
#[test]
fn an_entry_under_another_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let name = ProfileName::parse("prod").unwrap();
    let path = journal(dir.path())
        .save(&Entry::new(
            "s".into(),
            &name,
            &record("c", "R"),
            "h",
            tokens("A", "R2"),
        ))
        .unwrap();
    let other = Journal::new(
        dir.path().join("journal"),
        Some(dir.path().join("other-key")),
    );
    assert!(matches!(
        other.read(&path, "s", &name),
        Err(StoreError::Corrupt { .. })
    ));
}
