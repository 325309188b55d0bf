//! The live PostgreSQL server the tests run against (`cargo xtask services up`), and a
//! superuser connection to arrange what a test needs on it.
#![allow(dead_code)]

use nsauth_store_local::seal::StoreKey;
use nsauth_store_postgres::PostgresStore;

/// The server from `.services/env`, as exported by `cargo xtask test`.
pub struct Pg {
    /// `postgres://nsauth_test@127.0.0.1:PORT/nsauth_test?sslmode=disable` (password in
    /// `PGPASSWORD`).
    pub uri: String,
    /// The same database as the superuser `postgres`.
    pub admin_uri: String,
    pub admin_password: String,
}

/// The server, or `None` (after saying so) when none is configured. With
/// `NSAUTH_REQUIRE_SERVICES=1` a missing server fails the test instead.
pub fn pg() -> Option<Pg> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("NSAUTH_TEST_POSTGRES"),
        var("NSAUTH_TEST_POSTGRES_ADMIN"),
        var("NSAUTH_TEST_POSTGRES_ADMIN_PASSWORD"),
    ) {
        (Some(uri), Some(admin_uri), Some(admin_password)) => Some(Pg {
            uri,
            admin_uri,
            admin_password,
        }),
        _ if var("NSAUTH_REQUIRE_SERVICES").as_deref() == Some("1") => panic!(
            "NSAUTH_REQUIRE_SERVICES=1 but NSAUTH_TEST_POSTGRES is not set; run: cargo xtask services up, and export .services/env"
        ),
        _ => {
            eprintln!("SKIPPED: no PostgreSQL (run cargo xtask services up)");
            None
        }
    }
}

/// A table name no other test uses.
pub fn unique_table() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

impl Pg {
    /// The store URI for `table`, with extra `&k=v` parameters.
    pub fn uri_for(&self, table: &str, extra: &str) -> String {
        format!("{}&table={table}{extra}", self.uri)
    }

    /// A new handle on `table`.
    pub fn store(&self, table: &str, key: &StoreKey) -> PostgresStore {
        PostgresStore::open(&self.uri_for(table, ""), key.clone()).expect("open the postgres store")
    }

    /// A superuser session, for creating roles and grants.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let mut cfg: tokio_postgres::Config = self.admin_uri.parse().expect("admin URI");
        cfg.password(self.admin_password.as_bytes());
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect as the superuser");
        tokio::spawn(conn);
        client
    }
}
