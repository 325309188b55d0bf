//! `jwt_exp` on arbitrary tokens: never panics, and an `exp` it returns is in range.
//!
//! The first byte picks the shape: odd → the rest is the token verbatim; even → the rest is
//! the JWT payload (JSON), base64url-encoded between a header and a signature, so the
//! claims parser is reached without the fuzzer having to invent valid base64.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use nsauth_core::token::jwt_exp;

fn check(token: &str) {
    if let Some(t) = jwt_exp(token) {
        let ts = t.unix_timestamp();
        assert!(
            (0..=253_402_300_799).contains(&ts),
            "exp {ts} outside 1970..=9999"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        check("");
        return;
    };
    if mode & 1 == 1 {
        check(&String::from_utf8_lossy(rest));
    } else {
        let payload = URL_SAFE_NO_PAD.encode(rest);
        check(&format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"));
        // Padded payloads are accepted too.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(rest);
        check(&format!("eyJhbGciOiJSUzI1NiJ9.{padded}.c2ln"));
    }
});
