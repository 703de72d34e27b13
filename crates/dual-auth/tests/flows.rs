//! Both flows end to end. In session: the development provider checks the client
//! assertion before it issues a token, and its demo API verifies the token before it
//! answers with the agent and the human it saw. Out of session: a local Entra ID-style
//! endpoint, and a local HTTPS API that checks both headers.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dual_auth::entraid::{EntraClientAuthentication, EntraIdConfig};
use dual_auth::keycloak::KeycloakConfig;
use dual_auth::prelude::*;
use dual_auth::session::TokenCacheSettings;
use dual_auth::token_endpoint::RetryPolicy;
use dual_auth_devidp::{DevIdp, DevIdpConfig};
use dual_auth_test_support::agent::{UnavailableReplayStore, http_settings, options_with_retry, secret_auth, trusting};
use dual_auth_test_support::https::{CannedResponse, RecordedRequest, TestCa, TestHttpsServer};
use dual_auth_test_support::key_fixture;
use serde_json::Value;
use serde_json::json;

const SECRET: &str = "flows-client-secret-0123456789abcdefghij";
const AGENT: &str = "finance-agent";
const AGENT_ENDPOINT: &str = "https://agent.example.com/invoke";
const API_AUDIENCE: &str = "api://finance-api";

fn app_public_pem() -> Vec<u8> {
    std::fs::read(key_fixture("rsa2048-other.pub.pem")).unwrap()
}

/// Microsoft-style: client secret in the form, a plain agent token back.
fn strict_entra_endpoint(request: &RecordedRequest) -> CannedResponse {
    if request.form_value("client_id").as_deref() != Some(AGENT) || request.form_value("client_secret").as_deref() != Some(SECRET) {
        return CannedResponse::json(401, r#"{"error":"invalid_client"}"#);
    }
    CannedResponse::json(200, r#"{"access_token":"ms-agent-token","token_type":"Bearer","expires_in":3599}"#)
}

fn checking_api() -> impl Fn(&RecordedRequest) -> CannedResponse + Send + Sync + 'static {
    dual_auth_test_support::fakes::checking_api(app_public_pem(), AGENT, API_AUDIENCE)
}

fn options(ca: &TestCa) -> AdapterOptions {
    options_with_retry(ca, RetryPolicy::none())
}

fn api_client(ca_pem: &str) -> ApiClient {
    ApiClient::new(trusting(ca_pem)).unwrap()
}

#[tokio::test]
async fn in_session_flow_from_session_to_api_answer() {
    let idp = DevIdp::start(DevIdpConfig::with_client(AGENT, SECRET), ([127, 0, 0, 1], 0).into()).await.unwrap();
    let report = format!("{}/finance/report/Q4-2025", idp.api_url());

    // The web app: the logged-in user becomes the act, passed in memory.
    let sender = HybridSender::in_session();
    let act = sender
        .extract_act_from_session(&UserSession::new("alice@corp.example.com").with_user_name("Alice Smith").with_user_id("user_12345"))
        .unwrap();
    let act = sender.prepare_in_session_act(act);

    // The agent in the same process: a cached Keycloak adapter, a token, an API call.
    let config = KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret_auth(SECRET));
    let options = AdapterOptions::with_http(http_settings(idp.ca_pem(), RetryPolicy::none()));
    let adapter = build_adapter(VendorConfig::Keycloak(config), options, TokenCacheSettings::default()).unwrap();
    let tokens = InSessionTokenRequest::new(adapter);
    let token = tokens.request_token(AGENT, &act, ["finance.read"]).await.unwrap();
    let response = api_client(idp.ca_pem()).call_api(&token, ApiRequest::get(&report)).await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text());
    let seen =
        |act: &Act| json!({"vendor": "keycloak", "agent": AGENT, "human": act.sub(), "act": act.to_value(), "chain": [], "dpop_jkt": null});
    assert_eq!(response.json::<Value>().unwrap(), seen(&act));
    let issued = idp.token_requests();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        (issued[0].vendor, issued[0].grant_type.as_str(), issued[0].status, issued[0].token_type.as_deref()),
        ("keycloak", "client_credentials", 200, Some("Bearer"))
    );

    // Again: served by the cache, no second token request.
    tokens.request_token(AGENT, &act, ["finance.read"]).await.unwrap();
    assert_eq!(idp.token_requests().len(), 1);

    // Another human gets another token, and the API sees them.
    let bob = Act::new("user_67890").unwrap().with_email("bob@corp.example.com");
    let token = tokens.request_token(AGENT, &bob, ["finance.read"]).await.unwrap();
    let response = api_client(idp.ca_pem()).call_api(&token, ApiRequest::get(&report)).await.unwrap();
    assert_eq!(response.json::<Value>().unwrap(), seen(&bob));
    assert_eq!(idp.token_requests().len(), 2);
}

#[tokio::test]
async fn out_of_session_flow_with_entra_id_and_a_bound_act_assertion() {
    let ca = TestCa::new();
    let idp = TestHttpsServer::start(&ca).await;
    idp.set_handler(strict_entra_endpoint);
    let api = TestHttpsServer::start(&ca).await;
    api.set_handler(checking_api());

    // The web app signs the act for the remote agent.
    let sender = HybridSender::from_private_key_file(key_fixture("rsa2048-other.pem")).unwrap();
    let act = sender
        .extract_act_from_claims(
            json!({"email": "alice@corp.example.com", "oid": "00000000-0000-0000-0000-0000000000aa", "name": "Alice"}).as_object().unwrap(),
        )
        .unwrap();
    let act_jwt = sender.prepare_out_of_session_act(&act, AGENT_ENDPOINT, Duration::from_secs(60)).unwrap();

    // The agent: verify the act JWT, get a token (Entra ID: plus an act assertion), call the API.
    let config = EntraIdConfig {
        token_url: idp.url("/tenant/oauth2/v2.0/token"),
        client_id: AGENT.into(),
        client_auth: EntraClientAuthentication::ClientSecret(SecretString::from(SECRET)),
        app_id: "web-app".into(),
        app_key: Some(SigningKey::from_pem_file(key_fixture("rsa2048-other.pem")).unwrap()),
        api_audience: API_AUDIENCE.into(),
        api_scope: "api://finance-api/.default".into(),
        delegation: None,
    };
    let adapter = build_adapter(VendorConfig::EntraId(config), options(&ca), TokenCacheSettings::default()).unwrap();
    let verifier = ActJwtVerifier::builder(VerifyingKey::from_pem(app_public_pem()).unwrap(), AGENT_ENDPOINT).build().unwrap();
    let agent = OutOfSessionTokenRequest::new(adapter, verifier);
    let (verified_act, token) =
        agent.verify_and_request_token(act_jwt.expose_secret(), AGENT, ["api://finance-api/.default"]).await.unwrap();
    assert_eq!(verified_act, act);
    assert!(token.has_act_assertion());
    let response = api_client(ca.ca_pem())
        .call_api(&token, ApiRequest::post(api.url("/finance/transactions")).json(json!({"amount": 1})))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.json::<Value>().unwrap(), json!({"agent": AGENT, "human": "00000000-0000-0000-0000-0000000000aa"}));
    let seen = &api.requests()[0];
    assert_eq!(seen.header("authorization"), Some("Bearer ms-agent-token"));
    assert!(seen.header("x-act-assertion").is_some());

    // The same act JWT again: refused as a replay, and no token is requested for it.
    let before = idp.requests().len();
    let err = agent.verify_and_request_token(act_jwt.expose_secret(), AGENT, ["api://finance-api/.default"]).await.unwrap_err();
    assert!(err.is_act_jwt_rejected() && !err.is_identity_provider_failure(), "{err}");
    assert_eq!(err.to_string(), "Act JWT replay detected");
    assert_eq!(idp.requests().len(), before);
}

#[tokio::test]
async fn an_identity_provider_failure_never_looks_like_a_refused_jwt() {
    let ca = TestCa::new();
    let idp = TestHttpsServer::start(&ca).await;
    idp.set_fallback(CannedResponse::json(401, r#"{"error":"invalid_client"}"#));
    let sender = HybridSender::from_private_key_file(key_fixture("rsa2048-other.pem")).unwrap();
    let act_jwt = sender.prepare_out_of_session_act(&Act::new("u-1").unwrap(), AGENT_ENDPOINT, Duration::from_secs(60)).unwrap();
    let config = KeycloakConfig::new(
        idp.url("/realms/corp/protocol/openid-connect/token"),
        AGENT,
        ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap(),
    );
    let adapter = build_adapter(VendorConfig::Keycloak(config), options(&ca), TokenCacheSettings::default()).unwrap();
    let verifier = || ActJwtVerifier::builder(VerifyingKey::from_pem(app_public_pem()).unwrap(), AGENT_ENDPOINT);

    // A replay store that cannot answer: neither a refused JWT nor the identity provider's
    // failure, and no token is asked for.
    let unchecked = OutOfSessionTokenRequest::new(
        adapter.clone(),
        verifier().replay_guard(std::sync::Arc::new(UnavailableReplayStore)).build().unwrap(),
    );
    let err = unchecked.verify_and_request_token(act_jwt.expose_secret(), AGENT, ["finance.read"]).await.unwrap_err();
    assert!(err.is_temporary() && !err.is_act_jwt_rejected() && !err.is_identity_provider_failure(), "{err}");
    assert!(idp.requests().is_empty());

    let agent = OutOfSessionTokenRequest::new(adapter, verifier().build().unwrap());
    let err = agent.verify_and_request_token(act_jwt.expose_secret(), AGENT, ["finance.read"]).await.unwrap_err();
    assert!(err.is_identity_provider_failure() && !err.is_act_jwt_rejected() && !err.is_temporary(), "{err}");

    let err = agent.verify_and_request_token("not-a-jwt", AGENT, ["finance.read"]).await.unwrap_err();
    assert!(err.is_act_jwt_rejected(), "{err}");
    let err = HybridSender::in_session()
        .prepare_out_of_session_act(&Act::new("u").unwrap(), AGENT_ENDPOINT, Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, SessionError::OutOfSessionNotConfigured), "{err}");
}

#[test]
fn every_default_vendor_is_compiled_in() {
    for vendor in Vendor::ALL {
        assert!(dual_auth::ensure_vendor_compiled(vendor).is_ok(), "{vendor}");
    }
}
