//! The HTTP toolkit: URLs checked once, bodies read whole or refused, CA bundles checked
//! when loaded, and the one retry policy's decisions.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dual_auth_core::http::{BodyError, CA_BUNDLE_SETTING, CaBundleError, HttpsUrl, HttpsUrlError, ToHttpsUrl, read_body, read_ca_bundle};
use dual_auth_core::token_endpoint::{RetryDecision, RetryPolicy};
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn only_https_urls_with_a_host() {
    assert!(HttpsUrl::parse("https://idp.example.com/token").is_ok());
    assert!(HttpsUrl::parse("http://idp.example.com/token").unwrap_err().to_string().contains("must use https://"));
    assert!(HttpsUrl::parse("https://u:p@idp.example.com/").unwrap_err().to_string().contains("credentials"));
    assert!(HttpsUrl::parse("idp.example.com").is_err());
}

#[test]
fn each_refusal_says_what_is_wrong() {
    assert_eq!(
        HttpsUrl::parse("http://idp.example.com/token").unwrap_err(),
        HttpsUrlError::NotHttps { scheme: "http".into(), loopback_http_allowed: false }
    );
    assert_eq!(HttpsUrl::parse("http://idp.example.com/").unwrap_err().to_string(), "must use https://, got \"http://\"");
    assert_eq!(HttpsUrl::parse("https://user@idp.example.com/").unwrap_err(), HttpsUrlError::Credentials);
    assert_eq!(HttpsUrl::parse("https://:pw@idp.example.com/").unwrap_err(), HttpsUrlError::Credentials);
    assert!(matches!(HttpsUrl::parse("file:///etc/passwd").unwrap_err(), HttpsUrlError::NotHttps { .. }));
    let err = HttpsUrl::parse("idp.example.com/token").unwrap_err();
    assert!(matches!(&err, HttpsUrlError::NotAbsolute { .. }), "{err:?}");
    assert!(err.to_string().starts_with("\"idp.example.com/token\" is not an absolute URL ("), "{err}");
    // A value that does not parse never shows what precedes an `@`.
    let err = HttpsUrl::parse("user:s3cret@idp example.com").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    // Nor its query or fragment, which may carry a token or a code.
    let err = HttpsUrl::parse("idp example.com/cb?code=c0de&token=t0ken#frag=f").unwrap_err();
    assert!(err.to_string().starts_with("\"idp example.com/cb\" is not an absolute URL ("), "{err}");
    let err = HttpsUrl::parse("idp example.com/cb?user=a@b").unwrap_err();
    assert!(err.to_string().starts_with("\"idp example.com/cb\""), "{err}");
}

#[test]
fn query_pairs_are_appended_form_encoded_and_none_changes_nothing() {
    let url = HttpsUrl::parse("https://api.example.com/report?x=1").unwrap();
    assert_eq!(
        url.clone().with_query_pairs([("format", "json"), ("q", "a b&c")]).as_str(),
        "https://api.example.com/report?x=1&format=json&q=a+b%26c"
    );
    let bare = HttpsUrl::parse("https://api.example.com/report").unwrap();
    assert_eq!(bare.clone().with_query_pairs([]).as_str(), "https://api.example.com/report", "no stray `?`");
}

#[test]
fn white_space_is_ignored_and_the_url_is_carried_as_parsed() {
    let url = HttpsUrl::parse("  https://IDP.example.com:443/realms/corp/token?x=1 \n").unwrap();
    assert_eq!(url.as_str(), "https://idp.example.com/realms/corp/token?x=1");
    assert_eq!(url.to_string(), url.as_str());
    assert_eq!(url.for_logs(), "https://idp.example.com/realms/corp/token");
    assert_eq!(url.host_str(), Some("idp.example.com"), "dereferences to url::Url");
    assert!(!url.is_loopback_http());
    assert_eq!("https://idp.example.com/realms/corp/token?x=1".parse::<HttpsUrl>().unwrap(), url);
    assert_eq!(String::from(url.clone()), url.as_str());
    assert_eq!(url::Url::from(url.clone()).as_str(), url.as_str());
}

#[test]
fn every_conversion_checks_the_same_rules() {
    assert!("https://idp.example.com/".to_https_url().is_ok());
    assert!(String::from("https://idp.example.com/").to_https_url().is_ok());
    assert!(url::Url::parse("https://idp.example.com/").unwrap().to_https_url().is_ok());
    for bad in ["http://idp.example.com/", "https://u:p@idp.example.com/"] {
        assert!(bad.to_https_url().is_err(), "{bad}");
        assert!(bad.to_owned().to_https_url().is_err(), "{bad}");
        assert!(url::Url::parse(bad).unwrap().to_https_url().is_err(), "{bad}");
        assert!(HttpsUrl::try_from(url::Url::parse(bad).unwrap()).is_err(), "{bad}");
        assert!(HttpsUrl::try_from(bad).is_err(), "{bad}");
    }
    let checked = HttpsUrl::parse("https://idp.example.com/").unwrap();
    assert_eq!((&checked).to_https_url().unwrap(), checked);
}

#[test]
fn plain_http_only_to_loopback_and_only_when_asked() {
    for loopback in ["http://127.0.0.1:8085", "http://localhost:8085/v1", "http://[::1]:8085", "http://LOCALHOST/"] {
        assert!(HttpsUrl::parse(loopback).is_err(), "{loopback}: parse never allows http");
        let url = HttpsUrl::parse_allowing_loopback_http(loopback).unwrap();
        assert!(url.is_loopback_http(), "{loopback}");
    }
    let https = HttpsUrl::parse_allowing_loopback_http("https://secretmanager.googleapis.com").unwrap();
    assert!(!https.is_loopback_http());
    for remote in ["http://secretmanager.example.com", "http://127.0.0.2/", "http://10.0.0.1/", "http://localhost.example.com/"] {
        let err = HttpsUrl::parse_allowing_loopback_http(remote).unwrap_err();
        assert_eq!(err, HttpsUrlError::NotHttps { scheme: "http".into(), loopback_http_allowed: true }, "{remote}");
        assert!(err.to_string().contains("must use https://"), "{err}");
        assert!(err.to_string().contains("only on loopback"), "{err}");
    }
    assert_eq!(HttpsUrl::parse_allowing_loopback_http("http://u:p@127.0.0.1/").unwrap_err(), HttpsUrlError::Credentials);
    assert!(HttpsUrl::parse_allowing_loopback_http("ftp://127.0.0.1/").is_err());
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.unwrap()
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_never_cut() {
    let server = TestHttpsServer::start_plain().await;
    server.set_fallback(CannedResponse::text(200, &"x".repeat(1000)));
    assert_eq!(read_body(get(&server.url("/")).await, 1000).await.unwrap().len(), 1000);
    let err = read_body(get(&server.url("/")).await, 999).await.unwrap_err();
    assert!(matches!(err, BodyError::TooLarge { max: 999 }), "{err:?}");
    assert_eq!(err.to_string(), "the body is larger than 999 bytes");
}

/// A server that answers once with `body` and no `Content-Length` (read until the
/// connection closes), so the limit is found while reading.
async fn unannounced(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await.unwrap();
        stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await.unwrap();
        for chunk in body.chunks(100) {
            stream.write_all(chunk).await.unwrap();
        }
        stream.shutdown().await.unwrap();
    });
    format!("http://{address}/")
}

#[tokio::test]
async fn a_body_without_a_length_is_limited_while_read() {
    let url = unannounced(vec![b'y'; 5000]).await;
    let response = get(&url).await;
    assert_eq!(response.content_length(), None);
    assert!(matches!(read_body(response, 4999).await, Err(BodyError::TooLarge { max: 4999 })));
    let url = unannounced(vec![b'y'; 5000]).await;
    assert_eq!(read_body(get(&url).await, 5000).await.unwrap(), vec![b'y'; 5000]);
}

#[test]
fn a_ca_bundle_must_hold_a_certificate() {
    assert_eq!(CA_BUNDLE_SETTING, "DUAL_AUTH_CA_BUNDLE");
    let ca = TestCa::new();
    assert_eq!(read_ca_bundle(ca.ca_path()).unwrap(), ca.ca_pem().as_bytes());
    let two = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, format!("{}\n{}", ca.ca_pem(), two.ca_pem())).unwrap();
    assert!(read_ca_bundle(&bundle).is_ok());

    let missing = dir.path().join("missing.pem");
    let err = read_ca_bundle(&missing).unwrap_err();
    assert!(matches!(&err, CaBundleError::Unreadable { .. }), "{err:?}");
    assert_eq!(err.path(), missing);
    assert!(err.to_string().starts_with("cannot be read: "), "{err}");

    for (name, content) in [
        ("empty.pem", ""),
        ("text.pem", "not a certificate\n"),
        ("key.pem", "-----BEGIN PRIVATE KEY-----\nTUlJ\n-----END PRIVATE KEY-----\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = read_ca_bundle(&path).unwrap_err();
        assert!(matches!(&err, CaBundleError::NoCertificate { .. } | CaBundleError::NotPem { .. }), "{name}: {err:?}");
        assert_eq!(err.path(), path);
    }
}

/// A policy that retries at once (1 ms), so the tests do not wait.
fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        max_retry_after: Duration::from_secs(1),
    }
}

/// Runs `policy` over scripted decisions (one per call); returns the outcome and the
/// `(attempt, delay)` pairs seen before each retry.
async fn script(
    policy: RetryPolicy,
    decisions: Vec<RetryDecision<&'static str>>,
) -> (dual_auth_core::token_endpoint::RetryOutcome<&'static str>, Vec<(u32, Duration)>, Vec<u32>) {
    let decisions = Arc::new(Mutex::new(decisions.into_iter()));
    let numbers = Arc::new(Mutex::new(Vec::new()));
    let mut retries = Vec::new();
    let outcome = policy
        .run(
            |attempt| {
                numbers.lock().unwrap().push(attempt);
                let next = decisions.lock().unwrap().next().expect("no attempt beyond the script");
                async move { next }
            },
            |_, attempt, delay| retries.push((attempt, delay)),
        )
        .await;
    let numbers = numbers.lock().unwrap().clone();
    (outcome, retries, numbers)
}

#[tokio::test]
async fn done_ends_at_once() {
    let (run, retries, numbers) = script(quick(3), vec![RetryDecision::Done("ok")]).await;
    assert_eq!((run.outcome, run.attempts, run.gave_up), ("ok", 1, false));
    assert!(retries.is_empty());
    assert_eq!(numbers, [1]);
}

#[tokio::test]
async fn transient_failures_are_retried_until_done() {
    let retry = |outcome| RetryDecision::Retry { outcome, retry_after: None };
    let (run, retries, numbers) = script(quick(3), vec![retry("503"), retry("503"), RetryDecision::Done("ok")]).await;
    assert_eq!((run.outcome, run.attempts, run.gave_up), ("ok", 3, false));
    assert_eq!(retries.iter().map(|(attempt, _)| *attempt).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(numbers, [1, 2, 3]);
}

#[tokio::test]
async fn retries_stop_at_the_last_attempt_with_its_outcome() {
    let retry = |outcome| RetryDecision::Retry { outcome, retry_after: None };
    let (run, retries, _) = script(quick(2), vec![retry("first"), retry("second")]).await;
    assert_eq!((run.outcome, run.attempts, run.gave_up), ("second", 2, true));
    assert_eq!(retries.len(), 1);
    let (run, retries, _) = script(RetryPolicy::none(), vec![retry("only")]).await;
    assert_eq!((run.outcome, run.attempts, run.gave_up), ("only", 1, true));
    assert!(retries.is_empty());
    let zero = RetryPolicy { max_attempts: 0, ..quick(1) };
    let (run, _, _) = script(zero, vec![retry("once")]).await;
    assert_eq!(run.attempts, 1, "at least one attempt");
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_limit() {
    let asked = Duration::from_millis(20);
    let (run, retries, _) =
        script(quick(3), vec![RetryDecision::Retry { outcome: "429", retry_after: Some(asked) }, RetryDecision::Done("ok")]).await;
    assert_eq!((run.outcome, run.attempts), ("ok", 2));
    assert_eq!(retries, [(1, asked)]);
    let (run, retries, _) =
        script(quick(3), vec![RetryDecision::Retry { outcome: "429", retry_after: Some(Duration::from_secs(2)) }]).await;
    assert_eq!((run.outcome, run.attempts, run.gave_up), ("429", 1, true), "a longer Retry-After gets no retry");
    assert!(retries.is_empty());
}

#[tokio::test]
async fn again_is_not_counted_as_an_attempt() {
    let (run, retries, numbers) = script(
        quick(2),
        vec![
            RetryDecision::Again,
            RetryDecision::Retry { outcome: "503", retry_after: None },
            RetryDecision::Again,
            RetryDecision::Done("ok"),
        ],
    )
    .await;
    assert_eq!((run.outcome, run.attempts, run.gave_up), ("ok", 2, false));
    assert_eq!(retries.len(), 1);
    assert_eq!(numbers, [1, 1, 2, 2]);
}
