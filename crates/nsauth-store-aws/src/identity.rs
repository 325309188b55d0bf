//! The canonical identity of a store: prefix, resolved region and endpoint.
//!
//! `describe()` must tell two stores apart whenever they hold different secrets: the
//! recovery journal keys its entries by it. The prefix alone does not (the same prefix in
//! two regions, or on a local endpoint, is another store), so the region and endpoint are
//! resolved here the way the client resolves them, and the client then uses exactly these.

use crate::uri::StoreUri;
use aws_config::meta::region::ProvideRegion;
use aws_sdk_secretsmanager::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Where a store's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The region; `None` when only the EC2 instance metadata service can tell (resolved by
    /// the client, shown as `instance-metadata`).
    pub region: Option<String>,
    /// The endpoint: the URI's, else `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL`,
    /// else the AWS default for the region. `None` with `region`.
    pub endpoint: Option<String>,
    /// Whether `endpoint` is configured (URI or environment) rather than AWS's default.
    pub configured_endpoint: bool,
}

impl Identity {
    /// `aws-sm://PREFIX?region=R&endpoint=URL`.
    pub fn describe(&self, prefix: &str) -> String {
        format!(
            "aws-sm://{prefix}?region={}&endpoint={}",
            self.region.as_deref().unwrap_or("instance-metadata"),
            self.endpoint.as_deref().unwrap_or("default")
        )
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn env_true(name: &str) -> bool {
    env(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The region from the AWS config files for `AWS_PROFILE` (file reads only).
fn profile_region() -> Option<String> {
    // The SDK's profile parser is async; it only reads files. Run it on a thread of its own
    // so that this works inside and outside a runtime.
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
            rt.block_on(async {
                aws_config::profile::ProfileFileRegionProvider::builder()
                    .build()
                    .region()
                    .await
                    .map(|r| r.to_string())
            })
        })
        .join()
        .ok()
        .flatten()
    })
}

/// The AWS default endpoint of Secrets Manager in `region`, as the SDK resolves it.
fn default_endpoint(region: &str) -> Option<String> {
    let params = Params::builder()
        .region(region)
        .use_fips(env_true("AWS_USE_FIPS_ENDPOINT"))
        .use_dual_stack(env_true("AWS_USE_DUALSTACK_ENDPOINT"))
        .build()
        .ok()?;
    let resolver = DefaultResolver::new();
    let mut fut = std::pin::pin!(resolver.resolve_endpoint(&params));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(e)) => Some(e.url().to_owned()),
        _ => None,
    }
}

/// Resolves the identity of `uri`: region from the URI, else `AWS_REGION` /
/// `AWS_DEFAULT_REGION`, else the AWS profile; endpoint from the URI, else the environment,
/// else AWS's default for the region.
pub(crate) fn resolve(uri: &StoreUri) -> Identity {
    let region = uri
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(profile_region);
    let configured = uri.endpoint.clone().or_else(|| {
        if env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
            None
        } else {
            env("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| env("AWS_ENDPOINT_URL"))
        }
    });
    let configured_endpoint = configured.is_some();
    let endpoint = configured.or_else(|| region.as_deref().and_then(default_endpoint));
    Identity {
        region,
        endpoint,
        configured_endpoint,
    }
}
