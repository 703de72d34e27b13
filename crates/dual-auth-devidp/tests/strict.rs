//! The development provider is strict: the wire mistakes an adapter could make are refused.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dual_auth::api::{ApiClient, ApiRequest};
use dual_auth::auth0::{Auth0Adapter, Auth0Config};
use dual_auth::entraid::{EntraClientAuthentication, EntraIdAdapter, EntraIdConfig};
use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::okta::{OktaAdapter, OktaConfig};
use dual_auth::redis::{RedisSettings, RedisTokenStore, TokenEncryptionKey};
use dual_auth::secrecy::{ExposeSecret, SecretString};
use dual_auth::session::{CachingAdapter, TokenCacheSettings};
use dual_auth::token_endpoint::{AdapterOptions, DpopSettings, HttpSettings, RetryPolicy, TokenEndpoint, client_assertion_fields, field};
use dual_auth::{
    ACCESS_TOKEN_TYPE, Act, AssertionClaims, DelegationMode, DelegationRequest, DpopKey, IamAdapter, IamError, SigningAlgorithm,
    SigningKey, SubjectToken, SubjectTokenType, TOKEN_EXCHANGE_GRANT, TokenRequest, TokenResponse, Vendor,
};
use dual_auth_devidp::{
    DemoUser, DevIdp, DevIdpConfig, RegisteredClient, TokenRequestRecord, authorization_grant_claims, sign_app_assertion,
};
use dual_auth_test_support::agent::{http_settings, secret_auth};
use dual_auth_test_support::key_fixture;
use dual_auth_test_support::servers::Redis;
use serde_json::Value;

const SECRET: &str = "devidp-strict-client-secret-0123456789ab";
const AGENT: &str = "agent";

async fn idp() -> (DevIdp, HttpSettings) {
    let mut config = DevIdpConfig::with_client(AGENT, SECRET);
    // The application's key, so the demo API accepts Entra ID tokens with act assertions.
    config.app_public_key_pem = Some(std::fs::read(dual_auth_test_support::key_fixture("rsa2048-spki.pub.pem")).unwrap());
    let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let http = http_settings(idp.ca_pem(), RetryPolicy::none());
    (idp, http)
}

/// Keycloak's realm URL: the assertion audience the provider expects.
fn realm_url(idp: &DevIdp) -> String {
    idp.keycloak_token_url().replace("/protocol/openid-connect/token", "")
}

/// A valid Keycloak client assertion's claims for `AGENT`, without a human.
fn assertion_without_act(realm: &str) -> AssertionClaims<'_> {
    AssertionClaims {
        issuer: AGENT,
        audience: realm,
        lifetime: Duration::from_secs(300),
        act: None,
        authorized_party: None,
        not_before: false,
    }
}

fn request() -> TokenRequest {
    TokenRequest::new(AGENT, Act::new("user_1").unwrap(), ["finance.read"]).unwrap()
}

#[tokio::test]
async fn wrong_secret_wrong_audience_and_expired_assertions_are_refused() {
    let (idp, http) = idp().await;
    let wrong = KeycloakAdapter::new(
        KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret_auth("another-secret-0123456789abcdefghijklm")),
        AdapterOptions::with_http(http.clone()),
    )
    .unwrap();
    let err = wrong.request_token(&request()).await.unwrap_err();
    assert_eq!((err.status(), err.oauth_error()), (Some(401), Some("invalid_client")), "{err}");

    // Upstream's Okta audience ({domain}/oauth2/{server}) is not the token endpoint: refused.
    let upstream_aud = format!("{}/oauth2/default", idp.base_url());
    let okta = OktaAdapter::new(
        OktaConfig::new(idp.okta_token_url(), AGENT, secret_auth(SECRET)).with_assertion_audience(upstream_aud),
        AdapterOptions::with_http(http.clone()),
    )
    .unwrap();
    let err = okta.request_token(&request()).await.unwrap_err();
    assert!(matches!(&err, IamError::OAuth { description: Some(d), .. } if d.contains("aud must be one of")), "{err}");

    let behind = std::sync::Arc::new(dual_auth::ManualClock::new(SystemTime::now() - Duration::from_secs(900)));
    let stale = KeycloakAdapter::new(
        KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret_auth(SECRET)),
        AdapterOptions { clock: Some(behind), ..AdapterOptions::with_http(http) },
    )
    .unwrap();
    let err = stale.request_token(&request()).await.unwrap_err();
    assert!(matches!(&err, IamError::OAuth { description: Some(d), .. } if d.contains("expired")), "{err}");
}

#[tokio::test]
async fn a_replayed_assertion_and_a_missing_grant_are_refused() {
    let (idp, http) = idp().await;
    let endpoint =
        TokenEndpoint::new(Vendor::Keycloak, idp.keycloak_token_url(), http.build_client().unwrap(), RetryPolicy::none()).unwrap();
    let realm = realm_url(&idp);
    let claims = assertion_without_act(&realm);
    let assertion = secret_auth(SECRET).sign(&claims, SystemTime::now()).unwrap();
    let form = |grant: &'static str| {
        let assertion = assertion.clone();
        move || {
            let mut form = vec![field("grant_type", grant), field("scope", "finance.read")];
            form.extend(client_assertion_fields(assertion.clone()));
            Ok(form)
        }
    };
    let err = endpoint.request(form("password")).await.unwrap_err();
    assert_eq!(err.oauth_error(), Some("unsupported_grant_type"));
    endpoint.request(form("client_credentials")).await.unwrap();
    let err = endpoint.request(form("client_credentials")).await.unwrap_err();
    assert!(matches!(&err, IamError::OAuth { description: Some(d), .. } if d.contains("jti already used")), "{err}");
}

#[tokio::test]
async fn the_api_refuses_tokens_without_a_human_and_entra_tokens_without_an_assertion() {
    let (idp, http) = idp().await;
    let client = http.build_client().unwrap();
    // A Keycloak token for a request without act: valid token, but no human.
    let endpoint = TokenEndpoint::new(Vendor::Keycloak, idp.keycloak_token_url(), client.clone(), RetryPolicy::none()).unwrap();
    let realm = realm_url(&idp);
    let claims = assertion_without_act(&realm);
    let grant = endpoint
        .request(|| {
            let mut form = vec![field("grant_type", "client_credentials"), field("scope", "finance.read")];
            form.extend(client_assertion_fields(secret_auth(SECRET).sign(&claims, SystemTime::now()).unwrap()));
            Ok(form)
        })
        .await
        .unwrap();
    let answer = client.get(format!("{}/x", idp.api_url())).bearer_auth(grant.access_token.expose_secret()).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer.headers()["www-authenticate"],
        r#"Bearer realm="dual-auth-demo", error="invalid_token", error_description="The token does not name an agent acting for a human""#
    );

    // An Entra ID token alone is not enough.
    let entra = TokenEndpoint::new(Vendor::EntraId, idp.entra_token_url(), client.clone(), RetryPolicy::none()).unwrap();
    let scope = format!("{}/.default", idp.config().entra_api);
    let grant = entra
        .request(|| {
            Ok(vec![
                field("grant_type", "client_credentials"),
                field("client_id", AGENT),
                field("client_secret", SECRET),
                field("scope", scope.clone()),
            ])
        })
        .await
        .unwrap();
    let answer = client.get(format!("{}/x", idp.api_url())).bearer_auth(grant.access_token.expose_secret()).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer.text().await.unwrap(),
        r#"{"error":"invalid_token","error_description":"An X-Act-Assertion header is required with this token"}"#
    );
    // A non-/.default scope is refused by the Entra dialect.
    let err = entra
        .request(|| {
            Ok(vec![
                field("grant_type", "client_credentials"),
                field("client_id", AGENT),
                field("client_secret", SECRET),
                field("scope", "finance.read".to_owned()),
            ])
        })
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_scope"));
    let answer = client.get(format!("{}/x", idp.api_url())).send().await.unwrap();
    assert_eq!(answer.status(), 401, "no token at all");
}

// Entra ID against the verifying demo API: the API records every act assertion's jti,
// so each call must carry a fresh one, however the token was cached.

/// One agent replica: the Entra ID adapter behind the default token cache.
fn replica(idp: &DevIdp, http: &HttpSettings) -> CachingAdapter {
    let config = EntraIdConfig {
        token_url: idp.entra_token_url(),
        client_id: AGENT.into(),
        client_auth: EntraClientAuthentication::ClientSecret(SecretString::from(SECRET)),
        app_id: "web-app".into(),
        app_key: Some(SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap()),
        api_audience: idp.config().entra_api.clone(),
        api_scope: format!("{}/.default", idp.config().entra_api),
        delegation: None,
    };
    let adapter = EntraIdAdapter::new(config, AdapterOptions::with_http(http.clone())).unwrap();
    CachingAdapter::new(Arc::new(adapter), TokenCacheSettings::default())
}

fn entra_request(idp: &DevIdp) -> TokenRequest {
    TokenRequest::new(AGENT, Act::new("user_12345").unwrap(), [format!("{}/.default", idp.config().entra_api)]).unwrap()
}

/// Gets a token through `replica` and calls the demo API with it: the status and body.
async fn call(idp: &DevIdp, http: &HttpSettings, replica: &dyn IamAdapter) -> (u16, Value, String) {
    let token = replica.request_token(&entra_request(idp)).await.unwrap();
    let api = ApiClient::new(http.clone()).unwrap();
    let response = api.call_api(&token, ApiRequest::get(format!("{}/finance/report/Q4-2025", idp.api_url()))).await.unwrap();
    (response.status(), response.json().unwrap_or(Value::Null), token.access_token().expose_secret().to_owned())
}

#[tokio::test]
async fn several_calls_in_a_row_with_a_cached_entra_token_all_pass() {
    let (idp, http) = idp().await;
    let agent = replica(&idp, &http);
    let mut tokens = Vec::new();
    for n in 1..=4 {
        let (status, seen, token) = call(&idp, &http, &agent).await;
        assert_eq!(status, 200, "call {n}: {seen}");
        assert_eq!(
            (seen["vendor"].as_str(), seen["agent"].as_str(), seen["human"].as_str()),
            (Some("entraid"), Some(AGENT), Some("user_12345"))
        );
        tokens.push(token);
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one cached access token served every call");
}

#[tokio::test]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn two_replicas_sharing_redis_each_send_their_own_assertion() {
    let (idp, http) = idp().await;
    let redis = Redis::start();
    let settings = RedisSettings::new(SecretString::from(redis.url()));
    let key = || TokenEncryptionKey::from_base64(&SecretString::from("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")).unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = RedisTokenStore::new(settings.connect().await.unwrap(), &settings, key());
        replicas.push(replica(&idp, &http).with_shared_store(Arc::new(store)));
    }
    let (status_a, seen_a, token_a) = call(&idp, &http, &replicas[0]).await;
    let (status_b, seen_b, token_b) = call(&idp, &http, &replicas[1]).await;
    let (status_a2, seen_a2, _) = call(&idp, &http, &replicas[0]).await;
    assert_eq!(token_a, token_b, "the second replica got the first one's token from Redis");
    assert_eq!((status_a, status_b, status_a2), (200, 200, 200), "{seen_a} {seen_b} {seen_a2}");
    assert_eq!(seen_b["human"], "user_12345");
}

// Delegation: alice logs in at /dev/login, the agent exchanges her token with the
// library's adapter, and the delegated demo API says who it saw.

/// An agent alice did not delegate to.
const OTHER: &str = "other-agent";
const OTHER_SECRET: &str = "devidp-strict-other-secret-0123456789abc";
/// The application that signs JWT authorization grant assertions.
const APP_ID: &str = "web-app";
const VENDORS: [&str; 4] = ["keycloak", "auth0", "okta", "entraid"];

async fn delegation_idp() -> (DevIdp, HttpSettings) {
    let mut config = DevIdpConfig::with_client(AGENT, SECRET);
    config.clients.push(RegisteredClient { client_id: OTHER.into(), secret: Some(OTHER_SECRET.into()), public_key: None });
    config.app_public_key_pem = Some(std::fs::read(key_fixture("rsa2048-spki.pub.pem")).unwrap());
    config.app_id = Some(APP_ID.into());
    let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let http = http_settings(idp.ca_pem(), RetryPolicy::none());
    (idp, http)
}

fn alice(idp: &DevIdp) -> DemoUser {
    idp.config().users.iter().find(|u| u.username == "alice").cloned().unwrap()
}

/// `POST /dev/login`: the status and the JSON answer.
async fn login_form(idp: &DevIdp, http: &HttpSettings, form: &[(&str, &str)]) -> (u16, Value) {
    let answer = http.build_client().unwrap().post(idp.login_url()).form(form).send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// Alice's access and ID tokens from `vendor`, delegating to `agent`.
async fn login(idp: &DevIdp, http: &HttpSettings, vendor: &str, agent: &str, lifetime: Option<&str>) -> (String, String) {
    let mut form = vec![("vendor", vendor), ("username", "alice"), ("client_id", agent)];
    if let Some(lifetime) = lifetime {
        form.push(("lifetime", lifetime));
    }
    let (status, answer) = login_form(idp, http, &form).await;
    assert_eq!(status, 200, "{answer}");
    (answer["access_token"].as_str().unwrap().to_owned(), answer["id_token"].as_str().unwrap().to_owned())
}

/// A JWT's claims, unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The library's adapter for `vendor`, built as the tests above build them, for `agent`.
fn adapter(idp: &DevIdp, http: &HttpSettings, vendor: &str, agent: &str) -> Box<dyn IamAdapter> {
    adapter_with(idp, vendor, agent, AdapterOptions::with_http(http.clone()))
}

/// The library's adapter for `vendor` and `agent`, with `options`.
fn adapter_with(idp: &DevIdp, vendor: &str, agent: &str, options: AdapterOptions) -> Box<dyn IamAdapter> {
    let client_secret = if agent == AGENT { SECRET } else { OTHER_SECRET };
    match vendor {
        "keycloak" => Box::new(
            KeycloakAdapter::new(KeycloakConfig::new(idp.keycloak_token_url(), agent, secret_auth(client_secret)), options).unwrap(),
        ),
        "auth0" => Box::new(
            Auth0Adapter::new(
                Auth0Config::new(idp.auth0_token_url(), agent, secret_auth(client_secret), idp.config().api_audience.clone()),
                options,
            )
            .unwrap(),
        ),
        "okta" => Box::new(OktaAdapter::new(OktaConfig::new(idp.okta_token_url(), agent, secret_auth(client_secret)), options).unwrap()),
        "entraid" => Box::new(
            EntraIdAdapter::new(
                EntraIdConfig {
                    token_url: idp.entra_token_url(),
                    client_id: agent.into(),
                    client_auth: EntraClientAuthentication::ClientSecret(SecretString::from(client_secret)),
                    app_id: String::new(),
                    app_key: None,
                    api_audience: String::new(),
                    api_scope: format!("{}/.default", idp.config().entra_api),
                    delegation: Some(DelegationMode::OnBehalfOf),
                },
                options,
            )
            .unwrap(),
        ),
        other => panic!("no vendor {other}"),
    }
}

fn delegation_scopes(idp: &DevIdp, vendor: &str) -> Vec<String> {
    if vendor == "entraid" { vec![format!("{}/.default", idp.config().entra_api)] } else { vec!["finance.read".to_owned()] }
}

/// Exchanges `evidence` for a token with `vendor`'s adapter for `agent`.
async fn delegate(
    idp: &DevIdp,
    http: &HttpSettings,
    vendor: &str,
    agent: &str,
    evidence: &str,
    kind: SubjectTokenType,
) -> Result<TokenResponse, IamError> {
    let request = DelegationRequest::new(agent, SubjectToken::new(evidence, kind).unwrap(), delegation_scopes(idp, vendor)).unwrap();
    adapter(idp, http, vendor, agent).request_delegated_token(&request).await
}

/// Calls the delegated demo API with `token`: the status and the body.
async fn call_delegated(idp: &DevIdp, http: &HttpSettings, token: &TokenResponse) -> (u16, Value) {
    let api = ApiClient::new(http.clone()).unwrap();
    let response = api.call_api(token, ApiRequest::get(format!("{}/finance/report/Q4-2025", idp.delegated_api_url()))).await.unwrap();
    (response.status(), response.json().unwrap_or(Value::Null))
}

/// Alice logs in to `vendor` for the agent, the agent exchanges her access token, and the
/// delegated API names both: the API's answer and the issued token's claims.
async fn delegated_round_trip(vendor: &str) -> (DevIdp, Value, Value) {
    let (idp, http) = delegation_idp().await;
    let (access, _) = login(&idp, &http, vendor, AGENT, None).await;
    let token = delegate(&idp, &http, vendor, AGENT, &access, SubjectTokenType::AccessToken).await.unwrap();
    let (status, seen) = call_delegated(&idp, &http, &token).await;
    assert_eq!(status, 200, "{vendor}: {seen}");
    assert_eq!(seen["vendor"], vendor);
    assert_eq!(seen["agent"], AGENT);
    assert_eq!(seen["vouched_by"], "identity-provider");
    assert_eq!(seen["chain"], serde_json::json!([]));
    let issued = claims(token.access_token().expose_secret());
    assert_eq!(issued["iss"], idp.issuer(vendor).unwrap());
    (idp, seen, issued)
}

#[tokio::test]
async fn keycloak_token_exchange_names_alice_and_the_agent() {
    let (idp, seen, issued) = delegated_round_trip("keycloak").await;
    let alice = alice(&idp);
    assert_eq!(seen["human"], alice.id.as_str());
    assert_eq!(seen["act"]["email"], alice.email.as_str());
    assert_eq!((issued["sub"].as_str(), issued["azp"].as_str()), (Some(alice.id.as_str()), Some(AGENT)));
    assert_eq!(issued["aud"], idp.config().api_audience.as_str());
    assert!(issued.get("act").is_none() && issued.get("may_act").is_none(), "Keycloak 26.7 writes no act: {issued}");
}

#[tokio::test]
async fn auth0_on_behalf_of_names_the_agent_in_act() {
    let (idp, seen, issued) = delegated_round_trip("auth0").await;
    assert_eq!(seen["human"], alice(&idp).id.as_str());
    assert_eq!(issued["act"], serde_json::json!({"sub": AGENT}));
    assert_eq!((issued["sub"].as_str(), issued["azp"].as_str()), (Some(alice(&idp).id.as_str()), Some(AGENT)));
    assert_eq!(issued["aud"], serde_json::json!([idp.config().api_audience]));
}

#[tokio::test]
async fn okta_on_behalf_of_gives_login_uid_and_cid() {
    let (idp, seen, issued) = delegated_round_trip("okta").await;
    let alice = alice(&idp);
    assert_eq!(seen["human"], alice.id.as_str(), "the human is Okta's uid, not the login");
    assert_eq!((issued["sub"].as_str(), issued["uid"].as_str()), (Some(alice.email.as_str()), Some(alice.id.as_str())));
    assert_eq!(issued["cid"], AGENT);
    assert_eq!(issued["scp"], serde_json::json!(["finance.read"]));
    assert!(issued.get("act").is_none(), "Okta writes no act: {issued}");
}

#[tokio::test]
async fn entra_on_behalf_of_gives_a_v2_token_for_the_api() {
    let (idp, seen, issued) = delegated_round_trip("entraid").await;
    let alice = alice(&idp);
    assert_eq!(seen["act"]["oid"], alice.id.as_str(), "the stable user id");
    assert_eq!(seen["human"], issued["sub"], "the human is the pairwise sub");
    assert_ne!(issued["sub"], alice.id.as_str());
    assert_eq!((issued["azp"].as_str(), issued["ver"].as_str()), (Some(AGENT), Some("2.0")));
    assert_eq!(
        (issued["tid"].as_str(), issued["aud"].as_str()),
        (Some(idp.config().tenant.as_str()), Some(idp.config().entra_api.as_str()))
    );
    assert_eq!(issued["scp"], "access_as_user");
    assert!(issued.get("act").is_none(), "Entra ID writes no act: {issued}");
}

#[tokio::test]
async fn the_login_gives_each_vendors_shape() {
    let (idp, http) = delegation_idp().await;
    let alice = alice(&idp);
    let web = idp.config().web_client_id.clone();
    for vendor in VENDORS {
        let (access, id) = login(&idp, &http, vendor, AGENT, None).await;
        let (access, id) = (claims(&access), claims(&id));
        assert_eq!(access["iss"], idp.issuer(vendor).unwrap(), "{vendor}");
        assert_eq!(id["aud"], web.as_str(), "{vendor}: the ID token is the web application's");
        let lifetime = access["exp"].as_u64().unwrap() - access["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 300, "{vendor}: short-lived");
        match vendor {
            "keycloak" => {
                assert_eq!((access["sub"].as_str(), access["azp"].as_str()), (Some(alice.id.as_str()), Some(web.as_str())));
                assert_eq!(access["aud"], serde_json::json!([AGENT]));
            }
            "auth0" => {
                assert_eq!(access["azp"], web.as_str());
                assert_eq!(access["aud"], serde_json::json!([idp.config().api_audience, format!("{}/userinfo", idp.base_url())]));
            }
            "okta" => {
                assert_eq!((access["sub"].as_str(), access["uid"].as_str()), (Some(alice.email.as_str()), Some(alice.id.as_str())));
                assert_eq!(access["cid"], web.as_str());
            }
            _ => {
                assert_eq!(
                    (access["aud"].as_str(), access["oid"].as_str(), access["ver"].as_str()),
                    (Some(AGENT), Some(alice.id.as_str()), Some("2.0"))
                );
                assert_ne!(access["sub"], id["sub"], "pairwise: another sub for another application");
                assert_eq!(access["tid"], idp.config().tenant.as_str());
            }
        }
    }
    for (form, wanted) in [
        (vec![("vendor", "ping"), ("username", "alice"), ("client_id", AGENT)], "vendor"),
        (vec![("vendor", "okta"), ("username", "mallory"), ("client_id", AGENT)], "unknown user"),
        (vec![("vendor", "okta"), ("username", "alice"), ("client_id", "nobody")], "not a registered agent"),
        (vec![("vendor", "okta"), ("username", "alice"), ("client_id", AGENT), ("lifetime", "86400")], "at most 3600"),
    ] {
        let (status, answer) = login_form(&idp, &http, &form).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{answer}");
        assert!(answer["error_description"].as_str().unwrap().contains(wanted), "{answer}");
    }
}

/// Asserts a typed refusal: status, OAuth error, a part of the description, and no trace
/// of the evidence in the error's Display or Debug.
fn assert_refused(case: &str, err: &IamError, status: u16, error: &str, description: &str, evidence: &str) {
    assert_eq!((err.status(), err.oauth_error()), (Some(status), Some(error)), "{case}: {err}");
    assert!(matches!(err, IamError::OAuth { description: Some(d), .. } if d.contains(description)), "{case}: {err}");
    let signature = evidence.rsplit('.').next().unwrap();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(evidence) && !shown.contains(signature), "{case}: the evidence leaked: {shown}");
    }
}

/// Expected refusals of one vendor: (status, error, description part) for expired
/// evidence, evidence for another agent, an ID token as evidence, and a bad signature.
async fn refusals(vendor: &str, expected: [(u16, &str, &str); 4]) {
    let (idp, http) = delegation_idp().await;
    let (expired, _) = login(&idp, &http, vendor, AGENT, Some("0")).await;
    let (access, id_token) = login(&idp, &http, vendor, AGENT, None).await;
    let (body, _) = access.rsplit_once('.').unwrap();
    let forged = format!("{body}.{}", id_token.rsplit('.').next().unwrap());
    let cases = [
        ("expired evidence", &expired, AGENT),
        ("another agent", &access, OTHER),
        ("an ID token", &id_token, AGENT),
        ("a bad signature", &forged, AGENT),
    ];
    for ((case, evidence, agent), (status, error, description)) in cases.into_iter().zip(expected) {
        let err = delegate(&idp, &http, vendor, agent, evidence, SubjectTokenType::AccessToken).await.unwrap_err();
        assert_refused(&format!("{vendor}, {case}"), &err, status, error, description, evidence);
    }
}

#[tokio::test]
async fn keycloak_refuses_bad_evidence_as_keycloak_does() {
    refusals(
        "keycloak",
        [
            (400, "invalid_request", "Invalid token"),
            (403, "access_denied", "Client is not within the token audience"),
            (400, "invalid_request", "Invalid token"),
            (400, "invalid_request", "Invalid token"),
        ],
    )
    .await;
}

#[tokio::test]
async fn auth0_refuses_bad_evidence() {
    refusals(
        "auth0",
        [
            (401, "invalid_grant", "expired"),
            (403, "access_denied", "may_act"),
            (401, "invalid_grant", "not an access token"),
            (401, "invalid_grant", "signature"),
        ],
    )
    .await;
}

#[tokio::test]
async fn okta_refuses_bad_evidence() {
    refusals(
        "okta",
        [
            (400, "invalid_grant", "expired"),
            (400, "invalid_grant", "may_act"),
            (400, "invalid_grant", "not an access token"),
            (400, "invalid_grant", "signature"),
        ],
    )
    .await;
}

#[tokio::test]
async fn entra_refuses_bad_evidence_with_aadsts_codes() {
    refusals(
        "entraid",
        [
            (400, "invalid_grant", "AADSTS500133: Assertion is not within its valid time range"),
            (400, "invalid_grant", "AADSTS50013: Assertion audience does not match the Client app"),
            (400, "invalid_grant", "AADSTS50013: Assertion is invalid: it is not an access token"),
            (400, "invalid_grant", "AADSTS50013: Assertion failed signature validation"),
        ],
    )
    .await;
}

#[tokio::test]
async fn evidence_from_another_vendor_or_the_agent_itself_is_refused() {
    let (idp, http) = delegation_idp().await;
    // Okta's token sent to Auth0: another issuer.
    let (okta, _) = login(&idp, &http, "okta", AGENT, None).await;
    let err = delegate(&idp, &http, "auth0", AGENT, &okta, SubjectTokenType::AccessToken).await.unwrap_err();
    assert_refused("okta token at auth0", &err, 401, "invalid_grant", "another issuer", &okta);
    // The agent's own (self-asserted, client-credentials) token names no user.
    let own = adapter(&idp, &http, "okta", AGENT).request_token(&request()).await.unwrap();
    let own = own.access_token().expose_secret().to_owned();
    let err = delegate(&idp, &http, "okta", AGENT, &own, SubjectTokenType::AccessToken).await.unwrap_err();
    assert_refused("the agent's own token", &err, 400, "invalid_grant", "names no user", &own);
    // Nor does the delegated API take that token.
    let own = adapter(&idp, &http, "keycloak", AGENT).request_token(&request()).await.unwrap();
    let (status, _) = call_delegated(&idp, &http, &own).await;
    assert_eq!(status, 401, "a self-asserted token is not a delegated one");
}

#[tokio::test]
async fn auth0_nests_earlier_actors_and_refuses_custom_token_types() {
    let (idp, http) = delegation_idp().await;
    let (access, _) = login(&idp, &http, "auth0", AGENT, None).await;
    let first = delegate(&idp, &http, "auth0", AGENT, &access, SubjectTokenType::AccessToken).await.unwrap();
    // The agent's token (no may_act) goes on to the other agent: a two-level chain.
    let second = delegate(&idp, &http, "auth0", OTHER, first.access_token().expose_secret(), SubjectTokenType::AccessToken).await.unwrap();
    let issued = claims(second.access_token().expose_secret());
    assert_eq!(issued["act"], serde_json::json!({"sub": OTHER, "act": {"sub": AGENT}}));
    let (status, seen) = call_delegated(&idp, &http, &second).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!((seen["agent"].as_str(), seen["human"].as_str()), (Some(OTHER), Some(alice(&idp).id.as_str())));
    assert_eq!(seen["chain"], serde_json::json!([{"sub": AGENT}]));
    // Custom Token Exchange has no profile here.
    let err = delegate(&idp, &http, "auth0", AGENT, &access, SubjectTokenType::Other("urn:acme:legacy-token".into())).await.unwrap_err();
    assert_refused("custom token type", &err, 400, "invalid_request", "No Custom Token Exchange profile", &access);
}

/// Auth0's Resource Parameter Compatibility Profile
/// (<https://auth0.com/ai/docs/mcp/guides/resource-param-compatibility-profile>): RFC 8707
/// `resource` names the API when `audience` does not; `audience` wins when both come.
#[tokio::test]
async fn auth0_takes_the_resource_parameter_when_no_audience_comes() {
    const MCP: &str = "https://mcp.dual-auth.example/mcp";
    let mut config = DevIdpConfig::with_client(AGENT, SECRET);
    config.extra_apis.push(MCP.into());
    let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let http = http_settings(idp.ca_pem(), RetryPolicy::none());
    let (access, _) = login(&idp, &http, "auth0", AGENT, None).await;
    let adapter = adapter(&idp, &http, "auth0", AGENT);
    let request =
        || DelegationRequest::new(AGENT, SubjectToken::new(&access, SubjectTokenType::AccessToken).unwrap(), ["tools.read"]).unwrap();

    let token = adapter.request_delegated_token(&request().with_resource(MCP)).await.unwrap();
    let issued = claims(token.access_token().expose_secret());
    // Had the adapter added its default audience, Auth0 would have used that instead.
    assert_eq!(issued["aud"], serde_json::json!([MCP]));
    assert_eq!(issued["act"], serde_json::json!({"sub": AGENT}));

    let both = request().with_resource(MCP).with_audience(idp.config().api_audience.clone());
    let issued = claims(adapter.request_delegated_token(&both).await.unwrap().access_token().expose_secret());
    assert_eq!(issued["aud"], serde_json::json!([idp.config().api_audience]));

    // A token for the MCP server is evidence for a registered API, so it can be exchanged
    // again (the MCP server calling the finance API for Alice).
    let onward = DelegationRequest::new(
        AGENT,
        SubjectToken::new(token.access_token().expose_secret(), SubjectTokenType::AccessToken).unwrap(),
        ["finance.read"],
    )
    .unwrap();
    let issued = claims(adapter.request_delegated_token(&onward).await.unwrap().access_token().expose_secret());
    assert_eq!(issued["aud"], serde_json::json!([idp.config().api_audience]));

    let err = adapter.request_delegated_token(&request().with_resource("https://elsewhere.example/mcp")).await.unwrap_err();
    assert_refused("unknown resource", &err, 403, "access_denied", "Service not found: https://elsewhere.example/mcp", &access);
}

#[tokio::test]
async fn a_delegation_grant_refuses_a_client_assertion_with_act() {
    let (idp, http) = delegation_idp().await;
    let (access, _) = login(&idp, &http, "keycloak", AGENT, None).await;
    let endpoint =
        TokenEndpoint::new(Vendor::Keycloak, idp.keycloak_token_url(), http.build_client().unwrap(), RetryPolicy::none()).unwrap();
    let realm = realm_url(&idp);
    let act = Act::new("user_1").unwrap();
    let claims = AssertionClaims { act: Some(&act), ..assertion_without_act(&realm) };
    let err = endpoint
        .request(|| {
            let mut form = vec![
                field("grant_type", TOKEN_EXCHANGE_GRANT),
                field("subject_token", access.clone()),
                field("subject_token_type", ACCESS_TOKEN_TYPE),
            ];
            form.extend(client_assertion_fields(secret_auth(SECRET).sign(&claims, SystemTime::now()).unwrap()));
            Ok(form)
        })
        .await
        .unwrap_err();
    assert_refused("act in the client assertion", &err, 400, "invalid_request", "carries act", &access);
}

/// The Keycloak adapter in the JWT authorization grant mode.
fn grant_adapter(idp: &DevIdp, http: &HttpSettings) -> KeycloakAdapter {
    let config =
        KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret_auth(SECRET)).with_delegation(DelegationMode::JwtAuthorizationGrant);
    KeycloakAdapter::new(config, AdapterOptions::with_http(http.clone())).unwrap()
}

fn app_assertion(claims: &Value) -> String {
    sign_app_assertion(&std::fs::read(key_fixture("rsa2048-pkcs8.pem")).unwrap(), claims).unwrap()
}

async fn grant(adapter: &KeycloakAdapter, assertion: &str) -> Result<TokenResponse, IamError> {
    let request = DelegationRequest::new(AGENT, SubjectToken::new(assertion, SubjectTokenType::Jwt).unwrap(), ["finance.read"]).unwrap();
    adapter.request_delegated_token(&request).await
}

#[tokio::test]
async fn keycloak_jwt_authorization_grant_names_the_linked_user_once() {
    let (idp, http) = delegation_idp().await;
    let alice = alice(&idp);
    let adapter = grant_adapter(&idp, &http);
    let assertion = app_assertion(&authorization_grant_claims(APP_ID, &alice.app_user_id, &idp.keycloak_realm_url(), 120));
    let token = grant(&adapter, &assertion).await.unwrap();
    let (status, seen) = call_delegated(&idp, &http, &token).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!((seen["vendor"].as_str(), seen["agent"].as_str()), (Some("keycloak"), Some(AGENT)));
    assert_eq!((seen["human"].as_str(), seen["vouched_by"].as_str()), (Some(alice.id.as_str()), Some("identity-provider")));
    let err = grant(&adapter, &assertion).await.unwrap_err();
    assert_refused("replayed assertion", &err, 400, "invalid_grant", "Token reuse detected", &assertion);
}

#[tokio::test]
async fn keycloak_jwt_authorization_grant_refuses_bad_assertions() {
    let (idp, http) = delegation_idp().await;
    let alice = alice(&idp);
    let adapter = grant_adapter(&idp, &http);
    let realm = idp.keycloak_realm_url();
    let good = || authorization_grant_claims(APP_ID, &alice.app_user_id, &realm, 120);
    let with = |name: &str, value: Value| {
        let mut claims = good();
        claims[name] = value;
        claims
    };
    let without = |name: &str| {
        let mut claims = good();
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let other_key = sign_app_assertion(&std::fs::read(key_fixture("rsa2048-other.pem")).unwrap(), &good()).unwrap();
    let cases = [
        ("another issuer", app_assertion(&with("iss", "https://evil.example".into())), "No Identity Provider for provided issuer"),
        ("another key", other_key, "Invalid signature"),
        ("another audience", app_assertion(&with("aud", idp.base_url().into())), "Invalid token audience"),
        (
            "two audiences",
            app_assertion(&with("aud", serde_json::json!([realm, idp.keycloak_token_url()]))),
            "Multiple audiences not allowed",
        ),
        ("no exp", app_assertion(&without("exp")), "Token exp claim is required"),
        ("expired", app_assertion(&with("exp", (now - 10).into())), "Token is not active"),
        ("issued too long ago", app_assertion(&with("iat", (now - 400).into())), "Token was issued too far in the past"),
        (
            "long-lived without iat",
            app_assertion(&{
                let mut claims = without("iat");
                claims["exp"] = (now + 3600).into();
                claims
            }),
            "Token expiration is too far in the future",
        ),
        ("no jti", app_assertion(&without("jti")), "Token jti claim is required"),
        ("an unlinked user", app_assertion(&with("sub", "app-mallory".into())), "User not found"),
        ("may_act for another agent", app_assertion(&with("may_act", serde_json::json!({"sub": OTHER}))), "may_act"),
    ];
    for (case, assertion, description) in cases {
        let err = grant(&adapter, &assertion).await.unwrap_err();
        assert_refused(case, &err, 400, "invalid_grant", description, &assertion);
    }
}

// DPoP (RFC 9449): the Keycloak, Auth0 and Okta dialects bind tokens to the proof's key;
// the demo APIs take them with a fresh proof of that key.

const DPOP_VENDORS: [&str; 3] = ["keycloak", "auth0", "okta"];

fn dpop_key(algorithm: SigningAlgorithm) -> DpopKey {
    DpopKey::generate(algorithm).unwrap()
}

/// The adapter for `vendor` with DPoP-bound tokens by `key`.
fn dpop_adapter(idp: &DevIdp, http: &HttpSettings, vendor: &str, key: &DpopKey) -> Box<dyn IamAdapter> {
    adapter_with(idp, vendor, AGENT, AdapterOptions::with_http(http.clone()).with_dpop(DpopSettings::new(key.clone())))
}

/// The token requests `vendor` saw.
fn requests_to(idp: &DevIdp, vendor: &str) -> Vec<TokenRequestRecord> {
    idp.token_requests().into_iter().filter(|r| r.vendor == vendor).collect()
}

fn record(vendor: &'static str, grant: &str, proof_nonce: Option<&str>, answer: Result<&str, (&str, Option<&str>)>) -> TokenRequestRecord {
    let (status, error, dpop_nonce, token_type) = match answer {
        Ok(token_type) => (200, None, None, Some(token_type.to_owned())),
        Err((error, nonce)) => (400, Some(error.to_owned()), nonce.map(str::to_owned), None),
    };
    TokenRequestRecord {
        vendor,
        grant_type: grant.to_owned(),
        dpop_proof: true,
        proof_nonce: proof_nonce.map(str::to_owned),
        status,
        error,
        dpop_nonce,
        token_type,
        code_replayed: false,
    }
}

/// Asserts a bound token: `token_type` DPoP, the key attached, `cnf.jkt` its thumbprint.
fn assert_bound(case: &str, token: &TokenResponse, key: &DpopKey) {
    assert_eq!(token.token_type(), "DPoP", "{case}");
    assert!(token.is_dpop_bound(), "{case}");
    let issued = claims(token.access_token().expose_secret());
    assert_eq!(issued["cnf"], serde_json::json!({"jkt": key.thumbprint()}), "{case}: {issued}");
}

/// Calls `api` (a demo API's base URL) with `token` through the library's API client.
async fn call_with(http: &HttpSettings, api: &str, token: &TokenResponse) -> (u16, Value, String) {
    let client = ApiClient::new(http.clone()).unwrap();
    let response = client.call_api(token, ApiRequest::get(format!("{api}/finance/report/Q4-2025"))).await.unwrap();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (response.status(), response.json().unwrap_or(Value::Null), challenge)
}

#[tokio::test]
async fn keycloak_auth0_and_okta_issue_dpop_bound_tokens_the_api_accepts() {
    let (idp, http) = idp().await;
    for (vendor, algorithm) in
        [("keycloak", SigningAlgorithm::Es256), ("auth0", SigningAlgorithm::EdDsa), ("okta", SigningAlgorithm::Es256)]
    {
        let key = dpop_key(algorithm);
        let agent = dpop_adapter(&idp, &http, vendor, &key);
        let token = agent.request_token(&request()).await.unwrap();
        assert_bound(vendor, &token, &key);
        let (status, seen, _) = call_with(&http, &idp.api_url(), &token).await;
        assert_eq!(status, 200, "{vendor}: {seen}");
        assert_eq!((seen["vendor"].as_str(), seen["agent"].as_str(), seen["human"].as_str()), (Some(vendor), Some(AGENT), Some("user_1")));
        assert_eq!(seen["dpop_jkt"], key.thumbprint(), "{vendor}: the API saw the same key");
        // A second token from the same agent: Okta's nonce is remembered, no new challenge.
        assert_bound(vendor, &agent.request_token(&request()).await.unwrap(), &key);
    }
    let nonce = idp.okta_dpop_nonce();
    let dpop = |vendor, proof_nonce| record(vendor, "client_credentials", proof_nonce, Ok("DPoP"));
    assert_eq!(requests_to(&idp, "keycloak"), [dpop("keycloak", None), dpop("keycloak", None)], "no nonce from Keycloak");
    assert_eq!(requests_to(&idp, "auth0"), [dpop("auth0", None), dpop("auth0", None)]);
    assert_eq!(
        requests_to(&idp, "okta"),
        [
            record("okta", "client_credentials", None, Err(("use_dpop_nonce", Some(nonce)))),
            dpop("okta", Some(nonce)),
            dpop("okta", Some(nonce)),
        ],
        "Okta: the first proof is answered use_dpop_nonce, the retry and the next request carry the nonce"
    );
}

#[tokio::test]
async fn delegation_grants_issue_dpop_bound_tokens_the_delegated_api_accepts() {
    let (idp, http) = delegation_idp().await;
    let alice = alice(&idp);
    for vendor in DPOP_VENDORS {
        let key = dpop_key(SigningAlgorithm::Es256);
        let (access, _) = login(&idp, &http, vendor, AGENT, None).await;
        let evidence = SubjectToken::new(access, SubjectTokenType::AccessToken).unwrap();
        let request = DelegationRequest::new(AGENT, evidence, delegation_scopes(&idp, vendor)).unwrap();
        let token = dpop_adapter(&idp, &http, vendor, &key).request_delegated_token(&request).await.unwrap();
        assert_bound(vendor, &token, &key);
        let (status, seen, _) = call_with(&http, &idp.delegated_api_url(), &token).await;
        assert_eq!(status, 200, "{vendor}: {seen}");
        assert_eq!(seen["agent"], AGENT);
        assert_eq!(seen["dpop_jkt"], key.thumbprint(), "{vendor}");
        let grant = TOKEN_EXCHANGE_GRANT;
        let expected = match vendor {
            "okta" => {
                let nonce = idp.okta_dpop_nonce();
                vec![record("okta", grant, None, Err(("use_dpop_nonce", Some(nonce)))), record("okta", grant, Some(nonce), Ok("DPoP"))]
            }
            "auth0" => vec![record("auth0", grant, None, Ok("DPoP"))],
            _ => vec![record("keycloak", grant, None, Ok("DPoP"))],
        };
        assert_eq!(requests_to(&idp, vendor).into_iter().filter(|r| r.grant_type == grant).collect::<Vec<_>>(), expected, "{vendor}");
    }
    // Keycloak's JWT authorization grant, bound too.
    let key = dpop_key(SigningAlgorithm::EdDsa);
    let config =
        KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret_auth(SECRET)).with_delegation(DelegationMode::JwtAuthorizationGrant);
    let options = AdapterOptions::with_http(http.clone()).with_dpop(DpopSettings::new(key.clone()));
    let adapter = KeycloakAdapter::new(config, options).unwrap();
    let assertion = app_assertion(&authorization_grant_claims(APP_ID, &alice.app_user_id, &idp.keycloak_realm_url(), 120));
    let token = grant(&adapter, &assertion).await.unwrap();
    assert_bound("JWT authorization grant", &token, &key);
    let (status, seen, _) = call_with(&http, &idp.delegated_api_url(), &token).await;
    assert_eq!((status, seen["human"].as_str()), (200, Some(alice.id.as_str())), "{seen}");
    assert_eq!(seen["dpop_jkt"], key.thumbprint());
}

/// A client-credentials request to `vendor`'s token endpoint with a fresh client assertion
/// and these `DPoP` headers: the status, the `DPoP-Nonce` answered and the body.
async fn token_request_with(idp: &DevIdp, http: &HttpSettings, vendor: &str, proofs: &[&str]) -> (u16, Option<String>, Value) {
    let realm = realm_url(idp);
    let (url, audience) = match vendor {
        "keycloak" => (idp.keycloak_token_url(), realm.clone()),
        "auth0" => (idp.auth0_token_url(), idp.issuer("auth0").unwrap()),
        "okta" => (idp.okta_token_url(), idp.okta_token_url()),
        _ => (idp.entra_token_url(), String::new()),
    };
    let assertion =
        secret_auth(SECRET).sign(&AssertionClaims { audience: &audience, ..assertion_without_act(&realm) }, SystemTime::now()).unwrap();
    let mut form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", AGENT.to_owned()),
        ("scope", "finance.read".to_owned()),
        ("audience", idp.config().api_audience.clone()),
    ];
    if vendor == "entraid" {
        form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", AGENT.to_owned()),
            ("client_secret", SECRET.to_owned()),
            ("scope", format!("{}/.default", idp.config().entra_api)),
        ];
    } else {
        for (name, value) in client_assertion_fields(assertion) {
            form.push((name, value.expose_secret().to_owned()));
        }
    }
    let mut builder = http.build_client().unwrap().post(url).form(&form);
    for proof in proofs {
        builder = builder.header("DPoP", *proof);
    }
    let answer = builder.send().await.unwrap();
    let nonce = answer.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
    (answer.status().as_u16(), nonce, answer.json().await.unwrap())
}

fn url(text: &str) -> url::Url {
    url::Url::parse(text).unwrap()
}

fn token_url(idp: &DevIdp, vendor: &str) -> String {
    match vendor {
        "keycloak" => idp.keycloak_token_url(),
        "auth0" => idp.auth0_token_url(),
        _ => idp.okta_token_url(),
    }
}

/// A proof with `key`'s signature and `jwk` swapped in from `other`: signed by another key
/// than the one it names.
fn with_jwk_of(proof: &str, other: &str) -> String {
    let mut parts: Vec<&str> = proof.split('.').collect();
    parts[0] = other.split('.').next().unwrap();
    parts.join(".")
}

#[tokio::test]
async fn token_endpoints_refuse_bad_proofs_as_each_vendor_does() {
    let (idp, http) = idp().await;
    let now = SystemTime::now();
    for vendor in DPOP_VENDORS {
        let key = dpop_key(SigningAlgorithm::Es256);
        let other = dpop_key(SigningAlgorithm::Es256);
        let endpoint = url(&token_url(&idp, vendor));
        let nonce = (vendor == "okta").then(|| idp.okta_dpop_nonce().to_owned());
        let nonce = nonce.as_deref();
        let proof = |key: &DpopKey, method: &str, at: &url::Url, ath: Option<&str>, when: SystemTime| {
            key.proof(method, at, ath, nonce, when).unwrap().expose_secret().to_owned()
        };
        let good = proof(&key, "POST", &endpoint, None, now);
        let (status, _, body) = token_request_with(&idp, &http, vendor, &[&good]).await;
        assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")), "{vendor}: {body}");
        assert_eq!(claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"], key.thumbprint());

        let elsewhere = url(&format!("{}/elsewhere", idp.base_url()));
        let cases: Vec<(&str, Vec<String>, &str)> = vec![
            ("a proof for another URL", vec![proof(&key, "POST", &elsewhere, None, now)], "DPoP HTTP URL mismatch"),
            ("a reused proof (same jti)", vec![good.clone()], "DPoP proof has already been used"),
            (
                "a proof signed by another key than its jwk",
                vec![with_jwk_of(&proof(&key, "POST", &endpoint, None, now), &proof(&other, "POST", &endpoint, None, now))],
                "DPoP verification failure: Invalid token signature",
            ),
            ("another method", vec![proof(&key, "GET", &endpoint, None, now)], "DPoP HTTP method mismatch"),
            ("an old proof", vec![proof(&key, "POST", &endpoint, None, now - Duration::from_secs(120))], "DPoP proof is not active"),
            (
                "a proof from the future",
                vec![proof(&key, "POST", &endpoint, None, now + Duration::from_secs(120))],
                "DPoP proof is not active",
            ),
            (
                "an access token hash",
                vec![proof(&key, "POST", &endpoint, Some("a-token"), now)],
                "DPoP verification failure: ath is not allowed",
            ),
            (
                "two DPoP headers",
                vec![proof(&key, "POST", &endpoint, None, now), proof(&key, "POST", &endpoint, None, now)],
                "DPoP header verification failure",
            ),
            ("not a JWT", vec!["not-a-proof".to_owned()], "DPoP header verification failure"),
        ];
        for (case, proofs, keycloak_says) in cases {
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            let (status, nonce_header, body) = token_request_with(&idp, &http, vendor, &proofs).await;
            let (error, description) = (body["error"].as_str(), body["error_description"].as_str().unwrap_or_default());
            assert_eq!(status, 400, "{vendor}, {case}: {body}");
            assert!(nonce_header.is_none(), "{vendor}, {case}");
            if vendor == "keycloak" {
                assert_eq!(error, Some("invalid_request"), "{case}: {body}");
                assert!(description.starts_with(keycloak_says), "{case}: {body}");
            } else {
                assert_eq!(error, Some("invalid_dpop_proof"), "{vendor}, {case}: {body}");
            }
        }
    }
    // Okta: a proof without the nonce, or with a stale one, is answered with the nonce.
    let key = dpop_key(SigningAlgorithm::Es256);
    let endpoint = url(&idp.okta_token_url());
    for nonce in [None, Some("stale-nonce")] {
        let proof = key.proof("POST", &endpoint, None, nonce, now).unwrap();
        let (status, nonce_header, body) = token_request_with(&idp, &http, "okta", &[proof.expose_secret()]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "{body}");
        assert_eq!(nonce_header.as_deref(), Some(idp.okta_dpop_nonce()));
    }
}

#[tokio::test]
async fn keycloak_refuses_proofs_with_private_or_unsupported_keys() {
    let (idp, http) = idp().await;
    let endpoint = url(&idp.keycloak_token_url());
    let proof = dpop_key(SigningAlgorithm::Es256).proof("POST", &endpoint, None, None, SystemTime::now()).unwrap();
    let parts: Vec<&str> = proof.expose_secret().split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let reheader = |edit: &dyn Fn(&mut Value)| {
        let mut header = header.clone();
        edit(&mut header);
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), parts[1], parts[2])
    };
    let cases: [(&str, String, &str); 5] = [
        ("typ JWT", reheader(&|h| h["typ"] = "JWT".into()), "Invalid or missing type in DPoP header: JWT"),
        ("alg HS256", reheader(&|h| h["alg"] = "HS256".into()), "Unsupported DPoP algorithm: HS256"),
        ("no jwk", reheader(&|h| drop(h.as_object_mut().unwrap().remove("jwk"))), "No JWK in DPoP header"),
        ("a private member", reheader(&|h| h["jwk"]["d"] = "c2VjcmV0".into()), "Private key material must not be present in DPoP JWK"),
        (
            "an RSA jwk for ES256",
            reheader(&|h| h["jwk"] = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
            "Unsupported key type in DPoP header",
        ),
    ];
    for (case, proof, description) in cases {
        let (status, _, body) = token_request_with(&idp, &http, "keycloak", &[&proof]).await;
        assert_eq!(
            (status, body["error"].as_str(), body["error_description"].as_str()),
            (400, Some("invalid_request"), Some(description)),
            "{case}"
        );
    }
}

#[tokio::test]
async fn entra_ignores_a_dpop_header_and_issues_a_bearer_token() {
    let (idp, http) = idp().await;
    let proof = dpop_key(SigningAlgorithm::Es256).proof("POST", &url(&idp.entra_token_url()), None, None, SystemTime::now()).unwrap();
    let (status, _, body) = token_request_with(&idp, &http, "entraid", &[proof.expose_secret()]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")), "{body}");
    assert!(claims(body["access_token"].as_str().unwrap()).get("cnf").is_none(), "no binding");
}

#[tokio::test]
async fn the_api_refuses_a_bound_token_as_bearer_with_another_key_or_with_a_bad_proof() {
    let (idp, http) = idp().await;
    let key = dpop_key(SigningAlgorithm::Es256);
    let token = dpop_adapter(&idp, &http, "keycloak", &key).request_token(&request()).await.unwrap();
    let access = token.access_token().expose_secret().to_owned();
    let report = format!("{}/finance/report/Q4-2025", idp.api_url());
    let client = http.build_client().unwrap();

    // As a bearer token (RFC 9449 §7.2).
    let answer = client.get(&report).bearer_auth(&access).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_token""#), "{challenge}");

    // With a proof by another key: the key does not match cnf.jkt.
    let stolen = token.clone().with_dpop_key(dpop_key(SigningAlgorithm::Es256));
    let (status, seen, challenge) = call_with(&http, &idp.api_url(), &stolen).await;
    assert_eq!(status, 401, "{seen}");
    assert!(challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_token""#), "{challenge}");

    // With the right key, but a proof for another URL, or one used before.
    let send = |proof: String| {
        let request = client.get(&report).header("Authorization", format!("DPoP {access}")).header("DPoP", proof);
        async move {
            let answer = request.send().await.unwrap();
            let challenge = answer.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            (answer.status().as_u16(), challenge)
        }
    };
    let proof_for = |at: &str| key.proof("GET", &url(at), Some(&access), None, SystemTime::now()).unwrap().expose_secret().to_owned();
    let (status, challenge) = send(proof_for(&format!("{}/other", idp.api_url()))).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_dpop_proof""#), "{challenge}");
    let once = proof_for(&report);
    assert_eq!(send(once.clone()).await.0, 200, "the first use");
    let (status, challenge) = send(once).await;
    assert_eq!(status, 401, "the replay");
    assert!(challenge.starts_with("DPoP ") && challenge.contains("error="), "{challenge}");
    // And the right call still passes through the library's client.
    let (status, seen, _) = call_with(&http, &idp.api_url(), &token).await;
    assert_eq!((status, seen["dpop_jkt"].as_str()), (200, Some(key.thumbprint())), "{seen}");
}
