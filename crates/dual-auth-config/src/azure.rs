//! Azure Key Vault as a [`SecretSource`] (feature `azure`), with Microsoft's official
//! client and a credential chosen from the environment.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::cloud::{Audiences, CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, StatusCode, Transport};
use azure_identity::{
    AzureCliCredential, ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use dual_auth_core::http::{CA_BUNDLE_SETTING, HttpsUrl};
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::token_endpoint::HttpSettings;
use dual_auth_core::{SecretBackend, SecretError, SecretSource};

use crate::env::EnvSource;
use crate::error::ConfigError;
use crate::names::store_name;
use crate::reader::ca_bundle;

const BACKEND: SecretBackend = SecretBackend::Azure;

/// Secrets named `{prefix}{key}`, key lower-cased with `_` as `-`
/// (`dual-auth-agent-client-secret`).
pub struct AzureSource {
    client: SecretClient,
    vault_url: String,
    prefix: String,
    credential: &'static str,
}

impl std::fmt::Debug for AzureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSource")
            .field("vault_url", &self.vault_url)
            .field("prefix", &self.prefix)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

fn setting_error(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Source(SecretError::Configuration { backend: BACKEND, setting: setting.into(), reason: reason.into() })
}

impl AzureSource {
    /// Configured as the environment says: `DUAL_AUTH_AZURE_VAULT_URL` (required,
    /// `https://NAME.vault.azure.net`), `DUAL_AUTH_AZURE_SECRET_PREFIX` (`dual-auth-`),
    /// `DUAL_AUTH_CA_BUNDLE` (a private CA), `AZURE_AUTHORITY_HOST` (another cloud or a local
    /// authority), `DUAL_AUTH_AZURE_VERIFY_CHALLENGE_RESOURCE` (`true`; the vault's
    /// challenge must name a Key Vault domain).
    ///
    /// The credential: a configured one is used and its failures are final: workload
    /// identity (`AZURE_FEDERATED_TOKEN_FILE`), else a client secret (`AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`); with none configured, managed identity,
    /// then the Azure CLI. `DUAL_AUTH_AZURE_CREDENTIAL` (`workload_identity`,
    /// `client_secret`, `managed_identity`, `azure_cli`) pins one.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting at fault.
    pub fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let vault_url = env.get("DUAL_AUTH_AZURE_VAULT_URL").ok_or_else(|| {
            setting_error("DUAL_AUTH_AZURE_VAULT_URL", "is required for the azure backend: set it to https://NAME.vault.azure.net")
        })?;
        HttpsUrl::parse(&vault_url).map_err(|reason| setting_error("DUAL_AUTH_AZURE_VAULT_URL", reason.to_string()))?;
        let prefix = env.get("DUAL_AUTH_AZURE_SECRET_PREFIX").unwrap_or_else(|| "dual-auth-".into());
        let client_options = client_options(env)?;
        let (credential, name) = credential(env, &client_options)?;
        let verify = match env.get("DUAL_AUTH_AZURE_VERIFY_CHALLENGE_RESOURCE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(setting_error("DUAL_AUTH_AZURE_VERIFY_CHALLENGE_RESOURCE", format!("{other:?} is not true or false")));
            }
        };
        let options = SecretClientOptions { client_options, verify_challenge_resource: Some(verify), ..SecretClientOptions::default() };
        let client = SecretClient::new(&vault_url, credential, Some(options))
            .map_err(|e| setting_error("DUAL_AUTH_AZURE_VAULT_URL", e.to_string()))?;
        Ok(Self { client, vault_url, prefix, credential: name })
    }

    /// Which credential was chosen (`client_secret`, `workload_identity`, ...).
    pub fn credential_kind(&self) -> &'static str {
        self.credential
    }
}

/// HTTP transport with our roots, and the authority host, shared by vault and credential.
fn client_options(env: &EnvSource) -> Result<ClientOptions, ConfigError> {
    let mut http = HttpSettings::default();
    if let Some(path) = env.get(CA_BUNDLE_SETTING) {
        http.extra_root_certificates_pem = Some(ca_bundle(CA_BUNDLE_SETTING, path.as_ref())?);
    }
    // The SDK follows no redirects itself; HTTPS only as everywhere else.
    let reqwest_client = http.build_client().map_err(|e| setting_error(CA_BUNDLE_SETTING, e.to_string()))?;
    let mut options = ClientOptions { transport: Some(Transport::new(Arc::new(reqwest_client))), ..ClientOptions::default() };
    if let Some(authority) = env.get("AZURE_AUTHORITY_HOST") {
        HttpsUrl::parse(&authority).map_err(|reason| setting_error("AZURE_AUTHORITY_HOST", reason.to_string()))?;
        let mut custom = CustomConfiguration::default();
        custom.authority_host = authority;
        custom.audiences = Audiences::new();
        options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
    }
    Ok(options)
}

fn credential(env: &EnvSource, client_options: &ClientOptions) -> Result<(Arc<dyn TokenCredential>, &'static str), ConfigError> {
    let identity_error = |setting: &str, e: azure_core::Error| setting_error(setting, e.to_string());
    let pinned = env.get("DUAL_AUTH_AZURE_CREDENTIAL").map(|s| s.to_ascii_lowercase());
    let workload = pinned.as_deref() == Some("workload_identity") || (pinned.is_none() && env.get("AZURE_FEDERATED_TOKEN_FILE").is_some());
    let client_secret = pinned.as_deref() == Some("client_secret")
        || (pinned.is_none()
            && env.get("AZURE_CLIENT_SECRET").is_some()
            && env.get("AZURE_TENANT_ID").is_some()
            && env.get("AZURE_CLIENT_ID").is_some());
    if workload {
        let options = WorkloadIdentityCredentialOptions {
            credential_options: ClientAssertionCredentialOptions { client_options: client_options.clone() },
            client_id: env.get("AZURE_CLIENT_ID"),
            tenant_id: env.get("AZURE_TENANT_ID"),
            token_file_path: env.get("AZURE_FEDERATED_TOKEN_FILE").map(Into::into),
        };
        let credential = WorkloadIdentityCredential::new(Some(options)).map_err(|e| identity_error("AZURE_FEDERATED_TOKEN_FILE", e))?;
        return Ok((credential, "workload_identity"));
    }
    if client_secret {
        let tenant =
            env.get("AZURE_TENANT_ID").ok_or_else(|| setting_error("AZURE_TENANT_ID", "is required for a client secret credential"))?;
        let client_id =
            env.get("AZURE_CLIENT_ID").ok_or_else(|| setting_error("AZURE_CLIENT_ID", "is required for a client secret credential"))?;
        let secret = env
            .get("AZURE_CLIENT_SECRET")
            .ok_or_else(|| setting_error("AZURE_CLIENT_SECRET", "is required for a client secret credential"))?;
        let options = ClientSecretCredentialOptions { client_options: client_options.clone() };
        let credential = ClientSecretCredential::new(&tenant, client_id, Secret::new(secret), Some(options))
            .map_err(|e| identity_error("AZURE_TENANT_ID", e))?;
        return Ok((credential, "client_secret"));
    }
    match pinned.as_deref() {
        None | Some("managed_identity") => {
            let options =
                ManagedIdentityCredentialOptions { client_options: client_options.clone(), ..ManagedIdentityCredentialOptions::default() };
            let credential = ManagedIdentityCredential::new(Some(options)).map_err(|e| identity_error("DUAL_AUTH_AZURE_CREDENTIAL", e))?;
            if pinned.is_some() {
                return Ok((credential, "managed_identity"));
            }
            let cli = AzureCliCredential::new(None).map_err(|e| identity_error("DUAL_AUTH_AZURE_CREDENTIAL", e))?;
            Ok((Arc::new(FirstThatWorks(vec![("managed_identity", credential), ("azure_cli", cli)])), "managed_identity_then_azure_cli"))
        }
        Some("azure_cli") => Ok((AzureCliCredential::new(None).map_err(|e| identity_error("DUAL_AUTH_AZURE_CREDENTIAL", e))?, "azure_cli")),
        Some(other) => Err(setting_error(
            "DUAL_AUTH_AZURE_CREDENTIAL",
            format!("{other:?} is not one of workload_identity, client_secret, managed_identity, azure_cli"),
        )),
    }
}

/// Tries each credential in order; the first token wins. Used only when nothing is
/// configured, for the two credentials that need no settings.
#[derive(Debug)]
struct FirstThatWorks(Vec<(&'static str, Arc<dyn TokenCredential>)>);

#[async_trait]
impl TokenCredential for FirstThatWorks {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let mut failures = Vec::new();
        for (name, credential) in &self.0 {
            match credential.get_token(scopes, options.clone()).await {
                Ok(token) => return Ok(token),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no Azure credential worked ({}); configure one with AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or workload identity",
                failures.join("; ")
            ),
        ))
    }
}

#[async_trait]
impl SecretSource for AzureSource {
    fn backend(&self) -> SecretBackend {
        BACKEND
    }

    fn location_of(&self, key: &str) -> String {
        format!("the secret {} in Azure Key Vault {}", store_name(key, &self.prefix), self.vault_url)
    }

    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let name = store_name(key, &self.prefix);
        let secret = match self.client.get_secret(&name, None).await {
            Ok(response) => response.into_model().map_err(|_| SecretError::InvalidValue {
                backend: BACKEND,
                key: key.into(),
                reason: "the vault's answer is not a secret bundle".into(),
            })?,
            Err(error) => {
                return match error.http_status() {
                    Some(StatusCode::NotFound) => Ok(None),
                    Some(StatusCode::Forbidden | StatusCode::Unauthorized) => Err(SecretError::PermissionDenied {
                        backend: BACKEND,
                        key: key.into(),
                        reason: format!(
                            "the vault refused access to {name}: grant the identity \"Key Vault Secrets User\" (or a get-secrets access policy)"
                        ),
                    }),
                    status => Err(SecretError::Unavailable {
                        backend: BACKEND,
                        key: key.into(),
                        reason: match status {
                            Some(status) => format!("the vault answered HTTP {}", u16::from(status)),
                            None => format!("cannot get a token or reach {} ({})", self.vault_url, self.credential),
                        },
                        source: Some(Box::new(std::io::Error::other(error.to_string()))),
                    }),
                };
            }
        };
        let Some(value) = secret.value else { return Ok(None) };
        let trimmed = value.trim();
        Ok((!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned())))
    }
}
