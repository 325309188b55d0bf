//! The moto server the tests run against, from `cargo xtask services up`.

#![allow(dead_code)]

use nsauth_store_aws::AwsStore;

/// The moto endpoint, or `None` (after saying so) when the tests should skip. Panics when
/// `NSAUTH_REQUIRE_SERVICES=1` and moto is missing, so CI cannot pass by skipping.
pub fn moto() -> Option<String> {
    match std::env::var("NSAUTH_TEST_AWS_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("NSAUTH_REQUIRE_SERVICES").as_deref() == Ok("1") => panic!(
            "NSAUTH_TEST_AWS_ENDPOINT is not set but NSAUTH_REQUIRE_SERVICES=1: start moto with `cargo xtask services up` and export .services/env"
        ),
        _ => {
            eprintln!("SKIPPED: no moto (run cargo xtask services up)");
            None
        }
    }
}

/// A store URI under a prefix no other test uses.
pub fn uri(endpoint: &str, options: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "aws-sm://nsauth-test/{}?endpoint={endpoint}&region=us-east-1{options}",
        &id[..12]
    )
}

/// A store on moto, or return from the test when moto is missing.
#[macro_export]
macro_rules! moto_store {
    ($options:expr) => {{
        let Some(endpoint) = common::moto() else {
            return;
        };
        let uri = common::uri(&endpoint, $options);
        nsauth_store_aws::AwsStore::from_uri(&uri).expect("valid store URI")
    }};
}

/// The raw Secrets Manager client of `store`, to look behind it.
pub async fn raw(store: &AwsStore) -> &aws_sdk_secretsmanager::Client {
    store.client().await.expect("client")
}

/// Every stage label of `secret`, by version.
pub async fn stages(store: &AwsStore, secret: &str) -> Vec<(String, Vec<String>)> {
    let d = raw(store)
        .await
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .expect("describe");
    let mut out: Vec<(String, Vec<String>)> = d
        .version_ids_to_stages()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    out.sort();
    out
}
