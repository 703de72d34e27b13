//! # dual-auth-api
//!
//! Calling APIs with a dual-subject [`TokenResponse`]: `Authorization: Bearer <token>`,
//! plus `X-Act-Assertion` when the token response has an act assertion source (Entra ID),
//! signed afresh for every request sent, retries and redirects included.
//!
//! A DPoP-bound token (RFC 9449, [`TokenResponse::is_dpop_bound`]) goes as
//! `Authorization: DPoP <token>` with a `DPoP` proof (`htm` the method, `htu` the URL
//! without query, `ath` the token's hash) signed afresh for every request sent, each retry
//! and redirect hop included. A `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"`
//! and a `DPoP-Nonce` is retried once with that nonce; the latest nonce of each origin is
//! put into later proofs to it.
//!
//! - HTTPS only: an `http://` URL is refused, and a redirect is never followed to
//!   `http://`. Credentials are never sent to another origin: after a cross-origin
//!   redirect the request continues without `Authorization` and `X-Act-Assertion`, and
//!   of the caller's own headers only [`CROSS_ORIGIN_HEADERS`] (no `Cookie`, no API keys).
//! - Retries for 429, 500, 502, 503, 504 and connection failures, with backoff and
//!   `Retry-After`, for idempotent methods only unless the request opts in.
//! - 4xx and 5xx are answers, returned as [`ApiResponse`]; only transport failures are errors.
//!
//! ```no_run
//! use dual_auth_api::{ApiClient, ApiRequest};
//! # async fn run(token: dual_auth_core::TokenResponse) -> Result<(), Box<dyn std::error::Error>> {
//! let client = ApiClient::new(dual_auth_api::default_api_settings())?;
//! let response = client
//!     .call_api(&token, ApiRequest::get("https://api.example.com/finance/report/Q4-2025").query("format", "json"))
//!     .await?;
//! if response.is_success() {
//!     let report: serde_json::Value = response.json()?;
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use dual_auth_core::http::{BodyError, HttpsUrl, read_body};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::secrecy::zeroize::Zeroizing;
use dual_auth_core::token_endpoint::{
    HttpSettings, HttpSetupError, RetryDecision, RetryPolicy, dpop_header_value, dpop_nonce, is_retryable_status, parse_retry_after,
    transport_failure, url_for_logs,
};
use dual_auth_core::{ACT_ASSERTION_HEADER, BoxError, DPOP_HEADER, TokenResponse, USE_DPOP_NONCE};
pub use reqwest::Method;
use reqwest::header::{
    ACCEPT, ACCEPT_LANGUAGE, AUTHORIZATION, CONTENT_LANGUAGE, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, USER_AGENT,
    WWW_AUTHENTICATE,
};
use serde_json::Value;

/// The guide's name for the client, in an application's process.
pub type InSessionAPICall = ApiClient;
/// The guide's name for the client, in a remote agent.
pub type OutOfSessionAPICall = ApiClient;

/// The most redirects followed for one call.
pub const MAX_REDIRECTS: usize = 5;
/// The largest response body read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// The most origins whose latest `DPoP-Nonce` a client remembers (beyond it, it forgets
/// them all and each server asks again).
pub const MAX_DPOP_NONCE_ORIGINS: usize = 256;

/// An API call failed before an answer came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The URL is not `https://` with a host.
    #[error("API URL must use HTTPS: {reason}")]
    InsecureUrl {
        /// What is wrong.
        reason: String,
    },
    /// The request cannot be built (a bad header name or value, a body that is not JSON).
    #[error("invalid API request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// A redirect pointed somewhere we do not follow (for example `http://`).
    #[error("redirect refused: {reason}")]
    RedirectRefused {
        /// Why.
        reason: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {max} redirects")]
    TooManyRedirects {
        /// The limit.
        max: usize,
    },
    /// The answer's body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("response body larger than {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("API call to {url} failed: {reason}")]
    Transport {
        /// The URL without query.
        url: String,
        /// What went wrong.
        reason: String,
        /// Whether it timed out.
        timed_out: bool,
        /// The cause.
        #[source]
        source: Option<BoxError>,
    },
    /// The act assertion for the request could not be signed.
    #[error("the act assertion for the request could not be signed")]
    ActAssertion(#[source] dual_auth_core::IamError),
    /// The DPoP proof for the request could not be signed.
    #[error("the DPoP proof for the request could not be signed")]
    DpopProof(#[source] dual_auth_core::KeyError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Setup(#[from] HttpSetupError),
}

impl ApiError {
    /// Whether the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { timed_out: true, .. })
    }
}

/// One API call.
#[derive(Debug, Clone)]
#[must_use]
pub struct ApiRequest {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    json: Option<Value>,
    headers: Vec<(String, String)>,
    retry_non_idempotent: bool,
}

impl ApiRequest {
    /// A request with `method` to `url`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self { method, url: url.into(), query: Vec::new(), json: None, headers: Vec::new(), retry_non_idempotent: false }
    }

    /// A `GET`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    /// A `POST`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::POST, url)
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sends `body` as JSON (`Content-Type: application/json`).
    pub fn json(mut self, body: Value) -> Self {
        self.json = Some(body);
        self
    }

    /// Adds a header (not `Authorization`, `X-Act-Assertion` or `DPoP`, which come from the
    /// token).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Retries this request on transient failures even if its method is not idempotent
    /// (only when the API de-duplicates, for example by an idempotency key).
    pub fn retry_non_idempotent(mut self) -> Self {
        self.retry_non_idempotent = true;
        self
    }

    fn may_retry(&self) -> bool {
        self.retry_non_idempotent
            || matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
    }
}

/// An API's answer, whatever its status.
#[derive(Clone)]
pub struct ApiResponse {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    url: url::Url,
}

impl fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("url", &self.url.as_str())
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl ApiResponse {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON.
    ///
    /// # Errors
    /// When it is not JSON of that shape.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
    /// The URL that answered (after redirects).
    pub fn url(&self) -> &url::Url {
        &self.url
    }
}

/// The API client: one `reqwest::Client`, reused (clones share it and the DPoP nonces).
#[derive(Debug, Clone)]
pub struct ApiClient {
    client: reqwest::Client,
    retry: RetryPolicy,
    nonces: Arc<Mutex<HashMap<String, String>>>,
}

/// The API client's defaults: 30 s per request (the guide's), retries as for tokens.
pub fn default_api_settings() -> HttpSettings {
    HttpSettings { timeout: Duration::from_secs(30), ..HttpSettings::default() }
}

impl ApiClient {
    /// A client with these settings (HTTPS only, redirects handled here).
    ///
    /// # Errors
    /// [`ApiError::Setup`] when the roots or TLS settings are unusable.
    pub fn new(settings: HttpSettings) -> Result<Self, ApiError> {
        Ok(Self { client: settings.build_client()?, retry: settings.retry, nonces: Arc::default() })
    }

    /// The latest `DPoP-Nonce` the origin of `url` handed out, if any.
    pub fn dpop_nonce_for(&self, url: &url::Url) -> Option<String> {
        self.lock_nonces().get(&url.origin().ascii_serialization()).cloned()
    }

    fn remember_nonce(&self, url: &url::Url, nonce: String) {
        let mut nonces = self.lock_nonces();
        if nonces.len() >= MAX_DPOP_NONCE_ORIGINS {
            nonces.clear();
        }
        nonces.insert(url.origin().ascii_serialization(), nonce);
    }

    fn lock_nonces(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the API with `token`.
    ///
    /// # Errors
    /// [`ApiError`] for a non-HTTPS URL, a refused redirect, or a transport failure after
    /// the allowed retries. A 4xx or 5xx answer is not an error.
    pub async fn call_api(&self, token: &TokenResponse, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let url = HttpsUrl::parse(&request.url)
            .map_err(|e| ApiError::InsecureUrl { reason: e.to_string() })?
            .with_query_pairs(request.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut extra = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ApiError::InvalidRequest { reason: format!("bad header name {name:?}") })?;
            if name == AUTHORIZATION
                || name.as_str().eq_ignore_ascii_case(ACT_ASSERTION_HEADER)
                || name.as_str().eq_ignore_ascii_case(DPOP_HEADER)
            {
                return Err(ApiError::InvalidRequest { reason: format!("{name} comes from the token; do not set it by hand") });
            }
            let value =
                HeaderValue::from_str(value).map_err(|_| ApiError::InvalidRequest { reason: format!("bad value for header {name}") })?;
            extra.append(name, value);
        }
        // RFC 9449 §7.1: a bound token goes under the DPoP scheme, never as a bearer token;
        // one whose key is missing is not sent at all.
        if token.is_dpop_token_type() && !token.is_dpop_bound() {
            return Err(ApiError::InvalidRequest {
                reason: "the token is DPoP-bound but its DPoP key is missing: get it from the adapter that holds the key".into(),
            });
        }
        let scheme = if token.is_dpop_bound() { DPOP_HEADER } else { "Bearer" };
        let text = Zeroizing::new(format!("{scheme} {}", token.access_token().expose_secret()));
        let bearer = HeaderValue::from_str(&text)
            .map_err(|_| ApiError::InvalidRequest { reason: "the access token is not a valid header value".into() })?;
        let bearer = mark_sensitive(bearer);
        let may_retry = request.may_retry();
        // One DPoP nonce retry per call, whatever the attempt.
        let nonce_retried = AtomicBool::new(false);
        let (method, json) = (&request.method, request.json.as_ref());
        let run = self
            .retry
            .run(
                |_| {
                    let hop = Hop { token, authorization: &bearer, extra: &extra, nonce_retried: &nonce_retried };
                    let url = url.as_url().clone();
                    async move {
                        let outcome = self.send_following_redirects(method, url, hop, json).await;
                        let retry_after = match &outcome {
                            Ok(response) if is_retryable_status(response.status) => Some(parse_retry_after(&response.headers)),
                            Err(ApiError::Transport { .. }) => Some(None),
                            _ => None,
                        };
                        match retry_after {
                            Some(retry_after) if may_retry => RetryDecision::Retry { outcome, retry_after },
                            _ => RetryDecision::Done(outcome),
                        }
                    }
                },
                |_, attempt, delay| {
                    tracing::warn!(event = "api_call_retry", method = %request.method, url = %url.for_logs(), attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                },
            )
            .await;
        if let Ok(response) = &run.outcome {
            tracing::info!(event = "api_call", method = %request.method, url = %url.for_logs(), status = response.status, attempt = run.attempts);
        }
        run.outcome
    }

    async fn send_following_redirects(
        &self,
        method: &Method,
        start: url::Url,
        hop: Hop<'_>,
        json: Option<&Value>,
    ) -> Result<ApiResponse, ApiError> {
        let Hop { token, authorization, extra, nonce_retried } = hop;
        let origin = start.origin();
        let mut url = start;
        let mut method = method.clone();
        let mut json = json;
        let mut send_credentials = true;
        for _ in 0..=MAX_REDIRECTS {
            let response = loop {
                let headers = if send_credentials { extra.clone() } else { harmless_headers(extra) };
                let mut builder = self.client.request(method.clone(), url.clone()).headers(headers);
                if send_credentials {
                    builder = builder.headers(self.credentials(token, authorization, &method, &url)?);
                }
                if let Some(body) = json {
                    builder = builder.json(body);
                }
                let response = builder.send().await.map_err(|e| transport_error(&url, e))?;
                if !(send_credentials && token.is_dpop_bound()) {
                    break response;
                }
                // The latest nonce of this origin goes into its next proofs (RFC 9449 §8.2, §9).
                let nonce = dpop_nonce(response.headers());
                if let Some(nonce) = &nonce {
                    self.remember_nonce(&url, nonce.clone());
                }
                let retry_with_nonce = response.status() == reqwest::StatusCode::UNAUTHORIZED
                    && nonce.is_some()
                    && !nonce_retried.load(Ordering::Relaxed)
                    && asks_for_dpop_nonce(response.headers());
                if !retry_with_nonce {
                    break response;
                }
                nonce_retried.store(true, Ordering::Relaxed);
                tracing::info!(event = "api_dpop_nonce_retry", method = %method, url = %url_for_logs(&url), "the API asked for a DPoP nonce; retrying with it");
            };
            let status = response.status();
            if !status.is_redirection() || response.headers().get(LOCATION).is_none() {
                let headers = response.headers().clone();
                let final_url = response.url().clone();
                let body = read_body(response, MAX_RESPONSE_BYTES).await.map_err(|e| match e {
                    BodyError::Read(e) => transport_error(&url, e),
                    _ => ApiError::BodyTooLarge { max: MAX_RESPONSE_BYTES },
                })?;
                return Ok(ApiResponse { status: status.as_u16(), headers, body, url: final_url });
            }
            let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let next = url.join(location).map_err(|_| ApiError::RedirectRefused { reason: "the Location header is not a URL".into() })?;
            // The same rules as for the caller's URL: https, a host, no credentials.
            let next = HttpsUrl::from_url(next).map_err(|e| ApiError::RedirectRefused { reason: format!("the target {e}") })?.into_url();
            if next.origin() != origin && send_credentials {
                // Credentials are for the origin the caller named; once the request leaves
                // it, they stay behind for every later hop.
                send_credentials = false;
                tracing::warn!(event = "api_redirect_cross_origin", from = %url_for_logs(&url), to = %url_for_logs(&next), "redirected to another origin: only harmless headers sent (no Authorization, X-Act-Assertion, cookies or keys)");
            }
            if status == reqwest::StatusCode::SEE_OTHER || (matches!(status.as_u16(), 301 | 302) && method == Method::POST) {
                method = Method::GET;
                json = None;
            }
            url = next;
        }
        Err(ApiError::TooManyRedirects { max: MAX_REDIRECTS })
    }
}

/// What every request of one call carries: the token, its `Authorization` value, the
/// caller's headers, and whether the call has used its one DPoP nonce retry.
struct Hop<'a> {
    token: &'a TokenResponse,
    authorization: &'a HeaderValue,
    extra: &'a HeaderMap,
    nonce_retried: &'a AtomicBool,
}

impl ApiClient {
    /// `Authorization`, a freshly signed `X-Act-Assertion` when the token has a source (the
    /// API records each assertion's `jti`, so every request sent, each retry and redirect
    /// hop, carries its own), and for a DPoP-bound token a fresh proof for `method` and
    /// `url` with the token's hash and the origin's latest nonce.
    fn credentials(
        &self,
        token: &TokenResponse,
        authorization: &HeaderValue,
        method: &Method,
        url: &url::Url,
    ) -> Result<HeaderMap, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization.clone());
        if let Some(assertion) = token.new_act_assertion().map_err(ApiError::ActAssertion)? {
            let value = HeaderValue::from_str(assertion.expose_secret())
                .map_err(|_| ApiError::InvalidRequest { reason: "the act assertion is not a valid header value".into() })?;
            headers.insert(HeaderName::from_static("x-act-assertion"), mark_sensitive(value));
        }
        if let Some(key) = token.dpop_key() {
            let nonce = self.dpop_nonce_for(url);
            let proof = dpop_header_value(
                key,
                method.as_str(),
                url,
                Some(token.access_token().expose_secret()),
                nonce.as_deref(),
                SystemTime::now(),
            )
            .map_err(ApiError::DpopProof)?;
            headers.insert(HeaderName::from_static("dpop"), proof);
        }
        Ok(headers)
    }
}

/// Whether a `WWW-Authenticate` challenge of the `DPoP` scheme has `error` =
/// `use_dpop_nonce` (RFC 9449 §9).
pub fn asks_for_dpop_nonce(headers: &HeaderMap) -> bool {
    headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        challenges(value).into_iter().any(|(scheme, params)| {
            scheme.eq_ignore_ascii_case(DPOP_HEADER)
                && params.iter().any(|(name, value)| name.eq_ignore_ascii_case("error") && value == USE_DPOP_NONCE)
        })
    })
}

/// A `WWW-Authenticate` value's challenges: each scheme with its `name=value` parameters
/// (quotes and escapes removed). A `token68` or malformed part is skipped.
fn challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    // Split at commas outside quoted strings.
    let mut items = Vec::new();
    let (mut current, mut quoted, mut escaped) = (String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let param = |text: &str| {
            let (name, value) = text.split_once('=')?;
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            Some((name.trim().to_owned(), value.to_owned()))
        };
        let first = item.split_whitespace().next().unwrap_or_default();
        if !first.contains('=') {
            // A new challenge: the scheme, then perhaps its first parameter.
            let rest = item[first.len()..].trim();
            out.push((first.to_owned(), param(rest).into_iter().collect()));
        } else if let (Some(last), Some(param)) = (out.last_mut(), param(item)) {
            last.1.push(param);
        }
    }
    out
}

/// The caller's headers that may follow a redirect to another origin: those that describe
/// the request and carry nothing a third party could use (`Cookie`, `X-Api-Key` and any
/// header not listed here stay behind).
pub const CROSS_ORIGIN_HEADERS: [HeaderName; 5] = [ACCEPT, ACCEPT_LANGUAGE, CONTENT_LANGUAGE, CONTENT_TYPE, USER_AGENT];

fn harmless_headers(extra: &HeaderMap) -> HeaderMap {
    extra.iter().filter(|(name, _)| CROSS_ORIGIN_HEADERS.contains(name)).map(|(name, value)| (name.clone(), value.clone())).collect()
}

fn mark_sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

fn transport_error(url: &url::Url, error: reqwest::Error) -> ApiError {
    let (reason, timed_out) = transport_failure(&error);
    ApiError::Transport { url: url_for_logs(url), reason: reason.into(), timed_out, source: Some(Box::new(error.without_url())) }
}
