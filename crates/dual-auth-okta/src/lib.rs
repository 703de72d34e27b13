//! # dual-auth-okta
//!
//! The Okta adapter: asks an Okta authorization server for a dual-subject token. The agent
//! authenticates with a client assertion carrying the human as `act`; a custom claim
//! expression copies it into the access token.
//!
//! Wire format: `POST` form `grant_type=client_credentials`, `scope`,
//! `client_assertion_type`, `client_assertion`. The assertion's `aud` is the token endpoint
//! URL, as Okta documents (upstream used `{domain}/oauth2/{server}`, which breaks for the
//! org authorization server); it can be overridden.
#![forbid(unsafe_code)]

use std::time::Duration;

use async_trait::async_trait;
use dual_auth_config::{ConfigError, ConfigReader, keys};
use dual_auth_core::token_endpoint::{AdapterOptions, AssertionGrant, AssertionGrantSettings, field};
use dual_auth_core::{ClientAuthentication, IamAdapter, IamError, TokenRequest, TokenResponse, Vendor};

/// `expires_in` when Okta sends none (upstream default).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);

/// What the Okta adapter needs.
#[derive(Debug)]
pub struct OktaConfig {
    /// `OKTA_TOKEN_URL`: `https://ORG.okta.com/oauth2/{server}/v1/token` or `/oauth2/v1/token`.
    pub token_url: String,
    /// `AGENT_CLIENT_ID`.
    pub client_id: String,
    /// `client_secret_jwt` or `private_key_jwt`.
    pub client_auth: ClientAuthentication,
    /// The assertion's `aud`; the token endpoint URL when `None`.
    pub assertion_audience: Option<String>,
}

impl OktaConfig {
    /// A configuration with the default assertion audience.
    pub fn new(token_url: impl Into<String>, client_id: impl Into<String>, client_auth: ClientAuthentication) -> Self {
        Self { token_url: token_url.into(), client_id: client_id.into(), client_auth, assertion_audience: None }
    }

    /// Sets the assertion's `aud`.
    #[must_use]
    pub fn with_assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// Loads `OKTA_TOKEN_URL`, `AGENT_CLIENT_ID`, the client authentication and an
    /// optional `DUAL_AUTH_ASSERTION_AUDIENCE`. (`API_AUDIENCE`, which upstream required
    /// but never sent, is not needed.)
    ///
    /// # Errors
    /// [`ConfigError`] naming the key, the backend and the fix.
    pub async fn load(reader: &ConfigReader<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            token_url: reader.https_url(keys::OKTA_TOKEN_URL).await?,
            client_id: reader.text(keys::AGENT_CLIENT_ID).await?,
            client_auth: reader.client_authentication().await?,
            assertion_audience: reader.optional_text(keys::ASSERTION_AUDIENCE).await?,
        })
    }
}

/// The Okta [`IamAdapter`].
#[derive(Debug)]
pub struct OktaAdapter {
    grant: AssertionGrant,
}

impl OktaAdapter {
    /// An adapter for this authorization server.
    ///
    /// # Errors
    /// [`IamError::Configuration`] for a non-HTTPS token URL or an empty client id.
    pub fn new(config: OktaConfig, options: AdapterOptions) -> Result<Self, IamError> {
        let settings = AssertionGrantSettings {
            vendor: Vendor::Okta,
            token_url: &config.token_url,
            client_id: config.client_id,
            client_auth: config.client_auth,
            assertion_audience: config.assertion_audience,
            default_expires_in: DEFAULT_EXPIRES_IN,
        };
        // Okta documents the assertion's aud as the token endpoint URL itself.
        let grant = AssertionGrant::new(settings, &options, |url| Ok(url.to_string()))?;
        Ok(Self { grant })
    }

    /// The `aud` of the client assertions this adapter signs.
    pub fn assertion_audience(&self) -> &str {
        self.grant.assertion_audience()
    }
}

#[async_trait]
impl IamAdapter for OktaAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::Okta
    }

    fn cache_scope(&self) -> String {
        self.grant.cache_scope(self.grant.assertion_audience())
    }

    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        self.grant.request(request, || vec![field("grant_type", "client_credentials"), field("scope", request.scope_string())]).await
    }
}
