//! A correct compare-and-swap store in memory, for tests and examples.

use crate::profile::ProfileName;
use crate::{Capabilities, Precondition, Record, StoreError, TokenStore, Version, Versioned};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// An in-memory [`TokenStore`] that keeps every rule of the contract: compare-and-swap
/// writes, versions never reused for a name (one counter for the whole store, never reset,
/// not even by delete), sorted listing.
///
/// It is what a new backend is measured against (the conformance suite passes on it) and what
/// tests and examples use when no real store is needed. Records live only as long as the value;
/// nothing is encrypted.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    calls: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// The last version handed out.
    counter: u64,
    records: BTreeMap<ProfileName, (u64, Record)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many store calls (load, put, delete, list) this store has answered.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // A panic in another test thread must not make every later call panic too.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn holds(current: Option<u64>, want: &Version) -> bool {
    current.is_some_and(|v| v.to_string() == want.0)
}

#[async_trait]
impl TokenStore for MemoryStore {
    fn describe(&self) -> String {
        "memory://".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            compare_and_swap: true,
            ..Capabilities::default()
        }
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        Ok(self.state().records.get(name).map(|(v, r)| Versioned {
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
        let mut state = self.state();
        let current = state.records.get(name).map(|(v, _)| *v);
        let ok = match &condition {
            Precondition::Create => current.is_none(),
            Precondition::Match(want) => holds(current, want),
        };
        if !ok {
            return Err(StoreError::Conflict(name.to_string()));
        }
        state.counter += 1;
        let v = state.counter;
        state.records.insert(name.clone(), (v, record.clone()));
        Ok(Version(v.to_string()))
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let current = state.records.get(name).map(|(v, _)| *v);
        match (current, version) {
            (None, _) => Err(StoreError::NotFound(name.to_string())),
            (Some(_), Some(want)) if !holds(current, want) => {
                Err(StoreError::Conflict(name.to_string()))
            }
            _ => {
                state.records.remove(name);
                Ok(())
            }
        }
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        Ok(self.state().records.keys().cloned().collect())
    }
}
