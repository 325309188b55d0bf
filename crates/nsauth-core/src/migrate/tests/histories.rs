//! Seeded random histories of `migrate` against faults, judged by one checker.

use super::*;

/// Where a token lives: `Some(generation)` when `r` holds a live (not moved) refresh token.
fn live_generation(r: Option<Record>, moved_ok: bool) -> Option<u32> {
    let r = r?;
    if r.moved.is_some() && !moved_ok {
        return None;
    }
    refresh_token(&r)?.strip_prefix("refresh-")?.parse().ok()
}

/// Another process refreshes whichever copy is live, as the broker would: the source while it
/// is not moved, else the destination.
fn refresh_live(src: &Memory, dst: &Memory, latest: &Mutex<u32>) {
    let mut g = latest.lock().unwrap();
    let in_src = live_generation(src.get("pub"), false) == Some(*g);
    let in_dst = src.get("pub").is_some_and(|r| r.moved.is_some())
        && live_generation(dst.get("pub"), true) == Some(*g);
    let (store, mut rec) = match (in_src, in_dst) {
        (true, _) => (src, src.get("pub").unwrap()),
        (false, true) => (dst, dst.get("pub").unwrap()),
        _ => return,
    };
    *g += 1;
    rec.tokens = Some(tokens(*g));
    store.set("pub", rec);
}

/// Seeded random histories: the destination's starting state, a refresh by another process
/// at a random moment, a lost answer on the retire, then migrate run up to three times. The
/// checker: the newest refresh token is never lost (it stays in a live copy), and when
/// migrate reports success the destination holds it and the source is retired.
#[tokio::test]
async fn random_histories_never_lose_the_newest_tokens() {
    use rand::{Rng, SeedableRng};
    for seed in 0..400u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (src, dst) = stores();
        let latest = Arc::new(Mutex::new(1u32));
        src.set("pub", logged_in(true, 1));
        match rng.gen_range(0..4) {
            0 => {}
            1 => dst.set("pub", Record::new(profile(true))),
            2 => dst.set("pub", logged_in(true, 1)),
            _ => {
                // An earlier copy, then the source refreshed on.
                dst.set("pub", logged_in(true, 1));
                refresh_live(&src, &dst, &latest);
            }
        }
        for _ in 0..3 {
            let (s, d, l) = (Arc::clone(&src), Arc::clone(&dst), Arc::clone(&latest));
            let fault: Hook = Box::new(move || refresh_live(&s, &d, &l));
            match rng.gen_range(0..5) {
                0 => *dst.after_create.lock().unwrap() = Some(fault),
                1 => *dst.after_load.lock().unwrap() = Some(fault),
                2 => *src.after_load.lock().unwrap() = Some(fault),
                _ => {}
            }
            *src.lose_next_cas_answer.lock().unwrap() = rng.gen_bool(0.2);
            let last = migrate_profile(src.as_ref(), dst.as_ref(), &name(), false, None).await;
            *dst.after_create.lock().unwrap() = None;
            *dst.after_load.lock().unwrap() = None;
            *src.after_load.lock().unwrap() = None;
            *src.lose_next_cas_answer.lock().unwrap() = false;
            let g = *latest.lock().unwrap();
            let src_live = live_generation(src.get("pub"), false) == Some(g);
            let src_moved = src.get("pub").is_some_and(|r| r.moved.is_some());
            let dst_live = src_moved && live_generation(dst.get("pub"), true) == Some(g);
            assert!(
                src_live || dst_live,
                "seed {seed}: generation {g} lost; src {:?} dst {:?}; last {last:?}",
                src.get("pub")
                    .map(|r| (refresh_token(&r), r.moved.is_some())),
                dst.get("pub").map(|r| refresh_token(&r)),
            );
            if let Ok(Outcome::Copied { .. } | Outcome::AlreadyThere { .. }) = &last {
                assert!(
                    src_moved,
                    "seed {seed}: success reported, source not retired"
                );
                assert!(
                    dst_live,
                    "seed {seed}: success reported, newest tokens not in dst"
                );
            }
        }
    }
}
