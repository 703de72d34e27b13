//! The MCP layer: the RFC 9728 document at the well-known path without a token; refusals
//! whose challenges carry `resource_metadata`; the audience pinned to the canonical URI;
//! 403 `insufficient_scope` for a tool whose scope the token lacks; the verified subject and
//! the presented token handed to the server.

#![cfg(feature = "mcp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::routing::post;
use axum::{Extension, Router};
use common::{API, Issuer};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_verify::mcp::{MAX_MCP_REQUEST_BYTES, McpAuthLayer, PresentedToken, ProtectedResource};
use dual_auth_verify::{DualSubject, IssuerPolicy, VerifyError};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower_service::Service;

/// `API` (`https://api.example.com/finance`) is the MCP server's canonical URI here.
const METADATA_URL: &str = "https://api.example.com/.well-known/oauth-protected-resource/finance";

async fn mcp(
    Extension(subject): Extension<DualSubject>,
    Extension(token): Extension<PresentedToken>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let presented = token.subject_token().token().expose_secret().to_owned();
    let seen = axum::Json(json!({"agent": subject.agent.id(), "human": subject.human.sub(), "presented": presented, "body": body}));
    // Like rmcp, open a session on `initialize`.
    if body.contains(r#""method":"initialize""#) { ([("mcp-session-id", "session-1")], seen).into_response() } else { seen.into_response() }
}

fn resource() -> ProtectedResource {
    ProtectedResource::new(API).unwrap().realm("mcp").require_scopes(["finance.read"]).tool_scopes("approve_payment", ["finance.write"])
}

fn app(issuer: &Issuer) -> Router {
    let layer = McpAuthLayer::new(issuer.verifier(issuer.policy()), resource()).unwrap();
    Router::new().route("/finance", post(mcp)).layer(layer)
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    cache_control: Option<String>,
    body: String,
}

async fn send(app: &mut Router, request: Request<Body>) -> Answer {
    let response = app.call(request).await.unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (status, challenge, cache_control) = (response.status(), header("www-authenticate"), header("cache-control"));
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer { status, challenge, cache_control, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

fn call_tool(name: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}}).to_string()
}

async fn post_mcp(app: &mut Router, token: Option<&str>, body: String) -> Answer {
    let mut request = Request::post("/finance").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(app, request.body(Body::from(body)).unwrap()).await
}

#[tokio::test]
async fn the_metadata_document_is_served_without_a_token() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer);
    let answer = send(&mut app, Request::get("/.well-known/oauth-protected-resource/finance").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.cache_control.as_deref(), Some("max-age=300"));
    let document: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        document,
        json!({
            "resource": API,
            "authorization_servers": [issuer.issuer()],
            "scopes_supported": ["finance.read", "finance.write"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"],
        })
    );
    // Only GET is the document; anything else at that path needs a token.
    let answer = send(&mut app, Request::post("/.well-known/oauth-protected-resource/finance").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_a_token_the_challenge_points_at_the_metadata_and_names_the_scopes() {
    let issuer = Issuer::start().await;
    let answer = post_mcp(&mut app(&issuer), None, call_tool("whoami")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(&*format!(r#"Bearer realm="mcp", scope="finance.read", resource_metadata="{METADATA_URL}""#))
    );
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let issuer = Issuer::start().await;
    let other = issuer.token_with(|c| c["aud"] = json!("https://api.example.com/other-mcp"));
    let answer = post_mcp(&mut app(&issuer), Some(&other), call_tool("whoami")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(&*format!(
            r#"Bearer realm="mcp", error="invalid_token", error_description="The token is not for this API", scope="finance.read", resource_metadata="{METADATA_URL}""#
        ))
    );
    assert!(!answer.body.contains(&other));
}

#[tokio::test]
async fn a_tool_whose_scope_the_token_lacks_asks_for_a_step_up() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer);
    let token = issuer.token();
    let answer = post_mcp(&mut app, Some(&token), call_tool("approve_payment")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(&*format!(
            r#"Bearer realm="mcp", error="insufficient_scope", error_description="The token lacks a required scope", scope="finance.read finance.write", resource_metadata="{METADATA_URL}""#
        ))
    );
    // The same token calls other tools; one with the scope calls this one.
    assert_eq!(post_mcp(&mut app, Some(&token), call_tool("whoami")).await.status, StatusCode::OK);
    let stepped_up = issuer.token_with(|c| c["scope"] = json!("finance.read finance.write"));
    assert_eq!(post_mcp(&mut app, Some(&stepped_up), call_tool("approve_payment")).await.status, StatusCode::OK);
    // Every call needs finance.read, whatever the tool.
    let write_only = issuer.token_with(|c| c["scope"] = json!("finance.write"));
    let answer = post_mcp(&mut app, Some(&write_only), call_tool("approve_payment")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.challenge.unwrap().contains(r#"scope="finance.read finance.write""#), "every scope the call needs");
}

#[tokio::test]
async fn the_server_gets_the_subject_the_presented_token_and_the_body_unchanged() {
    let issuer = Issuer::start().await;
    let token = issuer.token();
    let body = call_tool("whoami");
    let answer = post_mcp(&mut app(&issuer), Some(&token), body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let seen: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(seen, json!({"agent": "agent-007", "human": "user_12345", "presented": token, "body": body}));
    assert_eq!(format!("{:?}", dummy_presented(&issuer).await), "PresentedToken([redacted])");
}

/// A presented token as a tool receives it, to check its `Debug`.
async fn dummy_presented(issuer: &Issuer) -> PresentedToken {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let layer = McpAuthLayer::new(issuer.verifier(issuer.policy()), resource()).unwrap();
    let mut app = Router::new()
        .route(
            "/finance",
            post(move |Extension(token): Extension<PresentedToken>| async move {
                sender.send(token).unwrap();
            }),
        )
        .layer(layer);
    assert_eq!(post_mcp(&mut app, Some(&issuer.token()), call_tool("whoami")).await.status, StatusCode::OK);
    receiver.recv().await.unwrap()
}

#[tokio::test]
async fn a_body_too_large_to_read_the_tool_from_is_refused() {
    let issuer = Issuer::start().await;
    let answer = post_mcp(&mut app(&issuer), Some(&issuer.token()), "x".repeat(MAX_MCP_REQUEST_BYTES + 1)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(serde_json::from_str::<Value>(&answer.body).unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn every_issuer_must_take_the_canonical_uri_as_audience() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(IssuerPolicy::new(issuer.issuer(), "https://api.example.com/finance/").jwks_url(issuer.issuer()));
    let err = McpAuthLayer::new(verifier, resource()).unwrap_err();
    assert!(matches!(err, VerifyError::Configuration { setting: "IssuerPolicy::audience", .. }), "{err:?}");
    assert!(err.to_string().contains("must name its canonical URI https://api.example.com/finance as their audience"), "{err}");
}

#[tokio::test]
async fn what_the_layer_cannot_read_for_sure_is_refused() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer);
    let token = issuer.token();
    let answer = post_mcp(&mut app, Some(&token), "{not json".into()).await;
    assert_eq!(
        (answer.status, serde_json::from_str::<Value>(&answer.body).unwrap()["error_description"].as_str()),
        (StatusCode::BAD_REQUEST, Some("The request body is not a JSON-RPC message"))
    );
    let hidden = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": ["approve_payment"]}}]).to_string();
    assert_eq!(post_mcp(&mut app, Some(&token), hidden).await.status, StatusCode::BAD_REQUEST);
    let request = Request::post("/finance")
        .header("authorization", format!("Bearer {token}"))
        .header("content-encoding", "gzip")
        .body(Body::from(call_tool("approve_payment")))
        .unwrap();
    assert_eq!(send(&mut app, request).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_session_is_used_only_by_the_caller_who_opened_it() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer);
    let alice = issuer.token();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string();
    assert_eq!(post_mcp(&mut app, Some(&alice), initialize).await.status, StatusCode::OK);
    let in_session = |token: &str| {
        Request::post("/finance")
            .header("authorization", format!("Bearer {token}"))
            .header("mcp-session-id", "session-1")
            .body(Body::from(call_tool("whoami")))
            .unwrap()
    };
    assert_eq!(send(&mut app, in_session(&alice)).await.status, StatusCode::OK);
    // A stepped-up token of the same agent and human stays in the session.
    let stepped_up = issuer.token_with(|c| c["scope"] = json!("finance.read finance.write"));
    assert_eq!(send(&mut app, in_session(&stepped_up)).await.status, StatusCode::OK);
    // Another human through the same agent, or another agent, does not get in.
    let bob = issuer.token_with(|c| c["act"]["sub"] = json!("user_67890"));
    let answer = send(&mut app, in_session(&bob)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    let other_agent = issuer.token_with(|c| {
        c["sub"] = json!("agent-008");
        c["client_id"] = json!("agent-008");
    });
    assert_eq!(send(&mut app, in_session(&other_agent)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_resource_names_only_trusted_issuers_and_real_scopes() {
    let issuer = Issuer::start().await;
    let stranger = ProtectedResource::new(API).unwrap().authorization_server("https://other-idp.example.com/");
    let err = McpAuthLayer::new(issuer.verifier(issuer.policy()), stranger).unwrap_err();
    assert!(err.to_string().contains("\"https://other-idp.example.com/\" is not an issuer the verifier trusts"), "{err}");
    let spaced = ProtectedResource::new(API).unwrap().tool_scopes("t", ["finance write"]);
    let err = McpAuthLayer::new(issuer.verifier(issuer.policy()), spaced).unwrap_err();
    assert!(err.to_string().contains("\"finance write\" is not a scope"), "{err}");
}

#[tokio::test]
async fn where_dpop_is_required_the_dpop_challenge_points_at_the_metadata_too() {
    let issuer = Issuer::start().await;
    let layer = McpAuthLayer::new(issuer.verifier(issuer.policy().require_dpop()), resource()).unwrap();
    let mut app = Router::new().route("/finance", post(mcp)).layer(layer);
    let answer = post_mcp(&mut app, None, call_tool("whoami")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(&*format!(r#"DPoP realm="mcp", algs="ES256 EdDSA RS256 PS256", scope="finance.read", resource_metadata="{METADATA_URL}""#))
    );
    let document = send(&mut app, Request::get("/.well-known/oauth-protected-resource/finance").body(Body::empty()).unwrap()).await;
    assert_eq!(serde_json::from_str::<Value>(&document.body).unwrap()["dpop_bound_access_tokens_required"], true);
}
