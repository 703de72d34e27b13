//! Reading typed, validated settings from any [`SecretSource`].

use std::path::PathBuf;

use dual_auth_core::http::{CA_BUNDLE_SETTING, HttpsUrl, read_ca_bundle};
use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::{DpopSettings, HttpSettings};
use dual_auth_core::{ClientAuthentication, DpopKey, SecretSource, SigningAlgorithm, SigningKey, warn_if_readable_by_others};

use crate::error::ConfigError;

/// Reads settings from a source; every error names the key, the backend and the fix.
#[derive(Debug, Clone, Copy)]
pub struct ConfigReader<'a> {
    source: &'a dyn SecretSource,
}

impl<'a> ConfigReader<'a> {
    /// A reader over `source`.
    pub fn new(source: &'a dyn SecretSource) -> Self {
        Self { source }
    }

    /// The source read from.
    pub fn source(&self) -> &'a dyn SecretSource {
        self.source
    }

    /// A secret value, if present (white space trimmed; empty counts as absent).
    ///
    /// # Errors
    /// [`ConfigError::Source`] when the store fails.
    pub async fn optional_secret(&self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        Ok(self.source.fetch(key).await?.and_then(|value| {
            let trimmed = value.expose_secret().trim();
            (!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned()))
        }))
    }

    /// A secret value.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] naming where to set it.
    pub async fn secret(&self, key: &str) -> Result<SecretString, ConfigError> {
        self.optional_secret(key).await?.ok_or_else(|| self.missing(key))
    }

    /// A plain (non-secret) value, if present.
    ///
    /// # Errors
    /// [`ConfigError::Source`].
    pub async fn optional_text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.optional_secret(key).await?.map(|v| v.expose_secret().to_owned()))
    }

    /// A plain value.
    ///
    /// # Errors
    /// [`ConfigError::Missing`].
    pub async fn text(&self, key: &str) -> Result<String, ConfigError> {
        self.optional_text(key).await?.ok_or_else(|| self.missing(key))
    }

    /// An `https://` URL with a host and no credentials.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] or [`ConfigError::InvalidUrl`] saying what is wrong.
    pub async fn https_url(&self, key: &str) -> Result<HttpsUrl, ConfigError> {
        let value = self.text(key).await?;
        self.check_url(key, &value)
    }

    /// An optional `https://` URL.
    ///
    /// # Errors
    /// [`ConfigError::InvalidUrl`].
    pub async fn optional_https_url(&self, key: &str) -> Result<Option<HttpsUrl>, ConfigError> {
        match self.optional_text(key).await? {
            Some(value) => self.check_url(key, &value).map(Some),
            None => Ok(None),
        }
    }

    fn check_url(&self, key: &str, value: &str) -> Result<HttpsUrl, ConfigError> {
        HttpsUrl::parse(value).map_err(|reason| ConfigError::InvalidUrl {
            key: key.into(),
            backend: self.source.backend(),
            reason: reason.to_string(),
        })
    }

    /// A path to a readable file; for a private key, a warning when others can read it.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] or [`ConfigError::File`].
    pub async fn readable_file(&self, key: &str, private_key: bool) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(self.text(key).await?);
        let file_error = |reason: String| ConfigError::File { key: key.into(), path: path.clone(), reason };
        let meta = std::fs::metadata(&path).map_err(|e| file_error(format!("{e}: check the path")))?;
        if !meta.is_file() {
            return Err(file_error("is not a file".into()));
        }
        std::fs::File::open(&path).map_err(|e| file_error(format!("cannot be read: {e}")))?;
        if private_key {
            warn_if_readable_by_others(&path);
        }
        Ok(path)
    }

    /// A value from a fixed set, case-insensitive.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] listing what is accepted.
    pub async fn choice(&self, key: &str, accepted: &[&'static str], default: &'static str) -> Result<&'static str, ConfigError> {
        match self.optional_text(key).await? {
            None => Ok(default),
            Some(value) => accepted.iter().copied().find(|a| a.eq_ignore_ascii_case(&value)).ok_or_else(|| ConfigError::InvalidValue {
                key: key.into(),
                backend: self.source.backend(),
                reason: format!("{value:?} is not one of {}", accepted.join(", ")),
            }),
        }
    }

    /// How the agent authenticates with a client assertion (RFC 7523):
    /// `AGENT_CLIENT_AUTH_METHOD` = `client_secret_jwt` (default; `AGENT_CLIENT_SECRET`) or
    /// `private_key_jwt` (`AGENT_PRIVATE_KEY_PATH`, optional `AGENT_KEY_ALGORITHM` and
    /// `AGENT_KEY_ID`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting at fault.
    pub async fn client_authentication(&self) -> Result<ClientAuthentication, ConfigError> {
        match self.choice(keys::AGENT_CLIENT_AUTH_METHOD, &["client_secret_jwt", "private_key_jwt"], "client_secret_jwt").await? {
            "private_key_jwt" => Ok(ClientAuthentication::private_key_jwt(self.agent_key().await?)),
            _ => {
                let secret = self.secret(keys::AGENT_CLIENT_SECRET).await?;
                ClientAuthentication::client_secret_jwt(&secret)
                    .map_err(|source| ConfigError::Key { key: keys::AGENT_CLIENT_SECRET.into(), source })
            }
        }
    }

    /// The agent's own key for `private_key_jwt`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting at fault.
    pub async fn agent_key(&self) -> Result<SigningKey, ConfigError> {
        let path = self.readable_file(keys::AGENT_PRIVATE_KEY_PATH, true).await?;
        let key_error = |source| ConfigError::Key { key: keys::AGENT_PRIVATE_KEY_PATH.into(), source };
        let key = match self.optional_text(keys::AGENT_KEY_ALGORITHM).await? {
            Some(name) => {
                let algorithm: SigningAlgorithm = name.parse().map_err(|e: dual_auth_core::KeyError| ConfigError::InvalidValue {
                    key: keys::AGENT_KEY_ALGORITHM.into(),
                    backend: self.source.backend(),
                    reason: e.to_string(),
                })?;
                SigningKey::from_pem_file_with_algorithm(&path, algorithm).map_err(key_error)?
            }
            None => SigningKey::from_pem_file(&path).map_err(key_error)?,
        };
        Ok(match self.optional_text(keys::AGENT_KEY_ID).await? {
            Some(kid) => key.with_key_id(kid),
            None => key,
        })
    }

    /// `DUAL_AUTH_DELEGATION`, if set.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming the accepted modes.
    pub async fn delegation_mode(&self) -> Result<Option<dual_auth_core::DelegationMode>, ConfigError> {
        match self.optional_text(keys::DUAL_AUTH_DELEGATION).await? {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|e: dual_auth_core::UnknownDelegationMode| ConfigError::InvalidValue {
                key: keys::DUAL_AUTH_DELEGATION.into(),
                backend: self.source.backend(),
                reason: e.to_string(),
            }),
        }
    }

    /// DPoP (RFC 9449) for the agent's tokens: `DUAL_AUTH_DPOP` = `off` (the default),
    /// `es256` or `eddsa` (a key generated for this process), or `DUAL_AUTH_DPOP_KEY_PATH`
    /// (an EC P-256 or Ed25519 private key in PEM, shared by replicas; implies on, and must
    /// match `DUAL_AUTH_DPOP` when that names an algorithm); `DUAL_AUTH_DPOP_ALLOW_DOWNGRADE`
    /// = `true` accepts bearer tokens from a provider that does not bind them (default
    /// `false`). `None` when off.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for an unknown value or `off` with a key path,
    /// [`ConfigError::File`] or [`ConfigError::Key`] for an unusable key file, each naming
    /// the setting.
    pub async fn dpop_settings(&self) -> Result<Option<DpopSettings>, ConfigError> {
        let mode = self.optional_text(keys::DUAL_AUTH_DPOP).await?;
        let algorithm = match mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("off") => Some(None),
            Some("es256") => Some(Some(SigningAlgorithm::Es256)),
            Some("eddsa") => Some(Some(SigningAlgorithm::EdDsa)),
            Some(_) => {
                return Err(self
                    .invalid(keys::DUAL_AUTH_DPOP, format!("{:?} is not one of off, es256, eddsa", mode.as_deref().unwrap_or_default())));
            }
        };
        let key = if self.optional_text(keys::DUAL_AUTH_DPOP_KEY_PATH).await?.is_some() {
            if algorithm == Some(None) {
                return Err(
                    self.invalid(keys::DUAL_AUTH_DPOP, format!("is off but {} is set: unset one of them", keys::DUAL_AUTH_DPOP_KEY_PATH))
                );
            }
            let path = self.readable_file(keys::DUAL_AUTH_DPOP_KEY_PATH, true).await?;
            let pem = std::fs::read(&path).map_err(|e| ConfigError::File {
                key: keys::DUAL_AUTH_DPOP_KEY_PATH.into(),
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let key = DpopKey::from_pem(&pem).map_err(|source| ConfigError::Key { key: keys::DUAL_AUTH_DPOP_KEY_PATH.into(), source })?;
            if let Some(Some(wanted)) = algorithm
                && wanted != key.algorithm()
            {
                return Err(self.invalid(
                    keys::DUAL_AUTH_DPOP,
                    format!(
                        "says {} but {} holds an {} key: make them agree",
                        wanted.as_str(),
                        keys::DUAL_AUTH_DPOP_KEY_PATH,
                        key.algorithm().as_str()
                    ),
                ));
            }
            Some(key)
        } else {
            match algorithm.flatten() {
                Some(algorithm) => {
                    Some(DpopKey::generate(algorithm).map_err(|source| ConfigError::Key { key: keys::DUAL_AUTH_DPOP.into(), source })?)
                }
                None => None,
            }
        };
        let allow_downgrade = self.choice(keys::DUAL_AUTH_DPOP_ALLOW_DOWNGRADE, &["false", "true"], "false").await? == "true";
        match key {
            Some(key) => Ok(Some(DpopSettings::new(key).with_allow_downgrade(allow_downgrade))),
            None => {
                if allow_downgrade {
                    tracing::warn!(
                        event = "dpop_setting_ignored",
                        setting = keys::DUAL_AUTH_DPOP_ALLOW_DOWNGRADE,
                        "DUAL_AUTH_DPOP_ALLOW_DOWNGRADE is set but DPoP is off"
                    );
                }
                Ok(None)
            }
        }
    }

    fn invalid(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::InvalidValue { key: key.into(), backend: self.source.backend(), reason }
    }

    /// HTTP settings with the extra roots of `DUAL_AUTH_CA_BUNDLE`, if set.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the bundle cannot be read or holds no PEM certificate.
    pub async fn http_settings(&self) -> Result<HttpSettings, ConfigError> {
        let mut settings = HttpSettings::default();
        if self.optional_text(CA_BUNDLE_SETTING).await?.is_some() {
            let path = self.readable_file(CA_BUNDLE_SETTING, false).await?;
            settings.extra_root_certificates_pem = Some(ca_bundle(CA_BUNDLE_SETTING, &path)?);
        }
        Ok(settings)
    }

    fn missing(&self, key: &str) -> ConfigError {
        ConfigError::Missing { key: key.into(), backend: self.source.backend(), location: self.source.location_of(key) }
    }
}

/// The PEM roots of the file `key` names, read with core's one loader.
pub(crate) fn ca_bundle(key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    read_ca_bundle(path).map_err(|e| ConfigError::File { key: key.into(), path: path.to_owned(), reason: e.to_string() })
}

/// The setting names every vendor shares, as the Python package and its guide use them
/// (plus ours). A vendor's own settings (its token URL, for one) are named by its crate.
pub mod keys {
    /// Which vendor: one of the names the program's vendors give (the umbrella's
    /// `keycloak`, `auth0`, `okta`, `entraid`).
    pub const DUAL_AUTH_VENDOR: &str = "DUAL_AUTH_VENDOR";
    /// Which backend: env, aws, gcp, azure, vault.
    pub const DUAL_AUTH_SECRETS_BACKEND: &str = "DUAL_AUTH_SECRETS_BACKEND";
    /// Extra trusted roots (PEM file) for identity providers, stores and APIs.
    pub const DUAL_AUTH_CA_BUNDLE: &str = dual_auth_core::http::CA_BUNDLE_SETTING;
    /// The agent's client id.
    pub const AGENT_CLIENT_ID: &str = "AGENT_CLIENT_ID";
    /// The agent's client secret.
    pub const AGENT_CLIENT_SECRET: &str = "AGENT_CLIENT_SECRET";
    /// `client_secret_jwt` (default) or `private_key_jwt` (ours).
    pub const AGENT_CLIENT_AUTH_METHOD: &str = "AGENT_CLIENT_AUTH_METHOD";
    /// The agent's private key for `private_key_jwt` (ours).
    pub const AGENT_PRIVATE_KEY_PATH: &str = "AGENT_PRIVATE_KEY_PATH";
    /// Its algorithm, when not the key's default (ours).
    pub const AGENT_KEY_ALGORITHM: &str = "AGENT_KEY_ALGORITHM";
    /// Its key id (ours; the RFC 7638 thumbprint when unset).
    pub const AGENT_KEY_ID: &str = "AGENT_KEY_ID";
    /// The API the tokens are for (the `audience` a vendor sends, or the `aud` of an
    /// assertion the application signs for it).
    pub const API_AUDIENCE: &str = "API_AUDIENCE";
    /// The application's private key (act JWTs, and act assertions where a vendor has them).
    pub const APP_PRIVATE_KEY_PATH: &str = "APP_PRIVATE_KEY_PATH";
    /// The application's public key (agents verifying act JWTs).
    pub const APP_PUBLIC_KEY_PATH: &str = "APP_PUBLIC_KEY_PATH";
    /// How the agent proves the human: token-exchange, on-behalf-of,
    /// jwt-authorization-grant, or self-asserted (the guide's recipe). Unset: the vendor's
    /// verified mode for evidence, the guide's mode still allowed for a bare act (ours).
    pub const DUAL_AUTH_DELEGATION: &str = dual_auth_core::DELEGATION_SETTING;
    /// An override of the client assertion's `aud` (ours).
    pub const ASSERTION_AUDIENCE: &str = "DUAL_AUTH_ASSERTION_AUDIENCE";
    /// The API base URL the guide's programs call.
    pub const API_URL: &str = "API_URL";
    /// The remote agent's endpoint (act JWT `aud`).
    pub const AGENT_ENDPOINT: &str = "AGENT_ENDPOINT";
    /// DPoP-bound tokens (RFC 9449): `off` (default), `es256` or `eddsa` (ours).
    pub const DUAL_AUTH_DPOP: &str = "DUAL_AUTH_DPOP";
    /// The DPoP key (EC P-256 or Ed25519 PEM) replicas share; implies DPoP on (ours).
    pub const DUAL_AUTH_DPOP_KEY_PATH: &str = "DUAL_AUTH_DPOP_KEY_PATH";
    /// `true` accepts a bearer token when DPoP was asked for; default `false` (ours).
    pub const DUAL_AUTH_DPOP_ALLOW_DOWNGRADE: &str = "DUAL_AUTH_DPOP_ALLOW_DOWNGRADE";
}
