//! An in-memory store and a wrapper that injects a fault at any store call; [`login`] puts a
//! logged-in profile in a store.
// Each test binary uses part of this module.
#![allow(dead_code)]

pub mod login;

use async_trait::async_trait;
use nsauth_core::store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_core::{ProfileName, StoreError, TokenStore};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The last version handed out, and name -> (version, record).
type State = (u64, BTreeMap<ProfileName, (u64, Record)>);

/// A correct compare-and-swap store in memory.
#[derive(Debug, Default)]
pub struct Memory {
    state: Mutex<State>,
    /// Store calls answered (puts, loads).
    pub calls: AtomicU64,
}

#[async_trait]
impl TokenStore for Memory {
    fn describe(&self) -> String {
        "memory://model".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            compare_and_swap: true,
            local: true,
            ..Capabilities::default()
        }
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
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
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap();
        let (counter, records) = &mut *state;
        let current = records.get(name).map(|(v, _)| v.to_string());
        let holds = match (&condition, current) {
            (Precondition::Create, current) => current.is_none(),
            (Precondition::Match(_), None) => false,
            (Precondition::Match(want), Some(v)) => want.0 == v,
        };
        if !holds {
            return Err(StoreError::Conflict(name.to_string()));
        }
        *counter += 1;
        records.insert(name.clone(), (*counter, record.clone()));
        Ok(Version(counter.to_string()))
    }

    async fn delete(&self, name: &ProfileName, _: Option<&Version>) -> Result<(), StoreError> {
        self.state.lock().unwrap().1.remove(name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        Ok(self.state.lock().unwrap().1.keys().cloned().collect())
    }
}

/// A fault for one store call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Unavailable, not retryable; nothing written.
    Fail,
    /// Unavailable, retryable; nothing written.
    Busy,
    /// A put reports a conflict; nothing written.
    Conflict,
    /// No answer ever; nothing written.
    Hang,
    /// A put is written but reported failed.
    AppliedThenFail,
    /// A put is written but never answered.
    AppliedThenHang,
    /// The process dies during the call; nothing written.
    Crash,
    /// The process dies after the put was written.
    AppliedThenCrash,
}

/// The faults of the running operation(s), one per store call in order, and the crash
/// signal of the running operation.
#[derive(Debug, Default)]
pub struct Plan {
    pub faults: VecDeque<Option<Fault>>,
    pub crash: Option<Arc<tokio::sync::Notify>>,
}

/// Wraps a store and applies [`Plan`]'s faults.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<Memory>,
    pub plan: Arc<Mutex<Plan>>,
}

impl Faulty {
    fn next(&self) -> (Option<Fault>, Option<Arc<tokio::sync::Notify>>) {
        let mut p = self.plan.lock().unwrap();
        (p.faults.pop_front().flatten(), p.crash.clone())
    }
}

fn unavailable(retryable: bool) -> StoreError {
    StoreError::Unavailable {
        message: "injected".into(),
        retryable,
    }
}

async fn die(crash: Option<Arc<tokio::sync::Notify>>) -> StoreError {
    if let Some(c) = crash {
        c.notify_one();
    }
    std::future::pending::<StoreError>().await
}

#[async_trait]
impl TokenStore for Faulty {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let (fault, crash) = self.next();
        match fault {
            None | Some(Fault::Conflict) => self.inner.load(name).await,
            Some(Fault::Fail | Fault::AppliedThenFail) => Err(unavailable(false)),
            Some(Fault::Busy) => Err(unavailable(true)),
            Some(Fault::Hang | Fault::AppliedThenHang) => std::future::pending().await,
            Some(Fault::Crash | Fault::AppliedThenCrash) => Err(die(crash).await),
        }
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let (fault, crash) = self.next();
        match fault {
            None => self.inner.put(name, record, condition).await,
            Some(Fault::Fail) => Err(unavailable(false)),
            Some(Fault::Busy) => Err(unavailable(true)),
            Some(Fault::Conflict) => Err(StoreError::Conflict(name.to_string())),
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Crash) => Err(die(crash).await),
            Some(Fault::AppliedThenFail) => {
                self.inner.put(name, record, condition).await?;
                Err(unavailable(false))
            }
            Some(Fault::AppliedThenHang) => {
                self.inner.put(name, record, condition).await?;
                std::future::pending().await
            }
            Some(Fault::AppliedThenCrash) => {
                self.inner.put(name, record, condition).await?;
                Err(die(crash).await)
            }
        }
    }

    async fn delete(&self, name: &ProfileName, v: Option<&Version>) -> Result<(), StoreError> {
        self.inner.delete(name, v).await
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}
