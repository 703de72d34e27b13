//! # dual-auth
//!
//! Lets an AI agent act with two identities at once: its own (an OAuth client) and the
//! human's on whose behalf it works, so every API call can be authorised and audited
//! against both. The Rust successor of the Python package `dual-auth` 1.0.1, wire-compatible
//! with it.
//!
//! This umbrella crate re-exports the workspace's crates behind Cargo features, so a
//! program compiles only the vendors, secret stores and API-side pieces it uses:
//!
//! ```toml
//! [dependencies]
//! dual-auth = { version = "0.1", default-features = false, features = ["okta"] }
//! ```
//!
//! ## Features
//!
//! | feature | what it compiles in | default |
//! |---|---|---|
//! | `keycloak` | the Keycloak adapter (`dual-auth-keycloak`), as `keycloak` | yes |
//! | `auth0` | the Auth0 adapter (`dual-auth-auth0`), as `auth0` | yes |
//! | `okta` | the Okta adapter (`dual-auth-okta`), as `okta` | yes |
//! | `entraid` | the Microsoft Entra ID adapter (`dual-auth-entraid`), as `entraid` | yes |
//! | `aws` | AWS Secrets Manager as a configuration backend (`DUAL_AUTH_SECRETS_BACKEND=aws`) | no |
//! | `azure` | Azure Key Vault as a configuration backend (`azure`) | no |
//! | `gcp` | Google Cloud Secret Manager as a configuration backend (`gcp`) | no |
//! | `vault` | HashiCorp Vault / OpenBao as a configuration backend (`vault`) | no |
//! | `redis` | for agents with several replicas: a shared replay guard and an encrypted shared token cache (`dual-auth-redis`), as `redis` | no |
//! | `verify` | the API side: verifying dual-subject tokens, with a tower layer and an axum extractor (`dual-auth-verify`), as `verify` | no |
//! | `full` | all of the above | no |
//!
//! The defaults are the four vendors and configuration from the environment (and `.env`)
//! only; each vendor or store compiles one adapter crate or one SDK and nothing else. A
//! vendor or backend chosen at run time whose feature is off is refused with the feature's
//! name.
//!
//! What's here: the human identity ([`Act`], [`UserSession`]), act JWTs for remote agents
//! ([`ActJwtSigner`], [`ActJwtVerifier`]), the four vendor adapters, the two flows and the
//! token cache ([`session`]), the API client ([`api`]), configuration from the environment
//! or a secret store ([`load_config`], [`config`]), [`build_adapter`], which turns a
//! vendor's configuration into a cached adapter, and, with the `verify` feature, the API
//! side that verifies the tokens (`verify`).
//!
//! ```
//! use dual_auth::prelude::*;
//!
//! let act = UserSession::new("alice@corp.example.com").with_user_id("user_12345").to_act()?;
//! assert_eq!(act.sub(), "user_12345");
//! # Ok::<(), dual_auth::ActError>(())
//! ```
#![forbid(unsafe_code)]

use std::sync::Arc;

pub use dual_auth_core::*;

/// The flows and the token cache (`dual-auth-session`).
pub use dual_auth_session as session;

/// The API client (`dual-auth-api`).
pub use dual_auth_api as api;

/// Configuration sources and validation (`dual-auth-config`).
pub use dual_auth_config as config;

/// Redis for replicas: shared replay guard and encrypted token cache (feature `redis`).
#[cfg(feature = "redis")]
pub use dual_auth_redis as redis;

/// The API side: verifying dual-subject tokens (feature `verify`).
#[cfg(feature = "verify")]
pub use dual_auth_verify as verify;

/// The Keycloak adapter crate (feature `keycloak`).
#[cfg(feature = "keycloak")]
pub use dual_auth_keycloak as keycloak;

/// The Auth0 adapter crate (feature `auth0`).
#[cfg(feature = "auth0")]
pub use dual_auth_auth0 as auth0;

/// The Okta adapter crate (feature `okta`).
#[cfg(feature = "okta")]
pub use dual_auth_okta as okta;

/// The Microsoft Entra ID adapter crate (feature `entraid`).
#[cfg(feature = "entraid")]
pub use dual_auth_entraid as entraid;

/// One vendor's configuration, for the vendors compiled in.
#[derive(Debug)]
#[non_exhaustive]
pub enum VendorConfig {
    /// Keycloak (feature `keycloak`).
    #[cfg(feature = "keycloak")]
    Keycloak(keycloak::KeycloakConfig),
    /// Auth0 (feature `auth0`).
    #[cfg(feature = "auth0")]
    Auth0(auth0::Auth0Config),
    /// Okta (feature `okta`).
    #[cfg(feature = "okta")]
    Okta(okta::OktaConfig),
    /// Microsoft Entra ID (feature `entraid`).
    #[cfg(feature = "entraid")]
    EntraId(entraid::EntraIdConfig),
}

impl VendorConfig {
    /// The agent's client id (`AGENT_CLIENT_ID`).
    pub fn client_id(&self) -> &str {
        match self {
            #[cfg(feature = "keycloak")]
            Self::Keycloak(c) => &c.client_id,
            #[cfg(feature = "auth0")]
            Self::Auth0(c) => &c.client_id,
            #[cfg(feature = "okta")]
            Self::Okta(c) => &c.client_id,
            #[cfg(feature = "entraid")]
            Self::EntraId(c) => &c.client_id,
            #[allow(unreachable_patterns)]
            _ => "",
        }
    }
}

/// Checks that `vendor` is compiled into this build.
///
/// # Errors
/// [`IamError::NotSupported`] naming the Cargo feature to enable.
pub fn ensure_vendor_compiled(vendor: Vendor) -> Result<(), IamError> {
    // Each arm is a compile-time constant that depends on the features built.
    #[allow(clippy::match_like_matches_macro)]
    let compiled = match vendor {
        Vendor::Keycloak => cfg!(feature = "keycloak"),
        Vendor::Auth0 => cfg!(feature = "auth0"),
        Vendor::Okta => cfg!(feature = "okta"),
        Vendor::EntraId => cfg!(feature = "entraid"),
        _ => false,
    };
    if compiled {
        Ok(())
    } else {
        Err(IamError::NotSupported { what: format!("vendor {vendor} is not compiled in: enable the dual-auth feature \"{vendor}\"") })
    }
}

/// The configured vendor's adapter behind a token cache (pass
/// `TokenCacheSettings { enabled: false, .. }` to turn the cache off): the guide's
/// `get_adapter()` without the boilerplate.
///
/// # Errors
/// The vendor adapter's [`IamError::Configuration`].
// With no vendor compiled in, `VendorConfig` has no values and the body cannot run.
#[cfg_attr(
    not(any(feature = "keycloak", feature = "auth0", feature = "okta", feature = "entraid")),
    allow(unreachable_code, unused_variables)
)]
pub fn build_adapter(
    config: VendorConfig,
    options: token_endpoint::AdapterOptions,
    cache: session::TokenCacheSettings,
) -> Result<Arc<dyn IamAdapter>, IamError> {
    let adapter: Arc<dyn IamAdapter> = match config {
        #[cfg(feature = "keycloak")]
        VendorConfig::Keycloak(config) => Arc::new(keycloak::KeycloakAdapter::new(config, options)?),
        #[cfg(feature = "auth0")]
        VendorConfig::Auth0(config) => Arc::new(auth0::Auth0Adapter::new(config, options)?),
        #[cfg(feature = "okta")]
        VendorConfig::Okta(config) => Arc::new(okta::OktaAdapter::new(config, options)?),
        #[cfg(feature = "entraid")]
        VendorConfig::EntraId(config) => Arc::new(entraid::EntraIdAdapter::new(config, options)?),
    };
    if cache.enabled { Ok(Arc::new(session::CachingAdapter::new(adapter, cache))) } else { Ok(adapter) }
}

/// Setting up failed: the configuration, or the adapter built from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The adapter refused the configuration.
    #[error(transparent)]
    Iam(#[from] IamError),
}

/// Everything [`load_config`] read: the vendor's typed configuration and the HTTP settings.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadedConfig {
    /// Where the values came from.
    pub backend: SecretBackend,
    /// The vendor chosen.
    pub vendor: Vendor,
    /// The vendor's configuration.
    pub vendor_config: VendorConfig,
    /// HTTP settings (with `DUAL_AUTH_CA_BUNDLE`'s roots).
    pub http: token_endpoint::HttpSettings,
    /// DPoP-bound tokens (`DUAL_AUTH_DPOP`, `DUAL_AUTH_DPOP_KEY_PATH`,
    /// `DUAL_AUTH_DPOP_ALLOW_DOWNGRADE`); `None` when off.
    pub dpop: Option<token_endpoint::DpopSettings>,
}

impl LoadedConfig {
    /// The adapter options this configuration gives: its HTTP settings and DPoP.
    pub fn adapter_options(&self) -> token_endpoint::AdapterOptions {
        let options = token_endpoint::AdapterOptions::with_http(self.http.clone());
        match &self.dpop {
            Some(dpop) => options.with_dpop(dpop.clone()),
            None => options,
        }
    }

    /// The adapter for this configuration (with DPoP when configured), behind a token
    /// cache with default settings.
    ///
    /// # Errors
    /// [`SetupError::Iam`] when the adapter refuses the configuration (for example
    /// [`IamError::NotSupported`] for DPoP with Entra ID).
    pub fn into_adapter(self) -> Result<Arc<dyn IamAdapter>, SetupError> {
        let options = self.adapter_options();
        Ok(build_adapter(self.vendor_config, options, session::TokenCacheSettings::default())?)
    }
}

/// The guide's `get_config()` + `get_vendor()`: reads `.env` (if present, never overriding
/// the environment), picks the backend (`backend`, else `DUAL_AUTH_SECRETS_BACKEND`, else
/// env) and the vendor (`vendor`, else `DUAL_AUTH_VENDOR`, else keycloak), and loads that
/// vendor's typed configuration and DPoP (`DUAL_AUTH_DPOP`, off by default).
///
/// ```no_run
/// # async fn run() -> Result<(), dual_auth::SetupError> {
/// let adapter = dual_auth::load_config(None, None).await?.into_adapter()?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`SetupError::Config`] naming the key, the backend and the fix.
pub async fn load_config(vendor: Option<Vendor>, backend: Option<SecretBackend>) -> Result<LoadedConfig, SetupError> {
    let env = config::EnvSource::with_dotenv_if_present()?;
    load_config_from(&env, vendor, backend).await
}

/// [`load_config`] with an explicit environment (for tests and embedding).
///
/// # Errors
/// As [`load_config`].
pub async fn load_config_from(
    env: &config::EnvSource,
    vendor: Option<Vendor>,
    backend: Option<SecretBackend>,
) -> Result<LoadedConfig, SetupError> {
    let backend = config::select_backend(backend, env)?;
    let source = config::open_source(backend, env).await?;
    let vendor = config::select_vendor(vendor, source.as_ref(), env).await?;
    ensure_vendor_compiled(vendor)?;
    let reader = config::ConfigReader::new(source.as_ref());
    let vendor_config = load_vendor_config(vendor, &reader).await?;
    let dpop = reader.dpop_settings().await?;
    let http = config::ConfigReader::new(env).http_settings().await?;
    Ok(LoadedConfig { backend, vendor, vendor_config, http, dpop })
}

// With no vendor compiled in, every vendor is refused before this runs.
#[cfg_attr(
    not(all(feature = "keycloak", feature = "auth0", feature = "okta", feature = "entraid")),
    allow(unreachable_code, unused_variables)
)]
async fn load_vendor_config(vendor: Vendor, reader: &config::ConfigReader<'_>) -> Result<VendorConfig, SetupError> {
    Ok(match vendor {
        #[cfg(feature = "keycloak")]
        Vendor::Keycloak => VendorConfig::Keycloak(keycloak::KeycloakConfig::load(reader).await?),
        #[cfg(feature = "auth0")]
        Vendor::Auth0 => VendorConfig::Auth0(auth0::Auth0Config::load(reader).await?),
        #[cfg(feature = "okta")]
        Vendor::Okta => VendorConfig::Okta(okta::OktaConfig::load(reader).await?),
        #[cfg(feature = "entraid")]
        Vendor::EntraId => VendorConfig::EntraId(entraid::EntraIdConfig::load(reader).await?),
        other => {
            return Err(ensure_vendor_compiled(other).err().unwrap_or(IamError::NotSupported { what: format!("vendor {other}") }).into());
        }
    })
}

/// The names most programs need, in one `use`.
pub mod prelude {
    pub use dual_auth_api::{ApiClient, ApiRequest, ApiResponse, InSessionAPICall, OutOfSessionAPICall};
    pub use dual_auth_core::secrecy::{ExposeSecret, SecretString};
    pub use dual_auth_core::token_endpoint::{AdapterOptions, DpopSettings, HttpSettings};
    pub use dual_auth_core::{
        Act, ActError, ActJwtError, ActJwtSigner, ActJwtVerifier, ClientAuthentication, DelegationMode, DelegationRequest, DpopKey,
        IamAdapter, IamError, ReplayGuard, SecretSource, SigningKey, SubjectToken, SubjectTokenType, TokenRequest, TokenResponse,
        UserSession, Vendor, VerifyingKey,
    };
    pub use dual_auth_session::{
        CachingAdapter, HybridSender, InSessionTokenRequest, OutOfSessionTokenRequest, SessionError, TokenCacheSettings,
    };

    pub use crate::{LoadedConfig, SetupError, VendorConfig, build_adapter, load_config};
}
