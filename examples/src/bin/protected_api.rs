//! The API the agents call, protected by `dual-auth-verify`: every request must carry a
//! dual-subject token from the trusted issuer (and, for Entra ID, its act assertion);
//! handlers receive the verified agent and human. `GET /finance/report/{id}` answers with
//! both, as an API would record them in its audit log.
//!
//! Configuration: `PROTECTED_API_ISSUER` (the issuer, exactly as tokens name it),
//! `PROTECTED_API_AUDIENCE` (this API's identifier at the issuer), `PROTECTED_API_JWKS_URL`
//! (default: OIDC discovery), `PROTECTED_API_LAYOUT` (`dual-auth` or `rfc8693`),
//! `PROTECTED_API_SCOPES` (space-separated, required of every token), `DUAL_AUTH_CA_BUNDLE`
//! (to trust a private issuer), `PROTECTED_API_TLS_CERT`, `PROTECTED_API_TLS_KEY`,
//! `PROTECTED_API_LISTEN` (127.0.0.1:8445).
//!
//! ```sh
//! cargo run -p dual-auth-examples --bin protected_api
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use dual_auth::ErrorChain;
use dual_auth::http::{CA_BUNDLE_SETTING, read_ca_bundle};
use dual_auth::prelude::*;
use dual_auth::verify::{DualAuthLayer, DualSubject, IssuerPolicy, Layout, Verifier};
use dual_auth_examples::{init_logging, listen_from_env, required_env, tls_from_env};
use serde_json::{Value, json};

/// The handler sees only verified requests: both identities, ready to authorise and audit.
async fn report(Path(id): Path<String>, subject: DualSubject) -> Json<Value> {
    tracing::info!(event = "report_read", report = %id, agent = subject.agent.id(), human_id = %subject.human.log_id());
    Json(json!({
        "report": id,
        "agent": subject.agent.id(),
        "human": subject.human.sub(),
        "chain": subject.chain.iter().map(|actor| actor.id().to_owned()).collect::<Vec<_>>(),
    }))
}

#[tokio::main]
async fn main() {
    init_logging();
    if let Err(message) = run().await {
        eprintln!("protected_api: {message}");
        std::process::exit(1);
    }
}

fn verifier_from_env() -> Result<Verifier, String> {
    let mut policy = IssuerPolicy::new(required_env("PROTECTED_API_ISSUER")?, required_env("PROTECTED_API_AUDIENCE")?);
    if let Ok(url) = required_env("PROTECTED_API_JWKS_URL") {
        policy = policy.jwks_url(url);
    }
    if let Ok(layout) = required_env("PROTECTED_API_LAYOUT") {
        policy = policy.layout(layout.parse::<Layout>().map_err(|e| format!("PROTECTED_API_LAYOUT: {e}"))?);
    }
    if let Ok(scopes) = required_env("PROTECTED_API_SCOPES") {
        policy = policy.require_scopes(scopes.split_whitespace());
    }
    let mut http = HttpSettings::default();
    if let Ok(path) = required_env(CA_BUNDLE_SETTING) {
        http.extra_root_certificates_pem = Some(read_ca_bundle(&path).map_err(|e| format!("{CA_BUNDLE_SETTING} {path}: {e}"))?);
    }
    Verifier::builder().issuer(policy).http(http).build().map_err(|e| ErrorChain(&e).to_string())
}

async fn run() -> Result<(), String> {
    let verifier = verifier_from_env()?;
    let router = Router::new().route("/finance/report/{id}", get(report)).layer(DualAuthLayer::new(verifier).realm("finance"));
    let tls = tls_from_env("PROTECTED_API").await?;
    let addr = listen_from_env("PROTECTED_API", "127.0.0.1:8445")?;
    eprintln!("protected_api listening on https://{addr}");
    axum_server::bind_rustls(addr, tls).serve(router.into_make_service()).await.map_err(|e| ErrorChain(&e).to_string())
}
