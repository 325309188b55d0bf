//! Colour: the one decision every escape sequence nsauth writes goes through — the log lines
//! (tracing), the parser's errors and help (clap), and the `error:` prefix of a failed command.
//!
//! In order, the first that applies wins:
//! 1. `NO_COLOR` set and not empty: never (<https://no-color.org>; it wins over
//!    `CLICOLOR_FORCE`, as in clap and every tool built on `anstream`);
//! 2. `CLICOLOR_FORCE` set, not empty and not `0`: always, terminal or not
//!    (<https://bixense.com/clicolors/>);
//! 3. `CLICOLOR=0` or `TERM=dumb`: never;
//! 4. otherwise colour only when the stream written to is a terminal — so CI logs, pipes and
//!    files get plain text.
//!
//! The login spinner is not colour but cursor movement; it is drawn only on a terminal
//! (commands/login.rs) and never when stderr is a pipe.

use std::ffi::OsString;
use std::io::IsTerminal;

/// What the environment says about colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// No escape sequences.
    Never,
    /// Escape sequences even into a pipe or a file.
    Always,
    /// Only into a terminal.
    IfTerminal,
}

/// The choice for this process's environment.
pub fn choice() -> Colour {
    let var = |k: &str| std::env::var_os(k);
    decide(
        var("NO_COLOR"),
        var("CLICOLOR_FORCE"),
        var("CLICOLOR"),
        var("TERM"),
    )
}

/// The rules above, on the variables' values.
pub fn decide(
    no_color: Option<OsString>,
    clicolor_force: Option<OsString>,
    clicolor: Option<OsString>,
    term: Option<OsString>,
) -> Colour {
    let set = |v: &Option<OsString>| v.as_ref().is_some_and(|v| !v.is_empty());
    if set(&no_color) {
        return Colour::Never;
    }
    if set(&clicolor_force) && clicolor_force.as_deref() != Some("0".as_ref()) {
        return Colour::Always;
    }
    if clicolor.as_deref() == Some("0".as_ref()) || term.as_deref() == Some("dumb".as_ref()) {
        return Colour::Never;
    }
    Colour::IfTerminal
}

/// `true` when what nsauth writes to stderr may be coloured.
pub fn stderr() -> bool {
    match choice() {
        Colour::Never => false,
        Colour::Always => true,
        Colour::IfTerminal => std::io::stderr().is_terminal(),
    }
}

/// The same decision for clap (its errors go to stderr, its help to stdout). Never clap's
/// own `Auto`, which reads the environment by other rules: when neither variable decides,
/// colour only when both streams are terminals.
pub fn clap() -> clap::ColorChoice {
    let terminals = || std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    match choice() {
        Colour::Never => clap::ColorChoice::Never,
        Colour::Always => clap::ColorChoice::Always,
        Colour::IfTerminal if terminals() => clap::ColorChoice::Always,
        Colour::IfTerminal => clap::ColorChoice::Never,
    }
}

/// `error:` for a failed command's message on stderr, in clap's style when colour is on.
pub fn error_prefix() -> String {
    if !stderr() {
        return "error:".into();
    }
    let style = clap::builder::styling::Style::new()
        .bold()
        .fg_color(Some(clap::builder::styling::AnsiColor::Red.into()));
    format!("{style}error:{style:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(no: Option<&str>, force: Option<&str>, cli: Option<&str>, term: Option<&str>) -> Colour {
        let o = |v: Option<&str>| v.map(OsString::from);
        decide(o(no), o(force), o(cli), o(term))
    }

    #[test]
    fn no_color_wins_then_clicolor_force_then_the_terminal() {
        assert_eq!(d(None, None, None, None), Colour::IfTerminal);
        assert_eq!(d(Some("1"), None, None, None), Colour::Never);
        assert_eq!(d(Some("1"), Some("1"), None, None), Colour::Never);
        assert_eq!(
            d(Some(""), Some("1"), None, None),
            Colour::Always,
            "empty NO_COLOR is unset"
        );
        assert_eq!(d(None, Some("1"), Some("0"), Some("dumb")), Colour::Always);
        assert_eq!(d(None, Some("0"), None, None), Colour::IfTerminal);
        assert_eq!(d(None, Some(""), None, None), Colour::IfTerminal);
        assert_eq!(d(None, None, Some("0"), None), Colour::Never);
        assert_eq!(d(None, None, Some("1"), None), Colour::IfTerminal);
        assert_eq!(d(None, None, None, Some("dumb")), Colour::Never);
    }
}
