//! `parse_token_response` on arbitrary bodies: never panics, and an error never repeats
//! any part of the body (it may hold tokens). Every input carrying the marker checks that
//! the marker does not come back in the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsauth_core::token::parse_token_response;

const MARKER: &str = "SECRETMARK";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    match parse_token_response(data) {
        Ok(parsed) => {
            assert!(
                !parsed.access_token.secret().is_empty(),
                "accepted an empty access_token"
            );
            if let Some(e) = parsed.expires_in {
                assert!(e > 0 && e <= 86_400 * 366, "accepted expires_in {e}");
            }
            if let Some(t) = &parsed.token_type {
                assert!(
                    t.eq_ignore_ascii_case("bearer"),
                    "accepted a non-bearer token_type"
                );
            }
        }
        Err(e) => {
            if contains(data, MARKER.as_bytes()) {
                assert!(
                    !e.contains(MARKER),
                    "the error repeats part of the body: {e:?}"
                );
            }
        }
    }
});
