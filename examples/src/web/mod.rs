//! The guide's story in a browser: a person signs in to a web application with OpenID
//! Connect (authorization code, PKCE, `state`, `nonce`), asks the finance agent to read a
//! report, and sees what the finance API saw: the agent and the human side by side, who
//! vouched for the human, and the delegation chain.
//!
//! Three HTTPS listeners on loopback, one process: the web application, the finance API
//! (`dual-auth-verify` in front of each route) and the remote agent (the out-of-session
//! flow). [`WebDemo::start`] works against any OpenID Connect provider that speaks
//! Keycloak's token exchange: the development provider's Keycloak dialect
//! (`web_demo` binary) and a real Keycloak (the browser tests).
//!
//! Sessions live in memory here; the cookie holds only a random id (`__Host-` prefixed,
//! `Secure`, `HttpOnly`, `SameSite=Lax`), and every form carries the session's CSRF token.

mod agent;
mod dev;
mod login;
mod pages;
mod services;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use dual_auth::prelude::*;

use agent::Agent;
pub use agent::{Mode, TaskOutcome};
pub use dev::{DEV_AGENT, DevWebDemo};
pub use login::{CallbackRefusal, LoginProvider};
use login::{RelyingParty, constant_time_eq, random, safe_return_path};
use pages::Person;
pub use services::ApiLog;

/// The session cookie (RFC 6265bis `__Host-`: this host only, `Secure`, path `/`).
pub const SESSION_COOKIE: &str = "__Host-dual-auth-session";
/// The sign-in cookie: binds a started sign-in to this browser until its callback.
pub const LOGIN_COOKIE: &str = "__Host-dual-auth-login";
/// The report the agent reads.
const REPORT: &str = "Q4-2025";
/// The most sessions kept at once.
const MAX_SESSIONS: usize = 10_000;

/// The agent's side of the demo.
pub struct AgentSettings {
    /// Its client id.
    pub agent_id: String,
    /// Its adapter (token exchange, and the guide's request when offered).
    pub adapter: Arc<dyn IamAdapter>,
    /// The scopes it asks for.
    pub scopes: Vec<String>,
    /// `None` offers the guide's self-asserted mode; `Some(why)` shows it disabled with
    /// the reason (a stock Keycloak does not copy the agent's `act`).
    pub guide_unavailable: Option<String>,
}

/// What [`WebDemo::start`] needs.
pub struct WebDemoConfig {
    /// Where people sign in.
    pub login: LoginProvider,
    /// The agent.
    pub agent: AgentSettings,
    /// The finance API's audience at the identity provider.
    pub api_audience: String,
    /// HTTP settings for every outgoing call (the identity provider's CA among the roots;
    /// the demo adds its own).
    pub http: HttpSettings,
}

/// A signed-in user's session.
struct Session {
    act: Act,
    name: String,
    email: String,
    access_token: SecretString,
    expires_at: SystemTime,
    csrf: String,
}

struct App {
    rp: RelyingParty,
    agent: Arc<Agent>,
    guide_unavailable: Option<String>,
    agent_url: String,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
}

/// The running demo: three HTTPS servers, stopped when dropped.
pub struct WebDemo {
    app_url: String,
    api_url: String,
    agent_url: String,
    ca_pem: String,
    api_log: Arc<ApiLog>,
    handles: Vec<axum_server::Handle<SocketAddr>>,
}

impl Drop for WebDemo {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.shutdown();
        }
    }
}

impl WebDemo {
    /// Starts the finance API, the remote agent and the web application on free loopback
    /// ports, after reading the provider's discovery document. Register
    /// [`WebDemo::redirect_uri`] with the provider before anyone signs in.
    ///
    /// # Errors
    /// A message naming what failed (discovery, TLS, a port).
    pub async fn start(config: WebDemoConfig) -> Result<Self, String> {
        let tls = services::LocalTls::generate()?;
        let mut http = config.http;
        let mut roots = http.extra_root_certificates_pem.take().unwrap_or_default();
        roots.extend_from_slice(b"\n");
        roots.extend_from_slice(tls.ca_pem.as_bytes());
        http.extra_root_certificates_pem = Some(roots);
        let mut handles = Vec::new();

        let api_log = Arc::new(ApiLog::default());
        let api = services::finance_api(&config.login.issuer, &config.api_audience, &http, Arc::clone(&api_log))?;
        let (listener, addr) = services::bind()?;
        services::serve(api, &tls, listener, &mut handles).await?;
        let api_url = format!("https://{addr}");

        let api_client = ApiClient::new(http.clone()).map_err(|e| e.to_string())?;
        let settings = config.agent;
        let agent = Arc::new(Agent::new(settings.agent_id, settings.scopes, settings.adapter, api_client, api_url.clone()));
        let (listener, addr) = services::bind()?;
        services::serve(services::remote_agent(Arc::clone(&agent)), &tls, listener, &mut handles).await?;
        let agent_url = format!("https://{addr}");

        // The application's port comes first: its redirect URI is part of every sign-in.
        let (app_listener, app_addr) = services::bind()?;
        let app_url = format!("https://{app_addr}");
        let rp = RelyingParty::discover(config.login, format!("{app_url}/callback"), &http).await?;
        let app = Arc::new(App {
            rp,
            agent,
            guide_unavailable: settings.guide_unavailable,
            agent_url: agent_url.clone(),
            http: http.build_client().map_err(|e| e.to_string())?,
            sessions: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/", get(home))
            .route("/login", get(start_login))
            .route("/callback", get(callback))
            .route("/task", post(task))
            .route("/logout", post(logout))
            .with_state(app);
        services::serve(router, &tls, app_listener, &mut handles).await?;
        Ok(Self { app_url, api_url, agent_url, ca_pem: tls.ca_pem.clone(), api_log, handles })
    }

    /// The web application: `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.app_url
    }

    /// The redirect URI to register with the provider (exactly this).
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.app_url)
    }

    /// The finance API's base URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The remote agent's base URL.
    pub fn agent_url(&self) -> &str {
        &self.agent_url
    }

    /// The demo's own CA (its three listeners' certificates chain to it).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What the finance API served.
    pub fn api_log(&self) -> &ApiLog {
        &self.api_log
    }
}

/// The value of cookie `name` in the request (the first, if repeated).
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    // Our values are base64url: nothing to escape.
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", Some(0))
}

impl App {
    /// The page with the security headers every page gets.
    fn html(&self, status: StatusCode, body: String, cookies: Vec<HeaderValue>) -> Response {
        let mut response = (status, Html(body)).into_response();
        let headers = response.headers_mut();
        // No script at all; forms post here only (a sign-in starts from a link).
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        for cookie in cookies {
            headers.append(SET_COOKIE, cookie);
        }
        response
    }

    fn refused(&self, status: StatusCode, what: &str, why: &str) -> Response {
        self.html(status, pages::refused(what, why), Vec::new())
    }

    /// The session the request's cookie names, if it is one of ours and not expired: its
    /// id, and a copy of what a page needs.
    fn session<T>(&self, headers: &HeaderMap, read: impl FnOnce(&str, &Session) -> T) -> Option<T> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(id).is_some_and(|s| s.expires_at <= SystemTime::now()) {
            sessions.remove(id);
        }
        sessions.get(id).map(|session| read(id, session))
    }

    fn person<'s>(&'s self, session: &'s Session) -> Person<'s> {
        Person { name: &session.name, email: &session.email, sub: session.act.sub(), provider: &self.rp.provider().display_name }
    }
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let page = app.session(&headers, |_, session| {
        pages::task_form(&app.person(session), &session.csrf, &app.agent.id, app.guide_unavailable.as_deref())
    });
    match page {
        Some(page) => app.html(StatusCode::OK, page, Vec::new()),
        None => app.html(StatusCode::OK, pages::welcome(&app.rp.provider().display_name), Vec::new()),
    }
}

async fn start_login(State(app): State<Arc<App>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let return_to = match safe_return_path(query.get("return_to").map_or("/", String::as_str)) {
        Ok(path) => path,
        Err(why) => return app.refused(StatusCode::BAD_REQUEST, "Sign-in refused", why),
    };
    let started = random().and_then(|browser| Ok((app.rp.start(&browser, return_to)?, browser)));
    match started {
        Ok((url, browser)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(url.as_str()) {
                response.headers_mut().insert(LOCATION, location);
            }
            response.headers_mut().insert(SET_COOKIE, set_cookie(LOGIN_COOKIE, &browser, Some(600)));
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => app.refused(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", &e),
    }
}

async fn callback(State(app): State<Arc<App>>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let signed_in = match app.rp.finish(&query, cookie(&headers, LOGIN_COOKIE)).await {
        Ok(signed_in) => signed_in,
        Err(refusal) => {
            tracing::warn!(event = "sign_in_refused", reason = ?refusal_kind(&refusal));
            return app.refused(StatusCode::BAD_REQUEST, "Sign-in refused", &refusal.message());
        }
    };
    let claims = &signed_in.id_token.claims;
    let act = match HybridSender::in_session().extract_act_from_claims(claims) {
        Ok(act) => act,
        Err(e) => return app.refused(StatusCode::BAD_REQUEST, "Sign-in refused", &format!("the ID token does not name a person: {e}")),
    };
    let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let name = act.name().map(str::to_owned).unwrap_or_else(|| claim("preferred_username"));
    let (id, csrf) = match (random(), random()) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        (Err(e), _) | (_, Err(e)) => return app.refused(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", &e),
    };
    tracing::info!(event = "signed_in", user = %act.log_id());
    let session = Session {
        email: act.email().unwrap_or_default().to_owned(),
        name,
        act,
        access_token: signed_in.access_token,
        expires_at: signed_in.id_token.expires_at.max(SystemTime::now()),
        csrf,
    };
    let page = pages::signed_in(&app.person(&session), &signed_in.return_to);
    {
        let mut sessions = app.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        sessions.retain(|_, s| s.expires_at > now);
        if sessions.len() >= MAX_SESSIONS {
            return app.refused(StatusCode::SERVICE_UNAVAILABLE, "Sign-in failed", "too many sessions at once; try again later");
        }
        sessions.insert(id.clone(), session);
    }
    app.html(StatusCode::OK, page, vec![set_cookie(SESSION_COOKIE, &id, None), clear_cookie(LOGIN_COOKIE)])
}

/// The refusal's name for logs (its message may carry the provider's words).
fn refusal_kind(refusal: &CallbackRefusal) -> &'static str {
    match refusal {
        CallbackRefusal::UnknownState => "unknown_state",
        CallbackRefusal::OtherBrowser => "other_browser",
        CallbackRefusal::Replayed => "replayed",
        CallbackRefusal::Expired => "expired",
        CallbackRefusal::WrongIssuer => "wrong_issuer",
        CallbackRefusal::ProviderError(_) => "provider_error",
        CallbackRefusal::ExchangeRefused(_) => "exchange_refused",
        CallbackRefusal::IdToken(_) => "id_token",
        CallbackRefusal::NoCode => "no_code",
    }
}

/// What a task needs from the session, copied out of the lock.
struct TaskInput {
    act: Act,
    name: String,
    email: String,
    csrf: String,
    evidence: Result<SubjectToken, IamError>,
}

async fn task(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let input = app.session(&headers, |_, s| TaskInput {
        act: s.act.clone(),
        name: s.name.clone(),
        email: s.email.clone(),
        csrf: s.csrf.clone(),
        evidence: SubjectToken::new(s.access_token.expose_secret(), SubjectTokenType::AccessToken),
    });
    let Some(input) = input else {
        return app.refused(
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "this browser has no session here (signed out, expired, or never issued here): sign in again",
        );
    };
    // The form must come from a page shown to this very session.
    if !form.get("csrf").is_some_and(|token| constant_time_eq(token, &input.csrf)) {
        tracing::warn!(event = "task_refused", reason = "csrf", user = %input.act.log_id());
        return app.refused(
            StatusCode::FORBIDDEN,
            "Task refused",
            "this form was issued to another session (the session cookie changed since the page was shown, or the form came from another site)",
        );
    }
    let Some(mode) = form.get("mode").and_then(|m| Mode::parse(m)) else {
        return app.refused(StatusCode::BAD_REQUEST, "Task refused", "choose how the agent proves it acts for you");
    };
    let outcome = match (mode, &input.evidence) {
        (Mode::Guide, _) if app.guide_unavailable.is_some() => {
            return app.refused(StatusCode::BAD_REQUEST, "Task refused", app.guide_unavailable.as_deref().unwrap_or_default());
        }
        (Mode::Guide, _) => app.agent.assert_for(&input.act, REPORT).await,
        (_, Err(e)) => return app.refused(StatusCode::BAD_REQUEST, "Task refused", &format!("the session holds no usable evidence: {e}")),
        (Mode::Verified, Ok(evidence)) => app.agent.act_for(Mode::Verified, evidence, REPORT).await,
        (Mode::Remote, Ok(evidence)) => remote(&app, evidence).await,
    };
    tracing::info!(event = "task_done", mode = mode.as_str(), user = %input.act.log_id(), status = ?outcome.status);
    let person = Person { name: &input.name, email: &input.email, sub: input.act.sub(), provider: &app.rp.provider().display_name };
    let status = if outcome.succeeded() { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    app.html(status, pages::result(&person, &input.csrf, &outcome), Vec::new())
}

/// Out of session: the user's token goes to the remote agent over HTTPS, and the agent's
/// answer comes back.
async fn remote(app: &App, evidence: &SubjectToken) -> TaskOutcome {
    let body = serde_json::json!({"report": REPORT, "subject_token": evidence.token().expose_secret()});
    let answer = async {
        let response =
            app.http.post(format!("{}/invoke", app.agent_url)).json(&body).send().await.map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        let value: serde_json::Value = response.json().await.map_err(|e| e.without_url().to_string())?;
        if status.is_success() { Ok(value) } else { Err(format!("HTTP {status}: {}", value["error"].as_str().unwrap_or("?"))) }
    };
    match answer.await {
        Ok(value) => TaskOutcome::from_json(Mode::Remote, &value),
        Err(e) => TaskOutcome {
            mode: Mode::Remote,
            status: None,
            seen: None,
            problem: Some(format!("the remote agent could not be reached: {e}")),
        },
    }
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let id = app.session(&headers, |id, session| (id.to_owned(), session.csrf.clone()));
    if let Some((id, csrf)) = id {
        if !form.get("csrf").is_some_and(|token| constant_time_eq(token, &csrf)) {
            return app.refused(StatusCode::FORBIDDEN, "Sign-out refused", "this form was issued to another session");
        }
        app.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
    app.html(StatusCode::OK, pages::signed_out(), vec![clear_cookie(SESSION_COOKIE)])
}
