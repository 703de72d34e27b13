//! # dual-auth-keycloak
//!
//! The Keycloak adapter: asks a Keycloak realm for a dual-subject token.
//!
//! - **Verified (the default for evidence)**: [`IamAdapter::request_delegated_token`] sends
//!   the human's own access token with Keycloak's standard token exchange (RFC 8693,
//!   Keycloak 26.2+), or an assertion the application signed with the JWT authorization
//!   grant (RFC 7523 §2.1, Keycloak 26.6+; `DUAL_AUTH_DELEGATION=jwt-authorization-grant`).
//!   Keycloak verifies the evidence and issues `sub` = the human, `azp` = the agent.
//! - **The guide's mode (self-asserted)**: [`IamAdapter::request_token`] puts the human as
//!   a top-level `act` claim into the agent's client assertion, expecting a protocol mapper
//!   to copy it. Nobody but the agent vouches for that human, and stock Keycloak has no
//!   mapper that reads the client assertion: it authenticates the agent and leaves `act` out
//!   (observed on Keycloak 26.7.3). Refused when `DUAL_AUTH_DELEGATION` names a verified mode.
//!
//! `docs/vendors/keycloak.md` in the repository sets up each mode on a real Keycloak.
//!
//! This crate is enough on its own: it re-exports what its API names from `dual-auth-core`
//! and `dual-auth-config` (and both crates whole, as [`dual_auth_core`] and
//! [`dual_auth_config`]), and has the umbrella's secret-store features (`aws`, `gcp`,
//! `azure`, `vault`). A program with this one dual-auth dependency:
//!
//! ```no_run
//! use std::time::Duration;
//! use dual_auth_keycloak::{
//!     ActJwtSigner, ActJwtVerifier, AdapterOptions, ConfigReader, DelegationRequest, EnvSource, ExposeSecret, IamAdapter, SigningKey,
//!     SubjectToken, SubjectTokenType, TokenRequest, UserSession, VerifyingKey, KeycloakAdapter, KeycloakConfig, open_source,
//!     select_backend,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The configuration, from the environment or the store DUAL_AUTH_SECRETS_BACKEND names.
//! let env = EnvSource::new();
//! let source = open_source(select_backend(None, &env)?, &env).await?;
//! let config = KeycloakConfig::load(&ConfigReader::new(source.as_ref())).await?;
//! let agent = config.client_id.clone();
//! let http = ConfigReader::new(&env).http_settings().await?; // DUAL_AUTH_CA_BUNDLE, if set
//! let adapter = KeycloakAdapter::new(config, AdapterOptions::with_http(http))?;
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
//!
//! // Verified: the human's own token (the web session's, issued with this agent in its
//! // audience) is the evidence; Keycloak checks it and issues sub = the human.
//! let evidence = SubjectToken::new(std::fs::read_to_string("alice.token")?, SubjectTokenType::AccessToken)?;
//! let token = adapter.request_delegated_token(&DelegationRequest::new(&agent, evidence, ["finance.read"])?).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! Wire format of the guide's mode (as the Python package 1.0.1): `POST` form `grant_type=client_credentials`,
//! `scope`, `client_assertion_type`, `client_assertion`; the assertion's `aud` is the realm
//! URL (the token URL up to `/protocol/`) unless configured.
//!
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::time::Duration;

use dual_auth_config::keys;
use dual_auth_core::provider::{
    AssertionConfig, AssertionDialect, AudienceRule, DelegationGrant, FormField, GrantKind, Refusal, RequestPart,
};

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
pub const VENDOR: Vendor = Vendor::Keycloak;

/// The setting that holds Keycloak's token endpoint.
pub const TOKEN_URL_KEY: &str = "KEYCLOAK_TOKEN_URL";

/// What Keycloak can do: standard token exchange (Keycloak 26.2 and later), the JWT
/// authorization grant (a preview in 26.5, on by default from 26.6), the guide's mode.
pub const SUPPORTED_MODES: &[DelegationMode] =
    &[DelegationMode::TokenExchange, DelegationMode::JwtAuthorizationGrant, DelegationMode::SelfAsserted];

/// `expires_in` when Keycloak sends none (upstream default).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);

/// Keycloak's dialect of the client-assertion grant.
///
/// - The guide's mode: `grant_type=client_credentials`, `scope`; the assertion's `aud` the
///   realm URL (the token URL up to `/protocol/`) unless configured.
/// - Standard token exchange (`docs/vendors/keycloak.md`): RFC 8693's fields, `audience` a
///   client id, then `scope`; no actor token or resource (Keycloak 26.7 has neither).
/// - The JWT authorization grant: `assertion` = the evidence (a JWT from an issuer the
///   realm trusts as an identity provider), then `scope`.
pub static DIALECT: AssertionDialect = AssertionDialect {
    vendor: VENDOR,
    modes: SUPPORTED_MODES,
    default_expires_in: DEFAULT_EXPIRES_IN,
    audience_rule: AudienceRule::UpTo {
        marker: "/protocol/",
        trailing_slash: false,
        refusal: "KEYCLOAK_TOKEN_URL has no \"/protocol/\" to derive the realm URL from: \
                  use https://HOST/realms/REALM/protocol/openid-connect/token or set the assertion audience",
    },
    api_audience_required: None,
    client_credentials_fields: &[FormField::Scope],
    delegation_grants: &[
        DelegationGrant {
            mode: DelegationMode::TokenExchange,
            kind: GrantKind::TokenExchange { audience_defaults_to_api: false, names_requested_access_token: false },
            refuses: &[
                Refusal {
                    part: RequestPart::ActorToken,
                    reason: "Keycloak's standard token exchange reads no actor_token (26.7; delegation with act arrives in 26.8)",
                },
                Refusal {
                    part: RequestPart::Resource,
                    reason: "Keycloak's token exchange has no resource parameter: name the target client id as the audience",
                },
            ],
            subject_types: None,
            trailing_fields: &[FormField::Scope],
        },
        DelegationGrant {
            mode: DelegationMode::JwtAuthorizationGrant,
            kind: GrantKind::JwtAuthorization,
            refuses: &[
                Refusal { part: RequestPart::ActorToken, reason: JWT_AUTHORIZATION_GRANT_TAKES_NO_EXTRAS },
                Refusal { part: RequestPart::Audience, reason: JWT_AUTHORIZATION_GRANT_TAKES_NO_EXTRAS },
                Refusal { part: RequestPart::Resource, reason: JWT_AUTHORIZATION_GRANT_TAKES_NO_EXTRAS },
            ],
            subject_types: None,
            trailing_fields: &[FormField::Scope],
        },
    ],
};

const JWT_AUTHORIZATION_GRANT_TAKES_NO_EXTRAS: &str =
    "the JWT authorization grant takes no actor token, audience or resource: the assertion names them";

/// What the Keycloak adapter needs.
#[derive(Debug)]
pub struct KeycloakConfig {
    /// `KEYCLOAK_TOKEN_URL`: `https://HOST/realms/REALM/protocol/openid-connect/token`.
    pub token_url: String,
    /// `AGENT_CLIENT_ID`.
    pub client_id: String,
    /// `client_secret_jwt` (from `AGENT_CLIENT_SECRET`) or `private_key_jwt`.
    pub client_auth: ClientAuthentication,
    /// The assertion's `aud`; the realm URL when `None`.
    pub assertion_audience: Option<String>,
    /// `DUAL_AUTH_DELEGATION`: token-exchange (the default for evidence),
    /// jwt-authorization-grant, or self-asserted.
    pub delegation: Option<DelegationMode>,
}

impl KeycloakConfig {
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

    /// Loads `KEYCLOAK_TOKEN_URL`, `AGENT_CLIENT_ID`, the client authentication
    /// (`AGENT_CLIENT_SECRET` by default) and an optional `DUAL_AUTH_ASSERTION_AUDIENCE`.
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

impl From<KeycloakConfig> for AssertionConfig {
    fn from(config: KeycloakConfig) -> Self {
        AssertionConfig::new(&DIALECT, config.token_url, config.client_id, config.client_auth)
            .with_assertion_audience(config.assertion_audience)
            .with_delegation(config.delegation)
    }
}

/// The Keycloak [`IamAdapter`]: [`DIALECT`] over core's client-assertion adapter.
/// `KeycloakAdapter::new(config, options)` fails with [`IamError::Configuration`] for a
/// non-HTTPS token URL, an empty client id, or a token URL without `/protocol/` when no
/// assertion audience is configured.
pub type KeycloakAdapter = dual_auth_core::provider::AssertionAdapter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assertion_audience_is_the_realm_url() {
        let realm = |url: &str| DIALECT.audience_rule.derive(url);
        assert_eq!(
            realm("https://kc.example.com/realms/corp/protocol/openid-connect/token").as_deref(),
            Some("https://kc.example.com/realms/corp")
        );
        assert_eq!(realm("https://kc.example.com/token"), None);
    }
}
