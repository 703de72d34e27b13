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
//! What works today: the human identity ([`Act`], [`UserSession`]), act JWTs for remote
//! agents ([`ActJwtSigner`], [`ActJwtVerifier`]), keys, replay protection, and the seams
//! the vendor adapters, secret stores and flows implement. The adapters, configuration,
//! flows and API client arrive with later issues; their modules are present but empty.
//!
//! ```
//! use dual_auth::prelude::*;
//!
//! let act = UserSession::new("alice@corp.example.com").with_user_id("user_12345").to_act()?;
//! assert_eq!(act.sub(), "user_12345");
//! # Ok::<(), dual_auth::ActError>(())
//! ```
#![forbid(unsafe_code)]

pub use dual_auth_core::*;

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

/// The names most programs need, in one `use`.
pub mod prelude {
    pub use dual_auth_core::secrecy::{ExposeSecret, SecretString};
    pub use dual_auth_core::{
        Act, ActError, ActJwtError, ActJwtSigner, ActJwtVerifier, IamAdapter, IamError,
        ReplayGuard, SecretSource, SigningKey, TokenRequest, TokenResponse, UserSession, Vendor,
        VerifyingKey,
    };
}
