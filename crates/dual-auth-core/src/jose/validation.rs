//! The one JWT validation engine: the header policy, the choice of keys, the signature,
//! and the registered claims (times, audience, issuer), shared by every verifier of the
//! workspace: act JWTs, Entra ID act assertions, access tokens and ID tokens.
//!
//! A token is read in three steps, each refusing with a [`JwtError`]:
//!
//! 1. [`Jws::parse`]: the size, the compact framing (three base64url parts, JSON objects),
//!    and the header policy: `alg` a string, no `crit`, no key named by the token itself
//!    (`jwk`, `jku`, `x5u`, `x5c`; `x5t` is a thumbprint of a configured key and allowed);
//! 2. [`Validation::verify_signature`]: `typ` and the allowed algorithms, the candidate
//!    keys from a [`KeyResolver`] (by `kid`: [`select_by_kid`]), only those whose own
//!    algorithm is the header's (so `none` and HMAC never pass), and the signature;
//! 3. [`Validation::validate_claims`]: `exp` (required), `nbf`, `iat` with leeway, the
//!    lifetime, the audience (a string or an array, any one equal to a configured one),
//!    the issuer.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use dual_auth_core::jwt::{Jws, RegisteredClaims, StaticKeys, Validation};
//! use dual_auth_core::{generate_key_pair, SigningAlgorithm, SigningKey};
//! use secrecy::ExposeSecret;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let pair = generate_key_pair(SigningAlgorithm::Es256, 0)?;
//! let key = SigningKey::from_pem(pair.private_key_pem.expose_secret())?;
//! let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
//! let token = key.sign_jwt(&serde_json::json!({"iss": "https://idp.example", "aud": ["api", "other"], "exp": now + 60, "iat": now}))?;
//!
//! let validation = Validation::new().issuer("https://idp.example").audience("api").checked()?;
//! let keys = StaticKeys::new([key.verifying_key()]);
//! let jws = Jws::parse(&token, 8 * 1024)?;
//! let used = validation.verify_signature(&jws, &keys).await?;
//! let times = validation.validate_claims(&RegisteredClaims::from_claims(jws.claims())?, SystemTime::now())?;
//! assert_eq!(used.algorithm(), SigningAlgorithm::Es256);
//! assert!(times.expires_at() > SystemTime::now());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::compact;
use super::keys::{SigningAlgorithm, VerifyingKey};
use crate::act::json_type_name;
use crate::clock::unix_seconds;

/// The clock skew tolerated by default when checking `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// The largest leeway a validation may be configured with.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The longest `exp - iat` a [`Validation`] accepts unless told otherwise: 5 minutes.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(300);

/// The header members the policy reads; any others are parsed and dropped.
const HEADER_MEMBERS: [&str; 8] = ["alg", "typ", "kid", "crit", "jwk", "jku", "x5u", "x5c"];
/// Header members that would let a token name its own key: only configured keys verify.
/// (`x5t` names a configured key's certificate by thumbprint, as Entra ID's tokens do.)
const SELF_KEYING_HEADERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];
/// The prefix a `typ` may carry (RFC 7515 §4.1.9).
const MEDIA_TYPE_PREFIX: &str = "application/";

/// Why a JWT was refused by the engine, or a [`Validation`] is unusable.
///
/// The verifiers built on the engine turn these into their own errors
/// ([`crate::ActJwtError`], `dual_auth_verify::VerifyError`). Values from the token are
/// quoted with control characters escaped, so a token cannot forge log lines; the token
/// itself and its signature are never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS of three base64url parts with JSON objects, or a header member
    /// of the wrong type.
    #[error("malformed JWT: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Larger than the limit.
    #[error("JWT is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A header member that is refused: `crit`, or one naming the token's own key.
    #[error("JWT header {name:?} is not accepted: {reason}")]
    UnsupportedHeader {
        /// The member.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The `typ` header is not the one expected.
    #[error("JWT type {} is not accepted: expected {expected:?}", found.as_ref().map_or_else(|| "(none)".to_owned(), |f| format!("{f:?}")))]
    WrongType {
        /// The token's `typ`, if any.
        found: Option<String>,
        /// The type expected.
        expected: String,
    },
    /// No key the token may be checked with has the header's `alg`.
    #[error("JWT algorithm {found:?} is not accepted: the keys verify {}", algorithm_list(allowed))]
    AlgorithmNotAllowed {
        /// The header's `alg`.
        found: String,
        /// The algorithms of the keys (or of [`Validation::algorithms`]).
        allowed: Vec<SigningAlgorithm>,
    },
    /// No key has the token's `kid`.
    #[error("no key {} ({detail})", kid.as_ref().map_or_else(|| "(no kid)".to_owned(), |k| format!("{k:?}")))]
    UnknownKey {
        /// The token's `kid`.
        kid: Option<String>,
        /// Whether the keys were refreshed for it, or why not.
        detail: &'static str,
    },
    /// The keys could not be had (a JWKS that cannot be fetched).
    #[error("keys of {keys} unavailable: {}", crate::escape_untrusted(reason, false))]
    KeysUnavailable {
        /// Whose keys: an issuer, an application.
        keys: String,
        /// What failed.
        reason: String,
    },
    /// The signature does not verify with any candidate key.
    #[error("JWT signature does not verify{}", kid.as_ref().map(|k| format!(" with key {k:?}")).unwrap_or_default())]
    SignatureInvalid {
        /// The token's `kid`, if any.
        kid: Option<String>,
    },
    /// A required claim is absent.
    #[error("JWT claim {claim:?} is required")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong type or value.
    #[error("JWT claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `exp` has passed, beyond the leeway.
    #[error("JWT expired {ago_secs} s ago (leeway {leeway_secs} s)")]
    Expired {
        /// Seconds since `exp`.
        ago_secs: u64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// `nbf` or `iat` lies in the future, beyond the leeway.
    #[error("JWT not valid yet: {claim:?} is {ahead_secs} s ahead (leeway {leeway_secs} s); check the clocks")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Seconds ahead of now.
        ahead_secs: u64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// The lifetime (`exp - iat`, or what is left of it without `iat`) is too long.
    #[error("JWT lifetime {lifetime_secs} s exceeds the {max_secs} s allowed")]
    LifetimeTooLong {
        /// The lifetime.
        lifetime_secs: u64,
        /// The limit.
        max_secs: u64,
    },
    /// `aud` names none of the configured audiences.
    #[error("JWT audience {found} is not accepted: expected {}", quoted_list(expected))]
    WrongAudience {
        /// The audiences configured.
        expected: Vec<String>,
        /// What the token had (quoted values, or "no aud claim").
        found: String,
    },
    /// `iss` is none of the configured issuers.
    #[error("JWT issuer {found} is not accepted: expected {}", quoted_list(expected))]
    WrongIssuer {
        /// The issuers configured.
        expected: Vec<String>,
        /// What the token had (a quoted value, or "no iss claim").
        found: String,
    },
    /// A [`Validation`] setting is out of range.
    #[error("JWT validation setting {setting}: {reason}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn algorithm_list(algorithms: &[SigningAlgorithm]) -> String {
    if algorithms.is_empty() { "nothing".to_owned() } else { algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ") }
}

fn quoted_list(values: &[String]) -> String {
    values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
}

fn malformed(reason: impl Into<String>) -> JwtError {
    JwtError::Malformed { reason: reason.into() }
}

/// Whether two `typ` values name the same media type: compared without ASCII case and
/// without an `application/` prefix (RFC 7515 §4.1.9), so `application/at+jwt` is `at+jwt`.
pub fn same_type(a: &str, b: &str) -> bool {
    fn bare(typ: &str) -> &str {
        let typ = typ.trim();
        match typ.get(..MEDIA_TYPE_PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(MEDIA_TYPE_PREFIX) => &typ[MEDIA_TYPE_PREFIX.len()..],
            _ => typ,
        }
    }
    bare(a).eq_ignore_ascii_case(bare(b))
}

/// The keys a token's `kid` selects: those with that `kid`, else (as RFC 7517 allows)
/// the keys that have none; every key when the token names none, so a key can be rotated
/// without `kid`s. Empty when the `kid` names no key and every key has another one.
pub fn select_by_kid<'a>(keys: &'a [VerifyingKey], kid: Option<&str>) -> Vec<&'a VerifyingKey> {
    let Some(kid) = kid else { return keys.iter().collect() };
    let named: Vec<&VerifyingKey> = keys.iter().filter(|k| k.key_id() == Some(kid)).collect();
    if named.is_empty() { keys.iter().filter(|k| k.key_id().is_none()).collect() } else { named }
}

/// The header members the engine acts on, from a header that passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

impl JwtHeader {
    /// The header policy over the members of [`HEADER_MEMBERS`].
    fn from_members([alg, typ, kid, crit, jwk, jku, x5u, x5c]: [Option<Value>; 8]) -> Result<Self, JwtError> {
        let text = |name: &str, value: Option<Value>| match value {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(malformed(format!("header {name:?} is not a string"))),
        };
        let alg = text("alg", alg)?.ok_or_else(|| malformed("header has no \"alg\""))?;
        if crit.is_some() {
            return Err(JwtError::UnsupportedHeader { name: "crit".into(), reason: "no critical extensions are understood" });
        }
        if let Some((name, _)) = SELF_KEYING_HEADERS.iter().zip([jwk, jku, x5u, x5c]).find(|(_, member)| member.is_some()) {
            return Err(JwtError::UnsupportedHeader {
                name: (*name).into(),
                reason: "a token cannot name its own key: only configured keys verify it",
            });
        }
        Ok(Self { alg, kid: text("kid", kid)?, typ: text("typ", typ)? })
    }

    /// The `alg`: which algorithm the token claims; a key verifies only its own.
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// The `typ`, if any.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// A compact JWS read under the header policy, with its claims as `C` (by default the
/// whole JSON object). Nothing in it is trusted until [`Validation::verify_signature`]
/// passed for it; only the `iss` may be read before, to choose whose keys to use.
#[derive(Clone)]
pub struct Jws<C = Map<String, Value>> {
    header: JwtHeader,
    claims: C,
    signing_input: String,
    signature: Vec<u8>,
}

impl<C> fmt::Debug for Jws<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims may name people: only the header is shown.
        f.debug_struct("Jws").field("header", &self.header).finish_non_exhaustive()
    }
}

impl Jws {
    /// Reads `token` (at most `max_bytes`): three base64url parts without padding, the
    /// header and the claims JSON objects, the header policy.
    ///
    /// # Errors
    /// [`JwtError::TooLarge`], [`JwtError::Malformed`] or [`JwtError::UnsupportedHeader`].
    pub fn parse(token: &str, max_bytes: usize) -> Result<Self, JwtError> {
        Self::parse_with(token, max_bytes, |bytes| compact::json_object(bytes, "claims"))
    }
}

impl<C> Jws<C> {
    /// As [`Jws::parse`], the claims read by `read_claims`.
    pub(crate) fn parse_with(
        token: &str,
        max_bytes: usize,
        read_claims: impl FnOnce(&[u8]) -> Result<C, JwtError>,
    ) -> Result<Self, JwtError> {
        if token.len() > max_bytes {
            return Err(JwtError::TooLarge { size: token.len(), max: max_bytes });
        }
        // Only the header members checked are kept; the rest is parsed and dropped.
        let parts = compact::split_picking(token, &HEADER_MEMBERS)?;
        let header = JwtHeader::from_members(parts.header)?;
        let claims = read_claims(&parts.claims_bytes)?;
        Ok(Self { header, claims, signing_input: parts.signing_input.to_owned(), signature: parts.signature })
    }

    /// The header.
    pub fn header(&self) -> &JwtHeader {
        &self.header
    }

    /// The claims: trust them only once [`Validation::verify_signature`] passed.
    pub fn claims(&self) -> &C {
        &self.claims
    }

    /// Takes the claims.
    pub fn into_claims(self) -> C {
        self.claims
    }
}

/// Where the keys that may have signed a token come from: fixed keys ([`StaticKeys`]) or
/// a cache of an issuer's JWKS.
#[async_trait]
pub trait KeyResolver: fmt::Debug + Send + Sync {
    /// The keys that may have signed a token with this header, chosen by its `kid` as
    /// [`select_by_kid`] does. Their algorithms need not match the header's `alg`: the
    /// engine keeps only the keys of that algorithm.
    ///
    /// # Errors
    /// [`JwtError::UnknownKey`] when no key has the `kid`, [`JwtError::KeysUnavailable`]
    /// when the keys cannot be had.
    async fn resolve(&self, header: &JwtHeader) -> Result<Vec<VerifyingKey>, JwtError>;
}

/// A fixed list of keys, chosen by `kid` with [`select_by_kid`].
#[derive(Debug, Clone)]
pub struct StaticKeys {
    keys: Vec<VerifyingKey>,
}

impl StaticKeys {
    /// These keys.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self { keys: keys.into_iter().collect() }
    }

    /// The keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }
}

#[async_trait]
impl KeyResolver for StaticKeys {
    async fn resolve(&self, header: &JwtHeader) -> Result<Vec<VerifyingKey>, JwtError> {
        let found: Vec<VerifyingKey> = select_by_kid(&self.keys, header.kid()).into_iter().cloned().collect();
        if found.is_empty() {
            return Err(JwtError::UnknownKey { kid: header.kid.clone(), detail: "its keys are configured, not fetched" });
        }
        Ok(found)
    }
}

/// An `aud` claim: one string, or an array of them (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// `"aud": "api"`.
    One(String),
    /// `"aud": ["api", "other"]`.
    Many(Vec<String>),
}

impl Audience {
    /// The audiences named.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let items: &[String] = match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        items.iter().map(String::as_str)
    }

    /// Whether any audience named is exactly one of `accepted`.
    pub fn names_any(&self, accepted: &[String]) -> bool {
        self.iter().any(|aud| accepted.iter().any(|a| a == aud))
    }

    fn from_value(value: &Value) -> Result<Self, JwtError> {
        match value {
            Value::String(one) => Ok(Self::One(one.clone())),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(aud) => Ok(aud.clone()),
                    _ => Err(JwtError::InvalidClaim { claim: "aud", reason: "array members must be strings".into() }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Many),
            other => Err(JwtError::InvalidClaim {
                claim: "aud",
                reason: format!("must be a string or an array of strings, found {}", json_type_name(other)),
            }),
        }
    }

    /// The audiences quoted, as in messages: `"api"` or `["api", "other"]`.
    fn quoted(&self) -> String {
        match self {
            Self::One(one) => format!("{one:?}"),
            Self::Many(many) => format!("[{}]", quoted_list(many)),
        }
    }
}

/// Reads a NumericDate claim (RFC 7519 §2): a non-negative JSON number of seconds since
/// 1970, fractions floored.
///
/// # Errors
/// [`JwtError::InvalidClaim`] naming `claim` for a string, a negative or an absurd number.
pub fn numeric_date(claim: &'static str, value: &Value) -> Result<u64, JwtError> {
    match value {
        Value::Number(n) => {
            if let Some(secs) = n.as_u64() {
                return Ok(secs);
            }
            match n.as_f64() {
                // Truncation is the intent: NumericDate fractions are floored.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(f) if (0.0..1e15).contains(&f) => Ok(f.floor() as u64),
                _ => Err(JwtError::InvalidClaim { claim, reason: "must be a non-negative number of seconds since 1970".into() }),
            }
        }
        other => {
            Err(JwtError::InvalidClaim { claim, reason: format!("must be a number (seconds since 1970), found {}", json_type_name(other)) })
        }
    }
}

/// The registered claims of RFC 7519 §4.1, typed: `iss`, `sub`, `aud`, `exp`, `nbf`,
/// `iat`, `jti`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`.
    pub aud: Option<Audience>,
    /// `exp`, in seconds since 1970.
    pub exp: Option<u64>,
    /// `nbf`, in seconds since 1970.
    pub nbf: Option<u64>,
    /// `iat`, in seconds since 1970.
    pub iat: Option<u64>,
    /// `jti`.
    pub jti: Option<String>,
}

impl RegisteredClaims {
    /// The registered claims of a claims object; other claims are left alone.
    ///
    /// # Errors
    /// [`JwtError::InvalidClaim`] for a registered claim of the wrong type: `iss`, `sub`
    /// and `jti` strings, `aud` a string or an array of strings, times numbers.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, JwtError> {
        Self::read(|name| claims.get(name))
    }

    /// The registered claims, each looked up with `get`.
    pub(crate) fn read<'a>(get: impl Fn(&str) -> Option<&'a Value>) -> Result<Self, JwtError> {
        let text = |claim: &'static str| match get(claim) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(other) => Err(JwtError::InvalidClaim { claim, reason: format!("must be a string, found {}", json_type_name(other)) }),
        };
        let time = |claim: &'static str| get(claim).map(|value| numeric_date(claim, value)).transpose();
        Ok(Self {
            exp: time("exp")?,
            iat: time("iat")?,
            nbf: time("nbf")?,
            aud: get("aud").map(Audience::from_value).transpose()?,
            iss: text("iss")?,
            sub: text("sub")?,
            jti: text("jti")?,
        })
    }
}

/// When a validated token became valid and expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidTimes {
    expires_at: SystemTime,
    issued_at: Option<SystemTime>,
    not_before: Option<SystemTime>,
}

impl ValidTimes {
    /// `exp`.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// `iat`, if the token has one.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.issued_at
    }

    /// `nbf`, if the token has one.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }
}

/// `secs` since 1970 as a time, or why not.
fn time_of(claim: &'static str, secs: u64) -> Result<SystemTime, JwtError> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(|| JwtError::InvalidClaim { claim, reason: "lies beyond the clock's range".into() })
}

/// What a token must satisfy: built once per verifier (or per issuer), used for every token.
///
/// Defaults: any issuer, no audience yet (give one: [`Validation::checked`] insists), a
/// leeway of [`DEFAULT_LEEWAY`], lifetimes up to [`DEFAULT_MAX_LIFETIME`], any `typ`, the
/// algorithms of the keys, `exp` required (always), `iat` optional.
#[derive(Debug, Clone)]
#[must_use]
pub struct Validation {
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    max_lifetime: Duration,
    typ: Option<String>,
    typ_required: bool,
    algorithms: Option<Vec<SigningAlgorithm>>,
    iat_required: bool,
}

impl Default for Validation {
    fn default() -> Self {
        Self::new()
    }
}

impl Validation {
    /// A validation with the defaults.
    pub fn new() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            typ: None,
            typ_required: false,
            algorithms: None,
            iat_required: false,
        }
    }

    /// Accepts `iss` equal to `issuer` (call again for more); with none, any `iss` or none.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` (a string or an array) names `audience` exactly (call
    /// again for more: any one suffices).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The clock skew tolerated for `exp`, `nbf` and `iat` (at most [`MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest lifetime accepted: `exp - iat`, or, without `iat`, what is left of it.
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Requires the `typ` header to be `typ` ([`same_type`]).
    pub fn require_type(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self.typ_required = true;
        self
    }

    /// Requires the `typ` header, when present, to be `typ` ([`same_type`]).
    pub fn type_if_present(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self.typ_required = false;
        self
    }

    /// Accepts only these algorithms (and of those, only a key's own).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = SigningAlgorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Requires `iat`.
    pub fn require_iat(mut self) -> Self {
        self.iat_required = true;
        self
    }

    /// Checks the settings: at least one audience, none blank, no blank issuer, a leeway
    /// of at most [`MAX_LEEWAY`], a maximum lifetime of at least 1 s, and a non-empty
    /// list of algorithms if one is given.
    ///
    /// # Errors
    /// [`JwtError::InvalidSetting`] naming the setting.
    pub fn checked(self) -> Result<Self, JwtError> {
        let invalid = |setting: &'static str, reason: &str| Err(JwtError::InvalidSetting { setting, reason: reason.into() });
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return invalid("audience", "must not be empty");
        }
        if self.issuers.iter().any(|i| i.trim().is_empty()) {
            return invalid("issuer", "must not be empty");
        }
        if self.leeway > MAX_LEEWAY {
            return invalid("leeway", "at most 300 s");
        }
        if self.max_lifetime < Duration::from_secs(1) {
            return invalid("max_lifetime", "at least 1 s");
        }
        if self.algorithms.as_ref().is_some_and(Vec::is_empty) {
            return invalid("algorithms", "name at least one");
        }
        Ok(self)
    }

    /// The `typ` and the allowed algorithms.
    fn check_header(&self, header: &JwtHeader) -> Result<(), JwtError> {
        if let Some(expected) = &self.typ {
            match header.typ() {
                Some(found) if same_type(found, expected) => {}
                None if !self.typ_required => {}
                found => return Err(JwtError::WrongType { found: found.map(str::to_owned), expected: expected.clone() }),
            }
        }
        if let Some(allowed) = &self.algorithms
            && !allowed.iter().any(|a| a.as_str() == header.alg())
        {
            return Err(JwtError::AlgorithmNotAllowed { found: header.alg.clone(), allowed: allowed.clone() });
        }
        Ok(())
    }

    /// Checks `jws`'s header (`typ`, algorithms) and signature: the candidate keys come
    /// from `keys`, and only those whose algorithm is the header's `alg` are tried (all of
    /// them, in order: during a rotation without `kid`s either key may have signed).
    /// The key that verified it.
    ///
    /// # Errors
    /// [`JwtError::WrongType`], [`JwtError::AlgorithmNotAllowed`], the resolver's
    /// [`JwtError::UnknownKey`] or [`JwtError::KeysUnavailable`], or
    /// [`JwtError::SignatureInvalid`].
    pub async fn verify_signature<C: Sync>(&self, jws: &Jws<C>, keys: &(dyn KeyResolver + '_)) -> Result<VerifyingKey, JwtError> {
        let header = jws.header();
        self.check_header(header)?;
        let candidates = keys.resolve(header).await?;
        if candidates.is_empty() {
            return Err(JwtError::UnknownKey { kid: header.kid.clone(), detail: "no key was found for it" });
        }
        let mut same_alg = candidates.iter().filter(|k| k.algorithm().as_str() == header.alg()).peekable();
        if same_alg.peek().is_none() {
            let mut allowed: Vec<SigningAlgorithm> = candidates.iter().map(VerifyingKey::algorithm).collect();
            allowed.dedup();
            return Err(JwtError::AlgorithmNotAllowed { found: header.alg.clone(), allowed });
        }
        same_alg
            .find(|key| key.verify_bytes(jws.signing_input.as_bytes(), &jws.signature))
            .cloned()
            .ok_or_else(|| JwtError::SignatureInvalid { kid: header.kid.clone() })
    }

    /// Checks the registered claims at `now`, in order: `exp` present (and `iat` when
    /// required), not expired, `nbf` and `iat` not ahead, `exp` after `iat`, the lifetime,
    /// the audience, the issuer (each judged with the leeway).
    ///
    /// # Errors
    /// [`JwtError::MissingClaim`], [`JwtError::Expired`], [`JwtError::NotYetValid`],
    /// [`JwtError::InvalidClaim`], [`JwtError::LifetimeTooLong`],
    /// [`JwtError::WrongAudience`] or [`JwtError::WrongIssuer`].
    pub fn validate_claims(&self, claims: &RegisteredClaims, now: SystemTime) -> Result<ValidTimes, JwtError> {
        let now = unix_seconds(now);
        let leeway = self.leeway.as_secs();
        let exp = claims.exp.ok_or(JwtError::MissingClaim { claim: "exp" })?;
        if self.iat_required && claims.iat.is_none() {
            return Err(JwtError::MissingClaim { claim: "iat" });
        }
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::Expired { ago_secs: now.saturating_sub(exp), leeway_secs: leeway });
        }
        for (claim, at) in [("nbf", claims.nbf), ("iat", claims.iat)] {
            if let Some(at) = at
                && at > now.saturating_add(leeway)
            {
                return Err(JwtError::NotYetValid { claim, ahead_secs: at - now, leeway_secs: leeway });
            }
        }
        let lifetime = match claims.iat {
            Some(iat) if exp <= iat => return Err(JwtError::InvalidClaim { claim: "exp", reason: "must be later than iat".into() }),
            Some(iat) => exp - iat,
            // Without iat, bound what is left.
            None => exp.saturating_sub(now),
        };
        let max = self.max_lifetime.as_secs();
        if lifetime > max {
            return Err(JwtError::LifetimeTooLong { lifetime_secs: lifetime, max_secs: max });
        }
        // exp is bounded by now + the lifetime above; checked all the same, as it comes
        // from the token.
        let times = ValidTimes {
            expires_at: time_of("exp", exp)?,
            issued_at: claims.iat.map(|iat| time_of("iat", iat)).transpose()?,
            not_before: claims.nbf.map(|nbf| time_of("nbf", nbf)).transpose()?,
        };
        match &claims.aud {
            Some(aud) if aud.names_any(&self.audiences) => {}
            found => {
                let found = found.as_ref().map_or_else(|| "no aud claim".to_owned(), Audience::quoted);
                return Err(JwtError::WrongAudience { expected: self.audiences.clone(), found });
            }
        }
        if !self.issuers.is_empty() && !claims.iss.as_ref().is_some_and(|iss| self.issuers.contains(iss)) {
            let found = claims.iss.as_ref().map_or_else(|| "no iss claim".to_owned(), |iss| format!("{iss:?}"));
            return Err(JwtError::WrongIssuer { expected: self.issuers.clone(), found });
        }
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_compare_without_case_and_media_prefix() {
        assert!(same_type("application/AT+JWT", "at+jwt"));
        assert!(same_type(" JWT ", "jwt"));
        assert!(!same_type("at+jwt", "jwt"));
        assert!(!same_type("application/", "jwt"));
        // A multi-byte character where the prefix would end: no panic.
        assert!(!same_type("applicatio\u{e9}n", "jwt"));
    }

    #[test]
    fn audiences_are_one_string_or_an_array_of_strings() {
        let read = |aud: Value| RegisteredClaims::from_claims(&Map::from_iter([("aud".to_owned(), aud)]));
        assert_eq!(read(Value::from("api")).unwrap().aud, Some(Audience::One("api".into())));
        let many = read(serde_json::json!(["a", "api"])).unwrap().aud.unwrap();
        assert!(many.names_any(&["api".to_owned()]) && !many.names_any(&["ap".to_owned()]));
        assert!(matches!(read(serde_json::json!(["api", 5])), Err(JwtError::InvalidClaim { claim: "aud", .. })));
        assert!(matches!(read(serde_json::json!(5)), Err(JwtError::InvalidClaim { claim: "aud", .. })));
    }

    #[test]
    fn settings_are_checked() {
        let ok = || Validation::new().audience("api");
        assert!(ok().checked().is_ok());
        let setting = |v: Validation| match v.checked() {
            Err(JwtError::InvalidSetting { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(setting(Validation::new()), "audience");
        assert_eq!(setting(ok().audience(" ")), "audience");
        assert_eq!(setting(ok().leeway(MAX_LEEWAY + Duration::from_secs(1))), "leeway");
        assert_eq!(setting(ok().max_lifetime(Duration::ZERO)), "max_lifetime");
        assert_eq!(setting(ok().algorithms([])), "algorithms");
    }
}
