//! The verifier: a token (and Entra ID's act assertion) in, a [`DualSubject`] or a
//! precise [`VerifyError`] out.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dual_auth_core::token_endpoint::{HttpSettings, require_https_url};
use dual_auth_core::{
    Act, ActJwtError, ActJwtVerifier, Clock, DEFAULT_REPLAY_CAPACITY, InMemoryReplayGuard, MAX_LEEWAY, ReplayError, ReplayGuard,
    SystemClock, UnverifiedJwt, VerifiedActJwt, VerifyingKey,
};
use serde_json::{Map, Value};

use crate::dpop::{DEFAULT_DPOP_PROOF_WINDOW, MAX_DPOP_PROOF_WINDOW, VerifiedProof};
use crate::error::VerifyError;
use crate::jwks::{IssuerKeys, JwksCachePolicy, KeySource, Lookup};
use crate::policy::{ActAssertionPolicy, AssertionKeys, IssuerPolicy, KeysSetting, Layout};
use crate::subject::{Actor, DualSubject, IdToken, VouchedBy};

/// The largest access token accepted by default (Entra ID tokens with many groups run to
/// several KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The deepest RFC 8693 delegation chain accepted (nested `act` objects).
pub const MAX_CHAIN_DEPTH: usize = 8;
/// Header parameters that would let a token choose its own key: keys come only from the
/// issuer's configured JWKS or keys.
const SELF_KEYED_HEADERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

struct TrustedIssuer {
    policy: IssuerPolicy,
    keys: IssuerKeys,
    assertion: Option<AssertionChecker>,
}

/// Checks Entra ID act assertions for one issuer.
struct AssertionChecker {
    policy: ActAssertionPolicy,
    keys: IssuerKeys,
}

struct Inner {
    issuers: Vec<TrustedIssuer>,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
    dpop: DpopSettings,
}

/// How DPoP proofs are checked: one setting per API, whichever issuer bound the token.
struct DpopSettings {
    public_origin: Option<String>,
    window: Duration,
    replay_guard: Arc<dyn ReplayGuard>,
}

/// How a request presented its token.
enum Presentation<'a> {
    /// `Authorization: Bearer`, or [`Verifier::verify`].
    Bearer,
    /// `Authorization: DPoP` with this proof, for this method and URL.
    Dpop { proof: &'a str, method: &'a str, url: url::Url },
}

/// Verifies dual-subject access tokens. Cheap to clone (one shared cache per issuer).
///
/// Checks, in order: size; three base64url parts with JSON objects; the header (`alg`
/// neither `none` nor HMAC, no `crit`, no key named by the token itself); `iss` picks a
/// trusted issuer; `typ` when required; the key by `kid` from the issuer's JWKS (one
/// refresh on an unknown `kid`); the signature, with the algorithm the key is pinned to;
/// `exp` (required), `nbf`, `iat` with leeway; the lifetime; `aud`; scopes and roles;
/// the agent and the human in the issuer's layout; for Entra ID, the act assertion and
/// its binding to the token's agent, recording its `jti` last.
///
/// With `Authorization: DPoP <token>` ([`Verifier::verify_headers`], RFC 9449), the proof
/// in the `DPoP` header is checked right after the issuer is known, before any key is
/// fetched: its size, its framing, `typ` `dpop+jwt`, an asymmetric `alg` of
/// [`crate::DPOP_ALGORITHMS`], its own `jwk` (a public key; never a `kid` lookup), the
/// signature with that key, `jti`, `htm` (the method), `htu` (the URL without query and
/// fragment: see [`VerifierBuilder::public_origin`]), `iat` within
/// [`VerifierBuilder::dpop_proof_window`] plus the issuer's leeway either side, and `ath`
/// (the token's hash). After the token's signature and times, its `cnf.jkt` must be the
/// proof key's RFC 7638 thumbprint; the proof's `jti` is recorded once, last, through
/// [`VerifierBuilder::dpop_replay_guard`] (refused with 503 when the store cannot
/// answer). A token with `cnf.jkt` sent as `Bearer` is refused (RFC 9449 §7.2), and so is
/// any `Bearer` token of an issuer with [`IssuerPolicy::require_dpop`]. Server-provided
/// nonces (RFC 9449 §8, §9) are not supported: a proof's `nonce` claim is ignored.
///
/// ```no_run
/// use dual_auth_verify::{IssuerPolicy, Verifier};
///
/// # async fn run() -> Result<(), dual_auth_verify::VerifyError> {
/// let verifier = Verifier::builder()
///     .issuer(IssuerPolicy::new("https://idp.example.com/realms/corp", "https://api.example.com/finance"))
///     .build()?;
/// let subject = verifier.verify("eyJ...", None).await?;
/// println!("{} acts for {}", subject.agent.id(), subject.human.sub());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self.inner.issuers.iter().map(|i| i.policy.issuer.as_str()).collect();
        f.debug_struct("Verifier").field("issuers", &issuers).field("max_token_bytes", &self.inner.max_token_bytes).finish_non_exhaustive()
    }
}

/// Configures a [`Verifier`].
#[must_use]
pub struct VerifierBuilder {
    issuers: Vec<IssuerPolicy>,
    http: HttpSettings,
    cache: JwksCachePolicy,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
    public_origin: Option<String>,
    dpop_window: Duration,
    dpop_replay_guard: Option<Arc<dyn ReplayGuard>>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuers", &self.issuers)
            .field("cache", &self.cache)
            .field("public_origin", &self.public_origin)
            .field("dpop_window", &self.dpop_window)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Trusts this issuer (call once per issuer).
    pub fn issuer(mut self, policy: IssuerPolicy) -> Self {
        self.issuers.push(policy);
        self
    }

    /// HTTP settings for fetching keys: timeouts, extra CA roots (HTTPS only, no redirects).
    pub fn http(mut self, http: HttpSettings) -> Self {
        self.http = http;
        self
    }

    /// How keys are cached.
    pub fn cache_policy(mut self, policy: JwksCachePolicy) -> Self {
        self.cache = policy;
        self
    }

    /// The largest token accepted (default 16 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Uses another clock (for tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The API's public origin, such as `https://api.example.com` (https; http only on
    /// loopback; no path): a DPoP proof's `htu` must be this origin and the request's
    /// path. Required to accept DPoP: unset, DPoP requests are refused (a configuration
    /// error), since the request's own `Host` or authority is the client's to choose and
    /// would let a proof for one API pass at another. The path is the one the layer sees,
    /// so apply the layer outside any router that strips a prefix (axum's `nest`).
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }

    /// How far a DPoP proof's `iat` may lie from now, either side, before the issuer's
    /// leeway is added (default [`crate::DEFAULT_DPOP_PROOF_WINDOW`], 60 s; 1 s to 300 s).
    pub fn dpop_proof_window(mut self, window: Duration) -> Self {
        self.dpop_window = window;
        self
    }

    /// Records DPoP proof ids here, each accepted once (default: an in-memory guard on the
    /// verifier's clock; use a shared store such as Redis when the API runs as several
    /// replicas). Entries are bounded per agent in the in-memory guard and kept until the proof's `iat` leaves the
    /// window. It may be the store an act-assertion policy uses: proof ids are recorded as
    /// `dpop:<jkt>:<hash of jti>`.
    pub fn dpop_replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.dpop_replay_guard = Some(guard);
        self
    }

    /// Checks every setting and builds the verifier. Keys are fetched on first use.
    ///
    /// # Errors
    /// [`VerifyError::Configuration`] naming the setting: no issuer, an issuer twice, an
    /// empty audience, a non-https JWKS URL, a leeway over 300 s, an act-assertion layout
    /// without an assertion policy, HTTP settings that do not build, a public origin that is
    /// not an https origin, or a DPoP proof window outside 1 s to 300 s.
    pub fn build(self) -> Result<Verifier, VerifyError> {
        let bad = |setting: &'static str, reason: String| VerifyError::Configuration { setting, reason };
        self.cache.check()?;
        let public_origin = match &self.public_origin {
            Some(origin) => Some(crate::dpop::check_public_origin(origin).map_err(|e| bad("public_origin", e))?),
            None => None,
        };
        if self.dpop_window < Duration::from_secs(1) || self.dpop_window > MAX_DPOP_PROOF_WINDOW {
            return Err(bad("dpop_proof_window", "between 1 s and 300 s".into()));
        }
        let replay_guard = self
            .dpop_replay_guard
            .unwrap_or_else(|| Arc::new(InMemoryReplayGuard::with_clock(DEFAULT_REPLAY_CAPACITY, Arc::clone(&self.clock))));
        let dpop = DpopSettings { public_origin, window: self.dpop_window, replay_guard };
        if self.issuers.is_empty() {
            return Err(bad("issuer", "trust at least one issuer".into()));
        }
        if self.max_token_bytes < 64 {
            return Err(bad("max_token_bytes", "at least 64".into()));
        }
        let http = self.http.build_client().map_err(|e| bad("http", e.to_string()))?;
        let mut issuers: Vec<TrustedIssuer> = Vec::new();
        for policy in self.issuers {
            if issuers.iter().any(|i| i.policy.issuer == policy.issuer) {
                return Err(bad("issuer", format!("{} is configured twice", policy.issuer)));
            }
            check_policy(&policy)?;
            let source = match &policy.keys {
                KeysSetting::Discovery => {
                    require_https_url(&policy.issuer).map_err(|e| bad("issuer", format!("for discovery the issuer {e}")))?;
                    KeySource::Discovery
                }
                KeysSetting::JwksUrl(url) => KeySource::JwksUrl(require_https_url(url).map_err(|e| bad("jwks_url", e))?),
                KeysSetting::Static(keys) if keys.is_empty() => return Err(bad("static_keys", "give at least one key".into())),
                KeysSetting::Static(keys) => KeySource::Static(keys.clone()),
            };
            let keys = IssuerKeys::new(policy.issuer.clone(), source, self.cache, http.clone(), Arc::clone(&self.clock));
            let assertion = match &policy.act_assertion {
                None => None,
                Some(assertion) => {
                    let source = match &assertion.keys {
                        AssertionKeys::Static(keys) => KeySource::Static(keys.clone()),
                        AssertionKeys::JwksUrl(url) => {
                            KeySource::JwksUrl(require_https_url(url).map_err(|e| bad("act assertion jwks_url", e))?)
                        }
                    };
                    let name = assertion.app_id.clone().unwrap_or_else(|| "the application".into());
                    let keys = IssuerKeys::new(name, source, self.cache, http.clone(), Arc::clone(&self.clock));
                    Some(AssertionChecker { policy: assertion.clone(), keys })
                }
            };
            issuers.push(TrustedIssuer { policy, keys, assertion });
        }
        Ok(Verifier { inner: Arc::new(Inner { issuers, max_token_bytes: self.max_token_bytes, clock: self.clock, dpop }) })
    }
}

fn check_policy(policy: &IssuerPolicy) -> Result<(), VerifyError> {
    let bad = |setting: &'static str, reason: &str| Err(VerifyError::Configuration { setting, reason: reason.into() });
    if policy.issuer.trim().is_empty() {
        return bad("issuer", "must not be empty");
    }
    if policy.audiences.iter().any(|a| a.trim().is_empty()) {
        return bad("audience", "must not be empty: use the identifier your identity provider gives this API");
    }
    if policy.leeway > MAX_LEEWAY {
        return bad("leeway", "at most 300 s");
    }
    if policy.max_lifetime < Duration::from_secs(1) || policy.max_lifetime > crate::policy::MAX_LIFETIME_LIMIT {
        return bad("max_lifetime", "between 1 s and 30 days");
    }
    if policy.roles_claim.iter().any(|name| name.is_empty()) {
        return bad("roles_claim", "a claim name, or names joined by dots, such as realm_access.roles");
    }
    match (&policy.act_assertion, policy.layout) {
        (None, Layout::ActAssertion) => return bad("layout", "act-assertion needs an ActAssertionPolicy (IssuerPolicy::act_assertion)"),
        (Some(_), layout) if layout != Layout::ActAssertion => {
            return bad("layout", "an act assertion policy is set: the layout must stay act-assertion");
        }
        _ => {}
    }
    if let Some(assertion) = &policy.act_assertion {
        if assertion.leeway > MAX_LEEWAY {
            return bad("act assertion leeway", "at most 300 s");
        }
        if assertion.audience.trim().is_empty() {
            return bad("act assertion audience", "must not be empty: use the application's API_AUDIENCE");
        }
        if matches!(&assertion.keys, AssertionKeys::Static(keys) if keys.is_empty()) {
            return bad("act assertion keys", "give at least one key");
        }
    }
    Ok(())
}

impl Verifier {
    /// Starts a builder with the defaults: no issuer yet, [`HttpSettings::default`],
    /// [`JwksCachePolicy::default`], 16 KiB tokens, the system clock.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            issuers: Vec::new(),
            http: HttpSettings::default(),
            cache: JwksCachePolicy::default(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            clock: Arc::new(SystemClock),
            public_origin: None,
            dpop_window: DEFAULT_DPOP_PROOF_WINDOW,
            dpop_replay_guard: None,
        }
    }

    /// Verifies `token` as a bearer token, and `act_assertion` (the `X-Act-Assertion`
    /// value) for issuers in the act-assertion layout. An assertion sent with a token of
    /// another layout is ignored. DPoP-bound tokens, and the tokens of issuers that require
    /// DPoP, are refused here: they need the request ([`Verifier::verify_headers`]).
    ///
    /// # Errors
    /// A [`VerifyError`] naming the check that failed.
    pub async fn verify(&self, token: &str, act_assertion: Option<&str>) -> Result<DualSubject, VerifyError> {
        self.verify_presented(token, act_assertion, Presentation::Bearer).await
    }

    async fn verify_presented(
        &self,
        token: &str,
        act_assertion: Option<&str>,
        presented: Presentation<'_>,
    ) -> Result<DualSubject, VerifyError> {
        let result = self.verify_inner(token, act_assertion, presented).await;
        match &result {
            Ok(subject) => {
                tracing::debug!(event = "token_verified", issuer = %subject.issuer, agent = %subject.agent.id(), human_id = %subject.human.log_id(), chain = subject.chain.len());
            }
            Err(e) => tracing::info!(event = "token_refused", reason = %e, "access token refused"),
        }
        result
    }

    /// Verifies a request from its method, URI and headers: one `Authorization` header,
    /// `Bearer <token>` or `DPoP <token>` with one `DPoP` proof header (RFC 9449; the method
    /// and URL are what the proof must name), and, for Entra ID, one `X-Act-Assertion`.
    /// What [`crate::DualAuthLayer`] calls for each request.
    ///
    /// ```no_run
    /// # async fn run(verifier: dual_auth_verify::Verifier, request: http::Request<()>) -> Result<(), dual_auth_verify::VerifyError> {
    /// let subject = verifier.verify_headers(request.method(), request.uri(), request.headers()).await?;
    /// if let Some(jkt) = &subject.dpop_jkt {
    ///     tracing::info!(jkt, "DPoP-bound request");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`VerifyError::MissingToken`], [`VerifyError::InvalidRequest`] for a malformed or
    /// repeated header (or, with DPoP and no [`VerifierBuilder::public_origin`], no usable
    /// `Host`), [`VerifyError::MissingDpopProof`], or as [`Verifier::verify`] and the DPoP
    /// checks.
    pub async fn verify_headers(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<DualSubject, VerifyError> {
        let (scheme, token, assertion) = credentials(headers)?;
        let presented = match scheme {
            Scheme::Bearer => Presentation::Bearer,
            Scheme::Dpop => {
                let proof = crate::dpop::proof_header(headers)?;
                let url = crate::dpop::request_url(self.inner.dpop.public_origin.as_deref(), uri)?;
                Presentation::Dpop { proof, method: method.as_str(), url }
            }
        };
        self.verify_presented(token, assertion, presented).await
    }

    /// The `WWW-Authenticate` challenges for a refused request (none for 500 and 503): the
    /// `DPoP` one for DPoP refusals and tokens sent with the `DPoP` scheme; for a missing
    /// token, `DPoP` where an issuer requires it, and `Bearer` where one accepts it.
    #[cfg(feature = "tower")]
    pub(crate) fn challenges(&self, error: &VerifyError, realm: Option<&str>, dpop_scheme: bool) -> Vec<String> {
        let requires = |i: &TrustedIssuer| i.policy.require_dpop;
        let some_require = self.inner.issuers.iter().any(requires);
        let all_require = self.inner.issuers.iter().all(requires);
        let challenges = if matches!(error, VerifyError::MissingToken) && some_require {
            let dpop = error.dpop_www_authenticate(realm);
            let bearer = if all_require { None } else { error.www_authenticate(realm) };
            vec![dpop, bearer]
        } else if dpop_scheme || error.is_dpop() {
            vec![error.dpop_www_authenticate(realm)]
        } else {
            vec![error.www_authenticate(realm)]
        };
        challenges.into_iter().flatten().collect()
    }

    async fn verify_inner(
        &self,
        token: &str,
        act_assertion: Option<&str>,
        presented: Presentation<'_>,
    ) -> Result<DualSubject, VerifyError> {
        let token = token.trim();
        let jwt = self.parse(token)?;
        let header = SafeHeader::read(jwt.header())?;
        let issuer = self.trusted_issuer(jwt.claims())?;
        // The proof first: it costs no key fetch, and a request without one is refused early.
        let proof = match &presented {
            Presentation::Bearer if issuer.policy.require_dpop => {
                return Err(VerifyError::DpopRequired { issuer: issuer.policy.issuer.clone() });
            }
            Presentation::Bearer => None,
            Presentation::Dpop { proof, method, url } => {
                let window = self.proof_window(&issuer.policy);
                Some(crate::dpop::verify_proof(proof, method, url, token, self.inner.clock.now(), window)?)
            }
        };
        let times = self.check_registered(issuer, &header, &jwt).await?;
        let claims = jwt.claims();
        let bound = crate::dpop::token_jkt(claims)?;
        match (&proof, bound) {
            (None, Some(_)) => return Err(VerifyError::DpopBoundTokenAsBearer),
            (Some(proof), bound) if bound != Some(proof.jkt.as_str()) => {
                return Err(VerifyError::DpopKeyMismatch { token_jkt: bound.map(str::to_owned), proof_jkt: proof.jkt.clone() });
            }
            _ => {}
        }
        let scopes = scopes_of(claims)?;
        let missing: Vec<String> = issuer.policy.required_scopes.iter().filter(|s| !scopes.contains(s)).cloned().collect();
        if !missing.is_empty() {
            return Err(VerifyError::InsufficientScope { missing });
        }
        check_roles(claims, &issuer.policy.roles_claim, &issuer.policy.required_roles)?;
        let vouched_by = match issuer.policy.layout {
            Layout::DualAuth => VouchedBy::Agent,
            Layout::ActAssertion => VouchedBy::Application,
            _ => VouchedBy::IdentityProvider,
        };
        let (agent, human, chain) = match issuer.policy.layout {
            Layout::DualAuth => dual_auth_layout(claims)?,
            Layout::Rfc8693 => rfc8693_layout(claims)?,
            Layout::Delegated => delegated_layout(claims)?,
            _ => {
                let checker = issuer.assertion.as_ref().ok_or_else(|| VerifyError::Configuration {
                    setting: "layout",
                    reason: "act-assertion needs an ActAssertionPolicy".into(),
                })?;
                let agent = entra_agent(claims)?;
                let verified = self.check_assertion(checker, &issuer.policy.issuer, &agent, act_assertion).await?;
                (agent, verified.into_act(), Vec::new())
            }
        };
        // Last, once everything else passed: a refused request does not use its proof up.
        if let Some(proof) = &proof {
            self.record_proof(proof, &agent, &issuer.policy).await?;
        }
        let dpop_jkt = proof.map(|p| p.jkt);
        Ok(DualSubject { issuer: issuer.policy.issuer.clone(), agent, human, chain, scopes, expires_at: times, vouched_by, dpop_jkt })
    }

    /// Verifies an OpenID Connect ID token (OIDC Core §3.1.3.7) for a relying party whose
    /// client id is the issuer policy's audience: the same header, key, time and audience
    /// checks as access tokens, then `azp` (when present) must be that client id, `sub` must
    /// be a non-empty string, and `nonce` must equal `expected_nonce`, the one the login
    /// sent. Layout, scopes, roles and DPoP do not apply to ID tokens.
    ///
    /// ```no_run
    /// # async fn run(id_token: &str, nonce: &str) -> Result<(), dual_auth_verify::VerifyError> {
    /// use dual_auth_verify::{IssuerPolicy, Verifier};
    /// let issuer = "https://sso.example.com/realms/corp";
    /// // The web application's client id is the ID token's audience.
    /// let verifier = Verifier::builder().issuer(IssuerPolicy::new(issuer, "finance-web").discovery()).build()?;
    /// let login = verifier.verify_id_token(id_token, nonce).await?;
    /// tracing::info!(user = %login.subject, "logged in");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Verifier::verify`] for the shared checks; [`VerifyError::MissingClaim`] or
    /// [`VerifyError::InvalidClaim`] naming `sub`, `azp` or `nonce`.
    pub async fn verify_id_token(&self, id_token: &str, expected_nonce: &str) -> Result<IdToken, VerifyError> {
        let result = self.verify_id_token_inner(id_token.trim(), expected_nonce).await;
        match &result {
            Ok(login) => tracing::debug!(event = "id_token_verified", issuer = %login.issuer, user = %login.subject),
            Err(e) => tracing::info!(event = "id_token_refused", reason = %e, "ID token refused"),
        }
        result
    }

    async fn verify_id_token_inner(&self, token: &str, expected_nonce: &str) -> Result<IdToken, VerifyError> {
        if expected_nonce.is_empty() {
            return Err(VerifyError::Configuration { setting: "nonce", reason: "give the nonce the login request sent".into() });
        }
        let jwt = self.parse(token)?;
        let header = SafeHeader::read(jwt.header())?;
        let issuer = self.trusted_issuer(jwt.claims())?;
        let expires_at = self.check_registered(issuer, &header, &jwt).await?;
        let claims = jwt.claims();
        match claims.get("azp") {
            None => {}
            Some(Value::String(azp)) if issuer.policy.audiences.contains(azp) => {}
            Some(Value::String(azp)) => {
                return Err(VerifyError::InvalidClaim { claim: "azp", reason: format!("names {azp:?}, not this client") });
            }
            Some(_) => return Err(VerifyError::InvalidClaim { claim: "azp", reason: "must be a string".into() }),
        }
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            Some(_) => return Err(VerifyError::InvalidClaim { claim: "sub", reason: "must be a non-empty string".into() }),
            None => return Err(VerifyError::MissingClaim { claim: "sub" }),
        };
        match claims.get("nonce") {
            // Not a secret from the token's holder: a plain comparison.
            Some(Value::String(nonce)) if nonce == expected_nonce => {}
            Some(_) => {
                return Err(VerifyError::InvalidClaim {
                    claim: "nonce",
                    reason: "is not the one this login sent (a replayed or injected ID token)".into(),
                });
            }
            None => return Err(VerifyError::MissingClaim { claim: "nonce" }),
        }
        Ok(IdToken { issuer: issuer.policy.issuer.clone(), subject, expires_at, claims: jwt.into_claims() })
    }

    /// The size bound, then the compact serialization.
    fn parse(&self, token: &str) -> Result<UnverifiedJwt, VerifyError> {
        if token.len() > self.inner.max_token_bytes {
            return Err(VerifyError::TooLarge { size: token.len(), max: self.inner.max_token_bytes });
        }
        UnverifiedJwt::parse(token).map_err(malformed)
    }

    /// What every token from a trusted issuer passes, whatever it is for: the `typ` the
    /// policy requires, the signature by a key of the issuer's pinned to its algorithm,
    /// the times, the audience. When it expires.
    async fn check_registered(
        &self,
        issuer: &TrustedIssuer,
        header: &SafeHeader<'_>,
        jwt: &UnverifiedJwt,
    ) -> Result<SystemTime, VerifyError> {
        check_type(&issuer.policy, header.typ)?;
        self.check_signature(issuer, header, jwt).await?;
        let claims = jwt.claims();
        let times = check_times(claims, &issuer.policy, self.inner.clock.now())?;
        check_audience(claims, &issuer.policy.audiences)?;
        Ok(times)
    }

    /// The proof window plus the issuer's leeway, in seconds (both bounded when built).
    fn proof_window(&self, policy: &IssuerPolicy) -> u64 {
        self.inner.dpop.window.as_secs().saturating_add(policy.leeway.as_secs())
    }

    /// Records the proof's `jti` until its `iat` leaves the window, bounded per agent.
    async fn record_proof(&self, proof: &VerifiedProof, agent: &Actor, policy: &IssuerPolicy) -> Result<(), VerifyError> {
        let until = proof.iat.checked_add(self.proof_window(policy)).and_then(|s| s.checked_add(1));
        let until = until.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s))).ok_or_else(|| {
            VerifyError::InvalidDpopProof { check: crate::DpopCheck::IssuedAt, reason: "iat lies beyond the clock's range".into() }
        })?;
        // A fixed-size key whatever the jti's length, apart from other ids in a shared store.
        let id = format!("dpop:{}:{}", proof.jkt, dual_auth_core::access_token_hash(&proof.jti));
        match self.inner.dpop.replay_guard.check_and_record_for(Some(agent.id()), &id, until).await {
            Ok(()) => Ok(()),
            Err(ReplayError::Replayed) => {
                tracing::warn!(event = "dpop_proof_replay", agent = %agent.id(), jkt = %proof.jkt, "DPoP proof replay detected");
                Err(VerifyError::DpopReplayed)
            }
            Err(other) => Err(VerifyError::DpopReplayCheckFailed(other)),
        }
    }

    fn trusted_issuer(&self, claims: &Map<String, Value>) -> Result<&TrustedIssuer, VerifyError> {
        let trusted = || self.inner.issuers.iter().map(|i| i.policy.issuer.as_str()).collect::<Vec<_>>().join(", ");
        match claims.get("iss") {
            Some(Value::String(iss)) => self
                .inner
                .issuers
                .iter()
                .find(|i| i.policy.issuer == *iss)
                .ok_or_else(|| VerifyError::UnknownIssuer { found: format!("{iss:?}"), trusted: trusted() }),
            Some(_) => Err(VerifyError::InvalidClaim { claim: "iss", reason: "must be a string".into() }),
            None => Err(VerifyError::UnknownIssuer { found: "no iss claim".into(), trusted: trusted() }),
        }
    }

    /// Finds the issuer's key for the token and checks the signature with it.
    async fn check_signature(&self, issuer: &TrustedIssuer, header: &SafeHeader<'_>, jwt: &UnverifiedJwt) -> Result<(), VerifyError> {
        let candidates = match issuer.keys.lookup(header.kid).await? {
            Lookup::Found(keys) => keys,
            Lookup::Unknown(why) => {
                return Err(VerifyError::UnknownKey {
                    issuer: issuer.policy.issuer.clone(),
                    kid: header.kid.unwrap_or("(none)").to_owned(),
                    refreshed: why,
                });
            }
        };
        let same_alg: Vec<&VerifyingKey> = candidates.iter().filter(|k| k.algorithm().as_str() == header.alg).collect();
        if same_alg.is_empty() {
            let mut algs: Vec<&str> = candidates.iter().map(|k| k.algorithm().as_str()).collect();
            algs.dedup();
            return Err(VerifyError::AlgorithmNotAllowed {
                found: header.alg.to_owned(),
                reason: format!("the issuer's key verifies {} only", algs.join(", ")),
            });
        }
        if same_alg.into_iter().any(|k| k.verifies(jwt)) {
            Ok(())
        } else {
            Err(VerifyError::SignatureInvalid {
                issuer: issuer.policy.issuer.clone(),
                kid: header.kid.map(|k| format!(" {k:?}")).unwrap_or_default(),
            })
        }
    }

    async fn check_assertion(
        &self,
        checker: &AssertionChecker,
        issuer: &str,
        agent: &Actor,
        assertion: Option<&str>,
    ) -> Result<VerifiedActJwt, VerifyError> {
        let assertion = assertion.ok_or_else(|| VerifyError::MissingActAssertion { issuer: issuer.to_owned() })?.trim();
        let token_agent = agent.client_id.clone().unwrap_or_default();
        // Its header names the key to look up; bounded first, as the verifier bounds it.
        if assertion.len() > dual_auth_core::DEFAULT_MAX_TOKEN_BYTES {
            let (size, max) = (assertion.len(), dual_auth_core::DEFAULT_MAX_TOKEN_BYTES);
            return Err(VerifyError::ActAssertion(ActJwtError::TooLarge { size, max }));
        }
        let unverified = UnverifiedJwt::parse(assertion).map_err(VerifyError::ActAssertion)?;
        let kid = unverified.header().get("kid").and_then(Value::as_str);
        let keys = match checker.keys.lookup(kid).await? {
            Lookup::Found(keys) => keys,
            Lookup::Unknown(_) => return Err(VerifyError::ActAssertion(ActJwtError::UnknownKeyId { kid: kid.unwrap_or("").to_owned() })),
        };
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or_else(|| VerifyError::ActAssertion(ActJwtError::UnknownKeyId { kid: String::new() }))?;
        let policy = &checker.policy;
        let mut builder = ActJwtVerifier::builder(first, policy.audience.clone())
            .for_act_assertions()
            .leeway(policy.leeway)
            .replay_guard(Arc::clone(&policy.replay_guard))
            .clock(Arc::clone(&self.inner.clock));
        for key in keys {
            builder = builder.add_key(key);
        }
        builder = match &policy.app_id {
            Some(app_id) => builder.issuer(app_id.clone()),
            None => builder.any_issuer(),
        };
        let verifier = builder.build().map_err(VerifyError::ActAssertion)?;
        // The binding is checked inside the verifier, before the jti is recorded, so an
        // assertion shown with another agent's token is refused without being used up.
        verifier.verify_for_party(assertion, &token_agent).await.map_err(|e| match e {
            ActJwtError::WrongAuthorizedParty { expected, found } => VerifyError::AgentMismatch {
                token_agent: expected,
                assertion_agent: found.map_or_else(|| "(no azp claim: it cannot be bound to an agent)".into(), |a| format!("{a:?}")),
            },
            other => VerifyError::ActAssertion(other),
        })
    }
}

fn malformed(e: ActJwtError) -> VerifyError {
    match e {
        ActJwtError::Malformed { reason } => VerifyError::Malformed { reason },
        other => VerifyError::Malformed { reason: other.to_string() },
    }
}

/// The header members we act on, after refusing the dangerous ones.
struct SafeHeader<'a> {
    alg: &'a str,
    kid: Option<&'a str>,
    typ: Option<&'a str>,
}

impl<'a> SafeHeader<'a> {
    fn read(header: &'a Map<String, Value>) -> Result<Self, VerifyError> {
        let text = |name: &'static str| match header.get(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(VerifyError::Malformed { reason: format!("header {name:?} is not a string") }),
        };
        let alg = text("alg")?.ok_or_else(|| VerifyError::Malformed { reason: "header has no \"alg\"".into() })?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(VerifyError::AlgorithmNotAllowed { found: alg.to_owned(), reason: "unsigned tokens are never accepted".into() });
        }
        // `get`, not slicing: an `alg` may start with a multi-byte character (found by fuzzing).
        if alg.get(..2).is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS")) {
            return Err(VerifyError::AlgorithmNotAllowed {
                found: alg.to_owned(),
                reason: "HMAC would turn the issuer's public key into a shared secret: only its asymmetric keys verify".into(),
            });
        }
        if header.contains_key("crit") {
            return Err(VerifyError::UnsupportedHeader { name: "crit".into(), reason: "no critical extensions are understood" });
        }
        if let Some(name) = SELF_KEYED_HEADERS.iter().find(|h| header.contains_key(**h)) {
            return Err(VerifyError::UnsupportedHeader {
                name: (*name).into(),
                reason: "a token cannot name its own key: keys come only from the issuer's JWKS",
            });
        }
        Ok(Self { alg, kid: text("kid")?, typ: text("typ")? })
    }
}

fn check_type(policy: &IssuerPolicy, typ: Option<&str>) -> Result<(), VerifyError> {
    let Some(expected) = &policy.required_type else { return Ok(()) };
    let normal = |t: &str| {
        let t = t.trim().to_ascii_lowercase();
        t.strip_prefix("application/").map(str::to_owned).unwrap_or(t)
    };
    match typ {
        Some(found) if normal(found) == normal(expected) => Ok(()),
        found => Err(VerifyError::WrongType {
            found: found.map_or_else(|| "no typ header".into(), |f| format!("{f:?}")),
            expected: expected.clone(),
        }),
    }
}

/// A NumericDate claim in whole seconds; a string, a negative or an absurd number is refused.
pub(crate) fn seconds_claim(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<u64>, VerifyError> {
    let Some(value) = claims.get(claim) else { return Ok(None) };
    let invalid = |reason: &str| VerifyError::InvalidClaim { claim, reason: reason.into() };
    let Value::Number(number) = value else { return Err(invalid("must be a number of seconds since 1970, not a string or other JSON")) };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        // NumericDate may carry a fraction; whole seconds are enough here.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
        _ => Err(invalid("must be a non-negative number of seconds since 1970")),
    }
}

fn check_times(claims: &Map<String, Value>, policy: &IssuerPolicy, now: SystemTime) -> Result<SystemTime, VerifyError> {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let leeway = policy.leeway.as_secs();
    let exp = seconds_claim(claims, "exp")?.ok_or(VerifyError::MissingClaim { claim: "exp" })?;
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired { ago_secs: now.saturating_sub(exp), leeway_secs: leeway });
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = seconds_claim(claims, claim)?
            && at > now.saturating_add(leeway)
        {
            return Err(VerifyError::NotYetValid { claim, ahead_secs: at - now, leeway_secs: leeway });
        }
    }
    let max = policy.max_lifetime.as_secs();
    let lifetime = match seconds_claim(claims, "iat")? {
        Some(iat) if exp <= iat => return Err(VerifyError::InvalidClaim { claim: "exp", reason: "must be later than iat".into() }),
        Some(iat) => exp - iat,
        // Without iat, bound what is left.
        None => exp.saturating_sub(now),
    };
    if lifetime > max {
        return Err(VerifyError::LifetimeTooLong { lifetime_secs: lifetime, max_secs: max });
    }
    // Bounded by now + max above; checked all the same, as exp comes from the token.
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(exp))
        .ok_or_else(|| VerifyError::InvalidClaim { claim: "exp", reason: "lies beyond the clock's range".into() })
}

/// `aud` is a string or an array of strings (RFC 7519); one must equal a configured
/// audience exactly.
fn check_audience(claims: &Map<String, Value>, expected: &[String]) -> Result<(), VerifyError> {
    let wrong = |found: String| VerifyError::WrongAudience { found, expected: expected.join(", ") };
    match claims.get("aud") {
        Some(Value::String(aud)) if expected.contains(aud) => Ok(()),
        Some(Value::String(aud)) => Err(wrong(format!("{aud:?}"))),
        Some(Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                let Value::String(aud) = item else {
                    return Err(VerifyError::InvalidClaim { claim: "aud", reason: "array members must be strings".into() });
                };
                if expected.contains(aud) {
                    return Ok(());
                }
                names.push(format!("{aud:?}"));
            }
            Err(wrong(format!("[{}]", names.join(", "))))
        }
        Some(_) => Err(VerifyError::InvalidClaim { claim: "aud", reason: "must be a string or an array of strings".into() }),
        None => Err(wrong("no aud claim".into())),
    }
}

/// The scopes in `scope` (space-separated) and `scp` (an array, or space-separated as
/// Entra ID writes it).
fn scopes_of(claims: &Map<String, Value>) -> Result<Vec<String>, VerifyError> {
    let mut scopes: Vec<String> = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            None => {}
            Some(Value::String(list)) => scopes.extend(list.split_whitespace().map(str::to_owned)),
            Some(Value::Array(items)) => {
                for item in items {
                    let Value::String(scope) = item else {
                        return Err(VerifyError::InvalidClaim { claim: "scp", reason: "array members must be strings".into() });
                    };
                    scopes.push(scope.clone());
                }
            }
            Some(_) => return Err(VerifyError::InvalidClaim { claim: "scope", reason: "must be a string".into() }),
        }
    }
    scopes.dedup();
    Ok(scopes)
}

fn check_roles(claims: &Map<String, Value>, path: &[String], required: &[String]) -> Result<(), VerifyError> {
    if required.is_empty() {
        return Ok(());
    }
    let (last, parents) = path.split_last().map_or(("roles", &[][..]), |(last, parents)| (last.as_str(), parents));
    let mut object = Some(claims);
    for name in parents {
        object = object.and_then(|o| o.get(name)).and_then(Value::as_object);
    }
    let held: Vec<&str> = match object.and_then(|o| o.get(last)) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(role)) => vec![role.as_str()],
        _ => Vec::new(),
    };
    let missing: Vec<String> = required.iter().filter(|r| !held.contains(&r.as_str())).cloned().collect();
    if missing.is_empty() { Ok(()) } else { Err(VerifyError::InsufficientRole { missing }) }
}

fn nonempty_text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// The client the token was issued to: `client_id` (RFC 9068), `azp`, Okta's `cid`,
/// Entra ID v1's `appid`.
fn client_id_of(claims: &Map<String, Value>) -> Option<String> {
    ["client_id", "azp", "cid", "appid"].into_iter().find_map(|name| nonempty_text(claims, name)).map(str::to_owned)
}

fn delegation(layout: Layout, reason: impl Into<String>) -> VerifyError {
    VerifyError::InvalidDelegation { layout: layout.as_str(), reason: reason.into() }
}

fn dual_auth_layout(claims: &Map<String, Value>) -> Result<(Actor, Act, Vec<Actor>), VerifyError> {
    let layout = Layout::DualAuth;
    let agent = nonempty_text(claims, "sub").ok_or_else(|| delegation(layout, "no sub: the agent is missing"))?;
    let act = match claims.get("act") {
        Some(Value::Object(act)) => {
            Act::from_value(Value::Object(act.clone())).map_err(|e| delegation(layout, format!("act (the human): {e}")))?
        }
        Some(_) => return Err(delegation(layout, "act must be an object")),
        None => {
            return Err(delegation(
                layout,
                "no act claim: configure the identity provider to copy act from the agent's client assertion into the token",
            ));
        }
    };
    let client = client_id_of(claims);
    if client.as_deref() == Some(act.sub()) {
        // RFC 8693 tokens name their client as the actor: read here they would swap roles.
        return Err(delegation(
            layout,
            "act.sub is the token's own client, as in an RFC 8693 token (sub = the human): configure this issuer with the rfc8693 layout",
        ));
    }
    Ok((Actor::new(agent, client), act, Vec::new()))
}

/// The human a token names as its own subject: `sub` (in the delegated layout Okta's
/// `uid` first: Okta's `sub` is the login), with `email`, `name` and `oid`.
fn subject_human(claims: &Map<String, Value>, layout: Layout) -> Result<Act, VerifyError> {
    // Okta's shape only (the agent in `cid`): elsewhere a `uid` claim is not the identity
    // provider's user id and may come from an editable attribute.
    let okta_user_id =
        if layout == Layout::Delegated && nonempty_text(claims, "cid").is_some() { nonempty_text(claims, "uid") } else { None };
    let human = okta_user_id.or_else(|| nonempty_text(claims, "sub")).ok_or_else(|| delegation(layout, "no sub: the human is missing"))?;
    let mut act = Act::new(human).map_err(|e| delegation(layout, format!("sub: {e}")))?;
    if let Some(email) = nonempty_text(claims, "email") {
        act = act.with_email(email);
    }
    if let Some(name) = nonempty_text(claims, "name") {
        act = act.with_name(name);
    }
    if let Some(oid) = nonempty_text(claims, "oid") {
        act = act.with_oid(oid);
    }
    Ok(act)
}

/// The `act` chain, outermost first (RFC 8693 §4.1: the current actor, then the earlier
/// ones nested inside).
fn act_chain(claims: &Map<String, Value>, layout: Layout) -> Result<Vec<Actor>, VerifyError> {
    let mut actors = Vec::new();
    let mut current = claims.get("act");
    while let Some(value) = current {
        let Value::Object(object) = value else { return Err(delegation(layout, "act must be an object")) };
        if actors.len() == MAX_CHAIN_DEPTH + 1 {
            return Err(delegation(layout, format!("the delegation chain is deeper than {MAX_CHAIN_DEPTH}")));
        }
        let sub = nonempty_text(object, "sub").ok_or_else(|| delegation(layout, "an act object has no sub"))?;
        actors.push(Actor::new(sub, nonempty_text(object, "client_id").map(str::to_owned)));
        current = object.get("act");
    }
    Ok(actors)
}

fn delegated_layout(claims: &Map<String, Value>) -> Result<(Actor, Act, Vec<Actor>), VerifyError> {
    let layout = Layout::Delegated;
    let client = client_id_of(claims)
        .ok_or_else(|| delegation(layout, "the token names no agent (client_id, azp, cid or appid): it is not a delegated token"))?;
    let human = subject_human(claims, layout)?;
    // The agent's own (client-credentials) token names the agent as its subject: read here
    // it would make the agent its own human.
    let sub = nonempty_text(claims, "sub");
    // Entra ID: app-only tokens carry `roles`, never `scp`, and their `sub` is the
    // service principal's `oid`; a user's token has `scp` and a pairwise `sub`.
    let entra_shaped = nonempty_text(claims, "tid").is_some();
    let entra_app_only = entra_shaped && (claims.get("scp").is_none() || (sub.is_some() && sub == nonempty_text(claims, "oid")));
    let agents_own = human.sub() == client
        || sub.is_some_and(|sub| sub == client || sub == format!("{client}@clients"))
        || nonempty_text(claims, "gty") == Some("client-credentials")
        || nonempty_text(claims, "idtyp") == Some("app")
        // Keycloak: the service-account user (its token's `sub` is that user's id).
        || nonempty_text(claims, "preferred_username").is_some_and(|name| name.starts_with("service-account-"))
        || entra_app_only;
    if agents_own {
        return Err(delegation(layout, "the token is the agent's own (client credentials): no human delegated to it"));
    }
    let mut chain = act_chain(claims, layout)?;
    if let Some(outer) = chain.first() {
        // RFC 8693 §4.1 and Auth0: the outermost act.sub is the client holding the token.
        if outer.sub != client && outer.client_id.as_deref() != Some(client.as_str()) {
            return Err(delegation(layout, "the outermost act.sub is not the client the token was issued to"));
        }
        chain.remove(0);
    }
    Ok((Actor::new(client.clone(), Some(client)), human, chain))
}

fn rfc8693_layout(claims: &Map<String, Value>) -> Result<(Actor, Act, Vec<Actor>), VerifyError> {
    let layout = Layout::Rfc8693;
    let act = subject_human(claims, layout)?;
    let mut actors = act_chain(claims, layout)?;
    if actors.is_empty() {
        return Err(delegation(layout, "no act claim: the token names no agent acting for its subject"));
    }
    let mut agent = actors.remove(0);
    if let Some(client) = client_id_of(claims) {
        // The actor is the client that obtained the token; a dual-auth token read here would
        // name the human as the actor.
        if agent.sub != client && agent.client_id.as_deref() != Some(client.as_str()) {
            return Err(delegation(
                layout,
                "act.sub is not the client the token was issued to, as in a dual-auth token (sub = the agent): check the issuer's layout",
            ));
        }
        agent.client_id.get_or_insert(client);
    }
    Ok((agent, act, actors))
}

fn entra_agent(claims: &Map<String, Value>) -> Result<Actor, VerifyError> {
    let layout = Layout::ActAssertion;
    let client = ["azp", "appid"]
        .into_iter()
        .find_map(|name| nonempty_text(claims, name))
        .ok_or_else(|| delegation(layout, "the token names no agent (azp or appid)"))?;
    let sub = nonempty_text(claims, "sub").unwrap_or(client);
    Ok(Actor::new(sub, Some(client.to_owned())))
}

/// The `Authorization` scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// The scheme, the token and the act assertion of a request.
fn credentials(headers: &http::HeaderMap) -> Result<(Scheme, &str, Option<&str>), VerifyError> {
    let bad = |reason: &'static str| VerifyError::InvalidRequest { reason };
    let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = authorization.next() else { return Err(VerifyError::MissingToken) };
    if authorization.next().is_some() {
        return Err(bad("More than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| bad("The Authorization header is not ASCII"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| bad("The Authorization header must be \"Bearer <token>\""))?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case(dual_auth_core::DPOP_HEADER) {
        Scheme::Dpop
    } else {
        return Err(VerifyError::MissingToken);
    };
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(bad(match scheme {
            Scheme::Bearer => "The Authorization header must be \"Bearer <token>\"",
            Scheme::Dpop => "The Authorization header must be \"DPoP <token>\"",
        }));
    }
    let mut assertions = headers.get_all(dual_auth_core::ACT_ASSERTION_HEADER).iter();
    let assertion = match (assertions.next(), assertions.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(bad("More than one X-Act-Assertion header")),
        (Some(value), None) => Some(value.to_str().map_err(|_| bad("The X-Act-Assertion header is not ASCII"))?.trim()),
    };
    Ok((scheme, token, assertion))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_exp_never_panics_even_with_an_unchecked_max_lifetime() {
        // A policy as if built with no cap on max_lifetime: the time arithmetic stays checked.
        let policy = IssuerPolicy::new("https://idp.example.com", "https://api.example.com").max_lifetime(Duration::MAX);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut claims = Map::new();
        claims.insert("exp".into(), Value::from(u64::MAX));
        let err = check_times(&claims, &policy, now).unwrap_err();
        assert!(matches!(&err, VerifyError::InvalidClaim { claim: "exp", .. }), "{err}");
        claims.insert("iat".into(), Value::from(1_700_000_000_u64));
        let err = check_times(&claims, &policy, now).unwrap_err();
        assert!(matches!(&err, VerifyError::InvalidClaim { claim: "exp", .. }), "{err}");
    }

    #[test]
    fn max_lifetime_is_capped_at_thirty_days() {
        let policy = |max| IssuerPolicy::new("https://idp.example.com", "https://api.example.com").max_lifetime(max);
        let err = Verifier::builder().issuer(policy(Duration::MAX)).build().unwrap_err();
        assert!(matches!(&err, VerifyError::Configuration { setting: "max_lifetime", .. }), "{err}");
        let err = Verifier::builder().issuer(policy(crate::MAX_LIFETIME_LIMIT + Duration::from_secs(1))).build().unwrap_err();
        assert!(matches!(&err, VerifyError::Configuration { setting: "max_lifetime", .. }), "{err}");
        assert!(Verifier::builder().issuer(policy(crate::MAX_LIFETIME_LIMIT)).build().is_ok());
    }
}
