//! End to end: `migrate` never wipes the only working tokens of a public client, on the
//! SQLite and the file store. The source is retired only when the destination provably holds
//! its current tokens; otherwise migrate exits 2 and both stores stay as they were.

use async_trait::async_trait;
use nsauth_core::seal::StoreKey;
use nsauth_core::store::{FailureKind, Precondition, Record, Version, Versioned};
use nsauth_core::{ProfileName, StoreError, TokenStore};
use nsauth_e2e::*;
use std::sync::{Arc, Mutex};

fn open(sb: &Sandbox, kind: Kind) -> Arc<dyn TokenStore> {
    let key = StoreKey::from_base64(&sb.key_b64).unwrap();
    match kind {
        Kind::Sqlite => {
            Arc::new(nsauth_store_sqlite::SqliteStore::open(&sb.store_path, key).unwrap())
        }
        Kind::File => Arc::new(nsauth_store_file::FileStore::open(&sb.store_path, key).unwrap()),
    }
}

/// The source still refreshes: its tokens were not wiped.
async fn source_still_works(emu: &nsauth_emulator::Emulator, src: &Sandbox, what: &str) {
    src.ok(&["--profile", "pub", "refresh", "--force"]);
    let t = src.ok(&["--profile", "pub", "token"]);
    assert!(
        token_works(emu, t.trim()).await,
        "{what}: source token refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_created_first_without_tokens_is_refused() {
    let emu = emulator().await;
    for kind in KINDS {
        let (src, dst) = (Sandbox::new(kind), Sandbox::new(kind));
        set_public_profile(&src, &emu, "pub");
        login(&src, "pub").await;
        // Someone ran `profile set` on the destination first: same settings, no tokens.
        set_public_profile(&dst, &emu, "pub");
        let out = src.run(&["--profile", "pub", "migrate", "--to", &dst.store_uri]);
        assert_exit(&out, 2, &["migrate onto a profile without tokens"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(err.contains("without tokens"), "{kind:?}: {err}");
        source_still_works(&emu, &src, &format!("{kind:?}")).await;
        assert_exit(&dst.run(&["--profile", "pub", "token"]), 3, &["dst token"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_holding_older_tokens_is_refused() {
    let emu = emulator().await;
    for kind in KINDS {
        let (src, dst) = (Sandbox::new(kind), Sandbox::new(kind));
        set_public_profile(&src, &emu, "pub");
        login(&src, "pub").await;
        // A first run copied the tokens and died before retiring the source; the source
        // kept refreshing, so the destination's single-use refresh token is spent.
        let name = ProfileName::parse("pub").unwrap();
        let first = open(&src, kind).load(&name).await.unwrap().unwrap().record;
        let mut copy = Record::new(first.profile.clone());
        copy.tokens = first.tokens.clone();
        open(&dst, kind)
            .put(&name, &copy, Precondition::Create)
            .await
            .unwrap();
        src.ok(&["--profile", "pub", "refresh", "--force"]);

        let out = src.run(&["--profile", "pub", "migrate", "--to", &dst.store_uri]);
        assert_exit(&out, 2, &["migrate onto older tokens"]);
        source_still_works(&emu, &src, &format!("{kind:?}")).await;
    }
}

type Hook = Box<dyn FnOnce() + Send>;

/// A store that runs `hook` once, right after its first create-only write succeeded.
#[derive(Debug)]
struct AfterCreate {
    inner: Arc<dyn TokenStore>,
    hook: Mutex<Option<HookBox>>,
}

struct HookBox(Hook);
impl std::fmt::Debug for HookBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hook")
    }
}

#[async_trait]
impl TokenStore for AfterCreate {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn capabilities(&self) -> nsauth_core::store::Capabilities {
        self.inner.capabilities()
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.inner.load(name).await
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let create = condition == Precondition::Create;
        let v = self.inner.put(name, record, condition).await?;
        let hook = self.hook.lock().unwrap().take();
        if let (true, Some(HookBox(h))) = (create, hook) {
            tokio::task::spawn_blocking(h).await.unwrap();
        }
        Ok(v)
    }
    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        self.inner.delete(name, version).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_between_copy_and_retire_is_not_wiped() {
    let emu = emulator().await;
    for kind in KINDS {
        let (src, dst) = (Sandbox::new(kind), Sandbox::new(kind));
        set_public_profile(&src, &emu, "pub");
        login(&src, "pub").await;
        let src = Arc::new(src);
        let refresher = Arc::clone(&src);
        let dst_store = AfterCreate {
            inner: open(&dst, kind),
            hook: Mutex::new(Some(HookBox(Box::new(move || {
                // Another process refreshes the source right after the copy landed.
                refresher.ok(&["--profile", "pub", "refresh", "--force"]);
            })))),
        };
        let name = ProfileName::parse("pub").unwrap();
        let err = nsauth_core::migrate::migrate_profile(
            open(&src, kind).as_ref(),
            &dst_store,
            &name,
            false,
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), FailureKind::Invalid, "{kind:?}: {err}");
        source_still_works(&emu, &src, &format!("{kind:?}")).await;
        assert!(
            dst_store.load(&name).await.unwrap().is_none(),
            "{kind:?}: the stale copy was left in the destination"
        );
        // A re-run copies the current tokens; the destination then works.
        src.ok(&["--profile", "pub", "migrate", "--to", &dst.store_uri]);
        dst.ok(&["--profile", "pub", "refresh", "--force"]);
        let t = dst.ok(&["--profile", "pub", "token"]);
        assert!(token_works(&emu, t.trim()).await, "{kind:?}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_under_another_path_is_refused() {
    let emu = emulator().await;
    for kind in KINDS {
        let src = Sandbox::new(kind);
        set_public_profile(&src, &emu, "pub");
        login(&src, "pub").await;
        // The same store through a symlinked directory: another URI, the same records.
        let alias_dir = src.dir.path().join("alias");
        std::os::unix::fs::symlink(src.dir.path().join("data"), &alias_dir).unwrap();
        let leaf = src.store_path.file_name().unwrap();
        let scheme = match kind {
            Kind::Sqlite => "sqlite",
            Kind::File => "file",
        };
        let alias = format!("{scheme}://{}", alias_dir.join(leaf).display());
        let out = src.run(&["--profile", "pub", "migrate", "--to", &alias]);
        assert_exit(&out, 2, &["migrate onto the same store"]);
        source_still_works(&emu, &src, &format!("{kind:?}")).await;
    }
}
