//! The token cache: single flight, keys, refresh ahead of expiry, no cached errors, bounds.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{
    Act, Clock, DelegationMode, DelegationRequest, DpopKey, IamAdapter, IamError, ManualClock, SigningAlgorithm, SubjectToken,
    SubjectTokenType, TokenRequest, TokenResponse, Vendor,
};
use dual_auth_session::{CacheKey, CachingAdapter, SharedTokenStore, TokenCacheSettings};

/// An identity provider double that counts calls and can be told to fail.
#[derive(Debug)]
struct CountingIdp {
    calls: AtomicUsize,
    failures_left: AtomicUsize,
    lifetime: Duration,
    delay: Duration,
    clock: Arc<dyn Clock>,
    configured: Option<DelegationMode>,
}

impl CountingIdp {
    fn new(lifetime: Duration, clock: Arc<dyn Clock>) -> Self {
        Self { calls: AtomicUsize::new(0), failures_left: AtomicUsize::new(0), lifetime, delay: Duration::ZERO, clock, configured: None }
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl IamAdapter for CountingIdp {
    fn vendor(&self) -> Vendor {
        Vendor::Okta
    }
    fn cache_scope(&self) -> String {
        "okta|https://idp.example/token|agent|aud".into()
    }
    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(IamError::HttpStatus { vendor: Vendor::Okta, status: 503 });
        }
        let token = format!("token-for-{}-#{n}", request.act().sub());
        Ok(TokenResponse::new(token, "Bearer", self.lifetime, self.clock.now()).with_scopes(request.scopes().iter().cloned()))
    }
    fn delegation_modes(&self) -> &'static [DelegationMode] {
        &[DelegationMode::TokenExchange, DelegationMode::SelfAsserted]
    }
    fn configured_delegation(&self) -> Option<DelegationMode> {
        self.configured
    }
    async fn request_delegated_token(&self, request: &DelegationRequest) -> Result<TokenResponse, IamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let human = request.subject().token().expose_secret().trim_start_matches("evidence-").to_owned();
        let token = format!("delegated-for-{human}-#{n}");
        Ok(TokenResponse::new(token, "Bearer", self.lifetime, self.clock.now()).with_scopes(request.scopes().iter().cloned()))
    }
}

fn delegation(evidence: &str, scopes: &[&str]) -> DelegationRequest {
    DelegationRequest::new("agent", SubjectToken::new(evidence, SubjectTokenType::AccessToken).unwrap(), scopes.iter().copied()).unwrap()
}

#[tokio::test]
async fn delegated_tokens_are_cached_per_evidence_never_shared_between_humans() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(3600), clock.clone()));
    let cache = CachingAdapter::with_clock(idp.clone(), no_jitter(), clock);
    assert_eq!(cache.delegation_mode(), Some(DelegationMode::TokenExchange), "the cache passes the mode through");
    let alice = cache.request_delegated_token(&delegation("evidence-alice", &["finance.read"])).await.unwrap();
    let again = cache.request_delegated_token(&delegation("evidence-alice", &["finance.read"])).await.unwrap();
    assert_eq!(alice.access_token().expose_secret(), "delegated-for-alice-#1");
    assert_eq!(again.access_token().expose_secret(), "delegated-for-alice-#1", "same evidence: cached");
    let bob = cache.request_delegated_token(&delegation("evidence-bob", &["finance.read"])).await.unwrap();
    assert_eq!(bob.access_token().expose_secret(), "delegated-for-bob-#2", "other evidence: its own token");
    let wider = cache.request_delegated_token(&delegation("evidence-alice", &["finance.read", "finance.write"])).await.unwrap();
    assert_eq!(wider.access_token().expose_secret(), "delegated-for-alice-#3", "other scopes: its own token");
    let audience =
        cache.request_delegated_token(&delegation("evidence-alice", &["finance.read"]).with_audience("other-api")).await.unwrap();
    assert_eq!(audience.access_token().expose_secret(), "delegated-for-alice-#4", "other audience: its own token");
    assert_eq!(idp.calls(), 4);

    // The key is a hash: neither the evidence nor the human is in it, and it never equals a
    // self-asserted request's key.
    let key = CacheKey::for_delegation(&idp.cache_scope(), &delegation("evidence-alice", &["finance.read"]));
    assert!(!format!("{key:?}").contains("alice"));
    assert_ne!(key, CacheKey::new(&idp.cache_scope(), &request("evidence-alice", &["finance.read"])));
}

fn request(sub: &str, scopes: &[&str]) -> TokenRequest {
    TokenRequest::new("agent", Act::new(sub).unwrap().with_email(format!("{sub}@corp.example.com")), scopes.iter().copied()).unwrap()
}

fn no_jitter() -> TokenCacheSettings {
    TokenCacheSettings { refresh_jitter: Duration::ZERO, ..TokenCacheSettings::default() }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_for_one_key_make_one_token_request() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let idp = Arc::new(CountingIdp { delay: Duration::from_millis(50), ..CountingIdp::new(Duration::from_secs(3600), clock.clone()) });
    let cache = Arc::new(CachingAdapter::with_clock(idp.clone(), no_jitter(), clock));
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let cache = Arc::clone(&cache);
        tasks.push(tokio::spawn(async move { cache.request_token(&request("alice", &["finance.read"])).await.unwrap() }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().access_token().expose_secret().to_owned());
    }
    assert_eq!(idp.calls(), 1, "single flight");
    assert_eq!(tokens.len(), 1, "everyone got the same token");
}

#[tokio::test]
async fn two_humans_never_share_a_token_and_the_whole_act_is_the_key() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(3600), clock.clone()));
    let cache = CachingAdapter::with_clock(idp.clone(), no_jitter(), clock);
    let alice = cache.request_token(&request("alice", &["finance.read"])).await.unwrap();
    let bob = cache.request_token(&request("bob", &["finance.read"])).await.unwrap();
    assert_ne!(alice.access_token().expose_secret(), bob.access_token().expose_secret());
    assert!(alice.access_token().expose_secret().contains("alice") && bob.access_token().expose_secret().contains("bob"));

    // Same sub, another e-mail: another act, another token.
    let other = TokenRequest::new("agent", Act::new("alice").unwrap().with_email("alice@elsewhere.example"), ["finance.read"]).unwrap();
    cache.request_token(&other).await.unwrap();
    assert_eq!(idp.calls(), 3);

    // Scope order does not matter; another scope set does.
    cache.request_token(&request("alice", &["finance.read"])).await.unwrap();
    assert_eq!(idp.calls(), 3, "served from cache");
    cache.request_token(&request("alice", &["b", "a"])).await.unwrap();
    cache.request_token(&request("alice", &["a", "b"])).await.unwrap();
    assert_eq!(idp.calls(), 4);
    // Another agent id is another key too.
    let other_agent =
        TokenRequest::new("agent-2", Act::new("alice").unwrap().with_email("alice@corp.example.com"), ["finance.read"]).unwrap();
    cache.request_token(&other_agent).await.unwrap();
    assert_eq!(idp.calls(), 5);
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    let clock = ManualClock::new(at(0));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(300), Arc::new(clock.clone())));
    let cache = CachingAdapter::with_clock(idp.clone(), no_jitter(), Arc::new(clock.clone()));
    let first = cache.request_token(&request("alice", &["r"])).await.unwrap();
    clock.set(at(239));
    assert_eq!(cache.request_token(&request("alice", &["r"])).await.unwrap(), first, "still fresh");
    assert_eq!(idp.calls(), 1);
    clock.set(at(240)); // 300 s lifetime - 60 s buffer
    let second = cache.request_token(&request("alice", &["r"])).await.unwrap();
    assert_eq!(idp.calls(), 2, "refreshed 60 s before expiry");
    assert_ne!(second.access_token().expose_secret(), first.access_token().expose_secret());
}

#[tokio::test]
async fn jitter_spreads_refreshes_within_its_bound() {
    let clock = ManualClock::new(at(0));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(300), Arc::new(clock.clone())));
    let settings = TokenCacheSettings { refresh_jitter: Duration::from_secs(30), ..TokenCacheSettings::default() };
    let cache = CachingAdapter::with_clock(idp.clone(), settings, Arc::new(clock.clone()));
    cache.request_token(&request("alice", &["r"])).await.unwrap();
    clock.set(at(209)); // before the earliest refresh (300 - 60 - 30)
    cache.request_token(&request("alice", &["r"])).await.unwrap();
    assert_eq!(idp.calls(), 1);
    clock.set(at(240)); // at or after the latest refresh point
    cache.request_token(&request("alice", &["r"])).await.unwrap();
    assert_eq!(idp.calls(), 2);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(3600), clock.clone()));
    idp.failures_left.store(1, Ordering::SeqCst);
    let cache = CachingAdapter::with_clock(idp.clone(), no_jitter(), clock);
    assert!(cache.request_token(&request("alice", &["r"])).await.is_err());
    assert!(cache.request_token(&request("alice", &["r"])).await.is_ok(), "the next call asks again");
    assert_eq!(idp.calls(), 2);
}

#[tokio::test]
async fn a_failed_refresh_serves_the_still_valid_token_then_the_error_once_it_expires() {
    let clock = ManualClock::new(at(0));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(300), Arc::new(clock.clone())));
    let cache = CachingAdapter::with_clock(idp.clone(), no_jitter(), Arc::new(clock.clone()));
    let first = cache.request_token(&request("alice", &["r"])).await.unwrap();
    idp.failures_left.store(10, Ordering::SeqCst);
    clock.set(at(250));
    assert_eq!(cache.request_token(&request("alice", &["r"])).await.unwrap(), first);
    clock.set(at(300));
    assert!(cache.request_token(&request("alice", &["r"])).await.is_err(), "expired: the error comes through");
}

#[tokio::test]
async fn disabled_bypassed_bounded_and_short_lived() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(3600), clock.clone()));
    let off = CachingAdapter::with_clock(idp.clone(), TokenCacheSettings { enabled: false, ..no_jitter() }, clock.clone());
    off.request_token(&request("alice", &["r"])).await.unwrap();
    off.request_token(&request("alice", &["r"])).await.unwrap();
    assert_eq!(idp.calls(), 2, "disabled: every call goes through");

    let cache = CachingAdapter::with_clock(idp.clone(), TokenCacheSettings { max_entries: 2, ..no_jitter() }, clock.clone());
    for sub in ["a", "b", "c"] {
        cache.request_token(&request(sub, &["r"])).await.unwrap();
    }
    assert_eq!(cache.len(), 2, "bounded");
    let before = idp.calls();
    cache.request_fresh_token(&request("c", &["r"])).await.unwrap();
    assert_eq!(idp.calls(), before + 1, "bypass goes to the identity provider");

    let short = Arc::new(CountingIdp::new(Duration::from_secs(30), clock.clone()));
    let cache = CachingAdapter::with_clock(short.clone(), no_jitter(), clock);
    cache.request_token(&request("a", &["r"])).await.unwrap();
    cache.request_token(&request("a", &["r"])).await.unwrap();
    assert_eq!(short.calls(), 2, "a token shorter than the refresh buffer is not cached");
}

#[tokio::test]
async fn the_configured_mode_is_checked_before_the_cache_so_no_replica_serves_a_token_of_the_other_mode() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    // Warm the cache in the guide's mode, as a replica not yet switched over would.
    let idp = Arc::new(CountingIdp::new(Duration::from_secs(3600), clock.clone()));
    let cache = CachingAdapter::with_clock(idp.clone(), no_jitter(), clock.clone());
    cache.request_token(&request("alice", &["finance.read"])).await.unwrap();
    assert_eq!(idp.calls(), 1);
    // A verified mode configured: the self-asserted request is refused, not served from the cache.
    let verified = Arc::new(CountingIdp {
        configured: Some(DelegationMode::TokenExchange),
        ..CountingIdp::new(Duration::from_secs(3600), clock.clone())
    });
    let cache = CachingAdapter::with_clock(verified.clone(), no_jitter(), clock.clone());
    let err = cache.request_token(&request("alice", &["finance.read"])).await.unwrap_err();
    assert!(
        matches!(err, IamError::ModeRefused { configured: DelegationMode::TokenExchange, asked: DelegationMode::SelfAsserted, .. }),
        "{err}"
    );
    // The guide's mode configured: evidence is refused before the cache too.
    let guide = Arc::new(CountingIdp {
        configured: Some(DelegationMode::SelfAsserted),
        ..CountingIdp::new(Duration::from_secs(3600), clock.clone())
    });
    let cache = CachingAdapter::with_clock(guide.clone(), no_jitter(), clock);
    let err = cache.request_delegated_token(&delegation("evidence-alice", &["finance.read"])).await.unwrap_err();
    assert!(matches!(err, IamError::ModeRefused { configured: DelegationMode::SelfAsserted, .. }), "{err}");
    assert_eq!((verified.calls(), guide.calls()), (0, 0), "nothing reached the identity provider");
}

/// An adapter whose tokens are DPoP-bound to its key, as the vendor adapters' are.
#[derive(Debug)]
struct DpopIdp {
    key: Option<DpopKey>,
    calls: AtomicUsize,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl IamAdapter for DpopIdp {
    fn vendor(&self) -> Vendor {
        Vendor::Okta
    }
    fn cache_scope(&self) -> String {
        match &self.key {
            Some(key) => format!("okta|https://idp.example/token|agent|aud|dpop:{}", key.thumbprint()),
            None => "okta|https://idp.example/token|agent|aud".into(),
        }
    }
    fn dpop_key(&self) -> Option<&DpopKey> {
        self.key.as_ref()
    }
    fn delegation_modes(&self) -> &'static [DelegationMode] {
        &[DelegationMode::TokenExchange, DelegationMode::SelfAsserted]
    }
    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(self.issue(format!("dpop-token-{}-#{n}", request.act().sub())))
    }
    async fn request_delegated_token(&self, _request: &DelegationRequest) -> Result<TokenResponse, IamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(self.issue(format!("dpop-delegated-#{n}")))
    }
}

impl DpopIdp {
    fn new(key: Option<DpopKey>, clock: Arc<dyn Clock>) -> Self {
        Self { key, calls: AtomicUsize::new(0), clock }
    }
    fn issue(&self, token: String) -> TokenResponse {
        let token = TokenResponse::new(token, "DPoP", Duration::from_secs(3600), self.clock.now());
        match &self.key {
            Some(key) => token.with_dpop_key(key.clone()),
            None => token,
        }
    }
}

/// A shared store in memory that keeps what Redis keeps: the token and its facts, no key.
#[derive(Debug, Default)]
struct MemoryStore {
    tokens: std::sync::Mutex<std::collections::HashMap<CacheKey, TokenResponse>>,
}

#[async_trait]
impl SharedTokenStore for MemoryStore {
    async fn load(&self, key: &CacheKey) -> Result<Option<TokenResponse>, dual_auth_core::BoxError> {
        Ok(self.tokens.lock().unwrap().get(key).cloned())
    }
    async fn store(&self, key: &CacheKey, token: &TokenResponse, _keep_until: SystemTime) -> Result<(), dual_auth_core::BoxError> {
        let stored = TokenResponse::new(
            token.access_token().expose_secret(),
            token.token_type(),
            token.expires_in(),
            token.expires_at() - token.expires_in(),
        )
        .with_scopes(token.scopes().iter().cloned());
        self.tokens.lock().unwrap().insert(key.clone(), stored);
        Ok(())
    }
}

#[tokio::test]
async fn a_shared_dpop_token_gets_the_adapters_key_back_and_keys_differ_per_dpop_key() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let store = Arc::new(MemoryStore::default());
    let idp = Arc::new(DpopIdp::new(Some(key.clone()), clock.clone()));
    let replica = |idp: &Arc<DpopIdp>| CachingAdapter::with_clock(idp.clone(), no_jitter(), clock.clone()).with_shared_store(store.clone());
    let (a, b) = (replica(&idp), replica(&idp));
    assert_eq!(b.dpop_key().map(DpopKey::thumbprint), Some(key.thumbprint()), "the cache forwards the key");

    let first = a.request_token(&request("alice", &["finance.read"])).await.unwrap();
    let second = b.request_token(&request("alice", &["finance.read"])).await.unwrap();
    assert_eq!(idp.calls.load(Ordering::SeqCst), 1, "the second replica took the shared token");
    assert!(second.is_dpop_bound(), "its key re-attached");
    assert_eq!(second.dpop_key().unwrap().thumbprint(), key.thumbprint());
    assert_eq!(first, second);

    let evidence = delegation("evidence-alice", &["finance.read"]);
    a.request_delegated_token(&evidence).await.unwrap();
    let delegated = b.request_delegated_token(&evidence).await.unwrap();
    assert_eq!(idp.calls.load(Ordering::SeqCst), 2, "delegated tokens are shared too");
    assert!(delegated.is_dpop_bound(), "and get the key back");

    // Another key, another cache key: never the token bound to someone else's key.
    let other = DpopIdp::new(Some(DpopKey::generate(SigningAlgorithm::Es256).unwrap()), clock.clone());
    let plain = DpopIdp::new(None, clock.clone());
    let req = request("alice", &["finance.read"]);
    let keys =
        [CacheKey::new(&idp.cache_scope(), &req), CacheKey::new(&other.cache_scope(), &req), CacheKey::new(&plain.cache_scope(), &req)];
    assert_ne!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
    assert_ne!(keys[1], keys[2]);
}

#[tokio::test]
async fn a_shared_dpop_token_is_not_served_by_a_replica_without_the_key() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(0)));
    let store = Arc::new(MemoryStore::default());
    // A DPoP token under a scope whose adapter holds no key (a misconfigured replica).
    let keyless = Arc::new(DpopIdp::new(None, clock.clone()));
    let req = request("alice", &["finance.read"]);
    let stored = TokenResponse::new("dpop-token-elsewhere", "DPoP", Duration::from_secs(3600), clock.now());
    store.store(&CacheKey::new(&keyless.cache_scope(), &req), &stored, clock.now() + Duration::from_secs(3000)).await.unwrap();
    let cache = CachingAdapter::with_clock(keyless.clone(), no_jitter(), clock.clone()).with_shared_store(store.clone());
    let token = cache.request_token(&req).await.unwrap();
    assert_eq!(keyless.calls.load(Ordering::SeqCst), 1, "asked the identity provider instead");
    assert_ne!(token.access_token().expose_secret(), "dpop-token-elsewhere");
}
