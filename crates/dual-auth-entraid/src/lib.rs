//! # dual-auth-entraid
//!
//! The Microsoft Entra ID adapter.
//!
//! - **Verified (the default for evidence)**: [`IamAdapter::request_delegated_token`] sends
//!   the human's access token (issued for the agent's app) with Microsoft's on-behalf-of
//!   flow; the token names the human (`oid`, a pairwise `sub`) and the agent (`azp`, v1
//!   `appid`). With `DUAL_AUTH_DELEGATION=on-behalf-of` the agent needs no application key.
//! - **The guide's mode (self-asserted)**: Entra ID cannot put a caller-provided claim into
//!   its tokens, so [`IamAdapter::request_token`] gets a plain client-credentials token and
//!   signs an **act assertion** with the application's key, which the agent then holds; it
//!   travels beside the token (`X-Act-Assertion`). Whoever holds that key can name any
//!   human. Refused when `DUAL_AUTH_DELEGATION=on-behalf-of`.
//!
//! This crate is enough on its own: it re-exports what its API names from `dual-auth-core`
//! and `dual-auth-config` (and both crates whole, as [`dual_auth_core`] and
//! [`dual_auth_config`]), and has the umbrella's secret-store features (`aws`, `gcp`,
//! `azure`, `vault`). A program with this one dual-auth dependency:
//!
//! ```no_run
//! use std::time::Duration;
//! use dual_auth_entraid::{
//!     ActJwtSigner, ActJwtVerifier, AdapterOptions, ConfigReader, EnvSource, ExposeSecret, IamAdapter, SigningKey, TokenRequest,
//!     UserSession, VerifyingKey, EntraIdAdapter, EntraIdConfig, open_source, select_backend,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The configuration, from the environment or the store DUAL_AUTH_SECRETS_BACKEND names.
//! let env = EnvSource::new();
//! let source = open_source(select_backend(None, &env)?, &env).await?;
//! let config = EntraIdConfig::load(&ConfigReader::new(source.as_ref())).await?;
//! let agent = config.client_id.clone();
//! let scope = config.api_scope.clone(); // a `.../.default` scope, as Microsoft requires
//! let http = ConfigReader::new(&env).http_settings().await?; // DUAL_AUTH_CA_BUNDLE, if set
//! let adapter = EntraIdAdapter::new(config, AdapterOptions::with_http(http))?;
//!
//! // In-session: the human from the web application's own session.
//! let act = UserSession::new("alice@corp.example.com").with_user_id("user_12345").to_act()?;
//! let token = adapter.request_token(&TokenRequest::new(&agent, act, [scope.as_str()])?).await?;
//!
//! // Out-of-session: the application signs an act JWT for the remote agent, which verifies
//! // it (signature, audience, expiry, lifetime, replay) before acting for that human.
//! let audience = "https://agent.example.com/invoke";
//! let signer = ActJwtSigner::new(SigningKey::from_pem_file("app-private-key.pem")?);
//! let act_jwt = signer.sign(&UserSession::new("bob@corp.example.com").to_act()?, audience, Duration::from_secs(60))?;
//! let verifier = ActJwtVerifier::builder(VerifyingKey::from_pem_file("app-public-key.pem")?, audience).build()?;
//! let act = verifier.verify(act_jwt.expose_secret()).await?.into_act();
//! let token = adapter.request_token(&TokenRequest::new(&agent, act, [scope.as_str()])?).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! - Token request: `POST` form `grant_type=client_credentials`, `client_id`, then either
//!   `client_secret` or a certificate credential (`client_assertion_type`,
//!   `client_assertion` with an `x5t#S256` header), then `scope`. Every requested scope must
//!   be a `.../.default` scope, as Microsoft's client-credentials flow requires.
//! - Act assertion: `iss` = `sub` = `APP_ID`, `aud` = `API_AUDIENCE`, `exp` = now + 300,
//!   `iat`, `jti`, `act`, and `azp` = the agent's client id, so the API can check that the
//!   assertion and the Microsoft token (`azp` in v2, `appid` in v1) name the same agent.
//!   The API records each `jti`, so the token carries no assertion, only what signs one:
//!   the API client asks for a fresh assertion for every request it sends (retries
//!   included), and a cached token, in-process or from a shared store, gets them too.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dual_auth_config::keys;
use dual_auth_core::provider::{
    Refusal, RequestPart, SubjectTypes, cache_scope, check_delegation_request, check_evidence_allowed, check_self_asserted_allowed,
    ensure_agent, resolve_mode, sign_act_assertion_with_key, sign_assertion_with_key,
};
use dual_auth_core::token_endpoint::{TokenEndpoint, client_assertion_fields, field};
use dual_auth_core::{ASSERTION_LIFETIME, ActAssertionSource, AssertionClaims, Clock, JWT_BEARER_GRANT};

// What this crate's API takes and returns, and what a program needs beside it, so that a
// program needs no other dual-auth crate (the two crates whole too, for everything else).
pub use dual_auth_config::{self, ConfigError, ConfigReader, EnvSource, open_source, select_backend};
pub use dual_auth_core::secrecy::{ExposeSecret, SecretString};
pub use dual_auth_core::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy};
pub use dual_auth_core::{
    self, Act, ActJwtSigner, ActJwtVerifier, ClientAuthentication, DelegationMode, DelegationRequest, IamAdapter, IamError, SigningKey,
    SubjectToken, SubjectTokenType, TokenRequest, TokenResponse, UserSession, Vendor, VerifyingKey,
};

/// This vendor, as `DUAL_AUTH_VENDOR` names it.
pub const VENDOR: Vendor = Vendor::EntraId;

/// The setting that holds Entra ID's token endpoint.
pub const TOKEN_URL_KEY: &str = "ENTRAID_TOKEN_URL";

/// The setting that holds the application's id (the act assertion's `iss`).
pub const APP_ID_KEY: &str = "APP_ID";

/// The setting that holds the `.../.default` scope programs request for the API.
pub const API_SCOPE_KEY: &str = "API_SCOPE";

/// The setting that holds the certificate of the agent's certificate credential.
pub const CERTIFICATE_PATH_KEY: &str = "AGENT_CERTIFICATE_PATH";

/// What on-behalf-of refuses: Microsoft's grant has no actor token, audience, resource or
/// requested token type.
const ON_BEHALF_OF_REFUSES: &[Refusal] = &[
    Refusal {
        part: RequestPart::ActorToken,
        reason: "Entra ID on-behalf-of takes no actor token: name the API by its scope (for example api://finance-api/.default)",
    },
    Refusal {
        part: RequestPart::Audience,
        reason: "Entra ID on-behalf-of takes no audience or resource: name the API by its scope (for example api://finance-api/.default)",
    },
    Refusal {
        part: RequestPart::Resource,
        reason: "Entra ID on-behalf-of takes no audience or resource: name the API by its scope (for example api://finance-api/.default)",
    },
    Refusal {
        part: RequestPart::RequestedTokenType,
        reason: "Entra ID on-behalf-of takes no requested_token_type: name the API by its scope (for example api://finance-api/.default)",
    },
];

/// The evidence on-behalf-of takes: the access token the human's client got for this agent.
const ON_BEHALF_OF_SUBJECTS: SubjectTypes = SubjectTypes {
    access_token: true,
    id_token: false,
    jwt: true,
    custom: false,
    refusal: "Entra ID on-behalf-of takes the access token the human's client got for this agent",
};

/// `expires_in` when Microsoft sends none (upstream default).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3599);

/// How the agent authenticates to Microsoft.
#[derive(Debug)]
#[non_exhaustive]
pub enum EntraClientAuthentication {
    /// A client secret (`AGENT_CLIENT_SECRET`), sent in the form as Microsoft requires.
    ClientSecret(SecretString),
    /// A certificate credential: a key with its certificate attached
    /// ([`SigningKey::with_certificate`]), sent as a client assertion with `x5t#S256`.
    Certificate(SigningKey),
}

/// What the Entra ID adapter needs.
#[derive(Debug)]
pub struct EntraIdConfig {
    /// `ENTRAID_TOKEN_URL`: `https://login.microsoftonline.com/TENANT/oauth2/v2.0/token`.
    pub token_url: String,
    /// `AGENT_CLIENT_ID`: the agent's app registration.
    pub client_id: String,
    /// Client secret or certificate.
    pub client_auth: EntraClientAuthentication,
    /// `APP_ID`: the application that vouches for the human (the act assertion's `iss`).
    /// Empty when `DUAL_AUTH_DELEGATION=on-behalf-of` (no act assertion is signed).
    pub app_id: String,
    /// The application's key (`APP_PRIVATE_KEY_PATH`), RS256 for the Python package; the
    /// guide's act-assertion mode needs it. `None` with `DUAL_AUTH_DELEGATION=on-behalf-of`:
    /// the agent then holds no key that could vouch for a human.
    pub app_key: Option<SigningKey>,
    /// `API_AUDIENCE`: the API the act assertion is for.
    pub api_audience: String,
    /// `API_SCOPE`: the `.../.default` scope programs request for this API. The adapter
    /// sends the scopes each request names; this is the value to name.
    pub api_scope: String,
    /// `DUAL_AUTH_DELEGATION`: on-behalf-of (the default for evidence) or self-asserted
    /// (the guide's act assertion).
    pub delegation: Option<DelegationMode>,
}

impl EntraIdConfig {
    /// Loads `ENTRAID_TOKEN_URL`, `AGENT_CLIENT_ID`, the client credential
    /// (`AGENT_CLIENT_AUTH_METHOD` = `client_secret` with `AGENT_CLIENT_SECRET`, the
    /// default, or `certificate` with `AGENT_PRIVATE_KEY_PATH` and `AGENT_CERTIFICATE_PATH`),
    /// `APP_PRIVATE_KEY_PATH`, `APP_ID`, `API_AUDIENCE` and `API_SCOPE` (warned about
    /// unless it ends in `/.default`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key, the backend and the fix.
    pub async fn load(reader: &ConfigReader<'_>) -> Result<Self, ConfigError> {
        let token_url: String = reader.https_url(TOKEN_URL_KEY).await?.into();
        let client_id = reader.text(keys::AGENT_CLIENT_ID).await?;
        let client_auth = match reader.choice(keys::AGENT_CLIENT_AUTH_METHOD, &["client_secret", "certificate"], "client_secret").await? {
            "certificate" => {
                let key = reader.agent_key().await?;
                let path = reader.readable_file(CERTIFICATE_PATH_KEY, false).await?;
                let certificate = std::fs::read(&path).map_err(|e| ConfigError::File {
                    key: CERTIFICATE_PATH_KEY.into(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let key =
                    key.with_certificate(certificate).map_err(|source| ConfigError::Key { key: CERTIFICATE_PATH_KEY.into(), source })?;
                EntraClientAuthentication::Certificate(key)
            }
            _ => EntraClientAuthentication::ClientSecret(reader.secret(keys::AGENT_CLIENT_SECRET).await?),
        };
        let delegation = reader.delegation_mode().await?;
        // On-behalf-of alone: the human comes in Microsoft's token, so the agent needs (and
        // should hold) no application key.
        let on_behalf_of_only = delegation == Some(DelegationMode::OnBehalfOf);
        let app_key = if on_behalf_of_only {
            None
        } else {
            let app_key_path = reader.readable_file(keys::APP_PRIVATE_KEY_PATH, true).await?;
            Some(
                SigningKey::from_pem_file(&app_key_path)
                    .map_err(|source| ConfigError::Key { key: keys::APP_PRIVATE_KEY_PATH.into(), source })?,
            )
        };
        let (app_id, api_audience) = if on_behalf_of_only {
            (
                reader.optional_text(APP_ID_KEY).await?.unwrap_or_default(),
                reader.optional_text(keys::API_AUDIENCE).await?.unwrap_or_default(),
            )
        } else {
            (reader.text(APP_ID_KEY).await?, reader.text(keys::API_AUDIENCE).await?)
        };
        let api_scope = reader.text(API_SCOPE_KEY).await?;
        if !api_scope.ends_with("/.default") {
            tracing::warn!(event = "entraid_scope_not_default", scope = %api_scope, "API_SCOPE should end in /.default for client credentials");
        }
        Ok(Self { token_url, client_id, client_auth, app_id, app_key, api_audience, api_scope, delegation })
    }
}

/// What Entra ID can do: on-behalf-of, the guide's act assertion (self-asserted).
pub const SUPPORTED_MODES: &[DelegationMode] = &[DelegationMode::OnBehalfOf, DelegationMode::SelfAsserted];

/// The Entra ID [`IamAdapter`].
#[derive(Debug)]
pub struct EntraIdAdapter {
    endpoint: TokenEndpoint,
    client_id: String,
    client_auth: EntraClientAuthentication,
    app: Option<Arc<AppSigner>>,
    api_audience: String,
    delegation: Option<DelegationMode>,
    clock: Arc<dyn Clock>,
}

/// What signs act assertions: the application's id and key, the API, the agent.
#[derive(Debug)]
struct AppSigner {
    app_id: String,
    app_key: SigningKey,
    api_audience: String,
    client_id: String,
    clock: Arc<dyn Clock>,
}

/// Signs act assertions for one human, a new one (new `jti`) per API call.
#[derive(Debug)]
struct EntraActAssertion {
    app: Arc<AppSigner>,
    act: Act,
}

impl ActAssertionSource for EntraActAssertion {
    fn sign_act_assertion(&self) -> Result<SecretString, IamError> {
        let app = &self.app;
        let claims = AssertionClaims {
            issuer: &app.app_id,
            audience: &app.api_audience,
            lifetime: ASSERTION_LIFETIME,
            act: Some(&self.act),
            authorized_party: Some(&app.client_id),
            not_before: false,
        };
        sign_act_assertion_with_key(&app.app_key, &claims, app.clock.now())
            .map_err(|source| IamError::Assertion { vendor: Vendor::EntraId, source })
    }
}

impl EntraIdAdapter {
    /// An adapter for this tenant and application.
    ///
    /// # Errors
    /// [`IamError::NotSupported`] when `options` ask for DPoP (Entra ID does not issue
    /// DPoP-bound tokens); [`IamError::Configuration`] for a non-HTTPS token URL, an empty
    /// id or audience, or a certificate credential without its certificate.
    pub fn new(config: EntraIdConfig, options: AdapterOptions) -> Result<Self, IamError> {
        let vendor = VENDOR;
        if options.dpop.is_some() {
            // Refused rather than ignored: the caller would believe its tokens bound.
            return Err(IamError::NotSupported {
                what: "DPoP (RFC 9449) with the entraid adapter: Microsoft Entra ID issues no DPoP-bound tokens; set DUAL_AUTH_DPOP=off"
                    .into(),
            });
        }
        let (endpoint, clock) = options.endpoint(vendor, &config.token_url)?;
        let delegation = resolve_mode(vendor, config.delegation, SUPPORTED_MODES)?;
        // The guide's act assertion is possible unless on-behalf-of alone is configured.
        let self_asserted = delegation != Some(DelegationMode::OnBehalfOf);
        let mut required = vec![(keys::AGENT_CLIENT_ID, &config.client_id)];
        if self_asserted {
            required.extend([(APP_ID_KEY, &config.app_id), (keys::API_AUDIENCE, &config.api_audience)]);
        }
        for (name, value) in required {
            if value.trim().is_empty() {
                return Err(IamError::Configuration { vendor, reason: format!("{name} is empty") });
            }
        }
        if let EntraClientAuthentication::Certificate(key) = &config.client_auth
            && key.certificate_thumbprint().is_none()
        {
            return Err(IamError::Configuration {
                vendor,
                reason: "a certificate credential needs its certificate: load it with SigningKey::with_certificate".into(),
            });
        }
        let app = match (config.app_key, self_asserted) {
            (Some(app_key), true) => Some(Arc::new(AppSigner {
                app_id: config.app_id,
                app_key,
                api_audience: config.api_audience.clone(),
                client_id: config.client_id.clone(),
                clock: Arc::clone(&clock),
            })),
            (None, true) => {
                return Err(IamError::Configuration {
                    vendor,
                    reason: "the guide's act assertion needs the application's key (APP_PRIVATE_KEY_PATH); \
                             set DUAL_AUTH_DELEGATION=on-behalf-of to use Microsoft's on-behalf-of flow without it"
                        .into(),
                });
            }
            (_, false) => None,
        };
        Ok(Self {
            endpoint,
            client_id: config.client_id,
            client_auth: config.client_auth,
            app,
            api_audience: config.api_audience,
            delegation,
            clock,
        })
    }

    fn assertion_source(&self, request: &TokenRequest) -> Result<Arc<dyn ActAssertionSource>, IamError> {
        let app = self.app.as_ref().ok_or_else(|| IamError::Configuration {
            vendor: Vendor::EntraId,
            reason: "the guide's act assertion needs APP_PRIVATE_KEY_PATH, APP_ID and API_AUDIENCE".into(),
        })?;
        Ok(Arc::new(EntraActAssertion { app: Arc::clone(app), act: request.act().clone() }))
    }

    fn credential_fields(&self) -> Result<Vec<(&'static str, SecretString)>, IamError> {
        Ok(match &self.client_auth {
            EntraClientAuthentication::ClientSecret(secret) => {
                vec![("client_secret", secret.clone())]
            }
            EntraClientAuthentication::Certificate(key) => {
                let claims = AssertionClaims {
                    issuer: &self.client_id,
                    audience: self.endpoint.url().as_str(),
                    lifetime: ASSERTION_LIFETIME,
                    act: None,
                    authorized_party: None,
                    not_before: true,
                };
                let assertion = sign_assertion_with_key(key, &claims, self.clock.now())
                    .map_err(|source| IamError::Assertion { vendor: Vendor::EntraId, source })?;
                client_assertion_fields(assertion).into()
            }
        })
    }
}

#[async_trait]
impl IamAdapter for EntraIdAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::EntraId
    }

    fn cache_scope(&self) -> String {
        // Entra ID issues no DPoP-bound tokens (`new` refuses DPoP): no key in the scope.
        cache_scope(VENDOR, self.endpoint.url().as_str(), &self.client_id, &self.api_audience, None)
    }

    fn delegation_modes(&self) -> &'static [DelegationMode] {
        SUPPORTED_MODES
    }

    fn configured_delegation(&self) -> Option<DelegationMode> {
        self.delegation
    }

    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        check_self_asserted_allowed(VENDOR, self.delegation)?;
        ensure_agent(Vendor::EntraId, &self.client_id, request.agent_id())?;
        if let Some(scope) = request.scopes().iter().find(|s| !s.ends_with("/.default")) {
            return Err(IamError::InvalidRequest {
                reason: format!(
                    "scope {scope:?}: Entra ID client credentials take \"<resource>/.default\" scopes (API_SCOPE, for example api://finance-api/.default)"
                ),
            });
        }
        tracing::info!(event = "token_request_start", vendor = %VENDOR, mode = %DelegationMode::SelfAsserted, agent_id = %self.client_id, human_id = %request.act().log_id(), scope = %request.scope_string());
        let grant = self
            .endpoint
            .request(|| {
                let mut form = vec![field("grant_type", "client_credentials"), field("client_id", self.client_id.as_str())];
                form.extend(self.credential_fields()?);
                form.push(field("scope", request.scope_string()));
                Ok(form)
            })
            .await?;
        // Signed once here so that a key that cannot sign fails the token request, not the
        // first API call.
        let source = self.assertion_source(request)?;
        drop(source.sign_act_assertion()?);
        let response = grant.into_token_response(DEFAULT_EXPIRES_IN, request.scopes(), self.clock.now()).with_act_assertion_source(source);
        tracing::info!(event = "token_request_success", vendor = %VENDOR, agent_id = %self.client_id, expires_in = response.expires_in().as_secs(), has_act_assertion = true);
        Ok(response)
    }

    /// On-behalf-of: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
    /// `client_id`, the credential, `assertion` = the human's access token, `scope`,
    /// `requested_token_use=on_behalf_of` (`docs/vendors/entraid.md`). The token that
    /// comes back names the human (`sub`, `oid`) and the agent (`azp`, v1 `appid`); no act
    /// assertion travels with it.
    async fn request_delegated_token(&self, request: &DelegationRequest) -> Result<TokenResponse, IamError> {
        check_evidence_allowed(VENDOR, self.delegation, SUPPORTED_MODES)?;
        ensure_agent(VENDOR, &self.client_id, request.agent_id())?;
        check_delegation_request(request, ON_BEHALF_OF_REFUSES, Some(&ON_BEHALF_OF_SUBJECTS))?;
        tracing::info!(event = "token_request_start", vendor = %VENDOR, mode = %DelegationMode::OnBehalfOf, agent_id = %self.client_id, scope = %request.scope_string());
        let grant = self
            .endpoint
            .request(|| {
                let mut form = vec![field("grant_type", JWT_BEARER_GRANT), field("client_id", self.client_id.as_str())];
                form.extend(self.credential_fields()?);
                form.push(("assertion", request.subject().token().clone()));
                form.push(field("scope", request.scope_string()));
                form.push(field("requested_token_use", "on_behalf_of"));
                Ok(form)
            })
            .await?;
        let response = grant.into_token_response(DEFAULT_EXPIRES_IN, request.scopes(), self.clock.now());
        tracing::info!(event = "token_request_success", vendor = %VENDOR, mode = %DelegationMode::OnBehalfOf, agent_id = %self.client_id, expires_in = response.expires_in().as_secs());
        Ok(response)
    }

    fn restore_cached(&self, token: TokenResponse, request: &TokenRequest) -> TokenResponse {
        match self.assertion_source(request) {
            Ok(source) => token.with_act_assertion_source(source),
            // Unreachable: a self-asserted token was only ever issued with an app key.
            Err(_) => token,
        }
    }
}
