//! Against a real, certified OAuth server (panva's oidc-provider, run by node): our
//! adapters obtain tokens by `client_secret_jwt` and by `private_key_jwt`; the server
//! copies `act` from the verified assertion into its JWT access token; the token verifies
//! with the server's JWKS and names the agent and the human. A wrong secret, an expired
//! assertion and a replayed `jti` are refused, and our errors say so.
//!
//! Needs node and `cargo xtask setup` (oidc-provider under `target/it/node`).

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::okta::{OktaAdapter, OktaConfig};
use dual_auth::secrecy::ExposeSecret;
use dual_auth::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy, TokenEndpoint, field};
use dual_auth::{AssertionClaims, ClientAuthentication, IamAdapter, IamError, ManualClock, SigningKey, TokenRequest, Vendor};
use dual_auth_test_support::agent::{alice, http_settings, secret_auth};
use dual_auth_test_support::process::{OIDC_PROVIDER_API as API, OIDC_PROVIDER_SECRET as SECRET, OidcProvider};
use dual_auth_test_support::{jwt, key_fixture};
use serde_json::Value;

struct Idp(OidcProvider);

fn start_idp() -> Idp {
    Idp(OidcProvider::start())
}

impl Idp {
    fn url(&self, path: &str) -> String {
        self.0.url(path)
    }

    fn token_url(&self) -> String {
        self.url("/protocol/openid-connect/token")
    }

    fn http(&self) -> HttpSettings {
        http_settings(self.0.ca.ca_pem(), RetryPolicy::none())
    }

    /// Verifies the access token with the server's JWKS and returns its claims.
    async fn verify(&self, token: &str) -> serde_json::Map<String, Value> {
        let client = self.http().build_client().unwrap();
        let jwks: Value = client.get(self.url("/protocol/openid-connect/certs")).send().await.unwrap().json().await.unwrap();
        let decoded = jwt::decode(token);
        let kid = decoded.header["kid"].as_str().unwrap();
        let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("the token's kid is in the JWKS");
        assert_eq!(decoded.header["alg"], "RS256");
        assert!(decoded.verifies_with_rsa_jwk(jwk), "the access token verifies with the server's JWKS");
        decoded.claims
    }
}

#[tokio::test]
#[ignore = "needs node and oidc-provider: run `cargo xtask test`"]
async fn tokens_by_client_secret_jwt_and_private_key_jwt_carry_the_agent_and_the_human() {
    let idp = start_idp();

    // client_secret_jwt, Keycloak's dialect: the assertion's aud is the realm URL (the issuer).
    let keycloak = KeycloakAdapter::new(
        KeycloakConfig::new(idp.token_url(), "secret-agent", secret_auth(SECRET)),
        AdapterOptions::with_http(idp.http()),
    )
    .unwrap();
    let token = keycloak.request_token(&TokenRequest::new("secret-agent", alice(), ["finance.read"]).unwrap()).await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.scopes(), ["finance.read"]);
    let claims = idp.verify(token.access_token().expose_secret()).await;
    assert_eq!(claims["iss"], idp.url(""));
    assert_eq!(claims["sub"], "secret-agent", "the agent");
    assert_eq!(claims["client_id"], "secret-agent");
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["act"], alice().to_value(), "the human, copied from the verified assertion");

    // private_key_jwt, Okta's dialect: the assertion's aud is the token endpoint URL.
    let key = SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap().with_key_id("agent-key-1");
    let okta = OktaAdapter::new(
        OktaConfig::new(idp.token_url(), "key-agent", ClientAuthentication::private_key_jwt(key)),
        AdapterOptions::with_http(idp.http()),
    )
    .unwrap();
    let token = okta.request_token(&TokenRequest::new("key-agent", alice(), ["finance.read"]).unwrap()).await.unwrap();
    let claims = idp.verify(token.access_token().expose_secret()).await;
    assert_eq!(claims["sub"], "key-agent");
    assert_eq!(claims["act"], alice().to_value());
}

#[tokio::test]
#[ignore = "needs node and oidc-provider: run `cargo xtask test`"]
async fn a_wrong_secret_an_expired_assertion_and_a_replayed_jti_are_refused() {
    let idp = start_idp();
    let request = TokenRequest::new("secret-agent", alice(), ["finance.read"]).unwrap();

    let wrong = KeycloakAdapter::new(
        KeycloakConfig::new(idp.token_url(), "secret-agent", secret_auth("not-the-secret-0123456789abcdefghijkl")),
        AdapterOptions::with_http(idp.http()),
    )
    .unwrap();
    let err = wrong.request_token(&request).await.unwrap_err();
    assert_eq!((err.status(), err.oauth_error()), (Some(401), Some("invalid_client")), "{err}");
    assert!(err.to_string().starts_with("keycloak token endpoint answered HTTP 401: invalid_client"), "{err}");

    // Signed on a clock ten minutes behind: the 300 s assertion has expired.
    let behind = Arc::new(ManualClock::new(SystemTime::now() - Duration::from_secs(600)));
    let options = AdapterOptions { clock: Some(behind), ..AdapterOptions::with_http(idp.http()) };
    let stale = KeycloakAdapter::new(KeycloakConfig::new(idp.token_url(), "secret-agent", secret_auth(SECRET)), options).unwrap();
    let err = stale.request_token(&request).await.unwrap_err();
    assert_eq!((err.status(), err.oauth_error()), (Some(401), Some("invalid_client")), "{err}");

    // The same assertion twice: the second use is refused.
    let endpoint = TokenEndpoint::new(Vendor::Keycloak, idp.token_url(), idp.http().build_client().unwrap(), RetryPolicy::none()).unwrap();
    let claims = AssertionClaims {
        issuer: "secret-agent",
        audience: &idp.url(""),
        lifetime: Duration::from_secs(300),
        act: Some(&alice()),
        authorized_party: None,
        not_before: false,
    };
    let assertion = secret_auth(SECRET).sign(&claims, SystemTime::now()).unwrap();
    let form = || {
        let mut form = vec![field("grant_type", "client_credentials"), field("scope", "finance.read")];
        form.extend(dual_auth::token_endpoint::client_assertion_fields(assertion.clone()));
        Ok(form)
    };
    endpoint.request(form).await.unwrap();
    let err = endpoint.request(form).await.unwrap_err();
    assert!(matches!(&err, IamError::OAuth { status: 401, error, .. } if error == "invalid_client"), "{err}");
}
