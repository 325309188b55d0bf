//! The one place exit codes are decided.
//!
//! Core classifies every failure as a [`FailureKind`] and knows no numbers; commands end with
//! an [`Exit`]; [`code`] turns a kind into the exit code documented in docs/cli.md ("Exit
//! codes"). `tests/tidy.rs` (in this crate) fails when an exit-code number appears anywhere
//! else in the CLI or core sources.

use nsauth_core::store::FailureKind;
use nsauth_core::Error;

/// How a command ended when it did not fail with an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Success,
    /// The command ran and printed its report, but what it reports is a failure of this kind
    /// (`check`: a login is needed; `doctor`: the worst failed check; `api`: NetSuite refused).
    Failed(FailureKind),
    /// `exec`: the child's own exit code, passed through unchanged.
    Child(u8),
}

impl Exit {
    /// The failure among `kinds` with the highest exit code, or [`Exit::Success`] when there
    /// is none.
    pub fn worst(kinds: impl IntoIterator<Item = FailureKind>) -> Exit {
        kinds
            .into_iter()
            .max_by_key(|k| code(*k))
            .map_or(Exit::Success, Exit::Failed)
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => SUCCESS,
            Exit::Failed(kind) => code(kind),
            Exit::Child(c) => c,
        }
    }
}

const SUCCESS: u8 = 0;

/// The documented exit code of a kind of failure (decided by [`nsauth::exit_code`], which the
/// agent's JSON errors use too).
pub fn code(kind: FailureKind) -> u8 {
    nsauth::exit_code(kind)
}

/// The exit code of a command that failed with `err`.
pub fn exit_code(err: &Error) -> u8 {
    code(err.kind())
}

/// The audit log's outcome of a command: `ok`, or the error's kind and exit code, e.g.
/// `login-needed (exit 3)`. The error's message is left out (it may name paths or hosts).
pub fn audit_outcome<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!(
            "{} (exit {})",
            nsauth_core::audit::outcome_of(e),
            exit_code(e)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsauth_core::store::StoreError;

    /// The rows of the exit-code table in docs/cli.md: (code, kinds named in the row).
    fn documented() -> Vec<(u8, Vec<String>)> {
        let doc = include_str!("../../../docs/cli.md");
        let table = doc
            .split("## Exit codes")
            .nth(1)
            .expect("docs/cli.md has an Exit codes section");
        table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.parse().ok()?;
                let kinds = cells
                    .get(2)?
                    .split(',')
                    .map(|k| k.trim().trim_matches('`').to_owned())
                    .filter(|k| !k.is_empty() && k != "—")
                    .collect();
                Some((code, kinds))
            })
            .collect()
    }

    fn name(kind: FailureKind) -> String {
        serde_json::to_value(kind)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_kind_has_the_code_docs_cli_md_documents() {
        // A kind added to FailureKind but not to ALL would escape this walk: this match stops
        // compiling instead.
        let _every_kind_is_in_all = |k: FailureKind| match k {
            FailureKind::Invalid
            | FailureKind::LoginNeeded
            | FailureKind::Store
            | FailureKind::Unreachable
            | FailureKind::Rejected
            | FailureKind::Other => (),
        };
        let table = documented();
        assert_eq!(
            table.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5],
            "the table in docs/cli.md lists each code once"
        );
        assert_eq!(Exit::Success.code(), 0);
        assert!(table[0].1.is_empty(), "code 0 is no failure kind");
        for kind in FailureKind::ALL {
            let rows: Vec<u8> = table
                .iter()
                .filter(|(_, kinds)| kinds.contains(&name(kind)))
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(rows, [code(kind)], "{kind:?} in docs/cli.md");
        }
        let listed: usize = table.iter().map(|(_, k)| k.len()).sum();
        assert_eq!(listed, FailureKind::ALL.len(), "no unknown kind documented");
    }

    #[test]
    fn errors_map_through_their_kind() {
        let cases = [
            (Error::Invalid("x".into()), 2),
            (Error::LoginNeeded("x".into()), 3),
            (Error::Store(StoreError::Config("bad URI".into())), 2),
            (Error::Store(StoreError::NotFound("p".into())), 2),
            (Error::Store(StoreError::Conflict("p".into())), 4),
            (Error::Store(StoreError::Denied("no".into())), 4),
            (
                Error::Store(StoreError::Unavailable {
                    message: "down".into(),
                    retryable: true,
                }),
                4,
            ),
            (Error::Unreachable("x".into()), 5),
            (Error::Rejected("x".into()), 1),
            (Error::Other("x".into()), 1),
        ];
        for (err, want) in cases {
            assert_eq!(exit_code(&err), want, "{err:?}");
        }
    }

    #[test]
    fn the_worst_failure_wins() {
        use FailureKind::*;
        assert_eq!(Exit::worst([]), Exit::Success);
        assert_eq!(Exit::worst([LoginNeeded, Unreachable, Invalid]).code(), 5);
        assert_eq!(Exit::worst([Other, Invalid]), Exit::Failed(Invalid));
        let child_status = 7;
        assert_eq!(Exit::Child(child_status).code(), child_status);
    }

    #[test]
    fn audit_outcomes_name_the_kind_and_the_code() {
        assert_eq!(audit_outcome::<()>(&Ok(())), "ok");
        let e = Err::<(), _>(Error::LoginNeeded("secret-free?".into()));
        assert_eq!(audit_outcome(&e), "login-needed (exit 3)");
        let e = Err::<(), _>(Error::Store(StoreError::NotFound("p".into())));
        assert_eq!(audit_outcome(&e), "not-found (exit 2)");
    }
}
