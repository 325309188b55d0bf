//! Connecting, and creating or migrating the table on first use.
//!
//! Each table has a row in `nsauth_schema` saying which schema version it is at and which
//! store key seals its records. Migrations run in one transaction under a transaction-level
//! advisory lock, so that processes opening a new table at once create it once; a process that
//! finds the table current takes no lock and writes nothing (a role with only the documented
//! grants never needs to create anything).

use crate::errors;
use crate::notify::Hub;
use crate::uri::Settings;
use nsauth_store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The schema version this nsauth writes.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// Arbitrary, constant key of the advisory lock taken while migrating (any nsauth table).
const MIGRATION_LOCK: i64 = 0x6e73_6175_7468_0001;

/// `MIGRATIONS[n]` takes a table from version `n` to `n + 1`; `{table}` and `{seq}` are
/// replaced by the quoted names. Never edit one that shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the records, and the sequence their versions come from (never reset by a delete,
    // so no version is handed out twice).
    "CREATE SEQUENCE IF NOT EXISTS {seq};
     CREATE TABLE IF NOT EXISTS {table} (
         name text PRIMARY KEY,
         version bigint NOT NULL,
         updated_at timestamptz NOT NULL,
         sealed text NOT NULL
     );",
];

/// The bookkeeping table, shared by every nsauth table of the database.
const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS nsauth_schema (
    table_name text PRIMARY KEY,
    version integer NOT NULL,
    key_id text NOT NULL
)";

/// A connection's driver: it must be polled (spawned) for the client to work.
pub(crate) type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// Opens a connection; the caller drives the returned [`Connection`].
pub(crate) async fn open(
    settings: &Settings,
    tls: &MakeRustlsConnect,
) -> Result<(Client, Connection), StoreError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&settings.host)
        .port(settings.port)
        .user(&settings.user)
        .dbname(&settings.dbname)
        .application_name("nsauth")
        .connect_timeout(Duration::from_secs(10))
        .keepalives_idle(Duration::from_secs(60))
        .ssl_mode(match settings.sslmode {
            crate::uri::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            crate::uri::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
    if let Some(p) = &settings.password {
        cfg.password(p.0.as_bytes());
    }
    cfg.connect(tls.clone())
        .await
        .map_err(|e| errors::pg(e, &settings.describe()))
}

/// A connected client whose table is at [`SCHEMA_VERSION`] and sealed with `key_id`, and
/// the hub of its notifications.
pub(crate) async fn connect(
    settings: &Settings,
    tls: &MakeRustlsConnect,
    key_id: &str,
) -> Result<(Client, Arc<Hub>), StoreError> {
    let (mut client, conn) = open(settings, tls).await?;
    let shown = settings.describe();
    let hub = Hub::drive(conn, settings.channel(), shown.clone());
    let map = |e| errors::pg(e, &shown);
    let current = client
        .query_opt(
            "SELECT version, key_id FROM nsauth_schema WHERE table_name = $1",
            &[&settings.table],
        )
        .await;
    match current {
        Ok(Some(row)) => {
            check(settings, row.get(0), row.get(1), key_id)?;
            if row.get::<_, i32>(0) == SCHEMA_VERSION {
                return Ok((client, hub));
            }
        }
        Ok(None) => {}
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {}
        Err(e) => return Err(map(e)),
    }
    migrate(&mut client, settings, key_id)
        .await
        .map_err(|e| match e {
            Migration::Pg(e) => map(e),
            Migration::Store(e) => e,
        })?;
    Ok((client, hub))
}

enum Migration {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Migration {
    fn from(e: tokio_postgres::Error) -> Self {
        Migration::Pg(e)
    }
}

async fn migrate(client: &mut Client, settings: &Settings, key_id: &str) -> Result<(), Migration> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(SCHEMA_TABLE).await?;
    let row = tx
        .query_opt(
            "SELECT version, key_id FROM nsauth_schema WHERE table_name = $1 FOR UPDATE",
            &[&settings.table],
        )
        .await?;
    let from = match &row {
        Some(row) => {
            check(settings, row.get(0), row.get(1), key_id).map_err(Migration::Store)?;
            row.get::<_, i32>(0)
        }
        None => 0,
    };
    for (n, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(from).unwrap_or(0))
    {
        let sql = sql
            .replace("{table}", &settings.quoted_table())
            .replace("{seq}", &settings.quoted_sequence());
        tx.batch_execute(&sql).await?;
        tracing::debug!(store = %settings.describe(), to = n + 1, "migrated postgres store table");
    }
    tx.execute(
        "INSERT INTO nsauth_schema (table_name, version, key_id) VALUES ($1, $2, $3)
         ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version",
        &[&settings.table, &SCHEMA_VERSION, &key_id],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses a table from a newer nsauth, or sealed with another store key.
fn check(
    settings: &Settings,
    version: i32,
    stored_key: String,
    key_id: &str,
) -> Result<(), StoreError> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt {
            what: format!("table {} of postgres store {}", settings.table, settings.describe()),
            why: format!("it has schema {version} but this nsauth reads up to {SCHEMA_VERSION}; upgrade nsauth"),
        });
    }
    if stored_key != key_id {
        return Err(StoreError::Config(format!(
            "postgres store {} is sealed with store key {stored_key}, but this host's key is {key_id}: every host sharing the table needs the same store key (copy the key file or set NSAUTH_STORE_KEY; see docs/stores/postgres.md)",
            settings.describe()
        )));
    }
    Ok(())
}
