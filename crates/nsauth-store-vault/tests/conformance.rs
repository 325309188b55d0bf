//! The shared behaviour suite, against a live OpenBao server with the policy-limited token;
//! every handle is a new HTTP client with its own connection pool.

mod common;

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::TokenStore;
use std::sync::Arc;

struct VaultFixture {
    bao: common::Bao,
    /// One prefix per test, so tests never see each other's profiles.
    prefix: String,
}

impl VaultFixture {
    fn new() -> Option<Self> {
        let bao = common::bao()?;
        let prefix = bao.unique_prefix();
        Some(Self { bao, prefix })
    }
}

#[async_trait]
impl Fixture for VaultFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(self.bao.store(&self.prefix))
    }
}

nsauth_conformance::store_suite!(match VaultFixture::new() {
    Some(fixture) => fixture,
    None => return,
});
