//! Opening the configured backend.

use std::sync::Arc;

use dual_auth_core::{SecretBackend, SecretSource};

use crate::env::EnvSource;
use crate::error::ConfigError;

/// The source for `backend`: the environment itself, or a secret store configured from the
/// environment and cached for `DUAL_AUTH_SECRET_CACHE_SECONDS` (default
/// [`crate::DEFAULT_SECRET_TTL`], 300 s; 0 turns caching off).
///
/// # Errors
/// [`ConfigError::NotCompiled`] when the backend's feature is off; the store's own
/// configuration errors otherwise.
pub async fn open_source(backend: SecretBackend, env: &EnvSource) -> Result<Arc<dyn SecretSource>, ConfigError> {
    match backend {
        SecretBackend::Env => Ok(Arc::new(env.clone())),
        other => open_store(other, env).await,
    }
}

async fn open_store(backend: SecretBackend, env: &EnvSource) -> Result<Arc<dyn SecretSource>, ConfigError> {
    let ttl = match env.get("DUAL_AUTH_SECRET_CACHE_SECONDS") {
        None => crate::DEFAULT_SECRET_TTL,
        Some(text) => text.parse::<u64>().map(std::time::Duration::from_secs).map_err(|_| ConfigError::InvalidValue {
            key: "DUAL_AUTH_SECRET_CACHE_SECONDS".into(),
            backend: SecretBackend::Env,
            reason: format!("{text:?} is not a whole number of seconds"),
        })?,
    };
    let cached = |source: Arc<dyn SecretSource>| -> Arc<dyn SecretSource> { Arc::new(crate::CachedSource::new(source, ttl)) };
    match backend {
        #[cfg(feature = "aws")]
        SecretBackend::Aws => Ok(cached(Arc::new(crate::AwsSource::from_env(env).await?))),
        #[cfg(feature = "azure")]
        SecretBackend::Azure => Ok(cached(Arc::new(crate::AzureSource::from_env(env)?))),
        #[cfg(feature = "gcp")]
        SecretBackend::Gcp => Ok(cached(Arc::new(crate::GcpSource::from_env(env).await?))),
        #[cfg(feature = "vault")]
        SecretBackend::Vault => Ok(cached(Arc::new(crate::VaultSource::from_env(env).await?))),
        other => {
            let _ = (env, cached);
            Err(ConfigError::NotCompiled { kind: "secrets backend", name: other.as_str().to_owned(), feature: other.as_str() })
        }
    }
}
