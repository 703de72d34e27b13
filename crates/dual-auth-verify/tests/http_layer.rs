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
use dual_auth_verify::{DualAuthLayer, DualSubject, IssuerPolicy};
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

mod dpop {
    use super::*;
    use dual_auth_core::secrecy::ExposeSecret;
    use dual_auth_core::{DpopKey, SigningAlgorithm};
    use dual_auth_verify::Verifier;

    const ALGS: &str = r#"algs="ES256 EdDSA RS256 PS256""#;

    async fn whoami_dpop(subject: DualSubject) -> String {
        subject.dpop_jkt.unwrap_or_else(|| "bearer".into())
    }

    fn dpop_app(verifier: Verifier) -> Router {
        Router::new().route("/whoami", get(whoami_dpop)).layer(DualAuthLayer::new(verifier).realm("finance"))
    }

    fn verifier(issuer: &Issuer, policy: dual_auth_verify::IssuerPolicy) -> Verifier {
        Verifier::builder()
            .issuer(policy)
            .http(issuer.http())
            .clock(std::sync::Arc::new(issuer.clock.clone()))
            .public_origin("https://api.example.com")
            .build()
            .unwrap()
    }

    fn proof(issuer: &Issuer, key: &DpopKey, method: &str, token: &str) -> String {
        let url = url::Url::parse("https://api.example.com/whoami").unwrap();
        key.proof(method, &url, Some(token), None, dual_auth_core::Clock::now(&issuer.clock)).unwrap().expose_secret().to_owned()
    }

    async fn challenges(app: &mut Router, headers: &[(&str, &str)]) -> (StatusCode, Vec<String>, String) {
        let mut request = Request::get("/whoami").header("host", "api.example.com");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app.call(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let all = response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, all, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn dpop_requests_pass_and_refusals_carry_the_rfc9449_challenge() {
        let issuer = Issuer::start().await;
        let mut app = dpop_app(verifier(&issuer, issuer.policy()));
        let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
        let token = issuer.token_with(|c| c["cnf"] = json!({"jkt": key.thumbprint()}));
        let scheme = format!("DPoP {token}");

        let good = proof(&issuer, &key, "GET", &token);
        let (status, challenge, body) = challenges(&mut app, &[("authorization", &scheme), ("dpop", &good)]).await;
        assert_eq!((status, challenge.len(), body.as_str()), (StatusCode::OK, 0, key.thumbprint()));

        // A proof for another method: invalid_dpop_proof.
        let post = proof(&issuer, &key, "POST", &token);
        let (status, challenge, body) = challenges(&mut app, &[("authorization", &scheme), ("dpop", &post)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            [format!(
                r#"DPoP realm="finance", error="invalid_dpop_proof", error_description="The DPoP proof is for another HTTP method", {ALGS}"#
            )]
        );
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"error": "invalid_dpop_proof", "error_description": "The DPoP proof is for another HTTP method"})
        );
        // No proof at all.
        let (status, challenge, _) = challenges(&mut app, &[("authorization", &scheme)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            [format!(
                r#"DPoP realm="finance", error="invalid_dpop_proof", error_description="A DPoP proof is required with a DPoP token", {ALGS}"#
            )]
        );
        // A replayed proof.
        let (status, challenge, _) = challenges(&mut app, &[("authorization", &scheme), ("dpop", &good)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            [format!(r#"DPoP realm="finance", error="invalid_dpop_proof", error_description="The DPoP proof was already used", {ALGS}"#)]
        );
        // The bound token as Bearer: invalid_token, in a DPoP challenge.
        let (status, challenge, _) = challenges(&mut app, &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            [format!(
                r#"DPoP realm="finance", error="invalid_token", error_description="The token is DPoP-bound: send it with the DPoP scheme and a proof", {ALGS}"#
            )]
        );
        // The token replayed with another key.
        let thief = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
        let stolen = proof(&issuer, &thief, "GET", &token);
        let (_, challenge, _) = challenges(&mut app, &[("authorization", &scheme), ("dpop", &stolen)]).await;
        assert_eq!(
            challenge,
            [format!(r#"DPoP realm="finance", error="invalid_token", error_description="Invalid DPoP key binding", {ALGS}"#)]
        );
        // A token failure under the DPoP scheme answers in the DPoP scheme.
        let expired = issuer.token_with(|c| {
            c["cnf"] = json!({"jkt": key.thumbprint()});
            c["exp"] = json!(issuer.now() - 60);
            c["iat"] = json!(issuer.now() - 600);
        });
        let fresh = proof(&issuer, &key, "GET", &expired);
        let (status, challenge, _) = challenges(&mut app, &[("authorization", &format!("DPoP {expired}")), ("dpop", &fresh)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge, [format!(r#"DPoP realm="finance", error="invalid_token", error_description="The token expired", {ALGS}"#)]);
        // Bearer failures keep the Bearer challenge, and a missing token is offered Bearer only.
        let (_, challenge, _) = challenges(&mut app, &[("authorization", "Bearer not-a-jwt")]).await;
        assert_eq!(challenge, [r#"Bearer realm="finance", error="invalid_token", error_description="The token is not a well-formed JWT""#]);
        let (_, challenge, _) = challenges(&mut app, &[]).await;
        assert_eq!(challenge, [r#"Bearer realm="finance""#]);
    }

    #[tokio::test]
    async fn where_dpop_is_required_bearer_is_refused_and_a_missing_token_is_offered_dpop() {
        let issuer = Issuer::start().await;
        let mut app = dpop_app(verifier(&issuer, issuer.policy().require_dpop()));
        let (status, challenge, _) = challenges(&mut app, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge, [format!(r#"DPoP realm="finance", {ALGS}"#)]);
        let (status, challenge, _) = challenges(&mut app, &[("authorization", &format!("Bearer {}", issuer.token()))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            [format!(
                r#"DPoP realm="finance", error="invalid_token", error_description="The token must be sent with the DPoP scheme and a proof", {ALGS}"#
            )]
        );
        let key = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
        let token = issuer.token_with(|c| c["cnf"] = json!({"jkt": key.thumbprint()}));
        let good = proof(&issuer, &key, "GET", &token);
        let (status, _, body) = challenges(&mut app, &[("authorization", &format!("DPoP {token}")), ("dpop", &good)]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, key.thumbprint()));

        // One issuer requiring DPoP, another not: a missing token is offered both.
        let other = IssuerPolicy::new("https://other.example.com", common::API)
            .static_keys([dual_auth_core::VerifyingKey::from_pem(issuer.key.public_pem()).unwrap()]);
        let mixed = Verifier::builder().issuer(issuer.policy().require_dpop()).issuer(other).http(issuer.http()).build().unwrap();
        let (_, challenge, _) = challenges(&mut dpop_app(mixed), &[]).await;
        assert_eq!(challenge, [format!(r#"DPoP realm="finance", {ALGS}"#), r#"Bearer realm="finance""#.to_owned()]);
    }
}
