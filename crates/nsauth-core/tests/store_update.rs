//! `store::update` is bounded: a store that never answers, or keeps conflicting, ends the
//! update at its deadline with a store error instead of hanging or looping.

mod model;

use model::{Fault, Faulty, Memory, Plan};
use nsauth_core::account::AccountId;
use nsauth_core::profile::{Profile, ProfileName};
use nsauth_core::store::{update_until, Precondition, Record};
use nsauth_core::TokenStore;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn faulty(faults: Vec<Option<Fault>>) -> (Faulty, ProfileName) {
    let memory = Arc::new(Memory::default());
    let name = ProfileName::parse("p").unwrap();
    let profile = Profile::new(AccountId::parse("1234567").unwrap(), "c");
    memory
        .put(&name, &Record::new(profile), Precondition::Create)
        .await
        .unwrap();
    let plan = Arc::new(Mutex::new(Plan {
        faults: faults.into(),
        crash: None,
    }));
    (
        Faulty {
            inner: memory,
            plan,
        },
        name,
    )
}

#[tokio::test]
async fn a_hanging_store_ends_the_update_at_its_deadline() {
    for fault in [Fault::Hang, Fault::AppliedThenHang] {
        let (store, name) = faulty(vec![None, Some(fault)]).await;
        let started = Instant::now();
        let res = update_until(
            &store,
            &name,
            Instant::now() + Duration::from_millis(300),
            |_| Ok(()),
        )
        .await;
        assert!(
            res.is_err(),
            "{fault:?}: a put that never answers is an error"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{fault:?}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn endless_conflicts_end_at_the_deadline() {
    let faults = std::iter::repeat_n([None, Some(Fault::Conflict)], 1000)
        .flatten()
        .collect();
    let (store, name) = faulty(faults).await;
    let started = Instant::now();
    let res = update_until(
        &store,
        &name,
        Instant::now() + Duration::from_millis(500),
        |_| Ok(()),
    )
    .await;
    assert_eq!(
        res.map(|_| ()).map_err(|e| e.kind()),
        Err(nsauth_core::store::FailureKind::Store)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
