//! The broker refuses a lease shorter than the HTTP deadline plus the store timeout: a holder
//! whose renewals all fail must still finish (save or journal) before anyone takes over.

mod model;

use nsauth_core::broker::{Broker, BrokerConfig};
use nsauth_core::http::{Http, HttpConfig};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn lease_is_at_least_http_deadline_plus_store_timeout() {
    let http = Http::with_config(HttpConfig {
        deadline: Duration::from_secs(25),
        ..HttpConfig::default()
    })
    .unwrap();
    let b = Broker::new(
        Arc::new(model::Memory::default()),
        http,
        BrokerConfig {
            lease_ttl: Duration::from_secs(3),
            wait_limit: Duration::from_secs(5),
            store_timeout: Duration::from_secs(10),
            ..BrokerConfig::default()
        },
    );
    assert_eq!(b.config().lease_ttl, Duration::from_secs(35));
    assert!(
        b.config().wait_limit >= Duration::from_secs(70),
        "waiters can outlast a dead lease"
    );
    assert!(b.call_limit() > b.config().wait_limit + Duration::from_secs(25));
}
