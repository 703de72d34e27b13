//! A whole configuration loaded from each secret store gives the same typed configuration
//! as from the environment. Needs the servers of `cargo xtask setup`.
// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use dual_auth::config::{ConfigReader, EnvSource, open_source, store_name};
use dual_auth::secrecy::ExposeSecret;
use dual_auth::{SecretBackend, Vendor, load_config_from};

/// Loads `vendor`'s settings from env and from `store_env` (which points at a store
/// holding the same settings), and compares both the typed configs and every value.
async fn same_as_env(vendor: Vendor, store_env: &EnvSource) {
    let from_env = load_config_from(&EnvSource::from_pairs(common::base(vendor)), None, None).await.unwrap();
    let from_store = load_config_from(store_env, None, None).await.unwrap();
    assert_eq!(from_store.vendor, vendor, "DUAL_AUTH_VENDOR read from the store");
    assert_ne!(from_store.backend, SecretBackend::Env);
    assert_eq!(format!("{:?}", from_store.vendor_config), format!("{:?}", from_env.vendor_config), "{vendor}");
    let source = open_source(from_store.backend, store_env).await.unwrap();
    let env = EnvSource::from_pairs(common::base(vendor));
    for (key, _) in common::base(vendor) {
        let stored = ConfigReader::new(source.as_ref()).secret(&key).await.unwrap();
        let plain = ConfigReader::new(&env).secret(&key).await.unwrap();
        assert_eq!(stored.expose_secret(), plain.expose_secret(), "{vendor} {key}");
    }
}

#[cfg(feature = "vault")]
#[tokio::test]
#[ignore = "needs OpenBao: run `cargo xtask test`"]
async fn vault_gives_the_same_configuration_as_env() {
    let bao = dual_auth_test_support::servers::Bao::start();
    for vendor in Vendor::ALL {
        for (key, value) in common::base(vendor) {
            bao.put_kv2(&store_name(&key, "dual-auth/"), &value).await;
        }
        let mut pairs = bao.env_pairs(&[("VAULT_TOKEN", "root"), ("DUAL_AUTH_SECRETS_BACKEND", "vault")]);
        pairs.push(("DUAL_AUTH_VENDOR".into(), "keycloak".into())); // the store's value wins, as upstream
        same_as_env(vendor, &EnvSource::from_pairs(pairs)).await;
    }
}

#[cfg(feature = "aws")]
#[tokio::test]
#[ignore = "needs moto: run `cargo xtask test`"]
async fn aws_gives_the_same_configuration_as_env() {
    let ca = dual_auth_test_support::https::TestCa::new();
    let moto = dual_auth_test_support::servers::Moto::start(&ca);
    let env = EnvSource::from_pairs(moto.env_pairs(&ca, &[("DUAL_AUTH_SECRETS_BACKEND", "aws")]));
    let source = dual_auth::config::AwsSource::from_env(&env).await.unwrap();
    for vendor in Vendor::ALL {
        for (key, value) in common::base(vendor) {
            let name = format!("dual-auth/{key}");
            match source.sdk_client().create_secret().name(&name).secret_string(&value).send().await {
                Ok(_) => {}
                Err(_) => {
                    source.sdk_client().put_secret_value().secret_id(&name).secret_string(&value).send().await.unwrap();
                }
            }
        }
        same_as_env(vendor, &env).await;
    }
}

#[cfg(feature = "gcp")]
#[tokio::test]
async fn gcp_gives_the_same_configuration_as_env() {
    let fake = dual_auth_test_support::fakes::GcpSecretManagerFake::start().await;
    for vendor in Vendor::ALL {
        for (key, value) in common::base(vendor) {
            fake.put("corp-prod", &store_name(&key, "dual-auth-"), value.as_bytes());
        }
        let env = EnvSource::from_pairs([
            ("DUAL_AUTH_SECRETS_BACKEND", "gcp".to_owned()),
            ("DUAL_AUTH_GCP_PROJECT", "corp-prod".to_owned()),
            ("DUAL_AUTH_GCP_ENDPOINT", fake.endpoint()),
        ]);
        same_as_env(vendor, &env).await;
    }
}

#[cfg(feature = "azure")]
#[tokio::test]
async fn azure_gives_the_same_configuration_as_env() {
    use dual_auth_test_support::fakes::{AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT, AzureKeyVaultFake};
    let ca = dual_auth_test_support::https::TestCa::new();
    let fake = AzureKeyVaultFake::start(&ca).await;
    for vendor in Vendor::ALL {
        for (key, value) in common::base(vendor) {
            fake.put(&store_name(&key, "dual-auth-"), &value);
        }
        let env = EnvSource::from_pairs([
            ("DUAL_AUTH_SECRETS_BACKEND", "azure".to_owned()),
            ("DUAL_AUTH_AZURE_VAULT_URL", fake.vault_url()),
            ("AZURE_AUTHORITY_HOST", fake.authority_host()),
            ("AZURE_TENANT_ID", AZURE_TENANT.to_owned()),
            ("AZURE_CLIENT_ID", AZURE_CLIENT_ID.to_owned()),
            ("AZURE_CLIENT_SECRET", AZURE_CLIENT_SECRET.to_owned()),
            ("DUAL_AUTH_CA_BUNDLE", ca.ca_path().display().to_string()),
            ("DUAL_AUTH_AZURE_VERIFY_CHALLENGE_RESOURCE", "false".to_owned()),
        ]);
        same_as_env(vendor, &env).await;
    }
}
