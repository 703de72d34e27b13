//! HashiCorp Vault / OpenBao as a [`SecretSource`] (feature `vault`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use dual_auth_core::http::{CA_BUNDLE_SETTING, HttpsUrl};
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::{SecretBackend, SecretError, SecretSource};
use serde_json::Value;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::env::EnvSource;
use crate::error::ConfigError;
use crate::names::store_name;
use crate::reader::ca_bundle;

/// Where a Kubernetes pod finds its service-account token.
pub const KUBERNETES_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const BACKEND: SecretBackend = SecretBackend::Vault;

/// Vault's own CA setting, read before [`CA_BUNDLE_SETTING`].
const VAULT_CA_SETTING: &str = "VAULT_CACERT";

/// Values in Vault's KV engine: path `{prefix}{key}` (`dual-auth/agent-client-secret`),
/// field `value`, KV v2 falling back to KV v1.
pub struct VaultSource {
    client: VaultClient,
    address: String,
    mount: String,
    prefix: String,
}

impl std::fmt::Debug for VaultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSource")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn setting_error(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Source(SecretError::Configuration { backend: BACKEND, setting: setting.into(), reason: reason.into() })
}

impl VaultSource {
    /// Connects as the environment says: `VAULT_ADDR` (required, `https://`),
    /// `VAULT_NAMESPACE`, `DUAL_AUTH_VAULT_MOUNT` (`secret`), `DUAL_AUTH_VAULT_PATH_PREFIX`
    /// (`dual-auth/`), `VAULT_CACERT` or `DUAL_AUTH_CA_BUNDLE` for a private CA; then logs
    /// in, in the upstream order: `VAULT_TOKEN`, else AppRole (`VAULT_ROLE_ID` +
    /// `VAULT_SECRET_ID`), else Kubernetes (the pod's service-account token, role
    /// `VAULT_K8S_ROLE`, default `dual-auth`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting at fault; a failed login as
    /// [`SecretError::PermissionDenied`].
    pub async fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        Self::from_env_with_kubernetes_token(env, Path::new(KUBERNETES_TOKEN_PATH)).await
    }

    /// [`VaultSource::from_env`] with another service-account token path (for tests).
    ///
    /// # Errors
    /// As [`VaultSource::from_env`].
    pub async fn from_env_with_kubernetes_token(env: &EnvSource, kubernetes_token: &Path) -> Result<Self, ConfigError> {
        let address = env
            .get("VAULT_ADDR")
            .ok_or_else(|| setting_error("VAULT_ADDR", "is required for the vault backend: set it to https://VAULT-HOST:8200"))?;
        HttpsUrl::parse(&address).map_err(|reason| setting_error("VAULT_ADDR", reason.to_string()))?;
        let mut settings = VaultClientSettingsBuilder::default();
        settings.address(&address).timeout(Some(Duration::from_secs(10))).verify(true).token(String::new());
        let ca = [VAULT_CA_SETTING, CA_BUNDLE_SETTING].into_iter().find_map(|key| env.get(key).map(|path| (key, path)));
        if let Some((key, path)) = &ca {
            // Checked here with the one loader; the Vault client reads the file itself.
            ca_bundle(key, path.as_ref())?;
        }
        settings.ca_certs(ca.into_iter().map(|(_, path)| path).collect());
        if let Some(namespace) = env.get("VAULT_NAMESPACE") {
            settings.set_namespace(namespace);
        }
        let settings = settings.build().map_err(|e| setting_error("VAULT_ADDR", e.to_string()))?;
        let mut client = VaultClient::new(settings).map_err(|e| setting_error(VAULT_CA_SETTING, e.to_string()))?;
        let token = if let Some(token) = env.get("VAULT_TOKEN") {
            token
        } else if let (Some(role_id), Some(secret_id)) = (env.get("VAULT_ROLE_ID"), env.get("VAULT_SECRET_ID")) {
            let mount = env.get("DUAL_AUTH_VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".into());
            vaultrs::auth::approle::login(&client, &mount, &role_id, &secret_id)
                .await
                .map_err(|e| login_error("AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID)", &e))?
                .client_token
        } else if let Ok(jwt) = std::fs::read_to_string(kubernetes_token) {
            let role = env.get("VAULT_K8S_ROLE").unwrap_or_else(|| "dual-auth".into());
            let mount = env.get("DUAL_AUTH_VAULT_K8S_MOUNT").unwrap_or_else(|| "kubernetes".into());
            vaultrs::auth::kubernetes::login(&client, &mount, &role, jwt.trim())
                .await
                .map_err(|e| login_error("Kubernetes (VAULT_K8S_ROLE)", &e))?
                .client_token
        } else {
            return Err(setting_error(
                "VAULT_TOKEN",
                "no credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), or run in Kubernetes with VAULT_K8S_ROLE",
            ));
        };
        client.set_token(&token);
        Ok(Self {
            client,
            address,
            mount: env.get("DUAL_AUTH_VAULT_MOUNT").unwrap_or_else(|| "secret".into()),
            prefix: env.get("DUAL_AUTH_VAULT_PATH_PREFIX").unwrap_or_else(|| "dual-auth/".into()),
        })
    }

    fn path_of(&self, key: &str) -> String {
        store_name(key, &self.prefix)
    }

    fn error(&self, key: &str, error: &ClientError) -> SecretError {
        match status_of(error) {
            Some(403) => SecretError::PermissionDenied {
                backend: BACKEND,
                key: key.into(),
                reason: format!(
                    "Vault answered 403 for {}/{}: check the token (or role) and that its policy allows read there",
                    self.mount,
                    self.path_of(key)
                ),
            },
            Some(code) => {
                SecretError::Unavailable { backend: BACKEND, key: key.into(), reason: format!("Vault answered HTTP {code}"), source: None }
            }
            None => SecretError::Unavailable {
                backend: BACKEND,
                key: key.into(),
                reason: format!("cannot reach Vault at {}", self.address),
                source: Some(Box::new(strip(error))),
            },
        }
    }
}

/// The HTTP status of a Vault answer, whichever way vaultrs reports it (a 404 with a body
/// that is not an error list, as KV v2 mounts send, comes as a client error).
fn status_of(error: &ClientError) -> Option<u16> {
    match error {
        ClientError::APIError { code, .. } => Some(*code),
        ClientError::RestClientError { source: rustify::errors::ClientError::ServerResponseError { code, .. } } => Some(*code),
        _ => None,
    }
}

/// vaultrs errors carry no secrets, but keep only their message.
fn strip(error: &ClientError) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

fn login_error(method: &str, error: &ClientError) -> ConfigError {
    let reason = match error {
        ClientError::APIError { code, .. } => format!("{method} login refused (HTTP {code}): check the credentials and the auth mount"),
        other => format!("{method} login failed: {other}"),
    };
    ConfigError::Source(SecretError::PermissionDenied { backend: BACKEND, key: "(login)".into(), reason })
}

fn value_field(map: &HashMap<String, Value>, key: &str) -> Result<Option<SecretString>, SecretError> {
    match map.get("value") {
        None => Err(SecretError::InvalidValue { backend: BACKEND, key: key.into(), reason: "the secret has no field \"value\"".into() }),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            Ok((!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned())))
        }
        Some(_) => {
            Err(SecretError::InvalidValue { backend: BACKEND, key: key.into(), reason: "the field \"value\" is not a string".into() })
        }
    }
}

#[async_trait]
impl SecretSource for VaultSource {
    fn backend(&self) -> SecretBackend {
        BACKEND
    }

    fn location_of(&self, key: &str) -> String {
        format!("the field \"value\" at {}/{} in Vault ({})", self.mount, self.path_of(key), self.address)
    }

    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let path = self.path_of(key);
        match vaultrs::kv2::read::<HashMap<String, Value>>(&self.client, &self.mount, &path).await {
            Ok(map) => return value_field(&map, key),
            // Not found as KV v2 (or not a KV v2 mount, which answers 400/404/405): try v1.
            Err(e) if matches!(status_of(&e), Some(400 | 404 | 405)) => {}
            Err(other) => return Err(self.error(key, &other)),
        }
        match vaultrs::kv1::get::<HashMap<String, Value>>(&self.client, &self.mount, &path).await {
            Ok(map) => value_field(&map, key),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(other) => Err(self.error(key, &other)),
        }
    }
}
