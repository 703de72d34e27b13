//! The Entra ID token request and act assertion, asserted field by field.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::AdapterOptions;
use dual_auth_core::{Act, ActJwtVerifier, CLIENT_ASSERTION_TYPE, IamAdapter, IamError, SigningKey, TokenRequest, VerifyingKey};
use dual_auth_entraid::{EntraClientAuthentication, EntraIdAdapter, EntraIdConfig};
use dual_auth_test_support::agent::options;
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use dual_auth_test_support::{jwt, key_fixture};
use serde_json::json;

const SECRET: &str = "entra~client~secret~value";
const AGENT: &str = "11111111-2222-3333-4444-555555555555";
const APP_ID: &str = "app-registration-of-the-web-app";
const API_AUDIENCE: &str = "api://finance-api";
const TOKEN_PATH: &str = "/tenant-id/oauth2/v2.0/token";

fn act() -> Act {
    Act::new("00000000-0000-0000-0000-0000000000aa")
        .unwrap()
        .with_email("alice@corp.example.com")
        .with_oid("00000000-0000-0000-0000-0000000000aa")
}

fn config(url: String, auth: EntraClientAuthentication) -> EntraIdConfig {
    EntraIdConfig {
        token_url: url,
        client_id: AGENT.into(),
        client_auth: auth,
        app_id: APP_ID.into(),
        app_key: Some(SigningKey::from_pem_file(key_fixture("rsa2048-other.pem")).unwrap().with_key_id("app-key-1")),
        api_audience: API_AUDIENCE.into(),
        api_scope: "api://finance-api/.default".into(),
        delegation: None,
    }
}

#[tokio::test]
async fn client_secret_request_and_a_bound_act_assertion() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"ms-token"}"#));
    let adapter = EntraIdAdapter::new(
        config(server.url(TOKEN_PATH), EntraClientAuthentication::ClientSecret(SecretString::from(SECRET))),
        options(&ca),
    )
    .unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, act(), ["api://finance-api/.default"]).unwrap()).await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "ms-token");
    assert_eq!(token.expires_in(), Duration::from_secs(3599));

    let requests = server.requests();
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.target.as_str()), ("POST", TOKEN_PATH));
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = sent.form();
    assert_eq!(
        form,
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), AGENT.to_owned()),
            ("client_secret".to_owned(), SECRET.to_owned()),
            ("scope".to_owned(), "api://finance-api/.default".to_owned()),
        ]
    );

    // The act assertion: RS256 with the app key and its kid; azp binds it to the agent.
    let assertion_text = token.new_act_assertion().unwrap().unwrap().expose_secret().to_owned();
    let assertion = jwt::decode(&assertion_text);
    assert_eq!(
        serde_json::Value::Object(assertion.header.clone()),
        json!({"alg": "RS256", "typ": "act-assertion+jwt", "kid": "app-key-1"})
    );
    assert_eq!(assertion.claim_names(), ["iss", "sub", "aud", "exp", "iat", "jti", "act", "azp"]);
    assert_eq!((assertion.claims["iss"].as_str(), assertion.claims["sub"].as_str()), (Some(APP_ID), Some(APP_ID)));
    assert_eq!(assertion.claims["aud"], API_AUDIENCE);
    assert_eq!(assertion.claims["exp"].as_u64().unwrap() - assertion.claims["iat"].as_u64().unwrap(), 300);
    assert_eq!(assertion.claims["act"], act().to_value());
    assert_eq!(assertion.claims["azp"], AGENT);
    assert!(assertion.verifies_with_public_key(&std::fs::read(key_fixture("rsa2048-other.pub.pem")).unwrap()));
    // An act assertion verifier accepts it; an act JWT verifier, with the same key, does not.
    let builder =
        || ActJwtVerifier::builder(VerifyingKey::from_pem_file(key_fixture("rsa2048-other.pub.pem")).unwrap(), API_AUDIENCE).issuer(APP_ID);
    let err = builder().build().unwrap().verify(&assertion_text).await.unwrap_err();
    assert!(matches!(&err, dual_auth_core::ActJwtError::UnsupportedHeader { name, .. } if name == "typ"), "{err}");
    assert_eq!(builder().for_act_assertions().build().unwrap().verify(&assertion_text).await.unwrap().act(), &act());
}

#[tokio::test]
async fn certificate_credential_sends_an_assertion_with_x5t_s256_and_no_secret() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"token_type":"Bearer","expires_in":"3599","access_token":"ms-token"}"#));
    let certificate = std::fs::read(key_fixture("rsa2048.cert.pem")).unwrap();
    let key = SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap().with_certificate(&certificate).unwrap();
    let adapter = EntraIdAdapter::new(config(server.url(TOKEN_PATH), EntraClientAuthentication::Certificate(key)), options(&ca)).unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, act(), ["api://finance-api/.default"]).unwrap()).await.unwrap();
    assert_eq!(token.expires_in(), Duration::from_secs(3599), "a string expires_in is read too");

    let form = server.requests()[0].form();
    assert_eq!(
        form.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["grant_type", "client_id", "client_assertion_type", "client_assertion", "scope"]
    );
    assert_eq!(form[2].1, CLIENT_ASSERTION_TYPE);
    let assertion = jwt::decode(&form[3].1);
    let expected = jwt::x5t_s256(&certificate);
    assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "RS256", "typ": "JWT", "x5t#S256": expected}));
    assert_eq!(assertion.claim_names(), ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]);
    assert_eq!(assertion.claims["aud"], server.url(TOKEN_PATH), "Microsoft wants the token endpoint");
    assert_eq!(assertion.claims["nbf"], assertion.claims["iat"]);
    assert!(assertion.verifies_with_public_key(&std::fs::read(key_fixture("rsa2048-spki.pub.pem")).unwrap()));
}

#[tokio::test]
async fn non_default_scopes_and_a_certificate_for_another_key_are_refused() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    let adapter = EntraIdAdapter::new(
        config(server.url(TOKEN_PATH), EntraClientAuthentication::ClientSecret(SecretString::from(SECRET))),
        options(&ca),
    )
    .unwrap();
    let err = adapter.request_token(&TokenRequest::new(AGENT, act(), ["finance.read"]).unwrap()).await.unwrap_err();
    assert!(matches!(&err, IamError::InvalidRequest { reason } if reason.contains("/.default")), "{err}");
    assert!(server.requests().is_empty());

    let other_cert = std::fs::read(key_fixture("rsa2048-other.cert.pem")).unwrap();
    let err = SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap().with_certificate(&other_cert).unwrap_err();
    assert!(err.to_string().contains("issued for another key"), "{err}");
    let key_without_certificate = SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap();
    let err =
        EntraIdAdapter::new(config(server.url(TOKEN_PATH), EntraClientAuthentication::Certificate(key_without_certificate)), options(&ca))
            .unwrap_err();
    assert!(err.to_string().contains("with_certificate"), "{err}");
}

#[test]
fn dpop_is_refused_as_not_supported_naming_entra_id() {
    use dual_auth_core::token_endpoint::DpopSettings;
    use dual_auth_core::{DpopKey, SigningAlgorithm};

    let dpop = DpopSettings::new(DpopKey::generate(SigningAlgorithm::Es256).unwrap()).with_allow_downgrade(true);
    let auth = EntraClientAuthentication::ClientSecret(SecretString::from(SECRET));
    let err = EntraIdAdapter::new(
        config("https://login.example.com/t/oauth2/v2.0/token".into(), auth),
        AdapterOptions::default().with_dpop(dpop),
    )
    .unwrap_err();
    assert!(matches!(&err, IamError::NotSupported { what } if what.contains("entraid") && what.contains("DPoP")), "{err}");
    assert!(err.to_string().contains("Entra ID"), "{err}");
}
