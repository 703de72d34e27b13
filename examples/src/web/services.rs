//! The two services the web application talks to: the finance API (it verifies every
//! token with `dual-auth-verify` and answers with what it saw) and the remote agent (the
//! out-of-session flow: it receives the user's evidence from the application and acts).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use dual_auth::prelude::*;
use dual_auth::verify::{DualAuthLayer, DualSubject, IssuerPolicy, Layout, Verifier};
use serde_json::{Value, json};

use super::{Agent, Mode};

/// The largest evidence the remote agent takes (access tokens run to a few KiB).
const MAX_INVOKE_BYTES: usize = 64 * 1024;

/// A self-made CA and one certificate for `127.0.0.1` and `localhost`, shared by the
/// demo's listeners: loopback HTTPS without a system CA.
pub(crate) struct LocalTls {
    pub(crate) ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl LocalTls {
    pub(crate) fn generate() -> Result<Self, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let fail = |e: rcgen::Error| format!("TLS certificates: {e}");
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "dual-auth web demo CA (throw-away)");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().map_err(fail)?;
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).map_err(fail)?;
        let cert = params.signed_by(&key, &issuer).map_err(fail)?;
        Ok(Self { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    pub(crate) async fn rustls(&self) -> Result<RustlsConfig, String> {
        RustlsConfig::from_pem(self.cert_pem.clone().into_bytes(), self.key_pem.clone().into_bytes()).await.map_err(|e| format!("TLS: {e}"))
    }
}

/// A free loopback port, bound.
pub(crate) fn bind() -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
    Ok((listener, addr))
}

/// Serves `router` over HTTPS on `listener`; stopped through the handle kept in `handles`.
pub(crate) async fn serve(
    router: Router,
    tls: &LocalTls,
    listener: std::net::TcpListener,
    handles: &mut Vec<axum_server::Handle<SocketAddr>>,
) -> Result<(), String> {
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls.rustls().await?).map_err(|e| format!("listen: {e}"))?.handle(handle.clone());
    tokio::spawn(async move {
        if let Err(e) = server.serve(router.into_make_service()).await {
            tracing::error!(event = "server_failed", error = %e);
        }
    });
    handles.push(handle);
    Ok(())
}

/// What the finance API has answered, for a person (and a test) to check that a refused
/// request did nothing.
#[derive(Debug, Default)]
pub struct ApiLog {
    calls: AtomicUsize,
    last: Mutex<Option<Value>>,
}

impl ApiLog {
    /// How many requests it served (verified ones only: the layer refuses the others).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Its last answer.
    pub fn last(&self) -> Option<Value> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn report(State(log): State<Arc<ApiLog>>, Path(id): Path<String>, subject: DualSubject) -> Json<Value> {
    tracing::info!(event = "report_read", report = %id, agent = subject.agent.id(), human_id = %subject.human.log_id(), vouched_by = subject.vouched_by.as_str());
    let seen = json!({
        "report": id,
        "issuer": subject.issuer,
        "agent": subject.agent,
        "human": subject.human.to_value(),
        "chain": subject.chain,
        "vouched_by": subject.vouched_by,
        "scopes": subject.scopes,
    });
    log.calls.fetch_add(1, Ordering::SeqCst);
    *log.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(seen.clone());
    Json(seen)
}

/// The finance API: `/delegated/reports/{id}` takes the delegation grants' tokens
/// ([`Layout::Delegated`]: the identity provider vouched for the human), `/guide/reports/{id}`
/// the guide's ([`Layout::DualAuth`]: the agent's own `act`).
pub(crate) fn finance_api(issuer: &str, audience: &str, http: &HttpSettings, log: Arc<ApiLog>) -> Result<Router, String> {
    let verifier = |layout: Layout| {
        Verifier::builder()
            .issuer(IssuerPolicy::new(issuer, audience).discovery().layout(layout))
            .http(http.clone())
            .build()
            .map_err(|e| format!("the finance API's verifier: {e}"))
    };
    let delegated = Router::new()
        .route("/delegated/reports/{id}", get(report))
        .layer(DualAuthLayer::new(verifier(Layout::Delegated)?).realm("finance"))
        .with_state(Arc::clone(&log));
    let guide = Router::new()
        .route("/guide/reports/{id}", get(report))
        .layer(DualAuthLayer::new(verifier(Layout::DualAuth)?).realm("finance"))
        .with_state(log);
    Ok(delegated.merge(guide))
}

/// What the application sends the remote agent.
#[derive(serde::Deserialize)]
struct Invocation {
    /// The report to read.
    report: String,
    /// The user's access token: the evidence the agent exchanges (a secret).
    subject_token: String,
}

async fn invoke(State(agent): State<Arc<Agent>>, Json(invocation): Json<Invocation>) -> (StatusCode, Json<Value>) {
    let evidence = match SubjectToken::new(invocation.subject_token, SubjectTokenType::AccessToken) {
        Ok(evidence) => evidence,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))),
    };
    let outcome = agent.act_for(Mode::Remote, &evidence, &invocation.report).await;
    (StatusCode::OK, Json(outcome.to_json()))
}

/// The remote agent: `POST /invoke` `{report, subject_token}` exchanges the evidence and
/// calls the finance API; it answers with what the API said.
pub(crate) fn remote_agent(agent: Arc<Agent>) -> Router {
    Router::new().route("/invoke", post(invoke)).layer(DefaultBodyLimit::max(MAX_INVOKE_BYTES)).with_state(agent)
}
