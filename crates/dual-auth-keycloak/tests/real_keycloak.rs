//! The Keycloak adapter against a real Keycloak (the pinned release from Maven Central,
//! installed and started by `dual-auth-test-support`), with the realm the project ships in
//! `examples/keycloak/dual-auth-realm.json`. One server for this whole test binary.
//!
//! `#[ignore]`d: `cargo xtask test` and `cargo xtask integration` run them. Alone:
//! `cargo test -p dual-auth-keycloak --test real_keycloak -- --include-ignored`.
//!
//! The verified delegation modes (`DUAL_AUTH_DELEGATION`) are at the end: the agent
//! exchanges a user's own access token (RFC 8693 standard token exchange) or presents the
//! application's signed assertion about the user (RFC 7523 JWT authorization grant), and
//! Keycloak, having checked that evidence, issues a token whose `sub` is the user.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::{AdapterOptions, RetryPolicy, TokenEndpoint, client_assertion_fields, field};
use dual_auth_core::{
    ACCESS_TOKEN_TYPE, Act, AssertionClaims, ClientAuthentication, DelegationMode, DelegationRequest, IamAdapter, IamError, ManualClock,
    SigningKey, SubjectToken, SubjectTokenType, TokenRequest, Vendor, new_jti,
};
use dual_auth_keycloak::{ConfigReader, EnvSource, KeycloakAdapter, KeycloakConfig};
use dual_auth_test_support::agent::{alice_as, keycloak_http_settings, secret_auth};
use dual_auth_test_support::jwt;
use dual_auth_test_support::keycloak::{
    ALICE, ALICE_APP_USER_ID, API_AUDIENCE, APP_ISSUER, APP_KEY_ID, BOB, BOB_APP_USER_ID, KEY_AGENT, KEY_AGENT_KID, Keycloak, LOGIN_CLIENT,
    LOGIN_CLIENT_OTHER_AUDIENCE, LOGIN_CLIENT_SHORT_LIVED, SECRET_AGENT, SHORT_LIVED_SECONDS, UNRELATED_AGENT,
};
use dual_auth_verify::{IssuerPolicy, Layout, Verifier, VerifyError, VouchedBy};
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

fn options(kc: &Keycloak) -> AdapterOptions {
    AdapterOptions::with_http(keycloak_http_settings(kc))
}

fn alice() -> Act {
    alice_as(ALICE.id)
}

fn key_auth(kc: &Keycloak) -> ClientAuthentication {
    ClientAuthentication::private_key_jwt(SigningKey::from_pem_file(kc.agent_key_path()).unwrap().with_key_id(KEY_AGENT_KID))
}

fn secret_adapter(kc: &Keycloak) -> KeycloakAdapter {
    KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth(kc.agent_secret())), options(kc)).unwrap()
}

fn verifier(kc: &Keycloak) -> Verifier {
    // Keys by OIDC discovery: Keycloak's own document names its JWKS.
    Verifier::builder().issuer(IssuerPolicy::new(kc.issuer(), API_AUDIENCE)).http(keycloak_http_settings(kc)).build().unwrap()
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
        .http(keycloak_http_settings(kc))
        .build()
        .unwrap();
    assert!(matches!(other.verify(token.access_token().expose_secret(), None).await, Err(VerifyError::UnknownIssuer { .. })));
    // And for another API.
    let elsewhere = Verifier::builder()
        .issuer(IssuerPolicy::new(kc.issuer(), "https://api.example.com/other"))
        .http(keycloak_http_settings(kc))
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
        TokenEndpoint::new(Vendor::Keycloak, kc.token_url(), keycloak_http_settings(kc).build_client().unwrap(), RetryPolicy::none())
            .unwrap();
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
    assert_eq!(names, ["aud", "azp", "exp", "iat", "iss", "jti", "preferred_username", "scope", "sub", "typ"]);
    // The API side never takes the agent's own token for a delegated one: the realm names
    // the service-account user, and the delegated layout refuses it.
    assert_eq!(access.claims["preferred_username"], format!("service-account-{SECRET_AGENT}"));
    let err = delegated_verifier(kc).verify(token.access_token().expose_secret(), None).await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidDelegation { layout: "delegated", .. }), "{err}");
    assert!(err.to_string().contains("the token is the agent's own (client credentials)"), "{err}");
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

// ---------------------------------------------------------------------------------------
// Verified delegation (DUAL_AUTH_DELEGATION): token exchange and the JWT authorization grant
// ---------------------------------------------------------------------------------------

/// The API's verifier for delegated tokens: Keycloak's JWKS, `sub` = the human, the agent
/// from `azp`.
fn delegated_verifier(kc: &Keycloak) -> Verifier {
    Verifier::builder()
        .issuer(IssuerPolicy::new(kc.issuer(), API_AUDIENCE).jwks_url(kc.jwks_url()).layout(Layout::Delegated))
        .http(keycloak_http_settings(kc))
        .build()
        .unwrap()
}

fn delegating_adapter(kc: &Keycloak, agent: &str, auth: ClientAuthentication, mode: DelegationMode) -> KeycloakAdapter {
    KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), agent, auth).with_delegation(mode), options(kc)).unwrap()
}

fn evidence(token: &str, token_type: SubjectTokenType) -> SubjectToken {
    SubjectToken::new(token, token_type).unwrap()
}

fn aud_list(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    match &claims["aud"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        other => panic!("aud is {other}"),
    }
}

/// A refusal as Keycloak sent it, checked not to carry the evidence anywhere: neither its
/// `Display` nor its `Debug` has the token, nor any of its three parts.
fn refused_without_the_evidence(error: IamError, evidence: &str) -> (u16, String, Option<String>) {
    for text in [format!("{error}"), format!("{error:?}")] {
        assert!(!text.contains(evidence), "the evidence is in the error: {text}");
        for part in evidence.split('.') {
            assert!(part.len() < 8 || !text.contains(part), "a part of the evidence is in the error: {text}");
        }
    }
    oauth_error(error)
}

/// What the application signs for the agent: an RFC 7523 §3 assertion about one of its
/// users, for this realm, living 60 s.
fn app_assertion(kc: &Keycloak, key: &SigningKey, app_user_id: &str) -> String {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "iss": APP_ISSUER,
        "sub": app_user_id,
        "aud": kc.issuer(),
        "iat": now,
        "exp": now + 60,
        "jti": new_jti().unwrap(),
    });
    key.sign_jwt(&claims).unwrap()
}

fn app_key(kc: &Keycloak) -> SigningKey {
    SigningKey::from_pem_file(kc.app_key_path()).unwrap().with_key_id(APP_KEY_ID)
}

/// Neither grant writes `act` (RFC 8693 §4.1) in Keycloak 26.7.3, nor `may_act`: the
/// agent is the token's `azp`, the human its `sub`.
fn assert_no_act(claims: &serde_json::Map<String, Value>) {
    assert!(claims.get("act").is_none(), "Keycloak 26.7.3 writes no act: {claims:?}");
    assert!(claims.get("may_act").is_none(), "nor may_act without the experimental token-exchange-delegation: {claims:?}");
}

/// Alice's own access token, exchanged by `agent`: a token for `agent` whose subject is
/// Alice, which the API verifies in the delegated layout.
async fn exchange_alices_token_and_verify(kc: &Keycloak, agent: &str, auth: ClientAuthentication) {
    let user_token = kc.user_access_token(LOGIN_CLIENT, ALICE.username).await;
    let user = jwt::decode(&user_token);
    assert_eq!(user.claims["sub"], ALICE.id);
    assert_eq!(user.claims["azp"], LOGIN_CLIENT);
    let user_aud = aud_list(&user.claims);
    assert!(user_aud.contains(&SECRET_AGENT.to_owned()) && user_aud.contains(&KEY_AGENT.to_owned()), "{user_aud:?}");

    let adapter = delegating_adapter(kc, agent, auth, DelegationMode::TokenExchange);
    assert_eq!(adapter.delegation_mode(), Some(DelegationMode::TokenExchange));
    let request = DelegationRequest::new(agent, evidence(&user_token, SubjectTokenType::AccessToken), ["finance.read"]).unwrap();
    let token = adapter.request_delegated_token(&request).await.unwrap();

    assert_eq!(token.issued_token_type(), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Duration::from_secs(300), "the realm's accessTokenLifespan");
    assert_eq!(token.scopes(), ["finance.read"]);
    let access = jwt::decode(token.access_token().expose_secret());
    assert_eq!(access.header["alg"], "RS256");
    assert_eq!(access.claims["iss"], kc.issuer());
    assert_eq!(access.claims["sub"], ALICE.id, "the human, from her own token");
    assert_eq!(access.claims["azp"], agent, "the agent that exchanged it");
    assert_eq!(access.claims["typ"], "Bearer");
    assert_eq!(access.claims["scope"], "finance.read");
    assert_eq!(aud_list(&access.claims), [API_AUDIENCE], "the agent's audience mapper; the agents themselves are not kept");
    assert_ne!(access.claims["jti"], user.claims["jti"], "a new token");
    assert_eq!(access.claims["sid"], user.claims["sid"], "Alice's own session: token exchange creates none");
    assert_no_act(&access.claims);
    // The agent's client scopes decide the claims: `basic` only, so no e-mail or name.
    let mut names = access.claim_names();
    names.sort_unstable();
    assert_eq!(names, ["aud", "azp", "exp", "iat", "iss", "jti", "preferred_username", "scope", "sid", "sub", "typ"]);
    assert_eq!(access.claims["preferred_username"], ALICE.username);

    let subject = delegated_verifier(kc).verify(token.access_token().expose_secret(), None).await.unwrap();
    assert_eq!(subject.issuer, kc.issuer());
    assert_eq!(subject.human.sub(), ALICE.id);
    assert_eq!(subject.agent.id(), agent);
    assert_eq!(subject.agent.client_id.as_deref(), Some(agent));
    assert_eq!(subject.vouched_by, VouchedBy::IdentityProvider);
    assert!(subject.has_scope("finance.read"), "{:?}", subject.scopes);
    assert!(subject.chain.is_empty(), "{:?}", subject.chain);
    assert_eq!((subject.human.email(), subject.human.name()), (None, None));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn token_exchange_by_the_client_secret_jwt_agent_gives_a_token_for_alice_that_the_api_verifies() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    exchange_alices_token_and_verify(kc, SECRET_AGENT, secret_auth(kc.agent_secret())).await;
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn token_exchange_by_the_private_key_jwt_agent_gives_a_token_for_alice_that_the_api_verifies() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    exchange_alices_token_and_verify(kc, KEY_AGENT, key_auth(kc)).await;
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn the_jwt_authorization_grant_turns_the_applications_assertion_into_a_token_for_alice() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    let assertion = app_assertion(kc, &app_key(kc), ALICE_APP_USER_ID);
    let signed = jwt::decode(&assertion);
    assert_eq!(signed.header["kid"], APP_KEY_ID);
    assert_eq!(signed.header["alg"], "RS256");

    let adapter = delegating_adapter(kc, SECRET_AGENT, secret_auth(kc.agent_secret()), DelegationMode::JwtAuthorizationGrant);
    assert_eq!(adapter.delegation_mode(), Some(DelegationMode::JwtAuthorizationGrant));
    let request = DelegationRequest::new(SECRET_AGENT, evidence(&assertion, SubjectTokenType::Jwt), ["finance.read"]).unwrap();
    let token = adapter.request_delegated_token(&request).await.unwrap();

    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.issued_token_type(), None, "not a token exchange: no issued_token_type");
    assert_eq!(token.scopes(), ["finance.read"]);
    let access = jwt::decode(token.access_token().expose_secret());
    assert_eq!(access.claims["iss"], kc.issuer());
    assert_eq!(access.claims["sub"], ALICE.id, "Alice's Keycloak id, found through her link to the application");
    assert_eq!(access.claims["azp"], SECRET_AGENT);
    assert_eq!(access.claims["scope"], "finance.read");
    assert_eq!(aud_list(&access.claims), [API_AUDIENCE]);
    assert_no_act(&access.claims);
    // A transient session (no `sid`), and never a refresh token.
    let mut names = access.claim_names();
    names.sort_unstable();
    assert_eq!(names, ["aud", "azp", "exp", "iat", "iss", "jti", "preferred_username", "scope", "sub", "typ"]);

    let subject = delegated_verifier(kc).verify(token.access_token().expose_secret(), None).await.unwrap();
    assert_eq!(subject.human.sub(), ALICE.id);
    assert_eq!(subject.agent.id(), SECRET_AGENT);
    assert_eq!(subject.vouched_by, VouchedBy::IdentityProvider);
    assert!(subject.has_scope("finance.read"));

    // The assertion is single-use (jwtAuthorizationGrantAssertionReuseAllowed: false).
    let error = adapter.request_delegated_token(&request).await.unwrap_err();
    let (status, error, description) = refused_without_the_evidence(error, &assertion);
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_grant", Some("Token reuse detected")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_to_exchange_expired_evidence() {
    let kc = server();
    // The user token must stay signed by a published key: no key rotation meanwhile.
    let _shared = REALM_KEYS.read().await;
    let user_token = kc.user_access_token(LOGIN_CLIENT_SHORT_LIVED, ALICE.username).await;
    let user = jwt::decode(&user_token);
    let exp = user.claims["exp"].as_u64().unwrap();
    assert_eq!(exp - user.claims["iat"].as_u64().unwrap(), SHORT_LIVED_SECONDS, "the client's access.token.lifespan");
    let adapter = delegating_adapter(kc, SECRET_AGENT, secret_auth(kc.agent_secret()), DelegationMode::TokenExchange);
    let request = DelegationRequest::new(SECRET_AGENT, evidence(&user_token, SubjectTokenType::AccessToken), ["finance.read"]).unwrap();

    // While it lives, the same evidence is exchanged (exchanging does not use it up) ...
    let fresh = adapter.request_delegated_token(&request).await.unwrap();
    assert_eq!(jwt::decode(fresh.access_token().expose_secret()).claims["sub"], ALICE.id);
    // ... and once Keycloak's clock (this machine's) is past its exp, it is refused.
    let expired_at = SystemTime::UNIX_EPOCH + Duration::from_secs(exp + 1);
    if let Ok(wait) = expired_at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let error = adapter.request_delegated_token(&request).await.unwrap_err();
    let (status, error, description) = refused_without_the_evidence(error, &user_token);
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_request", Some("Invalid token")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_to_exchange_evidence_for_another_audience() {
    let kc = server();
    // The user token must stay signed by a published key: no key rotation meanwhile.
    let _shared = REALM_KEYS.read().await;
    let user_token = kc.user_access_token(LOGIN_CLIENT_OTHER_AUDIENCE, ALICE.username).await;
    let user = jwt::decode(&user_token);
    assert_eq!((&user.claims["sub"], &user.claims["azp"]), (&json!(ALICE.id), &json!(LOGIN_CLIENT_OTHER_AUDIENCE)));
    assert_eq!(user.claims.get("aud"), None, "no audience at all: {:?}", user.claims);

    let adapter = delegating_adapter(kc, SECRET_AGENT, secret_auth(kc.agent_secret()), DelegationMode::TokenExchange);
    let request = DelegationRequest::new(SECRET_AGENT, evidence(&user_token, SubjectTokenType::AccessToken), ["finance.read"]).unwrap();
    let error = adapter.request_delegated_token(&request).await.unwrap_err();
    let (status, error, description) = refused_without_the_evidence(error, &user_token);
    assert_eq!((status, error.as_str(), description.as_deref()), (403, "access_denied", Some("Client is not within the token audience")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_an_agent_to_which_alice_did_not_delegate() {
    let kc = server();
    // The user token must stay signed by a published key: no key rotation meanwhile.
    let _shared = REALM_KEYS.read().await;
    // Alice's token names finance-agent and finance-agent-key, not the unrelated agent.
    let user_token = kc.user_access_token(LOGIN_CLIENT, ALICE.username).await;
    assert!(!aud_list(&jwt::decode(&user_token).claims).contains(&UNRELATED_AGENT.to_owned()));

    let adapter = delegating_adapter(kc, UNRELATED_AGENT, secret_auth(kc.unrelated_agent_secret()), DelegationMode::TokenExchange);
    let request = DelegationRequest::new(UNRELATED_AGENT, evidence(&user_token, SubjectTokenType::AccessToken), ["finance.read"]).unwrap();
    let error = adapter.request_delegated_token(&request).await.unwrap_err();
    let (status, error, description) = refused_without_the_evidence(error, &user_token);
    assert_eq!((status, error.as_str(), description.as_deref()), (403, "access_denied", Some("Client is not within the token audience")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_refuses_a_jwt_authorization_grant_for_an_unlinked_user_or_with_a_wrong_signature() {
    let kc = server();
    let adapter = delegating_adapter(kc, SECRET_AGENT, secret_auth(kc.agent_secret()), DelegationMode::JwtAuthorizationGrant);
    let grant =
        |assertion: &str| DelegationRequest::new(SECRET_AGENT, evidence(assertion, SubjectTokenType::Jwt), ["finance.read"]).unwrap();

    // Bob exists in the realm but has no link to the application.
    let (status, bob_links) = kc.admin(Method::GET, &format!("/users/{}/federated-identity", BOB.id), None).await;
    assert_eq!((status, bob_links), (200, json!([])));
    let unlinked = app_assertion(kc, &app_key(kc), BOB_APP_USER_ID);
    let error = adapter.request_delegated_token(&grant(&unlinked)).await.unwrap_err();
    let (status, error, description) = refused_without_the_evidence(error, &unlinked);
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_grant", Some("User not found")));

    // Alice, but signed by another key under the application's kid.
    let other_key = SigningKey::from_pem_file(dual_auth_test_support::key_fixture("rsa2048-other.pem")).unwrap().with_key_id(APP_KEY_ID);
    let forged = app_assertion(kc, &other_key, ALICE_APP_USER_ID);
    let error = adapter.request_delegated_token(&grant(&forged)).await.unwrap_err();
    let (status, error, description) = refused_without_the_evidence(error, &forged);
    assert_eq!((status, error.as_str(), description.as_deref()), (400, "invalid_grant", Some("Invalid signature")));
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn with_token_exchange_configured_a_self_asserted_request_is_refused_before_keycloak() {
    let kc = server();
    // The user token must stay signed by a published key: no key rotation meanwhile.
    let _shared = REALM_KEYS.read().await;
    let mut pairs = kc.env_pairs();
    pairs.push(("DUAL_AUTH_DELEGATION".into(), "token-exchange".into()));
    let source = EnvSource::from_pairs(pairs);
    let config = KeycloakConfig::load(&ConfigReader::new(&source)).await.unwrap();
    assert_eq!(config.delegation, Some(DelegationMode::TokenExchange));
    let adapter = KeycloakAdapter::new(config, options(kc)).unwrap();

    let request = TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap();
    match adapter.request_token(&request).await {
        Err(IamError::ModeRefused { vendor: Vendor::Keycloak, configured, asked, .. }) => {
            assert_eq!((configured, asked), (DelegationMode::TokenExchange, DelegationMode::SelfAsserted));
        }
        other => panic!("expected the self-asserted request to be refused locally, got {other:?}"),
    }
    // The same adapter exchanges Alice's token.
    let user_token = kc.user_access_token(LOGIN_CLIENT, ALICE.username).await;
    let request = DelegationRequest::new(SECRET_AGENT, evidence(&user_token, SubjectTokenType::AccessToken), ["finance.read"]).unwrap();
    let token = adapter.request_delegated_token(&request).await.unwrap();
    assert_eq!(jwt::decode(token.access_token().expose_secret()).claims["sub"], ALICE.id);
}

// DPoP (RFC 9449): Keycloak binds a token to the key of the proof the agent sends (26.4+,
// on by default; docs/vendors/keycloak.md), and the API accepts it only
// with a fresh proof by that key.

/// The API's public origin in these tests: proofs name it as `htu`.
const API_ORIGIN: &str = "https://api.dual-auth.example";

fn dpop_options(kc: &Keycloak, key: &dual_auth_core::DpopKey) -> AdapterOptions {
    options(kc).with_dpop(dual_auth_core::token_endpoint::DpopSettings::new(key.clone()))
}

/// The headers of one API request carrying `token` with a proof by `key` for `url`.
fn dpop_request(key: &dual_auth_core::DpopKey, token: &str, method: &str, url: &str) -> http::HeaderMap {
    let proof = key.proof(method, &reqwest::Url::parse(url).unwrap(), Some(token), None, SystemTime::now()).unwrap();
    dpop_headers(token, proof.expose_secret())
}

fn dpop_headers(token: &str, proof: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, format!("DPoP {token}").parse().unwrap());
    headers.insert("dpop", proof.parse().unwrap());
    headers
}

#[tokio::test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
async fn keycloak_binds_tokens_to_the_agents_dpop_key_and_the_api_takes_them_only_with_that_key() {
    let kc = server();
    let _shared = REALM_KEYS.read().await;
    let key = dual_auth_core::DpopKey::generate(dual_auth_core::SigningAlgorithm::Es256).unwrap();

    // The guide's grant (client credentials) and the verified one (token exchange) both bind.
    let guide =
        KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth(kc.agent_secret())), dpop_options(kc, &key))
            .unwrap()
            .request_token(&TokenRequest::new(SECRET_AGENT, alice(), ["finance.read"]).unwrap())
            .await
            .unwrap();
    assert_eq!(guide.token_type(), "DPoP");
    assert!(guide.is_dpop_bound());
    assert_eq!(jwt::decode(guide.access_token().expose_secret()).claims["cnf"]["jkt"], key.thumbprint());

    let user_token = kc.user_access_token(LOGIN_CLIENT, ALICE.username).await;
    let config =
        KeycloakConfig::new(kc.token_url(), SECRET_AGENT, secret_auth(kc.agent_secret())).with_delegation(DelegationMode::TokenExchange);
    let adapter = KeycloakAdapter::new(config, dpop_options(kc, &key)).unwrap();
    let request = DelegationRequest::new(SECRET_AGENT, evidence(&user_token, SubjectTokenType::AccessToken), ["finance.read"]).unwrap();
    let token = adapter.request_delegated_token(&request).await.unwrap();
    assert_eq!((token.token_type(), token.issued_token_type()), ("DPoP", Some(ACCESS_TOKEN_TYPE)));
    let access = token.access_token().expose_secret().to_owned();
    let claims = jwt::decode(&access).claims;
    // Bound to the agent's key (RFC 9449 §6); Keycloak adds its own `kc-jkt-type` (observed).
    assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint(), "kc-jkt-type": "DPoP"}));
    assert_eq!(claims["sub"], ALICE.id);

    // The API: Keycloak's JWKS, the delegated layout, proofs for its public origin.
    let verifier = Verifier::builder()
        .issuer(IssuerPolicy::new(kc.issuer(), API_AUDIENCE).jwks_url(kc.jwks_url()).layout(Layout::Delegated).require_dpop())
        .public_origin(API_ORIGIN)
        .http(keycloak_http_settings(kc))
        .build()
        .unwrap();
    let report: http::Uri = "/finance/report".parse().unwrap();
    let url = format!("{API_ORIGIN}/finance/report");
    let headers = dpop_request(&key, &access, "GET", &url);
    let subject = verifier.verify_headers(&http::Method::GET, &report, &headers).await.unwrap();
    assert_eq!((subject.human.sub(), subject.agent.id()), (ALICE.id, SECRET_AGENT));
    assert_eq!(subject.dpop_jkt.as_deref(), Some(key.thumbprint()));

    // The same proof again: replayed.
    let err = verifier.verify_headers(&http::Method::GET, &report, &headers).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopReplayed), "{err}");
    // A proof for another URL.
    let other_url = dpop_request(&key, &access, "GET", &format!("{API_ORIGIN}/finance/payments"));
    let err = verifier.verify_headers(&http::Method::GET, &report, &other_url).await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidDpopProof { check: dual_auth_verify::DpopCheck::Url, .. }), "{err}");
    // The token replayed by someone holding another key.
    let thief = dual_auth_core::DpopKey::generate(dual_auth_core::SigningAlgorithm::EdDsa).unwrap();
    let err = verifier.verify_headers(&http::Method::GET, &report, &dpop_request(&thief, &access, "GET", &url)).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopKeyMismatch { .. }), "{err}");
    // The bound token as a Bearer token.
    let mut bearer = http::HeaderMap::new();
    bearer.insert(http::header::AUTHORIZATION, format!("Bearer {access}").parse().unwrap());
    let err = verifier.verify_headers(&http::Method::GET, &report, &bearer).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopBoundTokenAsBearer | VerifyError::DpopRequired { .. }), "{err}");
    let lenient = Verifier::builder()
        .issuer(IssuerPolicy::new(kc.issuer(), API_AUDIENCE).jwks_url(kc.jwks_url()).layout(Layout::Delegated))
        .public_origin(API_ORIGIN)
        .http(keycloak_http_settings(kc))
        .build()
        .unwrap();
    let err = lenient.verify_headers(&http::Method::GET, &report, &bearer).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopBoundTokenAsBearer), "even where DPoP is optional: {err}");
    // A fresh proof by the right key still works: the refusals used nothing up.
    let again = dpop_request(&key, &access, "GET", &url);
    assert!(verifier.verify_headers(&http::Method::GET, &report, &again).await.is_ok());
}
