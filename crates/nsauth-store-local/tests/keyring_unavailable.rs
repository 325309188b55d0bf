//! No keychain to reach (a D-Bus session address where nothing listens): the error is a
//! store error on one line that says how to fall back to the key file, and nothing is
//! written. Linux only (elsewhere the keychain is part of the OS); its own test binary because
//! it points the process at a dead bus.
#![cfg(all(feature = "keyring", target_os = "linux"))]

use nsauth_store::StoreError;
use nsauth_store_local::keychain;

#[test]
fn an_unreachable_keychain_says_how_to_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", dir.path().join("no-bus").display()),
    );
    let err =
        keychain::load_or_create("nsauth-test-unreachable", &dir.path().join("lock")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("keychain") && msg.contains("unset NSAUTH_STORE_KEY_SOURCE"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}
