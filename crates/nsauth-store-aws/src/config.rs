//! Building the Secrets Manager client: the standard AWS chain for region and credentials,
//! without the long instance-metadata probing that makes a laptop with no credentials hang,
//! and an HTTPS client on rustls with ring.

use crate::identity::Identity;
use crate::uri::StoreUri;
use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use nsauth_store::StoreError;
use std::time::Duration;

/// Whether credentials and the region may come from the EC2 instance metadata service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceMetadata {
    /// Only on an EC2 instance (detected from the machine's DMI data or `/sys/hypervisor`),
    /// or when `AWS_EC2_METADATA_SERVICE_ENDPOINT` is set; never when
    /// `AWS_EC2_METADATA_DISABLED=true`.
    #[default]
    Auto,
    /// Always ask the metadata service (one attempt, 1 s timeouts).
    Enabled,
    /// Never ask it.
    Disabled,
}

/// How an [`AwsStore`](crate::AwsStore) finds its configuration beyond the URI.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// Where credentials may come from. `None` uses the standard AWS chain: environment
    /// variables, the shared config and credentials files (`AWS_PROFILE`, SSO,
    /// `credential_process`, assumed roles), web identity (`AWS_ROLE_ARN` +
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`), ECS container credentials, then, per
    /// [`instance_metadata`](Self::instance_metadata), the EC2 metadata service.
    pub credentials: Option<Credentials>,
    /// Whether the EC2 instance metadata service is asked.
    pub instance_metadata: InstanceMetadata,
    /// The longest the first call waits for credentials before failing.
    pub credentials_timeout: Duration,
    /// The longest one call (all attempts included) may take.
    pub operation_timeout: Duration,
    /// Attempts per call, retries of throttling, 5xx and connection errors included.
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            credentials: None,
            instance_metadata: InstanceMetadata::Auto,
            credentials_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }
}

impl Settings {
    /// The defaults with fixed credentials instead of the chain.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }
}

/// An HTTPS (and plain HTTP, for local endpoints) client on rustls with the ring provider.
fn http_client() -> aws_sdk_secretsmanager::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The Secrets Manager client's HTTP client. For a plain `http://` endpoint (a local one)
/// it trusts no certificate: loading the system's CA certificates costs more instructions
/// than the rest of a cached `token` together, and such an endpoint never does TLS.
/// Credential providers keep [`http_client`].
fn service_http_client(endpoint: Option<&str>) -> aws_sdk_secretsmanager::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    if !endpoint.is_some_and(|e| e.starts_with("http://")) {
        return http_client();
    }
    let no_roots = TlsContext::builder()
        .with_trust_store(TrustStore::empty())
        .build()
        .expect("a TLS context without certificates is valid");
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(no_roots)
        .build_https()
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.eq_ignore_ascii_case(value))
}

/// Whether this looks like an EC2 instance, from files the kernel exposes.
fn on_ec2() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    read("/sys/class/dmi/id/board_asset_tag").starts_with("i-")
        || read("/sys/class/dmi/id/sys_vendor").contains("Amazon EC2")
        || read("/sys/class/dmi/id/bios_vendor").contains("Amazon EC2")
        || read("/sys/hypervisor/uuid").starts_with("ec2")
}

fn imds_wanted(mode: InstanceMetadata) -> bool {
    match mode {
        InstanceMetadata::Enabled => true,
        InstanceMetadata::Disabled => false,
        InstanceMetadata::Auto => {
            !env_is("AWS_EC2_METADATA_DISABLED", "true")
                && (std::env::var_os("AWS_EC2_METADATA_SERVICE_ENDPOINT").is_some() || on_ec2())
        }
    }
}

fn imds_client() -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(1))
        .max_attempts(1)
        .build()
}

/// The region: the URI's, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile's, else
/// (where allowed) the instance's.
async fn region(uri: &StoreUri, base: &ProviderConfig, imds: bool) -> Result<Region, StoreError> {
    if let Some(r) = &uri.region {
        return Ok(Region::new(r.clone()));
    }
    let mut chain = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(
            aws_config::profile::ProfileFileRegionProvider::builder()
                .configure(base)
                .build(),
        );
    if imds {
        chain = chain.or_else(
            aws_config::imds::region::ImdsRegionProvider::builder()
                .imds_client(imds_client())
                .configure(base)
                .build(),
        );
    }
    chain.region().await.ok_or_else(|| {
        StoreError::Config(format!(
            "no AWS region for store aws-sm://{}: add ?region=REGION to the store URI, or set AWS_REGION (or a region in your AWS profile)",
            uri.prefix
        ))
    })
}

/// The standard credential chain, with the metadata service only where it can answer.
fn credential_chain(base: &ProviderConfig, imds: bool) -> CredentialsProviderChain {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let mut chain = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Profile",
        aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(base)
            .build(),
    );
    // Web identity (CI OIDC) and ECS providers only when their variables say they can answer:
    // building the web identity provider creates an STS client and loads every system CA
    // certificate, most of a `token` call's cost otherwise.
    if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        chain = chain.or_else(
            "WebIdentityToken",
            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(base)
                .build(),
        );
    }
    if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        chain = chain.or_else(
            "EcsContainer",
            aws_config::ecs::EcsCredentialsProvider::builder()
                .configure(base)
                .build(),
        );
    }
    if imds {
        chain = chain.or_else(
            "Ec2InstanceMetadata",
            aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .imds_client(imds_client())
                .configure(base)
                .build(),
        );
    }
    chain
}

/// Finds credentials once with a deadline, so that a machine without any fails in seconds
/// with a message that says what to set.
async fn check_credentials(
    provider: &SharedCredentialsProvider,
    settings: &Settings,
    prefix: &str,
) -> Result<(), StoreError> {
    let limit = settings.credentials_timeout;
    match tokio::time::timeout(limit, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_))) => {
            Err(StoreError::Denied(format!(
                "no AWS credentials found for store aws-sm://{prefix}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (run `aws sso login` for an SSO profile), or AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE"
            )))
        }
        Ok(Err(e)) => Err(StoreError::Denied(format!(
            "cannot load AWS credentials for store aws-sm://{prefix}: {}",
            one_line(&DisplayErrorContext(&e).to_string())
        ))),
        Err(_) => Err(StoreError::Unavailable {
            message: format!(
                "looking for AWS credentials for store aws-sm://{prefix} took longer than {} s; check the network, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
                limit.as_secs_f32()
            ),
            retryable: true,
        }),
    }
}

/// Builds the client for `uri`. Reads the environment and the AWS config files and may
/// call STS, SSO or the metadata service to find credentials.
pub(crate) async fn client(
    uri: &StoreUri,
    id: &Identity,
    settings: &Settings,
) -> Result<aws_sdk_secretsmanager::Client, StoreError> {
    let http = http_client();
    let base = ProviderConfig::default().with_http_client(http);
    let imds = settings.credentials.is_none() && imds_wanted(settings.instance_metadata);
    let region = match &id.region {
        Some(r) => Region::new(r.clone()),
        None => region(uri, &base, imds).await?,
    };
    let credentials = match &settings.credentials {
        Some(fixed) => SharedCredentialsProvider::new(fixed.clone()),
        None => SharedCredentialsProvider::new(credential_chain(
            &base.with_region(Some(region.clone())),
            imds,
        )),
    };
    check_credentials(&credentials, settings, &uri.prefix).await?;

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(service_http_client(id.endpoint.as_deref()))
        .region(region)
        .credentials_provider(credentials)
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(settings.operation_timeout.min(Duration::from_secs(10)))
                .operation_timeout(settings.operation_timeout)
                .build(),
        );
    if let Some(endpoint) = id.endpoint.as_ref().filter(|_| id.configured_endpoint) {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    Ok(aws_sdk_secretsmanager::Client::new(&config))
}

/// Joins a multi-line message into one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
