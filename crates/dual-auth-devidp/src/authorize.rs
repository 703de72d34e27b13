//! The browser login, in the Keycloak dialect only: Keycloak's authorization endpoint
//! (`/realms/{realm}/protocol/openid-connect/auth`) for the OAuth 2.0 authorization code
//! grant (RFC 6749 §4.1) with PKCE S256 (RFC 7636) and the `iss` response parameter
//! (RFC 9207), and the code exchange at Keycloak's token endpoint, which issues the
//! OpenID Connect tokens (OIDC Core §3.1).
//!
//! The checks run in Keycloak's order, with Keycloak's texts where it has them. Before the
//! client and its redirect URI are known good, an error is a page and never a redirect
//! (RFC 6749 §4.1.2.1); after, it goes back to the redirect URI. The login form's hidden
//! fields are checked again when it is posted. A code is 32 random bytes, single use,
//! valid [`CODE_LIFETIME`] seconds, bound to the client, redirect URI, PKCE challenge,
//! nonce, user and login time (the scope granted is always Keycloak's default one).
//!
//! Not emulated: a consent screen, an SSO session (no cookie: every authorization request
//! shows the login page, and `prompt=none` answers `login_required`), refresh tokens,
//! RP-initiated logout, `response_mode` other than `query`, request objects.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, PoisonError};

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dual_auth_core::escape_html;
use serde_json::{Value, json};

use crate::delegation::{LOGIN_LIFETIME, string_form};
use crate::{DemoUser, Dialect, Inner, OAuthError, dpop, now, oauth_error};

/// The authorization code grant type (RFC 6749 §4.1.3).
pub(crate) const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
/// Seconds an authorization code stays valid (Keycloak's default code lifespan is 60 s).
const CODE_LIFETIME: u64 = 60;
/// The most codes kept at once (used ones are kept until they expire, to see replays).
const MAX_CODES: usize = 1000;
/// The request parameters the login form carries back, as hidden inputs.
const FORM_PARAMETERS: [&str; 8] =
    ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"];
/// The parameters refused when sent twice (RFC 6749 §3.1).
const SINGLE_PARAMETERS: [&str; 15] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "login_hint",
    "request",
    "request_uri",
    "username",
    "password",
];
/// Keycloak's message for a failed login.
const INVALID_CREDENTIALS: &str = "Invalid username or password.";
/// Keycloak's message for failed client authentication.
const INVALID_CLIENT: &str = "Invalid client or Invalid client credentials";

/// An authorization code as issued, kept by the SHA-256 of the code.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    user_id: String,
    auth_time: u64,
    expires_at: u64,
    used: bool,
}

/// Whether `uri` can be registered as a redirect URI: absolute, without a fragment
/// (RFC 6749 §3.1.2).
pub(crate) fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.contains('#') {
        return Err(format!("the redirect URI {uri} has a fragment"));
    }
    url::Url::parse(uri).map(|_| ()).map_err(|e| format!("the redirect URI {uri} is not an absolute URL: {e}"))
}

/// A request's parameters. An empty value counts as absent and a parameter sent twice is
/// remembered to be refused (RFC 6749 §3.1).
struct Params {
    values: HashMap<String, String>,
    repeated: Option<&'static str>,
}

impl Params {
    fn new(pairs: Vec<(String, String)>) -> Self {
        let mut values = HashMap::new();
        let mut repeated = None;
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            match values.entry(name) {
                Entry::Occupied(seen) => {
                    repeated = repeated.or_else(|| SINGLE_PARAMETERS.iter().copied().find(|p| p == seen.key()));
                }
                Entry::Vacant(new) => {
                    new.insert(value);
                }
            }
        }
        Self { values, repeated }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// An error shown as a page, never sent to the redirect URI (the client or the URI is not
/// trusted).
struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// Where the answer goes: a registered redirect URI, with the request's `state`.
struct Target {
    redirect_uri: String,
    state: Option<String>,
}

/// An error returned at the redirect URI (RFC 6749 §4.1.2.1).
struct Refusal {
    error: &'static str,
    description: &'static str,
}

fn refusal(error: &'static str, description: &'static str) -> Refusal {
    Refusal { error, description }
}

/// An authorization request that passed every check. Its scope is not kept: Keycloak
/// grants `openid` and its default client scopes (`profile`, `email`) whatever else is
/// asked, and drops scopes it does not know, so the tokens' scope is always the same.
struct Checked {
    nonce: Option<String>,
    code_challenge: String,
}

/// The checks before anything may go to the redirect URI: the realm, the client (and its
/// set-up here), the redirect URI.
fn check_client(idp: &Inner, realm: &str, params: &Params) -> Result<Target, PageError> {
    if realm != idp.config.realm {
        return Err(PageError::new(StatusCode::NOT_FOUND, "Realm does not exist."));
    }
    let bad = |message: String| PageError::new(StatusCode::BAD_REQUEST, message);
    if params.repeated == Some("client_id") {
        return Err(bad("Invalid parameter: client_id".into()));
    }
    let client = params.get("client_id").ok_or_else(|| bad("Missing parameter: client_id".into()))?;
    if client != idp.config.web_client_id {
        return Err(bad("Client not found.".into()));
    }
    if idp.config.web_client_secret.is_none() {
        return Err(bad(format!(
            "The web client {client} has no client secret configured (DevIdpConfig::web_client_secret): it could not exchange a code."
        )));
    }
    idp.web_delegate().map_err(bad)?;
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|_| params.repeated != Some("redirect_uri"))
        .filter(|uri| idp.redirect_uris.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|r| r == uri))
        .ok_or_else(|| bad("Invalid parameter: redirect_uri".into()))?;
    // A URI registered at run time is checked here, where the mistake can be shown.
    check_redirect_uri(redirect_uri).map_err(|e| bad(format!("Invalid parameter: redirect_uri ({e}; RFC 6749 section 3.1.2)")))?;
    Ok(Target { redirect_uri: redirect_uri.to_owned(), state: params.get("state").map(str::to_owned) })
}

/// The checks whose errors go back to the client, in Keycloak's order.
fn check_request(params: &Params) -> Result<Checked, Refusal> {
    let invalid = |description| refusal("invalid_request", description);
    if params.repeated.is_some() {
        return Err(invalid("A parameter was sent more than once (RFC 6749 section 3.1)."));
    }
    match params.get("response_type") {
        None => return Err(invalid("Missing parameter: response_type")),
        Some("code") => {}
        Some(_) => return Err(refusal("unsupported_response_type", "Only response_type code (the authorization code flow) is supported.")),
    }
    if params.get("response_mode").is_some_and(|mode| mode != "query") {
        return Err(invalid("Invalid parameter: response_mode (only query is supported here)"));
    }
    if params.get("request").is_some() {
        return Err(refusal("request_not_supported", "Request objects are not supported here."));
    }
    if params.get("request_uri").is_some() {
        return Err(refusal("request_uri_not_supported", "Request URIs are not supported here."));
    }
    let scope = params.get("scope").unwrap_or_default();
    if !scope.split_whitespace().any(|s| s == "openid") {
        return Err(refusal("invalid_scope", "Invalid scopes: the openid scope is required."));
    }
    match params.get("code_challenge_method") {
        None => return Err(invalid("Missing parameter: code_challenge_method")),
        Some("S256") => {}
        Some(_) => return Err(invalid("Invalid parameter: code_challenge_method")),
    }
    let code_challenge = params.get("code_challenge").ok_or_else(|| invalid("Missing parameter: code_challenge"))?;
    // BASE64URL(SHA-256(verifier)): exactly 43 characters, 32 bytes (RFC 7636 §4.2).
    if code_challenge.len() != 43 || !URL_SAFE_NO_PAD.decode(code_challenge).is_ok_and(|digest| digest.len() == 32) {
        return Err(invalid("Invalid parameter: code_challenge"));
    }
    if params.get("prompt").is_some_and(|prompt| prompt.split_whitespace().any(|p| p == "none")) {
        return Err(refusal("login_required", "There is no session here: the user must log in."));
    }
    Ok(Checked { nonce: params.get("nonce").map(str::to_owned), code_challenge: code_challenge.to_owned() })
}

/// `GET /realms/{realm}/protocol/openid-connect/auth`: the login page, or the request's
/// error.
pub(crate) async fn authorize_page(
    State(idp): State<Arc<Inner>>,
    Path(realm): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    match checked(&idp, &realm, pairs) {
        Ok((params, target, _)) => login_page(&idp, &target, &params, params.get("login_hint"), false),
        Err(answer) => *answer,
    }
}

/// The request checked for its client and redirect URI, then for the rest; the page or
/// redirect to answer instead when a check fails.
fn checked(idp: &Inner, realm: &str, pairs: Vec<(String, String)>) -> Result<(Params, Target, Checked), Box<Response>> {
    let params = Params::new(pairs);
    let target = check_client(idp, realm, &params).map_err(|error| Box::new(error_page(&error)))?;
    let checked = check_request(&params).map_err(|refused| Box::new(refuse(idp, &target, &refused)))?;
    Ok((params, target, checked))
}

/// `POST` to the same path: the login form. Every check runs again on what was posted;
/// wrong credentials show the page again, right ones send a code to the redirect URI.
pub(crate) async fn authorize_login(
    State(idp): State<Arc<Inner>>,
    Path(realm): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (params, target, checked) = match checked(&idp, &realm, pairs) {
        Ok(checked) => checked,
        Err(answer) => return *answer,
    };
    let username = params.get("username");
    let Some(user) = username.and_then(|name| idp.config.users.iter().find(|u| u.username == name)).filter(|user| {
        let given = params.get("password").unwrap_or_default().as_bytes();
        !given.is_empty() && given.len() == user.password.len() && openssl::memcmp::eq(given, user.password.as_bytes())
    }) else {
        return login_page(&idp, &target, &params, username, true);
    };
    match idp.issue_code(&target, checked, user) {
        Ok(code) => redirect(&idp, &target, &[("code", &code)]),
        Err(refused) => refuse(&idp, &target, &refused),
    }
}

impl Inner {
    /// The agent the browser login's tokens are for: [`crate::DevIdpConfig::web_delegate`]
    /// or the first registered client.
    pub(crate) fn web_delegate(&self) -> Result<&str, String> {
        match &self.config.web_delegate {
            Some(agent) if self.client(agent).is_some() => Ok(agent),
            Some(agent) => Err(format!("web_delegate {agent:?} is not a registered client.")),
            None => self
                .config
                .clients
                .first()
                .map(|c| c.client_id.as_str())
                .ok_or_else(|| "No client is registered for the login's tokens to delegate to (DevIdpConfig::clients).".into()),
        }
    }

    /// A new code for `user`'s login, remembered with what it is bound to.
    fn issue_code(&self, target: &Target, checked: Checked, user: &DemoUser) -> Result<String, Refusal> {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes).map_err(|_| refusal("server_error", "No random bytes for a code."))?;
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let now = now();
        let issued = IssuedCode {
            client_id: self.config.web_client_id.clone(),
            redirect_uri: target.redirect_uri.clone(),
            code_challenge: checked.code_challenge,
            nonce: checked.nonce,
            user_id: user.id.clone(),
            auth_time: now,
            expires_at: now.saturating_add(CODE_LIFETIME),
            used: false,
        };
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, c| c.expires_at > now);
        if codes.len() >= MAX_CODES {
            return Err(refusal("temporarily_unavailable", "Too many outstanding codes: try again in a minute."));
        }
        codes.insert(openssl::sha::sha256(code.as_bytes()), issued);
        Ok(code)
    }

    /// The code's binding, and the code burnt: a second use is refused whatever the first
    /// one's outcome (RFC 6749 §4.1.2).
    fn redeem_code(&self, code: &str) -> Result<IssuedCode, OAuthError> {
        let not_valid = || oauth_error(Dialect::Keycloak, StatusCode::BAD_REQUEST, "invalid_grant", "Code not valid");
        let now = now();
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, c| c.expires_at > now);
        match codes.get_mut(&openssl::sha::sha256(code.as_bytes())) {
            None => Err(not_valid()),
            Some(issued) if issued.used => Err(OAuthError { code_replayed: true, ..not_valid() }),
            Some(issued) => {
                issued.used = true;
                Ok(issued.clone())
            }
        }
    }
}

/// The `Authorization: Basic` credentials (RFC 6749 §2.3.1: both parts form-urlencoded),
/// if the header came.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(header::AUTHORIZATION) { Err("more than one Authorization header") } else { Ok(None) };
    };
    let value = value.to_str().map_err(|_| "the Authorization header is not text")?;
    let encoded = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim())
        .ok_or("the Authorization header is not Basic")?;
    let decoded = STANDARD.decode(encoded).map_err(|_| "the Basic credentials are not base64")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "the Basic credentials are not UTF-8")?;
    let (id, secret) = decoded.split_once(':').ok_or("the Basic credentials have no colon")?;
    match (form_decoded(id), form_decoded(secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => Err("the Basic credentials are not form-urlencoded"),
    }
}

/// One `application/x-www-form-urlencoded` component, decoded; `None` when it holds an
/// unencoded `&` or `=`.
fn form_decoded(component: &str) -> Option<String> {
    if component.contains(['&', '=']) {
        return None;
    }
    Some(url::form_urlencoded::parse(component.as_bytes()).next().map(|(name, _)| name.into_owned()).unwrap_or_default())
}

/// Authenticates the web client by `client_secret_basic` or `client_secret_post`, one of
/// them only (RFC 6749 §2.3).
fn authenticate_web_client(idp: &Inner, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<(), OAuthError> {
    let dialect = Dialect::Keycloak;
    let denied = |description: &str| oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_client", description);
    let basic = basic_credentials(headers).map_err(|problem| denied(&format!("Invalid client credentials: {problem}")))?;
    let posted = form.get("client_secret");
    let assertion = form.contains_key("client_assertion");
    if usize::from(basic.is_some()) + usize::from(posted.is_some()) + usize::from(assertion) > 1 {
        return Err(oauth_error(
            dialect,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The web client authenticates with one method only: client_secret_basic or client_secret_post (RFC 6749 section 2.3).",
        ));
    }
    if assertion {
        return Err(denied("The web client authenticates with its client secret (client_secret_basic or client_secret_post)"));
    }
    let (client_id, secret) = match (basic, posted) {
        (Some((id, secret)), _) => {
            if form.get("client_id").is_some_and(|form_id| *form_id != id) {
                return Err(denied("client_id does not match the Authorization header"));
            }
            (id, secret)
        }
        (None, Some(secret)) => (form.get("client_id").cloned().ok_or_else(|| denied("Missing parameter: client_id"))?, secret.clone()),
        (None, None) => return Err(denied("Client secret not provided in request")),
    };
    let expected = idp.config.web_client_secret.as_deref().unwrap_or_default().as_bytes();
    let secret_ok = !expected.is_empty() && secret.len() == expected.len() && openssl::memcmp::eq(secret.as_bytes(), expected);
    if client_id != idp.config.web_client_id || !secret_ok {
        return Err(denied(INVALID_CLIENT));
    }
    Ok(())
}

/// Whether `verifier` matches `challenge`: 43 to 128 unreserved characters (RFC 7636
/// §4.1) whose BASE64URL(SHA-256) is the challenge (§4.6).
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    // OpenSSL directly, not core's pkce_s256_challenge: the provider checks the clients with code of its own.
    let computed = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    well_formed && computed.len() == challenge.len() && openssl::memcmp::eq(computed.as_bytes(), challenge.as_bytes())
}

/// OIDC Core §3.1.3.6 `at_hash`: the left half of the access token's SHA-256, base64url.
fn at_hash(access_token: &str) -> String {
    let digest = openssl::sha::sha256(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// `grant_type=authorization_code` at Keycloak's token endpoint: the web client's code
/// for the access token (as `POST /dev/login` shapes it, for the delegate agent) and the
/// ID token (with `nonce`, `auth_time`, `at_hash`). The access token is bound to `jkt`
/// when a DPoP proof came, as Keycloak binds every grant's.
pub(crate) fn keycloak_code_exchange(
    idp: &Inner,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    jkt: Option<&str>,
) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Keycloak;
    let grant = |description: &str| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_grant", description);
    let server = |description: &str| oauth_error(dialect, StatusCode::INTERNAL_SERVER_ERROR, "server_error", description);
    authenticate_web_client(idp, headers, form)?;
    let code = string_form(form, "code")
        .ok_or_else(|| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", "Missing parameter: code"))?;
    let issued = idp.redeem_code(code)?;
    if issued.client_id != idp.config.web_client_id || form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return Err(grant("Incorrect redirect_uri"));
    }
    let verifier = string_form(form, "code_verifier").ok_or_else(|| grant("PKCE code verifier not specified"))?;
    if !verifier_matches(verifier, &issued.code_challenge) {
        return Err(grant("PKCE verification failed: Code mismatch"));
    }
    let user = idp.config.users.iter().find(|u| u.id == issued.user_id).ok_or_else(|| grant("User not found"))?;
    let agent = idp.web_delegate().map_err(|e| server(&e))?;
    let (mut access, mut id) = idp.login_claims(dialect, user, agent, LOGIN_LIFETIME);
    dpop::bind(&mut access, jkt);
    let access_token = idp.sign_access(dialect, &access)?;
    if let Some(nonce) = issued.nonce {
        id["nonce"] = json!(nonce);
    }
    id["auth_time"] = json!(issued.auth_time);
    id["at_hash"] = json!(at_hash(&access_token));
    let id_token = idp.signer.sign_typed(&id, "JWT").map_err(|_| server("signing failed"))?;
    Ok(Json(json!({
        "access_token": access_token, "id_token": id_token, "token_type": dpop::token_type(jkt), "expires_in": LOGIN_LIFETIME,
        "scope": access["scope"],
    })))
}

/// A redirect to the target with `pairs`, the `state` and RFC 9207's `iss` added to the
/// URI's own query.
fn redirect(idp: &Inner, target: &Target, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(&target.redirect_uri) else {
        return error_page(&PageError::new(StatusCode::BAD_REQUEST, "Invalid parameter: redirect_uri"));
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = &target.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &idp.issuer(Dialect::Keycloak));
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return error_page(&PageError::new(StatusCode::BAD_REQUEST, "Invalid parameter: redirect_uri"));
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The error sent back to the client.
fn refuse(idp: &Inner, target: &Target, refused: &Refusal) -> Response {
    redirect(idp, target, &[("error", refused.error), ("error_description", refused.description)])
}

/// The CSP `form-action` sources of the login page: this origin and the redirect URI's,
/// which the form's answer redirects to (browsers check redirects against `form-action`).
fn form_action_sources(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) => match url.origin() {
            origin @ url::Origin::Tuple(..) => format!("'self' {}", origin.ascii_serialization()),
            url::Origin::Opaque(_) => format!("'self' {}:", url.scheme()),
        },
        Err(_) => "'self'".into(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}\
main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem}\
h1{font-size:1.4rem;margin:0}label,input{display:block;width:100%;box-sizing:border-box}\
input{margin:.25rem 0 1rem;padding:.5rem}#input-error{display:block;color:#b91c1c;margin:1rem 0}\
.note{color:#4b5563;font-size:.9rem}";

/// An HTML document with the headers every page here gets.
fn html(status: StatusCode, title: &str, main: &str, form_action: &str) -> Response {
    let document = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n{main}</main>\n</body>\n</html>\n"
    );
    let policy = |form_action: &str| {
        format!("default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'")
    };
    let csp = HeaderValue::from_str(&policy(form_action)).or_else(|_| HeaderValue::from_str(&policy("'self'")));
    let mut response = (status, document).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(csp) = csp {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Keycloak's error page: "We are sorry..." and the message.
fn error_page(error: &PageError) -> Response {
    let main = format!("<h1 id=\"kc-page-title\">We are sorry...</h1>\n<p id=\"kc-error-message\">{}</p>\n", escape_html(&error.message));
    html(error.status, "Error", &main, "'none'")
}

/// The login page (status 200, as Keycloak's, also after wrong credentials): the realm,
/// the client, the demo users' names, and Keycloak's form ids.
fn login_page(idp: &Inner, target: &Target, params: &Params, username: Option<&str>, failed: bool) -> Response {
    let realm = escape_html(&idp.config.realm);
    let client = escape_html(&idp.config.web_client_id);
    let action = escape_html(&format!("/realms/{}/protocol/openid-connect/auth", idp.config.realm));
    let hidden: String = FORM_PARAMETERS
        .iter()
        .filter_map(|name| {
            params.get(name).map(|value| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n", escape_html(value)))
        })
        .collect();
    let users: String = idp.config.users.iter().map(|u| format!("<li>{}</li>\n", escape_html(&u.username))).collect();
    let error =
        if failed { format!("<span id=\"input-error\" aria-live=\"polite\">{INVALID_CREDENTIALS}</span>\n") } else { String::new() };
    let username = escape_html(username.unwrap_or_default());
    let main = format!(
        "<h1 id=\"kc-page-title\">Sign in to {realm}</h1>\n<p id=\"kc-client\">for {client}</p>\n{error}\
         <form id=\"kc-form-login\" method=\"post\" action=\"{action}\">\n{hidden}\
         <label for=\"username\">Username</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" value=\"{username}\" autocomplete=\"username\" autofocus>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\n\
         <input type=\"submit\" id=\"kc-login\" name=\"login\" value=\"Sign In\">\n</form>\n\
         <p class=\"note\">Development identity provider, never production. Demo users:</p>\n\
         <ul id=\"demo-users\">\n{users}</ul>\n"
    );
    html(StatusCode::OK, &format!("Sign in to {realm}"), &main, &form_action_sources(&target.redirect_uri))
}
