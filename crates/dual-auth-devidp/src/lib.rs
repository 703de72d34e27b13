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
//!
//! ## Delegation
//!
//! Each dialect also speaks its vendor's delegation grant, strictly, with the vendor's
//! documented errors, and issues the token in that vendor's shape (`sub` = the human, the
//! agent as the client):
//!
//! | dialect | grant | evidence | issued token |
//! |---|---|---|---|
//! | Keycloak | RFC 8693 standard token exchange | the user's access token, the agent in its `aud` | `sub` = user, `azp` = agent |
//! | Keycloak | RFC 7523 JWT authorization grant | the application's assertion (`app_id`, `app_public_key_pem`), `sub` = a linked user | `sub` = user, `azp` = agent |
//! | Auth0 | On-Behalf-Of token exchange (`audience`, or `resource` as the Resource Parameter Compatibility Profile reads it) | the user's access token | `sub` = user, `azp` = agent, `act.sub` = agent |
//! | Okta | On-Behalf-Of token exchange | the user's access token | `sub` = login, `uid`, `cid` = agent, `scp` |
//! | Entra ID | on-behalf-of (`jwt-bearer`, `requested_token_use=on_behalf_of`) | the user's token, `aud` = the agent | pairwise `sub`, `oid`, `tid`, `azp` = agent, `scp`, `ver` 2.0 |
//!
//! The client assertion of a delegation grant must not carry `act`. Evidence whose
//! `may_act` names another agent is refused. Auth0's Custom Token Exchange needs a
//! profile and an Action, which this provider does not have: a custom
//! `subject_token_type` is refused as having no profile.
//!
//! The users' tokens come from the Keycloak dialect's browser login (below) or from
//! `POST /dev/login` ([`DevIdp::login_url`], [`DevIdp::login`]), a **development
//! convenience** in every dialect: no password and no page, just the tokens the web
//! application would hold after its user (one of [`DevIdpConfig::users`]) logged in and
//! chose the agent to delegate to. The delegated demo API ([`DevIdp::delegated_api_url`])
//! verifies the delegated tokens with [`dual_auth_verify::Layout::Delegated`] and answers
//! `{vendor, agent, human, act, chain, vouched_by}`.
//!
//! ## Browser login (Keycloak dialect only)
//!
//! Keycloak's authorization endpoint, `/realms/{realm}/protocol/openid-connect/auth`
//! ([`DevIdp::keycloak_authorization_url`], named in discovery,
//! [`DevIdp::keycloak_discovery_url`]), and the code exchange at its token endpoint: the
//! authorization code grant (RFC 6749 §4.1) with PKCE S256 required (RFC 7636), `iss` in
//! the authorization response (RFC 9207), the OpenID Connect tokens (OIDC Core §3.1).
//!
//! - The client is [`DevIdpConfig::web_client_id`] with [`DevIdpConfig::web_client_secret`]
//!   (`client_secret_basic` or `client_secret_post`); its redirect URIs
//!   ([`DevIdpConfig::web_redirect_uris`], [`DevIdp::allow_redirect_uri`]) match as exact
//!   strings (RFC 9700 §4.1.3).
//! - Until the client and redirect URI are known good, errors are a page, never a redirect
//!   (`Client not found.`, `Invalid parameter: redirect_uri`); after, they go to the
//!   redirect URI with `state` and `iss` (Keycloak's `Missing parameter:
//!   code_challenge_method`, `Invalid parameter: code_challenge_method` for `plain`, ...).
//! - The login page has Keycloak's form ids (`kc-form-login`, `username`, `password`,
//!   `kc-login`, `input-error`), lists the demo users, escapes all it reflects and forbids
//!   framing and caching. A demo user's password is fixed, `dual-auth-{username}`
//!   ([`DemoUser::password`]): development only. The posted form is checked again.
//! - A code is single use and valid 60 s; a failed exchange burns it; a replay is answered
//!   `invalid_grant` `Code not valid` and recorded ([`TokenRequestRecord::code_replayed`]).
//! - The access token is the one `POST /dev/login` gives, for [`DevIdpConfig::web_delegate`]
//!   (`aud`, `may_act`), DPoP-bound when a proof comes; the ID token adds `nonce`,
//!   `auth_time` and `at_hash`.
//!
//! Not emulated: a consent screen; an SSO session (no cookie: every authorization request
//! shows the login page, `prompt=none` answers `login_required`); refresh tokens;
//! RP-initiated logout; response modes other than `query`; request objects.
//!
//! ## DPoP (RFC 9449)
//!
//! A token request to the Keycloak, Auth0 or Okta dialect that carries a `DPoP` header
//! (any of its grants: client credentials, token exchange, Keycloak's JWT authorization
//! grant) gets its proof checked strictly, with this provider's own OpenSSL code and not
//! the library's verifier, so that it stays an independent check of what the library
//! sends: exactly one header; a compact JWS with `typ` `dpop+jwt` and `alg` ES256, EdDSA,
//! RS256 or PS256; a public `jwk` (no private members) of the kind that `alg` needs, which
//! the signature verifies with; `htm` `POST`; `htu` the token endpoint's URL (query and
//! fragment ignored); `iat` within 60 s either side; a `jti` not used before with that key;
//! no `ath`. The access token then carries `cnf: {"jkt": <RFC 7638 SHA-256 thumbprint of
//! the jwk>}` and the answer says `token_type: "DPoP"`. Without the header, tokens are
//! bearer tokens, as before (no client is configured to require DPoP).
//!
//! | dialect | DPoP | refusals | nonce |
//! |---|---|---|---|
//! | Keycloak | binds whenever a proof is sent (26.7.3's `DPoPUtil`, all grants) | 400 `invalid_request` with Keycloak's descriptions (`DPoP HTTP URL mismatch`, `DPoP proof has already been used`, `DPoP verification failure: ...`, ...) | none: Keycloak issues none and ignores the claim |
//! | Auth0 | binds when a proof is sent (Auth0's "Require Sender Constraining" would refuse requests without one; not configured here) | 400 `invalid_dpop_proof` (RFC 9449 §5) | none required |
//! | Okta | binds after the nonce round trip | 400 `invalid_dpop_proof` | required: a proof without the current nonce (or with another) gets 400 `use_dpop_nonce` and a `DPoP-Nonce` header ([`DevIdp::okta_dpop_nonce`]); one nonce per provider run |
//! | Entra ID | **none**: the `DPoP` header is ignored and the token is a `Bearer` token without `cnf`, because Entra ID does not do RFC 9449 DPoP (its proof-of-possession is Signed HTTP Request); the library's Entra ID adapter refuses DPoP settings anyway | — | — |
//!
//! Where this provider is stricter than the vendor: Keycloak accepts an `iat` up to 25 s
//! old and 15 s ahead (60 s either side here), records `jti` per `htu` (per key here), and
//! ignores `ath` at its token endpoint (refused here, with a `DPoP verification failure:`
//! description). As in Keycloak's standard token exchange, a DPoP-bound subject token
//! needs a proof of its own key (`DPoP proof is missing`, `DPoP confirmation doesn't match
//! DPoP proof`); the Auth0 and Okta dialects do not check that.
//!
//! The demo APIs (`/api/...`, `/delegated-api/...`) take DPoP-bound tokens through
//! `dual-auth-verify` (`Authorization: DPoP` with a proof for the API's URL on
//! [`DevIdp::base_url`], the verifier's `public_origin`), refuse them as `Bearer`, and
//! report the key in `dpop_jkt` (`null` for a bearer token). [`DevIdp::token_requests`]
//! lists the token requests seen, for tests that count round trips.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorize;
mod delegation;
mod dpop;
mod jwt;
pub mod mcp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use dual_auth_core::token_endpoint::HttpSettings;
use dual_auth_core::{JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT, VerifyingKey};
use dual_auth_verify::{ActAssertionPolicy, DualAuthLayer, DualSubject, IssuerPolicy, Verifier};
use openssl::pkey::PKey;

pub use delegation::{LoginTokens, authorization_grant_claims, sign_app_assertion};
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

/// A demo user, who logs in at the Keycloak dialect's login page or at `POST /dev/login`,
/// and delegates to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// The user's id at the provider: Keycloak and Auth0 `sub`, Okta `uid`, Entra ID `oid`.
    pub id: String,
    /// The name typed at `/dev/login` (`alice`).
    pub username: String,
    /// The e-mail address; also the Okta login (Okta's access-token `sub`).
    pub email: String,
    /// The display name.
    pub name: String,
    /// The user's id at the application (`app_id`): the `sub` of the application's JWT
    /// authorization grant assertions, linked to this user as Keycloak's federated
    /// identity is.
    pub app_user_id: String,
    /// The password the login page takes. A fixed, published demo password: development
    /// only.
    pub password: String,
}

impl DemoUser {
    /// A user; the application knows it as `app-{username}`, and its password is the fixed
    /// demo password `dual-auth-{username}` (development only: anyone can read it here).
    pub fn new(id: impl Into<String>, username: impl Into<String>, email: impl Into<String>, name: impl Into<String>) -> Self {
        let username = username.into();
        Self {
            id: id.into(),
            app_user_id: format!("app-{username}"),
            password: format!("dual-auth-{username}"),
            username,
            email: email.into(),
            name: name.into(),
        }
    }

    /// Alice and Bob, the demo's users.
    pub fn demo_users() -> Vec<Self> {
        vec![
            Self::new("5f1c7a4e-9d2b-4c1e-8a3f-a11ce0000001", "alice", "alice@example.com", "Alice Example"),
            Self::new("7b2d9e10-3c4f-4a5b-9e6d-b0b000000002", "bob", "bob@example.com", "Bob Example"),
        ]
    }
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
    /// More APIs registered at the Auth0 tenant besides `api_audience` (an MCP server's
    /// canonical URI, say): Auth0's token exchange issues tokens for them, named by
    /// `audience` or `resource`, and takes subject tokens issued for them.
    pub extra_apis: Vec<String>,
    /// Entra ID's API (its scope is this plus `/.default`; act assertions name it as `aud`).
    pub entra_api: String,
    /// The clients.
    pub clients: Vec<RegisteredClient>,
    /// The application's public key (PEM), to check Entra ID act assertions at the API.
    pub app_public_key_pem: Option<Vec<u8>>,
    /// The application's id, required as the act assertions' `iss` when set; also the
    /// issuer Keycloak's JWT authorization grant trusts (with `app_public_key_pem`).
    pub app_id: Option<String>,
    /// The users who can log in at the login page and at `/dev/login`.
    pub users: Vec<DemoUser>,
    /// The web application's client id: `azp` / `cid` of the users' tokens and `aud` of
    /// their ID tokens.
    pub web_client_id: String,
    /// The web client's secret, for the authorization code exchange at Keycloak's token
    /// endpoint (`client_secret_basic` or `client_secret_post`, RFC 6749 §2.3.1). With
    /// `None` the authorization endpoint refuses, with a page saying so.
    pub web_client_secret: Option<String>,
    /// The web client's redirect URIs, compared as exact strings (RFC 9700 §4.1.3: no
    /// wildcards, no normalisation). More can be added once the provider runs
    /// ([`DevIdp::allow_redirect_uri`]).
    pub web_redirect_uris: Vec<String>,
    /// The agent the browser login's access tokens are issued for (their `aud` and
    /// `may_act.sub`, as Keycloak's audience mapper adds it); `None`: the first of
    /// [`DevIdpConfig::clients`].
    pub web_delegate: Option<String>,
}

impl DevIdpConfig {
    /// `api_audience`, then [`DevIdpConfig::extra_apis`].
    pub fn apis(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.api_audience.as_str()).chain(self.extra_apis.iter().map(String::as_str))
    }

    /// Whether `audience` names one of [`DevIdpConfig::apis`].
    pub fn is_api(&self, audience: &str) -> bool {
        self.apis().any(|api| api == audience)
    }

    /// One client with a secret; the usual names.
    pub fn with_client(client_id: &str, secret: &str) -> Self {
        Self {
            realm: "demo".into(),
            okta_server: "default".into(),
            tenant: "00000000-0000-0000-0000-00000000d3m0".into(),
            api_audience: "https://api.dual-auth.example/finance".into(),
            extra_apis: Vec::new(),
            entra_api: "api://dual-auth-demo-api".into(),
            clients: vec![RegisteredClient { client_id: client_id.into(), secret: Some(secret.into()), public_key: None }],
            app_public_key_pem: None,
            app_id: None,
            users: DemoUser::demo_users(),
            web_client_id: "dual-auth-web".into(),
            web_client_secret: None,
            web_redirect_uris: Vec::new(),
            web_delegate: None,
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

/// One token-endpoint request as the provider saw and answered it: the record tests read
/// ([`DevIdp::token_requests`]) to know exactly which requests a client made, for instance
/// Okta's DPoP nonce round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequestRecord {
    /// The dialect (`keycloak`, `auth0`, `okta`, `entraid`).
    pub vendor: &'static str,
    /// The `grant_type` sent.
    pub grant_type: String,
    /// Whether a `DPoP` header came.
    pub dpop_proof: bool,
    /// The proof's `nonce` claim, read without checking the proof.
    pub proof_nonce: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The OAuth `error` answered, if any.
    pub error: Option<String>,
    /// The `DPoP-Nonce` header answered, if any.
    pub dpop_nonce: Option<String>,
    /// The `token_type` answered, for a token.
    pub token_type: Option<String>,
    /// For `authorization_code`: the code had been used before (a replay, answered
    /// `invalid_grant` `Code not valid` as an unknown code is, RFC 6749 §4.1.2).
    pub code_replayed: bool,
}

/// The most token requests remembered.
const MAX_RECORDS: usize = 1000;

struct Inner {
    config: DevIdpConfig,
    base: String,
    signer: jwt::TokenSigner,
    seen_jtis: Mutex<HashMap<String, u64>>,
    /// The Okta dialect's current DPoP nonce (one per provider run).
    okta_nonce: String,
    token_log: Mutex<Vec<TokenRequestRecord>>,
    /// The web client's redirect URIs: the configured ones, then those added at run time.
    redirect_uris: Mutex<Vec<String>>,
    /// The authorization codes issued, by the SHA-256 of the code.
    codes: Mutex<HashMap<[u8; 32], authorize::IssuedCode>>,
}

/// A running provider; stops when dropped.
pub struct DevIdp {
    inner: Arc<Inner>,
    ca_pem: String,
    /// The `localhost` certificate and key, for services served beside the provider.
    tls: (String, String),
    handle: axum_server::Handle<SocketAddr>,
}

/// A service [`DevIdp::serve_beside`] runs; stops when dropped.
pub struct ServedBeside {
    handle: axum_server::Handle<SocketAddr>,
}

impl Drop for ServedBeside {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn serve_tls(
    listener: std::net::TcpListener,
    app: Router,
    tls: &(String, String),
) -> Result<axum_server::Handle<SocketAddr>, DevIdpError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| DevIdpError(format!("{what}: {e}"));
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(tls.0.clone().into_bytes(), tls.1.clone().into_bytes())
        .await
        .map_err(|e| fail("TLS", &e))?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config).map_err(|e| fail("listen", &e))?.handle(handle.clone());
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    Ok(handle)
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
        for uri in &config.web_redirect_uris {
            authorize::check_redirect_uri(uri).map_err(|e| fail("web_redirect_uris", &e))?;
        }
        if let Some(agent) = &config.web_delegate
            && !config.clients.iter().any(|c| c.client_id == *agent)
        {
            return Err(DevIdpError(format!("web_delegate {agent:?} is not one of the registered clients")));
        }
        let inner = Arc::new(Inner {
            redirect_uris: Mutex::new(config.web_redirect_uris.clone()),
            config,
            base,
            signer,
            seen_jtis: Mutex::new(HashMap::new()),
            okta_nonce: format!("{}{}", rand_suffix(), rand_suffix()),
            token_log: Mutex::new(Vec::new()),
            codes: Mutex::new(HashMap::new()),
        });
        let verifier = inner.api_verifier(&ca_pem).map_err(|e| fail("demo API", &e))?;
        let delegated_verifier = inner.delegated_api_verifier(&ca_pem).map_err(|e| fail("delegated demo API", &e))?;
        // The demo API verifies as any API would: dual-auth-verify, keys from the JWKS above.
        let api = Router::new()
            .route("/api/{*path}", get(demo_api).post(demo_api))
            .layer(DualAuthLayer::new(verifier).realm("dual-auth-demo"))
            .with_state(Arc::clone(&inner));
        let delegated_api = Router::new()
            .route("/delegated-api/{*path}", get(delegation::delegated_api).post(delegation::delegated_api))
            .layer(DualAuthLayer::new(delegated_verifier).realm("dual-auth-demo"))
            .with_state(Arc::clone(&inner));
        let app = Router::new()
            .route("/realms/{realm}/protocol/openid-connect/token", post(keycloak_token))
            .route("/realms/{realm}/protocol/openid-connect/auth", get(authorize::authorize_page).post(authorize::authorize_login))
            .route("/realms/{realm}/protocol/openid-connect/certs", get(jwks))
            .route("/realms/{realm}/.well-known/openid-configuration", get(keycloak_discovery))
            .route("/oauth/token", post(auth0_token))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/oauth2/{server}/v1/token", post(okta_token))
            .route("/oauth2/{server}/v1/keys", get(jwks))
            .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
            .route("/{tenant}/discovery/v2.0/keys", get(jwks))
            .route("/dev/login", post(delegation::login))
            .with_state(Arc::clone(&inner))
            .merge(api)
            .merge(delegated_api);
        let tls = (cert_pem, key_pem);
        let handle = serve_tls(listener, app, &tls).await?;
        Ok(Self { inner, ca_pem, tls, handle })
    }

    /// Serves `app` on `listener` over HTTPS with this provider's `localhost` certificate
    /// (trusted through [`DevIdp::ca_pem`]): for a demo service whose URL must be known
    /// before the provider starts, such as an MCP server registered in
    /// [`DevIdpConfig::extra_apis`].
    ///
    /// # Errors
    /// [`DevIdpError`] when the listener cannot be used.
    pub async fn serve_beside(&self, listener: std::net::TcpListener, app: Router) -> Result<ServedBeside, DevIdpError> {
        listener.set_nonblocking(true).map_err(|e| DevIdpError(format!("listen: {e}")))?;
        Ok(ServedBeside { handle: serve_tls(listener, app, &self.tls).await? })
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

    /// Keycloak's authorization endpoint (`.../protocol/openid-connect/auth`): the login
    /// page of the authorization code flow with PKCE.
    pub fn keycloak_authorization_url(&self) -> String {
        self.inner.keycloak_authorization_url()
    }

    /// Keycloak's OpenID Connect discovery document
    /// (`.../realms/{realm}/.well-known/openid-configuration`).
    pub fn keycloak_discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.inner.issuer(Dialect::Keycloak))
    }

    /// The web client's secret ([`DevIdpConfig::web_client_secret`]).
    pub fn web_client_secret(&self) -> Option<&str> {
        self.inner.config.web_client_secret.as_deref()
    }

    /// Registers one more redirect URI of the web client, for instance once the web
    /// application's port is known. It is then compared as an exact string. A URI that is
    /// not absolute or carries a fragment (RFC 6749 §3.1.2) is never redirected to: a
    /// request naming it gets an error page saying why.
    pub fn allow_redirect_uri(&self, uri: &str) {
        let mut uris = self.inner.redirect_uris.lock().unwrap_or_else(PoisonError::into_inner);
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
    }

    /// The web client's redirect URIs: the configured ones, then those added with
    /// [`DevIdp::allow_redirect_uri`].
    pub fn web_redirect_uris(&self) -> Vec<String> {
        self.inner.redirect_uris.lock().unwrap_or_else(PoisonError::into_inner).clone()
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

    /// The delegated demo API's base URL (`.../delegated-api`): tokens from the delegation
    /// grants (`sub` = the human, the agent as the client), verified with
    /// [`dual_auth_verify::Layout::Delegated`]. It answers JSON `{vendor, agent, human, act,
    /// chain, vouched_by}`.
    pub fn delegated_api_url(&self) -> String {
        format!("{}/delegated-api", self.inner.base)
    }

    /// The development login endpoint (`POST`, form `vendor`, `username`, `client_id`,
    /// optional `lifetime`): see [`DevIdp::login`].
    pub fn login_url(&self) -> String {
        format!("{}/dev/login", self.inner.base)
    }

    /// Keycloak's realm URL (its issuer): the `aud` of JWT authorization grant assertions.
    pub fn keycloak_realm_url(&self) -> String {
        self.inner.issuer(Dialect::Keycloak)
    }

    /// The issuer of `vendor` (`keycloak`, `auth0`, `okta`, `entraid`).
    ///
    /// # Errors
    /// [`DevIdpError`] for another vendor name.
    pub fn issuer(&self, vendor: &str) -> Result<String, DevIdpError> {
        Ok(self.inner.issuer(Dialect::from_name(vendor).ok_or_else(|| DevIdpError(format!("unknown vendor {vendor:?}")))?))
    }

    /// What `POST /dev/login` answers, in process: `username` logs in to the web
    /// application and delegates to the agent `client_id`; the tokens are shaped as
    /// `vendor` issues them. `lifetime` in seconds (default 300, at most 3600; 0 gives a
    /// token that has already expired, to test refusals).
    ///
    /// # Errors
    /// [`DevIdpError`] for an unknown vendor, user or client, or a lifetime over 3600.
    pub fn login(&self, vendor: &str, username: &str, client_id: &str, lifetime: Option<u64>) -> Result<LoginTokens, DevIdpError> {
        self.inner.login(vendor, username, client_id, lifetime).map_err(DevIdpError)
    }

    /// The configuration served.
    pub fn config(&self) -> &DevIdpConfig {
        &self.inner.config
    }

    /// The token-endpoint requests so far (the last 1000), oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequestRecord> {
        self.inner.token_log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The Okta dialect's current DPoP nonce: what its `use_dpop_nonce` answers hand out in
    /// `DPoP-Nonce` and its proofs must carry.
    pub fn okta_dpop_nonce(&self) -> &str {
        &self.inner.okta_nonce
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

/// An OAuth error in a vendor's JSON shape, with a `DPoP-Nonce` header for
/// `use_dpop_nonce`.
struct OAuthError {
    status: StatusCode,
    body: Value,
    dpop_nonce: Option<String>,
    /// An authorization code presented again (for the token log).
    code_replayed: bool,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("dpop-nonce", nonce);
            response.headers_mut().insert("cache-control", HeaderValue::from_static("no-store"));
        }
        response
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
    OAuthError { status, body, dpop_nonce: None, code_replayed: false }
}

impl Dialect {
    const ALL: [Dialect; 4] = [Dialect::Keycloak, Dialect::Auth0, Dialect::Okta, Dialect::Entra];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

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
            // DPoP proofs name the API's URL on this origin.
            .public_origin(&self.base)
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

    /// The vendor name of an issuer URL (`unknown` for another).
    fn vendor_of(&self, issuer: &str) -> &'static str {
        Dialect::ALL.into_iter().find(|d| self.issuer(*d) == issuer).map_or("unknown", Dialect::name)
    }

    fn issuer(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Keycloak => format!("{}/realms/{}", self.base, self.config.realm),
            Dialect::Auth0 => format!("{}/", self.base),
            Dialect::Okta => format!("{}/oauth2/{}", self.base, self.config.okta_server),
            Dialect::Entra => format!("{}/{}/v2.0", self.base, self.config.tenant),
        }
    }

    /// Keycloak's client-assertion audiences: the realm URL or the token URL.
    fn keycloak_assertion_audiences(&self) -> [String; 2] {
        let realm_url = self.issuer(Dialect::Keycloak);
        [realm_url.clone(), format!("{realm_url}/protocol/openid-connect/token")]
    }

    /// Okta's token URL (its client-assertion audience).
    fn okta_token_url(&self) -> String {
        format!("{}/v1/token", self.issuer(Dialect::Okta))
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

    /// The agent's own token (client credentials), bound to `jkt` when a DPoP proof came.
    fn issue(
        &self,
        dialect: Dialect,
        client_id: &str,
        audience: &str,
        scope: &str,
        act: Option<Value>,
        jkt: Option<&str>,
    ) -> Result<Json<Value>, OAuthError> {
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
        dpop::bind(&mut claims, jkt);
        let token = self
            .signer
            .sign(&claims)
            .map_err(|_| oauth_error(dialect, StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing failed"))?;
        Ok(Json(match dialect {
            Dialect::Entra => {
                json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME, "access_token": token})
            }
            _ => json!({"access_token": token, "token_type": dpop::token_type(jkt), "expires_in": TOKEN_LIFETIME, "scope": scope}),
        }))
    }
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    let _ = openssl::rand::rand_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The grant types each dialect takes.
fn grant_types(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Keycloak => &["client_credentials", TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT, authorize::AUTHORIZATION_CODE_GRANT],
        Dialect::Auth0 | Dialect::Okta => &["client_credentials", TOKEN_EXCHANGE_GRANT],
        Dialect::Entra => &["client_credentials", JWT_BEARER_GRANT],
    }
}

/// The request's grant type, one the dialect takes.
fn require_grant(dialect: Dialect, form: &HashMap<String, String>) -> Result<&'static str, OAuthError> {
    let grant = form.get("grant_type").map(String::as_str).unwrap_or_default();
    grant_types(dialect).iter().copied().find(|g| *g == grant).ok_or_else(|| {
        oauth_error(
            dialect,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type must be one of {}", grant_types(dialect).join(", ")),
        )
    })
}

fn require_scope(dialect: Dialect, form: &HashMap<String, String>) -> Result<String, OAuthError> {
    form.get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .ok_or_else(|| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_scope", "scope is required"))
}

impl Inner {
    /// Records a token request and what it was answered.
    fn record(&self, dialect: Dialect, headers: &HeaderMap, form: &HashMap<String, String>, answer: &Result<Json<Value>, OAuthError>) {
        let proof = headers.get("dpop").and_then(|v| v.to_str().ok()).and_then(|p| jwt::decode(p.trim()).ok());
        let (status, error, dpop_nonce, token_type, code_replayed) = match answer {
            Ok(Json(body)) => (200, None, None, body.get("token_type").and_then(Value::as_str).map(str::to_owned), false),
            Err(e) => (
                e.status.as_u16(),
                e.body.get("error").and_then(Value::as_str).map(str::to_owned),
                e.dpop_nonce.clone(),
                None,
                e.code_replayed,
            ),
        };
        let record = TokenRequestRecord {
            vendor: dialect.name(),
            grant_type: form.get("grant_type").cloned().unwrap_or_default(),
            dpop_proof: headers.contains_key("dpop"),
            proof_nonce: proof.as_ref().and_then(|p| p.str_claim("nonce")).map(str::to_owned),
            status,
            error,
            dpop_nonce,
            token_type,
            code_replayed,
        };
        let mut log = self.token_log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= MAX_RECORDS {
            log.remove(0);
        }
        log.push(record);
    }

    /// Keycloak's token URL.
    fn keycloak_token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer(Dialect::Keycloak))
    }

    /// Keycloak's authorization endpoint.
    fn keycloak_authorization_url(&self) -> String {
        format!("{}/protocol/openid-connect/auth", self.issuer(Dialect::Keycloak))
    }
}

async fn keycloak_token(
    State(idp): State<Arc<Inner>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let answer = keycloak_answer(&idp, &realm, &headers, &form);
    idp.record(Dialect::Keycloak, &headers, &form, &answer);
    answer
}

fn keycloak_answer(idp: &Inner, realm: &str, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Keycloak;
    if realm != idp.config.realm {
        return Err(oauth_error(dialect, StatusCode::NOT_FOUND, "invalid_request", "Realm does not exist"));
    }
    let grant = require_grant(dialect, form)?;
    // Keycloak binds any grant's token when a proof comes (DPoPUtil, for every grant type).
    let jkt = idp.check_token_dpop(dialect, headers, &idp.keycloak_token_url())?;
    let jkt = jkt.as_deref();
    match grant {
        TOKEN_EXCHANGE_GRANT => return delegation::keycloak_token_exchange(idp, form, jkt),
        JWT_BEARER_GRANT => return delegation::keycloak_authorization_grant(idp, form, jkt),
        authorize::AUTHORIZATION_CODE_GRANT => return authorize::keycloak_code_exchange(idp, headers, form, jkt),
        _ => {}
    }
    let scope = require_scope(dialect, form)?;
    let (client, act) = idp.authenticate(dialect, form, &idp.keycloak_assertion_audiences())?;
    idp.issue(dialect, &client, &idp.config.api_audience, &scope, act, jkt)
}

async fn auth0_token(
    State(idp): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let answer = auth0_answer(&idp, &headers, &form);
    idp.record(Dialect::Auth0, &headers, &form, &answer);
    answer
}

fn auth0_answer(idp: &Inner, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Auth0;
    let grant = require_grant(dialect, form)?;
    let jkt = idp.check_token_dpop(dialect, headers, &format!("{}/oauth/token", idp.base))?;
    let jkt = jkt.as_deref();
    if grant == TOKEN_EXCHANGE_GRANT {
        return delegation::auth0_token_exchange(idp, form, jkt);
    }
    if form.get("audience") != Some(&idp.config.api_audience) {
        return Err(oauth_error(dialect, StatusCode::FORBIDDEN, "access_denied", "Service not found: audience is not a registered API"));
    }
    if !form.contains_key("client_id") {
        return Err(oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_request", "client_id is required"));
    }
    let (client, act) = idp.authenticate(dialect, form, &[idp.issuer(dialect)])?;
    let scope = form.get("scope").cloned().unwrap_or_default();
    idp.issue(dialect, &client, &idp.config.api_audience, &scope, act, jkt)
}

async fn okta_token(
    State(idp): State<Arc<Inner>>,
    Path(server): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let answer = okta_answer(&idp, &server, &headers, &form);
    idp.record(Dialect::Okta, &headers, &form, &answer);
    answer
}

fn okta_answer(idp: &Inner, server: &str, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Okta;
    if server != idp.config.okta_server {
        return Err(oauth_error(dialect, StatusCode::NOT_FOUND, "invalid_request", "Not found: authorization server"));
    }
    let grant = require_grant(dialect, form)?;
    // Before the client is authenticated: a nonce challenge uses up no client assertion.
    let jkt = idp.check_token_dpop(dialect, headers, &idp.okta_token_url())?;
    let jkt = jkt.as_deref();
    if grant == TOKEN_EXCHANGE_GRANT {
        return delegation::okta_token_exchange(idp, form, jkt);
    }
    let scope = require_scope(dialect, form)?;
    let (client, act) = idp.authenticate(dialect, form, &[idp.okta_token_url()])?;
    idp.issue(dialect, &client, &idp.config.api_audience, &scope, act, jkt)
}

/// Entra ID: a `DPoP` header is ignored and the token is a bearer token, as Entra ID does
/// not do RFC 9449 DPoP (its proof-of-possession is Signed HTTP Request, not this).
async fn entra_token(
    State(idp): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, OAuthError> {
    let answer = entra_answer(&idp, &tenant, &form);
    idp.record(Dialect::Entra, &headers, &form, &answer);
    answer
}

fn entra_answer(idp: &Inner, tenant: &str, form: &HashMap<String, String>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Entra;
    if tenant != idp.config.tenant {
        return Err(oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", "Tenant not found"));
    }
    if require_grant(dialect, form)? == JWT_BEARER_GRANT {
        return delegation::entra_on_behalf_of(idp, form);
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let secret_ok = idp.client(&client_id).and_then(|c| c.secret.as_ref()).is_some_and(|s| Some(s) == form.get("client_secret"));
    if !secret_ok {
        return Err(oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client secret provided."));
    }
    let scope = require_scope(dialect, form)?;
    let resource = scope
        .strip_suffix("/.default")
        .filter(|r| *r == idp.config.entra_api)
        .ok_or_else(|| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_scope", "The scope must be the API's /.default scope"))?
        .to_owned();
    idp.issue(dialect, &client_id, &resource, &scope, None, None)
}

async fn jwks(State(idp): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({"keys": [idp.signer.jwk().unwrap_or(Value::Null)]}))
}

async fn keycloak_discovery(State(idp): State<Arc<Inner>>) -> Json<Value> {
    let issuer = idp.issuer(Dialect::Keycloak);
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": idp.keycloak_authorization_url(),
        "token_endpoint": idp.keycloak_token_url(),
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
        "grant_types_supported": grant_types(Dialect::Keycloak),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": [jwt::SIGNING_ALGORITHM],
        "subject_types_supported": ["public"],
        "scopes_supported": delegation::LOGIN_SCOPE.split_whitespace().collect::<Vec<_>>(),
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_jwt", "private_key_jwt", "client_secret_basic", "client_secret_post"],
        "dpop_signing_alg_values_supported": dpop::PROOF_ALGORITHMS,
    }))
}

/// The protected demo API, behind [`DualAuthLayer`]: answers with the agent and the human
/// the verified token (and, for Entra ID, act assertion) named.
async fn demo_api(State(idp): State<Arc<Inner>>, subject: DualSubject) -> Json<Value> {
    let vendor = idp.vendor_of(&subject.issuer);
    Json(json!({
        "vendor": vendor,
        "agent": subject.agent.id(),
        "human": subject.human.sub(),
        "act": subject.human.to_value(),
        "chain": subject.chain,
        "dpop_jkt": subject.dpop_jkt,
    }))
}
