//! Act JWT sign and verify cost per algorithm: `cargo bench -p dual-auth-core --bench act_jwt`.
//!
//! Verification is measured without the replay store (which would refuse every repeat of
//! the same token): it is signature and claim checking, the part that depends on the key.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{Act, ActJwtSigner, ActJwtVerifier, ReplayError, ReplayGuard, SigningAlgorithm, SigningKey, generate_key_pair};

const AUD: &str = "https://agent.example.com/invoke";

/// Accepts every jti: isolates the cryptographic and claim checks.
#[derive(Debug)]
struct NoReplayStore;

#[async_trait::async_trait]
impl ReplayGuard for NoReplayStore {
    async fn check_and_record(&self, _: &str, _: SystemTime) -> Result<(), ReplayError> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let act = Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice Smith");
    for (alg, bits) in [(SigningAlgorithm::Rs256, 2048), (SigningAlgorithm::Es256, 0), (SigningAlgorithm::EdDsa, 0)] {
        let pair = generate_key_pair(alg, bits).unwrap();
        let key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap();
        let signer = ActJwtSigner::new(key.clone());
        let verifier = ActJwtVerifier::builder(key.verifying_key(), AUD).replay_guard(Arc::new(NoReplayStore)).build().unwrap();
        let token = signer.sign(&act, AUD, Duration::from_secs(60)).unwrap();

        let mut group = c.benchmark_group(format!("act_jwt/{alg}"));
        group.bench_function("sign", |b| b.iter(|| signer.sign(black_box(&act), AUD, Duration::from_secs(60)).unwrap()));
        group.bench_function("verify", |b| b.iter(|| runtime.block_on(verifier.verify(black_box(token.expose_secret()))).unwrap()));
        group.finish();
    }
}

/// A client assertion (`client_secret_jwt`, HS256) as the vendor adapters build one per attempt.
fn client_assertion(c: &mut Criterion) {
    let auth = dual_auth_core::ClientAuthentication::client_secret_jwt(&dual_auth_core::secrecy::SecretString::from(
        "bench-client-secret-0123456789abcdefgh",
    ))
    .unwrap();
    let act = Act::new("user_12345").unwrap().with_email("alice@corp.example.com");
    let claims = dual_auth_core::AssertionClaims {
        issuer: "finance-agent",
        audience: "https://kc.example.com/realms/corp",
        lifetime: Duration::from_secs(300),
        act: Some(&act),
        authorized_party: None,
        not_before: false,
    };
    c.bench_function("client_assertion/HS256", |b| b.iter(|| auth.sign(black_box(&claims), SystemTime::now()).unwrap()));
}

criterion_group!(benches, bench, client_assertion);
criterion_main!(benches);
