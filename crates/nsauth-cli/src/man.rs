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

/// Writes every page into `dir` (created if missing); the files written, sorted.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
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
