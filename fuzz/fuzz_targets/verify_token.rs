//! Any bytes as an access token (and, split at the first newline, an act assertion) for
//! verifiers in each layout, as an act JWT for core's verifier, as a JWK, and as a DPoP
//! request (the bytes as the proof beside a token of the trusted issuer, and split at the
//! first newline as token and proof): refused or accepted, never a panic, never a hang.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use dual_auth_core::{ActJwtVerifier, ManualClock, VerifyingKey};
use dual_auth_verify::{ActAssertionPolicy, IssuerPolicy, Layout, Verifier};
use libfuzzer_sys::fuzz_target;

const ISSUER_KEY: &str = include_str!("../../crates/dual-auth-test-support/fixtures/keys/rsa2048-spki.pub.pem");
const APP_KEY: &str = include_str!("../../crates/dual-auth-test-support/fixtures/keys/ec-p256.pub.pem");

/// A token naming the trusted issuer, unsigned: a DPoP proof is checked before the
/// token's signature, so any proof reaches every check of its own.
const DPOP_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imlzc3Vlci1rZXktMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9.AA";
/// The time the DPoP seeds were made at: the DPoP verifier's clock stands there, so a seed
/// passes every check and mutations start from a valid request.
const DPOP_SEED_TIME: u64 = 4_102_444_000;

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifiers: Vec<Verifier>,
    act_jwt: ActJwtVerifier,
    dpop: Verifier,
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
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(DPOP_SEED_TIME));
        let dpop = Verifier::builder()
            .issuer(policy("https://idp.example.com"))
            .public_origin("https://api.example.com")
            .clock(Arc::new(clock))
            .build()
            .expect("verifier");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Harness { runtime, verifiers, act_jwt, dpop }
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
    let uri = http::Uri::from_static("/finance/report?q=1");
    for (token, proof) in [(DPOP_TOKEN, text), (token, assertion.unwrap_or_default())] {
        let (Ok(authorization), Ok(proof)) = (http::HeaderValue::from_str(&format!("DPoP {token}")), http::HeaderValue::from_str(proof))
        else {
            continue;
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, authorization);
        headers.insert("dpop", proof);
        let _ = harness.runtime.block_on(harness.dpop.verify_headers(&http::Method::POST, &uri, &headers));
    }
});
