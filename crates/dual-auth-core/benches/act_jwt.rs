//! Act JWT sign and verify cost per algorithm: `cargo bench -p dual-auth-core --bench act_jwt`.
//!
//! Verification is measured without the replay store (which would refuse every repeat of
//! the same token): it is signature and claim checking, the part that depends on the key.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        if alg == SigningAlgorithm::Rs256 {
            // The floor `verify` is held to: what `openssl speed rsa2048` times, the RSA public
            // operation and PKCS #1 v1.5 check alone, on a digest computed beforehand.
            let (signing_input, signature) = token.expose_secret().rsplit_once('.').unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            let digest = openssl::sha::sha256(signing_input.as_bytes());
            let public = openssl::pkey::PKey::public_key_from_pem(pair.public_key_pem.as_bytes()).unwrap();
            let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&public).unwrap();
            ctx.verify_init().unwrap();
            ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1).unwrap();
            ctx.set_signature_md(openssl::md::Md::sha256()).unwrap();
            group
                .bench_function("rsa_verify_floor", |b| b.iter(|| assert!(ctx.verify(black_box(&digest), black_box(&signature)).unwrap())));
        }
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

    // `private_key_jwt` with an EC P-256 key, as Okta and Keycloak agents may use.
    let pair = generate_key_pair(SigningAlgorithm::Es256, 0).unwrap();
    let key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap();
    let auth = dual_auth_core::ClientAuthentication::private_key_jwt(key);
    c.bench_function("client_assertion/ES256", |b| b.iter(|| auth.sign(black_box(&claims), SystemTime::now()).unwrap()));
}

/// A DPoP proof (RFC 9449) for one resource request, as the API client signs one per call.
fn dpop_proof(c: &mut Criterion) {
    let url = url::Url::parse("https://api.example.com/finance/reports?quarter=3").unwrap();
    let access_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl";
    for alg in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
        let key = dual_auth_core::DpopKey::generate(alg).unwrap();
        c.bench_function(&format!("dpop_proof/{alg}"), |b| {
            b.iter(|| key.proof("GET", black_box(&url), Some(access_token), None, SystemTime::now()).unwrap())
        });
    }
}

criterion_group!(benches, bench, client_assertion, dpop_proof);
criterion_main!(benches);
