//! Against a real, certified OAuth server (panva's oidc-provider, run by node): tokens it
//! issues in both layouts verify through its real JWKS into the same `DualSubject`,
//! including an RFC 8693 token exchange with a nested `act`; a key rotation is picked up
//! through the unknown `kid`; with the issuer down, cached keys keep serving until the
//! stale limit.
//!
//! Needs node and `cargo xtask setup` (oidc-provider under `target/it/node`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy};
use dual_auth_core::{Act, ActJwtSigner, ClientAuthentication, IamAdapter, ManualClock, SigningKey, TokenRequest};
use dual_auth_keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth_test_support::key_fixture;
use dual_auth_test_support::process::{OIDC_PROVIDER_API as API, OIDC_PROVIDER_SECRET as SECRET, OidcProvider as Idp};
use dual_auth_verify::{Actor, IssuerPolicy, JwksCachePolicy, Layout, Verifier, VerifyError};
use serde_json::Value;

/// What the tests need of the server, beyond starting it.
trait IssuerUnderTest {
    fn issuer(&self) -> String;
    fn http(&self) -> HttpSettings;
    fn client(&self) -> reqwest::Client;
    fn policy(&self) -> IssuerPolicy;
    async fn dual_auth_token(&self) -> String;
    async fn exchange(&self, client: &str, subject_token: &str, subject_type: &str) -> Result<String, Value>;
    async fn admin(&self, path: &str, post: bool) -> Value;
    async fn jwks_requests(&self) -> u64;
}

impl IssuerUnderTest for Idp {
    fn issuer(&self) -> String {
        self.url("")
    }

    fn http(&self) -> HttpSettings {
        dual_auth_test_support::agent::http_settings(self.ca.ca_pem(), RetryPolicy::none())
    }

    fn client(&self) -> reqwest::Client {
        self.http().build_client().unwrap()
    }

    fn policy(&self) -> IssuerPolicy {
        IssuerPolicy::new(self.issuer(), API).require_type("at+jwt").require_scopes(["finance.read"])
    }

    /// A token by client credentials from our Keycloak adapter: the dual-auth layout.
    async fn dual_auth_token(&self) -> String {
        let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(SECRET)).unwrap();
        let config = KeycloakConfig::new(format!("{}/protocol/openid-connect/token", self.issuer()), "secret-agent", auth);
        let adapter = KeycloakAdapter::new(config, AdapterOptions::with_http(self.http())).unwrap();
        let token = adapter.request_token(&TokenRequest::new("secret-agent", human(), ["finance.read"]).unwrap()).await.unwrap();
        token.access_token().expose_secret().to_owned()
    }

    /// RFC 8693 token exchange by `client` of `subject_token`.
    async fn exchange(&self, client: &str, subject_token: &str, subject_type: &str) -> Result<String, Value> {
        let response = self
            .client()
            .post(format!("{}/protocol/openid-connect/token", self.issuer()))
            .basic_auth(client, Some(SECRET))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", subject_token),
                ("subject_token_type", subject_type),
                ("resource", API),
                ("scope", "finance.read"),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status.is_success() {
            assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
            Ok(body["access_token"].as_str().unwrap().to_owned())
        } else {
            Err(body)
        }
    }

    async fn admin(&self, path: &str, post: bool) -> Value {
        let url = format!("https://localhost:{}{path}", self.port);
        let request = if post { self.client().post(url) } else { self.client().get(url) };
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn jwks_requests(&self) -> u64 {
        self.admin("/admin/stats", false).await["jwks_requests"].as_u64().unwrap()
    }
}

fn human() -> Act {
    Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice Smith")
}

fn verifier(idp: &Idp, policy: IssuerPolicy, clock: &ManualClock) -> Verifier {
    Verifier::builder().issuer(policy).http(idp.http()).clock(Arc::new(clock.clone())).build().unwrap()
}

#[tokio::test]
#[ignore = "needs node and oidc-provider: run `cargo xtask test`"]
async fn both_layouts_verify_through_the_real_jwks_into_the_same_dual_subject() {
    let idp = Idp::start();
    let clock = ManualClock::new(SystemTime::now());

    // The dual-auth layout: sub = the agent, act = the human (found by OIDC discovery).
    let token = idp.dual_auth_token().await;
    let subject = verifier(&idp, idp.policy(), &clock).verify(&token, None).await.unwrap();
    assert_eq!(subject.issuer, idp.issuer());
    assert_eq!(subject.agent, Actor::new("secret-agent", Some("secret-agent".into())));
    assert_eq!(subject.human, human());
    assert!(subject.chain.is_empty());
    assert_eq!(subject.scopes, ["finance.read"]);
    let left = subject.expires_at.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(3000) && left <= Duration::from_secs(3600), "{left:?}");

    // RFC 8693: the application's act JWT exchanged by the agent, then that token
    // exchanged by a sub-agent: sub = the human, act = sub-agent, nested act = the agent.
    let app = ActJwtSigner::new(SigningKey::from_pem_file(key_fixture("rsa2048-pkcs8.pem")).unwrap());
    let act_jwt = app.sign(&human(), &idp.issuer(), Duration::from_secs(60)).unwrap();
    let first = idp.exchange("exchange-agent", act_jwt.expose_secret(), "urn:ietf:params:oauth:token-type:jwt").await.unwrap();
    let second = idp.exchange("sub-agent", &first, "urn:ietf:params:oauth:token-type:access_token").await.unwrap();
    let rfc8693 = verifier(&idp, idp.policy().layout(Layout::Rfc8693), &clock);

    let direct = rfc8693.verify(&first, None).await.unwrap();
    assert_eq!(direct.agent, Actor::new("exchange-agent", Some("exchange-agent".into())));
    assert_eq!(direct.human, human(), "sub, email and name of the token are the human");
    assert!(direct.chain.is_empty());

    let chained = rfc8693.verify(&second, None).await.unwrap();
    assert_eq!(chained.agent, Actor::new("sub-agent", Some("sub-agent".into())));
    assert_eq!(chained.human, human());
    assert_eq!(chained.chain, [Actor::new("exchange-agent", None)], "the nested act: who delegated to the sub-agent");

    // A token read in the other layout would swap agent and human: refused, not misread.
    let err = rfc8693.verify(&token, None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::InvalidDelegation { layout: "rfc8693", .. }), "{err}");
    let err = verifier(&idp, idp.policy(), &clock).verify(&first, None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::InvalidDelegation { layout: "dual-auth", .. }), "{err}");

    // A forged exchange (an act JWT signed by another key) is refused by the server itself.
    let forger = ActJwtSigner::new(SigningKey::from_pem_file(key_fixture("rsa2048-other.pem")).unwrap());
    let forged = forger.sign(&human(), &idp.issuer(), Duration::from_secs(60)).unwrap();
    let refused = idp.exchange("exchange-agent", forged.expose_secret(), "urn:ietf:params:oauth:token-type:jwt").await.unwrap_err();
    assert_eq!(refused["error"], "invalid_grant");
}

#[tokio::test]
#[ignore = "needs node and oidc-provider: run `cargo xtask test`"]
async fn a_rotated_key_is_picked_up_by_its_unknown_kid_and_an_outage_is_ridden_out_from_cache() {
    let mut idp = Idp::start();
    let clock = ManualClock::new(SystemTime::now());
    let cache = JwksCachePolicy::default().with_max_stale(Duration::from_secs(3600));
    let verifier = Verifier::builder()
        .issuer(idp.policy().jwks_url(format!("{}/protocol/openid-connect/certs", idp.issuer())))
        .http(idp.http())
        .cache_policy(cache)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();

    let before = idp.dual_auth_token().await;
    verifier.verify(&before, None).await.unwrap();
    verifier.verify(&before, None).await.unwrap();
    assert_eq!(idp.jwks_requests().await, 1, "the second verification used the cached keys");

    // The issuer rotates: a new key signs, the old one stays published.
    let rotated = idp.admin("/admin/rotate", true).await;
    assert_eq!(rotated["signing_kid"], "issuer-key-2");
    let after = idp.dual_auth_token().await;
    assert_eq!(dual_auth_test_support::jwt::decode(&after).header["kid"], "issuer-key-2");
    clock.advance(Duration::from_secs(1));
    let subject = verifier.verify(&after, None).await.unwrap();
    assert_eq!(subject.agent.sub, "secret-agent");
    assert_eq!(idp.jwks_requests().await, 2, "exactly one refresh, caused by the unknown kid");
    verifier.verify(&before, None).await.unwrap();
    assert_eq!(idp.jwks_requests().await, 2, "the old key is still cached");

    // The issuer goes down. Within freshness nothing is fetched; past it, the refresh
    // fails and the last good keys keep serving, up to the stale limit.
    idp.process.take();
    clock.advance(Duration::from_secs(600));
    assert_eq!(verifier.verify(&after, None).await.unwrap().human, human(), "stale keys serve during the outage");
    clock.advance(Duration::from_secs(3600));
    let err = verifier.verify(&after, None).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("older than the 3600 s allowed"), "{err}");
}
