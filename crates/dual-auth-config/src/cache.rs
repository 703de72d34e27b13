//! Secrets fetched once and kept for a while; concurrent loads of a key make one request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::{SecretBackend, SecretError, SecretSource};

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Option<SecretString>)>>>;

/// How long secrets are kept by default.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

/// A [`SecretSource`] that caches another's answers (found or not found) for a while.
/// Errors are not cached.
#[derive(Debug)]
pub struct CachedSource {
    inner: Arc<dyn SecretSource>,
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl CachedSource {
    /// Caches `inner`'s answers for `ttl`.
    pub fn new(inner: Arc<dyn SecretSource>, ttl: Duration) -> Self {
        Self { inner, ttl, slots: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key.to_owned()).or_default())
    }
}

#[async_trait]
impl SecretSource for CachedSource {
    fn backend(&self) -> SecretBackend {
        self.inner.backend()
    }

    fn location_of(&self, key: &str) -> String {
        self.inner.location_of(key)
    }

    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let slot = self.slot(key);
        // Held across the fetch: concurrent loads of this key wait for one request.
        let mut guard = slot.lock().await;
        if let Some((at, value)) = guard.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = self.inner.fetch(key).await?;
        *guard = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl SecretSource for Counting {
        fn backend(&self) -> SecretBackend {
            SecretBackend::Aws
        }
        async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(SecretError::Unavailable { backend: SecretBackend::Aws, key: key.into(), reason: "down".into(), source: None });
            }
            Ok(Some(SecretString::from(format!("value-of-{key}"))))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_loads_of_a_key_make_one_request_and_errors_are_not_kept() {
        let inner = Arc::new(Counting::default());
        let cache = Arc::new(CachedSource::new(inner.clone(), Duration::from_secs(60)));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let c = Arc::clone(&cache);
                tokio::spawn(async move { c.fetch("K").await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        cache.fetch("OTHER").await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);

        inner.fail.store(true, Ordering::SeqCst);
        assert!(cache.fetch("NEW").await.is_err());
        inner.fail.store(false, Ordering::SeqCst);
        assert!(cache.fetch("NEW").await.is_ok(), "the error was not cached");

        let short = CachedSource::new(inner.clone(), Duration::ZERO);
        short.fetch("K").await.unwrap();
        short.fetch("K").await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 6, "expired entries are fetched again");
    }
}
