//! Any bytes as an access token (and, split at the first newline, an act assertion) for
//! verifiers in each layout, as an act JWT for core's verifier, and as a JWK: refused or
//! accepted, never a panic, never a hang.
#![no_main]

use std::sync::OnceLock;

use dual_auth_core::{ActJwtVerifier, VerifyingKey};
use dual_auth_verify::{ActAssertionPolicy, IssuerPolicy, Layout, Verifier};
use libfuzzer_sys::fuzz_target;

const ISSUER_KEY: &str = include_str!("../../crates/dual-auth-test-support/fixtures/keys/rsa2048-spki.pub.pem");
const APP_KEY: &str = include_str!("../../crates/dual-auth-test-support/fixtures/keys/ec-p256.pub.pem");

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifiers: Vec<Verifier>,
    act_jwt: ActJwtVerifier,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let key = || VerifyingKey::from_pem(ISSUER_KEY).expect("fixture key").with_key_id("issuer-key-1");
        let policy = |issuer: &str| IssuerPolicy::new(issuer, "https://api.example.com/finance").static_keys([key()]);
        let assertion = ActAssertionPolicy::with_key(VerifyingKey::from_pem(APP_KEY).expect("fixture key"), "api://finance").app_id("app");
        let verifiers = vec![
            Verifier::builder().issuer(policy("https://idp.example.com")).build().expect("verifier"),
            Verifier::builder().issuer(policy("https://idp.example.com").layout(Layout::Rfc8693)).build().expect("verifier"),
            Verifier::builder().issuer(policy("https://idp.example.com").act_assertion(assertion)).build().expect("verifier"),
        ];
        let act_jwt = ActJwtVerifier::builder(key(), "https://agent.example.com/invoke").build().expect("act JWT verifier");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Harness { runtime, verifiers, act_jwt }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (token, assertion) = match text.split_once('\n') {
        Some((token, assertion)) => (token, Some(assertion)),
        None => (text, None),
    };
    let harness = harness();
    for verifier in &harness.verifiers {
        let _ = harness.runtime.block_on(verifier.verify(token, assertion));
    }
    let _ = harness.runtime.block_on(harness.act_jwt.verify(token));
    if let Ok(serde_json::Value::Object(jwk)) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = VerifyingKey::from_jwk(&jwk);
    }
});
