//! # nsauth-store-aws
//!
//! An nsauth [`TokenStore`](nsauth_store::TokenStore) in AWS Secrets Manager, for teams and
//! CI jobs that share one NetSuite integration. Every profile is one secret named
//! `PREFIX/PROFILE`, holding the record as JSON (encrypted at rest by Secrets Manager with
//! its default key, or the KMS key given as `kms-key-id`).
//!
//! Writes are compare-and-swap on the Secrets Manager version ID, using the service's own
//! version stages: a new version is put under a private stage label, then `AWSCURRENT` is
//! moved to it with `RemoveFromVersionId` set to the version the writer read. The service
//! refuses that move when another writer moved `AWSCURRENT` first, which nsauth reports as
//! [`StoreError::Conflict`]. Creating is `CreateSecret`, which fails when the name exists.
//! Version IDs are random UUIDs, so a version is never reused for a name. A delete first
//! swaps `AWSCURRENT` to a tombstone version the same way (so it is conditional, and a writer
//! holding the deleted version can never bring the record back, even during the recovery
//! window), then deletes the secret.
//!
//! Region and credentials come from the URI and the standard AWS chain (`AWS_REGION`,
//! `AWS_PROFILE`, SSO, web identity, ...). [`AwsStore::from_uri`] does no I/O: the AWS
//! configuration is read on first use, and a machine without credentials fails within a few
//! seconds with a message that says what to set (the EC2 metadata service is only asked on
//! EC2). See `docs/stores/aws.md` for setup and the least-privilege IAM policy.
//!
//! ```
//! use nsauth_store::TokenStore;
//! use nsauth_store_aws::AwsStore;
//!
//! let store = AwsStore::from_uri("aws-sm://nsauth/prod?region=eu-west-1").unwrap();
//! assert_eq!(
//!     store.describe(),
//!     "aws-sm://nsauth/prod?region=eu-west-1&endpoint=https://secretsmanager.eu-west-1.amazonaws.com"
//! );
//! assert!(store.capabilities().compare_and_swap);
//! let name = nsauth_store::ProfileName::parse("sb1").unwrap();
//! assert_eq!(store.secret_name(&name), "nsauth/prod/sb1");
//! ```
//!
//! [`StoreError::Conflict`]: nsauth_store::StoreError::Conflict
#![warn(missing_docs)]

mod config;
mod delete;
mod errors;
mod identity;
mod names;
mod store;
mod uri;

pub use aws_sdk_secretsmanager::config::Credentials;
pub use config::{InstanceMetadata, Settings};
pub use store::AwsStore;

/// The URI scheme of this store.
pub const SCHEME: &str = "aws-sm";

/// The URI syntax, as shown by `nsauth backends`.
pub const URI_HELP: &str =
    "aws-sm://PREFIX?region=R&endpoint=URL&kms-key-id=K (standard AWS credential chain)";

/// The stage label prefix under which a writer parks a new version until it becomes
/// `AWSCURRENT` (the label is removed right after).
pub const PENDING_LABEL_PREFIX: &str = store::PENDING_LABEL_PREFIX;
