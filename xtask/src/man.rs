//! `cargo xtask man [OUT_DIR]`: the man pages, one per command and subcommand (`nsauth.1`,
//! `nsauth-token.1`, `nsauth-profile-set.1`, …), generated from the command-line definitions
//! by the `nsauth` binary itself (`nsauth __man DIR`, clap_mangen). Default OUT_DIR: target/man.

use std::path::PathBuf;

/// Builds `nsauth` and writes the pages into the directory given (or target/man).
pub fn run(args: &[String]) -> Result<(), String> {
    let out = match args {
        [] => crate::bench::root().join("target/man"),
        [dir] if !dir.starts_with('-') => PathBuf::from(dir),
        _ => return Err("usage: cargo xtask man [OUT_DIR]".into()),
    };
    crate::run(
        crate::cargo()
            .args([
                "run",
                "--quiet",
                "-p",
                "nsauth-cli",
                "--bin",
                "nsauth",
                "--",
                "__man",
            ])
            .arg(&out),
    )?;
    eprintln!(
        "xtask: install with: sudo install -m 644 {}/*.1 /usr/local/share/man/man1/ && sudo mandb -q",
        out.display()
    );
    Ok(())
}
