//! The Keycloak adapter against a real Keycloak (the pinned release from Maven Central,
//! installed and started by `dual-auth-test-support`), with the realm the project ships in
//! `examples/keycloak/dual-auth-realm.json`. One server for this whole test binary.
//!
//! `#[ignore]`d: `cargo xtask test` and `cargo xtask integration` run them.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy, TokenEndpoint, client_assertion_fields, field};
use dual_auth_core::{Act, AssertionClaims, ClientAuthentication, IamAdapter, IamError, ManualClock, SigningKey, TokenRequest, Vendor};
use dual_auth_keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth_test_support::jwt;
use dual_auth_test_support::keycloak::{ALICE, API_AUDIENCE, KEY_AGENT, KEY_AGENT_KID, Keycloak, SECRET_AGENT};
use dual_auth_verify::{IssuerPolicy, Verifier, VerifyError};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::RwLock;

static KEYCLOAK: OnceLock<Result<Keycloak, String>> = OnceLock::new();
/// The key-rotation test changes the realm's signing keys: it runs alone.
static REALM_KEYS: RwLock<()> = RwLock::const_new(());

fn server() -> &'static Keycloak {
    let started = KEYCLOAK.get_or_init(|| {
        let server = Keycloak::start();
        if let Ok(server) = &server {
            eprintln!("Keycloak {} ready after {:.1} s", server.version, server.started_in.as_secs_f64());
        }
        server
    });
    started.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn http_settings(kc: &Keycloak) -> HttpSettings {
    HttpSettings {
        // The first requests to a cold JVM on two cores can take seconds.
        timeout: Duration::from_secs(60),
        extra_root_certificates_pem: Some(kc.ca.ca_pem().as_bytes().to_vec()),
        retry: RetryPolicy { initial_backoff: Duration::from_millis(50), ..RetryPolicy::default() },
        ..HttpSettings::default()
    }
}

fn options(kc: &Keycloak) -> AdapterOptions {
    AdapterOptions::with_http(http_settings(kc))
}

fn alice() -> Act {
    Act::new(ALICE.id).unwrap().with_email(ALICE.email).with_name(ALICE.name)
}

fn secret_auth(secret: &str) -> ClientAuthentication {
    ClientAuthentication::client_secret_jwt(&SecretString::from(secret)).unwrap()
}

fn key_auth(kc: &Keycloak) -> ClientAuthentication {
    ClientAuthentication::private_key_jwt(SigningKey::from_pem_file(kc.agent_key_path()).unwrap().with_key_id(KEY_AGENT_KID))
}

fn secret_adapter(kc: &Keycloak) -> KeycloakAdapter {
    KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth(kc.agent_secret())), options(kc)).unwrap()
}

fn verifier(kc: &Keycloak) -> Verifier {
    // Keys by OIDC discovery: Keycloak's own document names its JWKS.
    Verifier::builder().issuer(IssuerPolicy::new(kc.issuer(), API_AUDIENCE)).http(http_settings(kc)).build().unwrap()
}

/// A Keycloak access token passed every check that comes before the layout (size, header,
/// issuer, signature by a key of the realm's JWKS, `exp`/`iat`, lifetime, audience,
/// scopes): the verifier reads the agent and the human last. Stock Keycloak has no `act`
/// in the token (it does not copy claims from client assertions), so the dual-auth layout
/// refuses it there, and only there.
fn assert_verified_up_to_the_missing_human(result: Result<dual_auth_verify::DualSubject, VerifyError>) {
    match result {
        Err(VerifyError::InvalidDelegation { layout: "dual-auth", reason }) => {
            assert!(reason.starts_with("no act claim"), "{reason}");
        }
        other => panic!("expected the dual-auth layout to refuse a token without act, got {other:?}"),
    }
}

async fn service_account_user_id(kc: &Keycloak, client_id: &str) -> String {
    let (status, clients) = kc.admin(Method::GET, &format!("/clients?clientId={client_id}"), None).await;
    assert_eq!(status, 200, "{clients}");
    let id = clients[0]["id"].as_str().unwrap().to_owned();
    let (status, user) = kc.admin(Method::GET, &format!("/clients/{id}/service-account-user"), None).await;
    assert_eq!(status, 200, "{user}");
    user["id"].as_str().unwrap().to_owned()
}

fn oauth_error(error: IamError) -> (u16, String, Option<String>) {
    match error {
        IamError::OAuth { vendor: Vendor::Keycloak, status, error, description } => (status, error, description),
        other => panic!("expected Keycloak's OAuth error, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn client_secret_jwt_gets_a_token_that_verifies_through_keycloaks_discovery_and_jwks() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    let token = secret_adapter(kc).request_token(&request).await.unwrap();

    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Duration::from_secs(300), "the realm's accessTokenLifespan");
    assert_eq!(token.scopes(), ["finance.read"]);
    let access = jwt::decode(token.access_token().expose_secret());
    assert_eq!(access.header["alg"], "RS256");
    assert_eq!(access.claims["iss"], kc.issuer());
    assert_eq!(access.claims["aud"], API_AUDIENCE, "the realm's audience mapper");
    assert_eq!(access.claims["azp"], SECRET_AGENT);
    assert_eq!(access.claims["scope"], "finance.read");

    // Independently of our verifier: the signature checks with OpenSSL against the JWKS.
    let jwks = kc.jwks().await;
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == access.header["kid"]).expect("the token's kid is published");
    assert!(access.verifies_with_rsa_jwk(jwk));

    assert_verified_up_to_the_missing_human(verifier(kc).verify(token.access_token().expose_secret(), None).await);
    // The same token from another issuer's point of view is refused before any key is used.
    let other = Verifier::builder()
        .issuer(IssuerPolicy::new(format!("{}/realms/master", kc.base_url()), API_AUDIENCE))
        .http(http_settings(kc))
        .build()
        .unwrap();
    assert!(matches!(other.verify(token.access_token().expose_secret(), None).await, Err(VerifyError::UnknownIssuer { .. })));
    // And for another API.
    let elsewhere = Verifier::builder()
        .issuer(IssuerPolicy::new(kc.issuer(), "https://api.example.com/other"))
        .http(http_settings(kc))
        .build()
        .unwrap();
    assert!(matches!(elsewhere.verify(token.access_token().expose_secret(), None).await, Err(VerifyError::WrongAudience { .. })));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn private_key_jwt_with_the_registered_key_gets_a_token_that_verifies() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    let adapter = KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), KEY_AGENT, key_auth(kc)), options(kc)).unwrap();
    let request = TokenRequest::new(KEY_AGENT, alice(), ["finance.read", "finance.write"]).unwrap();
    let token = adapter.request_token(&request).await.unwrap();

    assert_eq!(token.token_type(), "Bearer");
    // Keycloak lists granted scopes in no fixed order.
    let mut granted = token.scopes().to_vec();
    granted.sort_unstable();
    assert_eq!(granted, ["finance.read", "finance.write"]);
    let access = jwt::decode(token.access_token().expose_secret());
    assert_eq!(access.claims["azp"], KEY_AGENT);
    assert_eq!(access.claims["aud"], API_AUDIENCE);
    let mut scopes: Vec<&str> = access.claims["scope"].as_str().unwrap().split(' ').collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["finance.read", "finance.write"]);
    assert_eq!(access.claims["sub"], service_account_user_id(kc, KEY_AGENT).await.as_str());
    assert_verified_up_to_the_missing_human(verifier(kc).verify(token.access_token().expose_secret(), None).await);

    // Another key under the registered kid is refused.
    let other_key = SigningKey::from_pem_file(dual_auth_test_support::key_fixture("rsa2048-other.pem")).unwrap().with_key_id(KEY_AGENT_KID);
    let impostor =
        KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), KEY_AGENT, ClientAuthentication::private_key_jwt(other_key)), options(kc))
            .unwrap();
    let (status, error, description) = oauth_error(impostor.request_token(&request).await.unwrap_err());
    assert_eq!((status, error.as_str()), (400, "invalid_client"), "{description:?}");
    assert_eq!(description.as_deref(), Some("Client authentication with signed JWT failed: Signature on JWT token failed validation"));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_a_wrong_secret_with_its_status_error_and_description() {
    let kc = server();
    let adapter = KeycloakAdapter::new(
        KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth("not-the-secret-0123456789abcdefghijklmno")),
        options(kc),
    )
    .unwrap();
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    let (status, error, description) = oauth_error(adapter.request_token(&request).await.unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(error, "unauthorized_client");
    assert_eq!(
        description.as_deref(),
        Some("Client authentication with client secret signed JWT failed: Signature on JWT token by client secret  failed validation")
    );
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_an_expired_assertion() {
    let kc = server();
    // The agent's clock is an hour behind: its 300 s assertion expired long ago.
    let clock = ManualClock::new(SystemTime::now() - Duration::from_secs(3600));
    let options = AdapterOptions { clock: Some(Arc::new(clock)), ..options(kc) };
    let adapter = KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth(kc.agent_secret())), options).unwrap();
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    let (status, error, description) = oauth_error(adapter.request_token(&request).await.unwrap_err());
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_client", Some("Token is not active")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_a_wrong_assertion_audience() {
    let kc = server();
    let config = KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth(kc.agent_secret()))
        .with_assertion_audience("https://keycloak.example.com/realms/dual-auth");
    let adapter = KeycloakAdapter::new(config, options(kc)).unwrap();
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    let (status, error, description) = oauth_error(adapter.request_token(&request).await.unwrap_err());
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_client", Some("Invalid token audience")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_a_replayed_assertion() {
    let kc = server();
    let endpoint =
        TokenEndpoint::new(Vendor::Keycloak, &kc.token_url(), http_settings(kc).build_client().unwrap(), RetryPolicy::none()).unwrap();
    let claims = AssertionClaims {
        issuer: SECRET_AGENT,
        audience: &kc.issuer(),
        lifetime: Duration::from_secs(60),
        act: None,
        authorized_party: None,
        not_before: false,
    };
    // One assertion, sent twice: Keycloak remembers its jti.
    let assertion = secret_auth(kc.agent_secret()).sign(&claims, SystemTime::now()).unwrap();
    let form = || {
        let mut form = vec![field("grant_type", "client_credentials"), field("scope", "finance.read")];
        form.extend(client_assertion_fields(SecretString::from(assertion.expose_secret())));
        Ok(form)
    };
    let first = endpoint.request(form).await.unwrap();
    assert_eq!(first.token_type.as_deref(), Some("Bearer"));
    let (status, error, description) = oauth_error(endpoint.request(form).await.unwrap_err());
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_client", Some("Token reuse detected")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_an_unknown_scope() {
    let kc = server();
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["payroll.admin"]).unwrap();
    let (status, error, description) = oauth_error(secret_adapter(kc).request_token(&request).await.unwrap_err());
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_scope", Some("Invalid scopes: payroll.admin")));
}

/// The guide's recipe, observed: the agent's assertion carries the human as `act`, and a
/// stock Keycloak ignores it. The token names the agent's service account and nobody else.
/// (docs/vendors/keycloak.md says what a realm would need instead.)
#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn the_guides_act_in_the_client_assertion_does_not_reach_a_stock_keycloak_token() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    let token = secret_adapter(kc).request_token(&request).await.unwrap();
    let access = jwt::decode(token.access_token().expose_secret());

    let service_account = service_account_user_id(kc, SECRET_AGENT).await;
    assert_eq!(access.claims["sub"], service_account.as_str(), "sub is the agent's service-account user, not the human");
    assert_ne!(service_account, ALICE.id);
    assert_eq!(access.claims["azp"], SECRET_AGENT);
    assert_eq!(access.claims["typ"], "Bearer");
    assert!(access.claims.get("act").is_none(), "no act: {:?}", access.claims);
    let text = Value::Object(access.claims.clone()).to_string();
    for human in [ALICE.id, ALICE.email, ALICE.name, "alice"] {
        assert!(!text.contains(human), "the human appears nowhere in the token: {text}");
    }
    let mut names = access.claim_names();
    names.sort_unstable();
    assert_eq!(names, ["aud", "azp", "exp", "iat", "iss", "jti", "scope", "sub", "typ"]);
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn key_rotation_through_the_admin_api_is_picked_up_by_kid_and_old_tokens_verify_while_published() {
    let kc = server();
    let _alone = REALM_KEYS.write().await;
    let adapter = secret_adapter(kc);
    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    let cached = verifier(kc);

    let before = adapter.request_token(&request).await.unwrap();
    let old_kid = jwt::decode(before.access_token().expose_secret()).header["kid"].as_str().unwrap().to_owned();
    assert_verified_up_to_the_missing_human(cached.verify(before.access_token().expose_secret(), None).await);

    // A new RS256 key with a higher priority: Keycloak signs with it from now on.
    let (status, realm) = kc.admin(Method::GET, "", None).await;
    assert_eq!(status, 200);
    let component = json!({
        "name": "rotated-rsa",
        "providerId": "rsa-generated",
        "providerType": "org.keycloak.keys.KeyProvider",
        "parentId": realm["id"],
        "config": {"priority": ["200"], "keySize": ["2048"], "algorithm": ["RS256"], "active": ["true"], "enabled": ["true"]},
    });
    let (status, body) = kc.admin(Method::POST, "/components", Some(component)).await;
    assert_eq!(status, 201, "{body}");

    let after = adapter.request_token(&request).await.unwrap();
    let new_kid = jwt::decode(after.access_token().expose_secret()).header["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid, "the new key signs");
    // The verifier still holds the old JWKS: the unknown kid makes it fetch the new one.
    assert_verified_up_to_the_missing_human(cached.verify(after.access_token().expose_secret(), None).await);
    assert_verified_up_to_the_missing_human(cached.verify(before.access_token().expose_secret(), None).await);

    // The old key made passive: no longer signing, still published, so its tokens verify.
    let (status, keys) = kc.admin(Method::GET, "/keys", None).await;
    assert_eq!(status, 200);
    let old = keys["keys"].as_array().unwrap().iter().find(|k| k["kid"] == old_kid.as_str()).expect("old key listed");
    let old_component = old["providerId"].as_str().unwrap().to_owned();
    let set_old_key = |active: &str, enabled: &str| {
        let (active, enabled) = (active.to_owned(), enabled.to_owned());
        let path = format!("/components/{old_component}");
        async move {
            let (status, mut component) = kc.admin(Method::GET, &path, None).await;
            assert_eq!(status, 200);
            component["config"]["active"] = json!([active]);
            component["config"]["enabled"] = json!([enabled]);
            let (status, body) = kc.admin(Method::PUT, &path, Some(component)).await;
            assert_eq!(status, 204, "{body}");
        }
    };
    set_old_key("false", "true").await;
    let published: Vec<String> =
        kc.jwks().await["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str().map(str::to_owned)).collect();
    assert!(published.contains(&old_kid) && published.contains(&new_kid), "{published:?}");
    assert_verified_up_to_the_missing_human(verifier(kc).verify(before.access_token().expose_secret(), None).await);

    // Disabled: Keycloak stops publishing it, and a verifier with fresh keys refuses its tokens.
    set_old_key("false", "false").await;
    let published: Vec<String> =
        kc.jwks().await["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str().map(str::to_owned)).collect();
    assert!(!published.contains(&old_kid) && published.contains(&new_kid), "{published:?}");
    match verifier(kc).verify(before.access_token().expose_secret(), None).await {
        Err(VerifyError::UnknownKey { kid, .. }) => assert_eq!(kid, old_kid),
        other => panic!("expected the unpublished key to be unknown, got {other:?}"),
    }
    assert_verified_up_to_the_missing_human(verifier(kc).verify(after.access_token().expose_secret(), None).await);
}
