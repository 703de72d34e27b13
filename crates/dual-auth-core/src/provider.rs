//! The provider seam: what an identity-provider adapter is built from.
//!
//! Keycloak, Auth0 and Okta speak one grant: a form POST to the token endpoint,
//! authenticated by a client assertion (RFC 7523), the human either in the assertion's
//! `act` (the guide's self-asserted mode) or in evidence sent with a delegation grant
//! (RFC 8693 token exchange, RFC 7523 §2.1). What differs between them is data, an
//! [`AssertionDialect`]; [`AssertionAdapter`] is the one [`IamAdapter`] over it. A vendor of
//! this kind is a `static` dialect and a configuration loader in its own crate:
//!
//! ```
//! use std::time::Duration;
//! use dual_auth_core::provider::{AssertionAdapter, AssertionConfig, AssertionDialect, AudienceRule, DelegationGrant, FormField, GrantKind};
//! use dual_auth_core::token_endpoint::AdapterOptions;
//! use dual_auth_core::{ClientAuthentication, DelegationMode, IamAdapter, Vendor};
//! use secrecy::SecretString;
//!
//! static ACME: AssertionDialect = AssertionDialect {
//!     vendor: Vendor::Named("acme"),
//!     modes: &[DelegationMode::TokenExchange, DelegationMode::SelfAsserted],
//!     default_expires_in: Duration::from_secs(3600),
//!     audience_rule: AudienceRule::TokenUrl,
//!     api_audience_required: None,
//!     client_credentials_fields: &[FormField::Scope],
//!     delegation_grants: &[DelegationGrant {
//!         mode: DelegationMode::TokenExchange,
//!         kind: GrantKind::TokenExchange { audience_defaults_to_api: false, names_requested_access_token: false },
//!         refuses: &[],
//!         subject_types: None,
//!         trailing_fields: &[FormField::Scope],
//!     }],
//! };
//!
//! let secret = SecretString::from("a-client-secret-of-at-least-32-bytes!");
//! let config = AssertionConfig::new(&ACME, "https://idp.acme.example/token", "finance-agent", ClientAuthentication::client_secret_jwt(&secret)?);
//! let adapter = AssertionAdapter::new(config, AdapterOptions::default())?;
//! assert_eq!(adapter.vendor().as_str(), "acme");
//! assert_eq!(adapter.assertion_audience(), "https://idp.acme.example/token");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A vendor with another grant (Entra ID) implements [`IamAdapter`] itself with the pieces
//! here: [`cache_scope`], the mode rules ([`resolve_mode`], [`check_self_asserted_allowed`],
//! [`check_evidence_allowed`]), [`ensure_agent`], [`check_delegation_request`],
//! [`token_exchange_fields`], and the token endpoint's form helpers ([`field`],
//! [`client_assertion_fields`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::adapter::{IamAdapter, TokenRequest, Vendor};
use crate::clock::Clock;
use crate::delegation::{ACCESS_TOKEN_TYPE, DelegationMode, DelegationRequest, JWT_BEARER_GRANT, SubjectTokenType};
use crate::error::IamError;
use crate::jose::assertion::{ASSERTION_LIFETIME, AssertionClaims, ClientAuthentication};
use crate::jose::dpop::DpopKey;
use crate::token::TokenResponse;
use crate::token_endpoint::{AdapterOptions, RetryPolicy, TokenEndpoint, client_assertion_fields, field};

pub use crate::delegation::{check_evidence_allowed, check_self_asserted_allowed, resolve_mode, token_exchange_fields};
pub use crate::jose::assertion::{sign_act_assertion_with_key, sign_assertion_with_key};

/// How a vendor that authenticates its clients with assertions differs from the others:
/// written once per vendor as a `static`, read by [`AssertionAdapter`].
#[derive(Debug)]
pub struct AssertionDialect {
    /// The vendor, for [`IamAdapter::vendor`], errors and logs.
    pub vendor: Vendor,
    /// The delegation modes the vendor can do, the verified default first; each verified
    /// one has its entry in [`AssertionDialect::delegation_grants`].
    pub modes: &'static [DelegationMode],
    /// `expires_in` when the provider sends none.
    pub default_expires_in: Duration,
    /// The client assertion's `aud` when none is configured.
    pub audience_rule: AudienceRule,
    /// `Some(message)` when the vendor needs an API audience ([`AssertionConfig::api_audience`]):
    /// the configuration error given without one.
    pub api_audience_required: Option<&'static str>,
    /// The guide's self-asserted request: the form fields after
    /// `grant_type=client_credentials`, in order, before the client assertion.
    pub client_credentials_fields: &'static [FormField],
    /// One entry per verified mode.
    pub delegation_grants: &'static [DelegationGrant],
}

impl AssertionDialect {
    /// The grant that serves `mode`, if the vendor has one.
    pub fn grant(&self, mode: DelegationMode) -> Option<&'static DelegationGrant> {
        self.delegation_grants.iter().find(|g| g.mode == mode)
    }
}

/// Where the client assertion's `aud` comes from when none is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudienceRule {
    /// The token endpoint URL itself (Okta).
    TokenUrl,
    /// The token URL up to the last `marker` (Keycloak's realm URL, up to `/protocol/`),
    /// with a `/` appended when `trailing_slash` (Auth0's tenant URL, up to `/oauth/`).
    UpTo {
        /// Where the URL is cut.
        marker: &'static str,
        /// Whether a `/` is appended.
        trailing_slash: bool,
        /// The configuration error when the URL has no `marker`.
        refusal: &'static str,
    },
}

impl AudienceRule {
    /// The audience this rule gives for `token_url`, or `None` when it has no marker.
    pub fn derive(&self, token_url: &str) -> Option<String> {
        match self {
            AudienceRule::TokenUrl => Some(token_url.to_owned()),
            AudienceRule::UpTo { marker, trailing_slash, .. } => {
                token_url.rsplit_once(marker).map(|(base, _)| if *trailing_slash { format!("{base}/") } else { base.to_owned() })
            }
        }
    }
}

/// A form field a dialect adds, named by what its value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormField {
    /// `client_id`: the agent's client id.
    ClientId,
    /// `audience`: the API the token is for ([`AssertionConfig::api_audience`]).
    ApiAudience,
    /// `scope`: the scopes asked for, space-separated.
    Scope,
}

/// One delegation grant of a dialect: which grant serves a verified mode, what the vendor
/// refuses in it, and the fields it adds.
#[derive(Debug)]
pub struct DelegationGrant {
    /// The verified mode it serves.
    pub mode: DelegationMode,
    /// The grant.
    pub kind: GrantKind,
    /// Parts of a request the vendor does not read: refused rather than sent to be
    /// ignored, since the caller would believe them checked.
    pub refuses: &'static [Refusal],
    /// The subject token types the vendor takes; any when `None`.
    pub subject_types: Option<SubjectTypes>,
    /// The fields after the grant's own, in order, before the client assertion.
    pub trailing_fields: &'static [FormField],
}

/// The grant a verified mode sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantKind {
    /// RFC 8693 token exchange ([`token_exchange_fields`]).
    TokenExchange {
        /// Whether `audience` is the API audience when the request names none (Auth0).
        audience_defaults_to_api: bool,
        /// Whether `requested_token_type` is the access-token type when the subject is an
        /// access token and the caller chose none (Auth0's On-Behalf-Of names it).
        names_requested_access_token: bool,
    },
    /// RFC 7523 §2.1, the JWT authorization grant: `grant_type` jwt-bearer, `assertion` the
    /// evidence. The assertion is single-use, so the request is sent once.
    JwtAuthorization,
}

/// A part of a delegation request a vendor refuses, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// What is refused.
    pub part: RequestPart,
    /// The caller's error: what the vendor does instead.
    pub reason: &'static str,
}

/// An optional part of a [`DelegationRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestPart {
    /// RFC 8693 `actor_token`.
    ActorToken,
    /// RFC 8693 `audience`.
    Audience,
    /// RFC 8693 `resource`.
    Resource,
    /// RFC 8693 `requested_token_type`.
    RequestedTokenType,
}

impl RequestPart {
    fn is_in(self, request: &DelegationRequest) -> bool {
        match self {
            RequestPart::ActorToken => request.actor().is_some(),
            RequestPart::Audience => request.audience().is_some(),
            RequestPart::Resource => request.resource().is_some(),
            RequestPart::RequestedTokenType => request.requested_token_type().is_some(),
        }
    }
}

/// The subject token types a vendor takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectTypes {
    /// An access token.
    pub access_token: bool,
    /// An ID token.
    pub id_token: bool,
    /// A JWT.
    pub jwt: bool,
    /// Another type URI (Auth0's Custom Token Exchange profiles).
    pub custom: bool,
    /// The caller's error for another type; `, not <type>` is appended.
    pub refusal: &'static str,
}

impl SubjectTypes {
    /// Whether `token_type` is taken.
    pub fn accepts(&self, token_type: &SubjectTokenType) -> bool {
        match token_type {
            SubjectTokenType::AccessToken => self.access_token,
            SubjectTokenType::IdToken => self.id_token,
            SubjectTokenType::Jwt => self.jwt,
            _ => self.custom,
        }
    }
}

/// Refuses what a vendor does not read: each part of `refuses` the request has, then a
/// subject token type outside `subject_types`.
///
/// # Errors
/// [`IamError::InvalidRequest`] with the refusal's reason.
pub fn check_delegation_request(
    request: &DelegationRequest,
    refuses: &[Refusal],
    subject_types: Option<&SubjectTypes>,
) -> Result<(), IamError> {
    if let Some(refusal) = refuses.iter().find(|r| r.part.is_in(request)) {
        return Err(IamError::InvalidRequest { reason: refusal.reason.into() });
    }
    match subject_types {
        Some(types) if !types.accepts(request.subject().token_type()) => {
            Err(IamError::InvalidRequest { reason: format!("{}, not {}", types.refusal, request.subject().token_type()) })
        }
        _ => Ok(()),
    }
}

/// What an [`AssertionAdapter`] is built from: the vendor's dialect and the agent's
/// settings. Each vendor crate's configuration converts into it.
#[derive(Debug)]
#[non_exhaustive]
pub struct AssertionConfig {
    /// The vendor's dialect.
    pub dialect: &'static AssertionDialect,
    /// The token endpoint URL (https).
    pub token_url: String,
    /// The agent's client id (`iss` and `sub` of its assertions).
    pub client_id: String,
    /// How the agent's assertions are signed.
    pub client_auth: ClientAuthentication,
    /// The assertion's `aud`; the dialect's [`AudienceRule`] when `None`.
    pub assertion_audience: Option<String>,
    /// The API the tokens are for, for dialects that send it.
    pub api_audience: Option<String>,
    /// `DUAL_AUTH_DELEGATION`, when set.
    pub delegation: Option<DelegationMode>,
}

impl AssertionConfig {
    /// A configuration without an assertion audience, an API audience or a delegation mode.
    pub fn new(
        dialect: &'static AssertionDialect,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_auth: ClientAuthentication,
    ) -> Self {
        Self {
            dialect,
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_auth,
            assertion_audience: None,
            api_audience: None,
            delegation: None,
        }
    }

    /// Sets the assertion's `aud`.
    #[must_use]
    pub fn with_assertion_audience(mut self, audience: Option<String>) -> Self {
        self.assertion_audience = audience;
        self
    }

    /// Sets the API audience.
    #[must_use]
    pub fn with_api_audience(mut self, audience: Option<String>) -> Self {
        self.api_audience = audience;
        self
    }

    /// Sets the delegation mode.
    #[must_use]
    pub fn with_delegation(mut self, mode: Option<DelegationMode>) -> Self {
        self.delegation = mode;
        self
    }
}

/// The [`IamAdapter`] of every client-assertion dialect (Keycloak, Auth0, Okta): the
/// endpoint, the agent's id and credential, the assertion's audience, the configured
/// delegation mode and the clock, built once. Each request checks the agent and the mode,
/// signs a fresh client assertion for every attempt (carrying `act` in the guide's
/// self-asserted mode only), appends it to the dialect's form fields, and applies the
/// dialect's `expires_in` default.
pub struct AssertionAdapter {
    dialect: &'static AssertionDialect,
    endpoint: TokenEndpoint,
    clock: Arc<dyn Clock>,
    client_id: String,
    client_auth: ClientAuthentication,
    assertion_audience: String,
    api_audience: Option<String>,
    delegation: Option<DelegationMode>,
    /// [`IamAdapter::cache_scope`], computed once: none of its parts changes.
    scope: String,
}

impl fmt::Debug for AssertionAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionAdapter")
            .field("vendor", &self.dialect.vendor)
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field("assertion_audience", &self.assertion_audience)
            .field("api_audience", &self.api_audience)
            .field("delegation", &self.delegation)
            .finish_non_exhaustive()
    }
}

impl AssertionAdapter {
    /// An adapter for `config`'s vendor and agent.
    ///
    /// # Errors
    /// [`IamError::Configuration`] for a non-HTTPS token URL, an unusable HTTP setting, an
    /// empty client id, a missing API audience the dialect needs, a delegation mode the
    /// vendor cannot do, or a token URL the dialect cannot derive the assertion audience
    /// from when none is configured.
    pub fn new(config: impl Into<AssertionConfig>, options: AdapterOptions) -> Result<Self, IamError> {
        let config = config.into();
        let dialect = config.dialect;
        let vendor = dialect.vendor;
        let api_audience = config.api_audience.filter(|a| !a.trim().is_empty());
        if let (Some(reason), None) = (dialect.api_audience_required, &api_audience) {
            return Err(IamError::Configuration { vendor, reason: reason.into() });
        }
        let (endpoint, clock) = options.endpoint(vendor, &config.token_url)?;
        if config.client_id.trim().is_empty() {
            return Err(IamError::Configuration { vendor, reason: "AGENT_CLIENT_ID is empty".into() });
        }
        let delegation = resolve_mode(vendor, config.delegation, dialect.modes)?;
        if let Some(mode) = dialect.modes.iter().find(|m| m.is_verified() && dialect.grant(**m).is_none()) {
            return Err(IamError::Configuration { vendor, reason: format!("the dialect lists {mode} without a grant for it") });
        }
        let assertion_audience = match config.assertion_audience {
            Some(audience) => audience,
            None => dialect.audience_rule.derive(endpoint.url().as_str()).ok_or_else(|| {
                let reason = match dialect.audience_rule {
                    AudienceRule::UpTo { refusal, .. } => refusal,
                    AudienceRule::TokenUrl => "the token URL gives no assertion audience: set it",
                };
                IamError::Configuration { vendor, reason: reason.into() }
            })?,
        };
        let discriminator = api_audience.as_deref().unwrap_or(&assertion_audience);
        let scope = cache_scope(dialect.vendor, endpoint.url().as_str(), &config.client_id, discriminator, endpoint.dpop().map(|d| &d.key));
        Ok(Self {
            dialect,
            endpoint,
            clock,
            client_id: config.client_id,
            client_auth: config.client_auth,
            assertion_audience,
            api_audience,
            delegation,
            scope,
        })
    }

    /// The `aud` of the client assertions this adapter signs.
    pub fn assertion_audience(&self) -> &str {
        &self.assertion_audience
    }

    /// The vendor's dialect.
    pub fn dialect(&self) -> &'static AssertionDialect {
        self.dialect
    }

    fn push_fields(&self, form: &mut Vec<(&'static str, SecretString)>, fields: &[FormField], scopes: &[String]) {
        for f in fields {
            form.push(match f {
                FormField::ClientId => field("client_id", self.client_id.as_str()),
                // Present whenever a dialect names it: `new` refuses a dialect's missing one.
                FormField::ApiAudience => field("audience", self.api_audience.as_deref().unwrap_or_default()),
                FormField::Scope => field("scope", scopes.join(" ")),
            });
        }
    }

    /// The request as the grant sends it: Auth0's On-Behalf-Of names the access token it
    /// wants. Built once per call, not per attempt.
    fn as_sent<'r>(grant: &DelegationGrant, request: &'r DelegationRequest) -> Cow<'r, DelegationRequest> {
        match grant.kind {
            GrantKind::TokenExchange { names_requested_access_token: true, .. }
                if matches!(request.subject().token_type(), SubjectTokenType::AccessToken) && request.requested_token_type().is_none() =>
            {
                Cow::Owned(request.clone().with_requested_token_type(ACCESS_TOKEN_TYPE))
            }
            _ => Cow::Borrowed(request),
        }
    }

    fn delegation_form(&self, grant: &DelegationGrant, request: &DelegationRequest) -> Vec<(&'static str, SecretString)> {
        let mut form = match grant.kind {
            GrantKind::JwtAuthorization => {
                vec![field("grant_type", JWT_BEARER_GRANT), ("assertion", request.subject().token().clone())]
            }
            GrantKind::TokenExchange { audience_defaults_to_api, .. } => {
                let default_audience = if audience_defaults_to_api { self.api_audience.as_deref() } else { None };
                token_exchange_fields(request, default_audience)
            }
        };
        self.push_fields(&mut form, grant.trailing_fields, request.scopes());
        form
    }

    async fn send_with(
        &self,
        act: Option<&crate::Act>,
        scopes: &[String],
        single_attempt: bool,
        leading_fields: &(dyn Fn() -> Vec<(&'static str, SecretString)> + Send + Sync),
    ) -> Result<TokenResponse, IamError> {
        let vendor = self.dialect.vendor;
        let claims = AssertionClaims {
            issuer: &self.client_id,
            audience: &self.assertion_audience,
            lifetime: ASSERTION_LIFETIME,
            act,
            authorized_party: None,
            not_before: false,
        };
        let policy = if single_attempt { RetryPolicy::none() } else { self.endpoint.retry_policy() };
        let grant = self
            .endpoint
            .request_with(policy, || {
                let assertion =
                    self.client_auth.sign(&claims, self.clock.now()).map_err(|source| IamError::Assertion { vendor, source })?;
                let mut form = leading_fields();
                form.extend(client_assertion_fields(assertion));
                Ok(form)
            })
            .await?;
        let response = grant.into_token_response(self.dialect.default_expires_in, scopes, self.clock.now());
        tracing::info!(event = "token_request_success", vendor = %vendor, agent_id = %self.client_id, expires_in = response.expires_in().as_secs());
        Ok(response)
    }
}

#[async_trait]
impl IamAdapter for AssertionAdapter {
    fn vendor(&self) -> Vendor {
        self.dialect.vendor
    }

    /// The vendor, endpoint and agent, then the API audience where the dialect sends one
    /// (it decides the token's audience), else the assertion audience; with DPoP the key.
    fn cache_scope(&self) -> String {
        self.scope.clone()
    }

    fn delegation_modes(&self) -> &'static [DelegationMode] {
        self.dialect.modes
    }

    fn configured_delegation(&self) -> Option<DelegationMode> {
        self.delegation
    }

    fn dpop_key(&self) -> Option<&DpopKey> {
        self.endpoint.dpop().map(|d| &d.key)
    }

    /// The guide's self-asserted mode: `grant_type=client_credentials`, the dialect's
    /// fields, the client assertion with the act.
    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        let vendor = self.dialect.vendor;
        check_self_asserted_allowed(vendor, self.delegation)?;
        ensure_agent(vendor, &self.client_id, request.agent_id())?;
        tracing::info!(event = "token_request_start", vendor = %vendor, mode = %DelegationMode::SelfAsserted, agent_id = %self.client_id, human_id = %request.act().log_id(), scope = %request.scope_string());
        let fields = || {
            let mut form = vec![field("grant_type", "client_credentials")];
            self.push_fields(&mut form, self.dialect.client_credentials_fields, request.scopes());
            form
        };
        self.send_with(Some(request.act()), request.scopes(), false, &fields).await
    }

    /// A verified mode: the dialect's grant for it, the client assertion without `act`
    /// (the identity provider learns the human from the evidence, which is never in an
    /// error or a log).
    async fn request_delegated_token(&self, request: &DelegationRequest) -> Result<TokenResponse, IamError> {
        let vendor = self.dialect.vendor;
        let grant = check_evidence_allowed(vendor, self.delegation, self.dialect.modes)?.and_then(|mode| self.dialect.grant(mode));
        let Some(grant) = grant else {
            return Err(IamError::NotSupported { what: format!("delegation grants with the {vendor} adapter") });
        };
        ensure_agent(vendor, &self.client_id, request.agent_id())?;
        check_delegation_request(request, grant.refuses, grant.subject_types.as_ref())?;
        tracing::info!(event = "token_request_start", vendor = %vendor, mode = %grant.mode, agent_id = %self.client_id, subject_token_type = %request.subject().token_type(), scope = %request.scope_string());
        // A JWT authorization grant's assertion is single-use: a retry after an attempt that
        // reached the provider would only get "Token reuse detected", hiding the real cause.
        let single_attempt = grant.kind == GrantKind::JwtAuthorization;
        let request = Self::as_sent(grant, request);
        let fields = || self.delegation_form(grant, &request);
        self.send_with(None, request.scopes(), single_attempt, &fields).await
    }
}

/// The token cache's scope of an adapter: `vendor|token_url|client_id|discriminator` (what
/// else makes its tokens differ from another's, such as the API audience), and with DPoP
/// `|dpop:<thumbprint>`, so a token bound to another key is never served.
pub fn cache_scope(vendor: Vendor, token_url: &str, client_id: &str, discriminator: &str, dpop: Option<&DpopKey>) -> String {
    let scope = format!("{vendor}|{token_url}|{client_id}|{discriminator}");
    match dpop {
        Some(key) => format!("{scope}|dpop:{}", key.thumbprint()),
        None => scope,
    }
}

/// Refuses to sign for another client than the configured one.
///
/// # Errors
/// [`IamError::AgentMismatch`].
pub fn ensure_agent(vendor: Vendor, configured: &str, requested: &str) -> Result<(), IamError> {
    if configured == requested {
        Ok(())
    } else {
        Err(IamError::AgentMismatch { vendor, configured: configured.to_owned(), requested: requested.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_rules_cut_the_token_url() {
        let realm = AudienceRule::UpTo { marker: "/protocol/", trailing_slash: false, refusal: "" };
        assert_eq!(
            realm.derive("https://kc.example.com/realms/corp/protocol/openid-connect/token").as_deref(),
            Some("https://kc.example.com/realms/corp")
        );
        assert_eq!(realm.derive("https://kc.example.com/token"), None);
        let tenant = AudienceRule::UpTo { marker: "/oauth/", trailing_slash: true, refusal: "" };
        assert_eq!(tenant.derive("https://corp.auth0.com/oauth/token").as_deref(), Some("https://corp.auth0.com/"));
        assert_eq!(tenant.derive("https://corp.auth0.com/token"), None);
        assert_eq!(AudienceRule::TokenUrl.derive("https://o.example.com/t").as_deref(), Some("https://o.example.com/t"));
    }

    #[test]
    fn refusals_and_subject_types_are_checked_in_order() {
        use crate::delegation::SubjectToken;
        let evidence = |t| SubjectToken::new("tok", t).unwrap();
        let request = DelegationRequest::new("agent", evidence(SubjectTokenType::IdToken), ["s"]).unwrap();
        let refuses = [Refusal { part: RequestPart::ActorToken, reason: "no actor" }];
        let types = SubjectTypes { access_token: true, id_token: false, jwt: false, custom: true, refusal: "takes an access token" };
        assert!(check_delegation_request(&request, &refuses, None).is_ok());
        let reason = |err: IamError| match err {
            IamError::InvalidRequest { reason } => reason,
            other => panic!("{other:?}"),
        };
        let err = check_delegation_request(&request, &refuses, Some(&types)).unwrap_err();
        assert_eq!(reason(err), format!("takes an access token, not {}", crate::delegation::ID_TOKEN_TYPE));
        let with_actor = request.with_actor(evidence(SubjectTokenType::Jwt));
        let err = check_delegation_request(&with_actor, &refuses, Some(&types)).unwrap_err();
        assert_eq!(reason(err), "no actor");
    }

    #[test]
    fn the_cache_scope_names_vendor_endpoint_agent_discriminator_and_key() {
        assert_eq!(cache_scope(Vendor::Named("acme"), "https://a/t", "agent", "aud", None), "acme|https://a/t|agent|aud");
        let key = DpopKey::generate(crate::SigningAlgorithm::Es256).unwrap();
        assert_eq!(
            cache_scope(Vendor::Okta, "https://a/t", "agent", "aud", Some(&key)),
            format!("okta|https://a/t|agent|aud|dpop:{}", key.thumbprint())
        );
    }
}
