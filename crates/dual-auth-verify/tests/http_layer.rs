//! The tower layer and the axum extractor: a verified request reaches the handler with its
//! `DualSubject`; every other is answered 400/401/403/503 with the RFC 6750 challenge,
//! a fixed description, and nothing of the token.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::Issuer;
use dual_auth_verify::{DualAuthLayer, DualSubject};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower_service::Service;

async fn whoami(subject: DualSubject) -> axum::Json<Value> {
    axum::Json(json!({"agent": subject.agent.id(), "human": subject.human.sub(), "chain": subject.chain.len()}))
}

fn app(issuer: &Issuer, scopes: &[&str]) -> Router {
    let verifier = issuer.verifier(issuer.policy().require_scopes(scopes.iter().copied()));
    Router::new().route("/whoami", get(whoami)).layer(DualAuthLayer::new(verifier).realm("finance"))
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

async fn call(app: &mut Router, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get("/whoami");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.call(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer { status, challenge, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

#[tokio::test]
async fn a_verified_request_reaches_the_handler_with_its_dual_subject() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer, &["finance.read"]);
    let bearer = format!("Bearer {}", issuer.token());
    let answer = call(&mut app, &[("authorization", &bearer)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(serde_json::from_str::<Value>(&answer.body).unwrap(), json!({"agent": "agent-007", "human": "user_12345", "chain": 0}));
    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {}", issuer.token());
    assert_eq!(call(&mut app, &[("authorization", &lower)]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refusals_carry_the_rfc6750_challenge_and_never_the_token() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer, &["finance.read"]);

    let answer = call(&mut app, &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some(r#"Bearer realm="finance""#), "no error code when no token came (RFC 6750 §3.1)");

    let answer = call(&mut app, &[("authorization", "Basic YWdlbnQ6c2VjcmV0")]).await;
    assert_eq!((answer.status, answer.challenge.as_deref()), (StatusCode::UNAUTHORIZED, Some(r#"Bearer realm="finance""#)));

    let expired = issuer.token_with(|c| {
        c["exp"] = json!(issuer.now() - 60);
        c["iat"] = json!(issuer.now() - 600);
        c["act"]["email"] = json!("secret-marker@corp.example.com");
    });
    let answer = call(&mut app, &[("authorization", &format!("Bearer {expired}"))]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(r#"Bearer realm="finance", error="invalid_token", error_description="The token expired""#)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&answer.body).unwrap(),
        json!({"error": "invalid_token", "error_description": "The token expired"})
    );
    for part in expired.split('.') {
        assert!(!answer.body.contains(part) && !answer.challenge.as_deref().unwrap().contains(part));
    }
    assert!(!answer.body.contains("secret-marker"));

    let wrong_issuer = issuer.token_with(|c| c["iss"] = json!("https://evil.example/\"injected"));
    let answer = call(&mut app, &[("authorization", &format!("Bearer {wrong_issuer}"))]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(!answer.body.contains("evil.example") && !answer.challenge.unwrap().contains("evil"), "claim values are not echoed");

    let mut scoped = app_with_scope(&issuer);
    let answer = call(&mut scoped, &[("authorization", &format!("Bearer {}", issuer.token()))]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(
            r#"Bearer realm="finance", error="insufficient_scope", error_description="The token lacks a required scope", scope="finance.write""#
        )
    );

    let token = issuer.token();
    let answer = call(&mut app, &[("authorization", &format!("Bearer {token}")), ("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.challenge.unwrap().contains(r#"error="invalid_request""#));
    let answer = call(&mut app, &[("authorization", "Bearer")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

fn app_with_scope(issuer: &Issuer) -> Router {
    app(issuer, &["finance.read", "finance.write"])
}

#[tokio::test]
async fn keys_unavailable_is_503_with_retry_after_and_the_extractor_needs_the_layer() {
    let issuer = Issuer::start().await;
    issuer.set(|p| p.up = false);
    let mut app = app(&issuer, &[]);
    let request = Request::get("/whoami").header("authorization", format!("Bearer {}", issuer.token())).body(Body::empty()).unwrap();
    let response = app.call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "30");
    assert!(response.headers().get("www-authenticate").is_none());

    let mut bare: Router = Router::new().route("/whoami", get(whoami));
    let answer = call(&mut bare, &[("authorization", &format!("Bearer {}", issuer.token()))]).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "a route without the layer is a wiring mistake, not an anonymous call");
}
