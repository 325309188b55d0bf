//! The suite checks itself: `nsauth_store::MemoryStore`, the model every backend is measured
//! against, passes every check; a store that ignores versions, and one whose versions
//! restart after a delete, are caught, and the checks they fail are named.

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::{
    Capabilities, MemoryStore, Precondition, ProfileName, Record, StoreError, TokenStore, Version,
    Versioned,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Shared(Arc<dyn TokenStore>);

#[async_trait]
impl Fixture for Shared {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::clone(&self.0)
    }
}

fn memory() -> Shared {
    Shared(Arc::new(MemoryStore::new()))
}

nsauth_conformance::store_suite!(memory());

/// Broken on purpose: a `Match` write succeeds at any version (it writes at the current
/// one instead), so compare-and-swap is gone.
#[derive(Debug, Default)]
struct IgnoresVersions(MemoryStore);

#[async_trait]
impl TokenStore for IgnoresVersions {
    fn describe(&self) -> String {
        "ignores-versions://".into()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.0.load(name).await
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let condition = match condition {
            Precondition::Match(_) => match self.0.load(name).await? {
                Some(current) => Precondition::Match(current.version),
                None => Precondition::Create,
            },
            create => create,
        };
        self.0.put(name, record, condition).await
    }
    async fn delete(&self, name: &ProfileName, v: Option<&Version>) -> Result<(), StoreError> {
        self.0.delete(name, v).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.0.list().await
    }
}

/// Broken on purpose, the way sqlite, file and Vault stores once were: versions count from
/// 1 for each incarnation of a name, so they restart after a delete. Shown version `n` is
/// the inner store's version `base + n`.
#[derive(Debug, Default)]
struct RestartsAfterDelete {
    inner: MemoryStore,
    base: Mutex<HashMap<ProfileName, u64>>,
}

impl RestartsAfterDelete {
    fn base(&self, name: &ProfileName) -> u64 {
        self.base.lock().unwrap().get(name).copied().unwrap_or(0)
    }
    fn shown(&self, name: &ProfileName, inner: &Version) -> Version {
        let n: u64 = inner.0.parse().expect("MemoryStore versions are numbers");
        Version((n - self.base(name)).to_string())
    }
    fn inner_version(&self, name: &ProfileName, shown: &Version) -> Version {
        match shown.0.parse::<u64>() {
            Ok(n) => Version((n + self.base(name)).to_string()),
            Err(_) => shown.clone(),
        }
    }
}

#[async_trait]
impl TokenStore for RestartsAfterDelete {
    fn describe(&self) -> String {
        "restarts-after-delete://".into()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        Ok(self.inner.load(name).await?.map(|v| Versioned {
            version: self.shown(name, &v.version),
            record: v.record,
        }))
    }
    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let inner = match condition {
            Precondition::Match(v) => Precondition::Match(self.inner_version(name, &v)),
            Precondition::Create => Precondition::Create,
        };
        let created = inner == Precondition::Create;
        let written = self.inner.put(name, record, inner).await?;
        if created {
            let n: u64 = written.0.parse().expect("a number");
            self.base.lock().unwrap().insert(name.clone(), n - 1);
        }
        Ok(self.shown(name, &written))
    }
    async fn delete(&self, name: &ProfileName, v: Option<&Version>) -> Result<(), StoreError> {
        let inner = v.map(|v| self.inner_version(name, v));
        self.inner.delete(name, inner.as_ref()).await
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_every_contract_check() {
    let failing = nsauth_conformance::failing_checks(Arc::new(memory())).await;
    assert!(failing.is_empty(), "MemoryStore fails {failing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_without_compare_and_swap_fails_the_suite() {
    let store = Shared(Arc::new(IgnoresVersions::default()));
    let failing = nsauth_conformance::failing_checks(Arc::new(store)).await;
    for check in ["cas_conflict", "version_never_reused_across_delete"] {
        assert!(failing.contains(&check), "{check} must fail: {failing:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_whose_versions_restart_after_delete_fails_the_suite() {
    let store = Shared(Arc::new(RestartsAfterDelete::default()));
    let failing = nsauth_conformance::failing_checks(Arc::new(store)).await;
    assert_eq!(
        failing,
        ["version_never_reused_across_delete"],
        "exactly the version-reuse check catches it"
    );
}
