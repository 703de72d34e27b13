//! One error type for everything that can refuse a request.

use dual_auth_core::{ActJwtError, ReplayError};

/// Which check of a DPoP proof (RFC 9449 §4.3) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopCheck {
    /// More than one `DPoP` header, not ASCII, or larger than [`crate::MAX_DPOP_PROOF_BYTES`].
    Request,
    /// Not a compact JWS with JSON header and claims, a header member of the wrong type, or
    /// a `crit` header.
    Syntax,
    /// The `typ` header is not `dpop+jwt`.
    Type,
    /// The `alg` is not one of [`crate::DPOP_ALGORITHMS`], or not the `jwk`'s.
    Algorithm,
    /// The `jwk` header is missing, not a public key, or a weak one; or the header names a
    /// key another way (`jku`, `x5u`, `x5c`).
    Key,
    /// The signature does not verify with the proof's own `jwk`.
    Signature,
    /// `jti` is missing or empty.
    Jti,
    /// `htm` is not the request's method.
    Method,
    /// `htu` is not the request's URL (without query and fragment).
    Url,
    /// `iat` is missing, or outside the accepted window around now.
    IssuedAt,
    /// `ath` is missing, or not the hash of the access token sent with it.
    TokenHash,
}

impl DpopCheck {
    /// A short name for logs: `request`, `syntax`, `typ`, `alg`, `jwk`, `signature`, `jti`,
    /// `htm`, `htu`, `iat`, `ath`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Syntax => "syntax",
            Self::Type => "typ",
            Self::Algorithm => "alg",
            Self::Key => "jwk",
            Self::Signature => "signature",
            Self::Jti => "jti",
            Self::Method => "htm",
            Self::Url => "htu",
            Self::IssuedAt => "iat",
            Self::TokenHash => "ath",
        }
    }

    fn public_description(self) -> &'static str {
        match self {
            Self::Request => "The DPoP header is not usable",
            Self::Syntax => "The DPoP proof is not a well-formed JWT",
            Self::Type => "The DPoP proof's typ is not dpop+jwt",
            Self::Algorithm => "The DPoP proof's signing algorithm is not accepted",
            Self::Key => "The DPoP proof's jwk is not an acceptable public key",
            Self::Signature => "The DPoP proof's signature is invalid",
            Self::Jti => "The DPoP proof has no jti",
            Self::Method => "The DPoP proof is for another HTTP method",
            Self::Url => "The DPoP proof is for another URL",
            Self::IssuedAt => "The DPoP proof's iat is outside the accepted window",
            Self::TokenHash => "The DPoP proof's ath does not match the access token",
        }
    }
}

impl std::fmt::Display for DpopCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    #[error("act assertion refused")]
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
    /// `Authorization: DPoP <token>` came without a `DPoP` proof header.
    #[error("no DPoP header: a token sent as \"Authorization: DPoP <token>\" needs a proof in one DPoP header")]
    MissingDpopProof,
    /// The DPoP proof failed a check of RFC 9449 §4.3.
    #[error("DPoP proof refused ({check}): {}", dual_auth_core::escape_untrusted(reason, false))]
    InvalidDpopProof {
        /// The check that failed.
        check: DpopCheck,
        /// What is wrong.
        reason: String,
    },
    /// The DPoP proof's `jti` was seen before: each request needs a new proof.
    #[error("DPoP proof already used (its jti was seen before): make a new proof for each request")]
    DpopReplayed,
    /// The proof's `jti` could not be recorded (the replay store is full or down), so the
    /// request is refused rather than risk a replay.
    #[error("the DPoP proof's jti could not be recorded, so the request is refused")]
    DpopReplayCheckFailed(#[source] ReplayError),
    /// The proof's key is not the one the token is bound to (`cnf.jkt`), or the token is
    /// bound to no key.
    #[error("{}", key_mismatch(token_jkt.as_deref(), proof_jkt))]
    DpopKeyMismatch {
        /// The token's `cnf.jkt`, if any.
        token_jkt: Option<String>,
        /// The RFC 7638 thumbprint of the proof's `jwk`.
        proof_jkt: String,
    },
    /// A DPoP-bound token (with `cnf.jkt`) came as a bearer token (RFC 9449 §7.2).
    #[error("the token is bound to a DPoP key (cnf.jkt): send it as \"Authorization: DPoP <token>\" with a DPoP proof")]
    DpopBoundTokenAsBearer,
    /// The issuer's tokens are accepted with DPoP only ([`crate::IssuerPolicy::require_dpop`]).
    #[error("issuer {issuer} requires DPoP: send the token as \"Authorization: DPoP <token>\" with a DPoP proof")]
    DpopRequired {
        /// The issuer.
        issuer: String,
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
    /// 401: the DPoP proof is missing or invalid (RFC 9449 §7.1), in a `DPoP` challenge.
    InvalidDpopProof,
}

impl BearerError {
    /// The code as written in `error="..."`, if any.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            Self::InvalidDpopProof => Some("invalid_dpop_proof"),
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
            Self::MissingDpopProof | Self::InvalidDpopProof { .. } | Self::DpopReplayed => BearerError::InvalidDpopProof,
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
            Self::MissingDpopProof => "A DPoP proof is required with a DPoP token",
            Self::InvalidDpopProof { check, .. } => check.public_description(),
            Self::DpopReplayed => "The DPoP proof was already used",
            Self::DpopReplayCheckFailed(_) => "The DPoP proof cannot be checked right now",
            Self::DpopKeyMismatch { .. } => "Invalid DPoP key binding",
            Self::DpopBoundTokenAsBearer => "The token is DPoP-bound: send it with the DPoP scheme and a proof",
            Self::DpopRequired { .. } => "The token must be sent with the DPoP scheme and a proof",
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

    /// Whether an act assertion or a DPoP proof was presented a second time.
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::ActAssertion(ActJwtError::Replayed) | Self::DpopReplayed)
    }

    /// Whether the refusal concerns DPoP (a proof, a key binding, or DPoP required): it is
    /// answered with a `DPoP` challenge (RFC 9449 §7.1) rather than a `Bearer` one.
    pub fn is_dpop(&self) -> bool {
        matches!(
            self,
            Self::MissingDpopProof
                | Self::InvalidDpopProof { .. }
                | Self::DpopReplayed
                | Self::DpopReplayCheckFailed(_)
                | Self::DpopKeyMismatch { .. }
                | Self::DpopBoundTokenAsBearer
                | Self::DpopRequired { .. }
        )
    }

    /// Whether the token lacks a scope or role (403).
    pub fn is_insufficient_scope(&self) -> bool {
        self.bearer_error() == BearerError::InsufficientScope
    }

    /// Whether the refusal is the verifier's condition, not the token's (keys unavailable,
    /// or the act assertion's replay store full or down): the same token may pass later, so
    /// the client should back off (503 with `Retry-After`) rather than refresh it.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Self::KeysUnavailable { .. } | Self::ActAssertion(ActJwtError::ReplayCheckFailed(_)) | Self::DpopReplayCheckFailed(_)
        )
    }

    /// Builds the `WWW-Authenticate` value (RFC 6750 §3): `Bearer` with `realm` when set,
    /// `error`, `error_description` and `scope` as they apply; for DPoP refusals
    /// ([`VerifyError::is_dpop`]) the `DPoP` challenge instead
    /// ([`VerifyError::dpop_www_authenticate`]). `None` for errors that are not the
    /// client's (503, 500).
    pub fn www_authenticate(&self, realm: Option<&str>) -> Option<String> {
        if self.is_dpop() { self.challenge("DPoP", realm) } else { self.challenge("Bearer", realm) }
    }

    /// The `DPoP` challenge for this refusal (RFC 9449 §7.1), whatever it is: `realm`,
    /// `error`, `error_description` and `scope` as for `Bearer`, then
    /// `algs="ES256 EdDSA RS256 PS256"`. For a token sent with the `DPoP` scheme, and for a
    /// missing token where DPoP is required. `None` for errors that are not the client's.
    pub fn dpop_www_authenticate(&self, realm: Option<&str>) -> Option<String> {
        self.challenge("DPoP", realm)
    }

    fn challenge(&self, scheme: &str, realm: Option<&str>) -> Option<String> {
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
        if scheme == "DPoP" {
            params.push(format!("algs=\"{}\"", crate::DPOP_ALGORITHMS.join(" ")));
        }
        Some(if params.is_empty() { scheme.to_owned() } else { format!("{scheme} {}", params.join(", ")) })
    }
}

fn key_mismatch(token_jkt: Option<&str>, proof_jkt: &str) -> String {
    let shown = |jkt: &str| dual_auth_core::escape_untrusted(&format!("{jkt:?}"), false);
    match token_jkt {
        None => format!(
            "the token is not bound to a DPoP key (no cnf.jkt), yet came with a proof by key {}: send it as \"Authorization: Bearer\"",
            shown(proof_jkt)
        ),
        Some(jkt) => format!(
            "the token is bound to DPoP key {}, the proof was signed by key {}: the token was replayed with another key",
            shown(jkt),
            shown(proof_jkt)
        ),
    }
}

/// RFC 6750 values are quoted-strings of printable ASCII without `"` and `\`.
fn quoted(value: &str) -> String {
    value.chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect()
}
