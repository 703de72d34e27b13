//! Opening the configured backend.

use std::sync::Arc;

use dual_auth_core::{SecretBackend, SecretSource};

use crate::env::EnvSource;
use crate::error::ConfigError;

/// The source for `backend`: the environment itself, or a secret store (configured from
/// the environment, cached for [`crate::DEFAULT_SECRET_TTL`]).
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
    let cached =
        |source: Arc<dyn SecretSource>| -> Arc<dyn SecretSource> { Arc::new(crate::CachedSource::new(source, crate::DEFAULT_SECRET_TTL)) };
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
            Err(ConfigError::NotCompiled { what: format!("the {other} secrets backend"), feature: other.as_str().to_owned() })
        }
    }
}
