//! A token cache in front of any [`IamAdapter`]: keyed by everything that changes the
//! token, refreshed ahead of expiry with jitter, single-flight, bounded, never caching an
//! error.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dual_auth_core::{
    Act, Clock, DelegationMode, DelegationRequest, DpopKey, ErrorChain, IamAdapter, IamError, SystemClock, TokenRequest, TokenResponse,
    Vendor,
};
use serde_json::Value;

/// How the cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheSettings {
    /// Whether tokens are cached at all (off: every request goes to the identity provider).
    pub enabled: bool,
    /// The most keys held; beyond it the expired, then the oldest, entries go.
    pub max_entries: usize,
    /// How long before expiry a token is refreshed.
    pub refresh_buffer: Duration,
    /// Up to this much more, chosen at random per token, so that many agents do not
    /// refresh at the same moment.
    pub refresh_jitter: Duration,
}

impl Default for TokenCacheSettings {
    /// On, 10,000 keys, refresh 60 s before expiry plus up to 30 s of jitter.
    fn default() -> Self {
        Self { enabled: true, max_entries: 10_000, refresh_buffer: Duration::from_secs(60), refresh_jitter: Duration::from_secs(30) }
    }
}

/// The cache key: a SHA-256 over the adapter's scope (vendor, token endpoint, client,
/// audience, and the DPoP key's thumbprint when tokens are DPoP-bound), the agent, the
/// whole act and the sorted scopes. Hashed, so no personal data
/// sits in the key (or in a shared store using it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.0.iter().take(8).map(|b| format!("{b:02x}")).collect();
        write!(f, "CacheKey({hex}…)")
    }
}

impl CacheKey {
    /// The key for `request` through an adapter with this cache scope.
    pub fn new(cache_scope: &str, request: &TokenRequest) -> Self {
        let mut scopes: Vec<&str> = request.scopes().iter().map(String::as_str).collect();
        scopes.sort_unstable();
        scopes.dedup();
        // The compact JSON text `[cache_scope, agent, act with its keys sorted at every level,
        // scopes]`, hashed as it is written: no JSON tree is built, no copy of the act kept.
        let written = Self::hash_written(|out| {
            out.write_raw(b"[")?;
            out.write_str(cache_scope)?;
            out.write_raw(b",")?;
            out.write_str(request.agent_id())?;
            out.write_raw(b",")?;
            write_canonical_act(out, request.act())?;
            out.write_raw(b",[")?;
            for (i, scope) in scopes.iter().enumerate() {
                if i > 0 {
                    out.write_raw(b",")?;
                }
                out.write_str(scope)?;
            }
            out.write_raw(b"]]")
        });
        // Writing into a hasher does not fail; were it ever to, the same text is built the
        // slow way rather than hashing a part of it.
        written.unwrap_or_else(|_| {
            let material = serde_json::json!([cache_scope, request.agent_id(), canonical(&request.act().to_value()), scopes]);
            Self(openssl::sha::sha256(material.to_string().as_bytes()))
        })
    }

    /// The key for a delegation `request` through an adapter with this cache scope: a
    /// SHA-256 over the scope and [`DelegationRequest::fingerprint`] (the evidence's hash,
    /// agent, audience, resource, scopes), never the evidence itself.
    pub fn for_delegation(cache_scope: &str, request: &DelegationRequest) -> Self {
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(request.fingerprint()) {
            pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
            pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
        }
        // `["delegation",cache_scope,"<hex>"]`; the hex digits need no escaping.
        let written = Self::hash_written(|out| {
            out.write_raw(b"[\"delegation\",")?;
            out.write_str(cache_scope)?;
            out.write_raw(b",\"")?;
            out.write_raw(&hex)?;
            out.write_raw(b"\"]")
        });
        written.unwrap_or_else(|_| {
            let fingerprint: String = request.fingerprint().iter().map(|b| format!("{b:02x}")).collect();
            let material = serde_json::json!(["delegation", cache_scope, fingerprint]);
            Self(openssl::sha::sha256(material.to_string().as_bytes()))
        })
    }

    /// The SHA-256 of what `write` writes.
    fn hash_written(write: impl FnOnce(&mut Sha256Writer) -> serde_json::Result<()>) -> serde_json::Result<Self> {
        let mut out = Sha256Writer::new();
        write(&mut out)?;
        Ok(Self(out.finish()))
    }

    /// The key as bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Hashes what is written with OpenSSL's direct SHA-256 (not the per-call algorithm
/// lookup `openssl::sha::sha256` makes), in the compact form `serde_json::to_string` writes.
/// Small writes are gathered first: the hasher is fed in a few large pieces.
struct Sha256Writer {
    hasher: openssl::sha::Sha256,
    pending: [u8; 256],
    len: usize,
}

impl Sha256Writer {
    fn new() -> Self {
        Self { hasher: openssl::sha::Sha256::new(), pending: [0; 256], len: 0 }
    }

    fn write_raw(&mut self, bytes: &[u8]) -> serde_json::Result<()> {
        match self.pending.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => {
                self.hasher.update(&self.pending[..self.len]);
                self.len = 0;
                if bytes.len() < self.pending.len() {
                    self.pending[..bytes.len()].copy_from_slice(bytes);
                    self.len = bytes.len();
                } else {
                    self.hasher.update(bytes);
                }
            }
        }
        Ok(())
    }

    /// A JSON string, as serde_json writes it (escaping included).
    fn write_str(&mut self, text: &str) -> serde_json::Result<()> {
        serde_json::to_writer(self, text)
    }

    /// A JSON value, as serde_json writes it.
    fn write_value(&mut self, value: &Value) -> serde_json::Result<()> {
        serde_json::to_writer(self, value)
    }

    fn finish(mut self) -> [u8; 32] {
        self.hasher.update(&self.pending[..self.len]);
        self.hasher.finish()
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.write_raw(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The act as its JSON object with the keys sorted at every level (as [`canonical`] of
/// [`Act::to_value`] writes it), so equal acts give equal keys.
fn write_canonical_act(out: &mut Sha256Writer, act: &Act) -> serde_json::Result<()> {
    enum Member<'a> {
        Text(&'a str),
        Json(&'a Value),
    }
    let extra = act.extra_claims();
    let mut members: Vec<(&str, Member<'_>)> = Vec::with_capacity(4 + extra.len());
    members.push(("sub", Member::Text(act.sub())));
    for (name, value) in [("email", act.email()), ("name", act.name()), ("oid", act.oid())] {
        if let Some(value) = value {
            members.push((name, Member::Text(value)));
        }
    }
    // An act's extra claims never hold the four typed ones (it refuses them there).
    members.extend(extra.iter().map(|(name, value)| (name.as_str(), Member::Json(value))));
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.write_raw(b"{")?;
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.write_raw(b",")?;
        }
        out.write_str(name)?;
        out.write_raw(b":")?;
        match value {
            Member::Text(text) => out.write_str(text)?,
            Member::Json(value) => write_canonical(out, value)?,
        }
    }
    out.write_raw(b"}")
}

/// `value` with object keys sorted at every level, as [`canonical`] then serde_json write it.
fn write_canonical(out: &mut Sha256Writer, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.write_raw(b"{")?;
            for (i, (name, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.write_raw(b",")?;
                }
                out.write_str(name.as_str())?;
                out.write_raw(b":")?;
                write_canonical(out, value)?;
            }
            out.write_raw(b"}")
        }
        Value::Array(items) => {
            out.write_raw(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_raw(b",")?;
                }
                write_canonical(out, item)?;
            }
            out.write_raw(b"]")
        }
        scalar => out.write_value(scalar),
    }
}

/// JSON with object keys sorted at every level, so equal acts give equal keys.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A second cache tier shared by replicas (Redis, for example). Its failures never fail a
/// token request: the cache falls back to the identity provider.
#[async_trait]
pub trait SharedTokenStore: Send + Sync + std::fmt::Debug {
    /// The token stored under `key`, if any.
    ///
    /// # Errors
    /// When the store cannot answer.
    async fn load(&self, key: &CacheKey) -> Result<Option<TokenResponse>, dual_auth_core::BoxError>;

    /// Stores `token` under `key` until `keep_until` (before the token expires). Only the
    /// access token and its facts (`token_type` included, `DPoP` for a bound token) are
    /// stored, never an act assertion source or a DPoP key: a loaded token goes through
    /// [`IamAdapter::restore_cached`], which re-attaches them.
    ///
    /// # Errors
    /// When the store cannot take it.
    async fn store(&self, key: &CacheKey, token: &TokenResponse, keep_until: SystemTime) -> Result<(), dual_auth_core::BoxError>;
}

struct Cached {
    token: TokenResponse,
    refresh_at: SystemTime,
}

/// One key's slot: its async lock is the single flight.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

#[derive(Default)]
struct Slots {
    by_key: HashMap<CacheKey, Slot>,
    order: VecDeque<CacheKey>,
}

/// An [`IamAdapter`] that caches another's tokens.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn wrap(vendor_adapter: Arc<dyn dual_auth_core::IamAdapter>) {
/// use dual_auth_session::{CachingAdapter, TokenCacheSettings};
/// let adapter = Arc::new(CachingAdapter::new(vendor_adapter, TokenCacheSettings::default()));
/// # }
/// ```
pub struct CachingAdapter {
    inner: Arc<dyn IamAdapter>,
    settings: TokenCacheSettings,
    slots: Mutex<Slots>,
    clock: Arc<dyn Clock>,
    shared: Option<Arc<dyn SharedTokenStore>>,
}

impl fmt::Debug for CachingAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingAdapter")
            .field("inner", &self.inner)
            .field("settings", &self.settings)
            .field("entries", &self.len())
            .finish()
    }
}

impl CachingAdapter {
    /// A cache in front of `inner`, on the system clock.
    pub fn new(inner: Arc<dyn IamAdapter>, settings: TokenCacheSettings) -> Self {
        Self::with_clock(inner, settings, Arc::new(SystemClock))
    }

    /// A cache on the given clock (for tests).
    pub fn with_clock(inner: Arc<dyn IamAdapter>, settings: TokenCacheSettings, clock: Arc<dyn Clock>) -> Self {
        Self { inner, settings, slots: Mutex::new(Slots::default()), clock, shared: None }
    }

    /// Adds a tier shared with other replicas, consulted after this process's cache and
    /// before the identity provider; tokens fetched here are stored there.
    #[must_use]
    pub fn with_shared_store(mut self, store: Arc<dyn SharedTokenStore>) -> Self {
        self.shared = Some(store);
        self
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        let mut slots = self.lock();
        slots.by_key.clear();
        slots.order.clear();
    }

    /// A fresh token from the identity provider, bypassing (and then refreshing) the cache.
    ///
    /// # Errors
    /// The adapter's [`IamError`].
    pub async fn request_fresh_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        let slot = self.slot(CacheKey::new(&self.inner.cache_scope(), request));
        let mut guard = slot.lock().await;
        let token = self.inner.request_token(request).await?;
        *guard = self.cacheable(&token);
        Ok(token)
    }

    /// The cached token for `key`, else one from `fetch` (single flight per key, the
    /// shared tier between), served stale-but-valid when a refresh fails.
    async fn cached_or_fetch<Fut>(
        &self,
        key: CacheKey,
        restore: impl Fn(TokenResponse) -> TokenResponse,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<TokenResponse, IamError>
    where
        Fut: std::future::Future<Output = Result<TokenResponse, IamError>>,
    {
        let slot = self.slot(key.clone());
        // Holding the slot's lock across the fetch makes concurrent callers for this key
        // wait for one identity-provider call instead of each making their own.
        let mut guard = slot.lock().await;
        let now = self.clock.now();
        if let Some(cached) = guard.as_ref()
            && now < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        if let Some(shared) = &self.shared {
            match shared.load(&key).await {
                Ok(Some(token)) => {
                    // Another replica's token, if it is not yet due for refresh here; the
                    // store holds the access token only, the adapter re-attaches the rest.
                    let token = restore(token);
                    if token.is_dpop_token_type() && !token.is_dpop_bound() {
                        // A DPoP token without its key is unusable here (this adapter has
                        // no DPoP key): ask the identity provider instead.
                        tracing::warn!(event = "shared_token_cache_dpop_key_missing", vendor = %self.inner.vendor(), "a shared DPoP-bound token has no key in this replica; asking the identity provider");
                    } else if let Some(entry) = self.cacheable(&token) {
                        *guard = Some(entry);
                        return Ok(token);
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(event = "shared_token_cache_unavailable", error = %ErrorChain(&*error), "shared token cache unavailable; asking the identity provider")
                }
            }
        }
        match fetch().await {
            Ok(token) => {
                *guard = self.cacheable(&token);
                if let (Some(shared), Some(entry)) = (&self.shared, guard.as_ref())
                    && let Err(error) = shared.store(&key, &token, entry.refresh_at).await
                {
                    tracing::warn!(event = "shared_token_cache_unavailable", error = %ErrorChain(&*error), "could not share the token with other replicas");
                }
                Ok(token)
            }
            Err(error) => {
                // Errors are never cached; a refresh that fails while the old token is
                // still valid serves the old token.
                match guard.as_ref() {
                    Some(cached) if !cached.token.is_expired(now) => {
                        tracing::warn!(event = "token_refresh_failed_serving_cached", vendor = %self.inner.vendor(), error = %ErrorChain(&error), "token refresh failed; the cached token is still valid");
                        Ok(cached.token.clone())
                    }
                    _ => {
                        *guard = None;
                        Err(error)
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot for `key`, created if needed, evicting to stay within bounds.
    fn slot(&self, key: CacheKey) -> Slot {
        let mut slots = self.lock();
        if let Some(slot) = slots.by_key.get(&key) {
            return Arc::clone(slot);
        }
        while slots.by_key.len() >= self.settings.max_entries.max(1) {
            let Some(oldest) = slots.order.pop_front() else {
                break;
            };
            slots.by_key.remove(&oldest);
        }
        let slot: Slot = Arc::new(tokio::sync::Mutex::new(None));
        slots.by_key.insert(key.clone(), Arc::clone(&slot));
        slots.order.push_back(key);
        slot
    }

    /// The cache entry for a new token, or `None` when it would be stale at once.
    fn cacheable(&self, token: &TokenResponse) -> Option<Cached> {
        let jitter = self.settings.refresh_jitter.mul_f64(dual_auth_core::token_endpoint::jitter_fraction());
        let margin = self.settings.refresh_buffer + jitter;
        let refresh_at = token.expires_at().checked_sub(margin)?;
        (refresh_at > self.clock.now()).then(|| Cached { token: token.clone(), refresh_at })
    }
}

#[async_trait]
impl IamAdapter for CachingAdapter {
    fn vendor(&self) -> Vendor {
        self.inner.vendor()
    }

    fn cache_scope(&self) -> String {
        self.inner.cache_scope()
    }

    fn restore_cached(&self, token: TokenResponse, request: &TokenRequest) -> TokenResponse {
        self.inner.restore_cached(token, request)
    }

    fn restore_cached_delegated(&self, token: TokenResponse, request: &DelegationRequest) -> TokenResponse {
        self.inner.restore_cached_delegated(token, request)
    }

    fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.dpop_key()
    }

    fn delegation_modes(&self) -> &'static [DelegationMode] {
        self.inner.delegation_modes()
    }

    fn delegation_mode(&self) -> Option<DelegationMode> {
        self.inner.delegation_mode()
    }

    fn configured_delegation(&self) -> Option<DelegationMode> {
        self.inner.configured_delegation()
    }

    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        // Before the lookup: a replica still in the guide's mode may have shared a
        // self-asserted token that this replica's verified mode must not serve.
        dual_auth_core::provider::check_self_asserted_allowed(self.vendor(), self.inner.configured_delegation())?;
        if !self.settings.enabled {
            return self.inner.request_token(request).await;
        }
        let key = CacheKey::new(&self.inner.cache_scope(), request);
        self.cached_or_fetch(key, |token| self.inner.restore_cached(token, request), || self.inner.request_token(request)).await
    }

    /// Cached under the evidence's hash (with agent, audience, resource and scopes), so a
    /// new or different human token never gets another human's cached token.
    async fn request_delegated_token(&self, request: &DelegationRequest) -> Result<TokenResponse, IamError> {
        // Before the lookup, as for self-asserted requests above.
        dual_auth_core::provider::check_evidence_allowed(self.vendor(), self.inner.configured_delegation(), self.inner.delegation_modes())?;
        if !self.settings.enabled {
            return self.inner.request_delegated_token(request).await;
        }
        let key = CacheKey::for_delegation(&self.inner.cache_scope(), request);
        self.cached_or_fetch(
            key,
            |token| self.inner.restore_cached_delegated(token, request),
            || self.inner.request_delegated_token(request),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The key as it was first defined: the JSON value built, then written, then hashed.
    fn reference_key(cache_scope: &str, request: &TokenRequest) -> [u8; 32] {
        let mut scopes: Vec<&str> = request.scopes().iter().map(String::as_str).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let material = json!([cache_scope, request.agent_id(), canonical(&request.act().to_value()), scopes]);
        openssl::sha::sha256(material.to_string().as_bytes())
    }

    #[test]
    fn keys_are_the_sha256_of_the_canonical_json_text_byte_for_byte() {
        let plain = Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice");
        let mut rich = Act::new("u \"quoted\" \\ back\u{1}slash\u{7f}").unwrap().with_oid("o-1").with_name("Zoë \u{2028} 東京");
        for (name, value) in [
            ("tenant", json!("t")),
            ("Upper", json!(1)),
            ("aaa", json!({"z": [3, {"b": null, "a": true}], "y": -2.5, "x": 1e300, "w": u64::MAX, "v": i64::MIN})),
            ("roles", json!(["b", "a", [], {}])),
            ("\u{e9}t\u{e9}", json!("\n\t\r\u{8}\u{c}")),
            ("empty", json!({})),
        ] {
            rich.insert_claim(name, value).unwrap();
        }
        let parsed: Act =
            serde_json::from_str(r#"{"roles":["x"],"sub":"s","n":0.1,"email":"e@x.example","nested":{"b":{"d":1,"c":2},"a":[]}}"#).unwrap();
        // Longer than the writer's gathering buffer, in one piece and in many.
        let mut long = Act::new("s".repeat(300)).unwrap().with_name("n\"".repeat(200));
        long.insert_claim("list", json!(vec!["0123456789"; 40])).unwrap();
        for act in [plain, rich, parsed, long, Act::new("only-sub").unwrap()] {
            for scopes in [vec!["finance.read", "finance.write"], vec!["b", "a", "b", "c\"d"], vec!["one"]] {
                let request = TokenRequest::new("agent \u{1} \"x\"", act.clone(), scopes).unwrap();
                for scope in ["okta", "", "keycloak|https://kc.example/t|client|aud|dpop:abc", "\"\\\u{0}"] {
                    assert_eq!(CacheKey::new(scope, &request).as_bytes(), &reference_key(scope, &request), "{act:?} {scope:?}");
                }
            }
        }
    }

    #[test]
    fn delegation_keys_are_the_sha256_of_the_json_text_byte_for_byte() {
        use dual_auth_core::{SubjectToken, SubjectTokenType};
        let request =
            DelegationRequest::new("agent", SubjectToken::new("evidence", SubjectTokenType::AccessToken).unwrap(), ["b", "a"]).unwrap();
        for scope in ["okta", "", "a \"b\" \\ \u{1}"] {
            let fingerprint: String = request.fingerprint().iter().map(|b| format!("{b:02x}")).collect();
            let reference = openssl::sha::sha256(json!(["delegation", scope, fingerprint]).to_string().as_bytes());
            assert_eq!(CacheKey::for_delegation(scope, &request).as_bytes(), &reference);
        }
    }
}
