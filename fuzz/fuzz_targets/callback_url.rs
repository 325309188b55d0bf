//! `parse_callback` on whatever the user pastes: never panics; an accepted callback has a
//! non-empty code and state; oversized or control-character input is always refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsauth_core::flows::{parse_callback, MAX_CALLBACK_LEN};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let result = parse_callback(&input);
    let trimmed = input.trim();
    match result {
        Ok(cb) => {
            assert!(!cb.code.secret().is_empty(), "accepted an empty code");
            assert!(!cb.state.is_empty(), "accepted an empty state");
            assert!(
                trimmed.len() <= MAX_CALLBACK_LEN,
                "accepted oversized input"
            );
            assert!(
                !trimmed.chars().any(char::is_control),
                "accepted input with control characters"
            );
        }
        Err(e) => {
            // Rendering the error must not panic either.
            let _ = e.to_string();
        }
    }
});
