//! The recovery journal on top of the store under test: entries are applied only to their
//! grant's predecessor, unreadable entries are quarantined, recovery clears the lease of the
//! process that journaled.

use crate::setup::{
    clean_up, config, emulator, expiring_login, journal_in, journaled_broker, load,
    logged_in_profile, tempfile_dir, FailingWrites,
};
use crate::Fixture;
use nsauth_core::journal::Entry;
use nsauth_core::secret::{AccessToken, RefreshToken};
use nsauth_core::token::TokenSet;
use std::time::Duration;

fn foreign_tokens(tag: &str) -> TokenSet {
    let now = time::OffsetDateTime::now_utc();
    TokenSet {
        access_token: AccessToken::new(format!("AT-{tag}")),
        access_expires_at: now + time::Duration::hours(1),
        refresh_token: Some(RefreshToken::new(format!("RT-{tag}"))),
        refresh_expires_at: None,
        obtained_at: now + time::Duration::minutes(5),
    }
}

/// Another project's entry under the same store identity and profile name (what relative
/// URIs produced) is never written into this record nor handed out: the caller gets its own
/// profile's token, the record keeps its refresh token, and the entry is kept aside where
/// `status` lists it.
pub async fn journal_entry_of_another_grant_is_kept_aside(fx: &dyn Fixture) {
    let emu = emulator().await;
    let name = logged_in_profile(fx, &emu).await;
    let store = fx.open().await;
    let before = load(store.as_ref(), &name).await;
    let dir = tempfile_dir();
    // Project A: another client, another chain.
    let mut other_client = before.clone();
    other_client.profile.client_id = "project-a-client".into();
    other_client.tokens = Some(foreign_tokens("a-old"));
    // Same client, but the record has moved on from the token it replaced.
    let mut stale = before.clone();
    stale.tokens = Some(foreign_tokens("b-old"));
    let j = journal_in(&dir);
    for (rec, tag) in [(&other_client, "a-new"), (&stale, "b-new")] {
        j.save(&Entry::new(
            store.describe(),
            &name,
            rec,
            "gone-holder",
            foreign_tokens(tag),
        ))
        .expect("plant entry");
    }
    let b = journaled_broker(fx.open().await, &dir);
    let (t, _) = b
        .access_token(&name, Duration::from_secs(60))
        .await
        .expect("token");
    let own = before.tokens.as_ref().expect("logged in");
    assert_eq!(
        t.access_token.secret(),
        own.access_token.secret(),
        "the caller gets its own profile's token, not another grant's"
    );
    let after = load(store.as_ref(), &name).await;
    assert_eq!(
        after.tokens.as_ref().and_then(|t| t.refresh_token.clone()),
        own.refresh_token,
        "the record keeps its own refresh token"
    );
    let listing = journal_in(&dir).listing(&store.describe(), &name);
    assert!(listing.pending.is_empty(), "{listing:?}");
    assert_eq!(
        listing.kept.len(),
        2,
        "both entries are kept aside: {listing:?}"
    );
    assert!(!b.recovery_pending(&name));
    let _ = std::fs::remove_dir_all(&dir);
    clean_up(store.as_ref(), &name, emu).await;
}

/// Changes the sealed text of the journal entry at `path` so that it no longer opens.
fn damage(path: &std::path::Path) {
    let sealed = std::fs::read_to_string(path).expect("read the planted entry");
    let sealed = sealed.trim_end();
    let cut = sealed.len().saturating_sub(12);
    let flipped: String = sealed[cut..]
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    let damaged = format!("{}{flipped}", &sealed[..cut]);
    std::fs::write(path, damaged).expect("damage the planted entry");
}

/// An entry this process cannot read (sealed under another key, or damaged) does not make
/// `token` spin: it is quarantined, listed, and the call ends with the store's token.
pub async fn unreadable_journal_entry_is_quarantined(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    emu.set_access_ttl(3600);
    let store = fx.open().await;
    let rec = load(store.as_ref(), &name).await;
    let dir = tempfile_dir();
    // Damaged rather than sealed under another key file: `NSAUTH_STORE_KEY`, when set (as
    // for `nsauth conformance` on a local store), is every journal's key, whatever its file.
    let planted = journal_in(&dir)
        .save(&Entry::new(
            store.describe(),
            &name,
            &rec,
            "h",
            foreign_tokens("x"),
        ))
        .expect("plant entry");
    damage(&planted);
    let b = journaled_broker(fx.open().await, &dir);
    // The token expires within 300 s, so this must refresh: the old code looped here forever.
    let got = tokio::time::timeout(
        Duration::from_secs(20),
        b.access_token(&name, Duration::from_secs(300)),
    )
    .await
    .expect("the call ends despite the unreadable entry");
    got.expect("a token");
    let listing = journal_in(&dir).listing(&store.describe(), &name);
    assert_eq!(listing.quarantined.len(), 1, "{listing:?}");
    assert!(listing.pending.is_empty());
    // And the next call does not trip on it again.
    tokio::time::timeout(Duration::from_secs(20), b.force_refresh(&name))
        .await
        .expect("ends")
        .expect("refresh");
    let _ = std::fs::remove_dir_all(&dir);
    clean_up(store.as_ref(), &name, emu).await;
}

/// A process that journaled its tokens exits with its lease still in the record; the next
/// run's recovery clears that lease, so nobody waits for a holder that is done.
pub async fn recovery_clears_the_journaled_holders_lease(fx: &dyn Fixture) {
    let (emu, name) = expiring_login(fx).await;
    emu.set_access_ttl(3600);
    let dir = tempfile_dir();
    let a = journaled_broker(FailingWrites::after(fx.open().await, 1), &dir);
    a.access_token(&name, Duration::from_secs(300))
        .await
        .expect("token, journaled");
    drop(a);
    let store = fx.open().await;
    let stuck = load(store.as_ref(), &name).await;
    assert!(
        stuck.lease.is_some(),
        "the failed save left the lease behind"
    );
    let b = journaled_broker(fx.open().await, &dir);
    b.access_token(&name, Duration::from_secs(60))
        .await
        .expect("token after recovery");
    let rec = load(store.as_ref(), &name).await;
    assert!(
        rec.lease.is_none(),
        "recovery cleared the journaled holder's lease"
    );
    let started = std::time::Instant::now();
    b.force_refresh(&name).await.expect("forced refresh");
    assert!(
        started.elapsed() < config().lease_ttl / 2,
        "a forced refresh did not wait for the dead holder ({:?})",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
    clean_up(store.as_ref(), &name, emu).await;
}
