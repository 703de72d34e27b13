//! The API client against local HTTPS servers: headers, HTTPS only, redirects, retries.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dual_auth_api::{ApiClient, ApiError, ApiRequest, Method, asks_for_dpop_nonce};
use dual_auth_core::dangerous::UnverifiedJwt;
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::token_endpoint::HttpSettings;
use dual_auth_core::{ActAssertionSource, DpopKey, IamError, SigningAlgorithm, TokenResponse, VerifyingKey, access_token_hash};
use dual_auth_test_support::agent::{http_settings, quick_retry};
use dual_auth_test_support::https::{CannedResponse, RecordedRequest, TestCa, TestHttpsServer};
use dual_auth_test_support::jwt;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
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
    ApiClient::new(HttpSettings { timeout: Duration::from_secs(2), ..http_settings(ca.ca_pem(), quick_retry()) }).unwrap()
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
    assert_eq!(api.requests()[1].header("dpop"), None, "a bearer token sends no proof");
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

fn dpop_token(key: &DpopKey) -> TokenResponse {
    TokenResponse::new(TOKEN, "DPoP", Duration::from_secs(300), SystemTime::now()).with_dpop_key(key.clone())
}

/// The request's proof, checked against RFC 9449 §4.2 and §7.1: header `alg`, `typ`, `jwk`
/// (the key's public members); claims `jti`, `htm`, `htu` (no query), `iat`, `ath` = the
/// token's hash, then `nonce` when expected; the signature verifies with its `jwk`.
fn checked_proof(sent: &RecordedRequest, key: &DpopKey, method: &str, htu: &str, nonce: Option<&str>) -> jwt::DecodedJwt {
    assert_eq!(sent.header("authorization"), Some("DPoP access-token-value"), "the DPoP scheme, not Bearer");
    assert_eq!(sent.headers.iter().filter(|(n, _)| n == "dpop").count(), 1, "exactly one proof");
    let text = sent.header("dpop").expect("a DPoP proof");
    let proof = jwt::decode(text);
    let header: Vec<&str> = proof.header.keys().map(String::as_str).collect();
    assert_eq!(header, ["alg", "typ", "jwk"]);
    assert_eq!(proof.header["typ"], "dpop+jwt");
    assert_eq!(proof.header["alg"], key.algorithm().as_str());
    assert_eq!(proof.header["jwk"], key.public_jwk());
    let jwk = proof.header["jwk"].as_object().unwrap();
    assert!(!jwk.contains_key("d"));
    assert!(VerifyingKey::from_jwk(jwk).unwrap().verifies(&UnverifiedJwt::parse(text).unwrap()));
    let expected: &[&str] =
        if nonce.is_some() { &["jti", "htm", "htu", "iat", "ath", "nonce"] } else { &["jti", "htm", "htu", "iat", "ath"] };
    assert_eq!(proof.claim_names(), expected);
    assert_eq!(proof.claims["htm"], method);
    assert_eq!(proof.claims["htu"], htu);
    assert_eq!(proof.claims["ath"], access_token_hash(TOKEN));
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert!(proof.claims["iat"].as_u64().unwrap().abs_diff(now) <= 5);
    if let Some(nonce) = nonce {
        assert_eq!(proof.claims["nonce"], nonce);
    }
    proof
}

#[tokio::test]
async fn a_dpop_bound_token_goes_with_the_dpop_scheme_and_a_proof_for_the_call() {
    for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
        let ca = TestCa::new();
        let api = TestHttpsServer::start(&ca).await;
        api.set_fallback(CannedResponse::json(200, r#"{"ok":true}"#));
        let key = DpopKey::generate(algorithm).unwrap();
        let token = dpop_token(&key);
        let request = ApiRequest::post(api.url("/finance/transactions")).query("dry", "yes").json(json!({"amount": 100}));
        let response = client(&ca).call_api(&token, request).await.unwrap();
        assert_eq!(response.status(), 200);
        client(&ca).call_api(&token, ApiRequest::new(Method::DELETE, api.url("/finance/transactions/7"))).await.unwrap();

        let sent = api.requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].target, "/finance/transactions?dry=yes");
        let first = checked_proof(&sent[0], &key, "POST", &api.url("/finance/transactions"), None);
        let second = checked_proof(&sent[1], &key, "DELETE", &api.url("/finance/transactions/7"), None);
        assert_ne!(first.claims["jti"], second.claims["jti"], "a fresh proof per request");
    }
}

#[tokio::test]
async fn a_401_use_dpop_nonce_is_retried_once_with_the_nonce_which_later_calls_reuse() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    api.push(
        CannedResponse::json(401, "{}")
            .with_header(
                "WWW-Authenticate",
                r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
            )
            .with_header("DPoP-Nonce", "rs-nonce-1"),
    );
    api.set_fallback(CannedResponse::json(200, "{}"));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = dpop_token(&key);
    let client = client(&ca);
    // POST is not retried on transient failures, but the nonce retry is not one.
    let response = client.call_api(&token, ApiRequest::post(api.url("/pay")).json(json!({"n": 1}))).await.unwrap();
    assert_eq!(response.status(), 200);
    let sent = api.requests();
    assert_eq!(sent.len(), 2, "exactly the challenge and the retry");
    let first = checked_proof(&sent[0], &key, "POST", &api.url("/pay"), None);
    let second = checked_proof(&sent[1], &key, "POST", &api.url("/pay"), Some("rs-nonce-1"));
    assert_ne!(first.claims["jti"], second.claims["jti"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&sent[1].body).unwrap(), json!({"n": 1}), "the body again");

    // The origin's nonce goes into the next call's first proof.
    client.call_api(&token, ApiRequest::get(api.url("/report"))).await.unwrap();
    checked_proof(&api.requests()[2], &key, "GET", &api.url("/report"), Some("rs-nonce-1"));
}

#[tokio::test]
async fn a_second_nonce_challenge_is_the_answer_and_other_401s_are_not_retried() {
    let ca = TestCa::new();
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let api = TestHttpsServer::start(&ca).await;
    let challenge = |nonce: &str| {
        CannedResponse::json(401, "{}").with_header("WWW-Authenticate", r#"DPoP error="use_dpop_nonce""#).with_header("DPoP-Nonce", nonce)
    };
    api.push(challenge("n-1"));
    api.push(challenge("n-2"));
    api.set_fallback(CannedResponse::json(200, "{}"));
    let response = client(&ca).call_api(&dpop_token(&key), ApiRequest::get(api.url("/r"))).await.unwrap();
    assert_eq!((response.status(), api.requests().len()), (401, 2), "one nonce retry per call");

    // A 401 for another reason, or a nonce challenge without a nonce, is the answer.
    for refusal in [
        CannedResponse::json(401, "{}").with_header("WWW-Authenticate", r#"DPoP error="invalid_token""#).with_header("DPoP-Nonce", "n-3"),
        CannedResponse::json(401, "{}").with_header("WWW-Authenticate", r#"DPoP error="use_dpop_nonce""#),
    ] {
        let api = TestHttpsServer::start(&ca).await;
        api.push(refusal);
        api.set_fallback(CannedResponse::json(200, "{}"));
        let response = client(&ca).call_api(&dpop_token(&key), ApiRequest::get(api.url("/r"))).await.unwrap();
        assert_eq!((response.status(), api.requests().len()), (401, 1));
    }

    // A bearer token never retries for a nonce.
    let api = TestHttpsServer::start(&ca).await;
    api.push(challenge("n-4"));
    let response = client(&ca).call_api(&token(false), ApiRequest::get(api.url("/r"))).await.unwrap();
    assert_eq!((response.status(), api.requests().len()), (401, 1));
    assert_eq!(api.requests()[0].header("authorization"), Some("Bearer access-token-value"));
}

#[tokio::test]
async fn each_retry_and_redirect_hop_gets_its_own_proof_and_no_proof_crosses_origins() {
    let ca = TestCa::new();
    let api = TestHttpsServer::start(&ca).await;
    let other = TestHttpsServer::start(&ca).await;
    other.set_fallback(CannedResponse::json(200, "{}"));
    api.push(CannedResponse::json(503, "{}"));
    api.push(CannedResponse::text(302, "").with_header("Location", "/moved?page=2"));
    api.push(CannedResponse::text(307, "").with_header("Location", &other.url("/landing")));
    let key = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
    let response = client(&ca).call_api(&dpop_token(&key), ApiRequest::get(api.url("/start"))).await.unwrap();
    assert_eq!(response.status(), 200);

    let sent = api.requests();
    assert_eq!(sent.len(), 3, "the 503, the retry, the same-origin hop");
    let proofs = [
        checked_proof(&sent[0], &key, "GET", &api.url("/start"), None),
        checked_proof(&sent[1], &key, "GET", &api.url("/start"), None),
        checked_proof(&sent[2], &key, "GET", &api.url("/moved"), None),
    ];
    assert_ne!(proofs[0].claims["jti"], proofs[1].claims["jti"]);
    assert_ne!(proofs[1].claims["jti"], proofs[2].claims["jti"]);
    let crossed = &other.requests()[0];
    assert_eq!((crossed.header("authorization"), crossed.header("dpop")), (None, None), "neither token nor proof to another origin");
}

#[tokio::test]
async fn the_caller_cannot_set_the_dpop_header() {
    let ca = TestCa::new();
    let err = client(&ca).call_api(&token(false), ApiRequest::get("https://api.example.com/").header("dpop", "x")).await.unwrap_err();
    assert!(matches!(err, ApiError::InvalidRequest { .. }), "{err}");
}

#[test]
fn only_a_dpop_challenge_with_use_dpop_nonce_asks_for_a_nonce() {
    let headers = |values: &[&str]| {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
        }
        map
    };
    assert!(asks_for_dpop_nonce(&headers(&[
        r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#
    ])));
    assert!(asks_for_dpop_nonce(&headers(&[r#"Bearer realm="api", DPoP algs="ES256 PS256", error=use_dpop_nonce"#])));
    assert!(asks_for_dpop_nonce(&headers(&[r#"Bearer realm="api""#, r#"dpop error="use_dpop_nonce""#])));
    assert!(!asks_for_dpop_nonce(&headers(&[r#"Bearer error="use_dpop_nonce""#])));
    assert!(!asks_for_dpop_nonce(&headers(&[
        r#"DPoP error="invalid_token", error_description="use_dpop_nonce, DPoP error=use_dpop_nonce""#
    ])));
    assert!(!asks_for_dpop_nonce(&HeaderMap::new()));
}
