//! The shared behaviour suite against a real moto server: every `open()` is a new store with
//! its own SDK client, all on one random prefix.

mod common;

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::TokenStore;
use nsauth_store_aws::AwsStore;
use std::sync::Arc;

struct AwsFixture {
    uri: String,
}

impl AwsFixture {
    /// `None` (and a SKIPPED line) when moto is not running and not required.
    fn new() -> Option<Self> {
        let endpoint = common::moto()?;
        Some(Self {
            uri: common::uri(&endpoint, "&force-delete=true"),
        })
    }
}

#[async_trait]
impl Fixture for AwsFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(AwsStore::from_uri(&self.uri).expect("open the aws-sm store"))
    }
}

nsauth_conformance::store_suite!({
    let Some(fixture) = AwsFixture::new() else {
        return;
    };
    fixture
});

/// Without `force-delete`, a deleted secret waits out its recovery window and a re-create
/// restores and overwrites it: the re-created record's versions must not repeat the
/// deleted one's either, and a writer holding a deleted version must never match.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_never_reused_across_a_recovery_window_delete() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let fixture = AwsFixture {
        uri: common::uri(&endpoint, ""),
    };
    nsauth_conformance::version_never_reused_across_delete(&fixture).await;
}
