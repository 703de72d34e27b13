//! The guide's in-session web app: the agent runs in the app's process, so the human's
//! identity (act) is passed in memory. `GET /dashboard` takes the logged-in user's session,
//! gets a dual-subject token for `AGENT_CLIENT_ID` acting for them, calls the API at
//! `API_URL`, and shows what the API answered.
//!
//! The session comes from your login layer (an OIDC login, a session store). Here a
//! stand-in reads it from `X-Demo-User-Email`, `X-Demo-User-Name` and `X-Demo-User-Id`
//! headers: replace [`session_of`] with your own.
//!
//! Configuration: the vendor's settings (see docs/configuration.md), `API_URL`,
//! `WEBAPP_TLS_CERT`, `WEBAPP_TLS_KEY`, `WEBAPP_LISTEN` (127.0.0.1:8444).
//!
//! ```sh
//! cargo run -p dual-auth-examples --bin in_session_app
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use dual_auth::ErrorChain;
use dual_auth::prelude::*;
use dual_auth_examples::{AgentSetup, init_logging, listen_from_env, tls_from_env};
use serde_json::{Value, json};

struct App {
    setup: AgentSetup,
    sender: HybridSender,
    tokens: InSessionTokenRequest,
}

/// The logged-in user: a stand-in for your session layer.
fn session_of(headers: &HeaderMap) -> Option<UserSession> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut session = UserSession::new(header("x-demo-user-email")?);
    session.user_name = header("x-demo-user-name");
    session.user_id = header("x-demo-user-id");
    Some(session)
}

async fn dashboard(State(app): State<Arc<App>>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let Some(session) = session_of(&headers) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "not logged in"})));
    };
    let act = match app.sender.extract_act_from_session(&session) {
        Ok(act) => app.sender.prepare_in_session_act(act),
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": ErrorChain(&e).to_string()}))),
    };
    let token = match app.tokens.request_token(&app.setup.agent_id, &act, app.setup.scopes.iter().cloned()).await {
        Ok(token) => token,
        Err(e) => return (StatusCode::BAD_GATEWAY, Json(json!({"error": ErrorChain(&e).to_string()}))),
    };
    let url = format!("{}/finance/report/Q4-2025", app.setup.api_url.trim_end_matches('/'));
    match app.setup.api.call_api(&token, ApiRequest::get(url)).await {
        Ok(response) => {
            let api: Value = response.json().unwrap_or_else(|_| Value::String(response.text()));
            (StatusCode::OK, Json(json!({"user": act.log_id().to_string(), "api_status": response.status(), "api": api})))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": ErrorChain(&e).to_string()}))),
    }
}

#[tokio::main]
async fn main() {
    init_logging();
    if let Err(message) = run().await {
        eprintln!("in_session_app: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let setup = AgentSetup::load().await?;
    let tokens = InSessionTokenRequest::new(Arc::clone(&setup.adapter));
    let app = Arc::new(App { setup, sender: HybridSender::in_session(), tokens });
    let router = Router::new().route("/dashboard", get(dashboard)).with_state(app);
    let tls = tls_from_env("WEBAPP").await?;
    let addr = listen_from_env("WEBAPP", "127.0.0.1:8444")?;
    eprintln!("in_session_app listening on https://{addr}");
    axum_server::bind_rustls(addr, tls).serve(router.into_make_service()).await.map_err(|e| ErrorChain(&e).to_string())
}
