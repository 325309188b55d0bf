//! The shared behaviour suite, on one SQLite file opened through a new connection per handle.

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::TokenStore;
use nsauth_store_local::seal::StoreKey;
use nsauth_store_sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

struct SqliteFixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key: StoreKey,
}

impl SqliteFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store").join("nsauth.db");
        Self {
            _dir: dir,
            path,
            key: StoreKey::generate(),
        }
    }
}

#[async_trait]
impl Fixture for SqliteFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(SqliteStore::open(&self.path, self.key.clone()).expect("open the sqlite store"))
    }
}

nsauth_conformance::store_suite!(SqliteFixture::new());
