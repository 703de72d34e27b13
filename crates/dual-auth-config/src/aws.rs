//! AWS Secrets Manager as a [`SecretSource`] (feature `aws`).

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_smithy_http_client::tls;
use dual_auth_core::http::CA_BUNDLE_SETTING;
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::{SecretBackend, SecretError, SecretSource};

use crate::env::EnvSource;
use crate::error::ConfigError;
use crate::reader::ca_bundle;

const BACKEND: SecretBackend = SecretBackend::Aws;

/// Secrets named `{prefix}{KEY}` (`dual-auth/AGENT_CLIENT_SECRET`): `SecretString`, else
/// `SecretBinary` as UTF-8.
pub struct AwsSource {
    client: aws_sdk_secretsmanager::Client,
    region: String,
    prefix: String,
}

impl std::fmt::Debug for AwsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSource").field("region", &self.region).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl AwsSource {
    /// Configured as the environment says: `DUAL_AUTH_AWS_REGION` (`us-east-1`),
    /// `DUAL_AUTH_AWS_SECRET_PREFIX` (`dual-auth/`), `AWS_ENDPOINT_URL` (for a local or
    /// private endpoint), `DUAL_AUTH_CA_BUNDLE` (a private CA), and the usual AWS
    /// credential chain (environment, profile, web identity, container, instance).
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable CA bundle.
    pub async fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let region = env.get("DUAL_AUTH_AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let prefix = env.get("DUAL_AUTH_AWS_SECRET_PREFIX").unwrap_or_else(|| "dual-auth/".into());
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(aws_config::Region::new(region.clone()));
        if let Some(endpoint) = env.get("AWS_ENDPOINT_URL") {
            loader = loader.endpoint_url(endpoint);
        }
        // Credentials given in this source (not only the process environment) are used as they are.
        if let (Some(id), Some(secret)) = (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
            let credentials =
                aws_sdk_secretsmanager::config::Credentials::new(id, secret, env.get("AWS_SESSION_TOKEN"), None, "dual-auth-config");
            loader = loader.credentials_provider(credentials);
        }
        if let Some(path) = env.get(CA_BUNDLE_SETTING) {
            let pem = ca_bundle(CA_BUNDLE_SETTING, path.as_ref())?;
            let trust = tls::TrustStore::default().with_pem_certificate(pem);
            let context = tls::TlsContext::builder().with_trust_store(trust).build().map_err(|e| ConfigError::File {
                key: CA_BUNDLE_SETTING.into(),
                path: path.into(),
                reason: format!("not usable as trusted roots: {e}"),
            })?;
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                .tls_context(context)
                .build_https();
            loader = loader.http_client(http);
        }
        let config = loader.load().await;
        Ok(Self { client: aws_sdk_secretsmanager::Client::new(&config), region, prefix })
    }

    /// The SDK client, for operations beyond reading (creating or rotating secrets).
    pub fn sdk_client(&self) -> &aws_sdk_secretsmanager::Client {
        &self.client
    }

    fn name_of(&self, key: &str) -> String {
        if key.starts_with(&self.prefix) { key.to_owned() } else { format!("{}{key}", self.prefix) }
    }
}

#[async_trait]
impl SecretSource for AwsSource {
    fn backend(&self) -> SecretBackend {
        BACKEND
    }

    fn location_of(&self, key: &str) -> String {
        format!("the secret {} in AWS Secrets Manager (region {})", self.name_of(key), self.region)
    }

    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let name = self.name_of(key);
        let output = match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(output) => output,
            Err(error) => {
                let code = error.code().unwrap_or_default().to_owned();
                return match code.as_str() {
                    "ResourceNotFoundException" => Ok(None),
                    "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException" => {
                        Err(SecretError::PermissionDenied {
                            backend: BACKEND,
                            key: key.into(),
                            reason: format!(
                                "{code}: check the AWS credentials and that their policy allows secretsmanager:GetSecretValue on {name}"
                            ),
                        })
                    }
                    "" => Err(SecretError::Unavailable {
                        backend: BACKEND,
                        key: key.into(),
                        reason: format!("cannot reach AWS Secrets Manager in {}", self.region),
                        source: Some(Box::new(std::io::Error::other(
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&error).to_string(),
                        ))),
                    }),
                    other => Err(SecretError::Unavailable {
                        backend: BACKEND,
                        key: key.into(),
                        reason: format!("AWS answered {other}"),
                        source: None,
                    }),
                };
            }
        };
        let text = if let Some(text) = output.secret_string() {
            text.to_owned()
        } else if let Some(binary) = output.secret_binary() {
            String::from_utf8(binary.as_ref().to_vec()).map_err(|_| SecretError::InvalidValue {
                backend: BACKEND,
                key: key.into(),
                reason: "SecretBinary is not UTF-8".into(),
            })?
        } else {
            return Ok(None);
        };
        let trimmed = text.trim();
        Ok((!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned())))
    }
}
