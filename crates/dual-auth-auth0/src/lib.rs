//! # dual-auth-auth0
//!
//! The Auth0 adapter: asks Auth0's `/oauth/token` for a dual-subject token.
//!
//! - **Verified (the default for evidence)**: [`IamAdapter::request_delegated_token`] sends
//!   the human's token with Auth0's token exchange: On-Behalf-Of Token Exchange (an Auth0
//!   access token; Auth0 adds `act`) or Custom Token Exchange (your profile's
//!   `subject_token_type` URI and Action). `audience` is `API_AUDIENCE` unless the request
//!   names one; the token has `sub` = the human, `azp` = the agent.
//! - **The guide's mode (self-asserted)**: [`IamAdapter::request_token`] puts the human as
//!   `act` into the agent's client assertion, expecting an Action to copy it. Auth0
//!   documents `act` as a restricted claim an Action cannot add, and no Action event field
//!   holds the client assertion (`docs/vendors/auth0.md`): the recipe has no documented
//!   way to work. Refused when `DUAL_AUTH_DELEGATION` names a verified mode.
//!
//! This crate is enough on its own: it re-exports what its API names from `dual-auth-core`
//! and `dual-auth-config` (and both crates whole, as [`dual_auth_core`] and
//! [`dual_auth_config`]), and has the umbrella's secret-store features (`aws`, `gcp`,
//! `azure`, `vault`). A program with this one dual-auth dependency:
//!
//! ```no_run
//! use std::time::Duration;
//! use dual_auth_auth0::{
//!     ActJwtSigner, ActJwtVerifier, AdapterOptions, ConfigReader, EnvSource, ExposeSecret, IamAdapter, SigningKey, TokenRequest,
//!     UserSession, VerifyingKey, Auth0Adapter, Auth0Config, open_source, select_backend,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The configuration, from the environment or the store DUAL_AUTH_SECRETS_BACKEND names.
//! let env = EnvSource::new();
//! let source = open_source(select_backend(None, &env)?, &env).await?;
//! let config = Auth0Config::load(&ConfigReader::new(source.as_ref())).await?;
//! let agent = config.client_id.clone();
//! let http = ConfigReader::new(&env).http_settings().await?; // DUAL_AUTH_CA_BUNDLE, if set
//! let adapter = Auth0Adapter::new(config, AdapterOptions::with_http(http))?;
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
//! Wire format of the guide's mode: `POST` form `grant_type=client_credentials`, `client_id`, `audience` (the
//! API), `scope` (the requested scopes; upstream dropped them), `client_assertion_type`,
//! `client_assertion`. The assertion's `aud` is the tenant URL with a trailing slash.
//! Auth0 documents private-key assertions (`private_key_jwt`); `client_secret_jwt` is kept
//! for compatibility with the Python package.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::time::Duration;

use dual_auth_config::keys;
use dual_auth_core::provider::{AssertionConfig, AssertionDialect, AudienceRule, DelegationGrant, FormField, GrantKind, SubjectTypes};

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
pub const VENDOR: Vendor = Vendor::Auth0;

/// The setting that holds Auth0's token endpoint.
pub const TOKEN_URL_KEY: &str = "AUTH0_TOKEN_URL";

/// What Auth0 can do: Custom Token Exchange (RFC 8693), the guide's mode.
pub const SUPPORTED_MODES: &[DelegationMode] = &[DelegationMode::TokenExchange, DelegationMode::SelfAsserted];

/// `expires_in` when Auth0 sends none (upstream default: 24 h).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(86_400);

/// Auth0's dialect of the client-assertion grant.
///
/// - The guide's mode: `grant_type=client_credentials`, `client_id`, `audience` (the API),
///   `scope`; the assertion's `aud` the tenant URL with a trailing slash unless configured.
/// - Token exchange: RFC 8693's fields with `audience` = the API (`API_AUDIENCE` unless the
///   request names one, as Auth0 requires it), then `client_id` and `scope`. Two Auth0
///   products answer: On-Behalf-Of Token Exchange (`subject_token_type` the access token
///   type, and `requested_token_type` the access token type unless the caller chose one;
///   Auth0 adds `act`) and Custom Token Exchange (the profile's own URI; Auth0 reserves the
///   other `urn:ietf` types).
pub static DIALECT: AssertionDialect = AssertionDialect {
    vendor: VENDOR,
    modes: SUPPORTED_MODES,
    default_expires_in: DEFAULT_EXPIRES_IN,
    audience_rule: AudienceRule::UpTo {
        marker: "/oauth/",
        trailing_slash: true,
        refusal: "AUTH0_TOKEN_URL has no \"/oauth/\" to derive the tenant URL from: use https://TENANT/oauth/token or set the assertion audience",
    },
    api_audience_required: Some("API_AUDIENCE is required: the Auth0 API identifier tokens are for"),
    client_credentials_fields: &[FormField::ClientId, FormField::ApiAudience, FormField::Scope],
    delegation_grants: &[DelegationGrant {
        mode: DelegationMode::TokenExchange,
        kind: GrantKind::TokenExchange { audience_defaults_to_api: true, names_requested_access_token: true },
        refuses: &[],
        subject_types: Some(SubjectTypes {
            access_token: true,
            id_token: false,
            jwt: false,
            custom: true,
            refusal: "Auth0 token exchange takes an access token (On-Behalf-Of) or your Custom Token Exchange profile's \
                      subject_token_type URI",
        }),
        trailing_fields: &[FormField::ClientId, FormField::Scope],
    }],
};

/// What the Auth0 adapter needs.
#[derive(Debug)]
pub struct Auth0Config {
    /// `AUTH0_TOKEN_URL`: `https://TENANT.auth0.com/oauth/token`.
    pub token_url: String,
    /// `AGENT_CLIENT_ID`.
    pub client_id: String,
    /// `client_secret_jwt` or `private_key_jwt`.
    pub client_auth: ClientAuthentication,
    /// `API_AUDIENCE`: the API identifier the token is for.
    pub api_audience: String,
    /// The assertion's `aud`; the tenant URL with a trailing slash when `None`.
    pub assertion_audience: Option<String>,
    /// `DUAL_AUTH_DELEGATION`: token-exchange (the default for evidence) or self-asserted.
    pub delegation: Option<DelegationMode>,
}

impl Auth0Config {
    /// A configuration with the default assertion audience.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_auth: ClientAuthentication,
        api_audience: impl Into<String>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_auth,
            api_audience: api_audience.into(),
            assertion_audience: None,
            delegation: None,
        }
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

    /// Loads `AUTH0_TOKEN_URL`, `AGENT_CLIENT_ID`, the client authentication,
    /// `API_AUDIENCE` and an optional `DUAL_AUTH_ASSERTION_AUDIENCE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key, the backend and the fix.
    pub async fn load(reader: &ConfigReader<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            token_url: reader.https_url(TOKEN_URL_KEY).await?.into(),
            client_id: reader.text(keys::AGENT_CLIENT_ID).await?,
            client_auth: reader.client_authentication().await?,
            api_audience: reader.text(keys::API_AUDIENCE).await?,
            assertion_audience: reader.optional_text(keys::ASSERTION_AUDIENCE).await?,
            delegation: reader.delegation_mode().await?,
        })
    }
}

impl From<Auth0Config> for AssertionConfig {
    fn from(config: Auth0Config) -> Self {
        AssertionConfig::new(&DIALECT, config.token_url, config.client_id, config.client_auth)
            .with_api_audience(Some(config.api_audience))
            .with_assertion_audience(config.assertion_audience)
            .with_delegation(config.delegation)
    }
}

/// The Auth0 [`IamAdapter`]: [`DIALECT`] over core's client-assertion adapter.
/// `Auth0Adapter::new(config, options)` fails with [`IamError::Configuration`] for a
/// non-HTTPS token URL, an empty client id or API audience, or a token URL without
/// `/oauth/` when no assertion audience is configured.
pub type Auth0Adapter = dual_auth_core::provider::AssertionAdapter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assertion_audience_is_the_tenant_url_with_a_trailing_slash() {
        let tenant = |url: &str| DIALECT.audience_rule.derive(url);
        assert_eq!(tenant("https://corp.auth0.com/oauth/token").as_deref(), Some("https://corp.auth0.com/"));
        assert_eq!(tenant("https://corp.auth0.com/token"), None);
    }
}
