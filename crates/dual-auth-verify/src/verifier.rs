//! The verifier: a token (and Entra ID's act assertion) in, a [`DualSubject`] or a
//! precise [`VerifyError`] out.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dual_auth_core::http::HttpsUrl;
use dual_auth_core::jwt::{Jws, JwtError, KeyResolver, RegisteredClaims, StaticKeys, ValidTimes, Validation};
use dual_auth_core::token_endpoint::HttpSettings;
use dual_auth_core::{
    Act, ActJwtError, ActJwtVerifier, Clock, DEFAULT_REPLAY_CAPACITY, InMemoryReplayGuard, ReplayError, ReplayGuard, SystemClock,
    VerifiedActJwt,
};
use serde_json::{Map, Value};

use crate::dpop::{DEFAULT_DPOP_PROOF_WINDOW, MAX_DPOP_PROOF_WINDOW, VerifiedProof};
use crate::error::VerifyError;
use crate::jwks::{IssuerKeys, JwksCachePolicy, KeySource};
use crate::policy::{ActAssertionPolicy, AssertionKeys, IssuerPolicy, KeysSetting, Layout};
use crate::subject::{Actor, DualSubject, IdToken, VouchedBy};

/// The largest access token accepted by default (Entra ID tokens with many groups run to
/// several KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The deepest RFC 8693 delegation chain accepted (nested `act` objects).
pub const MAX_CHAIN_DEPTH: usize = 8;

/// One trusted issuer, with everything its tokens are checked with, built once.
struct TrustedIssuer {
    policy: IssuerPolicy,
    validation: Validation,
    keys: IssuerKeys,
    /// Checks the Entra ID act assertions that come with its tokens.
    assertion: Option<ActJwtVerifier>,
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
/// Checks, in order, with core's engine ([`dual_auth_core::jwt`]): size; three base64url
/// parts with JSON objects; the header (no `crit`, no key named by the token itself; an
/// `x5t` thumbprint is fine); `iss` picks a trusted issuer; `typ` when required; the keys
/// the `kid` selects from the issuer's JWKS (one refresh on an unknown `kid`; every key
/// when the token has no `kid`), of which only those whose algorithm is the header's `alg`
/// (so `none` and HMAC never pass); the signature; `exp` (required), `nbf`, `iat` with
/// leeway; the lifetime; `aud` (a string or an array, one naming this API); scopes and roles;
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
                    HttpsUrl::parse(&policy.issuer).map_err(|e| bad("issuer", format!("for discovery the issuer {e}")))?;
                    KeySource::Discovery
                }
                KeysSetting::JwksUrl(url) => KeySource::JwksUrl(HttpsUrl::parse(url).map_err(|e| bad("jwks_url", e.to_string()))?),
                KeysSetting::Static(keys) if keys.is_empty() => return Err(bad("static_keys", "give at least one key".into())),
                KeysSetting::Static(keys) => KeySource::Static(StaticKeys::new(keys.iter().cloned())),
            };
            let validation = issuer_validation(&policy)?;
            let keys = IssuerKeys::new(policy.issuer.clone(), source, self.cache, http.clone(), Arc::clone(&self.clock));
            let assertion = match &policy.act_assertion {
                None => None,
                Some(assertion) => {
                    let keys: Arc<dyn KeyResolver> = match &assertion.keys {
                        AssertionKeys::Static(keys) => Arc::new(StaticKeys::new(keys.iter().cloned())),
                        AssertionKeys::JwksUrl(url) => {
                            let url = HttpsUrl::parse(url).map_err(|e| bad("act assertion jwks_url", e.to_string()))?;
                            let name = assertion.app_id.clone().unwrap_or_else(|| "the application".into());
                            Arc::new(IssuerKeys::new(name, KeySource::JwksUrl(url), self.cache, http.clone(), Arc::clone(&self.clock)))
                        }
                    };
                    Some(assertion_verifier(assertion, keys, Arc::clone(&self.clock))?)
                }
            };
            issuers.push(TrustedIssuer { policy, validation, keys, assertion });
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
        if assertion.audience.trim().is_empty() {
            return bad("act assertion audience", "must not be empty: use the application's API_AUDIENCE");
        }
        if matches!(&assertion.keys, AssertionKeys::Static(keys) if keys.is_empty()) {
            return bad("act assertion keys", "give at least one key");
        }
    }
    Ok(())
}

/// What every token of `policy`'s issuer must satisfy: the issuer, an audience, the
/// leeway, the lifetime and the `typ` it requires.
fn issuer_validation(policy: &IssuerPolicy) -> Result<Validation, VerifyError> {
    let mut validation = Validation::new().issuer(policy.issuer.clone()).leeway(policy.leeway).max_lifetime(policy.max_lifetime);
    for audience in &policy.audiences {
        validation = validation.audience(audience.clone());
    }
    if let Some(typ) = &policy.required_type {
        validation = validation.require_type(typ.clone());
    }
    validation.checked().map_err(|e| refusal(e, &policy.issuer))
}

/// The verifier of one issuer's Entra ID act assertions, with the application's `keys`.
fn assertion_verifier(
    policy: &ActAssertionPolicy,
    keys: Arc<dyn KeyResolver>,
    clock: Arc<dyn Clock>,
) -> Result<ActJwtVerifier, VerifyError> {
    let builder = ActJwtVerifier::builder_with_resolver(keys, policy.audience.clone())
        .for_act_assertions()
        .leeway(policy.leeway)
        .replay_guard(Arc::clone(&policy.replay_guard))
        .clock(clock);
    let builder = match &policy.app_id {
        Some(app_id) => builder.issuer(app_id.clone()),
        None => builder.any_issuer(),
    };
    builder.build().map_err(|e| match e {
        ActJwtError::InvalidSetting { setting, reason } => VerifyError::Configuration {
            setting: match setting {
                "leeway" => "act assertion leeway",
                "audience" => "act assertion audience",
                "keys" => "act assertion keys",
                _ => "act assertion",
            },
            reason,
        },
        other => VerifyError::Configuration { setting: "act assertion", reason: other.to_string() },
    })
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
            Err(e) => tracing::info!(event = "token_refused", reason = %dual_auth_core::ErrorChain(e), "access token refused"),
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

    /// Each trusted issuer with the audiences its tokens must name.
    #[cfg(feature = "mcp")]
    pub(crate) fn issuer_audiences(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.inner.issuers.iter().map(|i| (i.policy.issuer.as_str(), i.policy.audiences.as_slice()))
    }

    /// Whether every trusted issuer requires DPoP-bound tokens.
    #[cfg(feature = "mcp")]
    pub(crate) fn all_issuers_require_dpop(&self) -> bool {
        self.inner.issuers.iter().all(|i| i.policy.require_dpop)
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
        let jws = self.parse(token)?;
        let issuer = self.trusted_issuer(jws.claims())?;
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
        let times = self.check_registered(issuer, &jws).await?;
        let claims = jws.claims();
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
                let verified = check_assertion(checker, &issuer.policy.issuer, &agent, act_assertion).await?;
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
            Err(e) => tracing::info!(event = "id_token_refused", reason = %dual_auth_core::ErrorChain(e), "ID token refused"),
        }
        result
    }

    async fn verify_id_token_inner(&self, token: &str, expected_nonce: &str) -> Result<IdToken, VerifyError> {
        if expected_nonce.is_empty() {
            return Err(VerifyError::Configuration { setting: "nonce", reason: "give the nonce the login request sent".into() });
        }
        let jws = self.parse(token)?;
        let issuer = self.trusted_issuer(jws.claims())?;
        let expires_at = self.check_registered(issuer, &jws).await?;
        let claims = jws.claims();
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
        Ok(IdToken { issuer: issuer.policy.issuer.clone(), subject, expires_at, claims: jws.into_claims() })
    }

    /// The size bound, the compact serialization and the header policy.
    fn parse(&self, token: &str) -> Result<Jws, VerifyError> {
        // No issuer is known yet: these refusals name none.
        Jws::parse(token, self.inner.max_token_bytes).map_err(|e| refusal(e, ""))
    }

    /// What every token from a trusted issuer passes, whatever it is for: the `typ` the
    /// policy requires, the signature by a key of the issuer's pinned to its algorithm,
    /// the times, the audience. When it expires.
    async fn check_registered(&self, issuer: &TrustedIssuer, jws: &Jws) -> Result<SystemTime, VerifyError> {
        let name = issuer.policy.issuer.as_str();
        issuer.validation.verify_signature(jws, &issuer.keys).await.map_err(|e| refusal(e, name))?;
        let times = valid_times(&issuer.validation, jws.claims(), self.inner.clock.now()).map_err(|e| refusal(e, name))?;
        Ok(times.expires_at())
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
}

/// Checks Entra ID's act assertion with `verifier`, bound to the token's `agent`.
async fn check_assertion(
    verifier: &ActJwtVerifier,
    issuer: &str,
    agent: &Actor,
    assertion: Option<&str>,
) -> Result<VerifiedActJwt, VerifyError> {
    let assertion = assertion.ok_or_else(|| VerifyError::MissingActAssertion { issuer: issuer.to_owned() })?.trim();
    let token_agent = agent.client_id.clone().unwrap_or_default();
    // The binding is checked inside the verifier, before the jti is recorded, so an
    // assertion shown with another agent's token is refused without being used up.
    verifier.verify_for_party(assertion, &token_agent).await.map_err(|e| match e {
        ActJwtError::WrongAuthorizedParty { expected, found } => VerifyError::AgentMismatch {
            token_agent: expected,
            assertion_agent: found.map_or_else(|| "(no azp claim: it cannot be bound to an agent)".into(), |a| format!("{a:?}")),
        },
        // The application's keys cannot be had: not the client's fault (503).
        ActJwtError::KeysUnavailable { keys, reason } => VerifyError::KeysUnavailable { issuer: keys, reason },
        other => VerifyError::ActAssertion(other),
    })
}

/// The registered claims checked at `now`.
fn valid_times(validation: &Validation, claims: &Map<String, Value>, now: SystemTime) -> Result<ValidTimes, JwtError> {
    validation.validate_claims(&RegisteredClaims::from_claims(claims)?, now)
}

/// The engine's refusal of a token from `issuer`, as the API words it.
fn refusal(error: JwtError, issuer: &str) -> VerifyError {
    match error {
        JwtError::Malformed { reason } => VerifyError::Malformed { reason },
        JwtError::TooLarge { size, max } => VerifyError::TooLarge { size, max },
        JwtError::UnsupportedHeader { name, reason } => VerifyError::UnsupportedHeader { name, reason },
        JwtError::WrongType { found, expected } => {
            VerifyError::WrongType { found: found.map_or_else(|| "no typ header".into(), |f| format!("{f:?}")), expected }
        }
        JwtError::AlgorithmNotAllowed { found, allowed } => {
            let reason = if found.eq_ignore_ascii_case("none") {
                "unsigned tokens are never accepted".to_owned()
            // `get`, not slicing: an `alg` may start with a multi-byte character (found by fuzzing).
            } else if found.get(..2).is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS")) {
                "HMAC would turn the issuer's public key into a shared secret: only its asymmetric keys verify".to_owned()
            } else {
                let algs: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                format!("the issuer's key verifies {} only", algs.join(", "))
            };
            VerifyError::AlgorithmNotAllowed { found, reason }
        }
        JwtError::UnknownKey { kid, detail } => {
            VerifyError::UnknownKey { issuer: issuer.to_owned(), kid: kid.unwrap_or_else(|| "(none)".into()), refreshed: detail }
        }
        JwtError::KeysUnavailable { keys, reason } => VerifyError::KeysUnavailable { issuer: keys, reason },
        JwtError::SignatureInvalid { kid } => {
            VerifyError::SignatureInvalid { issuer: issuer.to_owned(), kid: kid.map(|k| format!(" {k:?}")).unwrap_or_default() }
        }
        JwtError::MissingClaim { claim } => VerifyError::MissingClaim { claim },
        JwtError::InvalidClaim { claim, reason } => VerifyError::InvalidClaim { claim, reason },
        JwtError::Expired { ago_secs, leeway_secs } => VerifyError::Expired { ago_secs, leeway_secs },
        JwtError::NotYetValid { claim, ahead_secs, leeway_secs } => VerifyError::NotYetValid { claim, ahead_secs, leeway_secs },
        JwtError::LifetimeTooLong { lifetime_secs, max_secs } => VerifyError::LifetimeTooLong { lifetime_secs, max_secs },
        JwtError::WrongAudience { expected, found } => VerifyError::WrongAudience { found, expected: expected.join(", ") },
        JwtError::WrongIssuer { expected, found } => VerifyError::UnknownIssuer { found, trusted: expected.join(", ") },
        JwtError::InvalidSetting { setting, reason } => VerifyError::Configuration { setting, reason },
        // A refusal of a kind added later: still a refusal of the token.
        other => VerifyError::Malformed { reason: other.to_string() },
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

/// The token of a request's `Authorization` header, as [`Verifier::verify_headers`] reads it.
#[cfg(feature = "mcp")]
pub(crate) fn presented_token(headers: &http::HeaderMap) -> Option<&str> {
    credentials(headers).ok().map(|(_, token, _)| token)
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
        let validation = issuer_validation(&policy).unwrap();
        let check_times = |claims: &Map<String, Value>| valid_times(&validation, claims, now).map_err(|e| refusal(e, &policy.issuer));
        let mut claims = Map::new();
        claims.insert("exp".into(), Value::from(u64::MAX));
        let err = check_times(&claims).unwrap_err();
        assert!(matches!(&err, VerifyError::InvalidClaim { claim: "exp", .. }), "{err}");
        claims.insert("iat".into(), Value::from(1_700_000_000_u64));
        let err = check_times(&claims).unwrap_err();
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
