//! Which commands have a machine-readable form. `--json` is a global flag, so the parser
//! accepts it everywhere; a command without a JSON form refuses it here (exit 2) instead of
//! silently printing text a script would then mis-read.

use crate::cli::{Cli, Command, M2mCmd, ProfileCmd};
use clap::CommandFactory;

/// `true` when `cmd` prints JSON (with `"schema"`) under `--json`. Exhaustive on purpose: a
/// new command must say whether it has a JSON form.
pub fn has_json_form(cmd: &Command) -> bool {
    match cmd {
        Command::Profile(p) => match p {
            ProfileCmd::List | ProfileCmd::Show { .. } => true,
            ProfileCmd::Set(_) | ProfileCmd::Delete { .. } => false,
        },
        Command::Token { .. }
        | Command::Refresh { .. }
        | Command::Status { .. }
        | Command::Check { .. }
        | Command::Migrate { .. }
        | Command::Audit(_)
        | Command::Doctor(_)
        | Command::Backends => true,
        Command::M2m(M2mCmd::Keygen { .. } | M2mCmd::Rotate(_)) => true,
        #[cfg(feature = "share")]
        Command::Share(_) => true,
        Command::Login(_)
        | Command::Revoke
        | Command::Exec { .. }
        | Command::Api { .. }
        | Command::Serve(_)
        | Command::Completions { .. } => false,
        #[cfg(feature = "emulator")]
        Command::Emulator { .. } | Command::Demo => false,
        #[cfg(feature = "emulator")]
        Command::Conformance(_) => true,
    }
}

/// Checks what the parser cannot: `--json` only where a JSON form exists, and never with
/// `token --header` (given before or after the subcommand). A usage error: exit 2.
pub fn check(cli: &Cli, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    if !cli.json {
        return Ok(());
    }
    let conflict = |msg: String| {
        Err(Cli::command()
            .color(crate::manners::clap())
            .error(clap::error::ErrorKind::ArgumentConflict, msg))
    };
    if let Command::Token { header: true, .. } = cli.command {
        return conflict("the argument '--json' cannot be used with '--header'".into());
    }
    if !has_json_form(&cli.command) {
        return conflict(format!(
            "'nsauth {}' has no machine-readable output; drop --json (see docs/cli.md, \"Machine-readable output\")",
            name(matches)
        ));
    }
    Ok(())
}

/// The subcommand as typed (`profile set`, `login`), from the parser's matches.
fn name(matches: &clap::ArgMatches) -> String {
    let mut words = Vec::new();
    let mut m = matches;
    while let Some((word, sub)) = m.subcommand() {
        words.push(word);
        m = sub;
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind::ArgumentConflict;
    use clap::FromArgMatches;

    fn checked(args: &[&str]) -> Result<(), clap::Error> {
        let matches = Cli::command().try_get_matches_from(args)?;
        check(&Cli::from_arg_matches(&matches)?, &matches)
    }

    #[test]
    fn json_is_refused_where_there_is_no_json_form_with_the_command_named() {
        let e = checked(&["nsauth", "--json", "profile", "set", "p"]).unwrap_err();
        assert_eq!(e.kind(), ArgumentConflict, "a usage error: exit 2");
        assert!(e.to_string().contains("'nsauth profile set'"), "{e}");
        // `--json` after `exec --` belongs to the child's command line.
        assert!(checked(&["nsauth", "exec", "--", "jq", "--json"]).is_ok());
        let e = checked(&["nsauth", "revoke", "--json"]).unwrap_err();
        assert!(e.to_string().contains("'nsauth revoke'"), "{e}");
        assert!(checked(&["nsauth", "status", "--json"]).is_ok());
        assert!(checked(&["nsauth", "profile", "set", "p"]).is_ok());
    }

    #[test]
    fn json_and_header_conflict_on_either_side_of_the_subcommand() {
        for args in [
            ["nsauth", "--json", "token", "--header"],
            ["nsauth", "token", "--header", "--json"],
        ] {
            let e = checked(&args).expect_err("refused");
            assert_eq!(e.kind(), ArgumentConflict, "{args:?}");
        }
    }
}
