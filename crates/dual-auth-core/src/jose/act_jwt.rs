//! The out-of-session act JWT: the application signs the human identity for a remote
//! agent; the agent verifies it before asking for a token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::compact;
use super::keys::{SigningAlgorithm, SigningKey, VerifyingKey};
use super::validation::{DEFAULT_LEEWAY, Jws, JwtError, KeyResolver, RegisteredClaims, StaticKeys, Validation};
use crate::act::{Act, ParsedAct, json_type_name};
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::error::{ActError, ActJwtError, ReplayError};
use crate::replay::{InMemoryReplayGuard, ReplayGuard};

/// The `iss` and `sub` the upstream package writes, and so the issuer checked by default.
pub const DEFAULT_ACT_JWT_ISSUER: &str = "application";
/// The TTL the guide uses.
pub const DEFAULT_ACT_JWT_TTL: Duration = Duration::from_secs(60);
/// The shortest TTL the signer accepts by default.
pub const MIN_ACT_JWT_TTL: Duration = Duration::from_secs(10);
/// The longest TTL the signer accepts, and the longest lifetime the verifier accepts, by default.
pub const MAX_ACT_JWT_TTL: Duration = Duration::from_secs(300);
/// The largest act JWT accepted by default, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// The longest lifetime a verifier may be configured to accept.
const MAX_LIFETIME_SETTING: Duration = Duration::from_secs(3600);
/// The claims a verifier reads; the others are parsed and dropped.
const CLAIM_MEMBERS: [&str; 8] = ["exp", "iat", "nbf", "aud", "iss", "jti", "azp", "act"];

/// The claims of [`CLAIM_MEMBERS`] a token has.
#[derive(Default)]
struct Claims {
    exp: Option<Value>,
    iat: Option<Value>,
    nbf: Option<Value>,
    aud: Option<Value>,
    iss: Option<Value>,
    jti: Option<Value>,
    azp: Option<Value>,
    act: Option<ActClaim>,
}

/// The `act` claim, read straight into its members, or as a JSON value.
enum ActClaim {
    Parsed(ParsedAct),
    Value(Value),
}

impl ActClaim {
    fn into_act(self) -> Result<Act, ActError> {
        match self {
            ActClaim::Parsed(parsed) => parsed.into_act(),
            ActClaim::Value(value) => Act::from_value(value),
        }
    }
}

impl Claims {
    /// The claims of the JSON object `bytes`: only those checked are kept (the others are
    /// parsed and dropped), without a JSON object built. As in a JSON object, a claim given
    /// twice counts with its last value; refusals are worded as for the whole object.
    fn parse(bytes: &[u8]) -> Result<Self, JwtError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        match Claims::deserialize(&mut deserializer).and_then(|claims| deserializer.end().map(|()| claims)) {
            Ok(claims) => Ok(claims),
            Err(_) => {
                let mut object = compact::json_object(bytes, "claims")?;
                let mut take = |name: &str| object.remove(name);
                Ok(Self {
                    exp: take("exp"),
                    iat: take("iat"),
                    nbf: take("nbf"),
                    aud: take("aud"),
                    iss: take("iss"),
                    jti: take("jti"),
                    azp: take("azp"),
                    act: take("act").map(ActClaim::Value),
                })
            }
        }
    }

    /// The registered claims among them (`sub` is not read: upstream keeps it equal to `iss`).
    fn registered(&self) -> Result<RegisteredClaims, JwtError> {
        RegisteredClaims::read(|name| match name {
            "exp" => self.exp.as_ref(),
            "iat" => self.iat.as_ref(),
            "nbf" => self.nbf.as_ref(),
            "aud" => self.aud.as_ref(),
            "iss" => self.iss.as_ref(),
            "jti" => self.jti.as_ref(),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let mut claims = Claims::default();
        while let Some(index) = map.next_key_seed(compact::MemberIndex(&CLAIM_MEMBERS))? {
            let slot = match index {
                Some(0) => &mut claims.exp,
                Some(1) => &mut claims.iat,
                Some(2) => &mut claims.nbf,
                Some(3) => &mut claims.aud,
                Some(4) => &mut claims.iss,
                Some(5) => &mut claims.jti,
                Some(6) => &mut claims.azp,
                Some(7) => {
                    claims.act = Some(ActClaim::Parsed(map.next_value()?));
                    continue;
                }
                // Parsed in full, as in a JSON object, and dropped.
                Some(_) | None => {
                    map.next_value::<Value>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(claims)
    }
}

/// Random bytes in a `jti`, as upstream (`secrets.token_urlsafe(32)`).
const JTI_BYTES: usize = 32;

/// A fresh `jti`: 32 random bytes, base64url without padding (43 characters).
///
/// # Errors
/// [`crate::KeyError::Signing`] if the operating system's random source fails.
pub fn new_jti() -> Result<String, crate::KeyError> {
    let mut bytes = [0u8; JTI_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::KeyError::Signing { algorithm: "jti".into(), reason: format!("random source failed: {e}") })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[derive(Serialize)]
struct ActJwtClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: &'a str,
    act: &'a Act,
}

/// Signs act JWTs, wire-compatible with the Python package's
/// `HybridSender.prepare_out_of_session_act`.
///
/// Claims, in order: `iss` and `sub` (`"application"` unless set), `aud` (the agent
/// endpoint), `exp` = `iat` + TTL, `iat` (whole seconds), `jti` (32 random bytes, base64url),
/// `act`. The header carries `kid` when the key has one.
///
/// ```
/// use std::time::Duration;
/// use dual_auth_core::{generate_key_pair, Act, ActJwtSigner, ActJwtVerifier, SigningAlgorithm, SigningKey};
/// use secrecy::ExposeSecret;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pair = generate_key_pair(SigningAlgorithm::Es256, 0)?;
/// let key = SigningKey::from_pem(pair.private_key_pem.expose_secret())?;
/// let signer = ActJwtSigner::new(key.clone());
/// let act = Act::new("user_12345")?.with_email("alice@corp.example.com");
/// let jwt = signer.sign(&act, "https://agent.example.com/invoke", Duration::from_secs(60))?;
///
/// let verifier = ActJwtVerifier::builder(key.verifying_key(), "https://agent.example.com/invoke").build()?;
/// let verified = verifier.verify(jwt.expose_secret()).await?;
/// assert_eq!(verified.act(), &act);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct ActJwtSigner {
    key: SigningKey,
    issuer: String,
    subject: String,
    min_ttl: Duration,
    max_ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl ActJwtSigner {
    /// A signer with the upstream `iss`/`sub` and the default TTL bounds (10 to 300 s).
    pub fn new(key: SigningKey) -> Self {
        Self {
            key,
            issuer: DEFAULT_ACT_JWT_ISSUER.into(),
            subject: DEFAULT_ACT_JWT_ISSUER.into(),
            min_ttl: MIN_ACT_JWT_TTL,
            max_ttl: MAX_ACT_JWT_TTL,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets `iss` (and `sub`, which upstream keeps equal to it).
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self.subject.clone_from(&self.issuer);
        self
    }

    /// Sets the TTL bounds.
    ///
    /// # Errors
    /// [`ActJwtError::InvalidSetting`] unless `1 s <= min <= max <= 3600 s`.
    pub fn with_ttl_bounds(mut self, min: Duration, max: Duration) -> Result<Self, ActJwtError> {
        if min < Duration::from_secs(1) || min > max || max > Duration::from_secs(3600) {
            return Err(ActJwtError::InvalidSetting { setting: "ttl bounds", reason: "need 1 s <= min <= max <= 3600 s".into() });
        }
        self.min_ttl = min;
        self.max_ttl = max;
        Ok(self)
    }

    /// Uses another clock (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs `act` for the agent at `agent_endpoint` (an `https://` URL, used verbatim as
    /// `aud`), valid for `ttl`.
    ///
    /// # Errors
    /// [`ActJwtError::InvalidAgentEndpoint`], [`ActJwtError::InvalidTtl`] or a signing failure.
    pub fn sign(&self, act: &Act, agent_endpoint: &str, ttl: Duration) -> Result<SecretString, ActJwtError> {
        check_agent_endpoint(agent_endpoint)?;
        let ttl_secs = ttl.as_secs();
        if ttl < self.min_ttl || ttl > self.max_ttl || ttl.subsec_nanos() != 0 {
            return Err(ActJwtError::InvalidTtl { ttl_secs, min_secs: self.min_ttl.as_secs(), max_secs: self.max_ttl.as_secs() });
        }
        let iat = unix_seconds(self.clock.now());
        let jti = new_jti()?;
        let claims = ActJwtClaims {
            iss: &self.issuer,
            sub: &self.subject,
            aud: agent_endpoint,
            exp: iat.saturating_add(ttl_secs),
            iat,
            jti: &jti,
            act,
        };
        let token = self.key.sign_jwt(&claims)?;
        tracing::info!(event = "act_prepared_out_of_session", human_id = %act.log_id(), ttl_seconds = ttl_secs, jti = %jti, "act JWT signed");
        Ok(SecretString::from(token))
    }
}

impl fmt::Debug for ActJwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActJwtSigner")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("min_ttl", &self.min_ttl)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

/// Checks that an agent endpoint is an absolute `https://` URL with a host.
///
/// # Errors
/// [`ActJwtError::InvalidAgentEndpoint`] saying what is wrong.
pub fn check_agent_endpoint(endpoint: &str) -> Result<(), ActJwtError> {
    crate::http::HttpsUrl::parse(endpoint).map(|_| ()).map_err(|e| ActJwtError::InvalidAgentEndpoint { reason: e.to_string() })
}

/// An act JWT that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedActJwt {
    act: Act,
    jti: String,
    issuer: Option<String>,
    issued_at: SystemTime,
    expires_at: SystemTime,
    algorithm: SigningAlgorithm,
    key_id: Option<String>,
    authorized_party: Option<String>,
}

impl VerifiedActJwt {
    /// The `azp` claim, if present: the agent an Entra ID act assertion was made for, which
    /// an API compares with the agent the Microsoft token names.
    pub fn authorized_party(&self) -> Option<&str> {
        self.authorized_party.as_deref()
    }
    /// The human identity.
    pub fn act(&self) -> &Act {
        &self.act
    }
    /// Takes the human identity.
    pub fn into_act(self) -> Act {
        self.act
    }
    /// The token id, now recorded by the replay guard.
    pub fn jti(&self) -> &str {
        &self.jti
    }
    /// The `iss` claim, if present.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
    /// When it was issued.
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }
    /// When it expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
    /// The algorithm of the key that verified it.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }
    /// The `kid` of the key that verified it, if that key has one.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }
}

/// Verifies act JWTs. Built with [`ActJwtVerifier::builder`].
///
/// The checks are the engine's ([`crate::jwt`]), in order: size; three base64url parts
/// with JSON objects; the header (no `crit`, no header naming key material other than an
/// `x5t` thumbprint; `typ` if present must be `JWT`); the keys the `kid` selects (a token
/// without `kid` is tried against every configured key), of which only those whose
/// algorithm is the header's `alg`; the signature; `exp` and `iat` required, `nbf`
/// optional, all numbers, judged with the leeway; `exp - iat` within the maximum lifetime;
/// `aud` a string equal to the expected audience; `iss` equal to the expected issuer
/// unless that check is turned off. Then its own: `jti` present; `act` an object with a
/// non-empty `sub`. Only then is the `jti` recorded with the replay guard, so a refused
/// token never uses up its `jti`.
#[derive(Clone)]
pub struct ActJwtVerifier {
    keys: Arc<dyn KeyResolver>,
    validation: Validation,
    audience: String,
    leeway: Duration,
    max_token_bytes: usize,
    replay_guard: Arc<dyn ReplayGuard>,
    clock: Arc<dyn Clock>,
    /// Whether the tokens are Entra ID act assertions (`typ` [`crate::ACT_ASSERTION_TYPE`]
    /// required) rather than act JWTs (`typ` `JWT` or none).
    act_assertions: bool,
}

impl fmt::Debug for ActJwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActJwtVerifier")
            .field("keys", &self.keys)
            .field("validation", &self.validation)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("replay_guard", &self.replay_guard)
            .field("act_assertions", &self.act_assertions)
            .finish_non_exhaustive()
    }
}

/// Where a builder's keys come from.
#[derive(Debug, Clone)]
enum KeysSetting {
    Static(Vec<VerifyingKey>),
    /// A resolver, and whether [`ActJwtVerifierBuilder::add_key`] was called on it anyway.
    Resolver(Arc<dyn KeyResolver>, bool),
}

/// Configures an [`ActJwtVerifier`].
#[derive(Clone)]
#[must_use]
pub struct ActJwtVerifierBuilder {
    keys: KeysSetting,
    audience: String,
    issuer: Option<String>,
    leeway: Duration,
    max_lifetime: Duration,
    max_token_bytes: usize,
    replay_guard: Arc<dyn ReplayGuard>,
    clock: Arc<dyn Clock>,
    act_assertions: bool,
}

impl fmt::Debug for ActJwtVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActJwtVerifierBuilder")
            .field("keys", &self.keys)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("replay_guard", &self.replay_guard)
            .field("act_assertions", &self.act_assertions)
            .finish_non_exhaustive()
    }
}

impl ActJwtVerifier {
    /// A verifier for tokens addressed to `audience` (the agent endpoint URL), signed by `key`.
    ///
    /// Defaults: issuer `"application"`, leeway 5 s, maximum lifetime 300 s, at most 8 KiB,
    /// a fresh in-memory replay guard (one per verifier, like upstream; share one, or a
    /// Redis guard across replicas, with [`ActJwtVerifierBuilder::replay_guard`]).
    pub fn builder(key: VerifyingKey, audience: impl Into<String>) -> ActJwtVerifierBuilder {
        Self::builder_with_keys([key], audience)
    }

    /// As [`ActJwtVerifier::builder`], with several keys (a rotation): a token's `kid`
    /// picks among them, and a token without `kid` is tried against every key of its
    /// algorithm.
    pub fn builder_with_keys(keys: impl IntoIterator<Item = VerifyingKey>, audience: impl Into<String>) -> ActJwtVerifierBuilder {
        Self::builder_from(KeysSetting::Static(keys.into_iter().collect()), audience.into())
    }

    /// As [`ActJwtVerifier::builder`], with the keys from `keys`, such as a cache of the
    /// application's JWKS.
    pub fn builder_with_resolver(keys: Arc<dyn KeyResolver>, audience: impl Into<String>) -> ActJwtVerifierBuilder {
        Self::builder_from(KeysSetting::Resolver(keys, false), audience.into())
    }

    fn builder_from(keys: KeysSetting, audience: String) -> ActJwtVerifierBuilder {
        ActJwtVerifierBuilder {
            keys,
            audience,
            issuer: Some(DEFAULT_ACT_JWT_ISSUER.into()),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: MAX_ACT_JWT_TTL,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            replay_guard: Arc::new(InMemoryReplayGuard::default()),
            clock: Arc::new(SystemClock),
            act_assertions: false,
        }
    }

    /// The audience this verifier expects.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies `token` and records its `jti`.
    ///
    /// # Errors
    /// An [`ActJwtError`] saying which check failed.
    pub async fn verify(&self, token: &str) -> Result<VerifiedActJwt, ActJwtError> {
        self.verify_and_record(token, None).await
    }

    /// Verifies as [`ActJwtVerifier::verify`] does, and requires `azp` to be
    /// `authorized_party`: an Entra ID act assertion must be for the agent whose token it
    /// came with. The `jti` is recorded only when it is, so an assertion shown with another
    /// agent's token is not used up.
    ///
    /// # Errors
    /// [`ActJwtError::WrongAuthorizedParty`], or as [`ActJwtVerifier::verify`].
    pub async fn verify_for_party(&self, token: &str, authorized_party: &str) -> Result<VerifiedActJwt, ActJwtError> {
        self.verify_and_record(token, Some(authorized_party)).await
    }

    async fn verify_and_record(&self, token: &str, authorized_party: Option<&str>) -> Result<VerifiedActJwt, ActJwtError> {
        let verified = self.verify_signature_and_claims(token).await?;
        if let Some(expected) = authorized_party
            && verified.authorized_party.as_deref() != Some(expected)
        {
            return Err(ActJwtError::WrongAuthorizedParty { expected: expected.to_owned(), found: verified.authorized_party });
        }
        // expires_at is bounded by the lifetime check; saturate all the same.
        let record_until = verified.expires_at.checked_add(self.leeway).unwrap_or(verified.expires_at);
        // Bounded per agent: one agent's assertions cannot fill the store for the others.
        match self.replay_guard.check_and_record_for(verified.authorized_party.as_deref(), &verified.jti, record_until).await {
            Ok(()) => {}
            Err(ReplayError::Replayed) => {
                tracing::warn!(event = "act_jwt_replay", jti = %verified.jti, "act JWT replay detected");
                return Err(ActJwtError::Replayed);
            }
            Err(other) => return Err(ActJwtError::ReplayCheckFailed(other)),
        }
        tracing::info!(event = "act_jwt_verified", human_id = %verified.act.log_id(), jti = %verified.jti, "act JWT verified");
        Ok(verified)
    }

    async fn verify_signature_and_claims(&self, token: &str) -> Result<VerifiedActJwt, ActJwtError> {
        // Only the header members and claims checked are kept (the rest is parsed and
        // dropped), so no JSON object is built for either.
        let jws = Jws::parse_with(token, self.max_token_bytes, Claims::parse).map_err(|e| self.refusal(e))?;
        let key = self.validation.verify_signature(&jws, self.keys.as_ref()).await.map_err(|e| self.refusal(e))?;
        let claims = jws.into_claims();
        // The Python package's act JWTs name one audience, as a string.
        if !self.act_assertions
            && let Some(aud) = claims.aud.as_ref().filter(|aud| !aud.is_string())
        {
            return Err(ActJwtError::InvalidAudience {
                expected: self.audience.clone(),
                found: format!("{} (aud must be a single string)", json_type_name(aud)),
            });
        }
        let registered = claims.registered().map_err(|e| self.refusal(e))?;
        let times = self.validation.validate_claims(&registered, self.clock.now()).map_err(|e| self.refusal(e))?;
        let jti = match registered.jti {
            Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
            Some(_) => {
                return Err(ActJwtError::InvalidClaim { claim: "jti", reason: format!("must be 1 to {MAX_JTI_LEN} characters") });
            }
            None => return Err(ActJwtError::MissingClaim { claim: "jti" }),
        };
        let authorized_party = match claims.azp {
            None => None,
            Some(Value::String(azp)) if !azp.is_empty() => Some(azp),
            Some(_) => return Err(ActJwtError::InvalidClaim { claim: "azp", reason: "must be a non-empty string".into() }),
        };
        let act = match claims.act {
            None => return Err(ActJwtError::InvalidAct(ActError::MissingSub)),
            Some(claim) => claim.into_act().map_err(ActJwtError::InvalidAct)?,
        };
        // iat is required by the validation.
        let issued_at = times.issued_at().ok_or(ActJwtError::MissingClaim { claim: "iat" })?;
        Ok(VerifiedActJwt {
            act,
            jti,
            issuer: registered.iss,
            issued_at,
            expires_at: times.expires_at(),
            algorithm: key.algorithm(),
            key_id: key.key_id().map(str::to_owned),
            authorized_party,
        })
    }

    /// The engine's refusal as this verifier words it.
    fn refusal(&self, error: JwtError) -> ActJwtError {
        match error {
            // One purpose per typ: an Entra ID act assertion never passes for an act JWT,
            // nor the other way round, even where one key signs both.
            JwtError::WrongType { .. } => ActJwtError::UnsupportedHeader {
                name: "typ".into(),
                reason: if self.act_assertions {
                    "an act assertion's typ is \"act-assertion+jwt\" (an act JWT is not an act assertion)"
                } else {
                    "an act JWT's typ is \"JWT\" (an Entra ID act assertion is not an act JWT)"
                },
            },
            JwtError::WrongAudience { found, .. } => ActJwtError::InvalidAudience { expected: self.audience.clone(), found },
            other => other.into(),
        }
    }
}

impl From<JwtError> for ActJwtError {
    fn from(error: JwtError) -> Self {
        match error {
            JwtError::Malformed { reason } => Self::Malformed { reason },
            JwtError::TooLarge { size, max } => Self::TooLarge { size, max },
            JwtError::UnsupportedHeader { name, reason } => Self::UnsupportedHeader { name, reason },
            JwtError::WrongType { .. } => Self::UnsupportedHeader { name: "typ".into(), reason: "not the type expected" },
            JwtError::AlgorithmNotAllowed { found, allowed } => {
                Self::AlgorithmNotAllowed { found, allowed: allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ") }
            }
            JwtError::UnknownKey { kid, .. } => Self::UnknownKeyId { kid: kid.unwrap_or_default() },
            JwtError::KeysUnavailable { keys, reason } => Self::KeysUnavailable { keys, reason },
            JwtError::SignatureInvalid { .. } => Self::SignatureInvalid,
            JwtError::MissingClaim { claim } => Self::MissingClaim { claim },
            JwtError::InvalidClaim { claim, reason } => Self::InvalidClaim { claim, reason },
            JwtError::Expired { ago_secs, leeway_secs } => Self::Expired { ago_secs, leeway_secs },
            JwtError::NotYetValid { claim, ahead_secs, leeway_secs } => Self::NotYetValid { claim, ahead_secs, leeway_secs },
            JwtError::LifetimeTooLong { lifetime_secs, max_secs } => Self::LifetimeTooLong { lifetime_secs, max_secs },
            JwtError::WrongAudience { expected, found } => Self::InvalidAudience { expected: expected.join(", "), found },
            JwtError::WrongIssuer { expected, found } => Self::InvalidIssuer { expected: expected.join(", "), found },
            JwtError::InvalidSetting { setting, reason } => Self::InvalidSetting { setting, reason },
        }
    }
}

impl ActJwtVerifierBuilder {
    /// Accepts tokens signed by this key too (key rotation). With `kid`s set, a token's `kid`
    /// picks the key; a token without `kid` may be signed by any configured key. Not for a
    /// verifier whose keys come from a resolver ([`ActJwtVerifier::builder_with_resolver`]).
    pub fn add_key(mut self, key: VerifyingKey) -> Self {
        match &mut self.keys {
            KeysSetting::Static(keys) => keys.push(key),
            KeysSetting::Resolver(_, added) => *added = true,
        }
        self
    }

    /// Requires `iss` to equal `issuer` (default `"application"`, the upstream value).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Accepts any `iss` (or none).
    pub fn any_issuer(mut self) -> Self {
        self.issuer = None;
        self
    }

    /// The clock skew tolerated (default 5 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest `exp - iat` accepted (default 300 s, at most 3600 s).
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// The largest token accepted, in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Records `jti`s in this guard (share one across verifiers, or use a shared store).
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay_guard = guard;
        self
    }

    /// Uses another clock (for tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies Entra ID act assertions instead of act JWTs: `typ` must be
    /// [`crate::ACT_ASSERTION_TYPE`] (act JWTs, `JWT`, are refused), and `aud` may be an
    /// array naming the audience.
    pub fn for_act_assertions(mut self) -> Self {
        self.act_assertions = true;
        self
    }

    /// Checks the settings and builds the verifier.
    ///
    /// # Errors
    /// [`ActJwtError::InvalidSetting`] naming the setting out of range.
    pub fn build(self) -> Result<ActJwtVerifier, ActJwtError> {
        let invalid = |setting: &'static str, reason: &str| Err(ActJwtError::InvalidSetting { setting, reason: reason.into() });
        if self.audience.trim().is_empty() {
            return invalid("audience", "must not be empty: use the agent endpoint URL the application signs for");
        }
        if self.max_lifetime < Duration::from_secs(1) || self.max_lifetime > MAX_LIFETIME_SETTING {
            return invalid("max_lifetime", "between 1 s and 3600 s");
        }
        if self.max_token_bytes < 64 {
            return invalid("max_token_bytes", "at least 64");
        }
        let keys: Arc<dyn KeyResolver> = match self.keys {
            KeysSetting::Static(keys) if keys.is_empty() => return invalid("keys", "give at least one key"),
            KeysSetting::Static(keys) => Arc::new(StaticKeys::new(keys)),
            KeysSetting::Resolver(_, true) => return invalid("keys", "add_key does not apply to keys from a resolver"),
            KeysSetting::Resolver(resolver, false) => resolver,
        };
        let validation =
            Validation::new().audience(self.audience.clone()).leeway(self.leeway).max_lifetime(self.max_lifetime).require_iat();
        let validation =
            if self.act_assertions { validation.require_type(crate::ACT_ASSERTION_TYPE) } else { validation.type_if_present("JWT") };
        let validation = match self.issuer {
            Some(issuer) => validation.issuer(issuer),
            None => validation,
        };
        Ok(ActJwtVerifier {
            keys,
            validation: validation.checked()?,
            audience: self.audience,
            leeway: self.leeway,
            max_token_bytes: self.max_token_bytes,
            replay_guard: self.replay_guard,
            clock: self.clock,
            act_assertions: self.act_assertions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claims other than `act`, and the act or why it is not one.
    type Read = (Vec<Option<Value>>, Option<Result<Act, String>>);

    /// The claims as read before: the whole object, then the act from its JSON value.
    fn through_map(bytes: &[u8]) -> Result<Read, String> {
        let mut object = compact::json_object(bytes, "claims").map_err(|e| e.to_string())?;
        let others = CLAIM_MEMBERS[..7].iter().map(|name| object.remove(*name)).collect();
        let act = object.remove("act").map(|value| Act::from_value(value).map_err(|e| e.to_string()));
        Ok((others, act))
    }

    fn parsed(bytes: &[u8]) -> Result<Read, String> {
        let claims = Claims::parse(bytes).map_err(|e| e.to_string())?;
        let others = vec![claims.exp, claims.iat, claims.nbf, claims.aud, claims.iss, claims.jti, claims.azp];
        Ok((others, claims.act.map(|act| act.into_act().map_err(|e| e.to_string()))))
    }

    #[test]
    fn claims_read_directly_are_those_of_the_whole_object() {
        let texts = [
            r#"{"iss":"a","sub":"a","aud":"x","exp":2,"iat":1,"jti":"j","act":{"sub":"u","email":"e","name":"n"}}"#,
            r#"{"exp":1,"exp":2.5,"act":{"sub":"first"},"act":{"tenant":"t","sub":"u","oid":"o","sub":"last","roles":["r"],"tenant":"t2"}}"#,
            r#"{"act":{"\u0073ub":"escaped","e\u006dail":5}}"#,
            r#"{"act":{"email":"e"}}"#,
            r#"{"act":{"sub":"  "}}"#,
            r#"{"act":{"sub":7}}"#,
            r#"{"act":{"sub":"u","name":null}}"#,
            r#"{"act":"user"}"#,
            r#"{"act":42}"#,
            r#"{"act":-1.5}"#,
            r#"{"act":true}"#,
            r#"{"act":null}"#,
            r#"{"act":[1,{"a":2}]}"#,
            r#"{"act":[1e400]}"#,
            r#"{"act":{"sub":"u","x":1e400}}"#,
            r#"{"other":{"deep":[null]},"azp":"agent","nbf":0}"#,
            r#"{"act":{"sub":"u"}} x"#,
            r#"{"act":{"sub":"u",}}"#,
            r#"[]"#,
            r#""claims""#,
            "",
        ];
        for text in texts {
            assert_eq!(parsed(text.as_bytes()), through_map(text.as_bytes()), "{text}");
        }
        // Extra claims keep their order (and their first place when given twice).
        let (_, act) = parsed(br#"{"act":{"z":1,"sub":"u","a":2,"z":3}}"#).unwrap();
        let act = act.unwrap().unwrap();
        assert_eq!(serde_json::to_string(&act).unwrap(), r#"{"sub":"u","z":3,"a":2}"#);
    }
}
