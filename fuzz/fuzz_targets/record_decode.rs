//! Reading stored records: `decode_record` on arbitrary JSON and `StoreKey::open` on
//! arbitrary sealed strings never panic; errors never repeat the data; a record that
//! decodes re-encodes and decodes again; sealing then opening agrees with `decode_record`.
//!
//! The first byte picks the shape of the sealed string handed to `open`:
//! 0 → the rest verbatim; 1 → the right prefix and key id, then the rest verbatim;
//! 2 → the right prefix and key id, then the rest base64-encoded (reaches decryption).
#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use nsauth_core::profile::ProfileName;
use nsauth_core::seal::{decode_record, StoreKey};
use nsauth_core::store::RECORD_SCHEMA;

const MARKER: &str = "SECRETMARK";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    // 1. The record JSON reader.
    let decoded = decode_record(data);
    match &decoded {
        Ok(record) => {
            assert!(
                record.schema <= RECORD_SCHEMA,
                "accepted schema {}",
                record.schema
            );
            let again = serde_json::to_vec(record).expect("a decoded record serialises");
            if let Err(e) = decode_record(&again) {
                panic!("a decoded record does not decode after re-encoding: {e}");
            }
        }
        Err(e) => {
            if contains(data, MARKER.as_bytes()) {
                assert!(!e.contains(MARKER), "the error repeats the data: {e:?}");
            }
        }
    }

    let key = StoreKey::from_bytes([7; 32]);
    let name = ProfileName::parse("p").unwrap();

    // 2. Sealed then opened, the same bytes give the same answer as decode_record.
    let sealed = key.seal(&name, data);
    let opened = key.open_record(&name, &sealed);
    assert_eq!(
        opened.is_ok(),
        decoded.is_ok(),
        "open_record and decode_record disagree"
    );
    if let (Ok(a), Ok(b)) = (&opened, &decoded) {
        assert_eq!(a, b, "open_record and decode_record give different records");
    }

    // 3. `open` on arbitrary sealed strings.
    let Some((&mode, rest)) = data.split_first() else {
        let _ = key.open(&name, "");
        return;
    };
    let text = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => format!(
            "nsauth-sealed-v1:{}:{}",
            key.id(),
            String::from_utf8_lossy(rest)
        ),
        _ => format!("nsauth-sealed-v1:{}:{}", key.id(), B64.encode(rest)),
    };
    match key.open(&name, &text) {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            // Shapes 1 and 2 carry the right prefix and key id: nothing of the ciphertext
            // may come back. (Shape 0 may echo a wrong key id, by design.)
            if mode % 3 != 0 && contains(rest, MARKER.as_bytes()) {
                assert!(!msg.contains(MARKER), "the error repeats the data: {msg:?}");
            }
        }
    }
    let _ = key.open_record(&name, &text);
});
