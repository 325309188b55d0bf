//! Mapping PostgreSQL failures to the store error kinds a caller can act on.
//!
//! The server's messages name roles, tables and columns, never values of ours (records are
//! bound as parameters, and sealed), so they are safe to show. The password is never part of
//! a message: tokio-postgres does not echo it and neither do we.

use nsauth_store::StoreError;
use tokio_postgres::error::SqlState;

/// Maps `err`, raised while talking to the store described by `shown`.
pub(crate) fn pg(err: tokio_postgres::Error, shown: &str) -> StoreError {
    if let Some(db) = err.as_db_error() {
        let msg = db.message();
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            StoreError::Denied(format!(
                "PostgreSQL refused the login to {shown}: {msg}; check PGPASSWORD or ~/.pgpass and the server's pg_hba.conf"
            ))
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            StoreError::Denied(format!(
                "PostgreSQL store {shown}: {msg}; grant the role the privileges in docs/stores/postgres.md"
            ))
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            StoreError::Config(format!(
                "PostgreSQL store {shown}: {msg}; create the database or fix the URI"
            ))
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            StoreError::Unavailable {
                message: format!("PostgreSQL store {shown} is read-only (a standby?): {msg}; point the URI at the primary"),
                retryable: false,
            }
        } else if retryable(code) {
            StoreError::Unavailable {
                message: format!("PostgreSQL store {shown} is busy or restarting: {msg}"),
                retryable: true,
            }
        } else {
            StoreError::Backend {
                store: "postgres",
                source: Box::new(err),
            }
        };
    }
    let text = one_line(&err);
    if text.contains("password missing") {
        return StoreError::Denied(format!(
            "PostgreSQL asks for a password for {shown}: set PGPASSWORD or add a line to ~/.pgpass"
        ));
    }
    if text.contains("TLS") || text.contains("tls") || text.contains("certificate") {
        return StoreError::Unavailable {
            message: format!(
                "TLS with PostgreSQL store {shown} failed: {text}; check sslmode and sslrootcert"
            ),
            retryable: false,
        };
    }
    // Refused, reset, timed out, closed, DNS failure: the server or the network is down.
    StoreError::Unavailable {
        message: format!("cannot reach PostgreSQL store {shown}: {text}; is the server running?"),
        retryable: true,
    }
}

fn retryable(code: &SqlState) -> bool {
    [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::QUERY_CANCELED,
        SqlState::LOCK_NOT_AVAILABLE,
    ]
    .contains(code)
}

/// `err` and its causes on one line.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text.replace(['\n', '\r'], " ")
}
