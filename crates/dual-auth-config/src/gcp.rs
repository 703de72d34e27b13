//! GCP Secret Manager as a [`SecretSource`] (feature `gcp`), with Google's official client.

use async_trait::async_trait;
use dual_auth_core::http::HttpsUrl;
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::{SecretBackend, SecretError, SecretSource};
use google_cloud_secretmanager_v1::client::SecretManagerService;

use crate::env::EnvSource;
use crate::error::ConfigError;
use crate::names::store_name;

const BACKEND: SecretBackend = SecretBackend::Gcp;

/// Secrets `projects/{project}/secrets/{prefix}{key}/versions/latest`, key lower-cased with
/// `_` as `-` (`dual-auth-agent-client-secret`), payload as UTF-8.
pub struct GcpSource {
    client: SecretManagerService,
    project: String,
    prefix: String,
}

impl std::fmt::Debug for GcpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpSource").field("project", &self.project).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn setting_error(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Source(SecretError::Configuration { backend: BACKEND, setting: setting.into(), reason: reason.into() })
}

impl GcpSource {
    /// Configured as the environment says: `DUAL_AUTH_GCP_PROJECT` (required),
    /// `DUAL_AUTH_GCP_SECRET_PREFIX` (`dual-auth-`), `DUAL_AUTH_GCP_ENDPOINT` (an `https://`
    /// endpoint, or `http://` on loopback for an emulator, which is then used without
    /// credentials); otherwise Application Default Credentials.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting at fault.
    pub async fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let project = env
            .get("DUAL_AUTH_GCP_PROJECT")
            .ok_or_else(|| setting_error("DUAL_AUTH_GCP_PROJECT", "is required for the gcp backend: set it to your project id"))?;
        let prefix = env.get("DUAL_AUTH_GCP_SECRET_PREFIX").unwrap_or_else(|| "dual-auth-".into());
        let mut builder = SecretManagerService::builder();
        let mut anonymous = false;
        if let Some(endpoint) = env.get("DUAL_AUTH_GCP_ENDPOINT") {
            // Plain HTTP on this machine is an emulator or a test fake.
            let url = HttpsUrl::parse_allowing_loopback_http(&endpoint)
                .map_err(|reason| setting_error("DUAL_AUTH_GCP_ENDPOINT", reason.to_string()))?;
            anonymous = url.is_loopback_http();
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        if anonymous {
            builder = builder.with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
        } else {
            let credentials = google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|e| setting_error("GOOGLE_APPLICATION_CREDENTIALS", format!("no usable Application Default Credentials: {e}")))?;
            builder = builder.with_credentials(credentials);
        }
        let client = builder.build().await.map_err(|e| setting_error("DUAL_AUTH_GCP_ENDPOINT", format!("cannot build the client: {e}")))?;
        Ok(Self { client, project, prefix })
    }

    fn name_of(&self, key: &str) -> String {
        format!("projects/{}/secrets/{}/versions/latest", self.project, store_name(key, &self.prefix))
    }
}

#[async_trait]
impl SecretSource for GcpSource {
    fn backend(&self) -> SecretBackend {
        BACKEND
    }

    fn location_of(&self, key: &str) -> String {
        format!("a version of the secret {} in GCP Secret Manager", self.name_of(key).trim_end_matches("/versions/latest"))
    }

    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let name = self.name_of(key);
        let response = match self.client.access_secret_version().set_name(&name).send().await {
            Ok(response) => response,
            Err(error) => {
                let code = error.status().map(|s| s.code.name().to_owned()).unwrap_or_default();
                let http = error.http_status_code();
                return if code == "NOT_FOUND" || http == Some(404) {
                    Ok(None)
                } else if matches!(code.as_str(), "PERMISSION_DENIED" | "UNAUTHENTICATED") || matches!(http, Some(401 | 403)) {
                    Err(SecretError::PermissionDenied {
                        backend: BACKEND,
                        key: key.into(),
                        reason: format!(
                            "{code}: grant roles/secretmanager.secretAccessor on {} to the credentials in use",
                            name.trim_end_matches("/versions/latest")
                        ),
                    })
                } else {
                    Err(SecretError::Unavailable {
                        backend: BACKEND,
                        key: key.into(),
                        reason: if code.is_empty() { "cannot reach GCP Secret Manager".into() } else { format!("GCP answered {code}") },
                        source: Some(Box::new(std::io::Error::other(error.to_string()))),
                    })
                };
            }
        };
        let Some(payload) = response.payload else { return Ok(None) };
        let text = String::from_utf8(payload.data.to_vec()).map_err(|_| SecretError::InvalidValue {
            backend: BACKEND,
            key: key.into(),
            reason: "the payload is not UTF-8".into(),
        })?;
        let trimmed = text.trim();
        Ok((!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned())))
    }
}
