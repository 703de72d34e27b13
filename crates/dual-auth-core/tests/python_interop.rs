//! Act JWTs cross between the Python package `dual-auth==1.0.1` and this crate, both ways.
//!
//! Needs the reference venv: `cargo xtask test` creates it and runs these (they are
//! `#[ignore]`d for a plain `cargo test`).

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dual_auth_core::dangerous::UnverifiedJwt;
use dual_auth_core::{Act, ActJwtError, ActJwtSigner, ActJwtVerifier, SigningKey, VerifyingKey};
use dual_auth_test_support::run_python;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const AUD: &str = "https://agent.example.com/invoke";

fn fixture(name: &str) -> PathBuf {
    dual_auth_test_support::key_fixture(name)
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/act_jwt.py")
}

fn python_sign(private_key: &Path, ttl: u64, act: &Value) -> String {
    let out = run_python(&script(), &["sign", private_key.to_str().unwrap(), AUD, &ttl.to_string(), &act.to_string()]);
    assert!(out.status.success(), "python sign failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn python_verify(public_key: &Path, audience: &str, tokens: &[&str]) -> Vec<String> {
    let mut args = vec!["verify", public_key.to_str().unwrap(), audience];
    args.extend_from_slice(tokens);
    let out = run_python(&script(), &args);
    assert!(out.status.success(), "python verify crashed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

fn rust_verifier() -> ActJwtVerifier {
    ActJwtVerifier::builder(VerifyingKey::from_pem_file(fixture("rsa2048-spki.pub.pem")).unwrap(), AUD).build().unwrap()
}

#[tokio::test]
#[ignore = "needs the reference Python venv: run `cargo xtask test`"]
async fn python_signed_act_jwts_verify_in_rust() {
    for private in ["rsa2048-pkcs8.pem", "rsa2048-pkcs1.pem"] {
        let act = json!({"sub": "user_12345", "email": "alice@corp.example.com", "name": "Alice Smith"});
        let token = python_sign(&fixture(private), 60, &act);
        // Python's wire format is the one we write: same header, same claims in the same order.
        let jwt = UnverifiedJwt::parse(&token).unwrap();
        assert_eq!(Value::Object(jwt.header().clone()), json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(jwt.claims().keys().collect::<Vec<_>>(), ["iss", "sub", "aud", "exp", "iat", "jti", "act"]);
        assert_eq!(jwt.claims()["exp"].as_u64().unwrap() - jwt.claims()["iat"].as_u64().unwrap(), 60);
        assert_eq!(URL_SAFE_NO_PAD.decode(jwt.claims()["jti"].as_str().unwrap()).unwrap().len(), 32);

        let verifier = rust_verifier();
        let verified = verifier.verify(&token).await.unwrap();
        assert_eq!(verified.act().to_value(), act);
        assert_eq!(verified.issuer(), Some("application"));
        assert!(verifier.verify(&token).await.unwrap_err().is_replay(), "replay refused in Rust too");
    }
}

#[tokio::test]
#[ignore = "needs the reference Python venv: run `cargo xtask test`"]
async fn python_tokens_outside_our_bounds_are_refused_in_rust() {
    // Upstream only warns about a TTL of 400 s; we bound the lifetime at 300 s.
    let token = python_sign(&fixture("rsa2048-pkcs8.pem"), 400, &json!({"sub": "u-1", "email": "a@b.example"}));
    let err = rust_verifier().verify(&token).await.unwrap_err();
    assert!(matches!(err, ActJwtError::LifetimeTooLong { lifetime_secs: 400, max_secs: 300 }), "{err}");
    // Signed with another key than the one we trust.
    let token = python_sign(&fixture("rsa2048-other.pem"), 60, &json!({"sub": "u-1", "email": "a@b.example"}));
    assert!(matches!(rust_verifier().verify(&token).await, Err(ActJwtError::SignatureInvalid)));
}

#[test]
#[ignore = "needs the reference Python venv: run `cargo xtask test`"]
fn rust_signed_act_jwts_verify_in_python() {
    let act = Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice Smith").with_oid("0000-oid");
    let plain = ActJwtSigner::new(SigningKey::from_pem_file(fixture("rsa2048-pkcs8.pem")).unwrap());
    let with_kid = ActJwtSigner::new(SigningKey::from_pem_file(fixture("rsa2048-pkcs1.pem")).unwrap().with_key_id("app-2026-11"));
    let a = plain.sign(&act, AUD, Duration::from_secs(60)).unwrap();
    let b = with_kid.sign(&act, AUD, Duration::from_secs(300)).unwrap();
    let lines = python_verify(&fixture("rsa2048-spki.pub.pem"), AUD, &[a.expose_secret(), b.expose_secret(), a.expose_secret()]);
    let expected = format!("ok {}", serde_json::to_string(&act).unwrap());
    assert_eq!(lines, [expected.as_str(), expected.as_str(), "err Act JWT replay detected"]);
}

#[test]
#[ignore = "needs the reference Python venv: run `cargo xtask test`"]
fn python_refuses_rust_tokens_it_should_refuse() {
    let signer = ActJwtSigner::new(SigningKey::from_pem_file(fixture("rsa2048-pkcs8.pem")).unwrap());
    let token = signer.sign(&Act::new("u-1").unwrap(), AUD, Duration::from_secs(60)).unwrap();
    let lines = python_verify(&fixture("rsa2048-spki.pub.pem"), "https://other.example.com/invoke", &[token.expose_secret()]);
    assert_eq!(lines, ["err Act JWT invalid audience"]);
    let lines = python_verify(&fixture("rsa2048-other.pub.pem"), AUD, &[token.expose_secret()]);
    assert_eq!(lines, ["err Act JWT signature invalid"]);
    // An expired Rust token (signed on a clock 10 minutes behind) is refused by Python.
    let past = dual_auth_core::ManualClock::new(std::time::SystemTime::now() - Duration::from_secs(600));
    let old = signer.with_clock(Arc::new(past)).sign(&Act::new("u-1").unwrap(), AUD, Duration::from_secs(60)).unwrap();
    let lines = python_verify(&fixture("rsa2048-spki.pub.pem"), AUD, &[old.expose_secret()]);
    assert_eq!(lines, ["err Act JWT expired"]);
}

#[test]
#[ignore = "needs the reference Python venv: run `cargo xtask test`"]
fn the_same_session_data_gives_the_same_act_as_the_python_package() {
    use dual_auth_core::UserSession;
    let cases = json!([
        {"session": {"user_email": "alice@corp.example.com", "user_name": "Alice Smith", "user_id": "user_12345"}},
        {"session": {"user_email": "alice@corp.example.com", "user_name": "", "user_id": "user_12345"}},
        {"session": {"user_email": "alice@corp.example.com"}},
        {"session": {"user_email": ""}},
        {"claims": {"sub": "f1234567-89ab", "email": "alice@corp.example.com", "name": "Alice", "preferred_username": "alice"}},
        {"claims": {"userPrincipalName": "alice@corp.onmicrosoft.com", "displayName": "Alice", "oid": "0000-oid"}},
        {"claims": {"mail": "m@x.example", "user_email": "ue@x.example", "uid": "00u1", "display_name": "D"}},
        {"claims": {"user_id": "id-1", "sub": "sub-1", "email": "e@x.example"}},
        {"claims": {"sub": "u-only"}},
    ]);
    let out = run_python(&script(), &["extract", &cases.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    let ours: Vec<String> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let session = match case.get("session") {
                Some(s) => {
                    let mut session = UserSession::new(s["user_email"].as_str().unwrap());
                    session.user_name = s.get("user_name").and_then(Value::as_str).map(str::to_owned);
                    session.user_id = s.get("user_id").and_then(Value::as_str).map(str::to_owned);
                    Ok(session)
                }
                None => UserSession::from_claims(case["claims"].as_object().unwrap()),
            };
            match session.and_then(|s| s.to_act()) {
                Ok(act) => {
                    let mut value = act.to_value();
                    // Documented difference: we carry Entra ID's oid in the act; upstream drops it.
                    if let Some(oid) = value.as_object_mut().unwrap().shift_remove("oid") {
                        assert_eq!(case["claims"]["oid"], oid);
                    }
                    format!("ok {value}")
                }
                // The upstream message is ours too, followed by how to fix it.
                Err(e) => format!("err {}", e.to_string().split(':').next().unwrap()),
            }
        })
        .collect();
    assert_eq!(ours, theirs);
}
