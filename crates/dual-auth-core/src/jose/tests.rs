//! Act JWT wire format and hostile-token tests. They sit inside the module so they can
//! craft tokens with arbitrary headers, which the public API rightly cannot.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{HS256, JwsSigner};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::dangerous::UnverifiedJwt;
use crate::{
    Act, ActError, ActJwtError, ActJwtSigner, ActJwtVerifier, InMemoryReplayGuard, ManualClock, ReplayError, ReplayGuard, SigningKey,
    VerifyingKey,
};

const AUD: &str = "https://agent.example.com/invoke";
const NOW: u64 = 1_800_000_000;

fn fixture(name: &str) -> PathBuf {
    dual_auth_test_support::key_fixture(name)
}

fn rsa_key() -> SigningKey {
    SigningKey::from_pem_file(fixture("rsa2048-pkcs8.pem")).unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW))
}

fn act() -> Act {
    Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice Smith")
}

fn verifier(key: VerifyingKey, clock: &ManualClock) -> ActJwtVerifier {
    ActJwtVerifier::builder(key, AUD).clock(Arc::new(clock.clone())).build().unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token with any header and claims, signed by `key` (whatever the header says).
fn craft(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn good_claims() -> Value {
    json!({"iss": "application", "sub": "application", "aud": AUD, "exp": NOW + 60, "iat": NOW, "jti": "jti-0001", "act": {"sub": "user_12345"}})
}

fn with(mut claims: Value, field: &str, value: Option<Value>) -> Value {
    let map = claims.as_object_mut().unwrap();
    match value {
        Some(v) => map.insert(field.into(), v),
        None => map.remove(field),
    };
    claims
}

const RS256_HEADER: fn() -> Value = || json!({"alg": "RS256", "typ": "JWT"});

async fn verify_crafted(claims: Value) -> Result<crate::VerifiedActJwt, ActJwtError> {
    let key = rsa_key();
    let token = craft(&RS256_HEADER(), &claims, &key);
    verifier(key.verifying_key(), &clock()).verify(&token).await
}

#[tokio::test]
async fn signed_token_has_the_upstream_wire_format_field_by_field() {
    let clock = clock();
    let signer = ActJwtSigner::new(rsa_key()).with_clock(Arc::new(clock.clone()));
    let token = signer.sign(&act(), AUD, Duration::from_secs(60)).unwrap();
    let token = token.expose_secret();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims.keys().collect::<Vec<_>>(), ["iss", "sub", "aud", "exp", "iat", "jti", "act"]);
    assert_eq!(claims["iss"], "application");
    assert_eq!(claims["sub"], "application");
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 60);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 43);
    assert_eq!(URL_SAFE_NO_PAD.decode(jti).unwrap().len(), 32);
    assert_eq!(claims["act"], json!({"sub": "user_12345", "email": "alice@corp.example.com", "name": "Alice Smith"}));
    // RS256 signature over the first two parts, 256 bytes for a 2048-bit key.
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
    let verified = verifier(rsa_key().verifying_key(), &clock).verify(token).await.unwrap();
    assert_eq!(verified.act(), &act());
    assert_eq!(verified.jti(), jti);
    assert_eq!(verified.issuer(), Some("application"));
}

#[tokio::test]
async fn every_token_gets_a_fresh_jti() {
    let signer = ActJwtSigner::new(rsa_key());
    let a = UnverifiedJwt::parse(signer.sign(&act(), AUD, Duration::from_secs(60)).unwrap().expose_secret()).unwrap();
    let b = UnverifiedJwt::parse(signer.sign(&act(), AUD, Duration::from_secs(60)).unwrap().expose_secret()).unwrap();
    assert_ne!(a.claims()["jti"], b.claims()["jti"]);
}

#[test]
fn kid_is_written_when_the_key_has_one() {
    let signer = ActJwtSigner::new(rsa_key().with_key_id("app-2026-11"));
    let jwt = UnverifiedJwt::parse(signer.sign(&act(), AUD, Duration::from_secs(60)).unwrap().expose_secret()).unwrap();
    assert_eq!(Value::Object(jwt.header().clone()), json!({"alg": "RS256", "typ": "JWT", "kid": "app-2026-11"}));
}

#[test]
fn ttl_outside_bounds_and_non_https_endpoints_are_errors() {
    let signer = ActJwtSigner::new(rsa_key());
    for ttl in [0, 9, 301, 3600] {
        let err = signer.sign(&act(), AUD, Duration::from_secs(ttl)).unwrap_err();
        assert!(matches!(err, ActJwtError::InvalidTtl { ttl_secs, min_secs: 10, max_secs: 300 } if ttl_secs == ttl), "{err}");
    }
    for endpoint in
        ["http://agent.example.com/invoke", "agent.example.com", "https://", "ftp://x.example", "https://user:pw@agent.example.com/"]
    {
        let err = signer.sign(&act(), endpoint, Duration::from_secs(60)).unwrap_err();
        assert!(matches!(err, ActJwtError::InvalidAgentEndpoint { .. }), "{endpoint}: {err}");
        assert!(err.to_string().starts_with("Agent endpoint must use HTTPS for security"), "{err}");
    }
    let signer = signer.with_ttl_bounds(Duration::from_secs(1), Duration::from_secs(900)).unwrap();
    assert!(signer.sign(&act(), AUD, Duration::from_secs(600)).is_ok());
}

#[tokio::test]
async fn es256_eddsa_and_ps256_keys_sign_and_verify_with_their_own_algorithm() {
    for (file, alg) in
        [("ec-p256-pkcs8.pem", "ES256"), ("ec-p256-sec1.pem", "ES256"), ("ed25519-pkcs8.pem", "EdDSA"), ("rsa2048-pkcs1.pem", "PS256")]
    {
        let key = SigningKey::from_pem_file_with_algorithm(fixture(file), alg.parse().unwrap()).unwrap();
        let clock = clock();
        let token = ActJwtSigner::new(key.clone()).with_clock(Arc::new(clock.clone())).sign(&act(), AUD, Duration::from_secs(30)).unwrap();
        assert_eq!(UnverifiedJwt::parse(token.expose_secret()).unwrap().header()["alg"], alg);
        let verified = verifier(key.verifying_key(), &clock).verify(token.expose_secret()).await.unwrap();
        assert_eq!(verified.algorithm().as_str(), alg);
        // The public key as users hold it (an openssl-made SPKI file) verifies too.
        let public = match alg {
            "ES256" => "ec-p256.pub.pem",
            "EdDSA" => "ed25519.pub.pem",
            _ => "rsa2048-spki.pub.pem",
        };
        let public = VerifyingKey::from_pem_with_algorithm(std::fs::read(fixture(public)).unwrap(), alg.parse().unwrap()).unwrap();
        let token = ActJwtSigner::new(key).with_clock(Arc::new(clock.clone())).sign(&act(), AUD, Duration::from_secs(30)).unwrap();
        assert!(verifier(public, &clock).verify(token.expose_secret()).await.is_ok(), "{alg}");
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let token = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&good_claims()));
    let err = verifier(rsa_key().verifying_key(), &clock()).verify(&token).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::AlgorithmNotAllowed { found, allowed } if found == "none" && allowed == "RS256"), "{err}");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_bytes_is_refused() {
    let public_pem = std::fs::read(fixture("rsa2048-spki.pub.pem")).unwrap();
    let input = format!("{}.{}", b64(&json!({"alg": "HS256", "typ": "JWT"})), b64(&good_claims()));
    let mac = HS256.signer_from_bytes(&public_pem).unwrap().sign(input.as_bytes()).unwrap();
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
    let key = VerifyingKey::from_pem(&public_pem).unwrap();
    let err = verifier(key, &clock()).verify(&token).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::AlgorithmNotAllowed { found, .. } if found == "HS256"), "{err}");
}

#[tokio::test]
async fn a_token_naming_another_algorithm_than_the_key_is_refused_before_crypto() {
    let es = SigningKey::from_pem_file(fixture("ec-p256-pkcs8.pem")).unwrap();
    let token = craft(&json!({"alg": "ES256", "typ": "JWT"}), &good_claims(), &es);
    let err = verifier(rsa_key().verifying_key(), &clock()).verify(&token).await.unwrap_err();
    assert!(matches!(err, ActJwtError::AlgorithmNotAllowed { .. }), "{err}");
}

#[tokio::test]
async fn tampered_payload_and_wrong_key_fail_the_signature() {
    let clock = clock();
    let token = ActJwtSigner::new(rsa_key()).with_clock(Arc::new(clock.clone())).sign(&act(), AUD, Duration::from_secs(60)).unwrap();
    let parts: Vec<&str> = token.expose_secret().split('.').collect();
    let tampered_claims = with(good_claims(), "act", Some(json!({"sub": "admin"})));
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]);
    let err = verifier(rsa_key().verifying_key(), &clock).verify(&tampered).await.unwrap_err();
    assert!(matches!(err, ActJwtError::SignatureInvalid));
    assert_eq!(err.to_string(), "Act JWT signature invalid");

    let other = VerifyingKey::from_pem_file(fixture("rsa2048-other.pub.pem")).unwrap();
    let err = verifier(other, &clock).verify(token.expose_secret()).await.unwrap_err();
    assert!(matches!(err, ActJwtError::SignatureInvalid), "{err}");
}

#[tokio::test]
async fn audience_must_be_exactly_the_expected_string() {
    let err = verify_crafted(with(good_claims(), "aud", Some(json!("https://evil.example.com/invoke")))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidAudience { .. }));
    assert!(err.to_string().starts_with("Act JWT invalid audience"), "{err}");
    let err = verify_crafted(with(good_claims(), "aud", None)).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::InvalidAudience { found, .. } if found == "no aud claim"), "{err}");
    let err = verify_crafted(with(good_claims(), "aud", Some(json!([AUD])))).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::InvalidAudience { found, .. } if found.contains("an array")), "{err}");
    let err = verify_crafted(with(good_claims(), "aud", Some(json!(format!("{AUD}/"))))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidAudience { .. }), "no normalisation: a trailing slash is another audience");
}

#[tokio::test]
async fn exp_and_iat_are_required_numbers() {
    assert!(matches!(verify_crafted(with(good_claims(), "exp", None)).await, Err(ActJwtError::MissingClaim { claim: "exp" })));
    assert!(matches!(verify_crafted(with(good_claims(), "iat", None)).await, Err(ActJwtError::MissingClaim { claim: "iat" })));
    let err = verify_crafted(with(good_claims(), "exp", Some(json!((NOW + 60).to_string())))).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::InvalidClaim { claim: "exp", reason } if reason.contains("found a string")), "{err}");
    let err = verify_crafted(with(good_claims(), "iat", Some(json!(-5)))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidClaim { claim: "iat", .. }), "{err}");
    // Fractional NumericDates are valid JSON Web Token times.
    assert!(verify_crafted(with(good_claims(), "iat", Some(json!(NOW as f64 + 0.5)))).await.is_ok());
}

#[tokio::test]
async fn expiry_is_judged_with_the_leeway() {
    let key = rsa_key();
    let token = craft(&RS256_HEADER(), &good_claims(), &key);
    let clock = clock();
    let v =
        ActJwtVerifier::builder(key.verifying_key(), AUD).clock(Arc::new(clock.clone())).leeway(Duration::from_secs(5)).build().unwrap();
    clock.advance(Duration::from_secs(64));
    let ok = v.verify(&token).await.unwrap();
    assert_eq!(ok.expires_at(), SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 60));

    let token = craft(&RS256_HEADER(), &with(good_claims(), "jti", Some(json!("other"))), &key);
    clock.advance(Duration::from_secs(1));
    let err = v.verify(&token).await.unwrap_err();
    assert!(err.is_expired(), "{err}");
    assert!(err.to_string().starts_with("Act JWT expired"), "{err}");
}

#[tokio::test]
async fn future_iat_and_nbf_are_refused() {
    let err = verify_crafted(with(with(good_claims(), "iat", Some(json!(NOW + 30))), "exp", Some(json!(NOW + 90)))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::NotYetValid { claim: "iat", ahead_secs: 30, leeway_secs: 5 }), "{err}");
    let err = verify_crafted(with(good_claims(), "nbf", Some(json!(NOW + 20)))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::NotYetValid { claim: "nbf", .. }), "{err}");
    assert!(verify_crafted(with(good_claims(), "nbf", Some(json!(NOW + 5)))).await.is_ok(), "within leeway");
}

#[tokio::test]
async fn lifetime_is_bounded() {
    let err = verify_crafted(with(good_claims(), "exp", Some(json!(NOW + 301)))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::LifetimeTooLong { lifetime_secs: 301, max_secs: 300 }), "{err}");
    let err = verify_crafted(with(good_claims(), "exp", Some(json!(NOW)))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::Expired { .. } | ActJwtError::InvalidClaim { claim: "exp", .. }), "{err}");
}

#[tokio::test]
async fn issuer_is_checked_when_configured() {
    let err = verify_crafted(with(good_claims(), "iss", Some(json!("someone-else")))).await.unwrap_err();
    assert!(
        matches!(&err, ActJwtError::InvalidIssuer { expected, found } if expected == "application" && found == "\"someone-else\""),
        "{err}"
    );
    let err = verify_crafted(with(good_claims(), "iss", None)).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidIssuer { .. }), "{err}");

    let key = rsa_key();
    let token = craft(&RS256_HEADER(), &with(good_claims(), "iss", Some(json!("payments-app"))), &key);
    let v = ActJwtVerifier::builder(key.verifying_key(), AUD).clock(Arc::new(clock())).issuer("payments-app").build().unwrap();
    assert_eq!(v.verify(&token).await.unwrap().issuer(), Some("payments-app"));
    let token = craft(&RS256_HEADER(), &with(good_claims(), "iss", None), &key);
    let v = ActJwtVerifier::builder(key.verifying_key(), AUD).clock(Arc::new(clock())).any_issuer().build().unwrap();
    assert!(v.verify(&token).await.is_ok());
}

#[tokio::test]
async fn act_must_be_an_object_with_a_non_empty_sub() {
    let err = verify_crafted(with(good_claims(), "act", Some(json!("user_12345")))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidAct(ActError::NotAnObject { .. })), "{err}");
    assert!(err.to_string().starts_with("Act JWT must contain act.sub"), "{err}");
    let err = verify_crafted(with(good_claims(), "act", Some(json!({"sub": ""})))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidAct(ActError::EmptySub)), "{err}");
    let err = verify_crafted(with(good_claims(), "act", Some(json!({"email": "a@b.example"})))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidAct(ActError::MissingSub)), "{err}");
    let err = verify_crafted(with(good_claims(), "act", None)).await.unwrap_err();
    assert!(matches!(err, ActJwtError::InvalidAct(_)), "{err}");
}

#[tokio::test]
async fn jti_is_required() {
    assert!(matches!(verify_crafted(with(good_claims(), "jti", None)).await, Err(ActJwtError::MissingClaim { claim: "jti" })));
    assert!(matches!(
        verify_crafted(with(good_claims(), "jti", Some(json!("")))).await,
        Err(ActJwtError::InvalidClaim { claim: "jti", .. })
    ));
    assert!(matches!(
        verify_crafted(with(good_claims(), "jti", Some(json!(7)))).await,
        Err(ActJwtError::InvalidClaim { claim: "jti", .. })
    ));
}

#[tokio::test]
async fn replayed_jti_is_refused_and_only_recorded_after_every_other_check() {
    let key = rsa_key();
    let clock = clock();
    let guard = Arc::new(InMemoryReplayGuard::with_clock(100, Arc::new(clock.clone())));
    let wrong_aud = ActJwtVerifier::builder(key.verifying_key(), "https://other.example.com/")
        .clock(Arc::new(clock.clone()))
        .replay_guard(guard.clone())
        .build()
        .unwrap();
    let right =
        ActJwtVerifier::builder(key.verifying_key(), AUD).clock(Arc::new(clock.clone())).replay_guard(guard.clone()).build().unwrap();
    let token = craft(&RS256_HEADER(), &good_claims(), &key);
    assert!(wrong_aud.verify(&token).await.is_err());
    assert!(guard.is_empty(), "a refused token must not use up its jti");
    right.verify(&token).await.unwrap();
    let err = right.verify(&token).await.unwrap_err();
    assert!(err.is_replay());
    assert_eq!(err.to_string(), "Act JWT replay detected");
}

#[derive(Debug)]
struct BrokenStore;

#[async_trait::async_trait]
impl ReplayGuard for BrokenStore {
    async fn check_and_record(&self, _: &str, _: SystemTime) -> Result<(), ReplayError> {
        Err(ReplayError::Unavailable { reason: "connection refused".into(), source: None })
    }
}

#[tokio::test]
async fn an_unavailable_replay_store_fails_closed() {
    let key = rsa_key();
    let v = ActJwtVerifier::builder(key.verifying_key(), AUD).clock(Arc::new(clock())).replay_guard(Arc::new(BrokenStore)).build().unwrap();
    let err = v.verify(&craft(&RS256_HEADER(), &good_claims(), &key)).await.unwrap_err();
    assert!(matches!(err, ActJwtError::ReplayCheckFailed(ReplayError::Unavailable { .. })), "{err}");
}

#[tokio::test]
async fn hostile_headers_are_refused() {
    let key = rsa_key();
    let cases = [
        (json!({"alg": "RS256", "typ": "JWT", "crit": ["exp"]}), "crit"),
        (json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}), "jwk"),
        (json!({"alg": "RS256", "jku": "https://attacker.example/jwks.json"}), "jku"),
        (json!({"alg": "RS256", "x5u": "https://attacker.example/cert.pem"}), "x5u"),
        (json!({"alg": "RS256", "typ": "at+jwt"}), "typ"),
    ];
    for (header, name) in cases {
        let err = verifier(key.verifying_key(), &clock()).verify(&craft(&header, &good_claims(), &key)).await.unwrap_err();
        assert!(matches!(&err, ActJwtError::UnsupportedHeader { name: n, .. } if n == name), "{name}: {err}");
    }
    let err = verifier(key.verifying_key(), &clock()).verify(&craft(&json!({"typ": "JWT"}), &good_claims(), &key)).await.unwrap_err();
    assert!(matches!(err, ActJwtError::Malformed { .. }), "{err}");
    let err = verifier(key.verifying_key(), &clock()).verify(&craft(&json!({"alg": ["RS256"]}), &good_claims(), &key)).await.unwrap_err();
    assert!(matches!(err, ActJwtError::Malformed { .. }), "{err}");
}

#[tokio::test]
async fn kid_selects_the_key_and_an_unknown_kid_is_refused() {
    let current = rsa_key().with_key_id("k2");
    let previous = SigningKey::from_pem_file(fixture("rsa2048-other.pem")).unwrap().with_key_id("k1");
    let clock = clock();
    let v = ActJwtVerifier::builder(current.verifying_key(), AUD)
        .add_key(previous.verifying_key())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    for key in [&current, &previous] {
        let token = ActJwtSigner::new(key.clone()).with_clock(Arc::new(clock.clone())).sign(&act(), AUD, Duration::from_secs(60)).unwrap();
        assert_eq!(v.verify(token.expose_secret()).await.unwrap().key_id(), key.key_id());
    }
    let stranger = rsa_key().with_key_id("k9");
    let token = ActJwtSigner::new(stranger).with_clock(Arc::new(clock.clone())).sign(&act(), AUD, Duration::from_secs(60)).unwrap();
    let err = v.verify(token.expose_secret()).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::UnknownKeyId { kid } if kid == "k9"), "{err}");
}

#[tokio::test]
async fn upstream_tokens_without_kid_verify_with_a_key_that_has_one() {
    let key = rsa_key();
    let token = craft(&RS256_HEADER(), &good_claims(), &key);
    assert!(verifier(key.verifying_key().with_key_id("app-1"), &clock()).verify(&token).await.is_ok());
}

#[tokio::test]
async fn kid_less_tokens_try_every_configured_key_of_their_algorithm() {
    // Rotation without kids: the token may come from the old key or the new one.
    let old = rsa_key();
    let new = SigningKey::from_pem_file(fixture("rsa2048-other.pem")).unwrap();
    let clock = clock();
    let v = ActJwtVerifier::builder(old.verifying_key(), AUD).add_key(new.verifying_key()).clock(Arc::new(clock.clone())).build().unwrap();
    for (n, key) in [&old, &new].into_iter().enumerate() {
        let claims = with(good_claims(), "jti", Some(json!(format!("jti-rotation-{n}"))));
        let verified = v.verify(&craft(&RS256_HEADER(), &claims, key)).await.unwrap();
        assert_eq!(verified.jti(), format!("jti-rotation-{n}"));
    }
    // Named keys with other kids, and an unnamed one: a token whose kid names none of them
    // is tried against the unnamed keys only.
    let v = ActJwtVerifier::builder(old.verifying_key().with_key_id("k-old"), AUD)
        .add_key(new.verifying_key())
        .add_key(rsa_key().verifying_key())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let token = craft(&json!({"alg": "RS256", "typ": "JWT", "kid": "k-unknown"}), &good_claims(), &old);
    assert_eq!(v.verify(&token).await.unwrap().jti(), "jti-0001", "the second unnamed key is tried too");
    let pair = crate::generate_key_pair(crate::SigningAlgorithm::Rs256, 2048).unwrap();
    let stranger = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap();
    let token = craft(&RS256_HEADER(), &with(good_claims(), "jti", Some(json!("jti-x"))), &stranger);
    assert!(matches!(v.verify(&token).await.unwrap_err(), ActJwtError::SignatureInvalid));
}

#[tokio::test]
async fn header_text_in_errors_cannot_forge_log_lines_or_drive_a_terminal() {
    let key = rsa_key().with_key_id("k1");
    let v = verifier(key.verifying_key(), &clock());
    let hostile = "RS256\nINFO forged line\u{1b}[2J\u{9b}31m\u{202e}";
    let alg = v.verify(&craft(&json!({"alg": hostile}), &good_claims(), &key)).await.unwrap_err();
    let kid = v.verify(&craft(&json!({"alg": "RS256", "kid": hostile}), &good_claims(), &key)).await.unwrap_err();
    assert!(matches!(&alg, ActJwtError::AlgorithmNotAllowed { .. }), "{alg}");
    assert!(matches!(&kid, ActJwtError::UnknownKeyId { .. }), "{kid}");
    for err in [alg, kid] {
        let text = err.to_string();
        assert!(!text.chars().any(|c| c.is_control() || c == '\u{202e}'), "{text:?}");
        assert!(text.contains(r"RS256\nINFO forged line\u{1b}[2J\u{9b}31m\u{202e}"), "{text}");
    }
    let aud = v.verify(&craft(&RS256_HEADER(), &with(good_claims(), "aud", Some(json!("x\ny"))), &key)).await.unwrap_err();
    assert_eq!(aud.to_string(), format!("Act JWT invalid audience: expected \"{AUD}\", found \"x\\ny\""));
}

#[tokio::test]
async fn oversized_and_broken_tokens_are_malformed_not_panics() {
    let key = rsa_key();
    let v = verifier(key.verifying_key(), &clock());
    let huge = craft(&RS256_HEADER(), &with(good_claims(), "pad", Some(json!("x".repeat(10_000)))), &key);
    assert!(matches!(v.verify(&huge).await, Err(ActJwtError::TooLarge { max: 8192, .. })));
    let good = craft(&RS256_HEADER(), &good_claims(), &key);
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.x", parts[0], parts[1], parts[2]),
        format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}==.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("{not json"), parts[1], parts[2]),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[1,2]"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode([0xff, 0xfe]), parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
        "\u{0}\u{1}.\u{2}.\u{3}".to_owned(),
    ];
    for case in cases {
        let err = v.verify(&case).await.unwrap_err();
        assert!(matches!(err, ActJwtError::Malformed { .. } | ActJwtError::SignatureInvalid), "{case:?}: {err}");
    }
    // A valid signature over claims that are not JSON is malformed, not a panic.
    let input = format!("{}.{}", b64(&RS256_HEADER()), URL_SAFE_NO_PAD.encode("not json"));
    let sig = key.sign_bytes(input.as_bytes()).unwrap();
    let err = v.verify(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))).await.unwrap_err();
    assert!(matches!(err, ActJwtError::Malformed { .. }), "{err}");
}

#[test]
fn verifier_settings_are_bounded() {
    let key = rsa_key().verifying_key();
    assert!(ActJwtVerifier::builder(key.clone(), " ").build().is_err());
    assert!(ActJwtVerifier::builder(key.clone(), AUD).leeway(Duration::from_secs(301)).build().is_err());
    assert!(ActJwtVerifier::builder(key.clone(), AUD).max_lifetime(Duration::from_secs(7200)).build().is_err());
    assert!(ActJwtVerifier::builder(key, AUD).max_token_bytes(10).build().is_err());
}

#[test]
fn a_published_jwk_verifies_what_its_private_key_signed_with_its_algorithm_only() {
    for (file, alg) in [("rsa2048-pkcs8.pem", "RS256"), ("ec-p256-pkcs8.pem", "ES256"), ("ed25519-pkcs8.pem", "EdDSA")] {
        let signing = SigningKey::from_pem_file(fixture(file)).unwrap().with_key_id("k1");
        let jwk = signing.public_jwk();
        let key = VerifyingKey::from_jwk(jwk.as_object().unwrap()).unwrap();
        assert_eq!((key.algorithm().as_str(), key.key_id()), (alg, Some("k1")), "{file}");
        let token = UnverifiedJwt::parse(&signing.sign_jwt(&json!({"sub": "x"})).unwrap()).unwrap();
        assert!(key.verifies(&token), "{file}");
        // The same signature under a header naming another algorithm does not verify.
        let mut header = token.header().clone();
        header.insert("alg".into(), json!(if alg == "RS256" { "PS256" } else { "RS256" }));
        let relabelled = format!("{}.{}", b64(&Value::Object(header)), token.signing_input().split('.').nth(1).unwrap());
        let relabelled = format!("{relabelled}.{}", URL_SAFE_NO_PAD.encode(token.signature()));
        assert!(!key.verifies(&UnverifiedJwt::parse(&relabelled).unwrap()), "{file}");
    }
    // Without `alg`, the key's kind decides; with it, it must suit the key.
    let mut rsa = rsa_key().public_jwk();
    rsa.as_object_mut().unwrap().remove("alg");
    assert_eq!(VerifyingKey::from_jwk(rsa.as_object().unwrap()).unwrap().algorithm().as_str(), "RS256");
    rsa["alg"] = json!("PS384");
    assert_eq!(VerifyingKey::from_jwk(rsa.as_object().unwrap()).unwrap().algorithm().as_str(), "PS384");
    rsa["alg"] = json!("ES256");
    assert!(matches!(VerifyingKey::from_jwk(rsa.as_object().unwrap()), Err(crate::KeyError::AlgorithmMismatch { .. })));
}

#[test]
fn jwks_members_that_must_not_be_trusted_are_refused_with_a_reason() {
    let reason = |jwk: Value| match VerifyingKey::from_jwk(jwk.as_object().unwrap()) {
        Err(crate::KeyError::InvalidKey { reason }) => reason,
        other => panic!("expected InvalidKey, got {other:?}"),
    };
    assert!(reason(json!({"kty": "oct", "k": "c2VjcmV0"})).contains("symmetric"));
    let mut private = rsa_key().public_jwk();
    private["d"] = json!("AQAB");
    assert!(reason(private).contains("private member \"d\""));
    let mut encryption = rsa_key().public_jwk();
    encryption["use"] = json!("enc");
    assert!(reason(encryption).contains("use must be sig"));
    let mut ops = rsa_key().public_jwk();
    ops["key_ops"] = json!(["sign"]);
    assert!(reason(ops).contains("key_ops"));
    assert!(reason(json!({"kty": "EC", "crv": "P-521", "x": "AQ", "y": "AQ"})).contains("P-521"));
    assert!(reason(json!({"kid": "x"})).contains("no \"kty\""));
    assert!(reason(json!({"kty": 7})).contains("must be a string"));
    let small = SigningKey::from_pem_file(fixture("rsa1024.pem"));
    assert!(small.is_err(), "1024-bit keys are refused when loaded from PEM");
    let n_1024 = URL_SAFE_NO_PAD.encode([0xC3u8; 128]);
    assert!(reason(json!({"kty": "RSA", "n": n_1024, "e": "AQAB"})).contains("2048"));
}

/// An act assertion's claims from `issuer` for `human`, made for agent-a.
fn assertion_claims<'a>(issuer: &'a str, human: &'a Act) -> crate::AssertionClaims<'a> {
    crate::AssertionClaims {
        issuer,
        audience: AUD,
        lifetime: Duration::from_secs(300),
        act: Some(human),
        authorized_party: Some("agent-a"),
        not_before: false,
    }
}

#[tokio::test]
async fn an_assertion_for_another_party_is_refused_without_using_up_its_jti() {
    let key = rsa_key();
    let clock = clock();
    let human = act();
    let claims = assertion_claims("app", &human);
    let assertion = crate::provider::sign_act_assertion_with_key(&key, &claims, crate::Clock::now(&clock)).unwrap();
    let verifier = ActJwtVerifier::builder(key.verifying_key(), AUD)
        .for_act_assertions()
        .issuer("app")
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let err = verifier.verify_for_party(assertion.expose_secret(), "agent-b").await.unwrap_err();
    assert!(
        matches!(&err, ActJwtError::WrongAuthorizedParty { expected, found } if expected == "agent-b" && found.as_deref() == Some("agent-a")),
        "{err}"
    );
    let verified = verifier.verify_for_party(assertion.expose_secret(), "agent-a").await.unwrap();
    assert_eq!(verified.authorized_party(), Some("agent-a"));
    assert!(verifier.verify_for_party(assertion.expose_secret(), "agent-a").await.unwrap_err().is_replay());
}

#[tokio::test]
async fn act_assertions_and_act_jwts_never_pass_for_each_other_even_from_one_key() {
    let key = rsa_key();
    let clock = clock();
    let human = act();
    let claims = assertion_claims("application", &human);
    let assertion = crate::provider::sign_act_assertion_with_key(&key, &claims, crate::Clock::now(&clock)).unwrap();
    assert_eq!(UnverifiedJwt::parse(assertion.expose_secret()).unwrap().header()["typ"], crate::ACT_ASSERTION_TYPE);
    let act_jwt = ActJwtSigner::new(key.clone()).with_clock(Arc::new(clock.clone())).sign(&human, AUD, Duration::from_secs(60)).unwrap();

    let act_jwts = verifier(key.verifying_key(), &clock);
    let err = act_jwts.verify(assertion.expose_secret()).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::UnsupportedHeader { name, .. } if name == "typ"), "{err}");
    let assertions = ActJwtVerifier::builder(key.verifying_key(), AUD).for_act_assertions().clock(Arc::new(clock.clone())).build().unwrap();
    let err = assertions.verify(act_jwt.expose_secret()).await.unwrap_err();
    assert!(matches!(&err, ActJwtError::UnsupportedHeader { name, .. } if name == "typ"), "{err}");
    let untyped = craft(&json!({"alg": "RS256"}), &good_claims(), &key);
    assert!(matches!(assertions.verify(&untyped).await.unwrap_err(), ActJwtError::UnsupportedHeader { .. }), "no typ: not an assertion");

    // Each passes where it belongs (upstream act JWTs carry typ JWT, or none).
    assert_eq!(assertions.verify(assertion.expose_secret()).await.unwrap().authorized_party(), Some("agent-a"));
    assert_eq!(act_jwts.verify(act_jwt.expose_secret()).await.unwrap().act(), &human);
    act_jwts.verify(&craft(&json!({"alg": "RS256"}), &with(good_claims(), "jti", Some(json!("jti-untyped"))), &key)).await.unwrap();
}
