//! The one place a kind of failure becomes an exit code.
//!
//! The number is part of nsauth's public interface twice: as the `nsauth` process's exit
//! status and as the `exit_code` field of the agent's JSON errors (`nsauth serve`). Both call
//! [`exit_code`]; docs/cli.md ("Exit codes") documents the table and a CLI test checks that
//! the two agree. `crates/nsauth-cli/tests/tidy.rs` fails when an exit-code number is written
//! anywhere else in the CLI, the agent, this crate or core.

use nsauth_store::record::FailureKind;

/// The documented exit code of a kind of failure: 1 other or refused, 2 usage/configuration/bad
/// input, 3 login needed, 4 store error, 5 NetSuite unreachable or failing after retries.
///
/// ```
/// use nsauth::{exit_code, FailureKind};
/// assert_eq!(exit_code(FailureKind::LoginNeeded), 3);
/// ```
pub fn exit_code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Rejected | FailureKind::Other => 1,
        FailureKind::Invalid => 2,
        FailureKind::LoginNeeded => 3,
        FailureKind::Store => 4,
        FailureKind::Unreachable => 5,
    }
}
