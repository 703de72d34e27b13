//! Every failure a token endpoint can produce, against every vendor adapter: the error
//! keeps what happened, retries happen only when they may help, and each retry carries a
//! fresh assertion.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use dual_auth::auth0::{Auth0Adapter, Auth0Config};
use dual_auth::entraid::{EntraClientAuthentication, EntraIdAdapter, EntraIdConfig};
use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::okta::{OktaAdapter, OktaConfig};
use dual_auth::secrecy::SecretString;
use dual_auth::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy};
use dual_auth::{Act, ClientAuthentication, IamAdapter, IamError, SigningKey, TokenRequest, Vendor};
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer, closed_port};
use dual_auth_test_support::{jwt, key_fixture};

const SECRET: &str = "shared-client-secret-0123456789abcdef";
const AGENT: &str = "agent-under-test";

fn path(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Keycloak => "/realms/corp/protocol/openid-connect/token",
        Vendor::Auth0 => "/oauth/token",
        Vendor::Okta => "/oauth2/default/v1/token",
        _ => "/tenant/oauth2/v2.0/token",
    }
}

fn request(vendor: Vendor) -> TokenRequest {
    let scope = if vendor == Vendor::EntraId { "api://finance/.default" } else { "finance.read" };
    TokenRequest::new(AGENT, Act::new("user_12345").unwrap().with_email("alice@corp.example.com"), [scope]).unwrap()
}

/// An adapter for `vendor` at `base` (`https://localhost:PORT`). Entra ID uses its
/// certificate credential, so that every vendor sends an assertion with a `jti`.
fn adapter(vendor: Vendor, base: &str, ca: &TestCa, http: HttpSettings) -> Box<dyn IamAdapter> {
    let http = HttpSettings { extra_root_certificates_pem: Some(ca.ca_pem().as_bytes().to_vec()), ..http };
    let options = AdapterOptions::with_http(http);
    let url = format!("{base}{}", path(vendor));
    let secret = || ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
    match vendor {
        Vendor::Keycloak => Box::new(KeycloakAdapter::new(KeycloakConfig::new(url, AGENT, secret()), options).unwrap()),
        Vendor::Auth0 => Box::new(Auth0Adapter::new(Auth0Config::new(url, AGENT, secret(), "https://api.example.com"), options).unwrap()),
        Vendor::Okta => Box::new(OktaAdapter::new(OktaConfig::new(url, AGENT, secret()), options).unwrap()),
        _ => {
            let certificate = std::fs::read(key_fixture("rsa2048.cert.pem")).unwrap();
            let key = SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap().with_certificate(certificate).unwrap();
            let config = EntraIdConfig {
                token_url: url,
                client_id: AGENT.into(),
                client_auth: EntraClientAuthentication::Certificate(key),
                app_id: "app".into(),
                app_key: Some(SigningKey::from_pem_file(key_fixture("rsa2048-other.pem")).unwrap()),
                api_audience: "api://finance".into(),
                api_scope: "api://finance-api/.default".into(),
                delegation: None,
            };
            Box::new(EntraIdAdapter::new(config, options).unwrap())
        }
    }
}

fn fast_retries() -> HttpSettings {
    HttpSettings { retry: RetryPolicy { initial_backoff: Duration::from_millis(20), ..RetryPolicy::default() }, ..HttpSettings::default() }
}

/// Runs `script` against a fresh server for every vendor; returns each vendor's outcome and requests.
async fn each_vendor(
    script: &[CannedResponse],
    http: HttpSettings,
    check: impl Fn(Vendor, Result<dual_auth::TokenResponse, IamError>, &TestHttpsServer),
) {
    for vendor in Vendor::ALL {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        for response in script {
            server.push(response.clone());
        }
        let adapter = adapter(vendor, &server.url(""), &ca, http.clone());
        let outcome = adapter.request_token(&request(vendor)).await;
        if let Err(error) = &outcome {
            let text = format!("{error} {error:?}");
            assert!(!text.contains(SECRET), "{vendor}: the secret leaked into an error: {text}");
        }
        check(vendor, outcome, &server);
    }
}

fn assertion_jti(server: &TestHttpsServer, index: usize) -> String {
    let assertion = server.requests()[index].form_value("client_assertion").unwrap();
    jwt::decode(&assertion).claims["jti"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn oauth_errors_keep_status_code_and_description_and_are_not_retried() {
    let cases = [
        (400, r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#, "invalid_client"),
        (401, r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#, "invalid_client"),
        (403, r#"{"error":"unauthorized_client","error_description":"Grant type not allowed"}"#, "unauthorized_client"),
    ];
    for (status, body, code) in cases {
        each_vendor(&[CannedResponse::json(status, body)], fast_retries(), |vendor, outcome, server| {
            let err = outcome.unwrap_err();
            assert!(matches!(&err, IamError::OAuth { vendor: v, .. } if *v == vendor), "{vendor}: {err:?}");
            assert_eq!(err.status(), Some(status), "{vendor}");
            assert_eq!(err.oauth_error(), Some(code), "{vendor}");
            assert!(!err.is_retryable());
            let text = err.to_string();
            assert!(text.contains(&format!("{vendor} token endpoint answered HTTP {status}: {code} (")), "{text}");
            assert_eq!(server.requests().len(), 1, "{vendor}: {status} is not retried");
        })
        .await;
    }
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after_then_succeeds() {
    let script = [
        CannedResponse::json(429, r#"{"error":"too_many_requests"}"#).with_header("Retry-After", "1"),
        CannedResponse::json(200, r#"{"access_token":"t"}"#),
    ];
    for vendor in Vendor::ALL {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        for response in &script {
            server.push(response.clone());
        }
        let adapter = adapter(vendor, &server.url(""), &ca, fast_retries());
        let started = Instant::now();
        adapter.request_token(&request(vendor)).await.unwrap();
        // A lower bound only: the adapter waited as asked instead of its 20 ms backoff.
        assert!(started.elapsed() >= Duration::from_millis(950), "{vendor}: Retry-After honoured");
        assert_eq!(server.requests().len(), 2);
        assert_ne!(assertion_jti(&server, 0), assertion_jti(&server, 1), "{vendor}: a fresh assertion per attempt");
    }
}

#[tokio::test]
async fn a_server_error_then_success_retries_with_a_fresh_jti() {
    let script = [CannedResponse::text(500, "boom"), CannedResponse::json(200, r#"{"access_token":"t","expires_in":60}"#)];
    each_vendor(&script, fast_retries(), |vendor, outcome, server| {
        assert_eq!(outcome.unwrap().expires_in(), Duration::from_secs(60), "{vendor}");
        assert_eq!(server.requests().len(), 2, "{vendor}");
        assert_ne!(assertion_jti(server, 0), assertion_jti(server, 1), "{vendor}: the retry must not replay the jti");
    })
    .await;
}

#[tokio::test]
async fn unavailable_until_retries_run_out() {
    let unavailable = CannedResponse::json(503, r#"{"error":"temporarily_unavailable"}"#);
    each_vendor(
        &[unavailable.clone(), unavailable.clone(), unavailable.clone(), unavailable],
        fast_retries(),
        |vendor, outcome, server| {
            let err = outcome.unwrap_err();
            assert!(matches!(&err, IamError::RetriesExhausted { attempts: 3, .. }), "{vendor}: {err:?}");
            assert_eq!(err.status(), Some(503));
            assert_eq!(err.oauth_error(), Some("temporarily_unavailable"));
            assert_eq!(server.requests().len(), 3, "{vendor}: bounded at 3 attempts");
            let jtis: std::collections::HashSet<String> = (0..3).map(|i| assertion_jti(server, i)).collect();
            assert_eq!(jtis.len(), 3, "{vendor}: three different jtis");
        },
    )
    .await;
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let http = HttpSettings {
        timeout: Duration::from_millis(300),
        retry: RetryPolicy { max_attempts: 2, initial_backoff: Duration::from_millis(10), ..RetryPolicy::default() },
        ..HttpSettings::default()
    };
    let slow = CannedResponse::json(200, r#"{"access_token":"t"}"#).with_delay(Duration::from_secs(2));
    each_vendor(&[slow.clone(), slow], http, |vendor, outcome, server| {
        let err = outcome.unwrap_err();
        assert!(err.is_timeout(), "{vendor}: {err:?}");
        assert!(matches!(&err, IamError::RetriesExhausted { attempts: 2, .. }), "{vendor}: {err:?}");
        assert_eq!(server.requests().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_after_retries() {
    for vendor in Vendor::ALL {
        let ca = TestCa::new();
        let adapter = adapter(vendor, &format!("https://localhost:{}", closed_port()), &ca, fast_retries());
        let err = adapter.request_token(&request(vendor)).await.unwrap_err();
        let IamError::RetriesExhausted { attempts: 3, last, .. } = &err else { panic!("{vendor}: {err:?}") };
        assert!(matches!(last.as_ref(), IamError::Transport { timed_out: false, .. }), "{vendor}: {last:?}");
        assert_eq!(err.to_string(), format!("{vendor} token request failed after 3 attempts"));
        assert!(dual_auth::ErrorChain(&err).to_string().contains("connection failed"), "{err:?}");
        assert_eq!(err.status(), None);
    }
}

#[tokio::test]
async fn a_success_status_with_an_unusable_body_is_its_own_error() {
    let cases = [
        (CannedResponse::text(200, "<html>login</html>"), "the body is not a JSON object"),
        (CannedResponse::json(200, r#"{"token_type":"Bearer","expires_in":300}"#), "no access_token"),
    ];
    for (response, reason) in cases {
        each_vendor(&[response], fast_retries(), |vendor, outcome, server| {
            let err = outcome.unwrap_err();
            assert!(matches!(&err, IamError::InvalidResponse { status: 200, reason: r, .. } if r == reason), "{vendor}: {err:?}");
            assert_eq!(server.requests().len(), 1, "{vendor}: not retried");
        })
        .await;
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let redirect = CannedResponse::text(302, "").with_header("Location", "https://attacker.example/steal");
    each_vendor(&[redirect], fast_retries(), |vendor, outcome, server| {
        let err = outcome.unwrap_err();
        assert!(matches!(&err, IamError::HttpStatus { status: 302, .. }), "{vendor}: {err:?}");
        assert_eq!(server.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn every_vendor_refuses_to_sign_for_another_agent() {
    for vendor in Vendor::ALL {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        let adapter = adapter(vendor, &server.url(""), &ca, fast_retries());
        let scope = if vendor == Vendor::EntraId { "api://finance/.default" } else { "finance.read" };
        let other = TokenRequest::new("someone-elses-agent", Act::new("user_12345").unwrap(), [scope]).unwrap();
        let err = adapter.request_token(&other).await.unwrap_err();
        assert!(
            matches!(&err, IamError::AgentMismatch { vendor: v, configured, requested } if *v == vendor && configured == AGENT && requested == "someone-elses-agent"),
            "{vendor}: {err:?}"
        );
        assert!(server.requests().is_empty(), "{vendor}: nothing sent");
    }
}

#[tokio::test]
async fn absurd_lifetimes_are_refused_as_their_own_error_and_a_day_is_accepted() {
    let cases = [
        r#"{"access_token":"t","expires_in":18446744073709551615}"#,
        r#"{"access_token":"t","expires_in":"18446744073709551615"}"#,
        r#"{"access_token":"t","expires_in":100000000000}"#,
        r#"{"access_token":"t","expires_in":86401}"#,
    ];
    for body in cases {
        each_vendor(&[CannedResponse::json(200, body)], fast_retries(), |vendor, outcome, server| {
            let err = outcome.unwrap_err();
            assert!(matches!(&err, IamError::LifetimeTooLong { max_secs: 86_400, .. }), "{vendor} {body}: {err:?}");
            assert_eq!(server.requests().len(), 1, "{vendor}: not retried");
        })
        .await;
    }
    each_vendor(&[CannedResponse::json(200, r#"{"access_token":"t","expires_in":86400}"#)], fast_retries(), |vendor, outcome, _| {
        assert_eq!(outcome.unwrap().expires_in(), Duration::from_secs(86_400), "{vendor}");
    })
    .await;
}

#[tokio::test]
async fn identity_provider_error_bodies_are_cut_and_escaped() {
    let body = serde_json::json!({
        "error": format!("invalid_client\nINFO forged\u{1b}[31m{}", "e".repeat(200)),
        "error_description": format!("line one\r\nWARN forged\u{9b}{}", "d".repeat(100 * 1024)),
    })
    .to_string();
    each_vendor(&[CannedResponse::json(400, &body)], fast_retries(), |vendor, outcome, _| {
        let err = outcome.unwrap_err();
        let IamError::OAuth { error, description: Some(description), .. } = &err else { panic!("{vendor}: {err:?}") };
        assert!(error.starts_with(r"invalid_client\u000aINFO forged\u001b[31m") && error.ends_with('…'), "{vendor}: {error}");
        assert_eq!(error.chars().count(), dual_auth::MAX_OAUTH_ERROR_CHARS + 1 + 5 * 2, "{vendor}: 64 characters, escaped, then …");
        assert!(description.starts_with(r"line one\u000d\u000aWARN forged\u009b") && description.ends_with('…'), "{vendor}");
        assert!(description.len() < 300, "{vendor}: {} bytes kept of 100 KiB", description.len());
        let text = err.to_string();
        assert!(!text.chars().any(char::is_control), "{vendor}: {text:?}");
    })
    .await;
}
