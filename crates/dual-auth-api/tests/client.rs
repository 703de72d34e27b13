//! The API client against local HTTPS servers: headers, HTTPS only, redirects, retries.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dual_auth_api::{ApiClient, ApiError, ApiRequest, Method};
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::token_endpoint::{HttpSettings, RetryPolicy};
use dual_auth_core::{ActAssertionSource, IamError, TokenResponse};
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use serde_json::json;

const TOKEN: &str = "access-token-value";

/// Signs "act-assertion-1", "act-assertion-2", ...: each request's assertion is told apart.
#[derive(Debug, Default)]
struct NumberedAssertions(AtomicUsize);

impl ActAssertionSource for NumberedAssertions {
    fn sign_act_assertion(&self) -> Result<SecretString, IamError> {
        Ok(SecretString::from(format!("act-assertion-{}", self.0.fetch_add(1, Ordering::SeqCst) + 1)))
    }
}

fn client(ca: &TestCa) -> ApiClient {
    ApiClient::new(HttpSettings {
        extra_root_certificates_pem: Some(ca.ca_pem().as_bytes().to_vec()),
        timeout: Duration::from_secs(2),
        retry: RetryPolicy { initial_backoff: Duration::from_millis(10), ..RetryPolicy::default() },
        ..HttpSettings::default()
    })
    .unwrap()
}

fn token(with_assertion: bool) -> TokenResponse {
    let token = TokenResponse::new(TOKEN, "Bearer", Duration::from_secs(300), SystemTime::now());
    if with_assertion { token.with_act_assertion_source(Arc::new(NumberedAssertions::default())) } else { token }
}

#[tokio::test]
async fn sends_bearer_act_assertion_query_and_json() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    api.set_fallback(CannedResponse::json(200, r#"{"ok":true}"#));
    let request = ApiRequest::post(api.url("/finance/transactions"))
        .query("dry run", "yes&no")
        .json(json!({"amount": 100, "currency": "EUR"}))
        .header("X-Request-Id", "r-1");
    let response = client(&ca).call_api(&token(true), request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().unwrap(), json!({"ok": true}));

    let sent = &api.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.target, "/finance/transactions?dry+run=yes%26no");
    assert_eq!(sent.header("authorization"), Some("Bearer access-token-value"));
    assert_eq!(sent.header("x-act-assertion"), Some("act-assertion-1"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-request-id"), Some("r-1"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(), json!({"amount": 100, "currency": "EUR"}));

    client(&ca).call_api(&token(false), ApiRequest::get(api.url("/x"))).await.unwrap();
    assert_eq!(api.requests()[1].header("x-act-assertion"), None, "no assertion, no header");
}

#[tokio::test]
async fn http_urls_are_refused_whatever_their_case() {
    let ca = TestCa::new();
    for url in ["http://api.example.com/x", "HTTP://api.example.com/x", "ftp://api.example.com/", "api.example.com/x"] {
        let err = client(&ca).call_api(&token(true), ApiRequest::get(url)).await.unwrap_err();
        assert!(matches!(err, ApiError::InsecureUrl { .. }), "{url}: {err}");
        assert!(err.to_string().starts_with("API URL must use HTTPS"), "{err}");
    }
    let err = client(&ca)
        .call_api(&token(true), ApiRequest::get("https://api.example.com/").header("Authorization", "Basic x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::InvalidRequest { .. }), "{err}");
}

#[tokio::test]
async fn a_redirect_to_http_is_refused() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    let plain = api.url("/elsewhere").replace("https://", "http://");
    api.push(CannedResponse::text(302, "").with_header("Location", &plain));
    let err = client(&ca).call_api(&token(true), ApiRequest::get(api.url("/start"))).await.unwrap_err();
    assert!(matches!(&err, ApiError::RedirectRefused { reason } if reason.contains("http://")), "{err}");
    assert_eq!(api.requests().len(), 1, "nothing followed the redirect");
}

#[tokio::test]
async fn a_cross_origin_redirect_strips_both_credentials_and_a_same_origin_one_keeps_them() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    let other = TestHttpsServer::start(&ca).await; // another port: another origin
    other.set_fallback(CannedResponse::json(200, r#"{"where":"other"}"#));
    api.push(CannedResponse::text(302, "").with_header("Location", "/moved"));
    api.push(CannedResponse::text(307, "").with_header("Location", &other.url("/landing")));
    let request = ApiRequest::get(api.url("/start"))
        .header("Cookie", "session=s3cr3t")
        .header("X-Api-Key", "key-123")
        .header("Accept", "application/json")
        .header("User-Agent", "finance-agent/1");
    let response = client(&ca).call_api(&token(true), request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().as_str(), other.url("/landing"));

    let same = &api.requests()[1];
    assert_eq!(same.target, "/moved");
    assert_eq!(same.header("authorization"), Some("Bearer access-token-value"), "same origin keeps them");
    assert_eq!(api.requests()[0].header("x-act-assertion"), Some("act-assertion-1"));
    assert_eq!(same.header("x-act-assertion"), Some("act-assertion-2"), "each hop its own assertion");
    assert_eq!((same.header("cookie"), same.header("x-api-key")), (Some("session=s3cr3t"), Some("key-123")));
    let crossed = &other.requests()[0];
    assert_eq!(crossed.target, "/landing");
    assert_eq!(crossed.header("authorization"), None, "never sent to another origin");
    assert_eq!(crossed.header("x-act-assertion"), None);
    assert_eq!((crossed.header("cookie"), crossed.header("x-api-key")), (None, None), "the caller's secrets stay behind too");
    assert_eq!((crossed.header("accept"), crossed.header("user-agent")), (Some("application/json"), Some("finance-agent/1")));
}

#[tokio::test]
async fn get_is_retried_post_is_not_unless_opted_in() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    api.push(CannedResponse::json(503, "{}"));
    api.push(CannedResponse::json(200, "{}"));
    let response = client(&ca).call_api(&token(false), ApiRequest::get(api.url("/r"))).await.unwrap();
    assert_eq!((response.status(), api.requests().len()), (200, 2), "GET retried");

    let api = TestHttpsServer::start(&ca).await;
    api.push(CannedResponse::json(503, r#"{"error":"busy"}"#));
    api.push(CannedResponse::json(200, "{}"));
    let response = client(&ca).call_api(&token(false), ApiRequest::post(api.url("/pay")).json(json!({"n": 1}))).await.unwrap();
    assert_eq!((response.status(), api.requests().len()), (503, 1), "POST not retried; the 503 is the answer");

    let response =
        client(&ca).call_api(&token(false), ApiRequest::post(api.url("/pay")).json(json!({"n": 1})).retry_non_idempotent()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(api.requests().len(), 2, "opted in: the queued 200 answered the first try");

    let api = TestHttpsServer::start(&ca).await;
    api.push(CannedResponse::json(502, "{}"));
    api.push(CannedResponse::json(200, "{}"));
    let response = client(&ca).call_api(&token(false), ApiRequest::post(api.url("/pay")).retry_non_idempotent()).await.unwrap();
    assert_eq!((response.status(), api.requests().len()), (200, 2), "opted-in POST retried");
}

#[tokio::test]
async fn retry_after_is_honoured_and_client_errors_are_answers() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    api.push(CannedResponse::json(429, "{}").with_header("Retry-After", "1"));
    api.push(CannedResponse::json(200, "{}"));
    let started = Instant::now();
    let response = client(&ca).call_api(&token(false), ApiRequest::new(Method::PUT, api.url("/r"))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(950), "waited for Retry-After");

    api.push(CannedResponse::json(404, r#"{"error":"not found"}"#));
    let response = client(&ca).call_api(&token(false), ApiRequest::get(api.url("/missing"))).await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(!response.is_success());
}

#[tokio::test]
async fn a_slow_api_times_out_as_a_typed_error() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    api.set_fallback(CannedResponse::json(200, "{}").with_delay(Duration::from_secs(5)));
    let err = client(&ca).call_api(&token(false), ApiRequest::post(api.url("/slow"))).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(TOKEN), "no token in errors");
}

#[tokio::test]
async fn every_call_and_every_retry_of_one_token_sends_a_new_act_assertion() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    api.push(CannedResponse::json(503, "{}"));
    api.set_fallback(CannedResponse::json(200, "{}"));
    let token = token(true);
    for _ in 0..3 {
        let response = client(&ca).call_api(&token, ApiRequest::get(api.url("/report"))).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let sent: Vec<Option<String>> = api.requests().iter().map(|r| r.header("x-act-assertion").map(str::to_owned)).collect();
    let expected: Vec<Option<String>> = (1..=4).map(|n| Some(format!("act-assertion-{n}"))).collect();
    assert_eq!(sent, expected, "the retry and each later call carry their own assertion");
}
