//! End to end: man pages for every visible command (`nsauth __man DIR`, what `cargo xtask man`
//! runs), and the dynamic completion of profile names (`NSAUTH_COMPLETE=$SHELL nsauth`): the store's
//! names for a partial word, from the store the command line names, and nothing — no message,
//! no file — when the store is missing or broken.

use nsauth_e2e::*;
use std::process::Output;

#[test]
fn every_visible_command_gets_a_valid_man_page() {
    let sb = Sandbox::new(Kind::Sqlite);
    let dir = sb.dir.path().join("man");
    sb.ok(&["__man", dir.to_str().unwrap()]);
    let mut want: Vec<String> = listed_commands(&sb)
        .into_iter()
        .map(|c| format!("nsauth-{}.1", c.replace(' ', "-")))
        .collect();
    // The groups have a page of their own too (nsauth-profile.1 lists its subcommands).
    for group in [
        "nsauth.1",
        "nsauth-profile.1",
        "nsauth-m2m.1",
        "nsauth-share.1",
    ] {
        want.push(group.into());
    }
    assert!(
        want.contains(&"nsauth-profile-set.1".to_owned()),
        "{want:?}"
    );
    let groff = std::process::Command::new("groff")
        .arg("--version")
        .output()
        .is_ok();
    for page in &want {
        let path = dir.join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{page} missing ({e}); wrote: {:?}",
                std::fs::read_dir(&dir).unwrap().count()
            )
        });
        // roff: the first request after the quote-string set-up is the title.
        let title = text
            .lines()
            .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
            .unwrap_or("");
        let name = page.trim_end_matches(".1");
        assert!(
            title.starts_with(&format!(".TH {name} 1 ")),
            "{page}: {title:?}"
        );
        assert!(
            text.contains("\n.SH NAME\n") && text.contains("\n.SH SYNOPSIS\n"),
            "{page}"
        );
        if groff {
            // -k: UTF-8 input (as man does); -ww: every warning.
            let out = std::process::Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{page}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The main page says what every command shares.
    let main = std::fs::read_to_string(dir.join("nsauth.1")).unwrap();
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        "NO_COLOR",
        "NSAUTH_STORE",
    ] {
        assert!(main.contains(section), "nsauth.1 lacks {section}");
    }
    // Nothing hidden, nothing else.
    let written = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(written, want.len(), "{want:?}");
    // The usage of the hidden word itself.
    let out = sb.run(&["__man"]);
    assert_exit(&out, 2, &["__man without a directory"]);
}

/// Asks for the completions of the last word of `line` as fish does (and as bash does, which
/// must give the same words).
fn complete(sb: &Sandbox, line: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let run = |shell: &str| -> Output {
        let mut c = sb.cmd();
        c.env("NSAUTH_COMPLETE", shell)
            .env("_CLAP_COMPLETE_INDEX", (line.len()).to_string())
            .env("_CLAP_IFS", "\n")
            .arg("--")
            .arg("nsauth")
            .args(line);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let fish = run("fish");
    let bash = run("bash");
    for out in [&fish, &bash] {
        assert_ok(out, line);
        assert!(
            out.stderr.is_empty(),
            "completion wrote on stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let words = |o: &Output| -> Vec<String> {
        String::from_utf8(o.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert_eq!(words(&fish), words(&bash), "{line:?}");
    words(&fish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_names_complete_from_the_store_the_line_names() {
    let emu = emulator().await;
    let sb = Sandbox::new(Kind::Sqlite);
    for p in ["prod", "prod-eu", "sb1", "café"] {
        set_public_profile(&sb, &emu, p);
    }
    assert_eq!(
        complete(&sb, &["--profile", "pr"], &[]),
        ["prod", "prod-eu"]
    );
    assert_eq!(
        complete(&sb, &["token", "--profile", ""], &[]),
        ["café", "prod", "prod-eu", "sb1"]
    );
    assert_eq!(complete(&sb, &["--profile", "ca"], &[]), ["café"]);
    assert_eq!(complete(&sb, &["profile", "show", "s"], &[]), ["sb1"]);
    assert_eq!(
        complete(&sb, &["serve", "--profile", "prod-"], &[]),
        ["prod-eu"]
    );
    // --store on the line wins over NSAUTH_STORE.
    let other = Sandbox::new(Kind::File);
    set_public_profile(&other, &emu, "elsewhere");
    let line = ["--store", other.store_uri.as_str(), "--profile", ""];
    assert_eq!(complete(&sb, &line, &[]), ["elsewhere"]);
}

#[test]
fn a_missing_or_broken_store_completes_nothing_silently_and_creates_nothing() {
    let sb = Sandbox::new(Kind::Sqlite);
    // The sandbox's store does not exist yet: opening it would create it.
    assert!(complete(&sb, &["--profile", ""], &[]).is_empty());
    assert!(!sb.store_path.exists(), "completion created the store");
    assert!(
        !sb.dir.path().join("config").exists(),
        "completion created a key"
    );
    for uri in [
        "bogus://x",
        "not a uri",
        "vault://127.0.0.1:1/secret/nsauth",
    ] {
        let got = complete(&sb, &["--profile", "p"], &[("NSAUTH_STORE", uri)]);
        assert!(got.is_empty(), "{uri}: {got:?}");
    }
    // Flags still complete (the engine works without a store).
    let got = complete(&sb, &["token", "--hea"], &[]);
    assert_eq!(got, ["--header"]);
}

#[test]
fn a_stray_complete_variable_does_not_turn_commands_into_completions() {
    let sb = Sandbox::new(Kind::Sqlite);
    for value in ["1", "bash"] {
        let out = sb
            .cmd()
            .env("COMPLETE", value)
            .args(["backends", "--json"])
            .output()
            .unwrap();
        assert_ok(&out, &["backends with COMPLETE set"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the real output");
        assert_eq!(v["schema"], 1);
    }
}
