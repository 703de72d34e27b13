//! Choosing the vendor and the backend.

use dual_auth_core::{SecretBackend, SecretSource, Vendor};

use crate::env::EnvSource;
use crate::error::ConfigError;
use crate::reader::{ConfigReader, keys};

/// The backend: `explicit`, else `DUAL_AUTH_SECRETS_BACKEND`, else `env`.
///
/// # Errors
/// [`ConfigError::InvalidValue`] for an unknown name.
pub fn select_backend(explicit: Option<SecretBackend>, env: &EnvSource) -> Result<SecretBackend, ConfigError> {
    if let Some(backend) = explicit {
        return Ok(backend);
    }
    match env.get(keys::DUAL_AUTH_SECRETS_BACKEND) {
        None => Ok(SecretBackend::Env),
        Some(name) => name.parse().map_err(|e: dual_auth_core::UnknownSecretBackend| ConfigError::InvalidValue {
            key: keys::DUAL_AUTH_SECRETS_BACKEND.into(),
            backend: SecretBackend::Env,
            reason: e.to_string(),
        }),
    }
}

/// The vendor: `explicit`, else `DUAL_AUTH_VENDOR` from the backend, else from the
/// environment (the upstream order), else `keycloak`.
///
/// # Errors
/// [`ConfigError::InvalidValue`] for an unknown name; [`ConfigError::Source`] when the
/// store fails.
pub async fn select_vendor(explicit: Option<Vendor>, source: &dyn SecretSource, env: &EnvSource) -> Result<Vendor, ConfigError> {
    if let Some(vendor) = explicit {
        return Ok(vendor);
    }
    let (name, backend) = match ConfigReader::new(source).optional_text(keys::DUAL_AUTH_VENDOR).await? {
        Some(name) => (Some(name), source.backend()),
        None => (env.get(keys::DUAL_AUTH_VENDOR), SecretBackend::Env),
    };
    match name {
        None => Ok(Vendor::Keycloak),
        Some(name) => name.parse().map_err(|e: dual_auth_core::UnknownVendor| ConfigError::InvalidValue {
            key: keys::DUAL_AUTH_VENDOR.into(),
            backend,
            reason: e.to_string(),
        }),
    }
}
