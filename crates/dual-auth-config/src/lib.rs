//! # dual-auth-config
//!
//! Where configuration values come from, with the Python package's names:
//!
//! - [`EnvSource`]: environment variables, over an optional `.env` file (never overriding
//!   the real environment, never modifying it);
//! - secret stores behind features (`aws`, `gcp`, `azure`, `vault`), each a
//!   [`dual_auth_core::SecretSource`];
//! - [`CachedSource`]: fetch once, keep for a while, one request for concurrent loads;
//! - [`ConfigReader`]: typed, validated values (HTTPS URLs, readable key files, client
//!   authentication, extra CA roots) whose errors name the key, the backend and the fix;
//! - [`select_vendor_among`] and [`select_backend`]: `DUAL_AUTH_VENDOR` (among the vendors
//!   the caller names) and `DUAL_AUTH_SECRETS_BACKEND`.
//!
//! Vendors are not known here: each vendor crate names its own settings and loads its
//! typed configuration from a [`ConfigReader`].
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "azure")]
mod azure;
mod cache;
mod env;
mod error;
#[cfg(feature = "gcp")]
mod gcp;
mod names;
mod open;
mod reader;
mod select;
#[cfg(feature = "vault")]
mod vault;

#[cfg(feature = "aws")]
pub use aws::AwsSource;
#[cfg(feature = "azure")]
pub use azure::AzureSource;
pub use cache::{CachedSource, DEFAULT_SECRET_TTL};
pub use env::{DOTENV_TRUST_VARIABLE, EnvSource, decides_where_credentials_go};
pub use error::ConfigError;
#[cfg(feature = "gcp")]
pub use gcp::GcpSource;
pub use names::store_name;
pub use open::open_source;
pub use reader::{ConfigReader, keys};
pub use select::{select_backend, select_vendor_among};
#[cfg(feature = "vault")]
pub use vault::{KUBERNETES_TOKEN_PATH, VaultSource};
