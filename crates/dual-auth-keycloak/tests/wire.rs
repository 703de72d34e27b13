//! The Keycloak token request, asserted field by field against a strict local endpoint.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::AdapterOptions;
use dual_auth_core::{CLIENT_ASSERTION_TYPE, ClientAuthentication, IamAdapter, IamError, SigningKey, TokenRequest};
use dual_auth_keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth_test_support::agent::{alice, options_with_retry, quick_retry, secret_auth};
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use dual_auth_test_support::{jwt, key_fixture};
use serde_json::json;

const SECRET: &str = "kc-client-secret-0123456789abcdefghij";
const AGENT: &str = "finance-agent";
const TOKEN_PATH: &str = "/realms/corp/protocol/openid-connect/token";

fn options(ca: &TestCa) -> AdapterOptions {
    options_with_retry(ca, quick_retry())
}

#[tokio::test]
async fn client_secret_jwt_request_is_the_upstream_wire_format() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(
        200,
        r#"{"access_token":"kc-access-token","token_type":"Bearer","expires_in":300,"scope":"finance.read finance.write"}"#,
    ));
    let adapter = KeycloakAdapter::new(KeycloakConfig::new(server.url(TOKEN_PATH), AGENT, secret_auth(SECRET)), options(&ca)).unwrap();
    let request = TokenRequest::new(AGENT, alice(), ["finance.read", "finance.write"]).unwrap();
    let token = adapter.request_token(&request).await.unwrap();

    assert_eq!(token.access_token().expose_secret(), "kc-access-token");
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Duration::from_secs(300));
    assert_eq!(token.scopes(), ["finance.read", "finance.write"]);
    assert!(!token.has_act_assertion());

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, TOKEN_PATH);
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.header("accept"), Some("application/json"));
    let names: Vec<String> = sent.form().into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["grant_type", "scope", "client_assertion_type", "client_assertion"]);
    assert_eq!(sent.form_value("grant_type").unwrap(), "client_credentials");
    assert_eq!(sent.form_value("scope").unwrap(), "finance.read finance.write");
    assert!(sent.body_text().contains("scope=finance.read+finance.write"), "space encoded as +");
    assert_eq!(sent.form_value("client_assertion_type").unwrap(), CLIENT_ASSERTION_TYPE);

    let assertion = jwt::decode(&sent.form_value("client_assertion").unwrap());
    assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "HS256", "typ": "JWT"}));
    assert_eq!(assertion.claim_names(), ["iss", "sub", "aud", "exp", "iat", "jti", "act"]);
    assert_eq!(assertion.claims["iss"], AGENT);
    assert_eq!(assertion.claims["sub"], AGENT);
    assert_eq!(assertion.claims["aud"], server.url("/realms/corp"), "the realm URL");
    assert_eq!(assertion.claims["exp"].as_u64().unwrap() - assertion.claims["iat"].as_u64().unwrap(), 300);
    assert_eq!(assertion.claims["jti"].as_str().unwrap().len(), 43);
    assert_eq!(assertion.claims["act"], alice().to_value());
    assert!(assertion.verifies_hs256(SECRET.as_bytes()), "HS256 with the client secret");
    assert!(!assertion.verifies_hs256(b"another-secret-0123456789abcdefghijk"));

    assert!(!sent.body_text().contains(SECRET), "the secret itself is never sent");
    assert!(sent.headers.iter().all(|(_, v)| !v.contains(SECRET)));
}

#[tokio::test]
async fn private_key_jwt_signs_with_the_agents_key_and_kid() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"access_token":"t"}"#));
    let key = SigningKey::from_pem_file(key_fixture("ec-p256-pkcs8.pem")).unwrap().with_key_id("agent-key-1");
    let config = KeycloakConfig::new(server.url(TOKEN_PATH), AGENT, ClientAuthentication::private_key_jwt(key))
        .with_assertion_audience("https://kc.example.com/realms/corp");
    let adapter = KeycloakAdapter::new(config, options(&ca)).unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, alice(), ["finance.read"]).unwrap()).await.unwrap();
    assert_eq!(token.expires_in(), Duration::from_secs(3600), "Keycloak default when absent");
    assert_eq!(token.scopes(), ["finance.read"], "requested scopes when absent");

    let assertion = jwt::decode(&server.requests()[0].form_value("client_assertion").unwrap());
    assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "ES256", "typ": "JWT", "kid": "agent-key-1"}));
    assert_eq!(assertion.claims["aud"], "https://kc.example.com/realms/corp", "configured audience wins");
    assert!(assertion.verifies_with_public_key(&std::fs::read(key_fixture("ec-p256.pub.pem")).unwrap()));
}

#[tokio::test]
async fn another_agent_id_is_refused_before_any_request() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    let adapter = KeycloakAdapter::new(KeycloakConfig::new(server.url(TOKEN_PATH), AGENT, secret_auth(SECRET)), options(&ca)).unwrap();
    let err = adapter.request_token(&TokenRequest::new("payroll-agent", alice(), ["x"]).unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, IamError::AgentMismatch { configured, requested, .. } if configured == AGENT && requested == "payroll-agent"),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn configuration_is_checked() {
    let err = KeycloakAdapter::new(
        KeycloakConfig::new("http://kc.example.com/realms/c/protocol/openid-connect/token", AGENT, secret_auth(SECRET)),
        AdapterOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must use https://"), "{err}");
    let err =
        KeycloakAdapter::new(KeycloakConfig::new("https://kc.example.com/token", AGENT, secret_auth(SECRET)), AdapterOptions::default())
            .unwrap_err();
    assert!(err.to_string().contains("/protocol/"), "{err}");
    let err = ClientAuthentication::client_secret_jwt(&SecretString::from("short")).unwrap_err();
    assert!(err.to_string().contains("at least 32"), "{err}");
}
