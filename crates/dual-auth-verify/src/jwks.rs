//! Keys from an issuer's JWKS: fetched over HTTPS, cached as `Cache-Control` says,
//! refreshed once on an unknown `kid` (rate limited), one fetch at a time, and the last
//! good keys kept while the issuer is briefly unreachable.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dual_auth_core::http::{BodyError, HttpsUrl, read_body};
use dual_auth_core::jwt::{JwtError, JwtHeader, KeyResolver, StaticKeys, select_by_kid};
use dual_auth_core::token_endpoint::{transport_failure, url_for_logs};
use dual_auth_core::{Clock, VerifyingKey};
use serde_json::Value;

use crate::error::VerifyError;

/// How keys are cached. The defaults suit most issuers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksCachePolicy {
    /// Freshness when the issuer sends no `Cache-Control: max-age` (default 5 minutes).
    pub default_ttl: Duration,
    /// The shortest freshness honoured, whatever the issuer says (default 60 s): keeps a
    /// `no-cache` issuer from being fetched on every request.
    pub min_ttl: Duration,
    /// The longest freshness honoured (default 24 h), so key revocation is seen within a day.
    pub max_ttl: Duration,
    /// The least time between two refreshes caused by an unknown `kid` (default 30 s):
    /// tokens with made-up `kid`s cannot make us hammer the issuer.
    pub unknown_kid_cooldown: Duration,
    /// How long past freshness the last good keys are still used when a refresh fails
    /// (default 1 h). Longer rides out longer outages but delays key revocation.
    pub max_stale: Duration,
    /// After a failed fetch, how long to wait before trying again (default 10 s): during
    /// an outage requests are served from cache (or refused) at once, not each held up by
    /// a fetch that times out.
    pub failure_backoff: Duration,
    /// The largest JWKS document read (default 256 KiB).
    pub max_document_bytes: usize,
}

impl Default for JwksCachePolicy {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
            failure_backoff: Duration::from_secs(10),
            max_document_bytes: 256 * 1024,
        }
    }
}

impl JwksCachePolicy {
    /// Sets [`JwksCachePolicy::default_ttl`].
    #[must_use]
    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// Sets [`JwksCachePolicy::min_ttl`] and [`JwksCachePolicy::max_ttl`].
    #[must_use]
    pub fn with_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }

    /// Sets [`JwksCachePolicy::unknown_kid_cooldown`].
    #[must_use]
    pub fn with_unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.unknown_kid_cooldown = cooldown;
        self
    }

    /// Sets [`JwksCachePolicy::max_stale`].
    #[must_use]
    pub fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Sets [`JwksCachePolicy::failure_backoff`].
    #[must_use]
    pub fn with_failure_backoff(mut self, backoff: Duration) -> Self {
        self.failure_backoff = backoff;
        self
    }

    /// Sets [`JwksCachePolicy::max_document_bytes`].
    #[must_use]
    pub fn with_max_document_bytes(mut self, max: usize) -> Self {
        self.max_document_bytes = max;
        self
    }

    pub(crate) fn check(&self) -> Result<(), VerifyError> {
        let bad = |reason: &str| Err(VerifyError::Configuration { setting: "jwks cache policy", reason: reason.into() });
        if self.min_ttl.is_zero() || self.min_ttl > self.max_ttl {
            return bad("need 0 < min_ttl <= max_ttl");
        }
        if self.default_ttl < self.min_ttl || self.default_ttl > self.max_ttl {
            return bad("default_ttl must lie between min_ttl and max_ttl");
        }
        if self.max_document_bytes < 64 {
            return bad("max_document_bytes must be at least 64");
        }
        if [self.max_ttl, self.max_stale, self.failure_backoff].iter().any(|d| *d > MAX_CACHE_DURATION) {
            return bad("max_ttl, max_stale and failure_backoff must each be at most 7 days");
        }
        Ok(())
    }
}

/// The longest any JWKS cache duration may be set to: a server's `max-age` is clamped to
/// `max_ttl`, so this also bounds what a key server can make us compute.
pub const MAX_CACHE_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `now + duration`, or `now` (stale at once) past the clock's range.
fn later(now: SystemTime, duration: Duration) -> SystemTime {
    now.checked_add(duration).unwrap_or(now)
}

/// The keys of one fetch.
struct Snapshot {
    keys: Vec<VerifyingKey>,
    fetched_at: SystemTime,
    /// Until when no refresh is tried (pushed back by a failed refresh).
    fresh_until: SystemTime,
    /// Until when the keys may serve when refreshing fails.
    usable_until: SystemTime,
}

#[derive(Default)]
struct State {
    snapshot: Option<Arc<Snapshot>>,
    /// Bumped by every fetch attempt, so a caller that waited for the lock knows whether
    /// someone else fetched meanwhile.
    generation: u64,
    last_unknown_kid_refresh: Option<SystemTime>,
    /// The last failed fetch on a cold cache: when, and why.
    last_failure: Option<(SystemTime, String)>,
    /// The JWKS URL found by discovery.
    discovered_jwks_url: Option<HttpsUrl>,
}

/// Where an issuer's keys come from.
#[derive(Clone)]
pub(crate) enum KeySource {
    /// Fixed keys (no network).
    Static(StaticKeys),
    /// A JWKS URL.
    JwksUrl(HttpsUrl),
    /// OIDC discovery: `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery,
}

/// The keys of one issuer.
pub(crate) struct IssuerKeys {
    issuer: String,
    source: KeySource,
    policy: JwksCachePolicy,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            KeySource::Static(keys) => format!("{} static keys", keys.keys().len()),
            KeySource::JwksUrl(url) => url.for_logs(),
            KeySource::Discovery => "OIDC discovery".into(),
        };
        f.debug_struct("IssuerKeys").field("issuer", &self.issuer).field("source", &source).finish_non_exhaustive()
    }
}

impl IssuerKeys {
    pub(crate) fn new(issuer: String, source: KeySource, policy: JwksCachePolicy, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self { issuer, source, policy, http, clock, state: Mutex::new(State::default()), refresh: tokio::sync::Mutex::new(()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unavailable(&self, reason: String) -> JwtError {
        JwtError::KeysUnavailable { keys: self.issuer.clone(), reason }
    }
}

/// The keys that may have signed a token: fixed ones, or the issuer's JWKS as cached,
/// refreshed once for an unknown `kid`.
#[async_trait]
impl KeyResolver for IssuerKeys {
    async fn resolve(&self, header: &JwtHeader) -> Result<Vec<VerifyingKey>, JwtError> {
        let kid = header.kid();
        if let KeySource::Static(keys) = &self.source {
            return keys.resolve(header).await;
        }
        let unknown = |detail: &'static str| Err(JwtError::UnknownKey { kid: kid.map(str::to_owned), detail });
        let now = self.clock.now();
        let (snapshot, generation) = {
            let state = self.state();
            (state.snapshot.clone(), state.generation)
        };
        let snapshot = match snapshot {
            Some(snapshot) if now < snapshot.fresh_until => snapshot,
            _ => self.refresh(generation, false).await?,
        };
        let found = matching(&snapshot.keys, kid);
        if !found.is_empty() {
            return Ok(found);
        }
        // Unknown kid: the issuer may have rotated. Refresh once, unless one did lately.
        let recently = {
            let state = self.state();
            state.last_unknown_kid_refresh.is_some_and(|at| now.duration_since(at).unwrap_or_default() < self.policy.unknown_kid_cooldown)
        };
        if snapshot.fetched_at >= now {
            return unknown("its keys were just fetched");
        }
        if recently {
            return unknown("not refreshed: an unknown kid refreshed them moments ago");
        }
        let generation = {
            let mut state = self.state();
            state.last_unknown_kid_refresh = Some(now);
            state.generation
        };
        let snapshot = self.refresh(generation, true).await?;
        let found = matching(&snapshot.keys, kid);
        if found.is_empty() { unknown("its keys were refreshed for it") } else { Ok(found) }
    }
}

impl IssuerKeys {
    /// Fetches the keys unless another task fetched since `seen_generation` (single flight).
    /// On failure keeps serving the last good keys up to `max_stale` past their freshness.
    async fn refresh(&self, seen_generation: u64, forced: bool) -> Result<Arc<Snapshot>, JwtError> {
        let _turn = self.refresh.lock().await;
        let now = self.clock.now();
        {
            // Another task fetched (or tried) while this one waited: use its keys if they
            // may still serve; keys past the stale limit never do.
            let state = self.state();
            if state.generation != seen_generation
                && let Some(snapshot) = &state.snapshot
                && now < snapshot.usable_until
            {
                return Ok(Arc::clone(snapshot));
            }
        }
        if let Some((at, reason)) = &self.state().last_failure
            && now.duration_since(*at).unwrap_or_default() < self.policy.failure_backoff
        {
            return Err(self.unavailable(format!("{reason} (retrying shortly)")));
        }
        let result = self.fetch().await;
        let now = self.clock.now();
        let mut state = self.state();
        state.generation += 1;
        match result {
            Ok((keys, ttl)) => {
                tracing::info!(event = "jwks_refreshed", issuer = %self.issuer, keys = keys.len(), ttl_seconds = ttl.as_secs(), forced, "issuer keys fetched");
                let fresh_until = later(now, ttl);
                let snapshot =
                    Arc::new(Snapshot { keys, fetched_at: now, fresh_until, usable_until: later(fresh_until, self.policy.max_stale) });
                state.snapshot = Some(Arc::clone(&snapshot));
                state.last_failure = None;
                Ok(snapshot)
            }
            Err(reason) => match state.snapshot.clone() {
                Some(snapshot) if now < snapshot.usable_until => {
                    tracing::warn!(event = "jwks_refresh_failed", issuer = %self.issuer, reason = %reason, "issuer keys could not be refreshed: serving the last good keys");
                    // Try again after the backoff, not on every request.
                    let retry_at = later(now, self.policy.failure_backoff).min(snapshot.usable_until);
                    let held = Arc::new(Snapshot {
                        keys: snapshot.keys.clone(),
                        fetched_at: snapshot.fetched_at,
                        fresh_until: retry_at,
                        usable_until: snapshot.usable_until,
                    });
                    state.snapshot = Some(Arc::clone(&held));
                    Ok(held)
                }
                Some(_) => {
                    state.last_failure = Some((now, reason.clone()));
                    Err(self
                        .unavailable(format!("{reason}; the cached keys are older than the {} s allowed", self.policy.max_stale.as_secs())))
                }
                None => {
                    state.last_failure = Some((now, reason.clone()));
                    Err(self.unavailable(reason))
                }
            },
        }
    }

    async fn fetch(&self) -> Result<(Vec<VerifyingKey>, Duration), String> {
        let url = match &self.source {
            KeySource::JwksUrl(url) => url.clone(),
            KeySource::Discovery => self.discover().await?,
            KeySource::Static(_) => return Err("static keys are never fetched".into()),
        };
        let (document, cache_control) = self.get_json(&url).await?;
        let keys = parse_jwks(&document, &self.issuer).map_err(|reason| format!("{}: {reason}", url_for_logs(&url)))?;
        Ok((keys, self.freshness(&cache_control)))
    }

    async fn discover(&self) -> Result<HttpsUrl, String> {
        if let Some(url) = self.state().discovered_jwks_url.clone() {
            return Ok(url);
        }
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let discovery = url::Url::parse(&discovery).map_err(|e| format!("discovery URL: {e}"))?;
        let (document, _) = self.get_json(&discovery).await?;
        // RFC 8414 §3.3: the document must name the issuer it was fetched for.
        if document.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(format!("{}: \"issuer\" is not {}", url_for_logs(&discovery), self.issuer));
        }
        let jwks_uri =
            document.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| format!("{}: no jwks_uri", url_for_logs(&discovery)))?;
        let url = HttpsUrl::parse(jwks_uri).map_err(|e| format!("jwks_uri {e}"))?;
        self.state().discovered_jwks_url = Some(url.clone());
        Ok(url)
    }

    async fn get_json(&self, url: &url::Url) -> Result<(Value, CacheControl), String> {
        let at = url_for_logs(url);
        let response = self.http.get(url.clone()).header("accept", "application/json").send().await.map_err(|e| {
            let (what, _) = transport_failure(&e);
            format!("{at}: {what}")
        })?;
        if !response.status().is_success() {
            return Err(format!("{at} answered HTTP {}", response.status().as_u16()));
        }
        let cache_control = CacheControl::from_headers(response.headers());
        let body = read_body(response, self.policy.max_document_bytes).await.map_err(|e| match e {
            BodyError::Read(e) => format!("{at}: {}", transport_failure(&e).0),
            _ => format!("{at}: document larger than {} bytes", self.policy.max_document_bytes),
        })?;
        let document = serde_json::from_slice(&body).map_err(|_| format!("{at}: not JSON"))?;
        Ok((document, cache_control))
    }

    fn freshness(&self, cache_control: &CacheControl) -> Duration {
        let ttl = match cache_control {
            CacheControl { no_cache: true, .. } => self.policy.min_ttl,
            CacheControl { max_age: Some(lifetime), age, .. } | CacheControl { expires_after: Some(lifetime), age, .. } => {
                lifetime.saturating_sub(*age)
            }
            _ => self.policy.default_ttl,
        };
        ttl.clamp(self.policy.min_ttl, self.policy.max_ttl)
    }
}

/// The keys a token's `kid` selects ([`select_by_kid`]).
fn matching(keys: &[VerifyingKey], kid: Option<&str>) -> Vec<VerifyingKey> {
    select_by_kid(keys, kid).into_iter().cloned().collect()
}

/// The usable signing keys of a JWKS document. Keys for encryption, of unsupported types,
/// or malformed are skipped (and logged); a document with none left is an error.
pub(crate) fn parse_jwks(document: &Value, issuer: &str) -> Result<Vec<VerifyingKey>, String> {
    let Some(entries) = document.get("keys").and_then(Value::as_array) else {
        return Err("not a JWKS: no \"keys\" array".into());
    };
    let mut keys = Vec::new();
    for entry in entries {
        let Some(jwk) = entry.as_object() else { continue };
        if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        match VerifyingKey::from_jwk(jwk) {
            Ok(key) => keys.push(key),
            Err(e) => {
                let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("(no kid)");
                tracing::warn!(event = "jwks_key_skipped", issuer, kid, reason = %e, "JWKS key not usable");
            }
        }
    }
    if keys.is_empty() {
        return Err("no usable signing key (RSA, EC P-256 or Ed25519)".into());
    }
    Ok(keys)
}

/// What `Cache-Control`, `Expires`, `Date` and `Age` say about freshness (RFC 9111 §4.2).
#[derive(Debug, Default)]
struct CacheControl {
    max_age: Option<Duration>,
    no_cache: bool,
    /// `Expires - Date`, when there is no `max-age` (an unparsable `Expires` is already stale).
    expires_after: Option<Duration>,
    age: Duration,
}

impl CacheControl {
    fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        let text = |name: reqwest::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let mut parsed = Self::default();
        for directive in text(reqwest::header::CACHE_CONTROL).unwrap_or_default().split(',').map(str::trim) {
            let (name, argument) =
                directive.split_once('=').map_or((directive, None), |(n, a)| (n.trim(), Some(a.trim().trim_matches('"'))));
            match name.to_ascii_lowercase().as_str() {
                "max-age" => parsed.max_age = argument.and_then(|a| a.parse::<u64>().ok()).map(Duration::from_secs),
                "no-cache" | "no-store" => parsed.no_cache = true,
                _ => {}
            }
        }
        if let Some(expires) = text(reqwest::header::EXPIRES) {
            // Measured against the server's own Date, so clock skew does not matter.
            let date = text(reqwest::header::DATE).and_then(|d| httpdate::parse_http_date(d).ok());
            parsed.expires_after = Some(match (httpdate::parse_http_date(expires), date) {
                (Ok(expires), Some(date)) => expires.duration_since(date).unwrap_or_default(),
                (Ok(_), None) | (Err(_), _) => Duration::ZERO,
            });
        }
        parsed.age = text(reqwest::header::AGE).and_then(|v| v.parse::<u64>().ok()).map_or(Duration::ZERO, Duration::from_secs);
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_durations_are_bounded_and_time_arithmetic_never_panics() {
        let policy = JwksCachePolicy { max_ttl: Duration::MAX, ..JwksCachePolicy::default() };
        assert!(matches!(policy.check(), Err(VerifyError::Configuration { .. })));
        let policy = JwksCachePolicy { max_stale: MAX_CACHE_DURATION + Duration::from_secs(1), ..JwksCachePolicy::default() };
        assert!(matches!(policy.check(), Err(VerifyError::Configuration { .. })));
        assert!(JwksCachePolicy::default().check().is_ok());
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(i64::MAX).unwrap() - 1);
        assert_eq!(later(end, Duration::from_secs(3600)), end, "past the clock's range: stale at once");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn cache_control_reads_max_age_no_cache_and_age() {
        let parsed = CacheControl::from_headers(&headers(&[("cache-control", "public, max-age=600, must-revalidate"), ("age", "100")]));
        assert_eq!((parsed.max_age, parsed.no_cache, parsed.age), (Some(Duration::from_secs(600)), false, Duration::from_secs(100)));
        assert!(CacheControl::from_headers(&headers(&[("cache-control", "no-store")])).no_cache);
        let none = CacheControl::from_headers(&headers(&[]));
        assert_eq!((none.max_age, none.no_cache, none.expires_after), (None, false, None));
    }

    #[test]
    fn expires_counts_from_the_servers_date_and_a_bad_one_is_stale() {
        let dated = |expires: &str| {
            CacheControl::from_headers(&headers(&[("date", "Mon, 30 Nov 2026 06:00:00 GMT"), ("expires", expires)])).expires_after
        };
        assert_eq!(dated("Mon, 30 Nov 2026 07:00:00 GMT"), Some(Duration::from_secs(3600)));
        assert_eq!(dated("Mon, 30 Nov 2026 05:00:00 GMT"), Some(Duration::ZERO), "in the past");
        assert_eq!(dated("0"), Some(Duration::ZERO), "RFC 9111: an invalid Expires means already expired");
        let undated = CacheControl::from_headers(&headers(&[("expires", "Mon, 30 Nov 2026 07:00:00 GMT")]));
        assert_eq!(undated.expires_after, Some(Duration::ZERO), "no Date to measure against: treated as stale");
    }

    #[test]
    fn a_jwks_without_usable_keys_is_refused() {
        let document = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "use": "enc", "n": "x", "e": "AQAB"}]});
        assert_eq!(parse_jwks(&document, "https://issuer.example").unwrap_err(), "no usable signing key (RSA, EC P-256 or Ed25519)");
        assert!(parse_jwks(&serde_json::json!({"keys": "no"}), "i").unwrap_err().contains("no \"keys\" array"));
    }
}
