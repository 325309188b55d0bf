//! # nsauth-store-postgres
//!
//! An nsauth [`TokenStore`](nsauth_store::TokenStore) in one PostgreSQL table, for teams that
//! already run PostgreSQL: `postgres://USER@HOST:PORT/DB?table=…&sslmode=…`, with the
//! standard `PG*` variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//! `PGSSLMODE`, `PGSSLROOTCERT`, `PGPASSFILE`) filling in what the URI omits. The password
//! never comes from the URI.
//!
//! - **Compare-and-swap** in one statement: `INSERT … ON CONFLICT DO NOTHING` to create,
//!   `UPDATE … WHERE version = $read` to replace; versions come from a sequence, so a
//!   delete never lets a version be handed out again.
//! - **Sealed at rest** with the store key, exactly like the SQLite and file stores:
//!   PostgreSQL is not a secret manager. Every host sharing a table needs the same key; a
//!   host with another key is told so when it connects.
//! - **Waiters wake on `LISTEN`/`NOTIFY`**: every write notifies the table's channel with the
//!   profile name, and [`wait_for_change`](nsauth_store::TokenStore::wait_for_change) returns
//!   as soon as the record waited on changes (`?notify=false` turns listening off).
//! - **TLS with rustls** (ring), `sslmode` as in libpq: `disable`, `prefer` (default),
//!   `require`, `verify-ca`, `verify-full`.
//!
//! The table (and the `nsauth_schema` bookkeeping table) is created on first use; see
//! `docs/stores/postgres.md` for the migrations and a least-privilege role.
//!
//! ```
//! use nsauth_store_local::seal::StoreKey;
//! use nsauth_store_postgres::PostgresStore;
//! use nsauth_store::TokenStore;
//!
//! // Opening parses the URI; nothing is contacted before the first call.
//! let store = PostgresStore::open("postgres://nsauth@db.example.com/nsauth?table=tokens", StoreKey::generate()).unwrap();
//! assert_eq!(store.describe(), "postgres://nsauth@db.example.com:5432/nsauth?table=tokens");
//! assert!(store.capabilities().compare_and_swap);
//! ```
#![warn(missing_docs)]

mod errors;
mod notify;
mod schema;
mod store;
mod tls;
mod uri;

pub use store::PostgresStore;
pub use uri::{SslMode, DEFAULT_TABLE};

/// The URI schemes of this store.
pub const SCHEMES: &[&str] = &["postgres", "postgresql"];

/// The URI syntax, as shown by `nsauth backends`.
pub const URI_HELP: &str =
    "postgres://USER@HOST:PORT/DB  (a PostgreSQL table; ?table=NAME&sslmode=MODE, PG* variables, password from PGPASSWORD or ~/.pgpass)";
