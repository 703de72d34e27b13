//! The Auth0 token request, asserted field by field against a strict local endpoint.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dual_auth_auth0::{Auth0Adapter, Auth0Config};
use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::AdapterOptions;
use dual_auth_core::{Act, CLIENT_ASSERTION_TYPE, ClientAuthentication, IamAdapter, IamError, SigningAlgorithm, SigningKey, TokenRequest};
use dual_auth_test_support::agent::options;
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use dual_auth_test_support::{jwt, key_fixture};
use serde_json::json;

const SECRET: &str = "auth0-client-secret-0123456789abcdefgh";
const AGENT: &str = "m2m-agent-client-id";
const API: &str = "https://api.example.com/finance";

fn act() -> Act {
    Act::new("auth0|63f1234567890abcdef12345").unwrap().with_email("alice@corp.example.com")
}

#[tokio::test]
async fn client_secret_jwt_request_carries_client_id_audience_and_the_requested_scopes() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"access_token":"a0-token","token_type":"Bearer"}"#));
    let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
    let adapter = Auth0Adapter::new(Auth0Config::new(server.url("/oauth/token"), AGENT, auth, API), options(&ca)).unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, act(), ["read:reports", "write:reports"]).unwrap()).await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "a0-token");
    assert_eq!(token.expires_in(), Duration::from_secs(86_400), "Auth0 default when absent");

    let requests = server.requests();
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.target.as_str()), ("POST", "/oauth/token"));
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.header("accept"), Some("application/json"));
    let form = sent.form();
    let expected_names = ["grant_type", "client_id", "audience", "scope", "client_assertion_type", "client_assertion"];
    assert_eq!(form.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), expected_names);
    assert_eq!(form[0].1, "client_credentials");
    assert_eq!(form[1].1, AGENT);
    assert_eq!(form[2].1, API);
    assert_eq!(form[3].1, "read:reports write:reports", "upstream dropped the scopes; we send them");
    assert_eq!(form[4].1, CLIENT_ASSERTION_TYPE);
    let assertion = jwt::decode(&form[5].1);
    assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "HS256", "typ": "JWT"}));
    assert_eq!(assertion.claim_names(), ["iss", "sub", "aud", "exp", "iat", "jti", "act"]);
    assert_eq!(assertion.claims["aud"], server.url("/"), "the tenant URL with a trailing slash");
    assert_eq!((assertion.claims["iss"].as_str(), assertion.claims["sub"].as_str()), (Some(AGENT), Some(AGENT)));
    assert_eq!(assertion.claims["act"], act().to_value());
    assert!(assertion.verifies_hs256(SECRET.as_bytes()));
    assert!(!sent.body_text().contains(SECRET));
}

#[tokio::test]
async fn private_key_jwt_with_ps256_as_auth0_documents() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"access_token":"t","expires_in":600}"#));
    let key =
        SigningKey::from_pem_file_with_algorithm(key_fixture("rsa2048-pkcs8.pem"), SigningAlgorithm::Ps256).unwrap().with_key_id("k-2026");
    let adapter = Auth0Adapter::new(
        Auth0Config::new(server.url("/oauth/token"), AGENT, ClientAuthentication::private_key_jwt(key), API),
        options(&ca),
    )
    .unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, act(), ["read:reports"]).unwrap()).await.unwrap();
    assert_eq!(token.expires_in(), Duration::from_secs(600));
    let assertion = jwt::decode(&server.requests()[0].form_value("client_assertion").unwrap());
    assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "PS256", "typ": "JWT", "kid": "k-2026"}));
    assert!(assertion.verifies_with_public_key(&std::fs::read(key_fixture("rsa2048-spki.pub.pem")).unwrap()));
}

#[test]
fn api_audience_is_required() {
    let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
    let err =
        Auth0Adapter::new(Auth0Config::new("https://corp.auth0.com/oauth/token", AGENT, auth, " "), AdapterOptions::default()).unwrap_err();
    assert!(matches!(&err, IamError::Configuration { reason, .. } if reason.contains("API_AUDIENCE")), "{err}");
}

#[tokio::test]
async fn dpop_proofs_go_to_auth0_and_the_cache_scope_names_the_key() {
    use dual_auth_core::DpopKey;
    use dual_auth_core::token_endpoint::DpopSettings;

    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"access_token":"a0-dpop","token_type":"DPoP","expires_in":600}"#));
    let key = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
    let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
    let options = options(&ca).with_dpop(DpopSettings::new(key.clone()));
    let adapter = Auth0Adapter::new(Auth0Config::new(server.url("/oauth/token"), AGENT, auth, API), options).unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, act(), ["read:reports"]).unwrap()).await.unwrap();
    assert_eq!(token.dpop_key().map(|k| k.thumbprint().to_owned()), Some(key.thumbprint().to_owned()));

    let sent = &server.requests()[0];
    let proof = jwt::decode(sent.header("dpop").unwrap());
    assert_eq!(serde_json::Value::Object(proof.header.clone()), json!({"alg": "EdDSA", "typ": "dpop+jwt", "jwk": key.public_jwk()}));
    assert_eq!(proof.claim_names(), ["jti", "htm", "htu", "iat"]);
    assert_eq!(proof.claims["htm"], "POST");
    assert_eq!(proof.claims["htu"], server.url("/oauth/token"));
    assert!(adapter.cache_scope().ends_with(&format!("{API}|dpop:{}", key.thumbprint())), "{}", adapter.cache_scope());
}
