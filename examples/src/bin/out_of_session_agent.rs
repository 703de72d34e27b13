//! The remote agent of the guide's out-of-session flow (`test_out_of_session.py`'s agent
//! side and its Flask `/invoke` service), in Rust.
//!
//! `POST /invoke` with `{"act_jwt": "..."}`: the act JWT is verified (signature with
//! `APP_PUBLIC_KEY_PATH`, audience `AGENT_ENDPOINT`, expiry, lifetime, issuer, replay), a
//! dual-subject token is requested for `AGENT_CLIENT_ID` acting for that human, and the
//! API at `API_URL` is called with it. Answers 400 when `act_jwt` is missing, 401 when it
//! is refused, 502 when the identity provider or the API fails, 200 with what the API said.
//! `GET /health` (alive) and `GET /ready` (configured) for the orchestrator.
//!
//! Configuration: the vendor's settings (`DUAL_AUTH_VENDOR`, `KEYCLOAK_TOKEN_URL`, ... or a
//! secret store, see docs/configuration.md), `APP_PUBLIC_KEY_PATH`, `AGENT_ENDPOINT`,
//! `API_URL`, `AGENT_TLS_CERT`, `AGENT_TLS_KEY`, `AGENT_LISTEN` (127.0.0.1:8443). With
//! several replicas, `DUAL_AUTH_REDIS_URL` and `DUAL_AUTH_REDIS_CACHE_KEY`: act JWTs are
//! then accepted once across all replicas and tokens are shared (see `deploy/`).
//!
//! ```sh
//! cargo run -p dual-auth-examples --bin out_of_session_agent
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use dual_auth::ErrorChain;
use dual_auth::prelude::*;
use dual_auth_examples::{AgentSetup, init_logging, listen_from_env, required_env, tls_from_env};
use serde_json::{Value, json};

struct Agent {
    setup: AgentSetup,
    tokens: OutOfSessionTokenRequest,
}

async fn invoke(State(agent): State<Arc<Agent>>, body: Option<Json<Value>>) -> (StatusCode, Json<Value>) {
    let Some(act_jwt) = body.as_ref().and_then(|b| b.get("act_jwt")).and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Missing act_jwt"})));
    };
    let (act, token) = match agent.tokens.verify_and_request_token(act_jwt, &agent.setup.agent_id, agent.setup.scopes.iter().cloned()).await
    {
        Ok(pair) => pair,
        Err(e) if e.is_act_jwt_rejected() => {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": format!("JWT verification failed: {}", ErrorChain(&e))})));
        }
        // The replay store, not the JWT, failed: the caller should back off and retry.
        Err(e) if e.is_temporary() => return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": ErrorChain(&e).to_string()}))),
        Err(e) => return (StatusCode::BAD_GATEWAY, Json(json!({"error": ErrorChain(&e).to_string()}))),
    };
    let url = format!("{}/finance/report", agent.setup.api_url.trim_end_matches('/'));
    match agent.setup.api.call_api(&token, ApiRequest::get(url)).await {
        Ok(response) => {
            let api: Value = response.json().unwrap_or_else(|_| Value::String(response.text()));
            (
                StatusCode::OK,
                Json(json!({"status": "success", "human_id": act.log_id().to_string(), "api_status": response.status(), "api": api})),
            )
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": ErrorChain(&e).to_string()}))),
    }
}

#[tokio::main]
async fn main() {
    init_logging();
    if let Err(message) = run().await {
        eprintln!("out_of_session_agent: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let setup = AgentSetup::load().await?;
    let public_key = VerifyingKey::from_pem_file(required_env("APP_PUBLIC_KEY_PATH")?)
        .map_err(|e| format!("APP_PUBLIC_KEY_PATH: {}", ErrorChain(&e)))?;
    let mut verifier = ActJwtVerifier::builder(public_key, required_env("AGENT_ENDPOINT")?);
    if let Some(guard) = &setup.replay_guard {
        verifier = verifier.replay_guard(Arc::clone(guard));
    }
    let verifier = verifier.build().map_err(|e| ErrorChain(&e).to_string())?;
    let tokens = OutOfSessionTokenRequest::new(Arc::clone(&setup.adapter), verifier);
    let agent = Arc::new(Agent { setup, tokens });
    let app = Router::new()
        .route("/invoke", post(invoke))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        // Configuration loaded and keys parsed at start: from here on the agent can serve.
        .route("/ready", get(|| async { Json(json!({"status": "ready"})) }))
        .with_state(agent);
    let tls = tls_from_env("AGENT").await?;
    let addr = listen_from_env("AGENT", "127.0.0.1:8443")?;
    eprintln!("out_of_session_agent listening on https://{addr}");
    axum_server::bind_rustls(addr, tls).serve(app.into_make_service()).await.map_err(|e| ErrorChain(&e).to_string())
}
