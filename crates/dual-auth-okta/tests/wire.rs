//! The Okta token request, asserted field by field against a strict local endpoint.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dual_auth_core::secrecy::SecretString;
use dual_auth_core::{Act, CLIENT_ASSERTION_TYPE, ClientAuthentication, IamAdapter, SigningKey, TokenRequest};
use dual_auth_okta::{OktaAdapter, OktaConfig};
use dual_auth_test_support::agent::{alice_as, options};
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use dual_auth_test_support::{jwt, key_fixture};
use serde_json::json;

const SECRET: &str = "okta-client-secret-0123456789abcdefghi";
const AGENT: &str = "0oa1service2app3id";

fn act() -> Act {
    alice_as("00u1okta2user3id")
}

#[tokio::test]
async fn assertion_audience_is_the_full_token_endpoint_url() {
    for path in ["/oauth2/default/v1/token", "/oauth2/v1/token"] {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        server.push(CannedResponse::json(
            200,
            r#"{"access_token":"okta-token","token_type":"Bearer","expires_in":3600,"scope":"finance.read"}"#,
        ));
        let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
        let adapter = OktaAdapter::new(OktaConfig::new(server.url(path), AGENT, auth), options(&ca)).unwrap();
        adapter.request_token(&TokenRequest::new(AGENT, act(), ["finance.read"]).unwrap()).await.unwrap();

        let requests = server.requests();
        let sent = &requests[0];
        assert_eq!((sent.method.as_str(), sent.target.as_str()), ("POST", path));
        assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
        let form = sent.form();
        assert_eq!(
            form.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["grant_type", "scope", "client_assertion_type", "client_assertion"]
        );
        assert_eq!(
            (form[0].1.as_str(), form[1].1.as_str(), form[2].1.as_str()),
            ("client_credentials", "finance.read", CLIENT_ASSERTION_TYPE)
        );
        let assertion = jwt::decode(&form[3].1);
        assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "HS256", "typ": "JWT"}));
        assert_eq!(assertion.claim_names(), ["iss", "sub", "aud", "exp", "iat", "jti", "act"]);
        assert_eq!(assertion.claims["aud"], server.url(path), "Okta wants the token endpoint URL (upstream broke the org server)");
        assert_eq!(assertion.claims["act"], act().to_value());
        assert!(assertion.verifies_hs256(SECRET.as_bytes()));
        assert!(!sent.body_text().contains(SECRET));
    }
}

#[tokio::test]
async fn private_key_jwt_and_an_audience_override() {
    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(CannedResponse::json(200, r#"{"access_token":"t"}"#));
    let key = SigningKey::from_pem_file(key_fixture("rsa2048-pkcs1.pem")).unwrap().with_key_id("okta-kid");
    let config = OktaConfig::new(server.url("/oauth2/aus1/v1/token"), AGENT, ClientAuthentication::private_key_jwt(key))
        .with_assertion_audience("https://corp.okta.com/oauth2/aus1");
    let adapter = OktaAdapter::new(config, options(&ca)).unwrap();
    adapter.request_token(&TokenRequest::new(AGENT, act(), ["finance.read"]).unwrap()).await.unwrap();
    let assertion = jwt::decode(&server.requests()[0].form_value("client_assertion").unwrap());
    assert_eq!(serde_json::Value::Object(assertion.header.clone()), json!({"alg": "RS256", "typ": "JWT", "kid": "okta-kid"}));
    assert_eq!(assertion.claims["aud"], "https://corp.okta.com/oauth2/aus1");
    assert!(assertion.verifies_with_public_key(&std::fs::read(key_fixture("rsa2048-spki.pub.pem")).unwrap()));
}

/// Okta requires a nonce up front: the first token request gets 400 `use_dpop_nonce` with a
/// `dpop-nonce` header (lower case, as Okta sends it), the retry carries it.
#[tokio::test]
async fn dpop_with_okta_takes_the_nonce_it_hands_out() {
    use dual_auth_core::dangerous::UnverifiedJwt;
    use dual_auth_core::token_endpoint::DpopSettings;
    use dual_auth_core::{DpopKey, SigningAlgorithm, VerifyingKey};

    let ca = TestCa::new();
    let server = TestHttpsServer::start(&ca).await;
    server.push(
        CannedResponse::json(400, r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#)
            .with_header("dpop-nonce", "okta-nonce-1"),
    );
    server.push(CannedResponse::json(200, r#"{"access_token":"okta-dpop","token_type":"DPoP","expires_in":3600}"#));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
    let url = server.url("/oauth2/default/v1/token");
    let adapter = OktaAdapter::new(OktaConfig::new(&url, AGENT, auth), options(&ca).with_dpop(DpopSettings::new(key.clone()))).unwrap();
    let token = adapter.request_token(&TokenRequest::new(AGENT, act(), ["finance.read"]).unwrap()).await.unwrap();
    assert!(token.is_dpop_bound() && token.token_type() == "DPoP");

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "exactly the challenge and the retry");
    let proofs: Vec<jwt::DecodedJwt> = requests.iter().map(|r| jwt::decode(r.header("dpop").unwrap())).collect();
    for (proof, sent) in proofs.iter().zip(&requests) {
        assert_eq!(proof.header["typ"], "dpop+jwt");
        assert_eq!(proof.header["alg"], "ES256");
        assert_eq!(proof.header["jwk"], key.public_jwk());
        assert_eq!((proof.claims["htm"].as_str(), proof.claims["htu"].as_str()), (Some("POST"), Some(url.as_str())));
        assert!(!proof.claims.contains_key("ath"));
        let jwk = proof.header["jwk"].as_object().unwrap();
        assert!(VerifyingKey::from_jwk(jwk).unwrap().verifies(&UnverifiedJwt::parse(sent.header("dpop").unwrap()).unwrap()));
    }
    assert_eq!(proofs[0].claim_names(), ["jti", "htm", "htu", "iat"]);
    assert_eq!(proofs[1].claim_names(), ["jti", "htm", "htu", "iat", "nonce"]);
    assert_eq!(proofs[1].claims["nonce"], "okta-nonce-1");
    assert_ne!(proofs[0].claims["jti"], proofs[1].claims["jti"]);
    assert!(adapter.cache_scope().ends_with(&format!("|dpop:{}", key.thumbprint())));
}
