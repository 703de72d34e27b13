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
/// The clock skew tolerated by default when checking `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// The largest leeway a verifier may be configured with.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The largest act JWT accepted by default, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// Header parameters that would let a token name its own key; we only use configured keys.
const KEY_MATERIAL_HEADERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "x5t"];
/// The header members a verifier reads: `alg`, `typ`, `kid`, `crit`, then
/// [`KEY_MATERIAL_HEADERS`] in their order.
const HEADER_MEMBERS: [&str; 9] = ["alg", "typ", "kid", "crit", "jwk", "jku", "x5u", "x5c", "x5t"];
/// The prefix a `typ` may carry (RFC 7515 §4.1.9).
const MEDIA_TYPE_PREFIX: &str = "application/";
/// The claims a verifier reads; the others are parsed and dropped.
const CLAIM_MEMBERS: [&str; 8] = ["exp", "iat", "nbf", "aud", "iss", "jti", "azp", "act"];

/// The header members of [`HEADER_MEMBERS`] a token has.
struct Header {
    alg: Option<Value>,
    typ: Option<Value>,
    kid: Option<Value>,
    crit: bool,
    /// Whether each of [`KEY_MATERIAL_HEADERS`] is present.
    key_material: [bool; 5],
}

impl Header {
    fn from_members([alg, typ, kid, crit, jwk, jku, x5u, x5c, x5t]: [Option<Value>; 9]) -> Self {
        let key_material = [jwk, jku, x5u, x5c, x5t].map(|member| member.is_some());
        Self { alg, typ, kid, crit: crit.is_some(), key_material }
    }
}

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
    fn parse(bytes: &[u8]) -> Result<Self, ActJwtError> {
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
    let bad = |reason: String| ActJwtError::InvalidAgentEndpoint { reason };
    let url = url::Url::parse(endpoint).map_err(|e| bad(format!("{endpoint:?} is not an absolute URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad(format!("scheme is \"{}\", expected \"https\"", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the URL must not carry credentials".into()));
    }
    Ok(())
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
/// Checks, in order: size; three base64url parts with JSON objects; header (`alg` must be a
/// configured key's algorithm, `typ` if present must be `JWT`, no `crit`, no header naming
/// key material); the signature; `exp` and `iat` required, `nbf` optional, all numbers,
/// judged with the leeway; `exp - iat` within the maximum lifetime; `aud` a string equal to
/// the expected audience; `iss` equal to the expected issuer unless that check is turned
/// off; `jti` present; `act` an object with a non-empty `sub`. Only then is the `jti`
/// recorded with the replay guard, so a refused token never uses up its `jti`.
#[derive(Clone)]
pub struct ActJwtVerifier {
    keys: Vec<VerifyingKey>,
    audience: String,
    issuer: Option<String>,
    leeway: Duration,
    max_lifetime: Duration,
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

/// Configures an [`ActJwtVerifier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ActJwtVerifierBuilder {
    inner: ActJwtVerifier,
}

impl ActJwtVerifier {
    /// A verifier for tokens addressed to `audience` (the agent endpoint URL), signed by `key`.
    ///
    /// Defaults: issuer `"application"`, leeway 5 s, maximum lifetime 300 s, at most 8 KiB,
    /// a fresh in-memory replay guard (one per verifier, like upstream; share one, or a
    /// Redis guard across replicas, with [`ActJwtVerifierBuilder::replay_guard`]).
    pub fn builder(key: VerifyingKey, audience: impl Into<String>) -> ActJwtVerifierBuilder {
        ActJwtVerifierBuilder {
            inner: ActJwtVerifier {
                keys: vec![key],
                audience: audience.into(),
                issuer: Some(DEFAULT_ACT_JWT_ISSUER.into()),
                leeway: DEFAULT_LEEWAY,
                max_lifetime: MAX_ACT_JWT_TTL,
                max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                replay_guard: Arc::new(InMemoryReplayGuard::default()),
                clock: Arc::new(SystemClock),
                act_assertions: false,
            },
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
        let verified = self.verify_signature_and_claims(token)?;
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

    fn verify_signature_and_claims(&self, token: &str) -> Result<VerifiedActJwt, ActJwtError> {
        if token.len() > self.max_token_bytes {
            return Err(ActJwtError::TooLarge { size: token.len(), max: self.max_token_bytes });
        }
        // Only the header members and claims checked below are kept (the rest is parsed and
        // dropped), so no JSON object is built for either.
        let parts = compact::split_picking(token, &HEADER_MEMBERS)?;
        let header = Header::from_members(parts.header);
        // Without a kid (or with one only unnamed keys accept), every key of the algorithm
        // is a candidate: during a rotation the token may be signed by any of them.
        let key = self
            .candidate_keys(&header)?
            .into_iter()
            .find(|key| key.verify_bytes(parts.signing_input.as_bytes(), &parts.signature))
            .ok_or(ActJwtError::SignatureInvalid)?;
        let claims = Claims::parse(&parts.claims_bytes)?;
        self.check_claims(claims, key)
    }

    /// The configured keys that may have signed a token with this header: those of its
    /// `alg`, narrowed by its `kid`.
    fn candidate_keys(&self, header: &Header) -> Result<Vec<&VerifyingKey>, ActJwtError> {
        let alg = match &header.alg {
            Some(Value::String(alg)) => alg.as_str(),
            Some(_) => {
                return Err(ActJwtError::Malformed { reason: "header \"alg\" is not a string".into() });
            }
            None => {
                return Err(ActJwtError::Malformed { reason: "header has no \"alg\"".into() });
            }
        };
        // One purpose per typ: an Entra ID act assertion never passes for an act JWT, nor the
        // other way round, even where one key signs both.
        // Compared ignoring ASCII case, with any "application/" prefix dropped.
        let typ = header.typ.as_ref().and_then(Value::as_str).map(|t| {
            let t = t.trim();
            match t.get(..MEDIA_TYPE_PREFIX.len()) {
                Some(prefix) if prefix.eq_ignore_ascii_case(MEDIA_TYPE_PREFIX) => &t[MEDIA_TYPE_PREFIX.len()..],
                _ => t,
            }
        });
        match (self.act_assertions, typ) {
            (false, None) => {}
            (false, Some(t)) if t.eq_ignore_ascii_case("jwt") => {}
            (false, Some(_)) => {
                return Err(ActJwtError::UnsupportedHeader {
                    name: "typ".into(),
                    reason: "an act JWT's typ is \"JWT\" (an Entra ID act assertion is not an act JWT)",
                });
            }
            (true, Some(t)) if t.eq_ignore_ascii_case(crate::ACT_ASSERTION_TYPE) => {}
            (true, _) => {
                return Err(ActJwtError::UnsupportedHeader {
                    name: "typ".into(),
                    reason: "an act assertion's typ is \"act-assertion+jwt\" (an act JWT is not an act assertion)",
                });
            }
        }
        if header.crit {
            return Err(ActJwtError::UnsupportedHeader { name: "crit".into(), reason: "no critical extensions are understood" });
        }
        if let Some((name, _)) = KEY_MATERIAL_HEADERS.iter().zip(header.key_material).find(|(_, present)| *present) {
            return Err(ActJwtError::UnsupportedHeader { name: (*name).into(), reason: "act JWTs are verified only with configured keys" });
        }
        let candidates: Vec<&VerifyingKey> = match &header.kid {
            None => self.keys.iter().collect(),
            Some(Value::String(kid)) => {
                let named: Vec<&VerifyingKey> = self.keys.iter().filter(|k| k.key_id() == Some(kid.as_str())).collect();
                if named.is_empty() {
                    // A key without a kid accepts any kid; keys with other kids do not.
                    let unnamed: Vec<&VerifyingKey> = self.keys.iter().filter(|k| k.key_id().is_none()).collect();
                    if unnamed.is_empty() {
                        return Err(ActJwtError::UnknownKeyId { kid: kid.clone() });
                    }
                    unnamed
                } else {
                    named
                }
            }
            Some(_) => {
                return Err(ActJwtError::Malformed { reason: "header \"kid\" is not a string".into() });
            }
        };
        let same_alg: Vec<&VerifyingKey> = candidates.iter().copied().filter(|k| k.algorithm().as_str() == alg).collect();
        if same_alg.is_empty() {
            let mut allowed: Vec<&str> = candidates.iter().map(|k| k.algorithm().as_str()).collect();
            allowed.dedup();
            return Err(ActJwtError::AlgorithmNotAllowed { found: alg.to_owned(), allowed: allowed.join(", ") });
        }
        Ok(same_alg)
    }

    fn check_claims(&self, claims: Claims, key: &VerifyingKey) -> Result<VerifiedActJwt, ActJwtError> {
        let now = unix_seconds(self.clock.now());
        let leeway = self.leeway.as_secs();
        let exp = numeric_date(claims.exp.as_ref(), "exp")?.ok_or(ActJwtError::MissingClaim { claim: "exp" })?;
        let iat = numeric_date(claims.iat.as_ref(), "iat")?.ok_or(ActJwtError::MissingClaim { claim: "iat" })?;
        if now >= exp.saturating_add(leeway) {
            return Err(ActJwtError::Expired { ago_secs: now - exp, leeway_secs: leeway });
        }
        if let Some(nbf) = numeric_date(claims.nbf.as_ref(), "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            {
                return Err(ActJwtError::NotYetValid { claim: "nbf", ahead_secs: nbf - now, leeway_secs: leeway });
            }
        }
        if iat > now.saturating_add(leeway) {
            return Err(ActJwtError::NotYetValid { claim: "iat", ahead_secs: iat - now, leeway_secs: leeway });
        }
        if exp <= iat {
            return Err(ActJwtError::InvalidClaim { claim: "exp", reason: "must be later than iat".into() });
        }
        if exp - iat > self.max_lifetime.as_secs() {
            return Err(ActJwtError::LifetimeTooLong { lifetime_secs: exp - iat, max_secs: self.max_lifetime.as_secs() });
        }
        match &claims.aud {
            Some(Value::String(aud)) if *aud == self.audience => {}
            Some(Value::String(aud)) => {
                return Err(ActJwtError::InvalidAudience { expected: self.audience.clone(), found: format!("{aud:?}") });
            }
            Some(other) => {
                return Err(ActJwtError::InvalidAudience {
                    expected: self.audience.clone(),
                    found: format!("{} (aud must be a single string)", json_type_name(other)),
                });
            }
            None => {
                return Err(ActJwtError::InvalidAudience { expected: self.audience.clone(), found: "no aud claim".into() });
            }
        }
        let issuer = match claims.iss {
            None => None,
            Some(Value::String(iss)) => Some(iss),
            Some(other) => {
                return Err(ActJwtError::InvalidClaim {
                    claim: "iss",
                    reason: format!("must be a string, found {}", json_type_name(&other)),
                });
            }
        };
        if let Some(expected) = &self.issuer
            && issuer.as_deref() != Some(expected.as_str())
        {
            {
                let found = issuer.as_deref().map_or_else(|| "no iss claim".to_owned(), |i| format!("{i:?}"));
                return Err(ActJwtError::InvalidIssuer { expected: expected.clone(), found });
            }
        }
        let jti = match claims.jti {
            Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
            Some(Value::String(_)) => {
                return Err(ActJwtError::InvalidClaim { claim: "jti", reason: format!("must be 1 to {MAX_JTI_LEN} characters") });
            }
            Some(other) => {
                return Err(ActJwtError::InvalidClaim {
                    claim: "jti",
                    reason: format!("must be a string, found {}", json_type_name(&other)),
                });
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
        let at = |claim: &'static str, secs: u64| {
            SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(|| ActJwtError::InvalidClaim { claim, reason: "lies beyond the clock's range".into() })
        };
        Ok(VerifiedActJwt {
            act,
            jti,
            issuer,
            issued_at: at("iat", iat)?,
            expires_at: at("exp", exp)?,
            algorithm: key.algorithm(),
            key_id: key.key_id().map(str::to_owned),
            authorized_party,
        })
    }
}

/// Reads a NumericDate claim: a non-negative JSON number of seconds (fractions floored).
fn numeric_date(value: Option<&Value>, claim: &'static str) -> Result<Option<u64>, ActJwtError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs))
            } else {
                match n.as_f64() {
                    // Truncation is the intent: NumericDate fractions are floored.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f.floor() as u64)),
                    _ => Err(ActJwtError::InvalidClaim { claim, reason: "must be a non-negative number of seconds since 1970".into() }),
                }
            }
        }
        Some(other) => Err(ActJwtError::InvalidClaim {
            claim,
            reason: format!("must be a number (seconds since 1970), found {}", json_type_name(other)),
        }),
    }
}

impl ActJwtVerifierBuilder {
    /// Accepts tokens signed by this key too (key rotation). With `kid`s set, a token's `kid`
    /// picks the key; a token without `kid` may be signed by any configured key.
    pub fn add_key(mut self, key: VerifyingKey) -> Self {
        self.inner.keys.push(key);
        self
    }

    /// Requires `iss` to equal `issuer` (default `"application"`, the upstream value).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

    /// Accepts any `iss` (or none).
    pub fn any_issuer(mut self) -> Self {
        self.inner.issuer = None;
        self
    }

    /// The clock skew tolerated (default 5 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.inner.leeway = leeway;
        self
    }

    /// The longest `exp - iat` accepted (default 300 s, at most 3600 s).
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.inner.max_lifetime = max_lifetime;
        self
    }

    /// The largest token accepted, in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.inner.max_token_bytes = max;
        self
    }

    /// Records `jti`s in this guard (share one across verifiers, or use a shared store).
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.inner.replay_guard = guard;
        self
    }

    /// Uses another clock (for tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner.clock = clock;
        self
    }

    /// Verifies Entra ID act assertions instead of act JWTs: `typ` must be
    /// [`crate::ACT_ASSERTION_TYPE`] (act JWTs, `JWT`, are refused).
    pub fn for_act_assertions(mut self) -> Self {
        self.inner.act_assertions = true;
        self
    }

    /// Checks the settings and builds the verifier.
    ///
    /// # Errors
    /// [`ActJwtError::InvalidSetting`] naming the setting out of range.
    pub fn build(self) -> Result<ActJwtVerifier, ActJwtError> {
        let v = &self.inner;
        let invalid = |setting: &'static str, reason: &str| Err(ActJwtError::InvalidSetting { setting, reason: reason.into() });
        if v.audience.trim().is_empty() {
            return invalid("audience", "must not be empty: use the agent endpoint URL the application signs for");
        }
        if v.leeway > MAX_LEEWAY {
            return invalid("leeway", "at most 300 s");
        }
        if v.max_lifetime < Duration::from_secs(1) || v.max_lifetime > Duration::from_secs(3600) {
            return invalid("max_lifetime", "between 1 s and 3600 s");
        }
        if v.max_token_bytes < 64 {
            return invalid("max_token_bytes", "at least 64");
        }
        Ok(self.inner)
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
