//! [`PostgresStore`]: the [`TokenStore`] implementation.
//!
//! Every write is one statement, so it is atomic without an explicit transaction and its
//! `pg_notify` is sent exactly when it commits: a create is `INSERT … ON CONFLICT DO NOTHING`,
//! a compare-and-swap is `UPDATE … WHERE version = $read`, and the new version is the next
//! value of the table's sequence, which a delete never rewinds.

use crate::notify::Hub;
use crate::uri::Settings;
use crate::{errors, schema, tls};
use async_trait::async_trait;
use nsauth_store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_local::seal::StoreKey;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A token store in one PostgreSQL table. Each handle has its own connection, made on first
/// use and again after it broke; it also carries the notifications waiters sleep on.
pub struct PostgresStore {
    settings: Settings,
    key: StoreKey,
    tls: MakeRustlsConnect,
    sql: Sql,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

/// A live connection and the hub of its notifications.
#[derive(Clone)]
struct Conn {
    client: Arc<Client>,
    hub: Arc<Hub>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("store", &self.settings.describe())
            .field("key", &self.key)
            .finish()
    }
}

/// The statements, with the (validated, quoted) table and sequence names filled in.
struct Sql {
    load: String,
    version: String,
    create: String,
    check: String,
    update: String,
    delete_at: String,
    delete_any: String,
    list: String,
}

impl Sql {
    fn new(s: &Settings) -> Sql {
        let (t, seq) = (s.quoted_table(), s.quoted_sequence());
        let notify = "pg_notify($9::text, name)";
        Sql {
            load: format!("SELECT version, sealed FROM {t} WHERE name = $1"),
            version: format!("SELECT version FROM {t} WHERE name = $1"),
            create: format!(
                "WITH w AS (INSERT INTO {t} (name, version, updated_at, sealed)
                   VALUES ($1, nextval('{seq}'), $2::text::timestamptz, $3)
                   ON CONFLICT (name) DO NOTHING RETURNING name, version)
                 SELECT version, {} FROM w",
                notify.replace("$9", "$4")
            ),
            check: format!("SELECT sealed FROM {t} WHERE name = $1 AND version = $2"),
            update: format!(
                "WITH w AS (UPDATE {t} SET version = nextval('{seq}'), updated_at = $3::text::timestamptz, sealed = $4
                   WHERE name = $1 AND version = $2 RETURNING name, version)
                 SELECT version, {} FROM w",
                notify.replace("$9", "$5")
            ),
            delete_at: format!(
                "WITH w AS (DELETE FROM {t} WHERE name = $1 AND version = $2 RETURNING name)
                 SELECT {} FROM w",
                notify.replace("$9", "$3")
            ),
            delete_any: format!(
                "WITH w AS (DELETE FROM {t} WHERE name = $1 RETURNING name)
                 SELECT {} FROM w",
                notify.replace("$9", "$2")
            ),
            list: format!("SELECT name FROM {t} ORDER BY name"),
        }
    }
}

impl PostgresStore {
    /// Opens the store named by `postgres://USER@HOST:PORT/DB?table=…` (or `postgresql://`),
    /// with the `PG*` variables filling in what the URI omits and the store key from
    /// [`StoreKey::resolve`] (`?key-file=PATH` names another key file). Nothing is
    /// contacted yet: the first call connects and creates the table if missing.
    pub fn from_uri(uri: &str) -> Result<PostgresStore, StoreError> {
        let settings = Settings::parse(uri, &|k| std::env::var(k).ok())?;
        let key = StoreKey::resolve(settings.key_file.as_deref())?;
        Self::with_settings(settings, key)
    }

    /// As [`from_uri`](Self::from_uri), sealing with `key`.
    pub fn open(uri: &str, key: StoreKey) -> Result<PostgresStore, StoreError> {
        Self::with_settings(Settings::parse(uri, &|k| std::env::var(k).ok())?, key)
    }

    fn with_settings(settings: Settings, key: StoreKey) -> Result<PostgresStore, StoreError> {
        Ok(PostgresStore {
            tls: tls::connector(&settings)?,
            sql: Sql::new(&settings),
            settings,
            key,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.settings.table
    }

    /// The connection, made (and the table migrated) if there is none or it broke.
    async fn conn(&self) -> Result<Conn, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let (client, hub) = schema::connect(&self.settings, &self.tls, &self.key.id()).await?;
        let c = Conn {
            client: Arc::new(client),
            hub,
        };
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        Ok(self.conn().await?.client)
    }

    fn map(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        |e| errors::pg(e, &self.settings.describe())
    }

    /// Reads `(version, sealed)`; a read is retried once on a fresh connection if the
    /// old one broke under it.
    async fn row(&self, name: &ProfileName) -> Result<Option<(i64, String)>, StoreError> {
        let mut tries = 0;
        loop {
            let c = self.client().await?;
            match c.query_opt(&self.sql.load, &[&name.as_str()]).await {
                Ok(row) => return Ok(row.map(|r| (r.get(0), r.get(1)))),
                Err(e) if e.is_closed() && tries == 0 => tries += 1,
                Err(e) => return Err(self.map()(e)),
            }
        }
    }

    /// The version `name` is at now (`None` when absent).
    async fn current_version(&self, name: &ProfileName) -> Result<Option<i64>, StoreError> {
        let c = self.client().await?;
        c.query_opt(&self.sql.version, &[&name.as_str()])
            .await
            .map(|r| r.map(|r| r.get(0)))
            .map_err(self.map())
    }

    /// Opens the record at `version`, so that no write replaces a record this key cannot
    /// read; `Ok(false)` when `name` is not at `version`.
    async fn readable_at(
        &self,
        c: &Client,
        name: &ProfileName,
        version: i64,
    ) -> Result<bool, StoreError> {
        let row = c
            .query_opt(&self.sql.check, &[&name.as_str(), &version])
            .await
            .map_err(self.map())?;
        match row {
            None => Ok(false),
            Some(r) => {
                self.key.open_record(name, r.get::<_, &str>(0))?;
                Ok(true)
            }
        }
    }
}

/// The number in a version this store handed out; anything else can match nothing.
fn number(v: &Version) -> Option<i64> {
    v.0.parse().ok()
}

#[async_trait]
impl TokenStore for PostgresStore {
    fn describe(&self) -> String {
        self.settings.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            compare_and_swap: true,
            encrypts_at_rest: true,
            ..Capabilities::default()
        }
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let Some((version, sealed)) = self.row(name).await? else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            record: self.key.open_record(name, &sealed)?,
            version: Version(version.to_string()),
        }))
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let sealed = self.key.seal_record(name, record);
        let updated_at = record
            .meta
            .updated_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "now".into());
        let channel = self.settings.channel();
        let conflict = || StoreError::Conflict(name.to_string());
        let c = self.client().await?;
        let row = match condition {
            Precondition::Create => c
                .query_opt(
                    &self.sql.create,
                    &[&name.as_str(), &updated_at, &sealed, &channel],
                )
                .await
                .map_err(self.map())?,
            Precondition::Match(want) => {
                let want = number(&want).ok_or_else(conflict)?;
                if !self.readable_at(&c, name, want).await? {
                    return Err(conflict());
                }
                c.query_opt(
                    &self.sql.update,
                    &[&name.as_str(), &want, &updated_at, &sealed, &channel],
                )
                .await
                .map_err(self.map())?
            }
        };
        let row = row.ok_or_else(conflict)?;
        Ok(Version(row.get::<_, i64>(0).to_string()))
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        let channel = self.settings.channel();
        let c = self.client().await?;
        let deleted = match version {
            None => c
                .query_opt(&self.sql.delete_any, &[&name.as_str(), &channel])
                .await
                .map_err(self.map())?,
            Some(v) => {
                let at = match number(v) {
                    Some(at) if self.readable_at(&c, name, at).await? => at,
                    _ => {
                        return Err(match self.current_version(name).await? {
                            None => StoreError::NotFound(name.to_string()),
                            Some(_) => StoreError::Conflict(name.to_string()),
                        })
                    }
                };
                c.query_opt(&self.sql.delete_at, &[&name.as_str(), &at, &channel])
                    .await
                    .map_err(self.map())?
            }
        };
        if deleted.is_some() {
            return Ok(());
        }
        Err(match (version, self.current_version(name).await?) {
            (Some(_), Some(_)) => StoreError::Conflict(name.to_string()),
            _ => StoreError::NotFound(name.to_string()),
        })
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        let c = self.client().await?;
        let rows = c.query(&self.sql.list, &[]).await.map_err(self.map())?;
        let mut names = Vec::with_capacity(rows.len());
        for r in rows {
            let raw: &str = r.get(0);
            match ProfileName::parse(raw) {
                Ok(n) => names.push(n),
                Err(e) => {
                    tracing::warn!(store = %self.describe(), error = %e, "skipping a row with an invalid profile name")
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn wait_for_change(&self, name: &ProfileName, seen: &Version, timeout: Duration) -> bool {
        if !self.settings.notify {
            return false;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let Ok(Ok(conn)) = tokio::time::timeout_at(deadline, self.conn()).await else {
            return false;
        };
        match tokio::time::timeout_at(deadline, conn.hub.listen(&conn.client)).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(_) => return true,
        }
        let mut changed = conn.hub.subscribe(name.as_str());
        // Listening now; the record may have changed before we were.
        match tokio::time::timeout_at(deadline, self.current_version(name)).await {
            Err(_) => return true,
            Ok(Err(_)) => return false,
            Ok(Ok(now)) if now.map(|v| v.to_string()).as_deref() != Some(seen.0.as_str()) => {
                return true
            }
            Ok(Ok(_)) => {}
        }
        let _ = tokio::time::timeout_at(deadline, changed.changed()).await;
        true
    }
}
