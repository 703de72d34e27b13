//! Three agent replicas sharing replay state and tokens through a real `redis-server`.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::{
    Act, ActJwtError, ActJwtSigner, ActJwtVerifier, IamAdapter, IamError, SigningAlgorithm, SigningKey, TokenRequest, TokenResponse,
    Vendor, generate_key_pair,
};
use dual_auth_redis::{RedisReplayGuard, RedisSettings, RedisTokenStore, TokenEncryptionKey};
use dual_auth_session::{CachingAdapter, TokenCacheSettings};
use dual_auth_test_support::servers::Redis;

const AUD: &str = "https://agent.example.com/invoke";

fn settings(redis: &Redis) -> RedisSettings {
    RedisSettings::new(SecretString::from(redis.url()))
}

fn encryption_key() -> TokenEncryptionKey {
    TokenEncryptionKey::from_base64(&SecretString::from("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")).unwrap()
}

async fn replicas(redis: &Redis, key: &SigningKey) -> Vec<ActJwtVerifier> {
    let mut verifiers = Vec::new();
    for _ in 0..3 {
        // Each replica has its own connection, as separate processes would.
        let guard = RedisReplayGuard::new(settings(redis).connect().await.unwrap(), &settings(redis));
        verifiers.push(ActJwtVerifier::builder(key.verifying_key(), AUD).replay_guard(Arc::new(guard)).build().unwrap());
    }
    verifiers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn the_same_act_jwt_sent_to_three_replicas_at_once_is_accepted_exactly_once() {
    let redis = Redis::start();
    let pair = generate_key_pair(SigningAlgorithm::EdDsa, 0).unwrap();
    let key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap();
    let signer = ActJwtSigner::new(key.clone());
    let verifiers = Arc::new(replicas(&redis, &key).await);
    for trial in 0..1_000 {
        let jwt = signer.sign(&Act::new(format!("user_{trial}")).unwrap(), AUD, Duration::from_secs(60)).unwrap();
        let tasks: Vec<_> = (0..3)
            .map(|replica| {
                let (verifiers, jwt) = (Arc::clone(&verifiers), jwt.expose_secret().to_owned());
                tokio::spawn(async move { verifiers[replica].verify(&jwt).await })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => accepted += 1,
                Err(e) => assert!(e.is_replay(), "trial {trial}: {e}"),
            }
        }
        assert_eq!(accepted, 1, "trial {trial}");
    }
}

/// An identity provider double that counts the tokens it issues.
#[derive(Debug, Default)]
struct CountingIdp {
    calls: AtomicUsize,
}

#[async_trait]
impl IamAdapter for CountingIdp {
    fn vendor(&self) -> Vendor {
        Vendor::Keycloak
    }
    fn cache_scope(&self) -> String {
        "keycloak|https://idp.example/token|agent|aud".into()
    }
    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TokenResponse::new(format!("secret-token-{}-{n}", request.act().sub()), "Bearer", Duration::from_secs(3600), SystemTime::now())
            .with_scopes(request.scopes().iter().cloned()))
    }
}

async fn caching_replica(idp: &Arc<CountingIdp>, redis: &Redis) -> CachingAdapter {
    let store = RedisTokenStore::new(settings(redis).connect().await.unwrap(), &settings(redis), encryption_key());
    let settings = TokenCacheSettings { refresh_jitter: Duration::ZERO, ..TokenCacheSettings::default() };
    CachingAdapter::new(idp.clone(), settings).with_shared_store(Arc::new(store))
}

fn request() -> TokenRequest {
    TokenRequest::new("agent", Act::new("user_12345").unwrap(), ["finance.read"]).unwrap()
}

#[tokio::test]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn one_replicas_token_serves_the_others_and_redis_holds_no_usable_token() {
    let redis = Redis::start();
    let idp = Arc::new(CountingIdp::default());
    let a = caching_replica(&idp, &redis).await;
    let b = caching_replica(&idp, &redis).await;
    let c = caching_replica(&idp, &redis).await;
    let first = a.request_token(&request()).await.unwrap();
    let second = b.request_token(&request()).await.unwrap();
    let third = c.request_token(&request()).await.unwrap();
    assert_eq!(idp.calls.load(Ordering::SeqCst), 1, "one identity-provider call for three replicas");
    assert_eq!(first, second);
    assert_eq!(second, third);

    // What Redis holds is not the token.
    let mut raw = settings(&redis).connect().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("dual-auth:token:*").query_async(&mut raw).await.unwrap();
    assert_eq!(keys.len(), 1);
    let stored: String = redis::cmd("GET").arg(&keys[0]).query_async(&mut raw).await.unwrap();
    assert!(!stored.contains("secret-token"), "encrypted at rest");
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query_async(&mut raw).await.unwrap();
    assert!(ttl > 0 && ttl <= 3_540_000, "expires before the token (3600 s - 60 s refresh buffer): {ttl}");

    // A replica with another key cannot read it, and asks the identity provider instead.
    let other_key = TokenEncryptionKey::from_base64(&SecretString::from("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")).unwrap();
    let store = RedisTokenStore::new(settings(&redis).connect().await.unwrap(), &settings(&redis), other_key);
    let stranger = CachingAdapter::new(idp.clone(), TokenCacheSettings::default()).with_shared_store(Arc::new(store));
    stranger.request_token(&request()).await.unwrap();
    assert_eq!(idp.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn with_redis_down_replay_checks_refuse_and_the_cache_falls_back_then_both_recover() {
    let mut redis = Redis::start();
    let pair = generate_key_pair(SigningAlgorithm::EdDsa, 0).unwrap();
    let key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap();
    let signer = ActJwtSigner::new(key.clone());
    let verifiers = replicas(&redis, &key).await;
    let idp = Arc::new(CountingIdp::default());
    let cache = caching_replica(&idp, &redis).await;
    let sign = || signer.sign(&Act::new("u").unwrap(), AUD, Duration::from_secs(60)).unwrap();
    verifiers[0].verify(sign().expose_secret()).await.unwrap();

    redis.stop();
    let err = verifiers[1].verify(sign().expose_secret()).await.unwrap_err();
    assert!(matches!(err, ActJwtError::ReplayCheckFailed(_)), "fail closed: {err}");
    let fresh = TokenRequest::new("agent", Act::new("user_down").unwrap(), ["finance.read"]).unwrap();
    cache.request_token(&fresh).await.unwrap();
    assert_eq!(idp.calls.load(Ordering::SeqCst), 1, "the token came from the identity provider");

    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if verifiers[2].verify(sign().expose_secret()).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the replay guard reconnects on its own");
    let again = TokenRequest::new("agent", Act::new("user_back").unwrap(), ["finance.read"]).unwrap();
    cache.request_token(&again).await.unwrap();
    let mut raw = settings(&redis).connect().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("dual-auth:token:*").query_async(&mut raw).await.unwrap();
    assert_eq!(keys.len(), 1, "sharing works again after the restart");
}

#[test]
fn settings_never_show_the_password_and_keys_are_checked() {
    let settings = RedisSettings::new(SecretString::from("redis://:hunter2@127.0.0.1:6379"));
    assert!(!format!("{settings:?}").contains("hunter2"));
    assert!(TokenEncryptionKey::from_base64(&SecretString::from("c2hvcnQ=")).unwrap_err().to_string().contains("32 bytes"));
    assert!(format!("{:?}", encryption_key()).contains("REDACTED"));
}

#[tokio::test]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn a_password_in_the_url_is_used_and_never_shown() {
    let redis = Redis::start_with_password("s3cret-redis-pass");
    let good = RedisSettings::new(SecretString::from(format!("redis://:s3cret-redis-pass@127.0.0.1:{}", redis.port)));
    let guard = RedisReplayGuard::new(good.connect().await.unwrap(), &good);
    dual_auth_core::ReplayGuard::check_and_record(&guard, "jti-1", SystemTime::now() + Duration::from_secs(60)).await.unwrap();

    let bad = RedisSettings::new(SecretString::from(format!("redis://:wrong-pass@127.0.0.1:{}", redis.port)));
    let failure = match bad.connect().await {
        Err(e) => e.to_string(),
        Ok(connection) => {
            // Some servers accept the connection and refuse the first command instead.
            let guard = RedisReplayGuard::new(connection, &bad);
            dual_auth_core::ReplayGuard::check_and_record(&guard, "jti-2", SystemTime::now() + Duration::from_secs(60))
                .await
                .unwrap_err()
                .to_string()
        }
    };
    assert!(!failure.contains("wrong-pass"), "{failure}");
    let err = RedisSettings::new(SecretString::from("http://127.0.0.1:6379")).connect().await.unwrap_err();
    assert!(err.to_string().contains("use redis:// or rediss://"), "{err}");
}

/// An identity provider double whose tokens are DPoP-bound to one key shared by replicas.
#[derive(Debug)]
struct DpopIdp {
    key: dual_auth_core::DpopKey,
    calls: AtomicUsize,
}

#[async_trait]
impl IamAdapter for DpopIdp {
    fn vendor(&self) -> Vendor {
        Vendor::Keycloak
    }
    fn cache_scope(&self) -> String {
        format!("keycloak|https://idp.example/token|agent|aud|dpop:{}", self.key.thumbprint())
    }
    fn dpop_key(&self) -> Option<&dual_auth_core::DpopKey> {
        Some(&self.key)
    }
    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TokenResponse::new(format!("secret-dpop-token-{n}"), "DPoP", Duration::from_secs(3600), SystemTime::now())
            .with_scopes(request.scopes().iter().cloned())
            .with_dpop_key(self.key.clone()))
    }
}

#[tokio::test]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn a_dpop_token_round_trips_through_redis_and_gets_its_key_back() {
    let redis = Redis::start();
    let key = dual_auth_core::DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let idp = Arc::new(DpopIdp { key: key.clone(), calls: AtomicUsize::new(0) });
    let replica = || async {
        let store = RedisTokenStore::new(settings(&redis).connect().await.unwrap(), &settings(&redis), encryption_key());
        let settings = TokenCacheSettings { refresh_jitter: Duration::ZERO, ..TokenCacheSettings::default() };
        CachingAdapter::new(idp.clone(), settings).with_shared_store(Arc::new(store))
    };
    let (a, b) = (replica().await, replica().await);
    let first = a.request_token(&request()).await.unwrap();
    let second = b.request_token(&request()).await.unwrap();
    assert_eq!(idp.calls.load(Ordering::SeqCst), 1, "the second replica read Redis");
    assert_eq!(second.token_type(), "DPoP", "token_type stored");
    assert!(second.is_dpop_bound(), "the adapter's key re-attached");
    assert_eq!(second.dpop_key().unwrap().thumbprint(), key.thumbprint());
    assert_eq!(first, second);
}
