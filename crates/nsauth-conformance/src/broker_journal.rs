//! The recovery journal on top of the store under test: entries are applied only to their
//! grant's predecessor, unreadable entries are quarantined, recovery clears the lease of the
//! process that journaled.

use crate::broker::{config, http, logged_in_profile, tempfile_dir, FailingWrites};
use crate::Fixture;
use nsauth_core::broker::Broker;
use nsauth_core::journal::{Entry, Journal};
use nsauth_core::secret::{AccessToken, RefreshToken};
use nsauth_core::store;
use nsauth_core::token::TokenSet;
use nsauth_emulator::Emulator;
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
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    let name = logged_in_profile(fx, &emu).await;
    let store = fx.open().await;
    let before = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
    let dir = tempfile_dir();
    let journal = || Journal::new(dir.join("journal"), Some(dir.join("journal.key")));
    // Project A: another client, another chain.
    let mut other_client = before.clone();
    other_client.profile.client_id = "project-a-client".into();
    other_client.tokens = Some(foreign_tokens("a-old"));
    // Same client, but the record has moved on from the token it replaced.
    let mut stale = before.clone();
    stale.tokens = Some(foreign_tokens("b-old"));
    let j = journal();
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
    let b = Broker::new(fx.open().await, http(), config()).with_journal(journal());
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
    let after = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
    assert_eq!(
        after.tokens.as_ref().and_then(|t| t.refresh_token.clone()),
        own.refresh_token,
        "the record keeps its own refresh token"
    );
    let listing = journal().listing(&store.describe(), &name);
    assert!(listing.pending.is_empty(), "{listing:?}");
    assert_eq!(
        listing.kept.len(),
        2,
        "both entries are kept aside: {listing:?}"
    );
    assert!(!b.recovery_pending(&name));
    store.delete(&name, None).await.expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}

/// An entry this process cannot read (sealed under another key, or damaged) does not make
/// `token` spin: it is quarantined, listed, and the call ends with the store's token.
pub async fn unreadable_journal_entry_is_quarantined(fx: &dyn Fixture) {
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    emu.set_access_ttl(120);
    let name = logged_in_profile(fx, &emu).await;
    emu.set_access_ttl(3600);
    let store = fx.open().await;
    let rec = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
    let dir = tempfile_dir();
    Journal::new(dir.join("journal"), Some(dir.join("other.key")))
        .save(&Entry::new(
            store.describe(),
            &name,
            &rec,
            "h",
            foreign_tokens("x"),
        ))
        .expect("plant entry");
    let journal = || Journal::new(dir.join("journal"), Some(dir.join("journal.key")));
    let b = Broker::new(fx.open().await, http(), config()).with_journal(journal());
    // The token expires within 300 s, so this must refresh: the old code looped here forever.
    let got = tokio::time::timeout(
        Duration::from_secs(20),
        b.access_token(&name, Duration::from_secs(300)),
    )
    .await
    .expect("the call ends despite the unreadable entry");
    got.expect("a token");
    let listing = journal().listing(&store.describe(), &name);
    assert_eq!(listing.quarantined.len(), 1, "{listing:?}");
    assert!(listing.pending.is_empty());
    // And the next call does not trip on it again.
    tokio::time::timeout(Duration::from_secs(20), b.force_refresh(&name))
        .await
        .expect("ends")
        .expect("refresh");
    store.delete(&name, None).await.expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}

/// A process that journaled its tokens exits with its lease still in the record; the next
/// run's recovery clears that lease, so nobody waits for a holder that is done.
pub async fn recovery_clears_the_journaled_holders_lease(fx: &dyn Fixture) {
    let emu = Emulator::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    emu.set_access_ttl(120);
    let name = logged_in_profile(fx, &emu).await;
    emu.set_access_ttl(3600);
    let dir = tempfile_dir();
    let journal = || Journal::new(dir.join("journal"), Some(dir.join("journal.key")));
    let failing = std::sync::Arc::new(FailingWrites {
        inner: fx.open().await,
        allowed: 1.into(),
    });
    let a = Broker::new(failing, http(), config()).with_journal(journal());
    a.access_token(&name, Duration::from_secs(300))
        .await
        .expect("token, journaled");
    drop(a);
    let store = fx.open().await;
    let stuck = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
    assert!(
        stuck.lease.is_some(),
        "the failed save left the lease behind"
    );
    let b = Broker::new(fx.open().await, http(), config()).with_journal(journal());
    b.access_token(&name, Duration::from_secs(60))
        .await
        .expect("token after recovery");
    let rec = store::load_existing(store.as_ref(), &name)
        .await
        .expect("load")
        .record;
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
    store.delete(&name, None).await.expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}
