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
//! | `mcp` | MCP with both identities: an MCP server as an OAuth protected resource (`verify::mcp`) and an `rmcp` client whose tokens come from a grant (`api::mcp`); implies `verify` | no |
//! | `full` | all of the above | no |
//!
//! The defaults are the four vendors and configuration from the environment (and `.env`)
//! only; each vendor or store compiles one adapter crate or one SDK and nothing else. A
//! vendor or backend chosen at run time whose feature is off is refused with one error,
//! [`config::ConfigError::NotCompiled`], naming the feature. [`VENDORS`] lists the vendors
//! and their features; docs.rs shows which feature each item needs.
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
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;

// Core's public surface, named one by one: what a program needs, nothing a sibling crate
// uses only internally.
pub use dual_auth_core::{
    ACCESS_TOKEN_TYPE, ACT_ASSERTION_HEADER, ACT_ASSERTION_TYPE, ASSERTION_LIFETIME, Act, ActAssertionSource, ActError, ActJwtError,
    ActJwtSigner, ActJwtVerifier, ActJwtVerifierBuilder, AssertionClaims, BoxError, CLIENT_ASSERTION_TYPE, ClientAuthentication, Clock,
    DEFAULT_ACT_JWT_ISSUER, DEFAULT_ACT_JWT_TTL, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, DEFAULT_REPLAY_CAPACITY, DELEGATION_SETTING,
    DPOP_HEADER, DPOP_NONCE_HEADER, DPOP_PROOF_TYPE, DelegationMode, DelegationRequest, DpopKey, ErrorChain, GeneratedKeyPair, HmacKey,
    HumanLogId, ID_TOKEN_TYPE, IamAdapter, IamError, InMemoryReplayGuard, JWT_BEARER_GRANT, JWT_TOKEN_TYPE, KeyError, KeyType,
    MAX_ACT_JWT_TTL, MAX_LEEWAY, MAX_OAUTH_DESCRIPTION_CHARS, MAX_OAUTH_ERROR_CHARS, MAX_REPLAY_PARTIES, MAX_TOKEN_LIFETIME,
    MIN_ACT_JWT_TTL, MIN_HS256_SECRET_BYTES, ManualClock, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, RSA_BITS_RANGE, ReplayError, ReplayGuard,
    SecretBackend, SecretError, SecretSource, SigningAlgorithm, SigningKey, SubjectToken, SubjectTokenType, SystemClock,
    TOKEN_EXCHANGE_GRANT, TokenRequest, TokenResponse, USE_DPOP_NONCE, UnknownDelegationMode, UnknownSecretBackend, UnknownVendor,
    UserSession, Vendor, VerifiedActJwt, VerifyingKey, access_token_hash, check_agent_endpoint, claim_lookup, dpop_htu, escape_html,
    escape_untrusted, generate_key_pair, jwk_thumbprint, new_jti, pkce_s256_challenge, truncate_untrusted, warn_if_readable_by_others,
};
pub use dual_auth_core::{dangerous, http, jwt, protected_resource, provider, secrecy, token_endpoint};

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

/// One vendor the umbrella knows, compiled in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendorEntry {
    /// The vendor, as `DUAL_AUTH_VENDOR` names it.
    pub vendor: Vendor,
    /// The Cargo feature of this crate that compiles it in.
    pub feature: &'static str,
    /// Whether that feature is on in this build.
    pub compiled: bool,
}

/// The vendor table: one line per vendor, and the only place in this crate that names
/// them. A line is `feature: Variant, module = crate { Config, Adapter }, vendor, "title"`;
/// the vendor crate gives `Config::load(&ConfigReader)`, a `client_id` field, and
/// `Adapter::new(Config, AdapterOptions)`. From it come the crate re-exports,
/// [`VendorConfig`], [`VENDORS`], [`build_adapter`] and the loading in [`load_config`].
macro_rules! vendor_registry {
    ($($feature:literal: $variant:ident, $module:ident = $krate:ident { $config:ident, $adapter:ident }, $vendor:expr, $title:literal;)*) => {
        $(
            #[doc = concat!("The ", $title, " adapter crate (feature `", $feature, "`).")]
            #[cfg(feature = $feature)]
            pub use $krate as $module;
        )*

        /// Every vendor the umbrella knows, in documentation order, with the feature that
        /// compiles it in and whether it is compiled into this build.
        pub const VENDORS: &[VendorEntry] = &[$(VendorEntry { vendor: $vendor, feature: $feature, compiled: cfg!(feature = $feature) }),*];

        /// One vendor's configuration, for the vendors compiled in.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum VendorConfig {
            $(
                #[doc = concat!($title, " (feature `", $feature, "`).")]
                #[cfg(feature = $feature)]
                $variant($krate::$config),
            )*
        }

        impl VendorConfig {
            /// The vendor this configuration is for.
            pub fn vendor(&self) -> Vendor {
                match *self {
                    $(#[cfg(feature = $feature)] Self::$variant(_) => $vendor,)*
                }
            }

            /// The agent's client id (`AGENT_CLIENT_ID`).
            pub fn client_id(&self) -> &str {
                match *self {
                    $(#[cfg(feature = $feature)] Self::$variant(ref c) => &c.client_id,)*
                }
            }
        }

        /// The configured vendor's adapter behind a token cache (pass
        /// `TokenCacheSettings { enabled: false, .. }` to turn the cache off): the guide's
        /// `get_adapter()` without the boilerplate.
        ///
        /// # Errors
        /// The vendor adapter's [`IamError::Configuration`].
        // With no vendor compiled in, `VendorConfig` has no values and the body cannot run.
        #[cfg_attr(not(any($(feature = $feature),*)), allow(unreachable_code, unused_variables))]
        pub fn build_adapter(
            config: VendorConfig,
            options: token_endpoint::AdapterOptions,
            cache: session::TokenCacheSettings,
        ) -> Result<Arc<dyn IamAdapter>, IamError> {
            let adapter: Arc<dyn IamAdapter> = match config {
                $(#[cfg(feature = $feature)] VendorConfig::$variant(config) => Arc::new($krate::$adapter::new(config, options)?),)*
            };
            if cache.enabled { Ok(Arc::new(session::CachingAdapter::new(adapter, cache))) } else { Ok(adapter) }
        }

        /// The configuration of `vendor`, which [`ensure_vendor_compiled`] accepted.
        #[cfg_attr(not(any($(feature = $feature),*)), allow(unused_variables))]
        async fn load_vendor_config(vendor: Vendor, reader: &config::ConfigReader<'_>) -> Result<VendorConfig, SetupError> {
            $(
                #[cfg(feature = $feature)]
                if vendor == $vendor {
                    return Ok(VendorConfig::$variant($krate::$config::load(reader).await?));
                }
            )*
            Err(ensure_vendor_compiled(vendor).err().unwrap_or_else(|| unknown_vendor(vendor)).into())
        }

        #[cfg(test)]
        #[test]
        fn the_table_names_each_vendor_as_its_crate_does() {
            $(
                #[cfg(feature = $feature)]
                assert_eq!($vendor, $krate::VENDOR);
            )*
        }
    };
}

vendor_registry! {
    "keycloak": Keycloak, keycloak = dual_auth_keycloak { KeycloakConfig, KeycloakAdapter }, Vendor::Keycloak, "Keycloak";
    "auth0": Auth0, auth0 = dual_auth_auth0 { Auth0Config, Auth0Adapter }, Vendor::Auth0, "Auth0";
    "okta": Okta, okta = dual_auth_okta { OktaConfig, OktaAdapter }, Vendor::Okta, "Okta";
    "entraid": EntraId, entraid = dual_auth_entraid { EntraIdConfig, EntraIdAdapter }, Vendor::EntraId, "Microsoft Entra ID";
}

/// Checks that `vendor` is one of [`VENDORS`] and compiled into this build.
///
/// # Errors
/// [`config::ConfigError::NotCompiled`] naming the Cargo feature to enable;
/// [`config::ConfigError::InvalidValue`] for a vendor this crate does not know.
pub fn ensure_vendor_compiled(vendor: Vendor) -> Result<(), config::ConfigError> {
    match VENDORS.iter().find(|entry| entry.vendor == vendor) {
        Some(entry) if entry.compiled => Ok(()),
        Some(entry) => Err(config::ConfigError::NotCompiled { kind: "vendor", name: vendor.as_str().to_owned(), feature: entry.feature }),
        None => Err(unknown_vendor(vendor)),
    }
}

/// A vendor outside [`VENDORS`] (a [`Vendor::Named`] the caller passed): its adapter is
/// built with its own crate, not here.
fn unknown_vendor(vendor: Vendor) -> config::ConfigError {
    let known: Vec<Vendor> = VENDORS.iter().map(|entry| entry.vendor).collect();
    let reason = Vendor::parse_among(vendor.as_str(), &known).err().map_or_else(|| format!("{vendor}"), |e| e.to_string());
    config::ConfigError::InvalidValue { key: config::keys::DUAL_AUTH_VENDOR.into(), backend: SecretBackend::Env, reason }
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
    let known: Vec<Vendor> = VENDORS.iter().map(|entry| entry.vendor).collect();
    let vendor = config::select_vendor_among(vendor, source.as_ref(), env, &known).await?;
    ensure_vendor_compiled(vendor)?;
    let reader = config::ConfigReader::new(source.as_ref());
    let vendor_config = load_vendor_config(vendor, &reader).await?;
    let dpop = reader.dpop_settings().await?;
    let http = config::ConfigReader::new(env).http_settings().await?;
    Ok(LoadedConfig { backend, vendor, vendor_config, http, dpop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_left_out_names_its_feature() {
        for entry in VENDORS {
            match ensure_vendor_compiled(entry.vendor) {
                Ok(()) => assert!(entry.compiled, "{}", entry.vendor),
                Err(err) => {
                    assert!(!entry.compiled, "{}", entry.vendor);
                    assert_eq!(
                        err.to_string(),
                        format!("the {} vendor is not compiled in: enable the Cargo feature \"{}\"", entry.vendor, entry.feature)
                    );
                }
            }
        }
        let err = ensure_vendor_compiled(Vendor::Named("acme")).unwrap_err();
        assert!(
            err.to_string().contains("unknown vendor \"acme\": DUAL_AUTH_VENDOR must be one of keycloak, auth0, okta, entraid"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_configured_vendor_left_out_is_one_error() {
        let Some(missing) = VENDORS.iter().find(|entry| !entry.compiled) else { return };
        let env = config::EnvSource::from_pairs([("DUAL_AUTH_VENDOR", missing.vendor.as_str())]);
        let err = load_config_from(&env, None, None).await.unwrap_err();
        assert!(
            matches!(&err, SetupError::Config(config::ConfigError::NotCompiled { kind: "vendor", feature, .. }) if *feature == missing.feature),
            "{err:?}"
        );
    }
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
