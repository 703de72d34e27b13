//! What the one validation engine makes the verifiers agree on: a token without `kid` is
//! tried against every configured key (kid-less rotation), an `x5t` header is accepted,
//! and an array `aud` naming the audience passes, for access tokens, act JWTs and Entra ID
//! act assertions alike. Tokens are signed with OpenSSL, never with the code under test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{API, APP_ID, ENTRA_API, Issuer, Key};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{ActJwtError, ActJwtVerifier, SigningAlgorithm, VerifyingKey, generate_key_pair};
use dual_auth_verify::{ActAssertionPolicy, IssuerPolicy, VerifyError};
use serde_json::{Value, json};

const AGENT_ENDPOINT: &str = "https://agent.example.com/invoke";
/// An Entra ID-style certificate thumbprint header value.
const X5T: &str = "nYa2yVhOqNsdq9Q1hyxTqBLGe8Y";

/// The public key of `key`, without a `kid`.
fn public(key: &Key) -> VerifyingKey {
    VerifyingKey::from_pem(key.public_pem()).unwrap()
}

/// A key neither verifier was configured with.
fn stranger() -> Key {
    let pair = generate_key_pair(SigningAlgorithm::Rs256, 2048).unwrap();
    Key { pem: pair.private_key_pem.expose_secret().as_bytes().to_vec(), kid: "stranger".into() }
}

/// A JWK of `key` as published without a `kid`.
fn kid_less_jwk(key: &Key) -> Value {
    let mut jwk = key.jwk();
    jwk.as_object_mut().unwrap().remove("kid");
    jwk
}

/// An act JWT's claims, as the Python package writes them, at the issuer's clock.
fn act_jwt_claims(issuer: &Issuer, jti: &str) -> Value {
    let now = issuer.now();
    json!({
        "iss": "application", "sub": "application", "aud": AGENT_ENDPOINT, "exp": now + 60, "iat": now, "jti": jti,
        "act": {"sub": "user_12345"},
    })
}

fn act_jwt_verifier(issuer: &Issuer, keys: Vec<VerifyingKey>) -> ActJwtVerifier {
    ActJwtVerifier::builder_with_keys(keys, AGENT_ENDPOINT).clock(Arc::new(issuer.clock.clone())).build().unwrap()
}

#[tokio::test]
async fn a_kid_less_token_is_tried_against_every_static_key() {
    let issuer = Issuer::start().await;
    let (first, second) = (Key::main(), Key::other("unused"));
    let verifier = issuer.verifier(IssuerPolicy::new(issuer.issuer(), API).static_keys([public(&first), public(&second)]));
    for key in [&first, &second] {
        let token = key.sign(&json!({"alg": "RS256", "typ": "at+jwt"}), &issuer.claims());
        assert_eq!(verifier.verify(&token, None).await.unwrap().human.sub(), "user_12345");
    }
    let forged = stranger().sign(&json!({"alg": "RS256"}), &issuer.claims());
    let err = verifier.verify(&forged, None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::SignatureInvalid { kid, .. } if kid.is_empty()), "{err}");
}

#[tokio::test]
async fn a_kid_less_token_is_tried_against_every_published_key() {
    let issuer = Issuer::start().await;
    let (first, second) = (Key::main(), Key::other("unused"));
    issuer.publish(vec![kid_less_jwk(&first), kid_less_jwk(&second)]);
    let verifier = issuer.verifier(issuer.policy());
    let token = second.sign(&json!({"alg": "RS256", "typ": "at+jwt"}), &issuer.claims());
    assert_eq!(verifier.verify(&token, None).await.unwrap().agent.id(), "agent-007");
    let forged = stranger().sign(&json!({"alg": "RS256"}), &issuer.claims());
    let err = verifier.verify(&forged, None).await.unwrap_err();
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err}");
    assert_eq!(issuer.jwks_requests(), 1, "a kid-less token never makes the cache refresh");
}

#[tokio::test]
async fn a_kid_less_act_jwt_is_tried_against_every_configured_key() {
    let issuer = Issuer::start().await;
    let (first, second) = (Key::main(), Key::other("unused"));
    let verifier = act_jwt_verifier(&issuer, vec![public(&first), public(&second)]);
    let token = second.sign(&json!({"alg": "RS256", "typ": "JWT"}), &act_jwt_claims(&issuer, "jti-rotated"));
    assert_eq!(verifier.verify(&token).await.unwrap().jti(), "jti-rotated");
    let forged = stranger().sign(&json!({"alg": "RS256", "typ": "JWT"}), &act_jwt_claims(&issuer, "jti-forged"));
    assert!(matches!(verifier.verify(&forged).await.unwrap_err(), ActJwtError::SignatureInvalid));
    // No key at all is refused when built.
    let err = ActJwtVerifier::builder_with_keys([], AGENT_ENDPOINT).build().unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidSetting { setting: "keys", .. }), "{err}");
}

/// An Entra ID-shaped access token for agent-007, and its act assertion signed by `app`
/// under `header` with `aud` as given.
fn entra_pair(issuer: &Issuer, app: &Key, header: &Value, aud: Value, jti: &str) -> (String, String) {
    let token = issuer.entra_token_with("agent-007", |_| {});
    let now = issuer.now();
    let claims = json!({
        "iss": APP_ID, "aud": aud, "exp": now + 300, "iat": now, "jti": jti, "azp": "agent-007",
        "act": {"sub": "user_12345", "email": "alice@corp.example.com"},
    });
    (token, app.sign(header, &claims))
}

fn entra_verifier(issuer: &Issuer, app: &Key) -> dual_auth_verify::Verifier {
    let assertion_policy = ActAssertionPolicy::with_key(public(app), ENTRA_API).app_id(APP_ID);
    issuer.verifier(IssuerPolicy::new(issuer.issuer(), ENTRA_API).jwks_url(issuer.server.url("/jwks")).act_assertion(assertion_policy))
}

#[tokio::test]
async fn an_x5t_header_is_accepted_by_every_verifier() {
    let issuer = Issuer::start().await;
    // An access token, as Entra ID signs them: kid and x5t.
    let verifier = issuer.verifier(issuer.policy());
    let token = issuer.key.sign(&json!({"alg": "RS256", "typ": "at+jwt", "kid": issuer.key.kid, "x5t": X5T}), &issuer.claims());
    assert_eq!(verifier.verify(&token, None).await.unwrap().human.sub(), "user_12345");

    // An act JWT.
    let key = Key::main();
    let act_jwts = act_jwt_verifier(&issuer, vec![public(&key)]);
    let act_jwt = key.sign(&json!({"alg": "RS256", "typ": "JWT", "x5t": X5T}), &act_jwt_claims(&issuer, "jti-x5t"));
    assert_eq!(act_jwts.verify(&act_jwt).await.unwrap().act().sub(), "user_12345");

    // An Entra ID act assertion.
    let app = Key::other("app");
    let header = json!({"alg": "RS256", "typ": dual_auth_core::ACT_ASSERTION_TYPE, "x5t": X5T});
    let (token, assertion) = entra_pair(&issuer, &app, &header, json!(ENTRA_API), "assertion-x5t");
    let subject = entra_verifier(&issuer, &app).verify(&token, Some(&assertion)).await.unwrap();
    assert_eq!(subject.human.sub(), "user_12345");

    // A key carried in the header is still refused.
    let carried = issuer.key.sign(&json!({"alg": "RS256", "kid": issuer.key.kid, "x5c": ["MIIB..."]}), &issuer.claims());
    let err = verifier.verify(&carried, None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::UnsupportedHeader { name, .. } if name == "x5c"), "{err}");
}

#[tokio::test]
async fn an_array_audience_naming_the_api_is_accepted_by_the_token_and_assertion_checks() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy());
    let token = issuer.token_with(|c| c["aud"] = json!(["https://other.example", API]));
    assert_eq!(verifier.verify(&token, None).await.unwrap().human.sub(), "user_12345");

    let app = Key::other("app");
    let header = json!({"alg": "RS256", "typ": dual_auth_core::ACT_ASSERTION_TYPE});
    let entra = entra_verifier(&issuer, &app);
    let (token, assertion) = entra_pair(&issuer, &app, &header, json!(["https://other.example", ENTRA_API]), "assertion-array");
    assert_eq!(entra.verify(&token, Some(&assertion)).await.unwrap().human.sub(), "user_12345");
    // An array naming only others is refused, as a string naming another would be.
    let (token, assertion) = entra_pair(&issuer, &app, &header, json!(["https://other.example"]), "assertion-other");
    let err = entra.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(matches!(err, VerifyError::ActAssertion(ActJwtError::InvalidAudience { .. })), "{err}");

    // An array changes nothing else: the assertion still expires (the token lives longer).
    let (token, assertion) = entra_pair(&issuer, &app, &header, json!([ENTRA_API]), "assertion-late");
    issuer.clock.advance(Duration::from_secs(306));
    let err = entra.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(err.is_expired(), "{err}");
}
