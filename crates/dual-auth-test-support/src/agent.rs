//! The agent's side as the tests of several crates set it up: HTTP settings that trust a
//! test CA, adapter options, quick retries, a client secret, the human Alice, and a replay
//! store that is down.

use std::time::{Duration, SystemTime};

use dual_auth_core::secrecy::SecretString;
use dual_auth_core::token_endpoint::{AdapterOptions, HttpSettings, RetryPolicy};
use dual_auth_core::{Act, ClientAuthentication, ReplayError, ReplayGuard};

use crate::https::TestCa;
use crate::keycloak::Keycloak;

/// The default HTTP settings, also trusting `ca_pem` (a throw-away CA's certificate).
pub fn trusting(ca_pem: &str) -> HttpSettings {
    HttpSettings { extra_root_certificates_pem: Some(ca_pem.as_bytes().to_vec()), ..HttpSettings::default() }
}

/// [`trusting`] `ca_pem`, retrying as `retry` says ([`RetryPolicy::none`] for one attempt).
pub fn http_settings(ca_pem: &str, retry: RetryPolicy) -> HttpSettings {
    HttpSettings { retry, ..trusting(ca_pem) }
}

/// The default retries with a 10 ms first backoff, so that tests of retries stay fast.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy { initial_backoff: Duration::from_millis(10), ..RetryPolicy::default() }
}

/// Adapter options trusting `ca`, with the default retries.
pub fn options(ca: &TestCa) -> AdapterOptions {
    AdapterOptions::with_http(trusting(ca.ca_pem()))
}

/// Adapter options trusting `ca`, retrying as `retry` says.
pub fn options_with_retry(ca: &TestCa, retry: RetryPolicy) -> AdapterOptions {
    AdapterOptions::with_http(http_settings(ca.ca_pem(), retry))
}

/// HTTP settings for a real Keycloak: its CA, a 60 s timeout (the first requests to a cold
/// JVM on two cores can take seconds) and retries from 50 ms.
pub fn keycloak_http_settings(kc: &Keycloak) -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(60),
        retry: RetryPolicy { initial_backoff: Duration::from_millis(50), ..RetryPolicy::default() },
        ..trusting(kc.ca.ca_pem())
    }
}

/// `client_secret_jwt` with `secret`.
///
/// # Panics
/// When the secret is too short for HS256.
pub fn secret_auth(secret: &str) -> ClientAuthentication {
    ClientAuthentication::client_secret_jwt(&SecretString::from(secret)).unwrap()
}

/// Alice as the guide names her: `user_12345`, `alice@corp.example.com`, "Alice Smith".
pub fn alice() -> Act {
    alice_as("user_12345")
}

/// Alice (`alice@corp.example.com`, "Alice Smith") with the user id `sub` an identity
/// provider gave her.
///
/// # Panics
/// When `sub` is empty.
pub fn alice_as(sub: &str) -> Act {
    Act::new(sub).unwrap().with_email("alice@corp.example.com").with_name("Alice Smith")
}

/// A replay store that cannot answer, as Redis when it is down: every check fails with
/// [`ReplayError::Unavailable`] ("Redis: connection refused").
#[derive(Debug, Clone, Copy, Default)]
pub struct UnavailableReplayStore;

#[async_trait::async_trait]
impl ReplayGuard for UnavailableReplayStore {
    async fn check_and_record(&self, _: &str, _: SystemTime) -> Result<(), ReplayError> {
        Err(ReplayError::Unavailable { reason: "Redis: connection refused".into(), source: None })
    }
}
