//! Parity with the Python package: `dual-auth==1.0.1`'s adapters and ours send their token
//! requests to the same local HTTPS capture endpoint, and the requests are compared field
//! by field. Only `jti`, times and the differences documented in
//! `docs/moving-from-python.md` may differ.
//!
//! Needs the reference venv: `cargo xtask test` creates it and runs these.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use dual_auth::auth0::{Auth0Adapter, Auth0Config};
use dual_auth::entraid::{EntraClientAuthentication, EntraIdAdapter, EntraIdConfig};
use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::okta::{OktaAdapter, OktaConfig};
use dual_auth::secrecy::{ExposeSecret, SecretString};
use dual_auth::{IamAdapter, SigningKey, TokenRequest, Vendor};
use dual_auth_test_support::agent::{alice, options, secret_auth};
use dual_auth_test_support::https::{CannedResponse, RecordedRequest, TestCa, TestHttpsServer};
use dual_auth_test_support::jwt::{self, DecodedJwt};
use dual_auth_test_support::{key_fixture, reference_python};
use serde_json::{Value, json};

const SECRET: &str = "parity-client-secret-0123456789abcdefgh";
const AGENT: &str = "finance-agent";
const API: &str = "https://api.example.com/finance";

fn path(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Keycloak => "/realms/corp/protocol/openid-connect/token",
        Vendor::Auth0 => "/oauth/token",
        Vendor::Okta => "/oauth2/default/v1/token",
        _ => "/tenant-id/oauth2/v2.0/token",
    }
}

fn scope(vendor: Vendor) -> &'static str {
    if vendor == Vendor::EntraId { "api://finance-api/.default" } else { "finance.read" }
}

/// Python's adapter, through the reference venv; returns its printed token summary.
fn python_request(vendor: Vendor, url: &str, ca: &TestCa) -> Value {
    let config = match vendor {
        Vendor::Keycloak => json!({"client_id": AGENT, "client_secret": SECRET}),
        Vendor::Auth0 | Vendor::Okta => {
            json!({"client_id": AGENT, "client_secret": SECRET, "audience": API})
        }
        _ => json!({
            "client_id": AGENT, "client_secret": SECRET, "scope": scope(vendor),
            "app_private_key_path": key_fixture("rsa2048-other.pem"), "app_id": "web-app", "act_audience": API,
        }),
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/adapters.py");
    let out = Command::new(reference_python())
        .arg(script)
        .args([vendor.as_str(), url, &config.to_string(), AGENT, &alice().to_value().to_string(), scope(vendor)])
        .env("REQUESTS_CA_BUNDLE", ca.ca_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{vendor}: python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn rust_request(vendor: Vendor, url: String, ca: &TestCa) -> dual_auth::TokenResponse {
    let options = options(ca);
    let secret = || secret_auth(SECRET);
    let adapter: Box<dyn IamAdapter> = match vendor {
        Vendor::Keycloak => Box::new(KeycloakAdapter::new(KeycloakConfig::new(url, AGENT, secret()), options).unwrap()),
        Vendor::Auth0 => Box::new(Auth0Adapter::new(Auth0Config::new(url, AGENT, secret(), API), options).unwrap()),
        Vendor::Okta => Box::new(OktaAdapter::new(OktaConfig::new(url, AGENT, secret()), options).unwrap()),
        _ => Box::new(
            EntraIdAdapter::new(
                EntraIdConfig {
                    token_url: url,
                    client_id: AGENT.into(),
                    client_auth: EntraClientAuthentication::ClientSecret(SecretString::from(SECRET)),
                    app_id: "web-app".into(),
                    app_key: Some(SigningKey::from_pem_file(key_fixture("rsa2048-other.pem")).unwrap()),
                    api_audience: API.into(),
                    api_scope: "api://finance-api/.default".into(),
                    delegation: None,
                },
                options,
            )
            .unwrap(),
        ),
    };
    adapter.request_token(&TokenRequest::new(AGENT, alice(), [scope(vendor)]).unwrap()).await.unwrap()
}

/// The assertion's claims with `jti`, `exp` and `iat` replaced by what must hold of them.
fn normalised(assertion: &DecodedJwt) -> Value {
    let mut claims = assertion.claims.clone();
    let exp = claims.shift_remove("exp").unwrap().as_u64().unwrap();
    let iat = claims.shift_remove("iat").unwrap().as_u64().unwrap();
    let jti = claims.shift_remove("jti").unwrap();
    assert_eq!(jti.as_str().unwrap().len(), 43, "32 random bytes, base64url");
    claims.insert("exp-iat".into(), json!(exp - iat));
    Value::Object(claims)
}

fn form_without(request: &RecordedRequest, skip: &[&str]) -> Vec<(String, String)> {
    request.form().into_iter().filter(|(k, _)| !skip.contains(&k.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the reference Python venv: run `cargo xtask test`"]
async fn token_requests_match_the_python_package_field_by_field() {
    for vendor in Vendor::ALL {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        server.set_fallback(CannedResponse::json(200, r#"{"access_token":"captured","token_type":"Bearer","expires_in":300}"#));
        let url = server.url(path(vendor));
        // Python blocks this worker; the server keeps running on the other.
        let python = tokio::task::block_in_place(|| python_request(vendor, &url, &ca));
        let ours = rust_request(vendor, url.clone(), &ca).await;
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{vendor}: one request each");
        let (theirs_sent, ours_sent) = (&requests[0], &requests[1]);

        assert_eq!(
            (theirs_sent.method.as_str(), theirs_sent.target.as_str()),
            (ours_sent.method.as_str(), ours_sent.target.as_str()),
            "{vendor}"
        );
        assert_eq!(theirs_sent.header("content-type"), ours_sent.header("content-type"), "{vendor}");
        assert_eq!(ours_sent.header("accept"), Some("application/json"), "{vendor}");
        assert_eq!(python["token_type"], ours.token_type(), "{vendor}");
        assert_eq!(python["expires_in"].as_u64().unwrap(), ours.expires_in().as_secs(), "{vendor}");

        match vendor {
            Vendor::EntraId => {
                // The whole form is identical (the client secret goes to Microsoft by design).
                assert_eq!(theirs_sent.form(), ours_sent.form(), "{vendor}");
                let theirs = jwt::decode(python["act_assertion"].as_str().unwrap());
                let ours = jwt::decode(ours.new_act_assertion().unwrap().unwrap().expose_secret());
                // Documented difference: our act assertions have a typ of their own.
                let mut expected_header = theirs.header.clone();
                expected_header.insert("typ".into(), json!(dual_auth::ACT_ASSERTION_TYPE));
                assert_eq!(expected_header, ours.header, "{vendor}: act assertion header");
                // Documented difference: we add azp, the agent's client id.
                let mut expected = normalised(&theirs);
                expected.as_object_mut().unwrap().insert("azp".into(), json!(AGENT));
                assert_eq!(normalised(&ours), expected, "{vendor}: act assertion claims");
            }
            _ => {
                // Documented difference: Auth0 gets the requested scopes from us.
                let theirs_form = theirs_sent.form();
                let ours_form = form_without(ours_sent, if vendor == Vendor::Auth0 { &["scope"] } else { &[] });
                let names = |form: &[(String, String)]| form.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
                assert_eq!(names(&theirs_form), names(&ours_form), "{vendor}: the same fields in the same order");
                for ((name, theirs_value), (_, ours_value)) in theirs_form.iter().zip(&ours_form) {
                    if name != "client_assertion" {
                        assert_eq!(theirs_value, ours_value, "{vendor}: field {name}");
                    }
                }
                if vendor == Vendor::Auth0 {
                    assert_eq!(ours_sent.form_value("scope").as_deref(), Some("finance.read"));
                }
                let theirs = jwt::decode(&theirs_sent.form_value("client_assertion").unwrap());
                let ours = jwt::decode(&ours_sent.form_value("client_assertion").unwrap());
                assert_eq!(theirs.header, ours.header, "{vendor}: assertion header");
                assert!(theirs.verifies_hs256(SECRET.as_bytes()) && ours.verifies_hs256(SECRET.as_bytes()), "{vendor}");
                let mut expected = normalised(&theirs);
                if vendor == Vendor::Okta {
                    // Documented difference: Okta wants the full token endpoint URL as aud.
                    assert_eq!(expected["aud"], server.url("/oauth2/default"), "upstream's value");
                    expected.as_object_mut().unwrap().insert("aud".into(), json!(url));
                }
                assert_eq!(normalised(&ours), expected, "{vendor}: assertion claims");
            }
        }
    }
}
