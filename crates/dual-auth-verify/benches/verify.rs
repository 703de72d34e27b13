//! What verifying one request costs an API, per signing algorithm, with the issuer's keys
//! cached: `cargo bench -p dual-auth-verify --bench verify`.
//!
//! Static keys stand in for a warm JWKS cache (a lookup in memory either way), so the
//! figure is parsing, header checks, the signature and the claim checks.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{SigningAlgorithm, SigningKey, generate_key_pair};
use dual_auth_verify::{IssuerPolicy, Layout, Verifier};
use serde_json::json;

const ISSUER: &str = "https://idp.example.com/realms/corp";
const API: &str = "https://api.example.com/finance";

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    for (alg, bits) in [(SigningAlgorithm::Rs256, 2048), (SigningAlgorithm::Es256, 0), (SigningAlgorithm::EdDsa, 0)] {
        let pair = generate_key_pair(alg, bits).unwrap();
        let key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap().with_key_id("k1");
        let policy = || IssuerPolicy::new(ISSUER, API).static_keys([key.verifying_key()]).require_scopes(["finance.read"]);
        let dual = Verifier::builder().issuer(policy()).build().unwrap();
        let exchange = Verifier::builder().issuer(policy().layout(Layout::Rfc8693)).build().unwrap();
        let claims = |sub: &str, act: serde_json::Value| {
            json!({"iss": ISSUER, "sub": sub, "aud": API, "exp": now + 3600, "iat": now, "client_id": "agent-007",
                "scope": "finance.read", "act": act})
        };
        let dual_token = key.sign_jwt(&claims("agent-007", json!({"sub": "user_12345", "email": "alice@corp.example.com"}))).unwrap();
        let chain_token = key.sign_jwt(&claims("user_12345", json!({"sub": "agent-007", "act": {"sub": "planner"}}))).unwrap();

        let mut group = c.benchmark_group(format!("verify/{alg}"));
        group.bench_function("dual-auth", |b| b.iter(|| runtime.block_on(dual.verify(black_box(&dual_token), None)).unwrap()));
        group.bench_function("rfc8693-chain", |b| b.iter(|| runtime.block_on(exchange.verify(black_box(&chain_token), None)).unwrap()));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
