//! [`SqliteStore`]: the [`TokenStore`] implementation.

use crate::{errors, schema};
use async_trait::async_trait;
use nsauth_store::{Capabilities, Precondition, Record, Version, Versioned};
use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_local::seal::StoreKey;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// A token store in one SQLite file. Cheap to share behind an `Arc`; every handle has its
/// own connection, and handles in different processes coordinate through SQLite's locks.
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    key: StoreKey,
    conn: Mutex<Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("key", &self.inner.key)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (0600) and its directory (0700) if
    /// needed and migrating its schema. Fails with [`StoreError::Corrupt`] (and leaves the
    /// file alone) when it is not an nsauth database.
    pub fn open(path: &Path, key: StoreKey) -> Result<SqliteStore, StoreError> {
        if path.is_dir() {
            return Err(StoreError::Config(format!(
                "sqlite store {} is a directory; give the path of a file for sqlite://PATH, e.g. {}",
                path.display(),
                path.join("nsauth.db").display()
            )));
        }
        let conn = schema::connect(path)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                key,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// Opens the store named by `sqlite://PATH[?key-file=PATH]`, with the key from
    /// [`StoreKey::resolve`].
    pub fn from_uri(uri: &str) -> Result<SqliteStore, StoreError> {
        let parsed = nsauth_store_local::local_uri::LocalStoreUri::parse(
            uri,
            "sqlite",
            "sqlite://PATH",
            "sqlite:///home/me/nsauth.db or sqlite://nsauth.db?key-file=store.key",
        )
        .map_err(StoreError::Config)?;
        let key = StoreKey::resolve(parsed.key_file.as_deref())?;
        Self::open(&parsed.path, key)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&inner, &mut conn)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Backend {
                store: "sqlite",
                source: Box::new(e),
            }),
        }
    }
}

impl Inner {
    fn map(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |e| errors::sqlite(e, &self.path)
    }
}

/// Reads `(version, sealed)` of one row.
fn row(conn: &Connection, name: &str) -> rusqlite::Result<Option<(i64, String)>> {
    conn.prepare_cached("SELECT version, sealed FROM records WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Takes the next version from the store-wide counter (inside the caller's write
/// transaction). A delete never lowers it, so no version is handed out twice.
fn next_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("UPDATE version_counter SET last = last + 1 WHERE id = 1")?
        .execute([])?;
    conn.prepare_cached("SELECT last FROM version_counter WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

#[async_trait]
impl TokenStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.inner.path.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }

    async fn load(&self, name: &ProfileName) -> Result<Option<Versioned>, StoreError> {
        let name = name.clone();
        self.run(move |inner, conn| {
            let Some((version, sealed)) = row(conn, name.as_str()).map_err(inner.map())? else {
                return Ok(None);
            };
            let record = inner.key.open_record(&name, &sealed)?;
            Ok(Some(Versioned {
                record,
                version: Version(version.to_string()),
            }))
        })
        .await
    }

    async fn put(
        &self,
        name: &ProfileName,
        record: &Record,
        condition: Precondition,
    ) -> Result<Version, StoreError> {
        let sealed = self.inner.key.seal_record(name, record);
        let updated_at = record
            .meta
            .updated_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let name = name.clone();
        self.run(move |inner, conn| {
            let map = inner.map();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&map)?;
            let conflict = || StoreError::Conflict(name.to_string());
            let current = row(&tx, name.as_str()).map_err(&map)?;
            match (&condition, &current) {
                (Precondition::Create, None) => {}
                (Precondition::Create, Some(_)) | (Precondition::Match(_), None) => return Err(conflict()),
                (Precondition::Match(want), Some((version, sealed))) => {
                    if want.0 != version.to_string() {
                        return Err(conflict());
                    }
                    // Never overwrite a record this key cannot read (wrong key, damage,
                    // newer nsauth): the caller could not have read what it replaces.
                    inner.key.open_record(&name, sealed)?;
                }
            }
            let new_version = next_version(&tx).map_err(&map)?;
            let changed = match current {
                None => tx.execute(
                    "INSERT INTO records (name, version, updated_at, sealed) VALUES (?1, ?2, ?3, ?4)",
                    params![name.as_str(), new_version, updated_at, sealed],
                ),
                Some((version, _)) => tx.execute(
                    "UPDATE records SET version = ?1, updated_at = ?2, sealed = ?3 WHERE name = ?4 AND version = ?5",
                    params![new_version, updated_at, sealed, name.as_str(), version],
                ),
            }
            .map_err(&map)?;
            if changed != 1 {
                return Err(conflict());
            }
            tx.commit().map_err(&map)?;
            Ok(Version(new_version.to_string()))
        })
        .await
    }

    async fn delete(
        &self,
        name: &ProfileName,
        version: Option<&Version>,
    ) -> Result<(), StoreError> {
        let name = name.clone();
        let want = version.cloned();
        self.run(move |inner, conn| {
            let map = inner.map();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&map)?;
            let Some((current, sealed)) = row(&tx, name.as_str()).map_err(&map)? else {
                return Err(StoreError::NotFound(name.to_string()));
            };
            if let Some(want) = want {
                if want.0 != current.to_string() {
                    return Err(StoreError::Conflict(name.to_string()));
                }
                // As for put: a version is only meaningful for a record this key can read.
                // An unconditional delete removes even a damaged record (the way to clear it).
                inner.key.open_record(&name, &sealed)?;
            }
            tx.execute(
                "DELETE FROM records WHERE name = ?1 AND version = ?2",
                params![name.as_str(), current],
            )
            .map_err(&map)?;
            tx.commit().map_err(&map)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<ProfileName>, StoreError> {
        self.run(|inner, conn| {
            let map = inner.map();
            let mut stmt = conn.prepare_cached("SELECT name FROM records ORDER BY name").map_err(&map)?;
            let raw = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&map)?;
            let mut names = Vec::new();
            for name in raw {
                let name = name.map_err(&map)?;
                match ProfileName::parse(&name) {
                    Ok(n) => names.push(n),
                    Err(e) => tracing::warn!(store = %inner.path.display(), error = %e, "skipping a row with an invalid profile name"),
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }
}
