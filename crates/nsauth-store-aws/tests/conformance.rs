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
