//! A cached token lookup (the hot path of every agent call after the first):
//! `cargo bench -p dual-auth-session --bench token_cache`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use dual_auth_core::{Act, IamAdapter, IamError, TokenRequest, TokenResponse, Vendor};
use dual_auth_session::{CachingAdapter, TokenCacheSettings};

/// Issues a token instantly: isolates the cache's own cost.
#[derive(Debug)]
struct InstantIdp;

#[async_trait]
impl IamAdapter for InstantIdp {
    fn vendor(&self) -> Vendor {
        Vendor::Okta
    }
    fn cache_scope(&self) -> String {
        "okta|bench".into()
    }
    async fn request_token(&self, _: &TokenRequest) -> Result<TokenResponse, IamError> {
        Ok(TokenResponse::new("token", "Bearer", Duration::from_secs(3600), SystemTime::now()))
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let cache = CachingAdapter::new(Arc::new(InstantIdp), TokenCacheSettings::default());
    let request = TokenRequest::new(
        "agent",
        Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice"),
        ["finance.read", "finance.write"],
    )
    .unwrap();
    runtime.block_on(cache.request_token(&request)).unwrap();
    c.bench_function("token_cache/hit", |b| b.iter(|| runtime.block_on(cache.request_token(black_box(&request))).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
