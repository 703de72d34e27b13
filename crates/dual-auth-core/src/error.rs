//! One error enum per concern. None of them ever carries a secret, a token or personal data.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

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
    #[error("key file {path}: {source}")]
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

/// Reasons an act JWT (or any JWT handed to [`crate::UnverifiedJwt`]) is refused or could not be made.
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
    #[error("Act JWT must contain act.sub: {0}")]
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
    #[error("Act JWT refused: the replay check failed: {0}")]
    ReplayCheckFailed(#[source] ReplayError),
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
    #[error("{vendor} token request failed after {attempts} attempts: {last}")]
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
    #[error("{vendor} assertion could not be built: {source}")]
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
    #[error("{vendor} DPoP proof could not be signed: {source}")]
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

    /// Whether trying again later may succeed: 429, 500, 502, 503, 504 and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::OAuth { status, .. } | Self::HttpStatus { status, .. } => is_retryable_status(*status),
            Self::Transport { .. } => true,
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
    /// The backend is not compiled in or not built yet.
    #[error("{backend} secret store not supported: {reason}")]
    NotSupported {
        /// The backend.
        backend: SecretBackend,
        /// Why, and what to do.
        reason: String,
    },
    /// The fetch took too long.
    #[error("{backend} secret store timed out after {timeout:?} reading {key:?}")]
    Timeout {
        /// The backend.
        backend: SecretBackend,
        /// The key name.
        key: String,
        /// The time allowed.
        timeout: Duration,
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
}
