//! The shared behaviour suite, on one directory opened through a new handle each time.

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::TokenStore;
use nsauth_store_file::FileStore;
use nsauth_store_local::seal::StoreKey;
use std::path::PathBuf;
use std::sync::Arc;

struct FileFixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key: StoreKey,
}

impl FileFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("profiles");
        Self {
            _dir: dir,
            path,
            key: StoreKey::generate(),
        }
    }
}

#[async_trait]
impl Fixture for FileFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(FileStore::open(&self.path, self.key.clone()).expect("open the file store"))
    }
}

nsauth_conformance::store_suite!(FileFixture::new());
