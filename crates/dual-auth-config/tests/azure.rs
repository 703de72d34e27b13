//! The azure backend (Microsoft's official Rust SDK) through the real Key Vault challenge
//! flow against a protocol-faithful fake, and the fake against Microsoft's official Python
//! clients.
#![cfg(feature = "azure")]
// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use dual_auth_config::{AzureSource, ConfigError, ConfigReader, EnvSource};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{SecretError, SecretSource};
use dual_auth_test_support::fakes::{AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_FORBIDDEN_SECRET, AZURE_TENANT, AzureKeyVaultFake};
use dual_auth_test_support::https::TestCa;
use dual_auth_test_support::process::server_tool;

fn env(ca: &TestCa, fake: &AzureKeyVaultFake, secret: &str) -> EnvSource {
    EnvSource::from_pairs([
        ("DUAL_AUTH_AZURE_VAULT_URL", fake.vault_url()),
        ("AZURE_AUTHORITY_HOST", fake.authority_host()),
        ("AZURE_TENANT_ID", AZURE_TENANT.to_owned()),
        ("AZURE_CLIENT_ID", AZURE_CLIENT_ID.to_owned()),
        ("AZURE_CLIENT_SECRET", secret.to_owned()),
        ("DUAL_AUTH_CA_BUNDLE", ca.ca_path().display().to_string()),
        ("DUAL_AUTH_AZURE_VERIFY_CHALLENGE_RESOURCE", "false".to_owned()),
    ])
}

#[tokio::test]
async fn the_challenge_flow_yields_secrets_by_upstream_names() {
    let ca = TestCa::new();
    let fake = AzureKeyVaultFake::start(&ca).await;
    fake.put("dual-auth-agent-client-secret", "  azure-held-secret-0123456789abcdefgh ");
    let source = AzureSource::from_env(&env(&ca, &fake, AZURE_CLIENT_SECRET)).unwrap();
    assert_eq!(source.credential_kind(), "client_secret");
    assert_eq!(source.fetch("AGENT_CLIENT_SECRET").await.unwrap().unwrap().expose_secret(), "azure-held-secret-0123456789abcdefgh");

    // The real flow: a request without a token, the 401 challenge, a token, the request again.
    let vault = fake.vault_requests();
    assert_eq!(vault.len(), 2);
    // The SDK's own form: an empty version segment means the latest version.
    assert!(vault[0].target.starts_with("/secrets/dual-auth-agent-client-secret/?api-version="), "{}", vault[0].target);
    assert_eq!(vault[0].header("authorization"), None);
    assert_eq!(vault[1].header("authorization"), Some("Bearer fake-vault-token-1"));
    let authority = fake.authority_requests();
    assert_eq!(authority.len(), 1);
    assert_eq!(authority[0].target, format!("/{AZURE_TENANT}/oauth2/v2.0/token"));
    assert_eq!(authority[0].form_value("scope").as_deref(), Some("https://vault.azure.net/.default"));

    assert!(source.fetch("AGENT_CLIENT_ID").await.unwrap().is_none());
    let err = ConfigReader::new(&source).text("AGENT_CLIENT_ID").await.unwrap_err();
    assert!(matches!(&err, ConfigError::Missing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("AGENT_CLIENT_ID is missing: set the secret dual-auth-agent-client-id in Azure Key Vault {}", fake.vault_url())
    );

    let err = source.fetch("DUAL_AUTH_FORBIDDEN").await.unwrap_err();
    assert!(matches!(&err, SecretError::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("Key Vault Secrets User"), "{err}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_error_not_a_fallback_to_other_credentials() {
    let ca = TestCa::new();
    let fake = AzureKeyVaultFake::start(&ca).await;
    fake.put("dual-auth-agent-client-secret", "x");
    let source = AzureSource::from_env(&env(&ca, &fake, "wrong-secret")).unwrap();
    let err = source.fetch("AGENT_CLIENT_SECRET").await.unwrap_err();
    assert!(matches!(&err, SecretError::Unavailable { .. } | SecretError::PermissionDenied { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("wrong-secret"), "the secret is never echoed");
    assert_eq!(fake.vault_requests().len(), 1, "no token, no second request");
}

#[tokio::test]
async fn settings_are_checked() {
    let err = AzureSource::from_env(&EnvSource::from_pairs([("AZURE_TENANT_ID", "t")])).unwrap_err();
    assert!(err.to_string().contains("DUAL_AUTH_AZURE_VAULT_URL: is required"), "{err}");
    let err = AzureSource::from_env(&EnvSource::from_pairs([("DUAL_AUTH_AZURE_VAULT_URL", "http://corp.vault.azure.net")])).unwrap_err();
    assert!(err.to_string().contains("must use https://"), "{err}");
    let err = AzureSource::from_env(&EnvSource::from_pairs([
        ("DUAL_AUTH_AZURE_VAULT_URL", "https://corp.vault.azure.net"),
        ("DUAL_AUTH_AZURE_CREDENTIAL", "kerberos"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("is not one of workload_identity, client_secret, managed_identity, azure_cli"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs azure-identity and azure-keyvault-secrets: run `cargo xtask test`"]
async fn the_fake_answers_microsofts_official_python_clients_as_azure_does() {
    let ca = TestCa::new();
    let fake = AzureKeyVaultFake::start(&ca).await;
    fake.put("dual-auth-agent-client-secret", "azure-held-secret");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/official/azure_client.py");
    let run = |secret: &str, names: &[&str]| {
        let out = Command::new(server_tool("python"))
            .arg(&script)
            .args([fake.authority_host(), fake.vault_url(), secret.to_owned()])
            .args(names)
            .env("REQUESTS_CA_BUNDLE", ca.ca_path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let lines = tokio::task::block_in_place(|| {
        run(AZURE_CLIENT_SECRET, &["dual-auth-agent-client-secret", "dual-auth-missing", AZURE_FORBIDDEN_SECRET])
    });
    assert_eq!(lines, ["ok azure-held-secret", "not_found", "http 403"]);
    let first = &fake.vault_requests()[0];
    assert_eq!(first.header("authorization"), None, "the official client too starts without a token, for the challenge");
    let lines = tokio::task::block_in_place(|| run("wrong", &["dual-auth-agent-client-secret"]));
    assert_eq!(lines, ["auth_failed"]);
}
