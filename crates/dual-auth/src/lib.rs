//! # dual-auth
//!
//! Lets an AI agent act with two identities at once: its own (an OAuth client) and the
//! human's on whose behalf it works, so every API call can be authorised and audited
//! against both. The Rust successor of the Python package `dual-auth` 1.0.1, wire-compatible
//! with it.
//!
//! This umbrella crate re-exports the workspace's crates behind Cargo features, so a
//! program compiles only the vendors (and, later, secret stores) it uses:
//!
//! ```toml
//! [dependencies]
//! dual-auth = { version = "0.1", default-features = false, features = ["okta"] }
//! ```
//!
//! What's here: the human identity ([`Act`], [`UserSession`]), act JWTs for remote agents
//! ([`ActJwtSigner`], [`ActJwtVerifier`]), the four vendor adapters, the two flows and the
//! token cache ([`session`]), the API client ([`api`]), and [`build_adapter`], which turns
//! a vendor's configuration into a cached adapter. Configuration loading from the
//! environment and secret stores arrives with issue 4.
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
        Err(IamError::NotSupported {
            what: format!(
                "vendor {vendor} is not compiled in: enable the dual-auth feature \"{vendor}\""
            ),
        })
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
    not(any(
        feature = "keycloak",
        feature = "auth0",
        feature = "okta",
        feature = "entraid"
    )),
    allow(unreachable_code, unused_variables)
)]
pub fn build_adapter(
    config: VendorConfig,
    options: token_endpoint::AdapterOptions,
    cache: session::TokenCacheSettings,
) -> Result<Arc<dyn IamAdapter>, IamError> {
    let adapter: Arc<dyn IamAdapter> = match config {
        #[cfg(feature = "keycloak")]
        VendorConfig::Keycloak(config) => {
            Arc::new(keycloak::KeycloakAdapter::new(config, options)?)
        }
        #[cfg(feature = "auth0")]
        VendorConfig::Auth0(config) => Arc::new(auth0::Auth0Adapter::new(config, options)?),
        #[cfg(feature = "okta")]
        VendorConfig::Okta(config) => Arc::new(okta::OktaAdapter::new(config, options)?),
        #[cfg(feature = "entraid")]
        VendorConfig::EntraId(config) => Arc::new(entraid::EntraIdAdapter::new(config, options)?),
    };
    if cache.enabled {
        Ok(Arc::new(session::CachingAdapter::new(adapter, cache)))
    } else {
        Ok(adapter)
    }
}

/// The names most programs need, in one `use`.
pub mod prelude {
    pub use dual_auth_api::{
        ApiClient, ApiRequest, ApiResponse, InSessionAPICall, OutOfSessionAPICall,
    };
    pub use dual_auth_core::secrecy::{ExposeSecret, SecretString};
    pub use dual_auth_core::token_endpoint::{AdapterOptions, HttpSettings};
    pub use dual_auth_core::{
        Act, ActError, ActJwtError, ActJwtSigner, ActJwtVerifier, ClientAuthentication, IamAdapter,
        IamError, ReplayGuard, SecretSource, SigningKey, TokenRequest, TokenResponse, UserSession,
        Vendor, VerifyingKey,
    };
    pub use dual_auth_session::{
        CachingAdapter, HybridSender, InSessionTokenRequest, OutOfSessionTokenRequest,
        SessionError, TokenCacheSettings,
    };

    pub use crate::{VendorConfig, build_adapter};
}
