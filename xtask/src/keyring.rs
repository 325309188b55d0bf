//! `cargo xtask keyring-test`: the OS-keychain key source against a real Secret Service —
//! gnome-keyring in a private D-Bus session (`dbus-run-session`), its login keyring created
//! and unlocked headless with a throwaway password in a temporary `XDG_DATA_HOME` (so the
//! user's own keyrings are not touched). Installs the Debian packages when they are missing
//! and apt-get can run (as root). Not part of `cargo xtask ci`: it needs those packages.

use std::path::Path;
use std::process::Command;

const PACKAGES: [&str; 3] = ["gnome-keyring", "dbus-user-session", "dbus-x11"];

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn install_if_missing() -> Result<(), String> {
    if have("gnome-keyring-daemon") && have("dbus-run-session") {
        return Ok(());
    }
    if !have("apt-get") {
        return Err(format!(
            "gnome-keyring-daemon or dbus-run-session is missing; install {} with your package manager",
            PACKAGES.join(", ")
        ));
    }
    let mut apt = Command::new("apt-get");
    apt.args(["install", "-y", "--no-install-recommends"])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive");
    crate::run(&mut apt).map_err(|e| {
        format!(
            "{e}; install {} (as root) and run again",
            PACKAGES.join(", ")
        )
    })
}

pub fn run() -> Result<(), String> {
    install_if_missing()?;
    let test = [
        "test",
        "-p",
        "nsauth-store-local",
        "--features",
        "keyring",
        "--test",
        "keyring",
        "--test",
        "keyring_unavailable",
    ];
    // Build outside the session, so that its timing is only the tests'.
    crate::run(crate::cargo().args(test).arg("--no-run"))?;
    let data = std::env::temp_dir().join(format!("nsauth-keyring-test-{}", std::process::id()));
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Inside the session: start gnome-keyring's secrets component with a new login keyring
    // unlocked by a throwaway password, export what it prints, run the tests.
    let script = format!(
        "set -e; eval \"$(printf %s \"$NSAUTH_KEYRING_PW\" | gnome-keyring-daemon --unlock --components=secrets | sed 's/^/export /')\"; \
         NSAUTH_TEST_KEYRING=1 exec \"{cargo}\" {}",
        test.join(" ")
    );
    let mut session = Command::new("dbus-run-session");
    session
        .args(["--", "sh", "-c", &script])
        .env("XDG_DATA_HOME", &data)
        .env("NSAUTH_KEYRING_PW", format!("pw-{}", std::process::id()));
    let result = crate::run(&mut session);
    remove(&data);
    result
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
