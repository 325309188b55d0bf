//! The runner behind `nsauth conformance`: a broken store is failed by check name with the
//! assertion as the reason; a hanging check times out instead of hanging the run; every name a
//! run makes carries its prefix and is gone afterwards, failed checks or not; the profiles that
//! were in the store before are left exactly as they were.

use async_trait::async_trait;
use nsauth_conformance::{Fixture, Group, Run, RunReport, ALL_CHECKS};
use nsauth_store::{
    Capabilities, MemoryStore, Precondition, ProfileName, Record, StoreError, TokenStore, Version,
    Versioned,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Shared(Arc<dyn TokenStore>);

#[async_trait]
impl Fixture for Shared {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::clone(&self.0)
    }
}

/// How a test store misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// None: a correct store.
    None,
    /// Every write and delete succeeds whatever its precondition says (a plugin that never
    /// looked at `precondition`).
    IgnoresPreconditions,
    /// `put` never returns.
    PutHangs,
}

/// A `MemoryStore` with a fault, that remembers every name written to it.
#[derive(Debug)]
struct TestStore {
    inner: MemoryStore,
    fault: Fault,
    written: Mutex<Vec<ProfileName>>,
}

impl TestStore {
    fn new(fault: Fault) -> Arc<Self> {
        Arc::new(TestStore {
            inner: MemoryStore::new(),
            fault,
            written: Mutex::new(Vec::new()),
        })
    }
    fn written(&self) -> Vec<ProfileName> {
        self.written.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenStore for TestStore {
    fn describe(&self) -> String {
        "test://".into()
    }
    fn capabilities(&self) -> Capabilities {
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
        self.written.lock().unwrap().push(name.clone());
        let condition = match self.fault {
            Fault::None => condition,
            Fault::PutHangs => std::future::pending().await,
            Fault::IgnoresPreconditions => match self.inner.load(name).await? {
                Some(current) => Precondition::Match(current.version),
                None => Precondition::Create,
            },
        };
        self.inner.put(name, record, condition).await
    }
    async fn delete(&self, name: &ProfileName, v: Option<&Version>) -> Result<(), StoreError> {
        match self.fault {
            Fault::IgnoresPreconditions => self.inner.delete(name, None).await,
            _ => self.inner.delete(name, v).await,
        }
    }
    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.inner.list().await
    }
}

/// Profiles a user had in the store before the run; one looks like another run's scratch
/// profile and one like the names `store_suite!` makes.
const USER_NAMES: [&str; 3] = ["prod", "nsauth-conformance-00000000-mine", "t0123456789-x"];

async fn with_user_profiles(store: &TestStore) -> Vec<(ProfileName, Versioned)> {
    let mut before = Vec::new();
    for raw in USER_NAMES {
        let name = ProfileName::parse(raw).unwrap();
        let record = nsauth_conformance::sample_record(raw);
        store
            .inner
            .put(&name, &record, Precondition::Create)
            .await
            .unwrap();
        before.push((
            name.clone(),
            store.inner.load(&name).await.unwrap().unwrap(),
        ));
    }
    before
}

/// The store holds exactly the user's profiles, unchanged, and every name the run wrote
/// started with its prefix.
async fn only_user_profiles_left(
    store: &TestStore,
    before: &[(ProfileName, Versioned)],
    report: &RunReport,
) {
    let mut want: Vec<ProfileName> = before.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    assert_eq!(store.list().await.unwrap(), want, "scratch profiles left");
    for (name, was) in before {
        let now = store.load(name).await.unwrap().expect("user profile kept");
        assert_eq!(
            (&now.version, &now.record),
            (&was.version, &was.record),
            "{name} was changed"
        );
    }
    let written = store.written();
    assert!(!written.is_empty());
    for name in written {
        assert!(
            name.as_str().starts_with(&report.prefix),
            "{name} was written outside the run's prefix {}",
            report.prefix
        );
    }
    assert!(report.cleanup.problems.is_empty(), "{:?}", report.cleanup);
}

fn contract() -> Vec<nsauth_conformance::CheckInfo> {
    ALL_CHECKS
        .iter()
        .filter(|c| c.group == Group::Contract)
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_ignores_preconditions_fails_by_name_and_leaves_nothing_behind() {
    let store = TestStore::new(Fault::IgnoresPreconditions);
    let before = with_user_profiles(&store).await;
    let mut streamed = Vec::new();
    let report = Run::new()
        .run(Arc::new(Shared(store.clone())), &contract(), |c| {
            streamed.push(c.clone())
        })
        .await;
    assert_eq!(
        streamed, report.checks,
        "each report is handed out as it ends"
    );
    let failed = report.failed();
    for name in [
        "create_only",
        "cas_conflict",
        "delete",
        "version_never_reused_across_delete",
    ] {
        assert!(failed.contains(&name), "{name} must fail: {failed:?}");
    }
    for name in ["round_trip", "missing_is_none", "list", "large_record"] {
        assert!(!failed.contains(&name), "{name} must pass: {failed:?}");
    }
    let create_only = report.checks.iter().find(|c| c.name == "create_only");
    let reason = create_only.unwrap().reason.as_deref().unwrap();
    assert!(
        reason.starts_with("second create: expected Conflict, got Ok("),
        "{reason}"
    );
    assert!(!reason.contains('\n'));
    assert!(!report.passed());
    assert!(
        report.cleanup.removed > 0,
        "the failed checks left profiles for the clean-up: {:?}",
        report.cleanup
    );
    only_user_profiles_left(&store, &before, &report).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_check_times_out_and_the_run_goes_on() {
    let store = TestStore::new(Fault::PutHangs);
    let checks: Vec<_> = ["round_trip", "missing_is_none"]
        .iter()
        .map(|n| *nsauth_conformance::find(n).unwrap())
        .collect();
    let started = Instant::now();
    let report = Run::new()
        .with_timeout(Duration::from_millis(300))
        .run(Arc::new(Shared(store.clone())), &checks, |_| {})
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let hung = &report.checks[0];
    assert_eq!((hung.name, hung.passed), ("round_trip", false));
    assert_eq!(hung.reason.as_deref(), Some("timed out after 300ms"));
    assert!(hung.duration >= Duration::from_millis(300));
    assert!(report.checks[1].passed, "{:?}", report.checks[1]);
    assert_eq!(report.failed(), ["round_trip"]);
}

/// MemoryStore passes every check — the broker, journal and clock ones too — through the
/// runner, with the user's profiles in the store, and they are untouched afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correct_store_passes_every_check_beside_user_profiles() {
    let store = TestStore::new(Fault::None);
    let before = with_user_profiles(&store).await;
    let report = Run::new()
        .run(Arc::new(Shared(store.clone())), ALL_CHECKS, |_| {})
        .await;
    let failing: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failing.is_empty(), "{failing:?}");
    assert_eq!(report.checks.len(), ALL_CHECKS.len());
    assert!(report.passed());
    assert_eq!(
        report.cleanup.removed, 0,
        "passing checks clean up after themselves"
    );
    only_user_profiles_left(&store, &before, &report).await;
}

/// Whether the task the `orphan` check spawned is still alive: its sender is dropped with it.
static ORPHAN_ALIVE: Mutex<Option<tokio::sync::oneshot::Receiver<()>>> = Mutex::new(None);

/// A check that spawns a writer and fails before it is done, as `concurrent_writers` does on a
/// store that loses updates.
fn orphan(
    fx: &dyn Fixture,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        let (alive, watch) = tokio::sync::oneshot::channel::<()>();
        *ORPHAN_ALIVE.lock().unwrap() = Some(watch);
        let (store, name) = (
            fx.open().await,
            nsauth_conformance::scratch_name(fx, "orphan"),
        );
        tokio::spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
            let record = nsauth_conformance::sample_record("late");
            let _ = store.put(&name, &record, Precondition::Create).await;
        });
        panic!("failed half-way");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_a_failed_check_spawned_end_with_it() {
    let store = TestStore::new(Fault::None);
    let check = nsauth_conformance::CheckInfo {
        name: "orphan",
        group: Group::Contract,
        run: orphan,
    };
    let report = Run::new()
        .run(Arc::new(Shared(store.clone())), &[check], |_| {})
        .await;
    assert_eq!(report.failed(), ["orphan"]);
    assert_eq!(report.checks[0].reason.as_deref(), Some("failed half-way"));
    let mut watch = ORPHAN_ALIVE.lock().unwrap().take().expect("the check ran");
    assert_eq!(
        watch.try_recv(),
        Err(tokio::sync::oneshot::error::TryRecvError::Closed),
        "the writer the check spawned still runs after the run, and could write after the clean-up"
    );
}
