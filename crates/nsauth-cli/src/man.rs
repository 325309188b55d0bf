//! Man pages from the command-line definitions (clap_mangen): `nsauth __man DIR` writes
//! `nsauth.1` and one page per visible command and subcommand (`nsauth-token.1`,
//! `nsauth-profile-set.1`, …). Hidden: `cargo xtask man [DIR]` runs it; see docs/cli.md.

use crate::cli::Cli;
use crate::exit::Exit;
use clap::CommandFactory;
use nsauth_core::store::FailureKind;
use std::path::{Path, PathBuf};

/// The hidden word that asks for the pages, as the first argument.
const WORD: &str = "__man";

/// Handles `nsauth __man DIR` (before the parser, so that it stays out of the help, the
/// completions and the pages themselves). `None` for every other command line.
pub fn hidden_entry() -> Option<Exit> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != WORD {
        return None;
    }
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: nsauth {WORD} DIR");
        return Some(Exit::Failed(FailureKind::Invalid));
    };
    Some(match write_pages(Path::new(&dir)) {
        Ok(pages) => {
            println!("{} man pages in {}", pages.len(), Path::new(&dir).display());
            Exit::Success
        }
        Err(e) => {
            eprintln!(
                "{} cannot write the man pages to {}: {e}",
                crate::manners::error_prefix(),
                Path::new(&dir).display()
            );
            Exit::Failed(FailureKind::Other)
        }
    })
}

/// EXIT STATUS, ENVIRONMENT and SEE ALSO of nsauth.1 (docs/cli.md says the same at length).
fn shared_sections() -> String {
    use clap_mangen::roff::{bold, roman, Roff};
    let code = |k: FailureKind| crate::exit::code(k).to_string();
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    let codes = [
        (Exit::Success.code().to_string(), "success"),
        (
            code(FailureKind::Other),
            "other failure (NetSuite refused for a reason a login would not fix, I/O)",
        ),
        (
            code(FailureKind::Invalid),
            "usage, configuration or bad input; nothing stored",
        ),
        (
            code(FailureKind::LoginNeeded),
            "a NetSuite login is needed (check: one is needed within the window)",
        ),
        (
            code(FailureKind::Store),
            "store error: unreachable, denied, corrupt",
        ),
        (
            code(FailureKind::Unreachable),
            "NetSuite unreachable or failing after retries",
        ),
    ];
    for (n, meaning) in codes {
        r.control("TP", []).text([bold(n)]).text([roman(meaning)]);
    }
    r.control("PP", [])
        .text([roman("exec exits with its command's code.")]);
    r.control("SH", ["ENVIRONMENT"]);
    let vars = [
        (
            "NSAUTH_STORE, NSAUTH_PROFILE",
            "defaults for --store and --profile",
        ),
        (
            "NSAUTH_STORE_KEY, NSAUTH_STORE_KEY_FILE",
            "the local stores' encryption key (base64), or its file",
        ),
        ("NSAUTH_AGENT", "default for token --via"),
        ("NSAUTH_LOG", "tracing filter for the log on stderr"),
        (
            "NO_COLOR",
            "not empty: never colour (wins over CLICOLOR_FORCE)",
        ),
        (
            "CLICOLOR_FORCE",
            "not empty and not 0: colour even when stderr is not a terminal",
        ),
        (
            "NSAUTH_COMPLETE",
            "bash, zsh, fish...: print the dynamic completion script",
        ),
    ];
    for (name, meaning) in vars {
        r.control("TP", [])
            .text([bold(name)])
            .text([roman(meaning)]);
    }
    r.control("SH", ["SEE ALSO"]).text([roman(
        "docs/cli.md (every command, machine-readable output and its stability), docs/serve.md, docs/security.md",
    )]);
    r.to_roff()
}

/// Writes every page into `dir` (created if missing); the files written, sorted.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    // nsauth.1 also says what every command shares: exit codes, environment, colour.
    let mut main = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("nsauth.1"))?;
    std::io::Write::write_all(&mut main, shared_sections().as_bytes())?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("nsauth") && n.ends_with(".1"))
        })
        .collect();
    pages.sort();
    Ok(pages)
}
