//! Evidence-bound delegation: the human proven to the identity provider by a token or
//! assertion someone else issued, rather than asserted by the agent.
//!
//! A [`DelegationRequest`] carries the human's evidence ([`SubjectToken`]) and goes to
//! [`crate::IamAdapter::request_delegated_token`], which sends it with the vendor's
//! delegation grant ([`DelegationMode`]). The identity provider verifies the evidence and
//! issues a token with `sub` = the human and the agent as `azp` / `client_id`.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::error::IamError;

/// The setting that chooses the delegation mode.
pub const DELEGATION_SETTING: &str = "DUAL_AUTH_DELEGATION";

/// RFC 8693 §3: the token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693 §3: a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 §2.1: the token exchange grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 §2.1: the JWT bearer (authorization) grant type; Entra ID's on-behalf-of uses it too.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How the agent proves the human to the identity provider (`DUAL_AUTH_DELEGATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DelegationMode {
    /// The Python guide's recipe: the agent writes `act` into its own client assertion.
    /// Nobody but the agent vouches for the human; stock identity providers drop `act`.
    /// Kept for compatibility, never the default of a verified set-up.
    SelfAsserted,
    /// RFC 8693 token exchange: the human's token (issued by the identity provider) is the
    /// `subject_token` (Keycloak standard token exchange, Auth0 On-Behalf-Of and Custom
    /// Token Exchange, Okta on-behalf-of).
    TokenExchange,
    /// Microsoft Entra ID on-behalf-of: the human's access token is the `assertion` of a
    /// `jwt-bearer` grant with `requested_token_use=on_behalf_of`.
    OnBehalfOf,
    /// RFC 7523 §2.1 JWT authorization grant: an assertion about the human, signed by an
    /// issuer the identity provider trusts (the application), is the `assertion`
    /// (Keycloak: a preview in 26.5, on by default from 26.6).
    JwtAuthorizationGrant,
}

impl DelegationMode {
    /// Every mode, the verified ones first.
    pub const ALL: [DelegationMode; 4] =
        [DelegationMode::TokenExchange, DelegationMode::OnBehalfOf, DelegationMode::JwtAuthorizationGrant, DelegationMode::SelfAsserted];

    /// The name used in `DUAL_AUTH_DELEGATION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfAsserted => "self-asserted",
            Self::TokenExchange => "token-exchange",
            Self::OnBehalfOf => "on-behalf-of",
            Self::JwtAuthorizationGrant => "jwt-authorization-grant",
        }
    }

    /// Whether the identity provider verifies the human (every mode but
    /// [`DelegationMode::SelfAsserted`]).
    pub fn is_verified(self) -> bool {
        self != Self::SelfAsserted
    }

    /// Who vouches for the human in this mode, in words for people.
    pub fn vouched_by(self) -> &'static str {
        match self {
            Self::SelfAsserted => "the agent alone (self-asserted act: no identity provider checked the human)",
            Self::TokenExchange => "the identity provider, which verified the human's token (RFC 8693 token exchange)",
            Self::OnBehalfOf => "the identity provider, which verified the human's token (Entra ID on-behalf-of)",
            Self::JwtAuthorizationGrant => {
                "the identity provider, which verified the application's signed assertion (RFC 7523 JWT authorization grant)"
            }
        }
    }
}

impl fmt::Display for DelegationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `DUAL_AUTH_DELEGATION` value that names no mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown delegation mode {0:?}: DUAL_AUTH_DELEGATION must be one of token-exchange, on-behalf-of, jwt-authorization-grant, self-asserted"
)]
pub struct UnknownDelegationMode(pub String);

impl FromStr for DelegationMode {
    type Err = UnknownDelegationMode;

    /// Case-insensitive and trimmed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|m| m.as_str() == wanted).ok_or_else(|| UnknownDelegationMode(crate::truncate_untrusted(s.trim(), 64)))
    }
}

/// What kind of token the evidence is (RFC 8693 §3 token type identifiers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectTokenType {
    /// An OAuth access token the identity provider issued for the human.
    AccessToken,
    /// An OpenID Connect ID token.
    IdToken,
    /// A JWT (for example an assertion the application signed).
    Jwt,
    /// Another absolute URI, such as an Auth0 Custom Token Exchange profile's
    /// `subject_token_type`.
    Other(String),
}

impl SubjectTokenType {
    /// The identifier sent as `subject_token_type` / `actor_token_type`.
    pub fn urn(&self) -> &str {
        match self {
            Self::AccessToken => ACCESS_TOKEN_TYPE,
            Self::IdToken => ID_TOKEN_TYPE,
            Self::Jwt => JWT_TOKEN_TYPE,
            Self::Other(uri) => uri,
        }
    }
}

impl fmt::Display for SubjectTokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.urn())
    }
}

impl FromStr for SubjectTokenType {
    type Err = IamError;

    /// `access_token`, `id_token`, `jwt`, or an absolute URI (`urn:…`, `https://…`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s {
            "access_token" | ACCESS_TOKEN_TYPE => Self::AccessToken,
            "id_token" | ID_TOKEN_TYPE => Self::IdToken,
            "jwt" | JWT_TOKEN_TYPE => Self::Jwt,
            uri if is_absolute_uri(uri) => Self::Other(uri.to_owned()),
            other => {
                return Err(IamError::InvalidRequest {
                    reason: format!(
                        "subject token type {:?}: use access_token, id_token, jwt or an absolute URI (RFC 8693 §3)",
                        crate::truncate_untrusted(other, 64)
                    ),
                });
            }
        })
    }
}

fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok && !rest.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The human's evidence: a token or assertion someone other than the agent issued.
///
/// It is a secret: `Debug` shows only its type, and the token cache keys on its SHA-256,
/// never on the token itself.
///
/// ```
/// use dual_auth_core::{SubjectToken, SubjectTokenType};
///
/// let evidence = SubjectToken::new("  eyJhbGciOi.human.token\n", SubjectTokenType::AccessToken)?;
/// assert!(!format!("{evidence:?}").contains("human"));
/// # Ok::<(), dual_auth_core::IamError>(())
/// ```
#[derive(Clone)]
pub struct SubjectToken {
    token: SecretString,
    token_type: SubjectTokenType,
}

impl SubjectToken {
    /// Evidence of `token_type`; surrounding whitespace (a file's newline) is trimmed.
    ///
    /// # Errors
    /// [`IamError::InvalidRequest`] for an empty token or one with inner whitespace.
    pub fn new(token: impl Into<String>, token_type: SubjectTokenType) -> Result<Self, IamError> {
        let mut token: String = token.into();
        let trimmed = token.trim();
        let problem = if trimmed.is_empty() {
            Some("the subject token is empty: give the human's token (the web session's access or ID token)")
        } else if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("the subject token has whitespace or control characters inside: give one token")
        } else {
            None
        };
        if let Some(reason) = problem {
            secrecy::zeroize::Zeroize::zeroize(&mut token);
            return Err(IamError::InvalidRequest { reason: reason.into() });
        }
        let token = if trimmed.len() == token.len() {
            token
        } else {
            let owned = trimmed.to_owned();
            secrecy::zeroize::Zeroize::zeroize(&mut token);
            owned
        };
        Ok(Self { token: SecretString::from(token), token_type })
    }

    /// The token.
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// Its type.
    pub fn token_type(&self) -> &SubjectTokenType {
        &self.token_type
    }

    /// A SHA-256 of the type and the token: what caches key on.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(self.token_type.urn().as_bytes());
        hasher.update(b"\0");
        hasher.update(self.token.expose_secret().as_bytes());
        hasher.finish()
    }
}

impl fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectToken").field("token", &"[REDACTED]").field("token_type", &self.token_type.urn()).finish()
    }
}

/// What an agent asks for with a delegation grant: a token for itself (`agent_id`), for
/// the human the evidence proves, with these scopes.
///
/// ```
/// use dual_auth_core::{DelegationRequest, SubjectToken, SubjectTokenType};
///
/// let evidence = SubjectToken::new("eyJ.human.token", SubjectTokenType::AccessToken)?;
/// let request = DelegationRequest::new("finance-agent", evidence, ["finance.read"])?
///     .with_audience("https://api.example.com/finance");
/// assert_eq!(request.scope_string(), "finance.read");
/// # Ok::<(), dual_auth_core::IamError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DelegationRequest {
    agent_id: String,
    subject: SubjectToken,
    actor: Option<SubjectToken>,
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
    requested_token_type: Option<String>,
}

impl DelegationRequest {
    /// A request; `agent_id` and at least one scope are required (as [`crate::TokenRequest`]).
    ///
    /// # Errors
    /// [`IamError::InvalidRequest`] naming what is missing.
    pub fn new<S: Into<String>>(
        agent_id: impl Into<String>,
        subject: SubjectToken,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, IamError> {
        let agent_id = agent_id.into();
        let scopes = crate::adapter::checked_scopes(&agent_id, scopes)?;
        Ok(Self { agent_id, subject, actor: None, scopes, audience: None, resource: None, requested_token_type: None })
    }

    /// Adds the actor token (RFC 8693 `actor_token`): evidence of the agent itself.
    #[must_use]
    pub fn with_actor(mut self, actor: SubjectToken) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Sets RFC 8693 `audience` (the vendor's default when not set).
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets RFC 8693 `resource` (an absolute URI of the API).
    #[must_use]
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sets RFC 8693 `requested_token_type`. Only access tokens are ever used as bearer
    /// tokens: another type is refused when it comes back.
    #[must_use]
    pub fn with_requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// The agent's client id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The human's evidence.
    pub fn subject(&self) -> &SubjectToken {
        &self.subject
    }

    /// The actor token, if any.
    pub fn actor(&self) -> Option<&SubjectToken> {
        self.actor.as_ref()
    }

    /// The scopes asked for, in the caller's order.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The scopes joined by spaces.
    pub fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }

    /// RFC 8693 `audience`, if set.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// RFC 8693 `resource`, if set.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// RFC 8693 `requested_token_type`, if set.
    pub fn requested_token_type(&self) -> Option<&str> {
        self.requested_token_type.as_deref()
    }

    /// A SHA-256 over what decides the token (except the adapter's own scope): the agent,
    /// the evidence's and actor's fingerprints, audience, resource, requested type and the
    /// sorted scopes. What caches key on; no token or personal data in it.
    pub fn fingerprint(&self) -> [u8; 32] {
        let hex = |bytes: [u8; 32]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let material = serde_json::json!([
            self.agent_id,
            hex(self.subject.fingerprint()),
            self.actor.as_ref().map(|a| hex(a.fingerprint())),
            self.audience,
            self.resource,
            self.requested_token_type,
            scopes,
        ]);
        openssl::sha::sha256(material.to_string().as_bytes())
    }
}

/// The form fields every RFC 8693 token exchange sends, in order: `grant_type`,
/// `subject_token`, `subject_token_type`, then `actor_token`, `actor_token_type`,
/// `requested_token_type`, `audience`, `resource` when set; `default_audience` when the
/// request names neither an audience nor a resource. Vendors add `scope`, their own
/// fields and the client authentication.
pub fn token_exchange_fields(request: &DelegationRequest, default_audience: Option<&str>) -> Vec<(&'static str, SecretString)> {
    let public = |name: &'static str, value: &str| (name, SecretString::from(value.to_owned()));
    let mut form = vec![
        public("grant_type", TOKEN_EXCHANGE_GRANT),
        ("subject_token", request.subject.token.clone()),
        public("subject_token_type", request.subject.token_type.urn()),
    ];
    if let Some(actor) = &request.actor {
        form.push(("actor_token", actor.token.clone()));
        form.push(public("actor_token_type", actor.token_type.urn()));
    }
    if let Some(requested) = &request.requested_token_type {
        form.push(public("requested_token_type", requested));
    }
    // A request naming its `resource` (RFC 8707) gets no default audience: where both
    // come, Auth0 takes the audience, and the resource would be lost.
    let default_audience = default_audience.filter(|_| request.resource.is_none());
    if let Some(audience) = request.audience.as_deref().or(default_audience) {
        form.push(public("audience", audience));
    }
    if let Some(resource) = &request.resource {
        form.push(public("resource", resource));
    }
    form
}

/// The verified mode evidence requests use: `configured` when it is verified, the first
/// verified one of `supported` when unset, none when `self-asserted` is configured.
pub(crate) fn effective_mode(configured: Option<DelegationMode>, supported: &[DelegationMode]) -> Option<DelegationMode> {
    match configured {
        Some(mode) => mode.is_verified().then_some(mode),
        None => supported.iter().copied().find(|m| m.is_verified()),
    }
}

/// Refuses the guide's self-asserted request when `configured` is a verified mode.
///
/// # Errors
/// [`IamError::ModeRefused`].
pub fn check_self_asserted_allowed(vendor: crate::Vendor, configured: Option<DelegationMode>) -> Result<(), IamError> {
    match configured.filter(|m| m.is_verified()) {
        Some(configured) => Err(IamError::ModeRefused {
            vendor,
            configured,
            asked: DelegationMode::SelfAsserted,
            hint: "pass the human's evidence (a token the identity provider issued) with request_delegated_token",
        }),
        None => Ok(()),
    }
}

/// The verified mode an evidence request uses (the configured verified one, else the
/// first verified one of `supported`); refused when
/// `DUAL_AUTH_DELEGATION=self-asserted`, `None` when `supported` has no verified mode.
///
/// # Errors
/// [`IamError::ModeRefused`].
pub fn check_evidence_allowed(
    vendor: crate::Vendor,
    configured: Option<DelegationMode>,
    supported: &[DelegationMode],
) -> Result<Option<DelegationMode>, IamError> {
    if configured == Some(DelegationMode::SelfAsserted) {
        return Err(IamError::ModeRefused {
            vendor,
            configured: DelegationMode::SelfAsserted,
            asked: effective_mode(None, supported).unwrap_or(DelegationMode::TokenExchange),
            hint: "unset DUAL_AUTH_DELEGATION or set it to a verified mode to send the human's evidence",
        });
    }
    Ok(effective_mode(configured, supported))
}

/// The mode an adapter of `vendor` uses: the configured one, or the vendor's first
/// supported verified mode; refused when the vendor cannot do the configured one.
///
/// # Errors
/// [`IamError::Configuration`] naming the modes the vendor can do.
pub fn resolve_mode(
    vendor: crate::Vendor,
    configured: Option<DelegationMode>,
    supported: &[DelegationMode],
) -> Result<Option<DelegationMode>, IamError> {
    match configured {
        None => Ok(None),
        Some(mode) if supported.contains(&mode) => Ok(Some(mode)),
        Some(mode) => Err(IamError::Configuration {
            vendor,
            reason: format!(
                "{DELEGATION_SETTING}={mode}: {vendor} cannot do it; use one of {}",
                supported.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_name_themselves() {
        for mode in DelegationMode::ALL {
            assert_eq!(mode.as_str().parse::<DelegationMode>().unwrap(), mode);
        }
        assert_eq!(" Token-Exchange ".parse::<DelegationMode>().unwrap(), DelegationMode::TokenExchange);
        assert!(!DelegationMode::SelfAsserted.is_verified());
        assert!(DelegationMode::OnBehalfOf.is_verified());
        let err = "impersonate".parse::<DelegationMode>().unwrap_err();
        assert!(err.to_string().contains("must be one of token-exchange"), "{err}");
    }

    #[test]
    fn token_types_take_short_names_and_uris() {
        assert_eq!("access_token".parse::<SubjectTokenType>().unwrap().urn(), ACCESS_TOKEN_TYPE);
        assert_eq!("id_token".parse::<SubjectTokenType>().unwrap(), SubjectTokenType::IdToken);
        assert_eq!(JWT_TOKEN_TYPE.parse::<SubjectTokenType>().unwrap(), SubjectTokenType::Jwt);
        assert_eq!("urn:acme:legacy-token".parse::<SubjectTokenType>().unwrap(), SubjectTokenType::Other("urn:acme:legacy-token".into()));
        assert!("token".parse::<SubjectTokenType>().is_err());
        assert!("urn:a b".parse::<SubjectTokenType>().is_err());
    }

    #[test]
    fn evidence_is_trimmed_checked_and_redacted() {
        let e = SubjectToken::new(" tok-SECRET \n", SubjectTokenType::AccessToken).unwrap();
        assert_eq!(e.token().expose_secret(), "tok-SECRET");
        assert!(!format!("{e:?}").contains("SECRET"));
        for bad in ["", " \n ", "a b"] {
            let err = SubjectToken::new(bad, SubjectTokenType::AccessToken).unwrap_err();
            assert!(matches!(err, IamError::InvalidRequest { .. }), "{err}");
        }
    }

    #[test]
    fn fingerprints_change_with_the_evidence_audience_and_scopes_only() {
        let evidence = |t: &str| SubjectToken::new(t, SubjectTokenType::AccessToken).unwrap();
        let base = DelegationRequest::new("agent", evidence("t1"), ["b", "a"]).unwrap();
        let same = DelegationRequest::new("agent", evidence("t1"), ["a", "b", "a"]).unwrap();
        assert_eq!(base.fingerprint(), same.fingerprint());
        assert_ne!(base.fingerprint(), DelegationRequest::new("agent", evidence("t2"), ["a", "b"]).unwrap().fingerprint());
        assert_ne!(base.fingerprint(), base.clone().with_audience("x").fingerprint());
        assert_ne!(base.fingerprint(), DelegationRequest::new("other", evidence("t1"), ["a", "b"]).unwrap().fingerprint());
        let id_token = DelegationRequest::new("agent", SubjectToken::new("t1", SubjectTokenType::IdToken).unwrap(), ["a", "b"]).unwrap();
        assert_ne!(base.fingerprint(), id_token.fingerprint());
    }

    #[test]
    fn exchange_fields_are_in_rfc_order() {
        let request = DelegationRequest::new("agent", SubjectToken::new("subj", SubjectTokenType::IdToken).unwrap(), ["s"])
            .unwrap()
            .with_actor(SubjectToken::new("actor", SubjectTokenType::Jwt).unwrap())
            .with_resource("https://api.example.com/");
        let form: Vec<(&str, String)> =
            token_exchange_fields(&request, Some("aud-default")).into_iter().map(|(k, v)| (k, v.expose_secret().to_owned())).collect();
        let expected = [
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", "subj"),
            ("subject_token_type", ID_TOKEN_TYPE),
            ("actor_token", "actor"),
            ("actor_token_type", JWT_TOKEN_TYPE),
            // The resource names the target: no default audience beside it.
            ("resource", "https://api.example.com/"),
        ];
        assert_eq!(form, expected.map(|(k, v)| (k, v.to_owned())));
        let names = |request: &DelegationRequest| -> Vec<(&str, String)> {
            token_exchange_fields(request, Some("aud-default"))
                .into_iter()
                .filter(|(k, _)| matches!(*k, "audience" | "resource"))
                .map(|(k, v)| (k, v.expose_secret().to_owned()))
                .collect()
        };
        let both = request.clone().with_audience("aud");
        assert_eq!(names(&both), [("audience", "aud".to_owned()), ("resource", "https://api.example.com/".to_owned())]);
        let neither = DelegationRequest::new("agent", SubjectToken::new("subj", SubjectTokenType::IdToken).unwrap(), ["s"]).unwrap();
        assert_eq!(names(&neither), [("audience", "aud-default".to_owned())]);
    }

    #[test]
    fn the_effective_mode_and_the_evidence_check_follow_one_rule() {
        use DelegationMode::*;
        let keycloak = [TokenExchange, JwtAuthorizationGrant, SelfAsserted];
        assert_eq!(effective_mode(None, &keycloak), Some(TokenExchange));
        assert_eq!(effective_mode(Some(JwtAuthorizationGrant), &keycloak), Some(JwtAuthorizationGrant));
        assert_eq!(effective_mode(Some(SelfAsserted), &keycloak), None);
        assert_eq!(effective_mode(None, &[SelfAsserted]), None);
        let vendor = crate::Vendor::Keycloak;
        assert_eq!(check_evidence_allowed(vendor, None, &keycloak).unwrap(), Some(TokenExchange));
        let err = check_evidence_allowed(vendor, Some(SelfAsserted), &keycloak).unwrap_err();
        assert!(matches!(err, IamError::ModeRefused { configured: SelfAsserted, asked: TokenExchange, .. }), "{err}");
    }

    #[test]
    fn a_mode_the_vendor_cannot_do_is_refused_by_name() {
        let supported = [DelegationMode::TokenExchange, DelegationMode::SelfAsserted];
        assert_eq!(resolve_mode(crate::Vendor::Okta, None, &supported).unwrap(), None);
        let err = resolve_mode(crate::Vendor::Okta, Some(DelegationMode::OnBehalfOf), &supported).unwrap_err();
        assert_eq!(
            err.to_string(),
            "okta adapter misconfigured: DUAL_AUTH_DELEGATION=on-behalf-of: okta cannot do it; use one of token-exchange, self-asserted"
        );
    }
}
