//! The one token-endpoint client every vendor adapter uses: a form POST over HTTPS with
//! timeouts, bounded retries (exponential backoff with jitter, `Retry-After` honoured, a
//! fresh form, so a fresh assertion and `jti`, on every attempt), no redirects, and OAuth
//! error parsing that keeps the status, `error` and `error_description`.
//!
//! With [`DpopSettings`] (RFC 9449) every attempt also carries a fresh `DPoP` proof
//! (`htm` POST, `htu` the token URL, no `ath`), the server's `DPoP-Nonce` is remembered for
//! later proofs, a `use_dpop_nonce` answer is retried at once with the nonce (once, not as
//! a transient failure), and the token must come back as `token_type` `DPoP`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::SecretString;
use secrecy::zeroize::{Zeroize, Zeroizing};
use serde_json::Value;

use crate::adapter::Vendor;
use crate::clock::{Clock, SystemClock};
use crate::error::IamError;
/// Whether an HTTP status is worth a retry: what [`RetryPolicy`] retries, here for every
/// client that retries.
pub use crate::error::is_retryable_status;
use crate::http::{BodyError, HttpsUrl, ToHttpsUrl, read_body};
use crate::jose::dpop::{DPOP_HEADER, DPOP_NONCE_HEADER, DpopKey, USE_DPOP_NONCE};
use crate::text::truncate_untrusted;
use crate::token::TokenResponse;

/// The largest token-endpoint response body read, in bytes.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The longest `DPoP-Nonce` a server may hand out and get back in proofs.
pub const MAX_DPOP_NONCE_CHARS: usize = 1024;

/// When and how often to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The delay before the first retry; doubled each time, with jitter.
    pub initial_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a server asking for more gets no retry.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 0.5 s then 1 s (±50 % jitter), at most 10 s apart, `Retry-After` up to 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The delay before attempt `next_attempt` (2 for the first retry), or `None` when the
    /// server's `Retry-After` exceeds what we honour.
    pub fn delay(&self, next_attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(asked) = retry_after {
            return (asked <= self.max_retry_after).then_some(asked);
        }
        let exponent = next_attempt.saturating_sub(2).min(16);
        let full = self.initial_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        // Jitter in [full/2, full]: spreads retries of many agents without ever retrying at once.
        let half = full / 2;
        Some(half + half.mul_f64(jitter_fraction()))
    }
}

/// What one attempt came to, for [`RetryPolicy::run`].
#[derive(Debug)]
pub enum RetryDecision<T> {
    /// Final: a success, or a failure another attempt would not mend.
    Done(T),
    /// A transient failure: another attempt after the backoff (or after the server's
    /// `Retry-After`) while attempts remain; else `outcome` is the result.
    Retry {
        /// The attempt's outcome, the result when no attempt is left.
        outcome: T,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Again at once, not counted as an attempt: the server asked for something the next
    /// attempt can give (a DPoP nonce). The operation asks for this a bounded number of
    /// times (once per call).
    Again,
}

/// What [`RetryPolicy::run`] ended with.
#[derive(Debug)]
pub struct RetryOutcome<T> {
    /// The last attempt's outcome.
    pub outcome: T,
    /// The attempts made ([`RetryDecision::Again`] not counted).
    pub attempts: u32,
    /// Whether the last attempt asked for a retry the policy refused (no attempt left, or
    /// a `Retry-After` longer than [`RetryPolicy::max_retry_after`]).
    pub gave_up: bool,
}

impl RetryPolicy {
    /// Runs `attempt` (given its number, from 1) until it is [`RetryDecision::Done`], or
    /// asks for a retry the policy refuses. Before each retry, `before_retry` sees the
    /// failed outcome, its attempt number and the delay (to log it), then the delay passes.
    pub async fn run<T, Attempt>(
        &self,
        mut attempt: impl FnMut(u32) -> Attempt,
        mut before_retry: impl FnMut(&T, u32, Duration),
    ) -> RetryOutcome<T>
    where
        Attempt: Future<Output = RetryDecision<T>>,
    {
        let max_attempts = self.max_attempts.max(1);
        let mut number = 1;
        loop {
            match attempt(number).await {
                RetryDecision::Done(outcome) => return RetryOutcome { outcome, attempts: number, gave_up: false },
                RetryDecision::Again => {}
                RetryDecision::Retry { outcome, retry_after } => {
                    let delay = if number < max_attempts { self.delay(number + 1, retry_after) } else { None };
                    let Some(delay) = delay else {
                        return RetryOutcome { outcome, attempts: number, gave_up: true };
                    };
                    before_retry(&outcome, number, delay);
                    drop(outcome);
                    tokio::time::sleep(delay).await;
                    number += 1;
                }
            }
        }
    }
}

/// A number in [0, 1) from the operating system's random source, for jitter (0.5 if the
/// source fails: the jitter then degrades to a fixed delay, never an error).
pub fn jitter_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// HTTP settings shared by every client the workspace builds.
#[derive(Clone)]
pub struct HttpSettings {
    /// Time allowed for a whole request, body included (upstream: 10 s).
    pub timeout: Duration,
    /// Time allowed to connect (TCP and TLS).
    pub connect_timeout: Duration,
    /// Extra trusted roots, as PEM (one or more certificates), added to the system's.
    pub extra_root_certificates_pem: Option<Vec<u8>>,
    /// Retries for transient failures.
    pub retry: RetryPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            extra_root_certificates_pem: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_root_certificates", &self.extra_root_certificates_pem.as_ref().map(Vec::len))
            .field("retry", &self.retry)
            .finish()
    }
}

/// Building an HTTP client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSetupError {
    /// The extra root certificates are not a usable PEM bundle.
    #[error("extra root certificates ({origin}): {reason}")]
    InvalidCaBundle {
        /// Where they came from (a path or "settings").
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The TLS stack refused the configuration.
    #[error("cannot build the HTTP client: {reason}")]
    Client {
        /// What went wrong.
        reason: String,
    },
}

impl HttpSettings {
    /// Builds the client: HTTPS only, no redirects, these timeouts and roots.
    ///
    /// # Errors
    /// [`HttpSetupError`] when the roots or the TLS configuration are unusable.
    pub fn build_client(&self) -> Result<reqwest::Client, HttpSetupError> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("dual-auth-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &self.extra_root_certificates_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| HttpSetupError::InvalidCaBundle { origin: "settings".into(), reason: e.to_string() })?;
            if certificates.is_empty() {
                return Err(HttpSetupError::InvalidCaBundle { origin: "settings".into(), reason: "no certificate in the PEM".into() });
            }
            builder = builder.tls_certs_merge(certificates);
        }
        builder.build().map_err(|e| HttpSetupError::Client { reason: e.to_string() })
    }
}

/// A successful token-endpoint answer, before vendor defaults are applied.
#[derive(Clone)]
pub struct TokenGrant {
    /// `access_token`.
    pub access_token: SecretString,
    /// `token_type`, if sent.
    pub token_type: Option<String>,
    /// `expires_in`, if sent.
    pub expires_in: Option<u64>,
    /// `scope`, if sent.
    pub scope: Option<String>,
    /// RFC 8693 `issued_token_type`, if sent (only the access-token type gets this far).
    pub issued_token_type: Option<String>,
    /// The DPoP key the token is bound to, when DPoP was asked for and `token_type` is `DPoP`.
    pub dpop_key: Option<DpopKey>,
    /// The OpenID Connect `id_token`, if sent (an authorization code exchange): unverified
    /// here; a relying party verifies it (`dual_auth_verify::Verifier::verify_id_token`).
    pub id_token: Option<SecretString>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .field("dpop_key", &self.dpop_key)
            .field("id_token", &self.id_token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl TokenGrant {
    /// A [`TokenResponse`] with the upstream defaults: `token_type` `Bearer`, the vendor's
    /// `expires_in`, and the requested scopes when the server sends none; the DPoP key
    /// attached when the token is bound to it.
    pub fn into_token_response(self, default_expires_in: Duration, requested_scopes: &[String], issued_at: SystemTime) -> TokenResponse {
        use secrecy::ExposeSecret;
        let expires_in = self.expires_in.map_or(default_expires_in, Duration::from_secs);
        let scopes: Vec<String> = match &self.scope {
            Some(scope) => scope.split_whitespace().map(str::to_owned).collect(),
            None => requested_scopes.to_vec(),
        };
        let response = TokenResponse::new(
            self.access_token.expose_secret(),
            self.token_type.unwrap_or_else(|| "Bearer".into()),
            expires_in,
            issued_at,
        )
        .with_scopes(scopes);
        let response = match self.issued_token_type {
            Some(issued) => response.with_issued_token_type(issued),
            None => response,
        };
        match self.dpop_key {
            Some(key) => response.with_dpop_key(key),
            None => response,
        }
    }
}

/// DPoP (RFC 9449) for token requests: the key tokens are bound to, and whether a bearer
/// answer is accepted.
///
/// ```
/// use dual_auth_core::token_endpoint::{AdapterOptions, DpopSettings};
/// use dual_auth_core::{DpopKey, SigningAlgorithm};
///
/// let options = AdapterOptions::default().with_dpop(DpopSettings::new(DpopKey::generate(SigningAlgorithm::Es256)?));
/// assert!(options.dpop.as_ref().is_some_and(|d| !d.allow_downgrade));
/// # Ok::<(), dual_auth_core::KeyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DpopSettings {
    /// The key proofs are signed with and tokens are bound to (one per process, or one
    /// shared by replicas from PEM).
    pub key: DpopKey,
    /// Whether a `Bearer` answer to a DPoP request is accepted, with a warning
    /// (`DUAL_AUTH_DPOP_ALLOW_DOWNGRADE=true`), rather than refused with
    /// [`IamError::DpopDowngrade`].
    pub allow_downgrade: bool,
}

impl DpopSettings {
    /// DPoP with `key`, a bearer answer refused.
    pub fn new(key: DpopKey) -> Self {
        Self { key, allow_downgrade: false }
    }

    /// Sets whether a bearer answer is accepted.
    #[must_use]
    pub fn with_allow_downgrade(mut self, allow_downgrade: bool) -> Self {
        self.allow_downgrade = allow_downgrade;
        self
    }
}

/// A token endpoint's DPoP state: the settings, the clock for `iat`, the last nonce.
struct EndpointDpop {
    settings: DpopSettings,
    clock: Arc<dyn Clock>,
    nonce: Mutex<Option<String>>,
}

impl EndpointDpop {
    fn nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn remember(&self, nonce: String) {
        *self.nonce.lock().unwrap_or_else(PoisonError::into_inner) = Some(nonce);
    }
}

/// A vendor's token endpoint: where to POST, with which client and retry policy, and
/// DPoP when configured.
#[derive(Clone)]
pub struct TokenEndpoint {
    vendor: Vendor,
    url: HttpsUrl,
    client: reqwest::Client,
    retry: RetryPolicy,
    dpop: Option<Arc<EndpointDpop>>,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("vendor", &self.vendor)
            .field("url", &self.url.as_str())
            .field("retry", &self.retry)
            .field("dpop", &self.dpop.as_ref().map(|d| &d.settings))
            .finish()
    }
}

/// A `DPoP-Nonce` header's value, if it is a usable nonce (RFC 9449 §8: `1*NQCHAR`, here at
/// most [`MAX_DPOP_NONCE_CHARS`]).
pub fn dpop_nonce(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(DPOP_NONCE_HEADER)?.to_str().ok()?;
    let usable =
        !value.is_empty() && value.len() <= MAX_DPOP_NONCE_CHARS && value.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    usable.then(|| value.to_owned())
}

/// A proof as a header value (marked sensitive, so it stays out of debug output).
///
/// # Errors
/// [`crate::KeyError::Signing`] when signing fails.
pub fn dpop_header_value(
    key: &DpopKey,
    method: &str,
    url: &url::Url,
    access_token: Option<&str>,
    nonce: Option<&str>,
    now: SystemTime,
) -> Result<HeaderValue, crate::KeyError> {
    use secrecy::ExposeSecret;
    let proof = key.proof(method, url, access_token, nonce, now)?;
    let mut value = HeaderValue::from_str(proof.expose_secret()).map_err(|_| crate::KeyError::Signing {
        algorithm: key.algorithm().as_str().into(),
        reason: "the proof is not a valid header value".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl TokenEndpoint {
    /// A token endpoint at `url` (which must be `https://`), using `client` (reuse one).
    ///
    /// # Errors
    /// [`IamError::Configuration`] when the URL is not `https://` with a host and no
    /// credentials.
    pub fn new(vendor: Vendor, url: impl ToHttpsUrl, client: reqwest::Client, retry: RetryPolicy) -> Result<Self, IamError> {
        let url = url.to_https_url().map_err(|reason| IamError::Configuration { vendor, reason: format!("token URL {reason}") })?;
        Ok(Self { vendor, url, client, retry: RetryPolicy { max_attempts: retry.max_attempts.max(1), ..retry }, dpop: None })
    }

    /// The same endpoint with DPoP: every attempt carries a proof signed by `settings.key`
    /// with `iat` from `clock`, and tokens must come back DPoP-bound.
    #[must_use]
    pub fn with_dpop(mut self, settings: DpopSettings, clock: Arc<dyn Clock>) -> Self {
        self.dpop = Some(Arc::new(EndpointDpop { settings, clock, nonce: Mutex::new(None) }));
        self
    }

    /// The DPoP settings, when configured.
    pub fn dpop(&self) -> Option<&DpopSettings> {
        self.dpop.as_ref().map(|d| &d.settings)
    }

    /// The last `DPoP-Nonce` this endpoint handed out, put into the next proof.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.as_ref().and_then(|d| d.nonce())
    }

    /// The token endpoint URL.
    pub fn url(&self) -> &HttpsUrl {
        &self.url
    }

    /// The retry policy [`TokenEndpoint::request`] uses.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// POSTs the form that `make_form` builds, once per attempt, and parses the answer.
    ///
    /// `make_form` runs again before every retry, so each attempt carries a fresh client
    /// assertion and `jti` (and, with DPoP, a fresh proof). A `use_dpop_nonce` answer with
    /// a `DPoP-Nonce` is retried at once with that nonce, once, and is not counted as an
    /// attempt.
    ///
    /// # Errors
    /// The last failure as an [`IamError`]; after more than one attempt, wrapped in
    /// [`IamError::RetriesExhausted`].
    pub async fn request<F>(&self, make_form: F) -> Result<TokenGrant, IamError>
    where
        F: FnMut() -> Result<Vec<(&'static str, SecretString)>, IamError>,
    {
        self.request_with(self.retry, make_form).await
    }

    /// As [`TokenEndpoint::request`], with another retry policy (for example
    /// [`RetryPolicy::none`] for a single-use assertion).
    ///
    /// # Errors
    /// As [`TokenEndpoint::request`].
    pub async fn request_with<F>(&self, retry: RetryPolicy, mut make_form: F) -> Result<TokenGrant, IamError>
    where
        F: FnMut() -> Result<Vec<(&'static str, SecretString)>, IamError>,
    {
        let nonce_retried = AtomicBool::new(false);
        let run = retry
            .run(
                |attempt| {
                    let form = make_form();
                    let nonce_retried = &nonce_retried;
                    async move {
                        let form = match form {
                            Ok(form) => form,
                            Err(error) => return RetryDecision::Done(Err(AttemptError::Unsent(error))),
                        };
                        let outcome = self.send_once(&form).await;
                        drop(form);
                        let Failure { error, retry_after, nonce_asked } = match outcome {
                            Ok(grant) => return RetryDecision::Done(Ok(grant)),
                            Err(failure) => failure,
                        };
                        if nonce_asked && !nonce_retried.swap(true, Ordering::Relaxed) {
                            // RFC 9449 §8: the server wants its nonce in the proof; not a transient failure.
                            tracing::info!(event = "dpop_nonce_retry", vendor = %self.vendor, url = %self.url.for_logs(), attempt, "the token endpoint asked for a DPoP nonce; retrying with it");
                            return RetryDecision::Again;
                        }
                        if error.is_retryable() {
                            RetryDecision::Retry { outcome: Err(AttemptError::Sent(error)), retry_after }
                        } else {
                            RetryDecision::Done(Err(AttemptError::Sent(error)))
                        }
                    }
                },
                |outcome, attempt, delay| {
                    let status = match outcome {
                        Err(AttemptError::Sent(error) | AttemptError::Unsent(error)) => error.status(),
                        Ok(_) => None,
                    };
                    tracing::warn!(
                        event = "token_request_retry",
                        vendor = %self.vendor,
                        url = %self.url.for_logs(),
                        attempt,
                        status,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "token request failed transiently; retrying"
                    );
                },
            )
            .await;
        match run.outcome {
            Ok(grant) => Ok(grant),
            // A failure after a retry says how many attempts were made; one of building the
            // form (a signing failure) is not the endpoint's and is returned as it is.
            Err(AttemptError::Sent(error)) if run.attempts > 1 => {
                Err(IamError::RetriesExhausted { vendor: self.vendor, attempts: run.attempts, last: Box::new(error) })
            }
            Err(AttemptError::Sent(error) | AttemptError::Unsent(error)) => Err(error),
        }
    }

    async fn send_once(&self, form: &[(&'static str, SecretString)]) -> Result<TokenGrant, Failure> {
        use secrecy::ExposeSecret;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.expose_secret())).collect();
        let mut builder = self.client.post(self.url.as_url().clone()).header(ACCEPT, "application/json");
        if let Some(dpop) = &self.dpop {
            // A fresh proof (new jti, iat now) for every attempt, with the latest nonce.
            let nonce = dpop.nonce();
            let proof = dpop_header_value(&dpop.settings.key, "POST", &self.url, None, nonce.as_deref(), dpop.clock.now())
                .map_err(|source| Failure::from(IamError::DpopProof { vendor: self.vendor, source }))?;
            builder = builder.header(DPOP_HEADER, proof);
        }
        let response = builder.form(&pairs).send().await.map_err(|e| Failure::from(self.transport_error(e)))?;
        // A caller-supplied client may follow redirects, carrying the form and the proof to
        // another URL: its answer is not the token endpoint's.
        if response.url() != self.url.as_url() {
            return Err(Failure::from(IamError::InvalidResponse {
                vendor: self.vendor,
                status: response.status().as_u16(),
                reason:
                    "the answer came from another URL (a redirect was followed): give AdapterOptions a client with redirect::Policy::none()"
                        .into(),
            }));
        }
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers());
        let server_nonce = self.dpop.as_ref().and_then(|dpop| {
            let nonce = dpop_nonce(response.headers())?;
            dpop.remember(nonce);
            Some(())
        });
        // The body holds the access token: wiped when dropped. One too large to read whole
        // is unusable: a refused success, or (like a body that is not JSON) just the status.
        let body = match read_body(response, MAX_RESPONSE_BYTES).await {
            Ok(body) => Zeroizing::new(body),
            Err(BodyError::Read(e)) => return Err(self.transport_error(e).into()),
            Err(too_large @ BodyError::TooLarge { .. }) if (200..300).contains(&status) => {
                return Err(IamError::InvalidResponse { vendor: self.vendor, status, reason: too_large.to_string() }.into());
            }
            Err(_) => Zeroizing::new(Vec::new()),
        };
        if (200..300).contains(&status) {
            let grant = parse_grant(&body, self.dpop.is_some()).map_err(|problem| match problem {
                GrantProblem::Unusable(reason) => IamError::InvalidResponse { vendor: self.vendor, status, reason },
                GrantProblem::NotAnAccessToken(found) => IamError::NotAnAccessToken { vendor: self.vendor, found },
            });
            let mut grant = grant.map_err(Failure::from)?;
            let max_secs = crate::MAX_TOKEN_LIFETIME.as_secs();
            if let Some(expires_in_secs) = grant.expires_in
                && expires_in_secs > max_secs
            {
                return Err(IamError::LifetimeTooLong { vendor: self.vendor, expires_in_secs, max_secs }.into());
            }
            if let Some(dpop) = &self.dpop {
                self.check_binding(&mut grant, &dpop.settings)?;
            }
            return Ok(grant);
        }
        let error = match serde_json::from_slice::<Value>(&body) {
            // The body is the provider's (or whoever answers): cut and escaped before it can
            // reach a message, a log or a terminal.
            Ok(Value::Object(map)) if map.get("error").and_then(Value::as_str).is_some() => IamError::OAuth {
                vendor: self.vendor,
                status,
                error: truncate_untrusted(map.get("error").and_then(Value::as_str).unwrap_or_default(), crate::MAX_OAUTH_ERROR_CHARS),
                description: map
                    .get("error_description")
                    .and_then(Value::as_str)
                    .map(|d| truncate_untrusted(d, crate::MAX_OAUTH_DESCRIPTION_CHARS)),
            },
            _ => IamError::HttpStatus { vendor: self.vendor, status },
        };
        let nonce_asked = server_nonce.is_some() && matches!(status, 400 | 401) && error.oauth_error().is_some_and(|e| e == USE_DPOP_NONCE);
        let retry_after = if is_retryable_status(status) { retry_after } else { None };
        Err(Failure { error, retry_after, nonce_asked })
    }

    /// DPoP was asked for: a `DPoP` token gets the key attached; anything else is refused,
    /// or accepted with a warning when downgrades are allowed.
    fn check_binding(&self, grant: &mut TokenGrant, settings: &DpopSettings) -> Result<(), IamError> {
        if grant.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(DPOP_HEADER)) {
            grant.dpop_key = Some(settings.key.clone());
            return Ok(());
        }
        let found = grant.token_type.as_deref().map_or_else(|| "untyped".to_owned(), |t| truncate_untrusted(t, 40));
        if !settings.allow_downgrade {
            return Err(IamError::DpopDowngrade { vendor: self.vendor, found });
        }
        tracing::warn!(
            event = "dpop_downgrade_accepted",
            vendor = %self.vendor,
            url = %url_for_logs(&self.url),
            token_type = %found,
            "DPoP was asked for but the token endpoint issued a bearer token; accepted because DUAL_AUTH_DPOP_ALLOW_DOWNGRADE=true"
        );
        Ok(())
    }

    fn transport_error(&self, error: reqwest::Error) -> IamError {
        let (reason, timed_out) = transport_failure(&error);
        IamError::Transport { vendor: self.vendor, reason: reason.into(), timed_out, source: Some(Box::new(error.without_url())) }
    }
}

/// One attempt's failure: the error, the server's `Retry-After`, and whether it asked for
/// a DPoP nonce (and sent one).
struct Failure {
    error: IamError,
    retry_after: Option<Duration>,
    nonce_asked: bool,
}

impl From<IamError> for Failure {
    fn from(error: IamError) -> Self {
        Self { error, retry_after: None, nonce_asked: false }
    }
}

/// A failed attempt's error, and whether the request was sent (a failure to build the
/// form is not the endpoint's, and never counts as retries exhausted).
enum AttemptError {
    Sent(IamError),
    Unsent(IamError),
}

/// A URL without query or fragment, for logs (a query may carry what logs must not).
pub fn url_for_logs(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// What a request that got no answer ran into, in words for an error message, and whether
/// it timed out.
pub fn transport_failure(error: &reqwest::Error) -> (&'static str, bool) {
    if error.is_timeout() {
        ("timed out", true)
    } else if error.is_connect() {
        ("connection failed (refused, unreachable, or TLS handshake)", false)
    } else {
        ("request failed before an answer", false)
    }
}

/// A `Retry-After` in seconds, if the answer has one (an HTTP-date falls back to our own
/// backoff).
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Why a success answer cannot be used.
#[derive(Debug, PartialEq, Eq)]
enum GrantProblem {
    /// Not a token response.
    Unusable(String),
    /// A token response for something other than an access token.
    NotAnAccessToken(String),
}

impl From<String> for GrantProblem {
    fn from(reason: String) -> Self {
        Self::Unusable(reason)
    }
}

impl From<&str> for GrantProblem {
    fn from(reason: &str) -> Self {
        Self::Unusable(reason.to_owned())
    }
}

/// `dpop`: DPoP was asked for, so `token_type` `DPoP` is an access token too.
fn parse_grant(body: &[u8], dpop: bool) -> Result<TokenGrant, GrantProblem> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body is not a JSON object".into());
    };
    // RFC 8693 §2.2.1: `issued_token_type` says what `access_token` holds; `token_type`
    // `N_A` says it is no access token. Either way it must never become a bearer token.
    let issued_token_type = match map.get("issued_token_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t == crate::ACCESS_TOKEN_TYPE => Some(t.clone()),
        Some(Value::String(t)) => {
            return Err(GrantProblem::NotAnAccessToken(format!("issued_token_type {}", truncate_untrusted(t, 100))));
        }
        Some(_) => return Err("issued_token_type is not a string".into()),
    };
    if let Some(Value::String(t)) = map.get("token_type")
        && !(t.eq_ignore_ascii_case("bearer") || (dpop && t.eq_ignore_ascii_case(DPOP_HEADER)))
    {
        return Err(GrantProblem::NotAnAccessToken(format!("token_type {}", truncate_untrusted(t, 40))));
    }
    // Moved out, not copied: the only copy left is the secret, wiped when dropped.
    let access_token = match map.remove("access_token") {
        Some(Value::String(token)) if !token.is_empty() => SecretString::from(token),
        Some(Value::String(mut token)) => {
            token.zeroize();
            return Err("access_token is empty or not a string".into());
        }
        Some(_) => return Err("access_token is empty or not a string".into()),
        None => return Err("no access_token".into()),
    };
    let token_type = match map.get("token_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err("token_type is not a string".into()),
    };
    let expires_in = match map.get("expires_in") {
        None | Some(Value::Null) => None,
        // Some servers (older Microsoft endpoints) send it as a string.
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| "expires_in is not a whole number".to_owned())?),
        Some(Value::Number(n)) => Some(n.as_u64().ok_or("expires_in is not a whole non-negative number")?),
        Some(_) => return Err("expires_in is not a number".into()),
    };
    let scope = match map.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("scope is not a string".into()),
    };
    let id_token = match map.remove("id_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) if !token.is_empty() => Some(SecretString::from(token)),
        Some(Value::String(mut token)) => {
            token.zeroize();
            return Err("id_token is empty".into());
        }
        Some(_) => return Err("id_token is not a string".into()),
    };
    Ok(TokenGrant { access_token, token_type, expires_in, scope, issued_token_type, dpop_key: None, id_token })
}

/// What every vendor adapter takes besides its own configuration: HTTP settings (or a
/// client to reuse), a clock, and DPoP.
#[derive(Clone, Default)]
pub struct AdapterOptions {
    /// Timeouts, extra roots and retries (ignored for the client when `client` is set,
    /// except for the retry policy).
    pub http: HttpSettings,
    /// A client to reuse; one is built from `http` when absent.
    pub client: Option<reqwest::Client>,
    /// The clock for assertion times; the system clock when absent.
    pub clock: Option<Arc<dyn Clock>>,
    /// DPoP-bound tokens (RFC 9449), when set: every token request carries a proof and the
    /// token must come back bound to [`DpopSettings::key`]. Entra ID refuses it.
    pub dpop: Option<DpopSettings>,
}

impl fmt::Debug for AdapterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterOptions")
            .field("http", &self.http)
            .field("shared_client", &self.client.is_some())
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl AdapterOptions {
    /// Options with these HTTP settings.
    pub fn with_http(http: HttpSettings) -> Self {
        Self { http, ..Self::default() }
    }

    /// The same options with DPoP-bound tokens.
    #[must_use]
    pub fn with_dpop(mut self, dpop: DpopSettings) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// The token endpoint at `url` (with DPoP when set) and the clock, for an adapter of
    /// `vendor`.
    ///
    /// # Errors
    /// [`IamError::Configuration`] for a non-HTTPS URL or an unusable HTTP setting.
    pub fn endpoint(&self, vendor: Vendor, url: impl ToHttpsUrl) -> Result<(TokenEndpoint, Arc<dyn Clock>), IamError> {
        let client = match &self.client {
            Some(client) => client.clone(),
            None => self.http.build_client().map_err(|e| IamError::Configuration { vendor, reason: e.to_string() })?,
        };
        let endpoint = TokenEndpoint::new(vendor, url, client, self.http.retry)?;
        let clock = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let endpoint = match &self.dpop {
            Some(dpop) => endpoint.with_dpop(dpop.clone(), Arc::clone(&clock)),
            None => endpoint,
        };
        Ok((endpoint, clock))
    }
}

/// The form fields of RFC 7523 client authentication.
pub fn client_assertion_fields(assertion: SecretString) -> [(&'static str, SecretString); 2] {
    [("client_assertion_type", SecretString::from(crate::CLIENT_ASSERTION_TYPE)), ("client_assertion", assertion)]
}

/// A form field with a public value.
pub fn field(name: &'static str, value: impl Into<String>) -> (&'static str, SecretString) {
    (name, SecretString::from(value.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_grant_plain(body: &[u8]) -> Result<TokenGrant, GrantProblem> {
        parse_grant(body, false)
    }

    #[test]
    fn dpop_tokens_are_access_tokens_only_when_dpop_was_asked() {
        let body = br#"{"access_token":"t","token_type":"DPoP"}"#;
        assert_eq!(parse_grant(body, false).unwrap_err(), GrantProblem::NotAnAccessToken("token_type DPoP".into()));
        assert_eq!(parse_grant(body, true).unwrap().token_type.as_deref(), Some("DPoP"));
        assert_eq!(parse_grant(br#"{"access_token":"t","token_type":"dpop"}"#, true).unwrap().token_type.as_deref(), Some("dpop"));
        assert!(
            parse_grant(br#"{"access_token":"t","token_type":"Bearer"}"#, true).is_ok(),
            "refused later, unless downgrades are allowed"
        );
        assert_eq!(
            parse_grant(br#"{"access_token":"t","token_type":"N_A"}"#, true).unwrap_err(),
            GrantProblem::NotAnAccessToken("token_type N_A".into())
        );
    }

    #[test]
    fn an_id_token_is_kept_apart_and_redacted() {
        use secrecy::ExposeSecret;
        let grant = parse_grant_plain(br#"{"access_token":"t","token_type":"Bearer","id_token":"h.c.s"}"#).unwrap();
        assert_eq!(grant.id_token.as_ref().map(|t| t.expose_secret().to_owned()).as_deref(), Some("h.c.s"));
        assert!(!format!("{grant:?}").contains("h.c.s"), "{grant:?}");
        assert!(parse_grant_plain(br#"{"access_token":"t"}"#).unwrap().id_token.is_none());
        assert_eq!(
            parse_grant_plain(br#"{"access_token":"t","id_token":""}"#).unwrap_err(),
            GrantProblem::Unusable("id_token is empty".into())
        );
        assert_eq!(
            parse_grant_plain(br#"{"access_token":"t","id_token":7}"#).unwrap_err(),
            GrantProblem::Unusable("id_token is not a string".into())
        );
    }

    #[test]
    fn only_nqchar_nonces_are_taken() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(DPOP_NONCE_HEADER, HeaderValue::from_str(value).unwrap());
            map
        };
        assert_eq!(dpop_nonce(&headers("eyJ7S_zG.9Qt-n~")).as_deref(), Some("eyJ7S_zG.9Qt-n~"));
        assert_eq!(dpop_nonce(&headers("with space")), None);
        assert_eq!(dpop_nonce(&headers("quote\"d")), None);
        assert_eq!(dpop_nonce(&headers(&"n".repeat(MAX_DPOP_NONCE_CHARS + 1))), None);
        assert_eq!(dpop_nonce(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.delay(2, None).unwrap();
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1), "{first:?}");
            let second = policy.delay(3, None).unwrap();
            assert!(second >= Duration::from_secs(1) && second <= Duration::from_secs(2), "{second:?}");
            let capped = policy.delay(6, None).unwrap();
            assert!(capped >= Duration::from_millis(1500) && capped <= Duration::from_secs(3), "{capped:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_limit() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(2, Some(Duration::from_secs(7))), Some(Duration::from_secs(7)));
        assert_eq!(policy.delay(2, Some(Duration::from_secs(31))), None);
    }

    #[test]
    fn grants_are_parsed_strictly() {
        let g = parse_grant_plain(br#"{"access_token":"t","token_type":"Bearer","expires_in":"3599","scope":"a b"}"#).unwrap();
        assert_eq!((g.token_type.as_deref(), g.expires_in, g.scope.as_deref()), (Some("Bearer"), Some(3599), Some("a b")));
        assert_eq!(parse_grant_plain(b"<html>").unwrap_err(), "the body is not a JSON object".into());
        assert_eq!(parse_grant_plain(br#"{"token_type":"Bearer"}"#).unwrap_err(), "no access_token".into());
        assert_eq!(parse_grant_plain(br#"{"access_token":""}"#).unwrap_err(), "access_token is empty or not a string".into());
        assert!(parse_grant_plain(br#"{"access_token":"t","expires_in":-1}"#).is_err());
    }

    #[test]
    fn only_access_tokens_are_taken() {
        let g = parse_grant_plain(
            br#"{"access_token":"t","token_type":"bearer","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
        )
        .unwrap();
        assert_eq!(g.issued_token_type.as_deref(), Some(crate::ACCESS_TOKEN_TYPE));
        assert_eq!(
            parse_grant_plain(
                br#"{"access_token":"t","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"N_A"}"#
            )
            .unwrap_err(),
            GrantProblem::NotAnAccessToken("issued_token_type urn:ietf:params:oauth:token-type:id_token".into())
        );
        assert_eq!(
            parse_grant_plain(br#"{"access_token":"t","token_type":"N_A"}"#).unwrap_err(),
            GrantProblem::NotAnAccessToken("token_type N_A".into())
        );
        assert_eq!(
            parse_grant_plain(br#"{"access_token":"t","issued_token_type":7}"#).unwrap_err(),
            "issued_token_type is not a string".into()
        );
    }

    #[test]
    fn defaults_apply_when_fields_are_absent() {
        let g = parse_grant_plain(br#"{"access_token":"t"}"#).unwrap();
        let issued = SystemTime::UNIX_EPOCH;
        let r = g.into_token_response(Duration::from_secs(86_400), &["read".into(), "write".into()], issued);
        assert_eq!(r.token_type(), "Bearer");
        assert_eq!(r.expires_in(), Duration::from_secs(86_400));
        assert_eq!(r.scopes(), ["read", "write"]);
    }
}
