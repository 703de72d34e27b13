//! DPoP (RFC 9449) on the token request, asserted field by field against a strict local
//! endpoint: the proof's header and claims, its signature (checked with OpenSSL through the
//! test support, not with the code that signed it), the nonce retry, the refusal of a bearer
//! answer, every grant, and the cache scope per key.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::SystemTime;

use dual_auth_core::dangerous::UnverifiedJwt;
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::token_endpoint::{AdapterOptions, DpopSettings};
use dual_auth_core::{
    Act, DelegationMode, DelegationRequest, DpopKey, IamAdapter, IamError, SigningAlgorithm, SubjectToken, SubjectTokenType, TokenRequest,
    VerifyingKey,
};
use dual_auth_keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth_test_support::agent::{options_with_retry, quick_retry, secret_auth};
use dual_auth_test_support::https::{CannedResponse, RecordedRequest, TestCa, TestHttpsServer};
use dual_auth_test_support::jwt;
use serde_json::Value;

const SECRET: &str = "kc-client-secret-0123456789abcdefghij";
const AGENT: &str = "finance-agent";
const TOKEN_PATH: &str = "/realms/corp/protocol/openid-connect/token";
const DPOP_ANSWER: &str = r#"{"access_token":"kc-dpop-token","token_type":"DPoP","expires_in":300}"#;

fn options(ca: &TestCa, dpop: Option<DpopSettings>) -> AdapterOptions {
    let options = options_with_retry(ca, quick_retry());
    match dpop {
        Some(dpop) => options.with_dpop(dpop),
        None => options,
    }
}

fn adapter(server: &TestHttpsServer, ca: &TestCa, dpop: Option<DpopSettings>) -> KeycloakAdapter {
    KeycloakAdapter::new(KeycloakConfig::new(server.url(TOKEN_PATH), AGENT, secret_auth(SECRET)), options(ca, dpop)).unwrap()
}

fn request() -> TokenRequest {
    TokenRequest::new(AGENT, Act::new("user_12345").unwrap(), ["finance.read"]).unwrap()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// The proof a recorded request carries, checked against RFC 9449 §4.2 for a token request:
/// header `alg`, `typ`, `jwk` (public members only, the key's), claims `jti`, `htm` POST,
/// `htu` the token URL, `iat` now, and no `ath`; the signature verifies with its `jwk`.
fn checked_proof(sent: &RecordedRequest, key: &DpopKey, token_url: &str) -> jwt::DecodedJwt {
    assert_eq!(sent.headers.iter().filter(|(n, _)| n == "dpop").count(), 1, "exactly one DPoP header");
    let proof = sent.header("dpop").expect("a DPoP header");
    let decoded = jwt::decode(proof);
    let header: Vec<&str> = decoded.header.keys().map(String::as_str).collect();
    assert_eq!(header, ["alg", "typ", "jwk"]);
    assert_eq!(decoded.header["typ"], "dpop+jwt");
    assert_eq!(decoded.header["alg"], key.algorithm().as_str());
    assert_eq!(decoded.header["jwk"], key.public_jwk());
    let jwk = decoded.header["jwk"].as_object().unwrap();
    assert!(!jwk.contains_key("d"), "no private member");
    match key.algorithm() {
        SigningAlgorithm::Es256 => {
            assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("EC"), Some("P-256")));
            assert!(decoded.verifies_with_public_key(ec_public_pem(jwk).as_bytes()), "ES256 verifies (OpenSSL) with its jwk");
        }
        _ => assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519"))),
    }
    // And with the verifier's JWK import, for both algorithms.
    let unverified = UnverifiedJwt::parse(proof).unwrap();
    assert!(VerifyingKey::from_jwk(jwk).unwrap().verifies(&unverified));
    let names = decoded.claim_names();
    assert!(names == ["jti", "htm", "htu", "iat"] || names == ["jti", "htm", "htu", "iat", "nonce"], "{names:?}");
    assert!(decoded.claims["jti"].as_str().unwrap().len() >= 16, "a jti with enough randomness");
    assert_eq!(decoded.claims["htm"], "POST");
    assert_eq!(decoded.claims["htu"], token_url);
    let iat = decoded.claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now_secs()) <= 5, "iat is now: {iat}");
    assert!(!decoded.claims.contains_key("ath"), "no ath at the token endpoint");
    decoded
}

/// An EC P-256 JWK as a PEM public key (SubjectPublicKeyInfo), for OpenSSL.
fn ec_public_pem(jwk: &serde_json::Map<String, Value>) -> String {
    let coordinate = |name: &str| base64url_decode(jwk[name].as_str().unwrap());
    let prefix: [u8; 27] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
        0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    let der = [prefix.as_slice(), &coordinate("x"), &coordinate("y")].concat();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64_encode(&der))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64url_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| {
        let c = match c {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        };
        u32::try_from(ALPHABET.iter().position(|a| *a == c).expect("base64url")).unwrap()
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            bits |= value(*c) << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut bits = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            bits |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[usize::try_from((bits >> (18 - 6 * i)) & 63).unwrap()]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn the_token_request_carries_a_proof_and_the_token_comes_back_bound() {
    for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        server.push(CannedResponse::json(200, DPOP_ANSWER));
        let key = DpopKey::generate(algorithm).unwrap();
        let adapter = adapter(&server, &ca, Some(DpopSettings::new(key.clone())));
        let token = adapter.request_token(&request()).await.unwrap();

        assert_eq!(token.token_type(), "DPoP");
        assert!(token.is_dpop_bound());
        assert_eq!(token.dpop_key().unwrap().thumbprint(), key.thumbprint());
        assert_eq!(token.access_token().expose_secret(), "kc-dpop-token");
        assert!(!format!("{token:?}").contains("kc-dpop-token"), "still redacted");

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let sent = &requests[0];
        assert_eq!((sent.method.as_str(), sent.target.as_str()), ("POST", TOKEN_PATH));
        // The form is the same as without DPoP: the proof travels in its header only.
        let names: Vec<String> = sent.form().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["grant_type", "scope", "client_assertion_type", "client_assertion"]);
        let proof = checked_proof(sent, &key, &server.url(TOKEN_PATH));
        assert!(!proof.claims.contains_key("nonce"), "no nonce before the server gives one");
    }
}

#[tokio::test]
async fn use_dpop_nonce_is_retried_once_at_once_and_the_nonce_is_remembered() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(
        CannedResponse::json(400, r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#)
            .with_header("DPoP-Nonce", "eyJ7S_zG.9Qt-n1"),
    );
    server.push(CannedResponse::json(200, DPOP_ANSWER).with_header("DPoP-Nonce", "eyJ7S_zG.9Qt-n2"));
    server.push(CannedResponse::json(200, DPOP_ANSWER));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let adapter = adapter(&server, &ca, Some(DpopSettings::new(key.clone())));
    let token = adapter.request_token(&request()).await.unwrap();
    assert!(token.is_dpop_bound());

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "exactly two requests: the challenge and the retry");
    let first = checked_proof(&requests[0], &key, &server.url(TOKEN_PATH));
    let second = checked_proof(&requests[1], &key, &server.url(TOKEN_PATH));
    assert!(!first.claims.contains_key("nonce"));
    assert_eq!(second.claims["nonce"], "eyJ7S_zG.9Qt-n1", "the retry carries the server's nonce");
    assert_ne!(first.claims["jti"], second.claims["jti"], "a fresh proof per attempt");
    let assertion = |r: &RecordedRequest| jwt::decode(&r.form_value("client_assertion").unwrap()).claims["jti"].clone();
    assert_ne!(assertion(&requests[0]), assertion(&requests[1]), "and a fresh client assertion");

    // The nonce of the successful answer goes into the next request's proof.
    adapter.request_token(&request()).await.unwrap();
    let third = checked_proof(&server.requests()[2], &key, &server.url(TOKEN_PATH));
    assert_eq!(third.claims["nonce"], "eyJ7S_zG.9Qt-n2");
}

#[tokio::test]
async fn a_second_nonce_challenge_is_the_answer_not_a_loop() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    let challenge = CannedResponse::json(400, r#"{"error":"use_dpop_nonce"}"#).with_header("DPoP-Nonce", "n-1");
    server.push(challenge.clone());
    server.push(challenge.with_header("DPoP-Nonce", "n-2"));
    server.set_fallback(CannedResponse::json(200, DPOP_ANSWER));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let err = adapter(&server, &ca, Some(DpopSettings::new(key))).request_token(&request()).await.unwrap_err();
    assert!(matches!(&err, IamError::OAuth { status: 400, error, .. } if error == "use_dpop_nonce"), "{err}");
    assert_eq!(server.requests().len(), 2, "one nonce retry, and no transient retries for a 400");

    // Without a DPoP-Nonce header, use_dpop_nonce is an ordinary refusal.
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(400, r#"{"error":"use_dpop_nonce"}"#));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let err = adapter(&server, &ca, Some(DpopSettings::new(key))).request_token(&request()).await.unwrap_err();
    assert_eq!(err.oauth_error(), Some("use_dpop_nonce"));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_transient_retry_gets_a_fresh_proof() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(503, r#"{"error":"temporarily_unavailable"}"#));
    server.push(CannedResponse::json(200, DPOP_ANSWER));
    let key = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
    adapter(&server, &ca, Some(DpopSettings::new(key.clone()))).request_token(&request()).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let jtis: Vec<Value> = requests.iter().map(|r| checked_proof(r, &key, &server.url(TOKEN_PATH)).claims["jti"].clone()).collect();
    assert_ne!(jtis[0], jtis[1]);
}

#[tokio::test]
async fn a_bearer_answer_to_a_dpop_request_is_refused_unless_downgrades_are_allowed() {
    let ca = TestCa::new();
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    for answer in [r#"{"access_token":"kc-bearer","token_type":"Bearer"}"#, r#"{"access_token":"kc-bearer"}"#] {
        let server = TestHttpsServer::start(&ca).await;
        server.set_fallback(CannedResponse::json(200, answer));
        let err = adapter(&server, &ca, Some(DpopSettings::new(key.clone()))).request_token(&request()).await.unwrap_err();
        assert!(matches!(&err, IamError::DpopDowngrade { found, .. } if found == "Bearer" || found == "untyped"), "{err}");
        assert!(err.to_string().contains("DUAL_AUTH_DPOP_ALLOW_DOWNGRADE"), "{err}");
        assert!(!err.to_string().contains("kc-bearer"), "no token in the error");
        assert_eq!(server.requests().len(), 1, "not retried");

        let allowed = DpopSettings::new(key.clone()).with_allow_downgrade(true);
        let token = adapter(&server, &ca, Some(allowed)).request_token(&request()).await.unwrap();
        assert_eq!(token.token_type(), "Bearer");
        assert!(!token.is_dpop_bound(), "a bearer token is not bound, so the API client sends it as Bearer");
    }
}

#[tokio::test]
async fn a_dpop_answer_without_dpop_asked_is_refused_as_before() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, DPOP_ANSWER));
    let err = adapter(&server, &ca, None).request_token(&request()).await.unwrap_err();
    assert!(matches!(&err, IamError::NotAnAccessToken { found, .. } if found == "token_type DPoP"), "{err}");
    assert_eq!(server.requests()[0].header("dpop"), None, "no proof when DPoP is off");
}

#[tokio::test]
async fn token_exchange_and_the_jwt_authorization_grant_carry_proofs_too() {
    let ca = TestCa::new();
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    for mode in [DelegationMode::TokenExchange, DelegationMode::JwtAuthorizationGrant] {
        let server = TestHttpsServer::start(&ca).await;
        server.push(CannedResponse::json(
            200,
            r#"{"access_token":"kc-delegated","token_type":"DPoP","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
        ));
        let config = KeycloakConfig::new(server.url(TOKEN_PATH), AGENT, secret_auth(SECRET)).with_delegation(mode);
        let adapter = KeycloakAdapter::new(config, options(&ca, Some(DpopSettings::new(key.clone())))).unwrap();
        let evidence = SubjectToken::new("eyJ.alice.token", SubjectTokenType::AccessToken).unwrap();
        let token = adapter.request_delegated_token(&DelegationRequest::new(AGENT, evidence, ["finance.read"]).unwrap()).await.unwrap();
        assert!(token.is_dpop_bound(), "{mode}");
        assert_eq!(token.dpop_key().unwrap().thumbprint(), key.thumbprint());
        let sent = &server.requests()[0];
        let grant = sent.form_value("grant_type").unwrap();
        let expected = if mode == DelegationMode::TokenExchange {
            "urn:ietf:params:oauth:grant-type:token-exchange"
        } else {
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        };
        assert_eq!(grant, expected);
        checked_proof(sent, &key, &server.url(TOKEN_PATH));
    }
}

#[tokio::test]
async fn the_cache_scope_names_the_dpop_key() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    let one = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let two = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let plain = adapter(&server, &ca, None);
    let first = adapter(&server, &ca, Some(DpopSettings::new(one.clone())));
    let second = adapter(&server, &ca, Some(DpopSettings::new(two)));
    assert!(!plain.cache_scope().contains("dpop"), "unchanged without DPoP");
    assert_eq!(first.cache_scope(), format!("{}|dpop:{}", plain.cache_scope(), one.thumbprint()));
    assert_ne!(first.cache_scope(), second.cache_scope());
    assert_eq!(first.dpop_key().map(DpopKey::thumbprint), Some(one.thumbprint()));
    assert!(plain.dpop_key().is_none());
}
