//! One error enum per concern. None of them ever carries a secret, a token or personal data.

use std::error::Error as StdError;
use std::path::PathBuf;

use crate::adapter::Vendor;
use crate::delegation::DelegationMode;
use crate::secret::SecretBackend;

/// A boxed underlying cause.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Shaping the human identity (`act`) went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActError {
    /// The session has no e-mail address.
    #[error("Session must contain email: set user_email (or an email, user_email, userPrincipalName or mail claim)")]
    MissingEmail,
    /// The act has no `sub`.
    #[error("act must contain a non-empty \"sub\" (the identity provider's user id)")]
    MissingSub,
    /// `sub` is empty or white space.
    #[error("act.sub must not be empty: use the identity provider's user id")]
    EmptySub,
    /// The act is not a JSON object.
    #[error("act must be a JSON object with a non-empty \"sub\", found {found}")]
    NotAnObject {
        /// What was found instead, for example "a string".
        found: &'static str,
    },
    /// A field has the wrong type or may not be set this way.
    #[error("act field {field:?} {reason}")]
    InvalidField {
        /// The field's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Loading, generating or using a key went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("key file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a key of a supported kind and format.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong, without key material.
        reason: String,
    },
    /// The key does not fit the algorithm asked for.
    #[error("a {key_type} key cannot be used with {algorithm}")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        algorithm: String,
        /// The kind of key given.
        key_type: &'static str,
    },
    /// The algorithm name is not one we support.
    #[error("unsupported algorithm {name:?}: use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, EdDSA")]
    UnsupportedAlgorithm {
        /// The name given.
        name: String,
    },
    /// Signing failed in the cryptographic library.
    #[error("signing with {algorithm} failed: {reason}")]
    Signing {
        /// The algorithm used.
        algorithm: String,
        /// What went wrong.
        reason: String,
    },
    /// A key file to be written exists already.
    #[error("{path} exists already: remove it or choose another directory")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
}

/// Reasons an act JWT (or any JWT handed to [`crate::dangerous::UnverifiedJwt`]) is refused or could not be made.
///
/// The messages of the upstream Python package are kept at the start of the ones that
/// correspond ("Act JWT expired", "Act JWT invalid audience", "Act JWT signature invalid",
/// "Act JWT replay detected", "Act JWT must contain act.sub").
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActJwtError {
    /// Not a compact JWS of three base64url parts with JSON header and claims.
    #[error("Act JWT malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Longer than the configured maximum.
    #[error("Act JWT too large: {size} bytes, at most {max} accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The header's `alg` is not the algorithm of any configured key.
    #[error("Act JWT algorithm {found:?} not allowed: the verification key takes {allowed}")]
    AlgorithmNotAllowed {
        /// The `alg` in the header.
        found: String,
        /// The algorithms of the configured keys.
        allowed: String,
    },
    /// The header's `kid` names no configured key.
    #[error("Act JWT key id {kid:?} is not one of the configured keys")]
    UnknownKeyId {
        /// The `kid` in the header.
        kid: String,
    },
    /// A header parameter we do not accept (`crit`, or one naming key material).
    #[error("Act JWT header {name:?} not accepted: {reason}")]
    UnsupportedHeader {
        /// The parameter.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The signature does not verify with the configured key.
    #[error("Act JWT signature invalid")]
    SignatureInvalid,
    /// A required claim is absent.
    #[error("Act JWT missing required claim {claim:?}")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong type or value.
    #[error("Act JWT claim {claim:?} invalid: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `exp` has passed (after leeway).
    #[error("Act JWT expired {ago_secs} s ago (leeway {leeway_secs} s)")]
    Expired {
        /// Seconds since `exp`.
        ago_secs: u64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// `nbf` or `iat` lies in the future (after leeway).
    #[error("Act JWT not yet valid: {claim:?} is {ahead_secs} s in the future (leeway {leeway_secs} s); check the clocks")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// How far ahead.
        ahead_secs: u64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// `exp - iat` is longer than allowed.
    #[error("Act JWT lifetime {lifetime_secs} s exceeds the maximum of {max_secs} s")]
    LifetimeTooLong {
        /// `exp - iat`.
        lifetime_secs: u64,
        /// The maximum.
        max_secs: u64,
    },
    /// `aud` is not exactly the expected audience.
    #[error("Act JWT invalid audience: expected {expected:?}, found {found}")]
    InvalidAudience {
        /// The audience configured.
        expected: String,
        /// What the token had (quoted string, or a description of its type).
        found: String,
    },
    /// `iss` is not the expected issuer.
    #[error("Act JWT invalid issuer: expected {expected:?}, found {found}")]
    InvalidIssuer {
        /// The issuer configured.
        expected: String,
        /// What the token had.
        found: String,
    },
    /// The `act` claim is missing, not an object, or has no usable `sub`.
    #[error("Act JWT must contain act.sub")]
    InvalidAct(#[source] ActError),
    /// The `jti` has been seen before.
    #[error("Act JWT replay detected")]
    Replayed,
    /// The `azp` is not the agent the token was expected for (or is absent, as in act
    /// assertions from the Python package 1.0.1).
    #[error("the act assertion is for agent {}, not {expected:?}: they must match", found.as_deref().map_or_else(|| "(none: no azp claim, so it cannot be bound to an agent)".to_owned(), |f| format!("{f:?}")))]
    WrongAuthorizedParty {
        /// The agent expected.
        expected: String,
        /// The `azp` the token names, if any.
        found: Option<String>,
    },
    /// The replay store could not answer: the token is refused (fail closed).
    #[error("Act JWT refused: the replay check failed")]
    ReplayCheckFailed(#[source] ReplayError),
    /// The keys to check it with could not be had (a JWKS that cannot be fetched).
    #[error("Act JWT keys of {keys} unavailable: {}", crate::escape_untrusted(reason, false))]
    KeysUnavailable {
        /// Whose keys.
        keys: String,
        /// What failed.
        reason: String,
    },
    /// The signer was asked for a TTL outside its bounds.
    #[error("act JWT TTL {ttl_secs} s is outside the allowed {min_secs}..={max_secs} s")]
    InvalidTtl {
        /// The TTL asked for.
        ttl_secs: u64,
        /// The lower bound.
        min_secs: u64,
        /// The upper bound.
        max_secs: u64,
    },
    /// The agent endpoint (the audience) is not an `https://` URL with a host.
    #[error("Agent endpoint must use HTTPS for security: {reason}")]
    InvalidAgentEndpoint {
        /// What is wrong with it.
        reason: String,
    },
    /// A verifier setting is out of range.
    #[error("act JWT verifier setting {setting}: {reason}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl ActJwtError {
    /// Whether the token was refused because it was used before.
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::Replayed)
    }

    /// Whether the token was refused because it expired.
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. })
    }

    /// Whether the verifier, not the token, failed: the replay store is full or cannot be
    /// reached. The same token may pass later; answer 503 (with `Retry-After`), not 401.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::ReplayCheckFailed(_))
    }
}

/// The replay store refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The `jti` was recorded before and has not expired.
    #[error("jti seen before")]
    Replayed,
    /// The store is full of unexpired entries; refusing keeps replay protection intact.
    #[error("replay store full ({capacity} unexpired entries): raise its capacity or shorten act JWT lifetimes")]
    CapacityExceeded {
        /// The store's capacity.
        capacity: usize,
    },
    /// The store could not be reached.
    #[error("replay store unavailable: {reason}")]
    Unavailable {
        /// What went wrong.
        reason: String,
        /// The cause.
        #[source]
        source: Option<BoxError>,
    },
}

/// A token request to an identity provider failed.
///
/// The HTTP status, the OAuth `error` and `error_description`, and the vendor are kept;
/// a secret or token never is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IamError {
    /// The request is incomplete (the upstream "Invalid inputs" checks).
    #[error("Invalid inputs: {reason}")]
    InvalidRequest {
        /// What is missing or wrong.
        reason: String,
    },
    /// The caller asked to act as another agent than the one configured.
    #[error(
        "agent_id {requested:?} differs from the configured client id {configured:?} ({vendor}): this adapter only signs for its own client"
    )]
    AgentMismatch {
        /// The vendor.
        vendor: Vendor,
        /// The configured client id.
        configured: String,
        /// The id asked for.
        requested: String,
    },
    /// The identity provider answered with an OAuth error.
    #[error(
        "{vendor} token endpoint answered HTTP {status}: {}{}",
        crate::escape_untrusted(error, false),
        description.as_deref().map(|d| format!(" ({})", crate::escape_untrusted(d, false))).unwrap_or_default()
    )]
    OAuth {
        /// The vendor.
        vendor: Vendor,
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code (from the network: cut to [`crate::MAX_OAUTH_ERROR_CHARS`]
        /// and escaped by the token endpoint client).
        error: String,
        /// The OAuth `error_description` (cut to [`crate::MAX_OAUTH_DESCRIPTION_CHARS`], escaped).
        description: Option<String>,
    },
    /// The identity provider answered with an HTTP error that is not an OAuth error.
    #[error("{vendor} token endpoint answered HTTP {status}")]
    HttpStatus {
        /// The vendor.
        vendor: Vendor,
        /// The HTTP status.
        status: u16,
    },
    /// A success status with a body that is not a usable token response.
    #[error("{vendor} token endpoint answered HTTP {status} with an unusable body: {reason}")]
    InvalidResponse {
        /// The vendor.
        vendor: Vendor,
        /// The HTTP status.
        status: u16,
        /// What is wrong, for example "no access_token".
        reason: String,
    },
    /// The token's `expires_in` is longer than [`crate::MAX_TOKEN_LIFETIME`]: refused rather
    /// than cached for that long.
    #[error("{vendor} token endpoint granted a lifetime of {expires_in_secs} s, more than the {max_secs} s accepted")]
    LifetimeTooLong {
        /// The vendor.
        vendor: Vendor,
        /// The `expires_in` sent.
        expires_in_secs: u64,
        /// The longest accepted.
        max_secs: u64,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("{vendor} token endpoint unreachable: {reason}")]
    Transport {
        /// The vendor.
        vendor: Vendor,
        /// What went wrong.
        reason: String,
        /// Whether it was a timeout.
        timed_out: bool,
        /// The cause.
        #[source]
        source: Option<BoxError>,
    },
    /// Every allowed attempt failed; the last failure is the source.
    #[error("{vendor} token request failed after {attempts} attempts")]
    RetriesExhausted {
        /// The vendor.
        vendor: Vendor,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<IamError>,
    },
    /// Building the client assertion or act assertion failed.
    #[error("{vendor} assertion could not be built")]
    Assertion {
        /// The vendor.
        vendor: Vendor,
        /// The cause.
        #[source]
        source: KeyError,
    },
    /// The adapter is configured wrongly.
    #[error("{vendor} adapter misconfigured: {reason}")]
    Configuration {
        /// The vendor.
        vendor: Vendor,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The feature asked for is not built.
    #[error("not supported: {what}")]
    NotSupported {
        /// What is not supported.
        what: String,
    },
    /// The request used another delegation mode than the one `DUAL_AUTH_DELEGATION`
    /// configures (for example a self-asserted act when a verified mode is required).
    #[error("{vendor}: a {asked} request is refused because DUAL_AUTH_DELEGATION={configured}: {hint}")]
    ModeRefused {
        /// The vendor.
        vendor: Vendor,
        /// The configured mode.
        configured: DelegationMode,
        /// The mode the request needs.
        asked: DelegationMode,
        /// What to do instead.
        hint: &'static str,
    },
    /// The identity provider issued something other than an access token (RFC 8693
    /// `issued_token_type`, or a `token_type` such as `N_A`): refused, never used as a
    /// bearer token.
    #[error("{vendor} token endpoint issued {found}, not an access token: refused rather than used as a bearer token")]
    NotAnAccessToken {
        /// The vendor.
        vendor: Vendor,
        /// What it says it issued (escaped, cut).
        found: String,
    },
    /// DPoP was asked for and the identity provider issued a token that is not DPoP-bound
    /// (`token_type` `Bearer`, or none): refused, since a stolen copy would work without
    /// the key. [`crate::token_endpoint::DpopSettings::allow_downgrade`] accepts it instead.
    #[error(
        "{vendor} token endpoint issued a {found} token where a DPoP-bound one was asked for: refused \
         (enable DPoP for this client at the identity provider, or set DUAL_AUTH_DPOP_ALLOW_DOWNGRADE=true to accept bearer tokens)"
    )]
    DpopDowngrade {
        /// The vendor.
        vendor: Vendor,
        /// The `token_type` it sent (escaped, cut), or "untyped".
        found: String,
    },
    /// A DPoP proof could not be signed.
    #[error("{vendor} DPoP proof could not be signed")]
    DpopProof {
        /// The vendor.
        vendor: Vendor,
        /// The cause.
        #[source]
        source: KeyError,
    },
}

impl IamError {
    /// The HTTP status the identity provider answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::OAuth { status, .. } | Self::HttpStatus { status, .. } | Self::InvalidResponse { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The OAuth `error` code, if the identity provider sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::OAuth { error, .. } => Some(error),
            Self::RetriesExhausted { last, .. } => last.oauth_error(),
            _ => None,
        }
    }

    /// The OAuth `error_description`, if the identity provider sent one (cut and escaped
    /// as it came).
    pub fn oauth_description(&self) -> Option<&str> {
        match self {
            Self::OAuth { description, .. } => description.as_deref(),
            Self::RetriesExhausted { last, .. } => last.oauth_description(),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: 429, 500, 502, 503, 504 and transport failures
    /// (after [`IamError::RetriesExhausted`], whether the last failure was one).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::OAuth { status, .. } | Self::HttpStatus { status, .. } => is_retryable_status(*status),
            Self::Transport { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_retryable(),
            _ => false,
        }
    }

    /// Whether the caller asked for something this adapter refuses before sending any
    /// request: input that is missing or wrong (a blank scope, no agent id), another agent
    /// than the configured one, or another delegation mode than `DUAL_AUTH_DELEGATION`
    /// allows. Answer 400 to whoever made the request; asking again unchanged cannot help.
    pub fn is_caller_error(&self) -> bool {
        match self {
            Self::InvalidRequest { .. } | Self::AgentMismatch { .. } | Self::ModeRefused { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_caller_error(),
            _ => false,
        }
    }

    /// Whether the identity provider refused the request, failed, answered with something
    /// unusable, or could not be reached (answer 502 or 503, or retry later). Neither a
    /// caller mistake ([`IamError::is_caller_error`]) nor a local one (a misconfigured
    /// adapter, a key that cannot sign) counts.
    pub fn is_identity_provider_failure(&self) -> bool {
        match self {
            Self::OAuth { .. }
            | Self::HttpStatus { .. }
            | Self::InvalidResponse { .. }
            | Self::LifetimeTooLong { .. }
            | Self::Transport { .. }
            | Self::NotAnAccessToken { .. }
            | Self::DpopDowngrade { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_identity_provider_failure(),
            _ => false,
        }
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Transport { timed_out, .. } => *timed_out,
            Self::RetriesExhausted { last, .. } => last.is_timeout(),
            _ => false,
        }
    }
}

/// Shows an error and every cause behind it on one line, `error: cause: root cause`, for
/// logs and command lines.
///
/// No error's own `Display` repeats its cause (the cause is its [`StdError::source`]), so
/// `to_string()` alone says only what went wrong at that level; this walks the chain. A
/// cause whose text the line already ends with (third-party errors that do repeat their
/// source) is not written twice.
///
/// ```
/// use dual_auth_core::{ErrorChain, IamError, KeyError, Vendor};
///
/// let cause = KeyError::InvalidKey { reason: "not a PEM".into() };
/// let err = IamError::Assertion { vendor: Vendor::Okta, source: cause };
/// assert_eq!(err.to_string(), "okta assertion could not be built");
/// assert_eq!(ErrorChain(&err).to_string(), "okta assertion could not be built: invalid key: not a PEM");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut written = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !written.ends_with(&text) {
                written.push_str(": ");
                written.push_str(&text);
            }
            cause = error.source();
        }
        f.write_str(&written)
    }
}

/// The HTTP statuses after which a retry may help.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Fetching a value from a secret store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The store refused access.
    #[error("{backend} secret store refused access to {key:?}: {reason}")]
    PermissionDenied {
        /// The backend.
        backend: SecretBackend,
        /// The key name (never its value).
        key: String,
        /// What the store said, and how to fix it.
        reason: String,
    },
    /// The store could not be reached or answered unexpectedly.
    #[error("{backend} secret store unavailable while reading {key:?}: {reason}")]
    Unavailable {
        /// The backend.
        backend: SecretBackend,
        /// The key name.
        key: String,
        /// What went wrong.
        reason: String,
        /// The cause.
        #[source]
        source: Option<BoxError>,
    },
    /// The stored value is not usable (for example not UTF-8).
    #[error("{backend} secret {key:?} has an unusable value: {reason}")]
    InvalidValue {
        /// The backend.
        backend: SecretBackend,
        /// The key name.
        key: String,
        /// What is wrong, without the value.
        reason: String,
    },
    /// The backend itself is configured wrongly.
    #[error("{backend} secret store misconfigured: {setting}: {reason}")]
    Configuration {
        /// The backend.
        backend: SecretBackend,
        /// The setting, for example `VAULT_ADDR`.
        setting: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_keeps_status_code_description_and_vendor() {
        let err = IamError::OAuth {
            vendor: Vendor::Okta,
            status: 401,
            error: "invalid_client".into(),
            description: Some("Client authentication failed".into()),
        };
        assert_eq!(err.to_string(), "okta token endpoint answered HTTP 401: invalid_client (Client authentication failed)");
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.oauth_error(), Some("invalid_client"));
        assert!(!err.is_retryable());
        let wrapped = IamError::RetriesExhausted { vendor: Vendor::Okta, attempts: 3, last: Box::new(err) };
        assert_eq!(wrapped.status(), Some(401));
        assert_eq!(wrapped.oauth_error(), Some("invalid_client"));
    }

    #[test]
    fn retryable_statuses_are_exactly_the_transient_ones() {
        let retryable: Vec<u16> = (100..600).filter(|s| is_retryable_status(*s)).collect();
        assert_eq!(retryable, [429, 500, 502, 503, 504]);
        assert!(IamError::HttpStatus { vendor: Vendor::Auth0, status: 503 }.is_retryable());
        assert!(!IamError::HttpStatus { vendor: Vendor::Auth0, status: 501 }.is_retryable());
    }

    fn exhausted(last: IamError) -> IamError {
        IamError::RetriesExhausted { vendor: Vendor::Keycloak, attempts: 3, last: Box::new(last) }
    }

    #[test]
    fn the_predicates_look_through_retries_exhausted() {
        let unavailable = exhausted(IamError::HttpStatus { vendor: Vendor::Keycloak, status: 503 });
        assert!(unavailable.is_retryable() && unavailable.is_identity_provider_failure() && !unavailable.is_caller_error());
        assert_eq!(unavailable.status(), Some(503));
        let timed_out =
            exhausted(IamError::Transport { vendor: Vendor::Keycloak, reason: "timed out".into(), timed_out: true, source: None });
        assert!(timed_out.is_retryable() && timed_out.is_timeout() && timed_out.is_identity_provider_failure());
        let refused =
            exhausted(IamError::OAuth { vendor: Vendor::Keycloak, status: 400, error: "invalid_grant".into(), description: None });
        assert!(!refused.is_retryable() && refused.is_identity_provider_failure());
        assert_eq!(refused.oauth_error(), Some("invalid_grant"));
        let nested = exhausted(exhausted(IamError::InvalidRequest { reason: "scope required".into() }));
        assert!(nested.is_caller_error() && !nested.is_identity_provider_failure() && !nested.is_retryable());
    }

    #[test]
    fn caller_mistakes_are_told_apart_from_identity_provider_failures() {
        let vendor = Vendor::Auth0;
        let caller = [
            IamError::InvalidRequest { reason: "scope required (a non-empty scope)".into() },
            IamError::AgentMismatch { vendor, configured: "agent".into(), requested: "other".into() },
            IamError::ModeRefused {
                vendor,
                configured: DelegationMode::TokenExchange,
                asked: DelegationMode::SelfAsserted,
                hint: "send the human's evidence",
            },
        ];
        for err in &caller {
            assert!(err.is_caller_error() && !err.is_identity_provider_failure() && !err.is_retryable(), "{err}");
        }
        let identity_provider = [
            IamError::OAuth { vendor, status: 401, error: "invalid_client".into(), description: None },
            IamError::HttpStatus { vendor, status: 502 },
            IamError::InvalidResponse { vendor, status: 200, reason: "no access_token".into() },
            IamError::LifetimeTooLong { vendor, expires_in_secs: 1 << 40, max_secs: 86_400 },
            IamError::Transport { vendor, reason: "connection failed".into(), timed_out: false, source: None },
            IamError::NotAnAccessToken { vendor, found: "an ID token".into() },
            IamError::DpopDowngrade { vendor, found: "Bearer".into() },
        ];
        for err in &identity_provider {
            assert!(err.is_identity_provider_failure() && !err.is_caller_error(), "{err}");
        }
        let local = [
            IamError::Configuration { vendor, reason: "no audience".into() },
            IamError::Assertion { vendor, source: KeyError::InvalidKey { reason: "not a PEM".into() } },
            IamError::DpopProof { vendor, source: KeyError::InvalidKey { reason: "not a PEM".into() } },
        ];
        for err in &local {
            assert!(!err.is_identity_provider_failure() && !err.is_caller_error(), "{err}");
        }
    }

    #[test]
    fn display_names_no_cause_and_the_chain_names_every_one() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let key = KeyError::Io { path: "/keys/agent.pem".into(), source: io };
        assert_eq!(key.to_string(), "key file /keys/agent.pem");
        let err = exhausted(IamError::Assertion { vendor: Vendor::Keycloak, source: key });
        assert_eq!(err.to_string(), "keycloak token request failed after 3 attempts");
        assert_eq!(
            ErrorChain(&err).to_string(),
            "keycloak token request failed after 3 attempts: keycloak assertion could not be built: key file /keys/agent.pem: No such file or directory"
        );

        let act = ActJwtError::InvalidAct(ActError::MissingSub);
        assert_eq!(act.to_string(), "Act JWT must contain act.sub");
        assert_eq!(
            ErrorChain(&act).to_string(),
            "Act JWT must contain act.sub: act must contain a non-empty \"sub\" (the identity provider's user id)"
        );
        let replay = ActJwtError::ReplayCheckFailed(ReplayError::CapacityExceeded { capacity: 2 });
        assert_eq!(replay.to_string(), "Act JWT refused: the replay check failed");
        assert!(
            ErrorChain(&replay)
                .to_string()
                .ends_with("failed: replay store full (2 unexpired entries): raise its capacity or shorten act JWT lifetimes")
        );
        let proof = IamError::DpopProof { vendor: Vendor::Okta, source: KeyError::InvalidKey { reason: "weak".into() } };
        assert_eq!(proof.to_string(), "okta DPoP proof could not be signed");
        assert_eq!(ErrorChain(&proof).to_string(), "okta DPoP proof could not be signed: invalid key: weak");
    }

    /// A third-party error that writes its cause into its own text.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn the_chain_does_not_repeat_a_cause_an_error_already_wrote() {
        let err = Repeats(std::io::Error::other("connection reset"));
        assert_eq!(ErrorChain(&err).to_string(), "request failed: connection reset");
        assert_eq!(ErrorChain(&ActError::MissingEmail).to_string(), ActError::MissingEmail.to_string());
    }
}
