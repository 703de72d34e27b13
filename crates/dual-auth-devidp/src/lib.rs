//! # dual-auth-devidp
//!
//! A local development identity provider, for demos and tests, never production. It speaks
//! each vendor's token-endpoint dialect strictly, so it catches wire mistakes instead of
//! hiding them, and serves a small protected API that reports the agent and the human it
//! saw.
//!
//! | dialect | token endpoint | client authentication |
//! |---|---|---|
//! | Keycloak | `/realms/{realm}/protocol/openid-connect/token` | client assertion, `aud` = realm URL or token URL |
//! | Auth0 | `/oauth/token` (+ `client_id`, `audience`) | client assertion, `aud` = tenant URL with `/` |
//! | Okta | `/oauth2/{server}/v1/token` | client assertion, `aud` = token URL |
//! | Entra ID | `/{tenant}/oauth2/v2.0/token` (`/.default` scopes) | client secret |
//!
//! Client assertions are checked with the client's secret (HS256) or registered public key
//! (RS256, PS256, ES256): `iss` = `sub` = client, audience, `exp`, `iat`, lifetime, and a
//! single-use `jti`. Access tokens are RS256 JWTs (JWKS and discovery served) with
//! `sub` = the agent and `act` = the human from the assertion (Entra ID: no `act`, as in
//! real life; the API then requires a valid `X-Act-Assertion` naming the same agent).
//! The demo API verifies with `dual-auth-verify`'s [`DualAuthLayer`], fetching this
//! provider's own JWKS over HTTPS, as a real API would.
//! TLS comes from a throw-away CA generated at start; [`DevIdp::ca_pem`] gives its
//! certificate for the clients to trust.
#![forbid(unsafe_code)]

mod jwt;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use dual_auth_core::VerifyingKey;
use dual_auth_core::token_endpoint::HttpSettings;
use dual_auth_verify::{ActAssertionPolicy, DualAuthLayer, DualSubject, IssuerPolicy, Verifier};
use openssl::pkey::PKey;
use serde_json::{Value, json};

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tokens live this long.
const TOKEN_LIFETIME: u64 = 300;
/// The longest client assertion accepted.
const MAX_ASSERTION_LIFETIME: u64 = 600;
/// Clock skew tolerated.
const SKEW: u64 = 30;

/// A client the provider knows.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// The client id (the agent).
    pub client_id: String,
    /// Its secret, for `client_secret_jwt` (and Entra ID's client secret).
    pub secret: Option<String>,
    /// Its public key (PEM) and the algorithm registered for it, for `private_key_jwt`.
    pub public_key: Option<(Vec<u8>, String)>,
}

/// What the provider serves.
#[derive(Debug, Clone)]
pub struct DevIdpConfig {
    /// Keycloak realm.
    pub realm: String,
    /// Okta authorization server id.
    pub okta_server: String,
    /// Entra ID tenant.
    pub tenant: String,
    /// The API audience for Keycloak, Auth0 and Okta tokens.
    pub api_audience: String,
    /// Entra ID's API (its scope is this plus `/.default`; act assertions name it as `aud`).
    pub entra_api: String,
    /// The clients.
    pub clients: Vec<RegisteredClient>,
    /// The application's public key (PEM), to check Entra ID act assertions at the API.
    pub app_public_key_pem: Option<Vec<u8>>,
    /// The application's id, required as the act assertions' `iss` when set.
    pub app_id: Option<String>,
}

impl DevIdpConfig {
    /// One client with a secret; the usual names.
    pub fn with_client(client_id: &str, secret: &str) -> Self {
        Self {
            realm: "demo".into(),
            okta_server: "default".into(),
            tenant: "00000000-0000-0000-0000-00000000d3m0".into(),
            api_audience: "https://api.dual-auth.example/finance".into(),
            entra_api: "api://dual-auth-demo-api".into(),
            clients: vec![RegisteredClient { client_id: client_id.into(), secret: Some(secret.into()), public_key: None }],
            app_public_key_pem: None,
            app_id: None,
        }
    }
}

/// Starting the provider failed.
#[derive(Debug)]
pub struct DevIdpError(pub String);

impl std::fmt::Display for DevIdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "development identity provider: {}", self.0)
    }
}

impl std::error::Error for DevIdpError {}

struct Inner {
    config: DevIdpConfig,
    base: String,
    signer: jwt::TokenSigner,
    seen_jtis: Mutex<HashMap<String, u64>>,
}

/// A running provider; stops when dropped.
pub struct DevIdp {
    inner: Arc<Inner>,
    ca_pem: String,
    handle: axum_server::Handle<SocketAddr>,
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl DevIdp {
    /// Starts on `addr` (port 0 picks a free one), with a new CA and signing key.
    ///
    /// # Errors
    /// [`DevIdpError`] when the port cannot be bound or keys cannot be made.
    pub async fn start(config: DevIdpConfig, addr: SocketAddr) -> Result<Self, DevIdpError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| DevIdpError(format!("{what}: {e}"));
        let (ca_pem, cert_pem, key_pem) = make_tls().map_err(|e| fail("TLS certificates", &e))?;
        let listener = std::net::TcpListener::bind(addr).map_err(|e| fail("bind", &e))?;
        listener.set_nonblocking(true).map_err(|e| fail("bind", &e))?;
        let port = listener.local_addr().map_err(|e| fail("bind", &e))?.port();
        let base = format!("https://localhost:{port}");
        let signer = jwt::TokenSigner::generate().map_err(|e| fail("signing key", &e))?;
        let inner = Arc::new(Inner { config, base, signer, seen_jtis: Mutex::new(HashMap::new()) });
        let verifier = inner.api_verifier(&ca_pem).map_err(|e| fail("demo API", &e))?;
        // The demo API verifies as any API would: dual-auth-verify, keys from the JWKS above.
        let api = Router::new()
            .route("/api/{*path}", get(demo_api).post(demo_api))
            .layer(DualAuthLayer::new(verifier).realm("dual-auth-demo"))
            .with_state(Arc::clone(&inner));
        let app = Router::new()
            .route("/realms/{realm}/protocol/openid-connect/token", post(keycloak_token))
            .route("/realms/{realm}/protocol/openid-connect/certs", get(jwks))
            .route("/realms/{realm}/.well-known/openid-configuration", get(keycloak_discovery))
            .route("/oauth/token", post(auth0_token))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/oauth2/{server}/v1/token", post(okta_token))
            .route("/oauth2/{server}/v1/keys", get(jwks))
            .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
            .route("/{tenant}/discovery/v2.0/keys", get(jwks))
            .with_state(Arc::clone(&inner))
            .merge(api);
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem.into_bytes(), key_pem.into_bytes())
            .await
            .map_err(|e| fail("TLS", &e))?;
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls).map_err(|e| fail("listen", &e))?.handle(handle.clone());
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        Ok(Self { inner, ca_pem, handle })
    }

    /// `https://localhost:PORT`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The CA certificate the clients must trust (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Keycloak's token URL.
    pub fn keycloak_token_url(&self) -> String {
        format!("{}/realms/{}/protocol/openid-connect/token", self.inner.base, self.inner.config.realm)
    }

    /// Auth0's token URL.
    pub fn auth0_token_url(&self) -> String {
        format!("{}/oauth/token", self.inner.base)
    }

    /// Okta's token URL.
    pub fn okta_token_url(&self) -> String {
        format!("{}/oauth2/{}/v1/token", self.inner.base, self.inner.config.okta_server)
    }

    /// Entra ID's token URL.
    pub fn entra_token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.inner.base, self.inner.config.tenant)
    }

    /// The demo API's base URL (`.../api`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.inner.base)
    }

    /// The configuration served.
    pub fn config(&self) -> &DevIdpConfig {
        &self.inner.config
    }
}

fn make_tls() -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "dual-auth development CA (throw-away)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

/// An OAuth error in a vendor's JSON shape.
struct OAuthError {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Keycloak,
    Auth0,
    Okta,
    Entra,
}

fn oauth_error(dialect: Dialect, status: StatusCode, error: &str, description: &str) -> OAuthError {
    let body = match dialect {
        // Auth0 answers client-authentication failures as access_denied / Unauthorized.
        Dialect::Auth0 if error == "invalid_client" => {
            json!({"error": "access_denied", "error_description": format!("Unauthorized: {description}")})
        }
        Dialect::Entra => json!({"error": error, "error_description": format!("AADSTS7000215: {description}"), "error_codes": [7_000_215]}),
        _ => json!({"error": error, "error_description": description}),
    };
    OAuthError { status, body }
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Keycloak => "keycloak",
            Dialect::Auth0 => "auth0",
            Dialect::Okta => "okta",
            Dialect::Entra => "entraid",
        }
    }
}

impl Inner {
    /// The demo API's verifier: the four dialects' issuers with their JWKS; Entra ID's
    /// tokens with the application's act assertion when its key is configured.
    fn api_verifier(&self, ca_pem: &str) -> Result<Verifier, String> {
        let jwks = |path: &str| format!("{}{path}", self.base);
        let typed = |issuer: String, audience: &str, jwks_url: String| {
            IssuerPolicy::new(issuer, audience).jwks_url(jwks_url).require_type("at+jwt")
        };
        let api = &self.config.api_audience;
        let mut builder = Verifier::builder()
            .http(HttpSettings { extra_root_certificates_pem: Some(ca_pem.as_bytes().to_vec()), ..HttpSettings::default() })
            .issuer(typed(
                self.issuer(Dialect::Keycloak),
                api,
                jwks(&format!("/realms/{}/protocol/openid-connect/certs", self.config.realm)),
            ))
            .issuer(typed(self.issuer(Dialect::Auth0), api, jwks("/.well-known/jwks.json")))
            .issuer(typed(self.issuer(Dialect::Okta), api, jwks(&format!("/oauth2/{}/v1/keys", self.config.okta_server))));
        if let Some(pem) = &self.config.app_public_key_pem {
            let key = VerifyingKey::from_pem(pem).map_err(|e| format!("app public key: {e}"))?;
            let mut assertion = ActAssertionPolicy::with_key(key, &self.config.entra_api);
            if let Some(app_id) = &self.config.app_id {
                assertion = assertion.app_id(app_id);
            }
            let entra =
                typed(self.issuer(Dialect::Entra), &self.config.entra_api, jwks(&format!("/{}/discovery/v2.0/keys", self.config.tenant)));
            builder = builder.issuer(entra.act_assertion(assertion));
        }
        builder.build().map_err(|e| e.to_string())
    }

    fn issuer(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Keycloak => format!("{}/realms/{}", self.base, self.config.realm),
            Dialect::Auth0 => format!("{}/", self.base),
            Dialect::Okta => format!("{}/oauth2/{}", self.base, self.config.okta_server),
            Dialect::Entra => format!("{}/{}/v2.0", self.base, self.config.tenant),
        }
    }

    fn client(&self, id: &str) -> Option<&RegisteredClient> {
        self.config.clients.iter().find(|c| c.client_id == id)
    }

    /// Authenticates an RFC 7523 client assertion; returns the client id and the `act`.
    fn authenticate(
        &self,
        dialect: Dialect,
        form: &HashMap<String, String>,
        audiences: &[String],
    ) -> Result<(String, Option<Value>), OAuthError> {
        let denied = |description: &str| oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_client", description);
        if form.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE) {
            return Err(denied("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
        }
        if form.contains_key("client_secret") {
            return Err(denied("the client secret must not be sent with a client assertion"));
        }
        let assertion = jwt::decode(form.get("client_assertion").map(String::as_str).unwrap_or_default())
            .map_err(|e| denied(&format!("client_assertion is {e}")))?;
        let client_id = assertion.str_claim("iss").unwrap_or_default().to_owned();
        if assertion.str_claim("sub") != Some(client_id.as_str()) {
            return Err(denied("client_assertion iss and sub must both be the client id"));
        }
        if let Some(form_client) = form.get("client_id")
            && *form_client != client_id
        {
            return Err(denied("client_id does not match the client assertion"));
        }
        let client = self.client(&client_id).ok_or_else(|| denied("unknown client"))?;
        let signed = match (&client.secret, &client.public_key) {
            (_, Some((pem, alg))) if assertion.alg() != "HS256" => {
                PKey::public_key_from_pem(pem).is_ok_and(|key| assertion.verifies_with(&key, alg))
            }
            (Some(secret), _) => assertion.verifies_hs256(secret.as_bytes()),
            _ => false,
        };
        if !signed {
            return Err(denied("client_assertion signature invalid"));
        }
        if !assertion.str_claim("aud").is_some_and(|aud| audiences.iter().any(|a| a == aud)) {
            return Err(denied(&format!("client_assertion aud must be one of {}", audiences.join(", "))));
        }
        let now = now();
        let (Some(exp), Some(iat)) = (assertion.u64_claim("exp"), assertion.u64_claim("iat")) else {
            return Err(denied("client_assertion needs exp and iat"));
        };
        if exp + SKEW <= now {
            return Err(denied("client_assertion expired"));
        }
        if iat > now + SKEW || exp <= iat || exp - iat > MAX_ASSERTION_LIFETIME {
            return Err(denied("client_assertion times out of bounds"));
        }
        let jti = assertion.str_claim("jti").filter(|j| !j.is_empty()).ok_or_else(|| denied("client_assertion needs a jti"))?;
        {
            let mut seen = self.seen_jtis.lock().unwrap_or_else(PoisonError::into_inner);
            seen.retain(|_, until| *until > now);
            if seen.insert(format!("{client_id}|{jti}"), exp + SKEW).is_some() {
                return Err(denied("client_assertion jti already used"));
            }
        }
        let act = assertion.claims.get("act").cloned();
        if let Some(act) = &act
            && act.get("sub").and_then(Value::as_str).is_none_or(str::is_empty)
        {
            return Err(oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", "act must be an object with a non-empty sub"));
        }
        Ok((client_id, act))
    }

    fn issue(&self, dialect: Dialect, client_id: &str, audience: &str, scope: &str, act: Option<Value>) -> Result<Json<Value>, OAuthError> {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer(dialect), "sub": client_id, "aud": audience, "exp": now + TOKEN_LIFETIME, "iat": now,
            "jti": format!("{client_id}-{now}-{}", rand_suffix()), "client_id": client_id, "scope": scope,
        });
        if dialect == Dialect::Entra {
            claims["azp"] = json!(client_id);
            claims["appid"] = json!(client_id);
            claims["ver"] = json!("2.0");
        } else if let Some(act) = act {
            claims["act"] = act;
        }
        let token = self
            .signer
            .sign(&claims)
            .map_err(|_| oauth_error(dialect, StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing failed"))?;
        Ok(Json(match dialect {
            Dialect::Entra => {
                json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME, "access_token": token})
            }
            _ => json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": scope}),
        }))
    }
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    let _ = openssl::rand::rand_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn require_grant(dialect: Dialect, form: &HashMap<String, String>) -> Result<(), OAuthError> {
    if form.get("grant_type").map(String::as_str) == Some("client_credentials") {
        Ok(())
    } else {
        Err(oauth_error(dialect, StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be client_credentials"))
    }
}

fn require_scope(dialect: Dialect, form: &HashMap<String, String>) -> Result<String, OAuthError> {
    form.get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .ok_or_else(|| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_scope", "scope is required"))
}

async fn keycloak_token(
    State(idp): State<Arc<Inner>>,
    Path(realm): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Keycloak;
    if realm != idp.config.realm {
        return Err(oauth_error(dialect, StatusCode::NOT_FOUND, "invalid_request", "Realm does not exist"));
    }
    require_grant(dialect, &form)?;
    let scope = require_scope(dialect, &form)?;
    let realm_url = idp.issuer(dialect);
    let audiences = [realm_url.clone(), format!("{realm_url}/protocol/openid-connect/token")];
    let (client, act) = idp.authenticate(dialect, &form, &audiences)?;
    idp.issue(dialect, &client, &idp.config.api_audience, &scope, act)
}

async fn auth0_token(State(idp): State<Arc<Inner>>, Form(form): Form<HashMap<String, String>>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Auth0;
    require_grant(dialect, &form)?;
    if form.get("audience") != Some(&idp.config.api_audience) {
        return Err(oauth_error(dialect, StatusCode::FORBIDDEN, "access_denied", "Service not found: audience is not a registered API"));
    }
    if !form.contains_key("client_id") {
        return Err(oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_request", "client_id is required"));
    }
    let (client, act) = idp.authenticate(dialect, &form, &[idp.issuer(dialect)])?;
    let scope = form.get("scope").cloned().unwrap_or_default();
    idp.issue(dialect, &client, &idp.config.api_audience, &scope, act)
}

async fn okta_token(
    State(idp): State<Arc<Inner>>,
    Path(server): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Okta;
    if server != idp.config.okta_server {
        return Err(oauth_error(dialect, StatusCode::NOT_FOUND, "invalid_request", "Not found: authorization server"));
    }
    require_grant(dialect, &form)?;
    let scope = require_scope(dialect, &form)?;
    let token_url = format!("{}/v1/token", idp.issuer(dialect));
    let (client, act) = idp.authenticate(dialect, &form, &[token_url])?;
    idp.issue(dialect, &client, &idp.config.api_audience, &scope, act)
}

async fn entra_token(
    State(idp): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Entra;
    if tenant != idp.config.tenant {
        return Err(oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", "Tenant not found"));
    }
    require_grant(dialect, &form)?;
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let secret_ok = idp.client(&client_id).and_then(|c| c.secret.as_ref()).is_some_and(|s| Some(s) == form.get("client_secret"));
    if !secret_ok {
        return Err(oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client secret provided."));
    }
    let scope = require_scope(dialect, &form)?;
    let resource = scope
        .strip_suffix("/.default")
        .filter(|r| *r == idp.config.entra_api)
        .ok_or_else(|| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_scope", "The scope must be the API's /.default scope"))?
        .to_owned();
    idp.issue(dialect, &client_id, &resource, &scope, None)
}

async fn jwks(State(idp): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({"keys": [idp.signer.jwk().unwrap_or(Value::Null)]}))
}

async fn keycloak_discovery(State(idp): State<Arc<Inner>>) -> Json<Value> {
    let issuer = idp.issuer(Dialect::Keycloak);
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_jwt", "private_key_jwt"],
    }))
}

/// The protected demo API, behind [`DualAuthLayer`]: answers with the agent and the human
/// the verified token (and, for Entra ID, act assertion) named.
async fn demo_api(State(idp): State<Arc<Inner>>, subject: DualSubject) -> Json<Value> {
    let vendor = [Dialect::Keycloak, Dialect::Auth0, Dialect::Okta, Dialect::Entra]
        .into_iter()
        .find(|d| idp.issuer(*d) == subject.issuer)
        .map_or("unknown", Dialect::name);
    Json(json!({
        "vendor": vendor,
        "agent": subject.agent.id(),
        "human": subject.human.sub(),
        "act": subject.human.to_value(),
        "chain": subject.chain,
    }))
}
