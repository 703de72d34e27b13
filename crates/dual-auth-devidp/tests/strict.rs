//! The development provider is strict: the wire mistakes an adapter could make are refused.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dual_auth::api::{ApiClient, ApiRequest};
use dual_auth::entraid::{EntraClientAuthentication, EntraIdAdapter, EntraIdConfig};
use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::okta::{OktaAdapter, OktaConfig};
use dual_auth::redis::{RedisSettings, RedisTokenStore, TokenEncryptionKey};
use dual_auth::secrecy::{ExposeSecret, SecretString};
use dual_auth::session::{CachingAdapter, TokenCacheSettings};
use dual_auth::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy, TokenEndpoint, client_assertion_fields, field};
use dual_auth::{Act, AssertionClaims, ClientAuthentication, IamAdapter, IamError, SigningKey, TokenRequest, Vendor};
use dual_auth_devidp::{DevIdp, DevIdpConfig};
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
    let http = HttpSettings {
        extra_root_certificates_pem: Some(idp.ca_pem().as_bytes().to_vec()),
        retry: RetryPolicy::none(),
        ..HttpSettings::default()
    };
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

fn secret(s: &str) -> ClientAuthentication {
    ClientAuthentication::client_secret_jwt(&SecretString::from(s)).unwrap()
}

fn request() -> TokenRequest {
    TokenRequest::new(AGENT, Act::new("user_1").unwrap(), ["finance.read"]).unwrap()
}

#[tokio::test]
async fn wrong_secret_wrong_audience_and_expired_assertions_are_refused() {
    let (idp, http) = idp().await;
    let wrong = KeycloakAdapter::new(
        KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret("another-secret-0123456789abcdefghijklm")),
        AdapterOptions::with_http(http.clone()),
    )
    .unwrap();
    let err = wrong.request_token(&request()).await.unwrap_err();
    assert_eq!((err.status(), err.oauth_error()), (Some(401), Some("invalid_client")), "{err}");

    // Upstream's Okta audience ({domain}/oauth2/{server}) is not the token endpoint: refused.
    let upstream_aud = format!("{}/oauth2/default", idp.base_url());
    let okta = OktaAdapter::new(
        OktaConfig::new(idp.okta_token_url(), AGENT, secret(SECRET)).with_assertion_audience(upstream_aud),
        AdapterOptions::with_http(http.clone()),
    )
    .unwrap();
    let err = okta.request_token(&request()).await.unwrap_err();
    assert!(matches!(&err, IamError::OAuth { description: Some(d), .. } if d.contains("aud must be one of")), "{err}");

    let behind = std::sync::Arc::new(dual_auth::ManualClock::new(SystemTime::now() - Duration::from_secs(900)));
    let stale = KeycloakAdapter::new(
        KeycloakConfig::new(idp.keycloak_token_url(), AGENT, secret(SECRET)),
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
        TokenEndpoint::new(Vendor::Keycloak, &idp.keycloak_token_url(), http.build_client().unwrap(), RetryPolicy::none()).unwrap();
    let realm = realm_url(&idp);
    let claims = assertion_without_act(&realm);
    let assertion = secret(SECRET).sign(&claims, SystemTime::now()).unwrap();
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
    let endpoint = TokenEndpoint::new(Vendor::Keycloak, &idp.keycloak_token_url(), client.clone(), RetryPolicy::none()).unwrap();
    let realm = realm_url(&idp);
    let claims = assertion_without_act(&realm);
    let grant = endpoint
        .request(|| {
            let mut form = vec![field("grant_type", "client_credentials"), field("scope", "finance.read")];
            form.extend(client_assertion_fields(secret(SECRET).sign(&claims, SystemTime::now()).unwrap()));
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
    let entra = TokenEndpoint::new(Vendor::EntraId, &idp.entra_token_url(), client.clone(), RetryPolicy::none()).unwrap();
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
