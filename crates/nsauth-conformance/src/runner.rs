//! Running checks at run time, with a report per check: what `nsauth conformance` does.
//!
//! Each check runs in its own task, on a runtime of its own that is shut down when it ends (so
//! the tasks it spawned end too), with a time limit; a panic (a failed assertion) becomes the
//! check's failure reason. Every profile name a check makes starts with the run's own prefix
//! ([`Fixture::scratch_prefix`]), and after the last check the run lists the store and deletes
//! every name with that prefix, so a check that failed half-way leaves nothing behind and the
//! store's other profiles are never touched.

use crate::suite::{CheckInfo, Group, ALL_CHECKS};
use crate::Fixture;
use async_trait::async_trait;
use nsauth_core::{ProfileName, StoreError, TokenStore};
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Opens a store from its URI, e.g. `nsauth::open_store`.
pub type Opener = fn(&str) -> Result<Arc<dyn TokenStore>, StoreError>;

/// A fixture over a store URI: every [`Fixture::open`] opens a new handle with the given
/// opener, as a separate process would.
pub struct UriFixture {
    uri: String,
    open: Opener,
}

impl UriFixture {
    /// Handles to the store at `uri`, opened by `open`.
    pub fn new(uri: impl Into<String>, open: Opener) -> Self {
        UriFixture {
            uri: uri.into(),
            open,
        }
    }

    /// A new handle, or why the store cannot be opened.
    pub fn try_open(&self) -> Result<Arc<dyn TokenStore>, StoreError> {
        (self.open)(&self.uri)
    }
}

impl std::fmt::Debug for UriFixture {
    // The URI is left out: it is the caller's to show (through the store's `describe`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UriFixture").finish_non_exhaustive()
    }
}

#[async_trait]
impl Fixture for UriFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        let store = self
            .try_open()
            .unwrap_or_else(|e| panic!("cannot open the store: {e}"));
        // One cheap request before the checks time anything: a backend that connects or
        // starts lazily (a plugin's interpreter, a TLS handshake) does so here, not inside a
        // broker check's 2-s store bound. Its answer does not matter.
        if let Ok(name) = ProfileName::parse("nsauth-conformance-warm-up") {
            let _ = store.load(&name).await;
        }
        store
    }
}

/// The caller's fixture, with the run's prefix.
struct Scoped {
    inner: Arc<dyn Fixture>,
    prefix: String,
}

#[async_trait]
impl Fixture for Scoped {
    async fn open(&self) -> Arc<dyn TokenStore> {
        self.inner.open().await
    }
    fn scratch_prefix(&self) -> &str {
        &self.prefix
    }
}

/// How one check went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The check's name, as in [`ALL_CHECKS`].
    pub name: &'static str,
    /// Its group.
    pub group: Group,
    /// Whether it passed.
    pub passed: bool,
    /// Why it failed: the first line of its panic message, or that it timed out.
    pub reason: Option<String>,
    /// How long it ran.
    pub duration: Duration,
}

/// What deleting the run's scratch profiles did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Scratch profiles deleted (those the failed checks left behind).
    pub removed: usize,
    /// One line per problem: the store could not be listed, a name could not be deleted.
    /// Empty when no name with the run's prefix is left.
    pub problems: Vec<String>,
}

/// How a run went.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The prefix of every profile name the run made.
    pub prefix: String,
    /// One report per check, in the order they ran.
    pub checks: Vec<CheckReport>,
    /// The clean-up after the last check.
    pub cleanup: Cleanup,
    /// How long the whole run took.
    pub duration: Duration,
}

impl RunReport {
    /// Every check passed and the scratch profiles are gone.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed) && self.cleanup.problems.is_empty()
    }

    /// The names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }
}

/// One run of the suite: its scratch prefix and each check's time limit.
#[derive(Clone, Debug)]
pub struct Run {
    prefix: String,
    timeout: Duration,
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

impl Run {
    /// Each check's time limit unless [`Run::with_timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

    /// A run with a new prefix, `nsauth-conformance-<8 random hex digits>-`, and the default
    /// time limit.
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Run {
            prefix: format!("nsauth-conformance-{}-", &id[..8]),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Each check fails when it has not ended after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How every profile name this run makes begins.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `checks` on `fixture`, one after another, each in its own task; calls `each` with
    /// every check's report as soon as it ends; then deletes every profile whose name starts
    /// with [`Run::prefix`].
    pub async fn run(
        &self,
        fixture: Arc<dyn Fixture>,
        checks: &[CheckInfo],
        mut each: impl FnMut(&CheckReport),
    ) -> RunReport {
        let started = Instant::now();
        let scoped: Arc<dyn Fixture> = Arc::new(Scoped {
            inner: fixture,
            prefix: self.prefix.clone(),
        });
        let mut reports = Vec::with_capacity(checks.len());
        for check in checks {
            let report = run_one(Arc::clone(&scoped), check, self.timeout).await;
            each(&report);
            reports.push(report);
        }
        let cleanup = clean_up(scoped, self.timeout).await;
        RunReport {
            prefix: self.prefix.clone(),
            checks: reports,
            cleanup,
            duration: started.elapsed(),
        }
    }

    /// Deletes every profile of `fixture`'s store whose name starts with [`Run::prefix`]:
    /// what [`Run::run`] does after the last check, for a caller that stopped a run early
    /// (dropping [`Run::run`]'s future stops the check that was running).
    pub async fn clean_up(&self, fixture: Arc<dyn Fixture>) -> Cleanup {
        let scoped: Arc<dyn Fixture> = Arc::new(Scoped {
            inner: fixture,
            prefix: self.prefix.clone(),
        });
        clean_up(scoped, self.timeout).await
    }
}

/// Runs one check on a runtime of its own (see [`isolated`]), from a blocking thread.
async fn run_one(fixture: Arc<dyn Fixture>, check: &CheckInfo, timeout: Duration) -> CheckReport {
    let started = Instant::now();
    let run = check.run;
    // Dropping `_stop` (this future dropped: the run was stopped) ends the check.
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let reason = tokio::task::spawn_blocking(move || isolated(fixture, run, timeout, stopped))
        .await
        .unwrap_or_else(|e| Some(format!("the check's runtime ended early: {e}")));
    CheckReport {
        name: check.name,
        group: check.group,
        passed: reason.is_none(),
        reason,
        duration: started.elapsed(),
    }
}

/// Runs `run` on a new runtime and shuts that runtime down afterwards, so that every task the
/// check spawned (writers, brokers, its emulator) ends with it: a check that failed half-way
/// leaves no task behind that could write after the clean-up. `None` when it passed, else
/// why not.
fn isolated(
    fixture: Arc<dyn Fixture>,
    run: crate::Check,
    timeout: Duration,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> Option<String> {
    // The check's threads log where the caller's thread does (`nsauth conformance` silences
    // the warnings the checks provoke on purpose).
    let logger = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || {
            // For the thread's whole life: dropping the guard would restore the global logger.
            std::mem::forget(tracing::dispatcher::set_default(&logger));
        })
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Some(format!("cannot start a runtime for the check: {e}")),
    };
    let reason = runtime.block_on(async move {
        let task = tokio::spawn(async move { run(fixture.as_ref()).await });
        tokio::select! {
            joined = tokio::time::timeout(timeout, task) => match joined {
                Ok(Ok(())) => None,
                Ok(Err(e)) if e.is_panic() => Some(panic_reason(e.into_panic())),
                Ok(Err(e)) => Some(format!("the check's task ended early: {e}")),
                Err(_) => Some(format!("timed out after {timeout:?}")),
            },
            _ = stopped => Some("stopped".into()),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    reason
}

/// The first line of a panic's message (what a failed assertion says), at most 300
/// characters, with control characters escaped: it may quote a store's error message, and a
/// plugin's could carry terminal escapes.
fn panic_reason(payload: Box<dyn Any + Send>) -> String {
    let message = match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => String::new(),
        },
    };
    let line = message.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return "panicked without a message".into();
    }
    let line = match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    };
    let mut shown = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Deletes every profile whose name starts with the fixture's prefix, in a task of its own
/// (opening a handle may panic) with the checks' time limit. Up to three passes: a check that
/// timed out may still have had a write in flight when the first pass listed the store.
async fn clean_up(fixture: Arc<dyn Fixture>, timeout: Duration) -> Cleanup {
    let task = tokio::spawn(async move {
        let store = fixture.open().await;
        let prefix = fixture.scratch_prefix();
        let mut cleanup = Cleanup::default();
        for _ in 0..3 {
            cleanup.problems.clear();
            let ours = match scratch_names(store.as_ref(), prefix).await {
                Ok(ours) if ours.is_empty() => return cleanup,
                Ok(ours) => ours,
                Err(problem) => {
                    cleanup.problems.push(problem);
                    continue;
                }
            };
            for name in ours {
                match store.delete(&name, None).await {
                    Ok(()) => cleanup.removed += 1,
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => cleanup
                        .problems
                        .push(format!("cannot delete scratch profile {name}: {e}")),
                }
            }
        }
        match scratch_names(store.as_ref(), prefix).await {
            Ok(left) if left.is_empty() => cleanup.problems.clear(),
            Ok(left) if cleanup.problems.is_empty() => cleanup.problems.push(format!(
                "{} scratch profile(s) are still there, e.g. {}",
                left.len(),
                left[0]
            )),
            Ok(_) => {}
            Err(problem) => cleanup.problems.push(problem),
        }
        cleanup
    });
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(cleanup)) => cleanup,
        Ok(Err(e)) => Cleanup {
            removed: 0,
            problems: vec![match e.try_into_panic() {
                Ok(payload) => format!("cleaning up: {}", panic_reason(payload)),
                Err(e) => format!("cleaning up: {e}"),
            }],
        },
        Err(_) => {
            abort.abort();
            Cleanup {
                removed: 0,
                problems: vec![format!("cleaning up timed out after {timeout:?}")],
            }
        }
    }
}

/// The names in `store` that start with `prefix`, or a one-line problem.
async fn scratch_names(store: &dyn TokenStore, prefix: &str) -> Result<Vec<ProfileName>, String> {
    let all = store
        .list()
        .await
        .map_err(|e| format!("cannot list the store to delete the scratch profiles: {e}"))?;
    Ok(all
        .into_iter()
        .filter(|n| n.as_str().starts_with(prefix))
        .collect())
}

/// Runs every contract check (the [`Group::Contract`] part of [`ALL_CHECKS`]) on `fixture`
/// with a [`Run`] and returns the names of those that failed. Empty when the store keeps the
/// contract. For a test that a broken store is caught, and for a quick report on a new
/// backend.
pub async fn failing_checks(fixture: Arc<dyn Fixture>) -> Vec<&'static str> {
    let contract: Vec<CheckInfo> = ALL_CHECKS
        .iter()
        .filter(|c| c.group == Group::Contract)
        .copied()
        .collect();
    Run::new().run(fixture, &contract, |_| {}).await.failed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_first_line() {
        let reason = |p: Box<dyn Any + Send>| panic_reason(p);
        assert_eq!(
            reason(Box::new(String::from(
                "second create: expected Conflict\n  left: 1"
            ))),
            "second create: expected Conflict"
        );
        assert_eq!(reason(Box::new("static message")), "static message");
        assert_eq!(
            reason(Box::new("plugin said \u{1b}[2Jgone\rback\ttab")),
            "plugin said \\u{1b}[2Jgone\\rback\\ttab",
            "no terminal escapes reach the report"
        );
        assert_eq!(reason(Box::new(42_u8)), "panicked without a message");
        assert_eq!(
            reason(Box::new(String::from("\n"))),
            "panicked without a message"
        );
        let long = reason(Box::new("é".repeat(1000)));
        assert_eq!(long.chars().count(), 303, "cut at 300 characters: {long}");
    }

    #[test]
    fn each_run_has_its_own_valid_prefix() {
        let (a, b) = (Run::new(), Run::new());
        assert_ne!(a.prefix(), b.prefix());
        assert!(a.prefix().starts_with("nsauth-conformance-"));
        assert_eq!(a.prefix().len(), "nsauth-conformance-".len() + 9);
        // The longest name a check makes (odd_names: 64 characters) still fits.
        ProfileName::parse(&format!("{}0123456789-delete-race", a.prefix())).unwrap();
    }
}
