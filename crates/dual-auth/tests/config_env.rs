//! Configuration from the environment: every vendor's happy path, every missing key, every
//! bad URL, white-space-only values, and errors that name the key and the fix.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dual_auth::config::{ConfigError, EnvSource};
use dual_auth::{SecretBackend, SetupError, Vendor, VendorConfig, load_config_from};
use dual_auth_test_support::key_fixture;

mod common;
use common::base;

async fn load(pairs: &[(String, String)]) -> Result<dual_auth::LoadedConfig, SetupError> {
    load_config_from(&EnvSource::from_pairs(pairs.iter().cloned()), None, None).await
}

fn config_error(result: Result<dual_auth::LoadedConfig, SetupError>) -> ConfigError {
    match result {
        Err(SetupError::Config(e)) => e,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_vendor_loads_from_env() {
    for vendor in Vendor::ALL {
        let loaded = load(&base(vendor)).await.unwrap();
        assert_eq!((loaded.vendor, loaded.backend), (vendor, SecretBackend::Env));
        match loaded.vendor_config {
            VendorConfig::Keycloak(c) => assert_eq!(
                (c.client_id.as_str(), c.token_url.as_str()),
                ("finance-agent", "https://kc.example.com/realms/corp/protocol/openid-connect/token")
            ),
            VendorConfig::Auth0(c) => assert_eq!(c.api_audience, "https://api.example.com/finance"),
            VendorConfig::Okta(c) => assert_eq!(c.client_id, "0oa-agent"),
            VendorConfig::EntraId(c) => assert_eq!((c.app_id.as_str(), c.api_scope.as_str()), ("web-app", "api://finance-api/.default")),
            other => panic!("{other:?}"),
        }
        // And the adapter accepts it.
        load(&base(vendor)).await.unwrap().into_adapter().unwrap();
    }
}

#[tokio::test]
async fn every_missing_or_blank_key_is_named_with_where_to_set_it() {
    for vendor in Vendor::ALL {
        let keys: Vec<String> = base(vendor).into_iter().map(|(k, _)| k).filter(|k| k != "DUAL_AUTH_VENDOR").collect();
        for key in keys {
            for blank in [None, Some("   ")] {
                let pairs: Vec<(String, String)> = base(vendor)
                    .into_iter()
                    .filter_map(|(k, v)| if k == key { blank.map(|b| (k, b.to_owned())) } else { Some((k, v)) })
                    .collect();
                let err = config_error(load(&pairs).await);
                assert!(
                    matches!(&err, ConfigError::Missing { key: k, backend: SecretBackend::Env, .. } if *k == key),
                    "{vendor} {key}: {err:?}"
                );
                assert_eq!(err.to_string(), format!("{key} is missing: set the environment variable {key} (or a line {key}=... in .env)"));
            }
        }
    }
}

#[tokio::test]
async fn every_bad_url_is_named_with_what_is_wrong() {
    let url_key = |vendor: Vendor| match vendor {
        Vendor::Keycloak => "KEYCLOAK_TOKEN_URL",
        Vendor::Auth0 => "AUTH0_TOKEN_URL",
        Vendor::Okta => "OKTA_TOKEN_URL",
        _ => "ENTRAID_TOKEN_URL",
    };
    for vendor in Vendor::ALL {
        for (bad, expected) in [
            ("http://idp.example.com/token", "must use https://, got \"http://\""),
            ("idp.example.com/token", "is not an absolute URL"),
            ("https://user:pw@idp.example.com/token", "must not carry credentials"),
        ] {
            let pairs: Vec<(String, String)> =
                base(vendor).into_iter().map(|(k, v)| if k == url_key(vendor) { (k, bad.to_owned()) } else { (k, v) }).collect();
            let err = config_error(load(&pairs).await);
            assert!(matches!(&err, ConfigError::InvalidUrl { key, .. } if key == url_key(vendor)), "{vendor}: {err:?}");
            assert!(err.to_string().starts_with(&format!("{} (from env) ", url_key(vendor))), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}

#[tokio::test]
async fn values_are_trimmed_and_errors_never_show_secrets() {
    let mut pairs = base(Vendor::Keycloak);
    pairs.iter_mut().for_each(|(k, v)| {
        if k == "AGENT_CLIENT_ID" {
            *v = "  finance-agent \n".into()
        }
    });
    let loaded = load(&pairs).await.unwrap();
    let VendorConfig::Keycloak(config) = loaded.vendor_config else { panic!() };
    assert_eq!(config.client_id, "finance-agent");

    let short = "short-secret";
    let pairs: Vec<(String, String)> =
        base(Vendor::Okta).into_iter().map(|(k, v)| if k == "AGENT_CLIENT_SECRET" { (k, short.into()) } else { (k, v) }).collect();
    let err = config_error(load(&pairs).await);
    assert!(matches!(&err, ConfigError::Key { key, .. } if key == "AGENT_CLIENT_SECRET"), "{err:?}");
    let chain = dual_auth::ErrorChain(&err).to_string();
    assert!(!format!("{chain} {err:?}").contains(short), "the secret's value never appears");
    assert_eq!(err.to_string(), "AGENT_CLIENT_SECRET gives an unusable key");
    assert!(chain.contains("at least 32"), "{chain}");
}

#[tokio::test]
async fn vendor_backend_and_files_are_checked() {
    let mut pairs = base(Vendor::Okta);
    pairs.iter_mut().for_each(|(k, v)| {
        if k == "DUAL_AUTH_VENDOR" {
            *v = "azuread".into()
        }
    });
    let err = config_error(load(&pairs).await);
    assert!(err.to_string().contains("DUAL_AUTH_VENDOR must be one of keycloak, auth0, okta, entraid"), "{err}");

    let mut pairs = base(Vendor::Okta);
    pairs.push(("DUAL_AUTH_SECRETS_BACKEND".into(), "s3".into()));
    let err = config_error(load(&pairs).await);
    assert!(err.to_string().contains("DUAL_AUTH_SECRETS_BACKEND must be one of env, aws, gcp, azure, vault"), "{err}");

    // Without a vendor setting, keycloak (the upstream default).
    let pairs: Vec<(String, String)> = base(Vendor::Keycloak).into_iter().filter(|(k, _)| k != "DUAL_AUTH_VENDOR").collect();
    assert_eq!(load(&pairs).await.unwrap().vendor, Vendor::Keycloak);

    let pairs: Vec<(String, String)> = base(Vendor::EntraId)
        .into_iter()
        .map(|(k, v)| if k == "APP_PRIVATE_KEY_PATH" { (k, "/nonexistent/app.pem".into()) } else { (k, v) })
        .collect();
    let err = config_error(load(&pairs).await);
    assert!(matches!(&err, ConfigError::File { key, .. } if key == "APP_PRIVATE_KEY_PATH"), "{err:?}");

    let mut pairs = base(Vendor::Keycloak);
    pairs.push(("AGENT_CLIENT_AUTH_METHOD".into(), "private_key_jwt".into()));
    let err = config_error(load(&pairs).await);
    assert!(matches!(&err, ConfigError::Missing { key, .. } if key == "AGENT_PRIVATE_KEY_PATH"), "{err:?}");
    pairs.push(("AGENT_PRIVATE_KEY_PATH".into(), key_fixture("ec-p256-pkcs8.pem").display().to_string()));
    assert!(load(&pairs).await.is_ok());
    pairs.push(("AGENT_CLIENT_AUTH_METHOD".into(), "mtls".into()));
}

#[tokio::test]
async fn dotenv_fills_in_but_never_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "# the guide's .env\nDUAL_AUTH_DEMO_ONLY_IN_DOTENV=from-dotenv\nPATH=/from/dotenv\n").unwrap();
    let env = EnvSource::with_dotenv(&path).unwrap();
    assert_eq!(env.get("DUAL_AUTH_DEMO_ONLY_IN_DOTENV").as_deref(), Some("from-dotenv"));
    assert_ne!(env.get("PATH").as_deref(), Some("/from/dotenv"), "the real environment wins");
    std::fs::write(&path, "GOOD=1\nthis line is broken\n").unwrap();
    let err = EnvSource::with_dotenv(&path).unwrap_err();
    assert!(err.to_string().contains("line 2 is not KEY=VALUE"), "{err}");
}

#[tokio::test]
async fn an_untrusted_dotenv_cannot_say_where_credentials_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    for (key, value) in [
        ("DUAL_AUTH_TEST_ONLY_TOKEN_URL", "https://attacker.example/token"),
        ("DUAL_AUTH_CA_BUNDLE", "/tmp/attacker-ca.pem"),
        ("DUAL_AUTH_SECRETS_BACKEND", "vault"),
        ("DUAL_AUTH_TEST_ONLY_VAULT_ADDR", "https://attacker.example"),
        ("DUAL_AUTH_TEST_ONLY_ENDPOINT", "https://attacker.example"),
    ] {
        std::fs::write(&path, format!("AGENT_CLIENT_ID=finance-agent\n{key}={value}\n")).unwrap();
        let err = EnvSource::with_dotenv(&path).unwrap_err();
        assert!(matches!(&err, ConfigError::NotFromDotenv { key: k, .. } if k == key), "{key}: {err:?}");
        assert!(err.to_string().contains("DUAL_AUTH_DOTENV=trusted"), "{err}");
        let trusted = EnvSource::with_trusted_dotenv(&path).unwrap();
        assert_eq!(trusted.get(key).as_deref(), Some(value), "a trusted .env may set {key}");
    }
    std::fs::write(&path, "AGENT_CLIENT_ID=finance-agent\nAPI_SCOPE=api://finance/.default\n").unwrap();
    assert_eq!(EnvSource::with_dotenv(&path).unwrap().get("AGENT_CLIENT_ID").as_deref(), Some("finance-agent"));
}

#[tokio::test]
async fn backends_not_compiled_in_say_which_feature_adds_them() {
    let mut pairs = base(Vendor::Okta);
    pairs.push(("DUAL_AUTH_SECRETS_BACKEND".into(), "hashicorp".into()));
    let result = load(&pairs).await;
    if cfg!(feature = "vault") {
        return;
    }
    let err = config_error(result);
    assert_eq!(err.to_string(), "the vault secrets backend is not compiled in: enable the Cargo feature \"vault\"");
}

#[tokio::test]
async fn the_secret_cache_time_is_a_number() {
    let mut pairs = base(Vendor::Okta);
    pairs.push(("DUAL_AUTH_SECRETS_BACKEND".into(), "gcp".into()));
    pairs.push(("DUAL_AUTH_SECRET_CACHE_SECONDS".into(), "five minutes".into()));
    let err = config_error(load(&pairs).await);
    assert!(err.to_string().contains("DUAL_AUTH_SECRET_CACHE_SECONDS"), "{err}");
}
