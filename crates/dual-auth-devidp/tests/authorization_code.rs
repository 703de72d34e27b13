//! The Keycloak dialect's authorization code flow with PKCE, over real HTTPS as a browser
//! and a web application's back end drive it: discovery, the login page, the redirect
//! back, the code exchange, and each refusal.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dual_auth_devidp::{DemoUser, DevIdp, DevIdpConfig};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{Value, json};

const AGENT: &str = "agent";
const AGENT_SECRET: &str = "authorization-code-agent-secret-0123456789";
const WEB: &str = "dual-auth-web";
/// Characters that client_secret_basic must form-urlencode (RFC 6749 §2.3.1).
const WEB_SECRET: &str = "web client secret: 0123456789 & +/=%";
/// A registered redirect URI with a query of its own, which the answers must keep.
const REDIRECT: &str = "https://app.example.test/callback?tenant=demo";
/// A hostile `state`, reflected in the login page.
const STATE: &str = "\"><script>alert(1)</script>";
const NONCE: &str = "n-0S6_WzA2Mj";

async fn idp() -> DevIdp {
    let mut config = DevIdpConfig::with_client(AGENT, AGENT_SECRET);
    config.web_client_secret = Some(WEB_SECRET.into());
    config.web_redirect_uris = vec![REDIRECT.into()];
    let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    assert_eq!(idp.config().web_client_id, WEB);
    idp
}

/// A client that trusts the provider's CA only and follows no redirect.
fn browser(idp: &DevIdp) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(idp.ca_pem().as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Pkce {
    verifier: String,
    challenge: String,
}

/// A fresh verifier (43 characters) and its S256 challenge.
fn pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

type Params = Vec<(&'static str, String)>;

/// The web application's authorization request.
fn authorization(challenge: &str) -> Params {
    vec![
        ("response_type", "code".into()),
        ("client_id", WEB.into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid profile email".into()),
        ("state", STATE.into()),
        ("nonce", NONCE.into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

/// `params` with `name` set to `value`, or removed for `None`.
fn with(mut params: Params, name: &'static str, value: Option<&str>) -> Params {
    params.retain(|(n, _)| *n != name);
    if let Some(value) = value {
        params.push((name, value.into()));
    }
    params
}

/// `GET` the authorization endpoint with `params` as the query.
async fn get_page(http: &reqwest::Client, idp: &DevIdp, params: &Params) -> reqwest::Response {
    let mut url = url::Url::parse(&idp.keycloak_authorization_url()).unwrap();
    url.query_pairs_mut().extend_pairs(params.iter().map(|(n, v)| (*n, v.as_str())));
    http.get(url).send().await.unwrap()
}

/// `POST` the login form: `params` (the hidden fields) with the credentials.
async fn post_login(http: &reqwest::Client, idp: &DevIdp, params: &Params, username: &str, password: &str) -> reqwest::Response {
    let mut form = params.clone();
    form.extend([("username", username.into()), ("password", password.into()), ("login", "Sign In".into())]);
    http.post(idp.keycloak_authorization_url()).form(&form).send().await.unwrap()
}

/// The `Location` of a 303 answer.
fn location(response: &reqwest::Response) -> url::Url {
    assert_eq!(response.status(), 303, "{response:?}");
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Asserts `url` is the registered redirect URI (its own query kept) with these answer
/// parameters, `state` and `iss` added.
fn assert_answer(idp: &DevIdp, url: &url::Url, expected: &[(&str, &str)]) -> HashMap<String, String> {
    assert_eq!(format!("{}://{}{}", url.scheme(), url.host_str().unwrap(), url.path()), "https://app.example.test/callback");
    let pairs = query(url);
    assert_eq!(pairs["tenant"], "demo", "{url}");
    assert_eq!(pairs["state"], STATE, "{url}");
    assert_eq!(pairs["iss"], idp.keycloak_realm_url(), "{url}");
    for (name, value) in expected {
        assert_eq!(pairs.get(*name).map(String::as_str), Some(*value), "{name} in {url}");
    }
    pairs
}

/// Asserts a redirect with an error and no code.
fn assert_redirected_error(idp: &DevIdp, response: reqwest::Response, error: &str, description: &str) {
    let url = location(&response);
    let pairs = assert_answer(idp, &url, &[("error", error), ("error_description", description)]);
    assert!(!pairs.contains_key("code"), "{url}");
}

/// Asserts an error page: the status, the message, and no redirect.
async fn assert_error_page(response: reqwest::Response, status: u16, message: &str) {
    assert_eq!(response.status(), status);
    assert!(response.headers().get("location").is_none(), "{response:?}");
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let body = response.text().await.unwrap();
    assert!(body.contains(&format!("<p id=\"kc-error-message\">{message}</p>")), "{body}");
}

/// Logs alice in through the page and returns the code the redirect carries.
async fn code_for(http: &reqwest::Client, idp: &DevIdp, pkce: &Pkce) -> String {
    let params = authorization(&pkce.challenge);
    assert_eq!(get_page(http, idp, &params).await.status(), 200);
    let url = location(&post_login(http, idp, &params, "alice", "dual-auth-alice").await);
    assert_answer(idp, &url, &[])["code"].clone()
}

/// The token request's form for `code`.
fn exchange_form(code: &str, verifier: Option<&str>) -> Params {
    let mut form = vec![("grant_type", "authorization_code".into()), ("code", code.into()), ("redirect_uri", REDIRECT.into())];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier.into()));
    }
    form
}

fn form_urlencoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Posts `form` to Keycloak's token endpoint with client_secret_basic (`secret`, if any).
async fn exchange(http: &reqwest::Client, idp: &DevIdp, form: &Params, secret: Option<&str>) -> (u16, Value) {
    let mut request = http.post(idp.keycloak_token_url()).form(form);
    if let Some(secret) = secret {
        request = request.basic_auth(form_urlencoded(WEB), Some(form_urlencoded(secret)));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn assert_oauth_error(answer: &(u16, Value), status: u16, error: &str, description: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
    assert_eq!(answer.1["error_description"], description, "{}", answer.1);
    assert!(answer.1.get("access_token").is_none());
}

/// A JWT's header (0) or claims (1), not verified.
fn part(token: &str, n: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(n).unwrap()).unwrap()).unwrap()
}

/// Verifies `token`'s RS256 signature with the JWKS the discovery document names.
async fn assert_signed(http: &reqwest::Client, discovery: &Value, token: &str) {
    let jwks: Value = http.get(discovery["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let kid = part(token, 0)["kid"].clone();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap();
    let member = |name: &str| BigNum::from_slice(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()).unwrap();
    let key = PKey::from_rsa(Rsa::from_public_components(member("n"), member("e")).unwrap()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &key).unwrap();
    verifier.update(input.as_bytes()).unwrap();
    assert!(verifier.verify(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap(), "signature of {token}");
}

fn alice(idp: &DevIdp) -> DemoUser {
    idp.config().users.iter().find(|u| u.username == "alice").cloned().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn discovery_names_the_authorization_endpoint_and_the_code_flow() {
    let idp = idp().await;
    let http = browser(&idp);
    let realm = idp.keycloak_realm_url();
    assert_eq!(idp.keycloak_discovery_url(), format!("{realm}/.well-known/openid-configuration"));
    assert_eq!(idp.keycloak_authorization_url(), format!("{realm}/protocol/openid-connect/auth"));
    assert_eq!(idp.web_client_secret(), Some(WEB_SECRET));
    let response = http.get(idp.keycloak_discovery_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let discovery: Value = response.json().await.unwrap();
    assert_eq!(discovery["issuer"], realm);
    assert_eq!(discovery["authorization_endpoint"], idp.keycloak_authorization_url());
    assert_eq!(discovery["token_endpoint"], idp.keycloak_token_url());
    assert_eq!(discovery["jwks_uri"], format!("{realm}/protocol/openid-connect/certs"));
    assert_eq!(discovery["response_types_supported"], json!(["code"]));
    assert_eq!(discovery["response_modes_supported"], json!(["query"]));
    assert_eq!(discovery["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(discovery["subject_types_supported"], json!(["public"]));
    assert_eq!(discovery["scopes_supported"], json!(["openid", "profile", "email"]));
    assert_eq!(discovery["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        json!(["client_secret_jwt", "private_key_jwt", "client_secret_basic", "client_secret_post"])
    );
    let grants = discovery["grant_types_supported"].as_array().unwrap();
    for grant in ["authorization_code", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"] {
        assert!(grants.contains(&json!(grant)), "{grant} in {grants:?}");
    }
    assert!(discovery["dpop_signing_alg_values_supported"].as_array().is_some_and(|a| !a.is_empty()));
}

#[tokio::test]
async fn the_login_page_carries_keycloak_ids_and_escapes_what_it_reflects() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let response = get_page(&http, &idp, &authorization(&pkce.challenge)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://app.example.test; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let body = response.text().await.unwrap();
    for expected in [
        "<h1 id=\"kc-page-title\">Sign in to demo</h1>",
        "<p id=\"kc-client\">for dual-auth-web</p>",
        "<form id=\"kc-form-login\" method=\"post\" action=\"/realms/demo/protocol/openid-connect/auth\">",
        "<input id=\"username\" name=\"username\" type=\"text\" value=\"\"",
        "<input id=\"password\" name=\"password\" type=\"password\"",
        "<input type=\"submit\" id=\"kc-login\" name=\"login\" value=\"Sign In\">",
        "<li>alice</li>",
        "<li>bob</li>",
        "<input type=\"hidden\" name=\"client_id\" value=\"dual-auth-web\">",
        "<input type=\"hidden\" name=\"redirect_uri\" value=\"https://app.example.test/callback?tenant=demo\">",
        &format!("<input type=\"hidden\" name=\"code_challenge\" value=\"{}\">", pkce.challenge),
        "<input type=\"hidden\" name=\"state\" value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    assert!(!body.contains("<script>"), "{body}");
    assert!(!body.contains("id=\"input-error\""), "{body}");
    // Keycloak's login_hint fills the username in, escaped too.
    let hinted = get_page(&http, &idp, &with(authorization(&pkce.challenge), "login_hint", Some("<b>bob"))).await;
    let body = hinted.text().await.unwrap();
    assert!(body.contains("<input id=\"username\" name=\"username\" type=\"text\" value=\"&lt;b&gt;bob\""), "{body}");
}

#[tokio::test]
async fn the_code_flow_with_pkce_gives_keycloak_shaped_tokens() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let before = now();
    let params = authorization(&pkce.challenge);
    assert_eq!(get_page(&http, &idp, &params).await.status(), 200);
    let url = location(&post_login(&http, &idp, &params, "alice", "dual-auth-alice").await);
    let pairs = assert_answer(&idp, &url, &[]);
    let code = &pairs["code"];
    assert_eq!(URL_SAFE_NO_PAD.decode(code).unwrap().len(), 32, "{code}");
    assert!(!pairs.contains_key("error"));

    let (status, answer) = exchange(&http, &idp, &exchange_form(code, Some(&pkce.verifier)), Some(WEB_SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    let fields: Vec<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["access_token", "id_token", "token_type", "expires_in", "scope"], "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 300);
    assert_eq!(answer["scope"], "openid profile email");

    let realm = idp.keycloak_realm_url();
    let user = alice(&idp);
    let access_token = answer["access_token"].as_str().unwrap();
    let access = part(access_token, 1);
    assert_eq!(part(access_token, 0)["typ"], "at+jwt");
    assert_eq!(part(access_token, 0)["alg"], "RS256");
    assert_eq!(access["iss"], realm);
    assert_eq!(access["sub"], user.id);
    assert_eq!(access["aud"], json!([AGENT]));
    assert_eq!(access["azp"], WEB);
    assert_eq!(access["typ"], "Bearer");
    assert_eq!(access["may_act"], json!({"sub": AGENT}));
    assert_eq!(access["scope"], "openid profile email");
    assert_eq!(access["preferred_username"], "alice");
    assert!(access.get("cnf").is_none());

    let id_token = answer["id_token"].as_str().unwrap();
    let id = part(id_token, 1);
    assert_eq!(part(id_token, 0)["typ"], "JWT");
    assert_eq!(part(id_token, 0)["alg"], "RS256");
    assert_eq!(id["iss"], realm);
    assert_eq!(id["sub"], user.id);
    assert_eq!(id["aud"], WEB);
    assert_eq!(id["azp"], WEB);
    assert_eq!(id["typ"], "ID");
    assert_eq!(id["nonce"], NONCE);
    let digest = openssl::sha::sha256(access_token.as_bytes());
    assert_eq!(id["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
    let auth_time = id["auth_time"].as_u64().unwrap();
    assert!(before <= auth_time && auth_time <= now(), "{auth_time}");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(id["preferred_username"], "alice");

    let discovery: Value = http.get(idp.keycloak_discovery_url()).send().await.unwrap().json().await.unwrap();
    assert_signed(&http, &discovery, access_token).await;
    assert_signed(&http, &discovery, id_token).await;

    let record = idp.token_requests().pop().unwrap();
    assert_eq!(
        (record.vendor, record.grant_type.as_str(), record.status, record.token_type.as_deref(), record.code_replayed),
        ("keycloak", "authorization_code", 200, Some("Bearer"), false)
    );
}

#[tokio::test]
async fn a_code_is_single_use_and_its_replay_is_recorded() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let code = code_for(&http, &idp, &pkce).await;
    let form = exchange_form(&code, Some(&pkce.verifier));
    assert_eq!(exchange(&http, &idp, &form, Some(WEB_SECRET)).await.0, 200);
    let replayed = exchange(&http, &idp, &form, Some(WEB_SECRET)).await;
    assert_oauth_error(&replayed, 400, "invalid_grant", "Code not valid");
    let unknown = exchange(&http, &idp, &exchange_form(&URL_SAFE_NO_PAD.encode([7u8; 32]), Some(&pkce.verifier)), Some(WEB_SECRET)).await;
    assert_oauth_error(&unknown, 400, "invalid_grant", "Code not valid");
    let records: Vec<_> = idp.token_requests().into_iter().map(|r| (r.status, r.error, r.code_replayed)).collect();
    assert_eq!(
        records,
        [(200, None, false), (400, Some("invalid_grant".to_owned()), true), (400, Some("invalid_grant".to_owned()), false)]
    );
}

#[tokio::test]
async fn a_missing_code_verifier_is_refused_and_burns_the_code() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let code = code_for(&http, &idp, &pkce).await;
    let missing = exchange(&http, &idp, &exchange_form(&code, None), Some(WEB_SECRET)).await;
    assert_oauth_error(&missing, 400, "invalid_grant", "PKCE code verifier not specified");
    let after = exchange(&http, &idp, &exchange_form(&code, Some(&pkce.verifier)), Some(WEB_SECRET)).await;
    assert_oauth_error(&after, 400, "invalid_grant", "Code not valid");
}

#[tokio::test]
async fn a_wrong_code_verifier_is_refused_and_burns_the_code() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let code = code_for(&http, &idp, &pkce).await;
    let wrong = exchange(&http, &idp, &exchange_form(&code, Some(&self::pkce().verifier)), Some(WEB_SECRET)).await;
    assert_oauth_error(&wrong, 400, "invalid_grant", "PKCE verification failed: Code mismatch");
    let right = exchange(&http, &idp, &exchange_form(&code, Some(&pkce.verifier)), Some(WEB_SECRET)).await;
    assert_oauth_error(&right, 400, "invalid_grant", "Code not valid");
    assert!(idp.token_requests().last().unwrap().code_replayed);

    // A verifier that is not 43 to 128 unreserved characters (RFC 7636 §4.1) never matches.
    for malformed in ["too-short".to_owned(), format!("{}!", &pkce.verifier[1..]), "a".repeat(129)] {
        let code = code_for(&http, &idp, &pkce).await;
        let answer = exchange(&http, &idp, &exchange_form(&code, Some(&malformed)), Some(WEB_SECRET)).await;
        assert_oauth_error(&answer, 400, "invalid_grant", "PKCE verification failed: Code mismatch");
    }
}

#[tokio::test]
async fn a_redirect_uri_other_than_the_requests_is_refused_at_the_token_endpoint() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    for other in [Some("https://app.example.test/callback"), Some("https://app.example.test/callback?tenant=demo&x=1"), None] {
        let code = code_for(&http, &idp, &pkce).await;
        let form = with(exchange_form(&code, Some(&pkce.verifier)), "redirect_uri", other);
        let answer = exchange(&http, &idp, &form, Some(WEB_SECRET)).await;
        assert_oauth_error(&answer, 400, "invalid_grant", "Incorrect redirect_uri");
        // The attempt burnt the code.
        let again = exchange(&http, &idp, &exchange_form(&code, Some(&pkce.verifier)), Some(WEB_SECRET)).await;
        assert_oauth_error(&again, 400, "invalid_grant", "Code not valid");
    }
}

#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_gets_a_page_and_no_redirect() {
    let idp = idp().await;
    let http = browser(&idp);
    let request = authorization(&pkce().challenge);
    let invalid_redirect = "Invalid parameter: redirect_uri";
    let cases: [(&str, Params, u16, &str); 9] = [
        (
            "an unregistered redirect URI",
            with(request.clone(), "redirect_uri", Some("https://evil.example/callback")),
            400,
            invalid_redirect,
        ),
        (
            "the URI without its query",
            with(request.clone(), "redirect_uri", Some("https://app.example.test/callback")),
            400,
            invalid_redirect,
        ),
        (
            "another case",
            with(request.clone(), "redirect_uri", Some("https://APP.example.test/callback?tenant=demo")),
            400,
            invalid_redirect,
        ),
        (
            "a wildcard's match",
            with(request.clone(), "redirect_uri", Some("https://app.example.test/callback?tenant=demo/x")),
            400,
            invalid_redirect,
        ),
        ("no redirect URI", with(request.clone(), "redirect_uri", None), 400, invalid_redirect),
        ("two redirect URIs", [request.clone(), vec![("redirect_uri", REDIRECT.into())]].concat(), 400, invalid_redirect),
        ("an unknown client", with(request.clone(), "client_id", Some(AGENT)), 400, "Client not found."),
        ("no client", with(request.clone(), "client_id", None), 400, "Missing parameter: client_id"),
        (
            "the unregistered URI with a bad challenge too",
            with(with(request.clone(), "redirect_uri", Some("https://evil.example/")), "code_challenge", None),
            400,
            invalid_redirect,
        ),
    ];
    for (case, params, status, message) in cases {
        let response = get_page(&http, &idp, &params).await;
        assert_eq!(response.status(), status, "{case}");
        assert_error_page(response, status, message).await;
        // The posted form is checked again: hidden fields are not trusted.
        let posted = post_login(&http, &idp, &params, "alice", "dual-auth-alice").await;
        assert_error_page(posted, status, message).await;
    }
    let other_realm = idp.keycloak_authorization_url().replace("/realms/demo/", "/realms/other/");
    let mut url = url::Url::parse(&other_realm).unwrap();
    url.query_pairs_mut().extend_pairs(request.iter().map(|(n, v)| (*n, v.as_str())));
    assert_error_page(http.get(url).send().await.unwrap(), 404, "Realm does not exist.").await;
}

#[tokio::test]
async fn a_missing_code_challenge_goes_back_to_the_client_with_invalid_request_and_the_state() {
    let idp = idp().await;
    let http = browser(&idp);
    let request = authorization(&pkce().challenge);
    let no_challenge = with(request.clone(), "code_challenge", None);
    let response = get_page(&http, &idp, &no_challenge).await;
    assert_redirected_error(&idp, response, "invalid_request", "Missing parameter: code_challenge");
    let no_method = with(request.clone(), "code_challenge_method", None);
    let response = get_page(&http, &idp, &no_method).await;
    assert_redirected_error(&idp, response, "invalid_request", "Missing parameter: code_challenge_method");
    let neither = with(no_method, "code_challenge", None);
    let response = get_page(&http, &idp, &neither).await;
    assert_redirected_error(&idp, response, "invalid_request", "Missing parameter: code_challenge_method");
    // Posted without the challenge (a tampered form): refused the same way, no code.
    let response = post_login(&http, &idp, &no_challenge, "alice", "dual-auth-alice").await;
    assert_redirected_error(&idp, response, "invalid_request", "Missing parameter: code_challenge");
}

#[tokio::test]
async fn the_plain_method_and_a_malformed_challenge_are_refused() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let request = authorization(&pkce.challenge);
    let plain = with(request.clone(), "code_challenge_method", Some("plain"));
    let response = get_page(&http, &idp, &plain).await;
    assert_redirected_error(&idp, response, "invalid_request", "Invalid parameter: code_challenge_method");
    let response = post_login(&http, &idp, &plain, "alice", "dual-auth-alice").await;
    assert_redirected_error(&idp, response, "invalid_request", "Invalid parameter: code_challenge_method");
    // 42 characters, 44, and 43 that are not base64url.
    for malformed in [pkce.challenge[1..].to_owned(), format!("{}x", pkce.challenge), "+".repeat(43)] {
        let response = get_page(&http, &idp, &with(request.clone(), "code_challenge", Some(&malformed))).await;
        assert_redirected_error(&idp, response, "invalid_request", "Invalid parameter: code_challenge");
    }
}

#[tokio::test]
async fn the_other_request_errors_go_back_to_the_client() {
    let idp = idp().await;
    let http = browser(&idp);
    let request = authorization(&pkce().challenge);
    let cases: [(Params, &str, &str); 7] = [
        (
            with(request.clone(), "response_type", Some("token")),
            "unsupported_response_type",
            "Only response_type code (the authorization code flow) is supported.",
        ),
        (with(request.clone(), "response_type", None), "invalid_request", "Missing parameter: response_type"),
        (with(request.clone(), "scope", Some("profile email")), "invalid_scope", "Invalid scopes: the openid scope is required."),
        (with(request.clone(), "scope", None), "invalid_scope", "Invalid scopes: the openid scope is required."),
        (
            with(request.clone(), "response_mode", Some("form_post")),
            "invalid_request",
            "Invalid parameter: response_mode (only query is supported here)",
        ),
        (with(request.clone(), "prompt", Some("none")), "login_required", "There is no session here: the user must log in."),
        (
            [request.clone(), vec![("nonce", "another".into())]].concat(),
            "invalid_request",
            "A parameter was sent more than once (RFC 6749 section 3.1).",
        ),
    ];
    for (params, error, description) in cases {
        assert_redirected_error(&idp, get_page(&http, &idp, &params).await, error, description);
    }
    // Without a nonce (optional in the code flow) the page shows, and the ID token has none.
    let pkce = pkce();
    let params = with(authorization(&pkce.challenge), "nonce", None);
    assert_eq!(get_page(&http, &idp, &params).await.status(), 200);
    let url = location(&post_login(&http, &idp, &params, "bob", "dual-auth-bob").await);
    let code = assert_answer(&idp, &url, &[])["code"].clone();
    let (status, answer) = exchange(&http, &idp, &exchange_form(&code, Some(&pkce.verifier)), Some(WEB_SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    let id = part(answer["id_token"].as_str().unwrap(), 1);
    assert!(id.get("nonce").is_none(), "{id}");
    assert_eq!(id["preferred_username"], "bob");
}

#[tokio::test]
async fn a_wrong_password_shows_the_page_again_with_an_error_and_no_code() {
    let idp = idp().await;
    let http = browser(&idp);
    let params = authorization(&pkce().challenge);
    for (username, password) in [("alice", "dual-auth-bob"), ("alice", ""), ("alice", "dual-auth-alice "), ("mallory", "dual-auth-mallory")]
    {
        let response = post_login(&http, &idp, &params, username, password).await;
        assert_eq!(response.status(), 200, "{username}/{password}");
        assert!(response.headers().get("location").is_none());
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        let body = response.text().await.unwrap();
        assert!(body.contains("<span id=\"input-error\" aria-live=\"polite\">Invalid username or password.</span>"), "{body}");
        assert!(body.contains(&format!("<input id=\"username\" name=\"username\" type=\"text\" value=\"{username}\"")), "{body}");
        assert!(body.contains("<form id=\"kc-form-login\""), "{body}");
        assert!(body.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""), "{body}");
        assert!(!body.contains("code="), "{body}");
    }
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_as_invalid_client() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let code = code_for(&http, &idp, &pkce).await;
    let form = exchange_form(&code, Some(&pkce.verifier));
    let wrong = exchange(&http, &idp, &form, Some("web client secret: 0123456789 & +/=!")).await;
    assert_oauth_error(&wrong, 401, "invalid_client", "Invalid client or Invalid client credentials");
    let none = exchange(&http, &idp, &form, None).await;
    assert_oauth_error(&none, 401, "invalid_client", "Client secret not provided in request");
    let unencoded = http.post(idp.keycloak_token_url()).form(&form).basic_auth(WEB, Some(WEB_SECRET)).send().await.unwrap();
    assert_eq!(unencoded.status(), 401, "the secret's & and = must be form-urlencoded in client_secret_basic");
    let other_client = http.post(idp.keycloak_token_url()).form(&form).basic_auth(AGENT, Some(AGENT_SECRET)).send().await.unwrap();
    assert_eq!(other_client.status(), 401);
    // Client authentication comes first: the code is still good.
    assert_eq!(exchange(&http, &idp, &form, Some(WEB_SECRET)).await.0, 200);
    let errors: Vec<_> = idp.token_requests().into_iter().map(|r| (r.status, r.error)).collect();
    let invalid_client = (401, Some("invalid_client".to_owned()));
    assert_eq!(errors, [invalid_client.clone(), invalid_client.clone(), invalid_client.clone(), invalid_client, (200, None)]);
}

#[tokio::test]
async fn client_secret_post_works_and_both_methods_at_once_are_refused() {
    let idp = idp().await;
    let http = browser(&idp);
    let pkce = pkce();
    let code = code_for(&http, &idp, &pkce).await;
    let post = [exchange_form(&code, Some(&pkce.verifier)), vec![("client_id", WEB.into()), ("client_secret", WEB_SECRET.into())]].concat();
    let both = exchange(&http, &idp, &post, Some(WEB_SECRET)).await;
    assert_oauth_error(
        &both,
        400,
        "invalid_request",
        "The web client authenticates with one method only: client_secret_basic or client_secret_post (RFC 6749 section 2.3).",
    );
    let no_id = exchange(&http, &idp, &with(post.clone(), "client_id", None), None).await;
    assert_oauth_error(&no_id, 401, "invalid_client", "Missing parameter: client_id");
    let assertion = with(with(post.clone(), "client_secret", None), "client_assertion", Some("eyJhbGciOiJIUzI1NiJ9.e30.x"));
    let assertion = exchange(&http, &idp, &assertion, None).await;
    assert_oauth_error(
        &assertion,
        401,
        "invalid_client",
        "The web client authenticates with its client secret (client_secret_basic or client_secret_post)",
    );
    let (status, answer) = exchange(&http, &idp, &post, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(part(answer["access_token"].as_str().unwrap(), 1)["sub"], alice(&idp).id);
    assert_eq!(part(answer["id_token"].as_str().unwrap(), 1)["nonce"], NONCE);
}

#[tokio::test]
async fn a_web_client_without_a_secret_gets_a_page_saying_so() {
    let idp = DevIdp::start(DevIdpConfig::with_client(AGENT, AGENT_SECRET), ([127, 0, 0, 1], 0).into()).await.unwrap();
    assert_eq!(idp.web_client_secret(), None);
    idp.allow_redirect_uri(REDIRECT);
    let http = browser(&idp);
    let response = get_page(&http, &idp, &authorization(&pkce().challenge)).await;
    assert_error_page(
        response,
        400,
        "The web client dual-auth-web has no client secret configured (DevIdpConfig::web_client_secret): it could not exchange a code.",
    )
    .await;
}

#[tokio::test]
async fn a_redirect_uri_registered_at_run_time_is_accepted_exactly() {
    let idp = idp().await;
    let http = browser(&idp);
    let callback = "http://127.0.0.1:8181/auth/callback";
    let params = with(authorization(&pkce().challenge), "redirect_uri", Some(callback));
    assert_error_page(get_page(&http, &idp, &params).await, 400, "Invalid parameter: redirect_uri").await;
    idp.allow_redirect_uri(callback);
    idp.allow_redirect_uri(callback);
    assert_eq!(idp.web_redirect_uris(), [REDIRECT, callback]);
    let response = get_page(&http, &idp, &params).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("form-action 'self' http://127.0.0.1:8181;"));
    let url = location(&post_login(&http, &idp, &params, "alice", "dual-auth-alice").await);
    assert_eq!(format!("{}://{}:{}{}", url.scheme(), url.host_str().unwrap(), url.port().unwrap(), url.path()), callback);
    assert!(query(&url).contains_key("code"));
    // A registered URI with a fragment, or not absolute, is never redirected to.
    for (uri, problem) in [
        ("https://app.example.test/callback#fragment", "the redirect URI https://app.example.test/callback#fragment has a fragment"),
        ("/relative/callback", "the redirect URI /relative/callback is not an absolute URL: relative URL without a base"),
    ] {
        idp.allow_redirect_uri(uri);
        let params = with(authorization(&pkce().challenge), "redirect_uri", Some(uri));
        let message = format!("Invalid parameter: redirect_uri ({problem}; RFC 6749 section 3.1.2)");
        assert_error_page(get_page(&http, &idp, &params).await, 400, &message).await;
        assert_error_page(post_login(&http, &idp, &params, "alice", "dual-auth-alice").await, 400, &message).await;
    }

    // A configured URI that is not absolute stops the start.
    let mut config = DevIdpConfig::with_client(AGENT, AGENT_SECRET);
    config.web_redirect_uris = vec!["callback".into()];
    assert!(DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.is_err());
    let mut config = DevIdpConfig::with_client(AGENT, AGENT_SECRET);
    config.web_delegate = Some("unknown-agent".into());
    assert!(DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.is_err());
}

#[tokio::test]
async fn the_delegate_is_the_configured_agent() {
    let mut config = DevIdpConfig::with_client(AGENT, AGENT_SECRET);
    config.clients.push(dual_auth_devidp::RegisteredClient { client_id: "second-agent".into(), secret: None, public_key: None });
    config.web_client_secret = Some(WEB_SECRET.into());
    config.web_redirect_uris = vec![REDIRECT.into()];
    config.web_delegate = Some("second-agent".into());
    let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let http = browser(&idp);
    let pkce = pkce();
    let code = code_for(&http, &idp, &pkce).await;
    let (status, answer) = exchange(&http, &idp, &exchange_form(&code, Some(&pkce.verifier)), Some(WEB_SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    let access = part(answer["access_token"].as_str().unwrap(), 1);
    assert_eq!((access["aud"].clone(), access["may_act"].clone()), (json!(["second-agent"]), json!({"sub": "second-agent"})));
}
