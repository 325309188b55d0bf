//! The checker's own tests: each broken promise is caught, and what is allowed is not.

use super::*;
use crate::bench::Store;

fn op(id: usize, kind: OpKind, start: u64, end: u64, outcome: Outcome) -> Op {
    Op {
        id,
        slot: 0,
        kind,
        skew: 0,
        start_ms: start,
        end_ms: end,
        outcome,
        stdout: String::new(),
        stderr: String::new(),
        store_note: String::new(),
    }
}

fn printing(id: usize, slot: usize, kind: OpKind, start: u64, token: &str) -> Op {
    Op {
        slot,
        stdout: format!("{token}\n"),
        ..op(id, kind, start, start + 50, Outcome::Exit(0))
    }
}

fn slots() -> Vec<Slot> {
    let store = Store {
        label: "sqlite",
        uri: "sqlite:///nowhere".into(),
        env: vec![],
    };
    [("pub", Flavor::Public), ("conf", Flavor::Confidential)]
        .into_iter()
        .map(|(p, flavor)| Slot {
            profile: p.into(),
            store: store.clone(),
            flavor,
            client_id: format!("c-{p}"),
            label: format!("{p}@sqlite"),
        })
        .collect()
}

fn access(token: &str, client: &str, by: IssuedBy, at_ms: u64) -> IssuedToken {
    IssuedToken {
        kind: TokenKind::Access,
        token: token.into(),
        client_id: client.into(),
        chain: format!("chain-{client}"),
        issued_by: by,
        issued_at_ms: at_ms,
        expires_at: at_ms / 1000 + ACCESS_TTL,
        invalidated: None,
    }
}

const T0: u64 = 1_000_000_000;
const SIG: &str = "sigsigsigsigsigsigsigsigsigsigsigsigsigsigs";

/// A campaign of nothing, then a recovery run that finds both grants alive.
fn healthy() -> (Vec<IssuedToken>, History) {
    let a = format!("a.pub.{SIG}");
    let b = format!("b.conf.{SIG}x");
    let ledger = vec![
        access(&a, "c-pub", IssuedBy::AuthorizationCode, T0),
        access(&b, "c-conf", IssuedBy::AuthorizationCode, T0),
    ];
    let mut h = History::default();
    for (slot, t) in [(0, &a), (1, &b)] {
        let id = 100 + slot * 2;
        h.ops.push(Op {
            slot,
            ..op(id, OpKind::RefreshForce, T0 + 10, T0 + 20, Outcome::Exit(0))
        });
        h.ops
            .push(printing(id + 1, slot, OpKind::Recover, T0 + 30, t));
    }
    (ledger, h)
}

fn verdict(ledger: &[IssuedToken], h: &History, secrets: &[String]) -> Verdict {
    let slots = slots();
    let dir = std::env::temp_dir().join("nsauth-chaos-check-test-has-no-logs");
    let judged = Judged {
        slots: &slots,
        secrets,
        logs: &dir,
    };
    check(&judged, h, ledger, 100)
}

fn whats(v: &Verdict) -> Vec<String> {
    v.violations.iter().map(|x| x.what.clone()).collect()
}

#[test]
fn a_healthy_history_passes() {
    let (ledger, h) = healthy();
    let v = verdict(&ledger, &h, &[]);
    assert!(v.violations.is_empty(), "{:?}", whats(&v));
    assert_eq!(v.tokens_checked, 2);
}

#[test]
fn a_token_of_another_client_or_unknown_to_the_emulator_is_caught() {
    let (ledger, mut h) = healthy();
    h.ops
        .push(printing(1, 0, OpKind::Token, T0 + 5, &ledger[1].token));
    h.ops
        .push(printing(2, 0, OpKind::Token, T0 + 5, "forged.token.value"));
    let w = whats(&verdict(&ledger, &h, &[]));
    assert!(
        w.iter()
            .any(|x| x.contains("op #1") && x.contains("client c-conf")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| x.contains("op #2") && x.contains("never issued")),
        "{w:?}"
    );
}

#[test]
fn a_token_killed_by_a_finished_revoke_is_caught_but_not_during_the_revoke() {
    let (mut ledger, mut h) = healthy();
    let old = format!("old.pub.{SIG}y");
    let mut t = access(&old, "c-pub", IssuedBy::AuthorizationCode, T0 - 10_000);
    t.chain = "old-chain".into();
    t.invalidated = Some((Invalidated::Revoked, Some(T0 + 1000)));
    ledger.push(t);
    h.ops
        .push(op(1, OpKind::Revoke, T0 + 900, T0 + 1100, Outcome::Exit(0)));
    h.ops.push(printing(2, 0, OpKind::Token, T0 + 1050, &old));
    h.ops.push(printing(3, 0, OpKind::Token, T0 + 1200, &old));
    let w = whats(&verdict(&ledger, &h, &[]));
    assert!(
        w.iter()
            .any(|x| x.contains("op #3") && x.contains("revoked")),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|x| x.contains("op #2 ")),
        "racing the revoke is allowed: {w:?}"
    );
}

#[test]
fn a_lost_grant_is_caught_and_a_public_one_after_a_dropped_answer_is_excused() {
    let (ledger, mut h) = healthy();
    for o in h.ops.iter_mut().filter(|o| o.kind == OpKind::Recover) {
        o.outcome = Outcome::Exit(3);
        o.stderr = "error: login needed".into();
    }
    let v = verdict(&ledger, &h, &[]);
    assert_eq!(v.violations.len(), 2, "{:?}", whats(&v));
    h.ops
        .push(op(1, OpKind::Token, T0 + 1, T0 + 9, Outcome::Killed));
    h.ops.push(Op {
        slot: 1,
        ..op(2, OpKind::Token, T0 + 1, T0 + 9, Outcome::Killed)
    });
    h.faults.push(Fault {
        what: "kill".into(),
        target: Target::All,
        start_ms: T0 + 5,
        end_ms: T0 + 5,
        may_eat_answers: true,
    });
    let v = verdict(&ledger, &h, &[]);
    assert_eq!(v.excused_losses.len(), 1, "the public one");
    assert_eq!(whats(&v).len(), 1, "the confidential one: {:?}", whats(&v));
    assert!(whats(&v)[0].contains("lost"));
}

#[test]
fn a_token_short_of_min_ttl_or_expired_is_caught() {
    let (ledger, mut h) = healthy();
    let exp_ms = ledger[0].expires_at * 1000;
    h.ops.push(printing(
        1,
        0,
        OpKind::Token,
        exp_ms - 40_000,
        &ledger[0].token,
    ));
    h.ops.push(printing(
        2,
        0,
        OpKind::Token,
        exp_ms + 5_000,
        &ledger[0].token,
    ));
    let mut skewed = printing(3, 0, OpKind::Token, exp_ms + 5_000, &ledger[0].token);
    skewed.skew = 120;
    h.ops.push(skewed);
    let w = whats(&verdict(&ledger, &h, &[]));
    assert!(
        w.iter()
            .any(|x| x.contains("op #1") && x.contains("with 40.0 s left")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| x.contains("op #2") && x.contains("expired 5.0 s before")),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|x| x.starts_with("op #3 ")),
        "a skewed process cannot know: {w:?}"
    );
}

#[test]
fn a_second_refresh_in_one_window_needs_a_reason() {
    let (mut ledger, h) = healthy();
    ledger.push(access(
        &format!("r1.{SIG}1"),
        "c-conf",
        IssuedBy::RefreshToken,
        T0 + 5_000,
    ));
    let v = verdict(&ledger, &h, &[]);
    assert!(
        whats(&v)
            .iter()
            .any(|x| x.contains("two tokens 5000 ms apart")),
        "{:?}",
        whats(&v)
    );
    let mut h2 = h;
    h2.ops.push(Op {
        slot: 1,
        ..op(
            1,
            OpKind::RefreshForce,
            T0 + 4_000,
            T0 + 6_000,
            Outcome::Exit(0),
        )
    });
    let v = verdict(&ledger, &h2, &[]);
    assert!(v.violations.is_empty(), "{:?}", whats(&v));
    assert_eq!(v.excused_refreshes, 1);
}

#[test]
fn secrets_in_stderr_or_other_stdout_are_caught() {
    let (ledger, mut h) = healthy();
    let secret = "client-secret-0123456789abcdef".to_owned();
    h.ops.push(Op {
        stderr: format!("debug: refreshing with {SIG}"),
        ..op(1, OpKind::Token, T0 + 1, T0 + 9, Outcome::Exit(1))
    });
    h.ops.push(Op {
        stdout: format!("{{\"secret\":\"{secret}\"}}"),
        ..op(2, OpKind::Status, T0 + 1, T0 + 9, Outcome::Exit(0))
    });
    let w = whats(&verdict(
        &ledger,
        &h,
        &["store-key-0123456789abcdef".into(), secret],
    ));
    assert!(
        w.iter()
            .any(|x| x.contains("stderr of op #1") && x.contains("token")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| x.contains("stdout of op #2") && x.contains("client secret")),
        "{w:?}"
    );
}

#[test]
fn the_last_grant_change_decides_unless_it_raced() {
    let login = op(1, OpKind::Login, 0, 10, Outcome::Exit(0));
    let revoke = op(2, OpKind::Revoke, 20, 30, Outcome::Exit(0));
    assert_eq!(
        expected(&[&login, &revoke], Flavor::Public),
        Expect::NoGrant("revoked")
    );
    let relogin = op(3, OpKind::Login, 25, 40, Outcome::Exit(0));
    assert_eq!(
        expected(&[&login, &revoke, &relogin], Flavor::Public),
        Expect::Unknown
    );
    let killed = op(4, OpKind::Revoke, 50, 60, Outcome::Killed);
    assert_eq!(
        expected(&[&login, &killed], Flavor::Confidential),
        Expect::Unknown
    );
    let refused = op(5, OpKind::Revoke, 50, 60, Outcome::Exit(2));
    assert_eq!(
        expected(&[&login, &refused], Flavor::Confidential),
        Expect::Grant
    );
    let moved = op(6, OpKind::Migrate, 50, 60, Outcome::Exit(0));
    assert_eq!(
        expected(&[&login, &moved], Flavor::Confidential),
        Expect::Grant
    );
    assert_eq!(
        expected(&[&login, &moved], Flavor::Public),
        Expect::NoGrant("moved to a copy")
    );
}
