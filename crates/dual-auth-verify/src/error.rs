//! One error type for everything that can refuse a request.

use dual_auth_core::ActJwtError;

/// Why a token (or the request carrying it) was refused, or a verifier could not be built.
///
/// `Display` says what was wrong and how to fix it, for logs and the CLI; it may name
/// claim values (an issuer, an audience), quoted with control characters escaped so a
/// token cannot forge log lines, but never the token or a signature. What an HTTP
/// client is told comes from [`VerifyError::public_description`], which names no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token: send \"Authorization: Bearer <access token>\"")]
    MissingToken,
    /// The `Authorization` header (or `X-Act-Assertion`) is not usable.
    #[error("bad request: {reason}")]
    InvalidRequest {
        /// What is wrong with the request.
        reason: &'static str,
    },
    /// The token is larger than the configured limit.
    #[error("token is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a compact JWS with JSON header and claims.
    #[error("malformed token: {}", dual_auth_core::escape_untrusted(reason, false))]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A header parameter we refuse (`crit`, or one that names its own key).
    #[error("header \"{name}\" is not accepted: {reason}")]
    UnsupportedHeader {
        /// The parameter.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The `alg` is not one the issuer's keys verify (`none` and HMAC never are).
    #[error("algorithm {found:?} is not accepted: {reason}")]
    AlgorithmNotAllowed {
        /// The token's `alg`.
        found: String,
        /// Why.
        reason: String,
    },
    /// The `typ` header is not the one required.
    #[error("token type {found} is not accepted: expected \"{expected}\"")]
    WrongType {
        /// What the token says (or "no typ header").
        found: String,
        /// What the issuer policy requires.
        expected: String,
    },
    /// No configured issuer matches the token's `iss`.
    #[error("issuer {found} is not trusted: trusted issuers are {trusted}")]
    UnknownIssuer {
        /// The token's `iss` (quoted), or "no iss claim".
        found: String,
        /// The configured issuers.
        trusted: String,
    },
    /// The issuer publishes no key with the token's `kid`, even after a refresh.
    #[error("issuer {issuer} has no key {kid:?} ({refreshed}): the token was signed by another key")]
    UnknownKey {
        /// The issuer.
        issuer: String,
        /// The token's `kid`.
        kid: String,
        /// Whether the keys were refreshed for this token, and if not, why not.
        refreshed: &'static str,
    },
    /// The signature does not verify with the issuer's key.
    #[error("signature does not verify with issuer {issuer}'s key{kid}")]
    SignatureInvalid {
        /// The issuer.
        issuer: String,
        /// ` "kid"`, when the token named one.
        kid: String,
    },
    /// A required claim is absent.
    #[error("claim \"{claim}\" is required")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong type or value.
    #[error("claim \"{claim}\" is invalid: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `exp` has passed.
    #[error("token expired {ago_secs} s ago (leeway {leeway_secs} s)")]
    Expired {
        /// Seconds since `exp`.
        ago_secs: u64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// `nbf` or `iat` is in the future.
    #[error("token not valid yet: \"{claim}\" is {ahead_secs} s ahead (leeway {leeway_secs} s); check the clocks")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Seconds ahead of now.
        ahead_secs: u64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// `exp - iat` is longer than the issuer policy allows.
    #[error("token lifetime {lifetime_secs} s exceeds the {max_secs} s allowed")]
    LifetimeTooLong {
        /// `exp - iat`.
        lifetime_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// `aud` does not name this API.
    #[error("audience {found} does not name this API: expected {expected}")]
    WrongAudience {
        /// What the token says.
        found: String,
        /// The configured audiences.
        expected: String,
    },
    /// The token lacks scopes the API requires.
    #[error("insufficient scope: missing {}", missing.join(" "))]
    InsufficientScope {
        /// The required scopes the token lacks.
        missing: Vec<String>,
    },
    /// The token lacks roles the API requires.
    #[error("insufficient role: missing {}", missing.join(" "))]
    InsufficientRole {
        /// The required roles the token lacks.
        missing: Vec<String>,
    },
    /// The token does not name an agent and a human in the configured layout.
    #[error("no dual subject in the {layout} layout: {}", dual_auth_core::escape_untrusted(reason, false))]
    InvalidDelegation {
        /// The layout the issuer is configured with.
        layout: &'static str,
        /// What is missing or wrong.
        reason: String,
    },
    /// The issuer's tokens need an `X-Act-Assertion` (Entra ID) and none came.
    #[error("no X-Act-Assertion header: tokens from {issuer} carry the human in an act assertion beside the token")]
    MissingActAssertion {
        /// The issuer.
        issuer: String,
    },
    /// The act assertion failed verification (signature, audience, expiry, replay...).
    #[error("act assertion refused: {0}")]
    ActAssertion(#[source] ActJwtError),
    /// The act assertion names another agent than the token.
    #[error("the act assertion is for agent {assertion_agent}, the token for agent {token_agent:?}: they must match")]
    AgentMismatch {
        /// The agent the token names (`azp` or `appid`).
        token_agent: String,
        /// The assertion's `azp` (or "no azp claim").
        assertion_agent: String,
    },
    /// The issuer's keys could not be fetched and none are cached (or the cache is too old).
    #[error("keys of issuer {issuer} unavailable: {}", dual_auth_core::escape_untrusted(reason, false))]
    KeysUnavailable {
        /// The issuer.
        issuer: String,
        /// What failed, naming the URL without its query.
        reason: String,
    },
    /// A verifier setting is wrong.
    #[error("verifier setting {setting} is invalid: {reason}")]
    Configuration {
        /// The setting.
        setting: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// The RFC 6750 error codes a rejection carries in `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// No token came: the challenge carries no error code (RFC 6750 §3.1).
    None,
    /// 400: the request is malformed.
    InvalidRequest,
    /// 401: the token is expired, revoked, malformed, or otherwise invalid.
    InvalidToken,
    /// 403: the token lacks a required scope or role.
    InsufficientScope,
}

impl BearerError {
    /// The code as written in `error="..."`, if any.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

impl VerifyError {
    /// The HTTP status an API answers with: 400, 401, 403, 500 (a setting) or 503 (keys
    /// or the replay store unavailable).
    pub fn status(&self) -> http::StatusCode {
        match self.bearer_error() {
            _ if self.is_temporary() => http::StatusCode::SERVICE_UNAVAILABLE,
            _ if matches!(self, Self::Configuration { .. }) => http::StatusCode::INTERNAL_SERVER_ERROR,
            BearerError::InvalidRequest => http::StatusCode::BAD_REQUEST,
            BearerError::InsufficientScope => http::StatusCode::FORBIDDEN,
            _ => http::StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code.
    pub fn bearer_error(&self) -> BearerError {
        match self {
            Self::MissingToken => BearerError::None,
            Self::InvalidRequest { .. } => BearerError::InvalidRequest,
            Self::InsufficientScope { .. } | Self::InsufficientRole { .. } => BearerError::InsufficientScope,
            _ => BearerError::InvalidToken,
        }
    }

    /// A description safe to send to the client: fixed text per kind, naming no value
    /// from the token or the configuration.
    pub fn public_description(&self) -> &'static str {
        match self {
            Self::MissingToken => "No bearer token was sent",
            Self::InvalidRequest { reason } => reason,
            Self::TooLarge { .. } => "The token is too large",
            Self::Malformed { .. } => "The token is not a well-formed JWT",
            Self::UnsupportedHeader { .. } => "The token's header carries a parameter that is not accepted",
            Self::AlgorithmNotAllowed { .. } => "The token's signing algorithm is not accepted",
            Self::WrongType { .. } => "The token is not an access token",
            Self::UnknownIssuer { .. } => "The token's issuer is not trusted",
            Self::UnknownKey { .. } => "The token was signed by an unknown key",
            Self::SignatureInvalid { .. } => "The token's signature is invalid",
            Self::MissingClaim { .. } | Self::InvalidClaim { .. } => "The token's claims are invalid",
            Self::Expired { .. } => "The token expired",
            Self::NotYetValid { .. } => "The token is not valid yet",
            Self::LifetimeTooLong { .. } => "The token's lifetime is too long",
            Self::WrongAudience { .. } => "The token is not for this API",
            Self::InsufficientScope { .. } => "The token lacks a required scope",
            Self::InsufficientRole { .. } => "The token lacks a required role",
            Self::InvalidDelegation { .. } => "The token does not name an agent acting for a human",
            Self::MissingActAssertion { .. } => "An X-Act-Assertion header is required with this token",
            Self::ActAssertion(ActJwtError::Replayed) => "The act assertion was already used",
            Self::ActAssertion(ActJwtError::Expired { .. }) => "The act assertion expired",
            Self::ActAssertion(ActJwtError::ReplayCheckFailed(_)) => "The act assertion cannot be checked right now",
            Self::ActAssertion(_) => "The act assertion is invalid",
            Self::AgentMismatch { .. } => "The act assertion was made for another agent",
            Self::KeysUnavailable { .. } => "The token cannot be checked right now",
            Self::Configuration { .. } => "The API's token verification is misconfigured",
        }
    }

    /// The required scopes the token lacked, for `WWW-Authenticate`'s `scope`.
    pub fn missing_scopes(&self) -> Option<&[String]> {
        match self {
            Self::InsufficientScope { missing } => Some(missing),
            _ => None,
        }
    }

    /// Whether the token (or the act assertion) expired.
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. } | Self::ActAssertion(ActJwtError::Expired { .. }))
    }

    /// Whether an act assertion was presented a second time.
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::ActAssertion(ActJwtError::Replayed))
    }

    /// Whether the token lacks a scope or role (403).
    pub fn is_insufficient_scope(&self) -> bool {
        self.bearer_error() == BearerError::InsufficientScope
    }

    /// Whether the refusal is the verifier's condition, not the token's (keys unavailable,
    /// or the act assertion's replay store full or down): the same token may pass later, so
    /// the client should back off (503 with `Retry-After`) rather than refresh it.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::KeysUnavailable { .. } | Self::ActAssertion(ActJwtError::ReplayCheckFailed(_)))
    }

    /// Builds the `WWW-Authenticate` value (RFC 6750 §3): `Bearer` with `realm` when set,
    /// `error`, `error_description` and `scope` as they apply. `None` for errors that are
    /// not the client's (503, 500).
    pub fn www_authenticate(&self, realm: Option<&str>) -> Option<String> {
        if self.is_temporary() || matches!(self, Self::Configuration { .. }) {
            return None;
        }
        let mut params = Vec::new();
        if let Some(realm) = realm {
            params.push(format!("realm=\"{}\"", quoted(realm)));
        }
        if let Some(code) = self.bearer_error().as_str() {
            params.push(format!("error=\"{code}\""));
            params.push(format!("error_description=\"{}\"", quoted(self.public_description())));
        }
        if let Some(missing) = self.missing_scopes() {
            params.push(format!("scope=\"{}\"", quoted(&missing.join(" "))));
        }
        Some(if params.is_empty() { "Bearer".to_owned() } else { format!("Bearer {}", params.join(", ")) })
    }
}

/// RFC 6750 values are quoted-strings of printable ASCII without `"` and `\`.
fn quoted(value: &str) -> String {
    value.chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect()
}
