//! The vault backend against a real OpenBao server (the Vault API), over TLS.
//! Needs `cargo xtask setup` (OpenBao under `target/it/servers`).
#![cfg(feature = "vault")]
// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dual_auth_config::{ConfigError, ConfigReader, EnvSource, VaultSource};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{SecretError, SecretSource};
use dual_auth_test_support::servers::Bao;
use serde_json::json;

trait BaoEnv {
    fn env(&self, extra: &[(&str, &str)]) -> EnvSource;
}

impl BaoEnv for Bao {
    fn env(&self, extra: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(self.env_pairs(extra))
    }
}

const SECRET: &str = "vault-held-client-secret-0123456789abcdef";

#[tokio::test]
#[ignore = "needs OpenBao: run `cargo xtask test`"]
async fn token_auth_reads_kv2_and_a_kv1_mount_and_reports_missing_paths() {
    let bao = Bao::start();
    bao.put_kv2("dual-auth/agent-client-secret", SECRET).await;
    bao.put_kv2("dual-auth/keycloak-token-url", "  https://kc.example.com/realms/corp/protocol/openid-connect/token  ").await;

    let source = VaultSource::from_env(&bao.env(&[("VAULT_TOKEN", "root")])).await.unwrap();
    assert_eq!(source.fetch("AGENT_CLIENT_SECRET").await.unwrap().unwrap().expose_secret(), SECRET);
    assert_eq!(
        source.fetch("KEYCLOAK_TOKEN_URL").await.unwrap().unwrap().expose_secret(),
        "https://kc.example.com/realms/corp/protocol/openid-connect/token",
        "trimmed"
    );
    assert!(source.fetch("AGENT_CLIENT_ID").await.unwrap().is_none(), "a missing path is absent, not an error");
    let err = ConfigReader::new(&source).text("AGENT_CLIENT_ID").await.unwrap_err();
    assert!(matches!(&err, ConfigError::Missing { key, .. } if key == "AGENT_CLIENT_ID"), "{err:?}");
    assert!(err.to_string().contains("secret/dual-auth/agent-client-id in Vault"), "{err}");

    // A KV v1 mount.
    bao.api(reqwest::Method::POST, "sys/mounts/kv1", Some(json!({"type": "kv", "options": {"version": "1"}}))).await;
    bao.api(reqwest::Method::POST, "kv1/dual-auth/agent-client-secret", Some(json!({"value": "v1-secret"}))).await;
    let v1 = VaultSource::from_env(&bao.env(&[("VAULT_TOKEN", "root"), ("DUAL_AUTH_VAULT_MOUNT", "kv1")])).await.unwrap();
    assert_eq!(v1.fetch("AGENT_CLIENT_SECRET").await.unwrap().unwrap().expose_secret(), "v1-secret");
    assert!(v1.fetch("AGENT_CLIENT_ID").await.unwrap().is_none());

    // A secret without the field "value".
    bao.api(reqwest::Method::POST, "secret/data/dual-auth/agent-client-id", Some(json!({"data": {"secret": "x"}}))).await;
    let err = source.fetch("AGENT_CLIENT_ID").await.unwrap_err();
    assert!(matches!(&err, SecretError::InvalidValue { reason, .. } if reason.contains("field \"value\"")), "{err:?}");
}

#[tokio::test]
#[ignore = "needs OpenBao: run `cargo xtask test`"]
async fn approle_login_reads_what_its_policy_allows_and_a_bad_token_is_a_clear_permission_error() {
    let bao = Bao::start();
    bao.put_kv2("dual-auth/agent-client-secret", SECRET).await;
    bao.put_kv2("other-team/db-password", "not-for-us").await;
    bao.api(reqwest::Method::POST, "sys/auth/approle", Some(json!({"type": "approle"}))).await;
    let policy = r#"path "secret/data/dual-auth/*" { capabilities = ["read"] }"#;
    bao.api(reqwest::Method::PUT, "sys/policies/acl/dual-auth", Some(json!({"policy": policy}))).await;
    bao.api(reqwest::Method::POST, "auth/approle/role/agent", Some(json!({"token_policies": ["dual-auth"]}))).await;
    let role_id =
        bao.api(reqwest::Method::GET, "auth/approle/role/agent/role-id", None).await["data"]["role_id"].as_str().unwrap().to_owned();
    let secret_id =
        bao.api(reqwest::Method::POST, "auth/approle/role/agent/secret-id", None).await["data"]["secret_id"].as_str().unwrap().to_owned();

    let source = VaultSource::from_env(&bao.env(&[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", &secret_id)])).await.unwrap();
    assert_eq!(source.fetch("AGENT_CLIENT_SECRET").await.unwrap().unwrap().expose_secret(), SECRET);
    let outside = VaultSource::from_env(&bao.env(&[
        ("VAULT_ROLE_ID", &role_id),
        ("VAULT_SECRET_ID", &secret_id),
        ("DUAL_AUTH_VAULT_PATH_PREFIX", "other-team/"),
    ]))
    .await
    .unwrap();
    let err = outside.fetch("DB_PASSWORD").await.unwrap_err();
    assert!(matches!(&err, SecretError::PermissionDenied { .. }), "{err:?}");

    let err = VaultSource::from_env(&bao.env(&[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", "wrong")])).await.unwrap_err();
    assert!(err.to_string().contains("AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID) login refused"), "{err}");

    let bad = VaultSource::from_env(&bao.env(&[("VAULT_TOKEN", "not-a-token")])).await.unwrap();
    let err = bad.fetch("AGENT_CLIENT_SECRET").await.unwrap_err();
    assert!(matches!(&err, SecretError::PermissionDenied { key, .. } if key == "AGENT_CLIENT_SECRET"), "{err:?}");
    assert!(err.to_string().contains("check the token"), "{err}");
    assert!(!format!("{err:?}").contains("not-a-token"), "the token is never echoed");
}

#[tokio::test]
#[ignore = "needs OpenBao: run `cargo xtask test`"]
async fn settings_are_checked_before_connecting() {
    let no_address = VaultSource::from_env(&EnvSource::from_pairs([("VAULT_TOKEN", "root")])).await.unwrap_err();
    assert!(no_address.to_string().contains("VAULT_ADDR: is required"), "{no_address}");
    let http = VaultSource::from_env(&EnvSource::from_pairs([("VAULT_ADDR", "http://127.0.0.1:8200"), ("VAULT_TOKEN", "root")]))
        .await
        .unwrap_err();
    assert!(http.to_string().contains("must use https://"), "{http}");
    let bao = Bao::start();
    let none = VaultSource::from_env_with_kubernetes_token(&bao.env(&[]), std::path::Path::new("/nonexistent/token")).await.unwrap_err();
    assert!(none.to_string().contains("no credentials: set VAULT_TOKEN"), "{none}");
}
