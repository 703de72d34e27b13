//! The gcp backend (Google's official Rust client) against a protocol-faithful fake of
//! GCP Secret Manager, and the fake against Google's official Python client.
#![cfg(feature = "gcp")]
// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use dual_auth_config::{ConfigError, ConfigReader, EnvSource, GcpSource};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{SecretError, SecretSource};
use dual_auth_test_support::fakes::{GCP_FORBIDDEN_PROJECT, GcpSecretManagerFake, crc32c};
use dual_auth_test_support::process::server_tool;

fn env(fake: &GcpSecretManagerFake, project: &str) -> EnvSource {
    EnvSource::from_pairs([("DUAL_AUTH_GCP_PROJECT", project.to_owned()), ("DUAL_AUTH_GCP_ENDPOINT", fake.endpoint())])
}

#[tokio::test]
async fn reads_latest_versions_by_upstream_names_and_reports_missing_and_denied() {
    let fake = GcpSecretManagerFake::start().await;
    fake.put("corp-prod", "dual-auth-agent-client-secret", b"  gcp-held-secret-0123456789abcdefghij\n");
    let source = GcpSource::from_env(&env(&fake, "corp-prod")).await.unwrap();
    assert_eq!(source.fetch("AGENT_CLIENT_SECRET").await.unwrap().unwrap().expose_secret(), "gcp-held-secret-0123456789abcdefghij");
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(
        sent.target.split('?').next().unwrap(),
        "/v1/projects/corp-prod/secrets/dual-auth-agent-client-secret/versions/latest:access"
    );

    assert!(source.fetch("AGENT_CLIENT_ID").await.unwrap().is_none());
    let err = ConfigReader::new(&source).text("AGENT_CLIENT_ID").await.unwrap_err();
    assert!(matches!(&err, ConfigError::Missing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "AGENT_CLIENT_ID is missing: set a version of the secret projects/corp-prod/secrets/dual-auth-agent-client-id in GCP Secret Manager"
    );

    let denied = GcpSource::from_env(&env(&fake, GCP_FORBIDDEN_PROJECT)).await.unwrap();
    let err = denied.fetch("AGENT_CLIENT_SECRET").await.unwrap_err();
    assert!(matches!(&err, SecretError::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("roles/secretmanager.secretAccessor"), "{err}");
}

#[tokio::test]
async fn settings_are_checked() {
    let err = GcpSource::from_env(&EnvSource::from_pairs([("DUAL_AUTH_GCP_ENDPOINT", "http://127.0.0.1:1")])).await.unwrap_err();
    assert!(err.to_string().contains("DUAL_AUTH_GCP_PROJECT: is required"), "{err}");
    let err = GcpSource::from_env(&EnvSource::from_pairs([
        ("DUAL_AUTH_GCP_PROJECT", "p"),
        ("DUAL_AUTH_GCP_ENDPOINT", "http://secretmanager.example.com"),
    ]))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("must use https://"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs google-cloud-secret-manager: run `cargo xtask test`"]
async fn the_fake_answers_googles_official_python_client_as_gcp_does() {
    let fake = GcpSecretManagerFake::start().await;
    fake.put("corp-prod", "dual-auth-agent-client-secret", b"gcp-held-secret");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/official/gcp_client.py");
    let host = fake.endpoint().trim_start_matches("http://").to_owned();
    let names = [
        "projects/corp-prod/secrets/dual-auth-agent-client-secret/versions/latest",
        "projects/corp-prod/secrets/dual-auth-missing/versions/latest",
        &format!("projects/{GCP_FORBIDDEN_PROJECT}/secrets/dual-auth-agent-client-secret/versions/latest"),
    ];
    let out = tokio::task::block_in_place(|| Command::new(server_tool("python")).arg(script).arg(&host).args(names).output().unwrap());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [format!("ok gcp-held-secret crc={}", crc32c(b"gcp-held-secret")), "not_found".to_owned(), "permission_denied".to_owned()]
    );
    // The official client asks exactly what ours asks.
    let requests = fake.requests();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].target.split('?').next().unwrap(),
        "/v1/projects/corp-prod/secrets/dual-auth-agent-client-secret/versions/latest:access"
    );
}
