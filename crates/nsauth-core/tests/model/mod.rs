//! The in-memory store (`nsauth_store::MemoryStore`) and a wrapper that injects a fault at
//! any store call; [`login`] puts a logged-in profile in a store.
// Each test binary uses part of this module.
#![allow(dead_code)]

pub mod login;

use async_trait::async_trait;
use nsauth_core::store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_core::{ProfileName, StoreError, TokenStore};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A correct compare-and-swap store in memory; [`MemoryStore::calls`] counts the calls it
/// answered.
pub type Memory = nsauth_store::MemoryStore;

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
