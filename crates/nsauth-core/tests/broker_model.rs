//! Property tests of the broker and the recovery journal as one state machine.
//!
//! Random histories of operations (`token`, `token --min-ttl 300`, `refresh --force`, process
//! restarts) from three brokers ("processes") sharing one in-memory store and one journal
//! directory, against an in-process NetSuite emulator, with a fault injected at any store
//! call: errors, conflicts, hangs, writes that land but are reported failed (or never
//! answered), and crashes (the operation's future is dropped at that call, as when the
//! process dies). Two operations sometimes run at once.
//!
//! The third process runs on a host whose clock is an hour ahead.
//!
//! Invariants checked:
//! - every call ends within [`Broker::call_limit`];
//! - an operation sends at most one token request to NetSuite;
//! - no call returns a token of another profile's client;
//! - the live refresh token of every profile is always in the store or the journal: after
//!   the history, a fault-free broker recovers the journal and a forced refresh works
//!   without a new login.
//!
//! Crashes are injected only at store calls, never while NetSuite is answering: a process
//! that dies after NetSuite rotated a public client's refresh token but before it read the
//! answer loses that token, and no client can prevent it.
//!
//! Failing seeds are kept in `broker_model.proptest-regressions` and replayed first.

mod model;

use model::login::{emulator, log_in, REDIRECT};
use model::{Fault, Faulty, Memory, Plan};
use nsauth_core::broker::{Broker, BrokerConfig};
use nsauth_core::http::{Http, HttpConfig};
use nsauth_core::journal::Journal;
use nsauth_core::profile::ProfileName;
use nsauth_core::token::TokenSet;
use nsauth_emulator::{ClientSpec, Emulator};
use proptest::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const USER: &str = "model@example.com";
const PASSWORD: &str = "model-password";
const CLIENTS: [&str; 2] = ["model-alpha", "model-beta"];
const PROFILES: [&str; 2] = ["alpha", "beta"];
const SLOTS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// `token`: min-ttl 300 s (the emulator's tokens live 120 s, so this refreshes) or 0.
    Token {
        slot: usize,
        profile: usize,
        long: bool,
    },
    /// `refresh --force`.
    Force { slot: usize, profile: usize },
    /// The process restarts (a new broker in its slot).
    Restart { slot: usize },
}

#[derive(Clone, Debug)]
struct Step {
    ops: Vec<Op>,
    faults: Vec<Option<Fault>>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SLOTS, 0..2usize, any::<bool>()).prop_map(|(slot, profile, long)| Op::Token { slot, profile, long }),
        2 => (0..SLOTS, 0..2usize).prop_map(|(slot, profile)| Op::Force { slot, profile }),
        1 => (0..SLOTS).prop_map(|slot| Op::Restart { slot }),
    ]
}

fn fault() -> impl Strategy<Value = Option<Fault>> {
    prop_oneof![
        8 => Just(None),
        1 => Just(Some(Fault::Fail)),
        1 => Just(Some(Fault::Busy)),
        1 => Just(Some(Fault::Conflict)),
        1 => Just(Some(Fault::Hang)),
        1 => Just(Some(Fault::AppliedThenFail)),
        1 => Just(Some(Fault::AppliedThenHang)),
        1 => Just(Some(Fault::Crash)),
        1 => Just(Some(Fault::AppliedThenCrash)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::collection::vec(op(), 1..=2),
        prop::collection::vec(fault(), 0..8),
    )
        .prop_map(|(ops, mut faults)| {
            if ops.len() > 1 {
                // Which of two concurrent operations a crash would hit is not defined.
                for f in faults.iter_mut().flatten() {
                    *f = match *f {
                        Fault::Crash => Fault::Fail,
                        Fault::AppliedThenCrash => Fault::AppliedThenFail,
                        other => other,
                    };
                }
            }
            Step { ops, faults }
        })
}

fn http() -> Http {
    Http::with_config(HttpConfig {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(800),
        deadline: Duration::from_millis(800),
        ..HttpConfig::default()
    })
    .expect("http")
}

fn config() -> BrokerConfig {
    BrokerConfig {
        // Raised by Broker::new to HTTP deadline + store timeout, and the wait to twice that.
        lease_ttl: Duration::ZERO,
        wait_limit: Duration::ZERO,
        poll_interval: Duration::from_millis(10),
        max_poll_interval: Duration::from_millis(200),
        store_timeout: Duration::from_millis(150),
        ..BrokerConfig::default()
    }
}

struct World {
    emu: Emulator,
    memory: Arc<Memory>,
    plan: Arc<Mutex<Plan>>,
    dir: tempfile::TempDir,
    names: Vec<ProfileName>,
}

impl World {
    async fn new() -> World {
        let emu = emulator().await;
        emu.add_user(USER, PASSWORD);
        for c in CLIENTS {
            emu.add_client(ClientSpec::public(c, REDIRECT));
        }
        emu.set_access_ttl(120);
        let memory = Arc::new(Memory::default());
        let mut names = Vec::new();
        for (p, client) in PROFILES.iter().zip(CLIENTS) {
            let name = ProfileName::parse(p).unwrap();
            log_in(
                &emu,
                memory.as_ref(),
                &name,
                client,
                (USER, PASSWORD),
                &http(),
            )
            .await;
            names.push(name);
        }
        World {
            emu,
            memory,
            plan: Arc::default(),
            dir: tempfile::tempdir().unwrap(),
            names,
        }
    }

    fn journal(&self) -> Journal {
        journal_in(self.dir.path())
    }

    /// The broker of `slot`; the last slot runs on a host whose clock is an hour ahead.
    fn broker(&self, slot: usize) -> Broker {
        let store = Arc::new(Faulty {
            inner: self.memory.clone(),
            plan: self.plan.clone(),
        });
        let mut cfg = config();
        if slot == SLOTS - 1 {
            cfg.clock = nsauth_core::broker::Clock::offset(time::Duration::hours(1));
        }
        Broker::new(store, http(), cfg).with_journal(self.journal())
    }
}

fn journal_in(dir: &Path) -> Journal {
    Journal::new(dir.join("journal"), Some(dir.join("journal.key")))
}

/// The client an emulator access token was issued to (its `aud[0]` claim).
fn client_of(t: &TokenSet) -> String {
    use base64::Engine as _;
    let payload = t
        .access_token
        .secret()
        .split('.')
        .nth(1)
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["aud"][0].as_str().unwrap_or_default().to_owned()
}

async fn run_op(b: &Broker, names: &[ProfileName], op: &Op) -> Result<(), TestCaseError> {
    let (profile, res) = match *op {
        Op::Restart { .. } => return Ok(()),
        Op::Token { profile, long, .. } => {
            let ttl = Duration::from_secs(if long { 300 } else { 0 });
            (
                profile,
                b.access_token(&names[profile], ttl).await.map(|(t, _)| t),
            )
        }
        Op::Force { profile, .. } => (profile, b.force_refresh(&names[profile]).await),
    };
    if let Ok(t) = res {
        prop_assert_eq!(
            client_of(&t),
            CLIENTS[profile],
            "profile {} got a token of another client",
            PROFILES[profile]
        );
    }
    Ok(())
}

fn slot_of(op: &Op) -> usize {
    match *op {
        Op::Token { slot, .. } | Op::Force { slot, .. } | Op::Restart { slot } => slot,
    }
}

async fn run_history(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let world = World::new().await;
    let mut slots: Vec<Broker> = (0..SLOTS).map(|slot| world.broker(slot)).collect();
    for step in &steps {
        let crash = Arc::new(tokio::sync::Notify::new());
        {
            let mut p = world.plan.lock().unwrap();
            p.faults = step.faults.iter().copied().collect();
            p.crash = Some(crash.clone());
        }
        let limit = slots[0].call_limit();
        let requests = world.emu.counters().token_requests;
        match step.ops.as_slice() {
            [op] => {
                let b = &slots[slot_of(op)];
                let crashed = tokio::select! {
                    r = tokio::time::timeout(limit, run_op(b, &world.names, op)) => {
                        r.map_err(|_| TestCaseError::fail(format!("{op:?} did not end within {limit:?}")))??;
                        false
                    }
                    _ = crash.notified() => true,
                };
                if crashed || matches!(op, Op::Restart { .. }) {
                    slots[slot_of(op)] = world.broker(slot_of(op));
                }
            }
            [a, b] => {
                let (ra, rb) = tokio::join!(
                    tokio::time::timeout(limit, run_op(&slots[slot_of(a)], &world.names, a)),
                    tokio::time::timeout(limit, run_op(&slots[slot_of(b)], &world.names, b)),
                );
                ra.map_err(|_| {
                    TestCaseError::fail(format!("{a:?} did not end within {limit:?}"))
                })??;
                rb.map_err(|_| {
                    TestCaseError::fail(format!("{b:?} did not end within {limit:?}"))
                })??;
            }
            _ => unreachable!("one or two operations a step"),
        }
        let refreshes = world.emu.counters().token_requests - requests;
        prop_assert!(
            refreshes <= step.ops.len() as u64,
            "{refreshes} token requests for {} operations",
            step.ops.len()
        );
        let mut p = world.plan.lock().unwrap();
        p.faults.clear();
        p.crash = None;
    }
    // A fault-free run recovers the journal; then the live refresh token must be the stored one.
    let clean = world.broker(0);
    for name in &world.names {
        let _ = clean.access_token(name, Duration::ZERO).await;
        let forced = clean.force_refresh(name).await;
        let listing = world.journal().listing("memory://model", name);
        prop_assert!(
            forced.is_ok(),
            "profile {name}: the rotated refresh token was lost: {:?}; journal {listing:?}",
            forced.err()
        );
        prop_assert!(listing.pending.is_empty(), "{listing:?}");
    }
    world.emu.shutdown().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("NSAUTH_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn broker_and_journal_keep_every_token(steps in prop::collection::vec(step(), 1..10)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_history(steps))?;
    }
}
