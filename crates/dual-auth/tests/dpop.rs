//! DPoP configuration: `DUAL_AUTH_DPOP`, `DUAL_AUTH_DPOP_KEY_PATH`,
//! `DUAL_AUTH_DPOP_ALLOW_DOWNGRADE`, typed errors naming the key, the adapters they build
//! (Entra ID refused) and the cache keys per DPoP key.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dual_auth::config::{ConfigError, EnvSource};
use dual_auth::session::CacheKey;
use dual_auth::{Act, DpopKey, IamError, SecretBackend, SetupError, SigningAlgorithm, TokenRequest, Vendor, load_config_from};
use dual_auth_test_support::key_fixture;

mod common;
use common::base;

async fn load(vendor: Vendor, extra: &[(&str, String)]) -> Result<dual_auth::LoadedConfig, SetupError> {
    let mut pairs = base(vendor);
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    load_config_from(&EnvSource::from_pairs(pairs), None, None).await
}

fn config_error(result: Result<dual_auth::LoadedConfig, SetupError>) -> ConfigError {
    match result {
        Err(SetupError::Config(e)) => e,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn fixture(name: &str) -> String {
    key_fixture(name).display().to_string()
}

#[tokio::test]
async fn off_by_default_and_explicitly() {
    assert!(load(Vendor::Keycloak, &[]).await.unwrap().dpop.is_none());
    for off in ["off", "OFF", " off "] {
        assert!(load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP", off.into())]).await.unwrap().dpop.is_none(), "{off:?}");
    }
    let loaded = load(Vendor::Keycloak, &[]).await.unwrap();
    assert!(loaded.adapter_options().dpop.is_none());
    assert!(loaded.into_adapter().unwrap().dpop_key().is_none());
}

#[tokio::test]
async fn es256_and_eddsa_generate_a_key_per_process() {
    for (value, algorithm) in [("es256", SigningAlgorithm::Es256), ("EdDSA", SigningAlgorithm::EdDsa)] {
        let one = load(Vendor::Okta, &[("DUAL_AUTH_DPOP", value.into())]).await.unwrap();
        let two = load(Vendor::Okta, &[("DUAL_AUTH_DPOP", value.into())]).await.unwrap();
        let (a, b) = (one.dpop.clone().unwrap(), two.dpop.clone().unwrap());
        assert_eq!(a.key.algorithm(), algorithm);
        assert!(!a.allow_downgrade, "downgrades refused by default");
        assert_ne!(a.key.thumbprint(), b.key.thumbprint(), "a new key each time");
        let adapter = one.into_adapter().unwrap();
        assert_eq!(adapter.dpop_key().map(DpopKey::thumbprint), Some(a.key.thumbprint()), "the adapter (behind its cache) binds to it");
        assert!(adapter.cache_scope().ends_with(&format!("|dpop:{}", a.key.thumbprint())));
    }
}

#[tokio::test]
async fn a_key_path_implies_on_and_replicas_share_the_key() {
    for (file, algorithm) in [("ec-p256-pkcs8.pem", SigningAlgorithm::Es256), ("ed25519-pkcs8.pem", SigningAlgorithm::EdDsa)] {
        let extra = [("DUAL_AUTH_DPOP_KEY_PATH", fixture(file)), ("DUAL_AUTH_DPOP_ALLOW_DOWNGRADE", "TRUE".into())];
        let one = load(Vendor::Auth0, &extra).await.unwrap().dpop.unwrap();
        let two = load(Vendor::Auth0, &extra).await.unwrap().dpop.unwrap();
        assert_eq!(one.key.algorithm(), algorithm);
        assert_eq!(one.key.thumbprint(), two.key.thumbprint(), "the same key in every replica");
        assert!(one.allow_downgrade);
    }
    // Naming the algorithm too is fine when it agrees.
    let agreed = [("DUAL_AUTH_DPOP", "es256".into()), ("DUAL_AUTH_DPOP_KEY_PATH", fixture("ec-p256-pkcs8.pem"))];
    assert!(load(Vendor::Keycloak, &agreed).await.unwrap().dpop.is_some());
}

#[tokio::test]
async fn every_bad_setting_is_a_typed_error_naming_its_key() {
    let err = config_error(load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP", "rs256".into())]).await);
    assert!(matches!(&err, ConfigError::InvalidValue { key, backend: SecretBackend::Env, .. } if key == "DUAL_AUTH_DPOP"), "{err:?}");
    assert_eq!(err.to_string(), "DUAL_AUTH_DPOP (from env): \"rs256\" is not one of off, es256, eddsa");

    let err =
        config_error(load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP_ALLOW_DOWNGRADE", "yes".into()), ("DUAL_AUTH_DPOP", "es256".into())]).await);
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "DUAL_AUTH_DPOP_ALLOW_DOWNGRADE"), "{err:?}");
    assert!(err.to_string().contains("is not one of false, true"), "{err}");

    let off_with_key = [("DUAL_AUTH_DPOP", "off".into()), ("DUAL_AUTH_DPOP_KEY_PATH", fixture("ec-p256-pkcs8.pem"))];
    let err = config_error(load(Vendor::Keycloak, &off_with_key).await);
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "DUAL_AUTH_DPOP"), "{err:?}");
    assert!(err.to_string().contains("DUAL_AUTH_DPOP_KEY_PATH is set"), "{err}");

    let disagree = [("DUAL_AUTH_DPOP", "eddsa".into()), ("DUAL_AUTH_DPOP_KEY_PATH", fixture("ec-p256-pkcs8.pem"))];
    let err = config_error(load(Vendor::Keycloak, &disagree).await);
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "DUAL_AUTH_DPOP"), "{err:?}");
    assert!(err.to_string().contains("EdDSA") && err.to_string().contains("ES256"), "{err}");

    let err = config_error(load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP_KEY_PATH", "/nonexistent/dpop.pem".into())]).await);
    assert!(matches!(&err, ConfigError::File { key, .. } if key == "DUAL_AUTH_DPOP_KEY_PATH"), "{err:?}");

    for (file, why) in [("rsa2048-pkcs8.pem", "ES256 or EdDSA"), ("ec-p384-sec1.pem", ""), ("ec-p256.pub.pem", "")] {
        let err = config_error(load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP_KEY_PATH", fixture(file))]).await);
        assert!(matches!(&err, ConfigError::Key { key, .. } if key == "DUAL_AUTH_DPOP_KEY_PATH"), "{file}: {err:?}");
        assert_eq!(err.to_string(), "DUAL_AUTH_DPOP_KEY_PATH gives an unusable key", "{file}");
        let chain = dual_auth::ErrorChain(&err).to_string();
        assert!(chain.starts_with("DUAL_AUTH_DPOP_KEY_PATH gives an unusable key: ") && chain.contains(why), "{file}: {chain}");
        assert!(!chain.contains("BEGIN"), "no key material: {chain}");
    }
}

#[tokio::test]
async fn entra_id_with_dpop_is_refused_as_not_supported() {
    let loaded = load(Vendor::EntraId, &[("DUAL_AUTH_DPOP", "es256".into())]).await.unwrap();
    match loaded.into_adapter() {
        Err(SetupError::Iam(IamError::NotSupported { what })) => assert!(what.contains("entraid") && what.contains("DPoP"), "{what}"),
        other => panic!("expected NotSupported, got {other:?}"),
    }
    // Without DPoP it builds as before.
    load(Vendor::EntraId, &[("DUAL_AUTH_DPOP", "off".into())]).await.unwrap().into_adapter().unwrap();
}

#[tokio::test]
async fn cache_keys_differ_per_dpop_key_and_from_bearer() {
    let request = TokenRequest::new("finance-agent", Act::new("user_12345").unwrap(), ["finance.read"]).unwrap();
    let key_of = |scope: String| CacheKey::new(&scope, &request);
    let bearer = load(Vendor::Keycloak, &[]).await.unwrap().into_adapter().unwrap();
    let one = load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP", "es256".into())]).await.unwrap().into_adapter().unwrap();
    let two = load(Vendor::Keycloak, &[("DUAL_AUTH_DPOP", "es256".into())]).await.unwrap().into_adapter().unwrap();
    let shared = [("DUAL_AUTH_DPOP_KEY_PATH", fixture("ec-p256-pkcs8.pem"))];
    let replica_a = load(Vendor::Keycloak, &shared).await.unwrap().into_adapter().unwrap();
    let replica_b = load(Vendor::Keycloak, &shared).await.unwrap().into_adapter().unwrap();
    let keys = [key_of(bearer.cache_scope()), key_of(one.cache_scope()), key_of(two.cache_scope()), key_of(replica_a.cache_scope())];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(key_of(replica_a.cache_scope()), key_of(replica_b.cache_scope()), "replicas sharing a key share tokens");
}
