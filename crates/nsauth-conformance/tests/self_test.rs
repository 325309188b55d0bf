//! The suite checks itself: a correct in-memory store passes every check, and a store
//! without compare-and-swap is caught.

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_core::store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_core::{ProfileName, StoreError, TokenStore};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The last version handed out, and name -> (version, record).
type State = (u64, BTreeMap<ProfileName, (u64, Record)>);

#[derive(Debug, Default)]
struct Memory {
    /// Versions come from one counter, so they never repeat.
    state: Mutex<State>,
    /// Broken on purpose: `Match` writes ignore the version.
    ignore_versions: bool,
}

#[async_trait]
impl TokenStore for Memory {
    fn describe(&self) -> String {
        "memory://".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            compare_and_swap: !self.ignore_versions,
            local: true,
            ..Capabilities::default()
        }
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state.1.get(name).map(|(v, r)| Versioned {
            record: r.clone(),
            version: Version(v.to_string()),
        }))
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let mut state = self.state.lock().unwrap();
        let (counter, records) = &mut *state;
        let current = records.get(name).map(|(v, _)| v.to_string());
        let holds = match (&condition, current) {
            (Precondition::Create, current) => current.is_none(),
            (Precondition::Match(_), None) => false,
            (Precondition::Match(want), Some(v)) => self.ignore_versions || want.0 == v,
        };
        if !holds {
            return Err(StoreError::Conflict(name.to_string()));
        }
        *counter += 1;
        records.insert(name.clone(), (*counter, record.clone()));
        Ok(Version(counter.to_string()))
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let Some((v, _)) = state.1.get(name) else {
            return Err(StoreError::NotFound(name.to_string()));
        };
        if version.is_some_and(|want| want.0 != v.to_string()) {
            return Err(StoreError::Conflict(name.to_string()));
        }
        state.1.remove(name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        Ok(self.state.lock().unwrap().1.keys().cloned().collect())
    }
}

struct MemoryFixture(Arc<Memory>);

impl MemoryFixture {
    fn new(ignore_versions: bool) -> Self {
        Self(Arc::new(Memory {
            ignore_versions,
            ..Memory::default()
        }))
    }
}

#[async_trait]
impl Fixture for MemoryFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::clone(&self.0) as Arc<dyn TokenStore>
    }
}

nsauth_conformance::store_suite!(MemoryFixture::new(false));

#[tokio::test]
#[should_panic(expected = "expected Conflict")]
async fn a_store_without_compare_and_swap_fails_the_suite() {
    nsauth_conformance::cas_conflict(&MemoryFixture::new(true)).await;
}
