//! A local issuer for the verifier's tests: RSA keys from the fixtures, tokens signed with
//! any header and claims we like (OpenSSL, independent of the code under test), and a JWKS
//! served over HTTPS that counts its requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dual_auth_core::token_endpoint::{HttpSettings, RetryPolicy};
use dual_auth_core::{ManualClock, SigningKey};
use dual_auth_test_support::https::{CannedResponse, TestCa, TestHttpsServer};
use dual_auth_test_support::key_fixture;
use dual_auth_verify::{IssuerPolicy, JwksCachePolicy, Verifier};
use serde_json::{Value, json};

pub const API: &str = "https://api.example.com/finance";
pub const KID: &str = "issuer-key-1";
/// The Entra ID API's audience, and the application that signs act assertions for it.
pub const ENTRA_API: &str = "api://finance-api";
pub const APP_ID: &str = "app-1234";

/// An RSA key pair from the fixtures, with a `kid`.
#[derive(Clone)]
pub struct Key {
    pub pem: Vec<u8>,
    pub kid: String,
}

impl Key {
    pub fn fixture(file: &str, kid: &str) -> Self {
        Self { pem: std::fs::read(key_fixture(file)).unwrap(), kid: kid.into() }
    }

    pub fn main() -> Self {
        Self::fixture("rsa2048-pkcs8.pem", KID)
    }

    pub fn other(kid: &str) -> Self {
        Self::fixture("rsa2048-other.pem", kid)
    }

    pub fn jwk(&self) -> Value {
        SigningKey::from_pem(&self.pem).unwrap().with_key_id(&self.kid).public_jwk()
    }

    pub fn public_pem(&self) -> String {
        SigningKey::from_pem(&self.pem).unwrap().public_key_pem()
    }

    /// Signs `header` and `claims` as given (RS256 with OpenSSL, whatever `alg` says).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let key = openssl::pkey::PKey::private_key_from_pem(&self.pem).unwrap();
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        signer.update(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
    }

    /// A token with the usual header (`alg` RS256, `typ` at+jwt, this key's `kid`).
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&json!({"alg": "RS256", "typ": "at+jwt", "kid": self.kid}), claims)
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = openssl::pkey::PKey::hmac(secret).unwrap();
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(message).unwrap();
    signer.sign_to_vec().unwrap()
}

pub fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// What the JWKS endpoint serves: the document, its `Cache-Control`, and whether it is up.
pub struct Published {
    pub keys: Vec<Value>,
    pub cache_control: Option<String>,
    /// Further response headers (`Expires`, `Date`, `Age`).
    pub headers: Vec<(String, String)>,
    pub up: bool,
    pub delay: Duration,
}

/// A local issuer: HTTPS JWKS and discovery, tokens, a manual clock.
pub struct Issuer {
    pub ca: TestCa,
    pub server: TestHttpsServer,
    pub published: Arc<Mutex<Published>>,
    pub clock: ManualClock,
    pub key: Key,
}

impl Issuer {
    pub async fn start() -> Self {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        let key = Key::main();
        let published = Arc::new(Mutex::new(Published {
            keys: vec![key.jwk()],
            cache_control: None,
            headers: Vec::new(),
            up: true,
            delay: Duration::ZERO,
        }));
        let shared = Arc::clone(&published);
        let issuer = server.url("");
        server.set_handler(move |request| {
            let published = shared.lock().unwrap();
            if !published.up {
                return CannedResponse::text(503, "down for maintenance").with_delay(published.delay);
            }
            match request.target.as_str() {
                "/jwks" => {
                    let mut response = CannedResponse::json(200, &json!({"keys": published.keys}).to_string()).with_delay(published.delay);
                    if let Some(cache_control) = &published.cache_control {
                        response = response.with_header("cache-control", cache_control);
                    }
                    for (name, value) in &published.headers {
                        response = response.with_header(name, value);
                    }
                    response
                }
                // Any issuer path gets the document naming this issuer (a mis-set issuer sees a mismatch).
                path if path.ends_with("/.well-known/openid-configuration") => {
                    CannedResponse::json(200, &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string())
                }
                _ => CannedResponse::text(404, "not found"),
            }
        });
        Self { ca, server, published, clock: ManualClock::new(SystemTime::now()), key }
    }

    pub fn issuer(&self) -> String {
        self.server.url("")
    }

    pub fn http(&self) -> HttpSettings {
        dual_auth_test_support::agent::http_settings(self.ca.ca_pem(), RetryPolicy::none())
    }

    /// The issuer's policy: its JWKS, the API audience, the dual-auth layout.
    pub fn policy(&self) -> IssuerPolicy {
        IssuerPolicy::new(self.issuer(), API).jwks_url(self.server.url("/jwks"))
    }

    pub fn verifier(&self, policy: IssuerPolicy) -> Verifier {
        self.verifier_with_cache(policy, JwksCachePolicy::default())
    }

    pub fn verifier_with_cache(&self, policy: IssuerPolicy, cache: JwksCachePolicy) -> Verifier {
        Verifier::builder().issuer(policy).http(self.http()).cache_policy(cache).clock(Arc::new(self.clock.clone())).build().unwrap()
    }

    pub fn jwks_requests(&self) -> usize {
        self.server.requests().iter().filter(|r| r.target == "/jwks").count()
    }

    pub fn publish(&self, keys: Vec<Value>) {
        self.published.lock().unwrap().keys = keys;
    }

    pub fn set(&self, change: impl FnOnce(&mut Published)) {
        change(&mut self.published.lock().unwrap());
    }

    pub fn now(&self) -> u64 {
        unix(self.clock.now_time())
    }

    /// Claims of a valid dual-auth token: the agent, the human, 10 minutes of life.
    pub fn claims(&self) -> Value {
        let now = self.now();
        json!({
            "iss": self.issuer(), "sub": "agent-007", "aud": API, "exp": now + 600, "iat": now, "jti": "t-1",
            "client_id": "agent-007", "scope": "finance.read openid",
            "act": {"sub": "user_12345", "email": "alice@corp.example.com", "name": "Alice Smith"},
        })
    }

    pub fn token(&self) -> String {
        self.key.token(&self.claims())
    }

    /// A valid token with `change` applied to its claims.
    pub fn token_with(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        change(&mut claims);
        self.key.token(&claims)
    }

    /// An Entra ID-shaped access token for `agent` (client credentials: no `act`, the
    /// agent in `azp`), with `change` applied to its claims.
    pub fn entra_token_with(&self, agent: &str, change: impl FnOnce(&mut Value)) -> String {
        self.token_with(|c| {
            let object = c.as_object_mut().unwrap();
            object.remove("act");
            object.remove("client_id");
            c["aud"] = json!(ENTRA_API);
            c["sub"] = json!("sp-object-id");
            c["azp"] = json!(agent);
            change(c);
        })
    }
}

/// Reads a manual clock (the trait is object-safe; this keeps the tests short).
pub trait NowTime {
    fn now_time(&self) -> SystemTime;
}

impl NowTime for ManualClock {
    fn now_time(&self) -> SystemTime {
        dual_auth_core::Clock::now(self)
    }
}
