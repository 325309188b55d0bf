//! End to end: share bundles between two stores (SQLite and file) — keygen, export with
//! tokens, import, refresh at both ends or only at the destination, and every refusal.

use nsauth_e2e::*;
use std::path::Path;
use std::process::Output;

/// `share keygen` in `sb`'s directory; returns (identity path, recipient).
fn keygen(sb: &Sandbox, file: &str) -> (String, String) {
    let path = sb.dir.path().join("keys").join(file);
    let path = path.to_str().unwrap().to_owned();
    let recipient = sb
        .ok(&["share", "keygen", "--out", &path])
        .trim()
        .to_owned();
    assert!(
        recipient.starts_with("age1"),
        "keygen printed {recipient:?}"
    );
    (path, recipient)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit 2 with a one-line error containing `needle`.
fn refused(out: &Output, needle: &str, what: &str) {
    assert_exit(out, 2, &[what]);
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    assert!(err.contains(needle), "{what}: {err}");
}

fn profiles(sb: &Sandbox) -> String {
    sb.ok(&["profile", "list"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_tokens_shared_sqlite_to_file_refresh_at_both_ends() {
    let emu = emulator().await;
    emu.set_access_ttl(120);
    let (a, b) = (Sandbox::new(Kind::Sqlite), Sandbox::new(Kind::File));
    set_confidential_profile(&a, &emu, "conf");
    login(&a, "conf").await;
    let access = a.ok(&["--profile", "conf", "token"]).trim().to_owned();
    // B already has a (different) profile called "conf".
    set_public_profile(&b, &emu, "conf");

    let mut outputs: Vec<Vec<u8>> = Vec::new();
    let mut keep = |out: Output| {
        outputs.push(out.stdout.clone());
        outputs.push(out.stderr.clone());
        out
    };
    let (identity, recipient) = keygen(&b, "me.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&identity).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = keep(b.run(&["share", "keygen", "--out", &identity]));
    refused(&again, "already exists", "keygen over an existing file");

    let bundle = a.dir.path().join("conf.age");
    let bundle_s = bundle.to_str().unwrap();
    let args = [
        "-vvv",
        "--profile",
        "conf",
        "share",
        "export",
        "--recipient",
        &recipient,
        "--with-tokens",
        "--out",
        bundle_s,
    ];
    let out = keep(a.run(&args));
    assert_ok(&out, &args);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("with tokens"),
        "{out:?}"
    );
    assert!(
        stderr(&out).contains("both keep refreshing"),
        "{}",
        stderr(&out)
    );
    let bytes = std::fs::read(&bundle).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(&bundle).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o600);
    }
    // Exporting over an existing file is refused.
    let out = keep(a.run(&[
        "--profile",
        "conf",
        "share",
        "export",
        "-r",
        &recipient,
        "--out",
        bundle_s,
    ]));
    refused(&out, "already exists", "export over an existing file");
    assert_eq!(std::fs::read(&bundle).unwrap(), bytes);

    // Refusals at B leave its store as it was.
    let before = profiles(&b);
    let out = keep(b.run(&[
        "share",
        "import",
        bundle_s,
        "--identity",
        &identity,
        "--yes",
    ]));
    refused(&out, "already exists", "import under an existing name");
    let shown = b.ok(&["profile", "show", "conf", "--json"]);
    assert!(
        shown.contains("\"public\""),
        "the existing profile was changed: {shown}"
    );
    let mut tampered = bytes.clone();
    let at = tampered.len() - 30;
    tampered[at] ^= 0x01;
    let tampered_path = b.dir.path().join("tampered.age");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let out = keep(b.run(&[
        "share",
        "import",
        tampered_path.to_str().unwrap(),
        "--identity",
        &identity,
        "--as",
        "conf2",
    ]));
    refused(&out, "modified after export", "tampered bundle");
    let (other_identity, _) = keygen(&b, "other.txt");
    let out = keep(b.run(&[
        "share",
        "import",
        bundle_s,
        "--identity",
        &other_identity,
        "--as",
        "conf2",
    ]));
    refused(&out, "not encrypted to this", "wrong identity");
    let not_age = b.dir.path().join("plain.json");
    std::fs::write(&not_age, br#"{"format":"nsauth-share","version":1}"#).unwrap();
    let out = keep(b.run(&[
        "share",
        "import",
        not_age.to_str().unwrap(),
        "--identity",
        &identity,
        "--as",
        "conf2",
    ]));
    refused(&out, "not an age-encrypted file", "not an age file");
    assert_eq!(profiles(&b), before, "a refused import changed the store");

    let args = [
        "-vvv",
        "share",
        "import",
        bundle_s,
        "--identity",
        &identity,
        "--as",
        "conf2",
        "--yes",
    ];
    let out = keep(b.run(&args));
    assert_ok(&out, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("imported profile conf2")
            && text.contains("confidential client")
            && text.contains("with tokens")
            && text.contains("refresh token ends"),
        "{text}"
    );

    // The shared access token is the one A had; then both ends refresh on their own.
    assert_eq!(b.ok(&["--profile", "conf2", "token"]).trim(), access);
    let before = emu.counters().refresh_token;
    for _ in 0..2 {
        for (sb, name) in [(&a, "conf"), (&b, "conf2")] {
            let t = sb.ok(&["--profile", name, "token", "--min-ttl", "3300"]);
            assert!(token_works(&emu, t.trim()).await, "{name}: token refused");
        }
    }
    assert_eq!(emu.counters().refresh_token, before + 4);

    let secret_key = std::fs::read_to_string(&identity).unwrap();
    let secret_key = secret_key.lines().last().unwrap().to_owned();
    assert!(secret_key.starts_with("AGE-SECRET-KEY-1"));
    for secret in [CLIENT_SECRET, access.as_str(), secret_key.as_str(), "eyJ"] {
        assert!(
            !contains(&bytes, secret),
            "{secret:.12}… is readable in the bundle"
        );
        for o in &outputs {
            assert!(
                !contains(o, secret),
                "{secret:.12}… appeared in share output"
            );
        }
        for (path, data) in b.store_bytes() {
            assert!(
                !contains(&data, secret),
                "{secret:.12}… in plaintext in {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_tokens_move_file_to_sqlite_and_only_the_destination_refreshes() {
    let emu = emulator().await;
    emu.set_access_ttl(120);
    let (a, b) = (Sandbox::new(Kind::File), Sandbox::new(Kind::Sqlite));
    set_public_profile(&a, &emu, "pub");
    login(&a, "pub").await;
    let (identity, recipient) = keygen(&b, "me.txt");
    // Recipients from a file, with comments.
    let list = a.dir.path().join("recipients.txt");
    std::fs::write(&list, format!("# B's laptop\n\n{recipient}\n")).unwrap();
    let bundle = a.dir.path().join("pub.age");
    let bundle_s = bundle.to_str().unwrap();
    let at_list = format!("@{}", list.display());
    let args = [
        "--profile",
        "pub",
        "share",
        "export",
        "--recipient",
        &at_list,
        "--with-tokens",
        "--out",
        bundle_s,
    ];
    let out = a.run(&args);
    assert_ok(&out, &args);
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains("single-use"),
        "{err}"
    );

    // The source no longer refreshes: single-use tokens live only in the bundle now.
    let before = emu.counters().refresh_token;
    for args in [
        &["--profile", "pub", "token", "--min-ttl", "3300"][..],
        &["--profile", "pub", "refresh", "--force"][..],
    ] {
        let out = a.run(args);
        assert_exit(&out, 3, args);
        let err = stderr(&out);
        assert!(
            err.contains("moved to share bundle pub.age") && err.contains("nsauth login"),
            "{err}"
        );
    }
    assert_eq!(
        emu.counters().refresh_token,
        before,
        "the source reached NetSuite"
    );
    let out = a.run(&[
        "--profile",
        "pub",
        "share",
        "export",
        "-r",
        &recipient,
        "--with-tokens",
        "--out",
        "/nonexistent/x.age",
    ]);
    refused(&out, "already moved", "second export of moved tokens");

    let args = [
        "share",
        "import",
        bundle_s,
        "--identity",
        &identity,
        "--yes",
    ];
    let out = b.run(&args);
    assert_ok(&out, &args);
    assert!(String::from_utf8_lossy(&out.stdout).contains("public client"));
    // The destination refreshes, twice: the rotated refresh token was stored.
    for _ in 0..2 {
        let t = b.ok(&["--profile", "pub", "token", "--min-ttl", "3300"]);
        assert!(token_works(&emu, t.trim()).await);
    }
    assert_eq!(emu.counters().refresh_token, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_ed25519_recipient_and_identity() {
    let keygen_ok = std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_ok();
    if !keygen_ok {
        eprintln!("SKIPPED: ssh-keygen is not installed (the unit tests cover SSH keys)");
        return;
    }
    let emu = emulator().await;
    let (a, b) = (Sandbox::new(Kind::Sqlite), Sandbox::new(Kind::File));
    set_confidential_profile(&a, &emu, "conf");
    let key = b.dir.path().join("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "b@example", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let bundle = a.dir.path().join("conf.age");
    let bundle_s = bundle.to_str().unwrap();
    a.ok(&[
        "--profile",
        "conf",
        "share",
        "export",
        "--recipient",
        public.trim(),
        "--out",
        bundle_s,
    ]);
    let out = b.ok(&[
        "share",
        "import",
        bundle_s,
        "--identity",
        key.to_str().unwrap(),
        "--as",
        "from-a",
        "--yes",
    ]);
    assert!(out.contains("without tokens"), "{out}");
    let shown = b.ok(&["profile", "show", "from-a", "--json"]);
    assert!(
        shown.contains("\"confidential\"") && !shown.contains(CLIENT_SECRET),
        "{shown}"
    );
    // A passphrase-protected key is refused with advice, not a prompt.
    let locked = b.dir.path().join("locked");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass phrase", "-f"])
        .arg(&locked)
        .status()
        .unwrap();
    let out = b.run(&[
        "share",
        "import",
        bundle_s,
        "--identity",
        locked.to_str().unwrap(),
        "--as",
        "x",
    ]);
    refused(&out, "passphrase", "encrypted ssh key");
    assert!(!Path::new(&b.dir.path().join("x")).exists());
}
