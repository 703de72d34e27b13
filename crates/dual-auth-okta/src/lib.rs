//! # dual-auth-okta
//!
//! The Okta adapter: asks an Okta authorization server for a dual-subject token.
//!
//! - **Verified (the default for evidence)**: [`IamAdapter::request_delegated_token`] sends
//!   the human's access token with Okta's On-Behalf-Of token exchange (RFC 8693, a custom
//!   authorization server); the token has `sub` = the user's login, `uid` = the user id,
//!   `cid` = the agent.
//! - **The guide's mode (self-asserted)**: [`IamAdapter::request_token`] puts the human as
//!   `act` into the agent's client assertion, expecting a custom claim to copy it. Okta's
//!   expression language documents no access to client-assertion claims
//!   (`docs/vendors/okta.md`). Refused when `DUAL_AUTH_DELEGATION` names a verified mode.
//!
//! This crate is enough on its own: it re-exports what its API names from `dual-auth-core`
//! and `dual-auth-config` (and both crates whole, as [`dual_auth_core`] and
//! [`dual_auth_config`]), and has the umbrella's secret-store features (`aws`, `gcp`,
//! `azure`, `vault`). A program with this one dual-auth dependency:
//!
//! ```no_run
//! use std::time::Duration;
//! use dual_auth_okta::{
//!     ActJwtSigner, ActJwtVerifier, AdapterOptions, ConfigReader, EnvSource, ExposeSecret, IamAdapter, SigningKey, TokenRequest,
//!     UserSession, VerifyingKey, OktaAdapter, OktaConfig, open_source, select_backend,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The configuration, from the environment or the store DUAL_AUTH_SECRETS_BACKEND names.
//! let env = EnvSource::new();
//! let source = open_source(select_backend(None, &env)?, &env).await?;
//! let config = OktaConfig::load(&ConfigReader::new(source.as_ref())).await?;
//! let agent = config.client_id.clone();
//! let http = ConfigReader::new(&env).http_settings().await?; // DUAL_AUTH_CA_BUNDLE, if set
//! let adapter = OktaAdapter::new(config, AdapterOptions::with_http(http))?;
//!
//! // In-session: the human from the web application's own session.
//! let act = UserSession::new("alice@corp.example.com").with_user_id("user_12345").to_act()?;
//! let token = adapter.request_token(&TokenRequest::new(&agent, act, ["finance.read"])?).await?;
//!
//! // Out-of-session: the application signs an act JWT for the remote agent, which verifies
//! // it (signature, audience, expiry, lifetime, replay) before acting for that human.
//! let audience = "https://agent.example.com/invoke";
//! let signer = ActJwtSigner::new(SigningKey::from_pem_file("app-private-key.pem")?);
//! let act_jwt = signer.sign(&UserSession::new("bob@corp.example.com").to_act()?, audience, Duration::from_secs(60))?;
//! let verifier = ActJwtVerifier::builder(VerifyingKey::from_pem_file("app-public-key.pem")?, audience).build()?;
//! let act = verifier.verify(act_jwt.expose_secret()).await?.into_act();
//! let token = adapter.request_token(&TokenRequest::new(&agent, act, ["finance.read"])?).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! Wire format of the guide's mode: `POST` form `grant_type=client_credentials`, `scope`,
//! `client_assertion_type`, `client_assertion`. The assertion's `aud` is the token endpoint
//! URL, as Okta documents (upstream used `{domain}/oauth2/{server}`, which breaks for the
//! org authorization server); it can be overridden.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::time::Duration;

use dual_auth_config::keys;
use dual_auth_core::provider::{AssertionConfig, AssertionDialect, AudienceRule, DelegationGrant, FormField, GrantKind};

// What this crate's API takes and returns, and what a program needs beside it, so that a
// program needs no other dual-auth crate (the two crates whole too, for everything else).
pub use dual_auth_config::{self, ConfigError, ConfigReader, EnvSource, open_source, select_backend};
pub use dual_auth_core::secrecy::{ExposeSecret, SecretString};
pub use dual_auth_core::token_endpoint::{AdapterOptions, DpopSettings, HttpSettings, RetryPolicy};
pub use dual_auth_core::{
    self, Act, ActJwtSigner, ActJwtVerifier, ClientAuthentication, DelegationMode, DelegationRequest, DpopKey, IamAdapter, IamError,
    SigningKey, SubjectToken, SubjectTokenType, TokenRequest, TokenResponse, UserSession, Vendor, VerifyingKey,
};

/// This vendor, as `DUAL_AUTH_VENDOR` names it.
pub const VENDOR: Vendor = Vendor::Okta;

/// The setting that holds Okta's token endpoint.
pub const TOKEN_URL_KEY: &str = "OKTA_TOKEN_URL";

/// What Okta can do: on-behalf-of token exchange (RFC 8693), the guide's mode.
pub const SUPPORTED_MODES: &[DelegationMode] = &[DelegationMode::TokenExchange, DelegationMode::SelfAsserted];

/// `expires_in` when Okta sends none (upstream default).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);

/// Okta's dialect of the client-assertion grant.
///
/// - The guide's mode: `grant_type=client_credentials`, `scope`; the assertion's `aud` the
///   token endpoint URL, as Okta documents, unless configured.
/// - On-behalf-of token exchange: RFC 8693's fields (`subject_token_type` the access-token
///   type, which Okta's on-behalf-of takes), then `scope`; `audience` (Okta documents the
///   authorization server's audience) when the request names one.
pub static DIALECT: AssertionDialect = AssertionDialect {
    vendor: VENDOR,
    modes: SUPPORTED_MODES,
    default_expires_in: DEFAULT_EXPIRES_IN,
    audience_rule: AudienceRule::TokenUrl,
    api_audience_required: None,
    client_credentials_fields: &[FormField::Scope],
    delegation_grants: &[DelegationGrant {
        mode: DelegationMode::TokenExchange,
        kind: GrantKind::TokenExchange { audience_defaults_to_api: false, names_requested_access_token: false },
        refuses: &[],
        subject_types: None,
        trailing_fields: &[FormField::Scope],
    }],
};

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
    /// `DUAL_AUTH_DELEGATION`: token-exchange (the default for evidence) or self-asserted.
    pub delegation: Option<DelegationMode>,
}

impl OktaConfig {
    /// A configuration with the default assertion audience.
    pub fn new(token_url: impl Into<String>, client_id: impl Into<String>, client_auth: ClientAuthentication) -> Self {
        Self { token_url: token_url.into(), client_id: client_id.into(), client_auth, assertion_audience: None, delegation: None }
    }

    /// Sets the delegation mode.
    #[must_use]
    pub fn with_delegation(mut self, mode: DelegationMode) -> Self {
        self.delegation = Some(mode);
        self
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
            token_url: reader.https_url(TOKEN_URL_KEY).await?.into(),
            client_id: reader.text(keys::AGENT_CLIENT_ID).await?,
            client_auth: reader.client_authentication().await?,
            assertion_audience: reader.optional_text(keys::ASSERTION_AUDIENCE).await?,
            delegation: reader.delegation_mode().await?,
        })
    }
}

impl From<OktaConfig> for AssertionConfig {
    fn from(config: OktaConfig) -> Self {
        AssertionConfig::new(&DIALECT, config.token_url, config.client_id, config.client_auth)
            .with_assertion_audience(config.assertion_audience)
            .with_delegation(config.delegation)
    }
}

/// The Okta [`IamAdapter`]: [`DIALECT`] over core's client-assertion adapter.
/// `OktaAdapter::new(config, options)` fails with [`IamError::Configuration`] for a
/// non-HTTPS token URL or an empty client id.
pub type OktaAdapter = dual_auth_core::provider::AssertionAdapter;
