//! The shared behaviour suite, against a live PostgreSQL server; every fixture has its own
//! table (so test runs never collide) and every handle its own connection.

mod common;

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::TokenStore;
use nsauth_store_local::seal::StoreKey;
use std::sync::Arc;

struct PgFixture {
    pg: common::Pg,
    table: String,
    key: StoreKey,
}

impl PgFixture {
    fn new() -> Option<Self> {
        Some(Self {
            pg: common::pg()?,
            table: common::unique_table(),
            key: StoreKey::generate(),
        })
    }
}

#[async_trait]
impl Fixture for PgFixture {
    async fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(self.pg.store(&self.table, &self.key))
    }
}

nsauth_conformance::store_suite!(match PgFixture::new() {
    Some(fixture) => fixture,
    None => return,
});
