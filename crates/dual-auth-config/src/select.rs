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
/// environment (the upstream order), parsed among `known` (case-insensitive); the first of
/// `known` when unset (the umbrella's list starts with keycloak, the upstream default).
/// This crate knows no vendor: the caller says which ones exist.
///
/// # Errors
/// [`ConfigError::InvalidValue`] for a name not in `known` (or an empty `known`);
/// [`ConfigError::Source`] when the store fails.
pub async fn select_vendor_among(
    explicit: Option<Vendor>,
    source: &dyn SecretSource,
    env: &EnvSource,
    known: &[Vendor],
) -> Result<Vendor, ConfigError> {
    if let Some(vendor) = explicit {
        return Ok(vendor);
    }
    let (name, backend) = match ConfigReader::new(source).optional_text(keys::DUAL_AUTH_VENDOR).await? {
        Some(name) => (Some(name), source.backend()),
        None => (env.get(keys::DUAL_AUTH_VENDOR), SecretBackend::Env),
    };
    let invalid = |reason: String| ConfigError::InvalidValue { key: keys::DUAL_AUTH_VENDOR.into(), backend, reason };
    match name {
        None => known.first().copied().ok_or_else(|| invalid("no vendor is known to this program".into())),
        Some(name) => Vendor::parse_among(&name, known).map_err(|e| invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_vendor_is_one_of_the_known_ones_the_first_by_default() {
        let acme = Vendor::Named("acme");
        let env = EnvSource::from_pairs(std::iter::empty::<(String, String)>());
        assert_eq!(select_vendor_among(None, &env, &env, &[acme, Vendor::Okta]).await.unwrap(), acme);
        let env = EnvSource::from_pairs([("DUAL_AUTH_VENDOR".to_owned(), " OKTA ".to_owned())]);
        assert_eq!(select_vendor_among(None, &env, &env, &[acme, Vendor::Okta]).await.unwrap(), Vendor::Okta);
        let err = select_vendor_among(None, &env, &env, &[acme]).await.unwrap_err();
        assert_eq!(err.to_string(), "DUAL_AUTH_VENDOR (from env): unknown vendor \"OKTA\": DUAL_AUTH_VENDOR must be one of acme");
        assert_eq!(select_vendor_among(Some(Vendor::Auth0), &env, &env, &[acme]).await.unwrap(), Vendor::Auth0, "explicit wins");
    }
}
