//! Opening the database file safely and migrating its schema.
//!
//! The order matters: the file is created 0600 by us (never by SQLite, which would follow
//! the umask), its header is checked before SQLite sees it, and the database is inspected
//! read-only before anything is written, so a damaged or foreign file is never modified.

use crate::errors;
use nsauth_store::StoreError;
use nsauth_store_local::seal::create_private_dir;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::{Duration, Instant};

/// `PRAGMA application_id` of an nsauth store ("nsau").
const APPLICATION_ID: i32 = 0x6e73_6175;

/// Each entry migrates the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE records (
        name TEXT PRIMARY KEY NOT NULL,
        version INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        sealed TEXT NOT NULL
    ) STRICT;",
    // Versions come from one store-wide counter that a delete never resets, so a version is
    // never reused for a name, even across delete + re-create. It starts above every
    // version already in the file.
    "CREATE TABLE version_counter (
        id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
        last INTEGER NOT NULL
    ) STRICT;
    INSERT INTO version_counter (id, last) SELECT 1, coalesce(max(version), 0) FROM records;",
];

/// The schema version this build writes.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// How long a writer waits for another process's lock before reporting "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening waits, in total, for other processes creating or migrating the same file.
const INIT_DEADLINE: Duration = Duration::from_secs(15);

/// Opens (creating if needed) the store database at `path`, ready for use. Many processes may
/// do this at once on a new file: every step that writes runs under SQLite's write lock and
/// is retried on "busy" until [`INIT_DEADLINE`], and the schema is read in one snapshot.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    prepare_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| errors::sqlite(e, path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| errors::sqlite(e, path))?;
    let deadline = Instant::now() + INIT_DEADLINE;
    // Read-only first, so that a damaged or foreign file is refused before any write.
    let state = retry_busy(deadline, || inspect(&mut conn, path))?;
    let mode: String = retry_busy(deadline, || {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| errors::sqlite(e, path))
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::debug!(path = %path.display(), mode, "sqlite store is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| errors::sqlite(e, path))?;
    if state < SCHEMA_VERSION {
        retry_busy(deadline, || migrate(&mut conn, path))?;
    }
    restrict_permissions(path);
    Ok(conn)
}

/// Runs `step` again while it fails with a temporary error (SQLite busy or locked), with a
/// growing, jittered pause, until `deadline`.
fn retry_busy<T>(
    deadline: Instant,
    mut step: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut pause = Duration::from_millis(2);
    loop {
        match step() {
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                std::thread::sleep(nsauth_store_local::retry::jitter(pause));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Creates the directory (0700) and an empty file (0600) if missing, and refuses a file that
/// does not start like a SQLite database.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| errors::io(e, "create the directory", dir))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(errors::io(e, "create the sqlite store", path)),
    }
    // Only its size: opening the file here and closing it again would drop every POSIX lock
    // this process holds on it, those of its other open handles included (a close releases
    // them all), and another process could then checkpoint the WAL from under them: records
    // torn, "disk I/O error". SQLite itself refuses a file that is not a database (NOTADB).
    let size = std::fs::metadata(path)
        .map_err(|e| errors::io(e, "read the sqlite store", path))?
        .len();
    if size > 0 && size < 100 {
        return Err(errors::corrupt_file(
            path,
            "the file is not a SQLite database; move it away or choose another --store",
        ));
    }
    Ok(())
}

/// Reads the schema version without writing, refusing foreign and newer databases. The three
/// values are read in one transaction, so a process migrating the file meanwhile is seen
/// either before or after, never half-way.
fn inspect(conn: &mut Connection, path: &Path) -> Result<i32, StoreError> {
    let map = |e| errors::sqlite(e, path);
    let tx = conn.transaction().map_err(map)?;
    let read = |sql: &str| tx.query_row(sql, [], |r| r.get::<_, i32>(0)).map_err(map);
    let version = read("PRAGMA user_version")?;
    let app = read("PRAGMA application_id")?;
    let objects = read("SELECT count(*) FROM sqlite_master")?;
    tx.commit().map_err(map)?;
    check(version, app, objects, path)?;
    Ok(version)
}

fn check(version: i32, app: i32, objects: i32, path: &Path) -> Result<(), StoreError> {
    if (version == 0 && objects > 0) || (version > 0 && app != APPLICATION_ID) {
        return Err(errors::corrupt_file(
            path,
            "it is a SQLite database of another program, not an nsauth store; choose another path",
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(errors::corrupt_file(
            path,
            format!("it has schema {version} but this nsauth reads up to {SCHEMA_VERSION}; upgrade nsauth"),
        ));
    }
    Ok(())
}

/// Runs the pending migrations in one transaction, re-checking the version under the write
/// lock so that two processes opening a new file at once migrate it once.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let map = |e| errors::sqlite(e, path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map)?;
    let read = |sql: &str| tx.query_row(sql, [], |r| r.get::<_, i32>(0)).map_err(map);
    let version = read("PRAGMA user_version")?;
    check(
        version,
        read("PRAGMA application_id")?,
        read("SELECT count(*) FROM sqlite_master")?,
        path,
    )?;
    for (from, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(sql).map_err(map)?;
        tracing::debug!(path = %path.display(), to = from + 1, "migrated sqlite store schema");
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(map)?;
    tx.commit().map_err(map)
}

/// SQLite creates `-wal` and `-shm` with the database file's mode; make sure all three are
/// private even if the file was created by something else.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if meta.permissions().mode() & 0o077 != 0 {
                if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::warn!(path = ?p, error = %e, "cannot make the sqlite store file private");
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let a = connect(&path).unwrap();
        let b = connect(&path).unwrap();
        for c in [&a, &b] {
            let v: i32 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, SCHEMA_VERSION);
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    #[test]
    fn racing_first_opens_all_succeed_with_one_schema() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("new/s.db");
            let barrier = std::sync::Barrier::new(12);
            std::thread::scope(|s| {
                for _ in 0..12 {
                    s.spawn(|| {
                        barrier.wait();
                        if let Err(e) = connect(&path) {
                            panic!("round {round}: {e}");
                        }
                    });
                }
            });
            let c = connect(&path).unwrap();
            let tables: i32 = c
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(tables, 2, "round {round}");
        }
    }
}
