//! Delegation: the development login that gives a user's tokens, each vendor's
//! delegation grant (the evidence checked strictly, the token issued in that vendor's
//! shape), and the delegated demo API.
//!
//! `POST /dev/login` is a development convenience: it asks for no password and shows no
//! page; it hands out the tokens the web application would hold after a real login (the
//! Keycloak dialect's authorization endpoint, in `authorize`, is one, and issues the same
//! tokens). Its access tokens record the user's consent to one agent:
//! Keycloak and Entra ID put the agent's client id in `aud` (as their audience mapper and
//! app registration do), and the Keycloak, Auth0 and Okta tokens carry RFC 8693 §4.4
//! `may_act: {"sub": <agent>}` (Keycloak's experimental `token-exchange-delegation`
//! feature writes that claim; Auth0 and Okta document none, so there it is a development
//! addition). Every grant refuses evidence whose `may_act` names another agent.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dual_auth_core::ACCESS_TOKEN_TYPE;
use dual_auth_core::token_endpoint::HttpSettings;
use dual_auth_verify::{DualSubject, IssuerPolicy, Layout, Verifier};
use openssl::pkey::{Id, PKey};
use serde_json::{Map, Value, json};

use crate::{DemoUser, DevIdpError, Dialect, Inner, OAuthError, TOKEN_LIFETIME, dpop, jwt, now, oauth_error, rand_suffix, require_scope};

/// The default lifetime of the login's tokens: short, as a browser session's.
pub(crate) const LOGIN_LIFETIME: u64 = 300;
/// The scope of the login's tokens (Keycloak's default client scopes with `openid`).
pub(crate) const LOGIN_SCOPE: &str = "openid profile email";
/// The longest login lifetime accepted.
const MAX_LOGIN_LIFETIME: u64 = 3600;
/// Keycloak's `jwtAuthorizationGrantMaxAllowedAssertionExpiration` default.
const MAX_GRANT_ASSERTION_AGE: u64 = 300;
/// Auth0's longest delegation chain.
const MAX_AUTH0_CHAIN: usize = 5;

/// A user's tokens from the development login, as the vendor issues them to the web
/// application.
#[derive(Debug, Clone)]
pub struct LoginTokens {
    /// The access token: the evidence an agent exchanges.
    pub access_token: String,
    /// The ID token (for the web application: `aud` = its client id).
    pub id_token: String,
    /// Seconds until both expire.
    pub expires_in: u64,
}

/// The claims of an RFC 7523 §2.1 authorization grant assertion the application signs
/// for Keycloak's JWT authorization grant: `iss` = `app_id`, `sub` = the user's id at the
/// application ([`DemoUser::app_user_id`]), `aud` = `audience` (the realm URL or the
/// token URL), `iat`, `exp` = `iat` + `lifetime` seconds, a fresh `jti`.
pub fn authorization_grant_claims(app_id: &str, app_user_id: &str, audience: &str, lifetime: u64) -> Value {
    let now = now();
    json!({
        "iss": app_id, "sub": app_user_id, "aud": audience, "iat": now, "exp": now + lifetime,
        "jti": format!("grant-{now}-{}", rand_suffix()),
    })
}

/// Signs `claims` as the application would (RS256 with an RSA key; header `typ` `JWT`),
/// with OpenSSL directly: a development stand-in for the application's own signer.
///
/// # Errors
/// [`DevIdpError`] for a key that cannot be read or sign.
pub fn sign_app_assertion(app_private_key_pem: &[u8], claims: &Value) -> Result<String, DevIdpError> {
    let key = PKey::private_key_from_pem(app_private_key_pem).map_err(|e| DevIdpError(format!("application key: {e}")))?;
    match key.id() {
        Id::RSA => jwt::sign_rs256(&key, &json!({"alg": "RS256", "typ": "JWT"}), claims)
            .map_err(|e| DevIdpError(format!("signing the assertion: {e}"))),
        other => Err(DevIdpError(format!("application key type {other:?}: use an RSA key"))),
    }
}

/// Why evidence (a subject token or assertion issued by this provider) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Malformed,
    Signature,
    Issuer,
    Expired,
    NotAccessToken,
}

impl Problem {
    fn words(self) -> &'static str {
        match self {
            Problem::Malformed => "it is not a JWT",
            Problem::Signature => "its signature is invalid",
            Problem::Issuer => "it was issued by another issuer",
            Problem::Expired => "it has expired",
            Problem::NotAccessToken => "it is not an access token",
        }
    }
}

/// A form parameter, an empty value counting as absent.
pub(crate) fn string_form<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Whether `claims.aud` (a string or an array) names `wanted`.
fn audience_has(claims: &Map<String, Value>, wanted: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == wanted,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    }
}

/// RFC 8693 §4.4: `may_act`, when present, must name the requesting agent.
fn may_act_allows(claims: &Map<String, Value>, client: &str) -> bool {
    match claims.get("may_act") {
        None => true,
        Some(may_act) => may_act.get("sub").and_then(Value::as_str) == Some(client),
    }
}

fn act_depth(act: Option<&Value>) -> usize {
    let mut depth = 0;
    let mut current = act;
    while let Some(value) = current {
        depth += 1;
        current = value.get("act");
    }
    depth
}

/// Entra ID's pairwise `sub`: stable for one user, application and resource.
fn pairwise_sub(tenant: &str, oid: &str, client: &str, resource: &str) -> String {
    let digest = openssl::sha::sha256(format!("{tenant}|{oid}|{client}|{resource}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

impl Inner {
    /// The delegated demo API's verifier: the four issuers in the delegated layout (Entra
    /// ID's audience its API, the others the API audience), `at+jwt` tokens only.
    pub(crate) fn delegated_api_verifier(&self, ca_pem: &str) -> Result<Verifier, String> {
        let jwks = |path: String| format!("{}{path}", self.base);
        let policy = |dialect: Dialect, audience: &str, jwks_path: String| {
            IssuerPolicy::new(self.issuer(dialect), audience).jwks_url(jwks(jwks_path)).require_type("at+jwt").layout(Layout::Delegated)
        };
        let api = &self.config.api_audience;
        Verifier::builder()
            .http(HttpSettings { extra_root_certificates_pem: Some(ca_pem.as_bytes().to_vec()), ..HttpSettings::default() })
            .public_origin(&self.base)
            .issuer(policy(Dialect::Keycloak, api, format!("/realms/{}/protocol/openid-connect/certs", self.config.realm)))
            .issuer(policy(Dialect::Auth0, api, "/.well-known/jwks.json".into()))
            .issuer(policy(Dialect::Okta, api, format!("/oauth2/{}/v1/keys", self.config.okta_server)))
            .issuer(policy(Dialect::Entra, &self.config.entra_api, format!("/{}/discovery/v2.0/keys", self.config.tenant)))
            .build()
            .map_err(|e| e.to_string())
    }

    pub(crate) fn sign_access(&self, dialect: Dialect, claims: &Value) -> Result<String, OAuthError> {
        self.signer.sign(claims).map_err(|_| oauth_error(dialect, StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing failed"))
    }

    /// A user's access and ID tokens, shaped as `vendor` issues them to the web client.
    pub(crate) fn login(&self, vendor: &str, username: &str, agent: &str, lifetime: Option<u64>) -> Result<LoginTokens, String> {
        let dialect = Dialect::from_name(vendor).ok_or_else(|| format!("vendor {vendor:?}: use keycloak, auth0, okta or entraid"))?;
        let user = self.config.users.iter().find(|u| u.username == username).ok_or_else(|| format!("unknown user {username:?}"))?;
        if self.client(agent).is_none() {
            return Err(format!("client_id {agent:?} is not a registered agent"));
        }
        let lifetime = lifetime.unwrap_or(LOGIN_LIFETIME);
        if lifetime > MAX_LOGIN_LIFETIME {
            return Err(format!("lifetime must be at most {MAX_LOGIN_LIFETIME} seconds"));
        }
        let (access, id) = self.login_claims(dialect, user, agent, lifetime);
        let sign = |claims: &Value, typ: &str| self.signer.sign_typed(claims, typ).map_err(|e| format!("signing: {e}"));
        Ok(LoginTokens { access_token: sign(&access, "at+jwt")?, id_token: sign(&id, "JWT")?, expires_in: lifetime })
    }

    /// The access and ID token claims of `user`'s login to the web client, with the access
    /// token for `agent`, as `dialect` shapes them.
    pub(crate) fn login_claims(&self, dialect: Dialect, user: &DemoUser, agent: &str, lifetime: u64) -> (Value, Value) {
        let now = now();
        let iss = self.issuer(dialect);
        let web = &self.config.web_client_id;
        let exp = now + lifetime;
        let jti = || format!("{}-{now}-{}", user.username, rand_suffix());
        match dialect {
            // A realm token for the web client, with an audience mapper adding the agent.
            Dialect::Keycloak => (
                json!({
                    "iss": iss, "sub": user.id, "aud": [agent], "azp": web, "typ": "Bearer", "exp": exp, "iat": now, "jti": jti(),
                    "scope": LOGIN_SCOPE, "preferred_username": user.username, "email": user.email, "name": user.name,
                    "may_act": {"sub": agent},
                }),
                json!({
                    "iss": iss, "sub": user.id, "aud": web, "azp": web, "typ": "ID", "exp": exp, "iat": now, "jti": jti(),
                    "preferred_username": user.username, "email": user.email, "name": user.name,
                }),
            ),
            // An access token for the API (and userinfo), as `audience` + `openid` ask.
            Dialect::Auth0 => (
                json!({
                    "iss": iss, "sub": user.id, "aud": [self.config.api_audience, format!("{iss}userinfo")], "azp": web,
                    "exp": exp, "iat": now, "jti": jti(), "scope": LOGIN_SCOPE, "may_act": {"sub": agent},
                }),
                json!({
                    "iss": iss, "sub": user.id, "aud": web, "exp": exp, "iat": now,
                    "nickname": user.username, "email": user.email, "name": user.name,
                }),
            ),
            // Okta: access token `sub` = the login, `uid` = the user id, `cid` = the client.
            Dialect::Okta => (
                json!({
                    "ver": 1, "jti": format!("AT.{}", rand_suffix()), "iss": iss, "aud": self.config.api_audience, "iat": now,
                    "exp": exp, "cid": web, "uid": user.id, "scp": ["openid", "profile", "email"], "auth_time": now,
                    "sub": user.email, "may_act": {"sub": agent},
                }),
                json!({
                    "ver": 1, "iss": iss, "sub": user.id, "aud": web, "iat": now, "exp": exp, "auth_time": now,
                    "name": user.name, "email": user.email, "preferred_username": user.email,
                }),
            ),
            // Entra ID v2: a token for the agent's app registration, requested by the web app.
            Dialect::Entra => {
                let tenant = &self.config.tenant;
                (
                    json!({
                        "iss": iss, "aud": agent, "sub": pairwise_sub(tenant, &user.id, web, agent), "oid": user.id, "tid": tenant,
                        "azp": web, "azpacr": "1", "scp": "access_as_user", "ver": "2.0", "iat": now, "nbf": now, "exp": exp,
                        "uti": rand_suffix(), "name": user.name, "preferred_username": user.email,
                    }),
                    json!({
                        "iss": iss, "aud": web, "sub": pairwise_sub(tenant, &user.id, web, web), "oid": user.id, "tid": tenant,
                        "ver": "2.0", "iat": now, "nbf": now, "exp": exp, "name": user.name, "preferred_username": user.email,
                        "email": user.email,
                    }),
                )
            }
        }
    }

    /// Checks a token this provider issued as `dialect`: signature, issuer, expiry, and
    /// that it is an access token (`typ` `at+jwt`). Its claims when valid.
    fn verify_evidence(&self, dialect: Dialect, token: &str) -> Result<Map<String, Value>, Problem> {
        let jwt = jwt::decode(token).map_err(|_| Problem::Malformed)?;
        if !self.signer.signed(&jwt) {
            return Err(Problem::Signature);
        }
        if jwt.str_claim("iss") != Some(self.issuer(dialect).as_str()) {
            return Err(Problem::Issuer);
        }
        let now = now();
        match jwt.u64_claim("exp") {
            Some(exp) if exp > now => {}
            _ => return Err(Problem::Expired),
        }
        if jwt.u64_claim("nbf").is_some_and(|nbf| nbf > now) {
            return Err(Problem::Expired);
        }
        if jwt.header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
            return Err(Problem::NotAccessToken);
        }
        Ok(jwt.claims)
    }

    /// The user a verified token names (Keycloak, Auth0: `sub`; Okta: `uid`; Entra ID: `oid`).
    /// `None` for a client's own token.
    fn user_of(&self, dialect: Dialect, claims: &Map<String, Value>) -> Option<&DemoUser> {
        let claim = match dialect {
            Dialect::Keycloak | Dialect::Auth0 => "sub",
            Dialect::Okta => "uid",
            Dialect::Entra => "oid",
        };
        let id = claims.get(claim).and_then(Value::as_str)?;
        self.config.users.iter().find(|u| u.id == id)
    }

    /// Client authentication for a delegation grant: the client assertion, which must not
    /// carry `act` (the human comes from the evidence).
    fn authenticate_delegation(
        &self,
        dialect: Dialect,
        form: &HashMap<String, String>,
        audiences: &[String],
    ) -> Result<String, OAuthError> {
        let (client, act) = self.authenticate(dialect, form, audiences)?;
        if act.is_some() {
            return Err(oauth_error(
                dialect,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the client assertion carries act: a delegation grant takes the human from the evidence only",
            ));
        }
        Ok(client)
    }

    /// The Keycloak access token a delegation grant issues: the user's, for the API, `azp`
    /// = the agent, no `act` (Keycloak 26.7 writes none).
    /// Keycloak's answer to either delegation grant: a token for `user` held by `client`,
    /// bound to `jkt` when a proof came; only token exchange names `issued_token_type`
    /// (as observed on Keycloak 26.7.3).
    fn keycloak_delegated(
        &self,
        user: &DemoUser,
        client: &str,
        scope: &str,
        jkt: Option<&str>,
        grant: KeycloakGrant,
    ) -> Result<Json<Value>, OAuthError> {
        let now = now();
        let mut issued = json!({
            "iss": self.issuer(Dialect::Keycloak), "sub": user.id, "aud": self.config.api_audience, "azp": client, "typ": "Bearer",
            "exp": now + TOKEN_LIFETIME, "iat": now, "jti": format!("{client}-{now}-{}", rand_suffix()), "scope": scope,
            "preferred_username": user.username, "email": user.email, "name": user.name,
        });
        dpop::bind(&mut issued, jkt);
        let token = self.sign_access(Dialect::Keycloak, &issued)?;
        let mut answer = json!({
            "access_token": token, "expires_in": TOKEN_LIFETIME, "refresh_expires_in": 0, "token_type": dpop::token_type(jkt),
            "not-before-policy": 0, "scope": scope,
        });
        if grant == KeycloakGrant::TokenExchange {
            answer["issued_token_type"] = json!(ACCESS_TOKEN_TYPE);
        }
        Ok(Json(answer))
    }
}

/// Which of Keycloak's delegation grants answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeycloakGrant {
    TokenExchange,
    JwtAuthorization,
}

/// `POST /dev/login` (form `vendor`, `username`, `client_id`, optional `lifetime`).
pub(crate) async fn login(State(idp): State<Arc<Inner>>, Form(form): Form<HashMap<String, String>>) -> Result<Json<Value>, OAuthError> {
    let bad = |description: String| OAuthError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": "invalid_request", "error_description": description}),
        dpop_nonce: None,
        code_replayed: false,
    };
    let lifetime = match string_form(&form, "lifetime") {
        Some(text) => Some(text.parse::<u64>().map_err(|_| bad("lifetime must be a number of seconds".into()))?),
        None => None,
    };
    let field = |name: &str| string_form(&form, name).ok_or_else(|| bad(format!("{name} is required")));
    let tokens = idp.login(field("vendor")?, field("username")?, field("client_id")?, lifetime).map_err(bad)?;
    Ok(Json(json!({
        "access_token": tokens.access_token, "id_token": tokens.id_token, "token_type": "Bearer",
        "expires_in": tokens.expires_in, "scope": LOGIN_SCOPE,
    })))
}

/// Keycloak 26.x standard token exchange (V2, RFC 8693).
/// <https://www.keycloak.org/securing-apps/token-exchange>; errors as Keycloak 26.7.3 answers them.
/// The issued token is bound to `jkt` when a DPoP proof came; a DPoP-bound subject token
/// needs a proof of its own key, as `StandardTokenExchangeProvider` requires.
pub(crate) fn keycloak_token_exchange(idp: &Inner, form: &HashMap<String, String>, jkt: Option<&str>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Keycloak;
    let fail = |status: StatusCode, error: &str, description: &str| oauth_error(dialect, status, error, description);
    let invalid = |description: &str| fail(StatusCode::BAD_REQUEST, "invalid_request", description);
    let client = idp.authenticate_delegation(dialect, form, &idp.keycloak_assertion_audiences())?;
    for refused in ["subject_issuer", "requested_issuer", "requested_subject", "actor_token", "actor_token_type", "resource"] {
        if form.contains_key(refused) {
            return Err(invalid(&format!("Parameter '{refused}' is not supported for standard token exchange")));
        }
    }
    let token =
        string_form(form, "subject_token").ok_or_else(|| invalid("Parameter 'subject_token' required for standard token exchange"))?;
    let token_type = string_form(form, "subject_token_type")
        .ok_or_else(|| invalid("Parameter 'subject_token_type' required for standard token exchange"))?;
    if token_type != ACCESS_TOKEN_TYPE {
        return Err(invalid("Parameter 'subject_token' supports access tokens only"));
    }
    if string_form(form, "requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(invalid("requested_token_type unsupported"));
    }
    if string_form(form, "audience").is_some_and(|a| a != idp.config.api_audience) {
        return Err(fail(StatusCode::BAD_REQUEST, "invalid_client", "Audience not found"));
    }
    let claims = idp.verify_evidence(dialect, token).map_err(|_| invalid("Invalid token"))?;
    if !audience_has(&claims, &client) {
        return Err(fail(StatusCode::FORBIDDEN, "access_denied", "Client is not within the token audience"));
    }
    if !may_act_allows(&claims, &client) {
        return Err(fail(StatusCode::FORBIDDEN, "access_denied", "Client is not allowed to act for the subject (may_act)"));
    }
    let user = idp.user_of(dialect, &claims).ok_or_else(|| invalid("Invalid token"))?;
    match (dpop::bound_jkt(&claims), jkt) {
        (Some(_), None) => return Err(invalid("DPoP proof is missing")),
        (Some(bound), Some(proof)) if bound != proof => return Err(invalid("DPoP confirmation doesn't match DPoP proof")),
        _ => {}
    }
    let scope = string_form(form, "scope").unwrap_or("profile email");
    idp.keycloak_delegated(user, &client, scope, jkt, KeycloakGrant::TokenExchange)
}

/// Keycloak's JWT authorization grant (RFC 7523 §2.1; Keycloak 26.5 preview, default since 26.6):
/// the application, a trusted identity provider, signs an assertion about the user.
/// <https://www.keycloak.org/securing-apps/jwt-authorization-grant>; messages as Keycloak 26.7.3's.
pub(crate) fn keycloak_authorization_grant(
    idp: &Inner,
    form: &HashMap<String, String>,
    jkt: Option<&str>,
) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Keycloak;
    let grant = |description: &str| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_grant", description);
    let client = idp.authenticate_delegation(dialect, form, &idp.keycloak_assertion_audiences())?;
    let assertion = string_form(form, "assertion")
        .ok_or_else(|| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", "Missing parameter:assertion"))?;
    let jwt = jwt::decode(assertion)
        .map_err(|_| oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", "The assertion is not a JWT"))?;
    let issuer = jwt.str_claim("iss").filter(|i| !i.is_empty()).ok_or_else(|| grant("Missing claim: iss"))?;
    if idp.config.app_id.as_deref() != Some(issuer) {
        return Err(grant("No Identity Provider for provided issuer"));
    }
    let pem =
        idp.config.app_public_key_pem.as_ref().ok_or_else(|| grant("Identity Provider is not configured for JWT Authorization Grant"))?;
    let key = PKey::public_key_from_pem(pem).map_err(|_| grant("Identity Provider is not configured for JWT Authorization Grant"))?;
    let algorithms: &[&str] = match key.id() {
        Id::RSA => &["RS256", "PS256"],
        Id::EC => &["ES256"],
        _ => &[],
    };
    if !algorithms.contains(&jwt.alg()) || !jwt.verifies_with(&key, jwt.alg()) {
        return Err(grant("Invalid signature"));
    }
    let sub = jwt.str_claim("sub").filter(|s| !s.is_empty()).ok_or_else(|| grant("Missing claim: sub"))?;
    let audience = match jwt.claims.get("aud") {
        Some(Value::String(aud)) => aud.as_str(),
        Some(Value::Array(auds)) if auds.len() > 1 => return Err(grant("Multiple audiences not allowed")),
        Some(Value::Array(auds)) => auds.first().and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    };
    if !idp.keycloak_assertion_audiences().iter().any(|a| a == audience) {
        return Err(grant("Invalid token audience"));
    }
    let exp = jwt.u64_claim("exp").ok_or_else(|| grant("Token exp claim is required"))?;
    let now = now();
    if exp <= now || jwt.u64_claim("nbf").is_some_and(|nbf| nbf > now) {
        return Err(grant("Token is not active"));
    }
    match jwt.u64_claim("iat") {
        Some(iat) if iat > now => return Err(grant("Token was issued in the future")),
        Some(iat) if now > iat + MAX_GRANT_ASSERTION_AGE => return Err(grant("Token was issued too far in the past to be used now")),
        None if exp - now > MAX_GRANT_ASSERTION_AGE => {
            return Err(grant("Token expiration is too far in the future and iat claim not present in token"));
        }
        _ => {}
    }
    let jti = jwt.str_claim("jti").filter(|j| !j.is_empty()).ok_or_else(|| grant("Token jti claim is required"))?;
    {
        let mut seen = idp.seen_jtis.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, until| *until > now);
        if seen.insert(format!("grant|{issuer}|{jti}"), exp).is_some() {
            return Err(grant("Token reuse detected"));
        }
    }
    let user = idp.config.users.iter().find(|u| u.app_user_id == sub).ok_or_else(|| grant("User not found"))?;
    if !may_act_allows(&jwt.claims, &client) {
        return Err(grant("Client is not allowed to act for the user (may_act)"));
    }
    let scope = string_form(form, "scope").unwrap_or("profile email");
    idp.keycloak_delegated(user, &client, scope, jkt, KeycloakGrant::JwtAuthorization)
}

/// Auth0 On-Behalf-Of Token Exchange (RFC 8693): the issued token keeps the user as `sub`
/// and names the exchanging client in `act` (nesting any earlier `act`).
/// <https://auth0.com/docs/secure/call-apis-on-users-behalf/on-behalf-of-token-exchange>,
/// <https://auth0.com/docs/api/authentication/on-behalf-of-token-exchange/get-token>.
///
/// Custom Token Exchange (<https://auth0.com/docs/authenticate/custom-token-exchange>) needs
/// a profile and an Action: none is configured here, so a custom `subject_token_type`
/// is refused as having no profile. Auth0 documents the statuses (401 for an invalid or
/// expired subject token, 403 for a client not permitted) but not the error codes: they
/// are `invalid_grant` and `access_denied` here.
pub(crate) fn auth0_token_exchange(idp: &Inner, form: &HashMap<String, String>, jkt: Option<&str>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Auth0;
    let fail = |status: StatusCode, error: &str, description: &str| oauth_error(dialect, status, error, description);
    let invalid = |description: &str| fail(StatusCode::BAD_REQUEST, "invalid_request", description);
    let subject = |description: &str| fail(StatusCode::UNAUTHORIZED, "invalid_grant", description);
    let token_type = string_form(form, "subject_token_type").ok_or_else(|| invalid("subject_token_type is required"))?;
    if token_type != ACCESS_TOKEN_TYPE {
        let lower = token_type.to_ascii_lowercase();
        let reserved =
            ["urn:ietf", "urn:auth0", "urn:okta", "http://auth0.com", "https://auth0.com", "http://okta.com", "https://okta.com"];
        return Err(if reserved.iter().any(|r| lower.starts_with(r)) {
            invalid("subject_token_type uses a reserved namespace")
        } else {
            invalid("No Custom Token Exchange profile is configured for this subject_token_type")
        });
    }
    let token = string_form(form, "subject_token").ok_or_else(|| invalid("subject_token is required"))?;
    if string_form(form, "requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(invalid("requested_token_type must be urn:ietf:params:oauth:token-type:access_token"));
    }
    // The Resource Parameter Compatibility Profile: `audience` first, else RFC 8707's
    // `resource` names the API
    // (<https://auth0.com/ai/docs/mcp/guides/resource-param-compatibility-profile>).
    let audience = string_form(form, "audience")
        .or_else(|| string_form(form, "resource"))
        .ok_or_else(|| invalid("audience is required for On-Behalf-Of token exchange"))?;
    if !idp.config.is_api(audience) {
        return Err(fail(StatusCode::FORBIDDEN, "access_denied", &format!("Service not found: {audience}")));
    }
    if !form.contains_key("client_id") {
        return Err(fail(StatusCode::UNAUTHORIZED, "invalid_request", "client_id is required"));
    }
    let client = idp.authenticate_delegation(dialect, form, &[idp.issuer(dialect)])?;
    let claims = idp.verify_evidence(dialect, token).map_err(|p| subject(&format!("Invalid subject_token: {}", p.words())))?;
    if !idp.config.apis().any(|api| audience_has(&claims, api)) {
        return Err(subject("Invalid subject_token: it is not for an API of this tenant"));
    }
    let user = idp.user_of(dialect, &claims).ok_or_else(|| subject("Invalid subject_token: it names no user"))?;
    if !may_act_allows(&claims, &client) {
        return Err(fail(StatusCode::FORBIDDEN, "access_denied", "The client is not permitted to act on behalf of this user (may_act)"));
    }
    let earlier = claims.get("act");
    if act_depth(earlier) + 1 > MAX_AUTH0_CHAIN {
        return Err(invalid("Delegation chain (`act` claim) depth exceeds the maximum allowed limit of 5"));
    }
    let mut act = json!({"sub": client});
    if let Some(earlier) = earlier {
        act["act"] = earlier.clone();
    }
    let now = now();
    let scope = string_form(form, "scope").unwrap_or_default();
    let mut issued = json!({
        "iss": idp.issuer(dialect), "sub": user.id, "aud": [audience], "iat": now, "exp": now + TOKEN_LIFETIME,
        "jti": format!("{client}-{now}-{}", rand_suffix()), "scope": scope, "azp": client, "act": act,
    });
    dpop::bind(&mut issued, jkt);
    let token = idp.sign_access(dialect, &issued)?;
    Ok(Json(json!({
        "access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": dpop::token_type(jkt), "issued_token_type": ACCESS_TOKEN_TYPE,
    })))
}

/// Okta On-Behalf-Of Token Exchange (custom authorization server): the issued token has
/// `sub` = the user's login, `uid`, `cid` = the exchanging service app, `scp`, no `act`.
/// <https://developer.okta.com/docs/guides/set-up-token-exchange/main/>. The guide gives
/// no error bodies: `invalid_grant` (RFC 6749 §5.2) and `invalid_target` (RFC 8693
/// §2.2.2) here.
pub(crate) fn okta_token_exchange(idp: &Inner, form: &HashMap<String, String>, jkt: Option<&str>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Okta;
    let fail = |error: &str, description: &str| oauth_error(dialect, StatusCode::BAD_REQUEST, error, description);
    let token_type = string_form(form, "subject_token_type").ok_or_else(|| fail("invalid_request", "subject_token_type is required"))?;
    if token_type != ACCESS_TOKEN_TYPE {
        return Err(fail("invalid_request", "The subject_token_type is not supported: use urn:ietf:params:oauth:token-type:access_token"));
    }
    let token = string_form(form, "subject_token").ok_or_else(|| fail("invalid_request", "subject_token is required"))?;
    let scope = require_scope(dialect, form)?;
    let client = idp.authenticate_delegation(dialect, form, &[idp.okta_token_url()])?;
    let audience = string_form(form, "audience").unwrap_or(&idp.config.api_audience);
    if audience != idp.config.api_audience {
        return Err(fail("invalid_target", "The audience is not this authorization server's"));
    }
    let claims =
        idp.verify_evidence(dialect, token).map_err(|p| fail("invalid_grant", &format!("The subject_token is invalid: {}", p.words())))?;
    if !audience_has(&claims, &idp.config.api_audience) {
        return Err(fail("invalid_grant", "The subject_token is invalid: its audience is not this authorization server's"));
    }
    let user = idp.user_of(dialect, &claims).ok_or_else(|| fail("invalid_grant", "The subject_token is invalid: it names no user"))?;
    if !may_act_allows(&claims, &client) {
        return Err(fail("invalid_grant", "The client is not allowed to act on behalf of the subject (may_act)"));
    }
    let now = now();
    let mut issued = json!({
        "ver": 1, "jti": format!("AT.{}", rand_suffix()), "iss": idp.issuer(dialect), "aud": audience, "iat": now,
        "exp": now + TOKEN_LIFETIME, "cid": client, "uid": user.id, "scp": scope.split_whitespace().collect::<Vec<_>>(),
        "auth_time": claims.get("auth_time").cloned().unwrap_or(json!(now)), "sub": user.email,
    });
    dpop::bind(&mut issued, jkt);
    let token = idp.sign_access(dialect, &issued)?;
    Ok(Json(json!({
        "token_type": dpop::token_type(jkt), "expires_in": TOKEN_LIFETIME, "access_token": token, "scope": scope,
        "issued_token_type": ACCESS_TOKEN_TYPE,
    })))
}

/// An Entra ID error: `AADSTS{code}: …` with `error_codes`, `timestamp`, `trace_id`,
/// `correlation_id`.
fn entra_error(error: &str, code: u32, description: &str) -> OAuthError {
    OAuthError {
        status: StatusCode::BAD_REQUEST,
        body: json!({
            "error": error, "error_description": format!("AADSTS{code}: {description}"), "error_codes": [code],
            "timestamp": now(), "trace_id": rand_suffix(), "correlation_id": rand_suffix(),
        }),
        dpop_nonce: None,
        code_replayed: false,
    }
}

/// Microsoft Entra ID on-behalf-of (v2.0): `assertion` = the user's access token, whose
/// `aud` must be the requesting app.
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-on-behalf-of-flow>;
/// codes from <https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>
/// (the `error` paired with each is not documented there: `invalid_grant` for the
/// assertion, `invalid_request` for missing parameters, here).
pub(crate) fn entra_on_behalf_of(idp: &Inner, form: &HashMap<String, String>) -> Result<Json<Value>, OAuthError> {
    let dialect = Dialect::Entra;
    let missing =
        |name: &str| entra_error("invalid_request", 900_144, &format!("The request body must contain the following parameter: '{name}'."));
    let assertion_error = |code: u32, description: &str| entra_error("invalid_grant", code, description);
    let use_ = string_form(form, "requested_token_use").ok_or_else(|| missing("requested_token_use"))?;
    if use_ != "on_behalf_of" {
        return Err(entra_error("invalid_request", 70_003, "The requested_token_use must be on_behalf_of for this grant."));
    }
    let client = string_form(form, "client_id").ok_or_else(|| missing("client_id"))?;
    let secret_ok = idp.client(client).and_then(|c| c.secret.as_ref()).is_some_and(|s| Some(s) == form.get("client_secret"));
    if !secret_ok {
        return Err(oauth_error(dialect, StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client secret provided."));
    }
    let scope = string_form(form, "scope").ok_or_else(|| missing("scope"))?;
    let api = &idp.config.entra_api;
    let named: Vec<&str> = scope.split_whitespace().filter_map(|s| s.strip_prefix(api.as_str())?.strip_prefix('/')).collect();
    if named.is_empty() || named.len() != scope.split_whitespace().count() {
        return Err(entra_error(
            "invalid_scope",
            70_011,
            &format!("The provided value for the input parameter 'scope' is not valid: use {api}/.default or {api}/<scope>."),
        ));
    }
    let assertion = string_form(form, "assertion").ok_or_else(|| missing("assertion"))?;
    let claims = match idp.verify_evidence(dialect, assertion) {
        Ok(claims) => claims,
        Err(Problem::Expired) => {
            return Err(assertion_error(
                500_133,
                &format!(
                    "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: {}.",
                    now()
                ),
            ));
        }
        Err(Problem::Signature) => return Err(assertion_error(50_013, "Assertion failed signature validation.")),
        Err(Problem::Issuer) => return Err(assertion_error(50_027, "Invalid JWT token: unexpected issuer.")),
        Err(Problem::Malformed) => return Err(assertion_error(50_027, "Invalid JWT token. Token format not valid.")),
        Err(Problem::NotAccessToken) => return Err(assertion_error(50_013, "Assertion is invalid: it is not an access token.")),
    };
    if !audience_has(&claims, client) {
        let seen = claims.get("aud").map(Value::to_string).unwrap_or_default();
        return Err(assertion_error(
            50_013,
            &format!(
                "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was {seen} and the expected audience is '{client}'."
            ),
        ));
    }
    let Some(user) = idp.user_of(dialect, &claims).filter(|_| claims.get("scp").is_some()) else {
        return Err(assertion_error(50_013, "Assertion is invalid: on-behalf-of takes a user's token, not an app-only token."));
    };
    if !may_act_allows(&claims, client) {
        return Err(assertion_error(50_013, "Assertion is invalid: its may_act does not name the Client app."));
    }
    let scp = named.iter().map(|s| if *s == ".default" { "access_as_user" } else { s }).collect::<Vec<_>>().join(" ");
    let now = now();
    let tenant = &idp.config.tenant;
    let issued = json!({
        "iss": idp.issuer(dialect), "aud": api, "sub": pairwise_sub(tenant, &user.id, client, api), "oid": user.id, "tid": tenant,
        "azp": client, "azpacr": "1", "scp": scp, "ver": "2.0", "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME,
        "uti": rand_suffix(), "name": user.name, "preferred_username": user.email,
    });
    let token = idp.sign_access(dialect, &issued)?;
    Ok(Json(json!({
        "token_type": "Bearer", "scope": scope, "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME, "access_token": token,
    })))
}

/// The delegated demo API: the agent and the human a delegated token names, and who
/// vouched for the human.
pub(crate) async fn delegated_api(State(idp): State<Arc<Inner>>, subject: DualSubject) -> Json<Value> {
    Json(json!({
        "vendor": idp.vendor_of(&subject.issuer),
        "agent": subject.agent.id(),
        "human": subject.human.sub(),
        "act": subject.human.to_value(),
        "chain": subject.chain,
        "vouched_by": subject.vouched_by.as_str(),
        "dpop_jkt": subject.dpop_jkt,
    }))
}
