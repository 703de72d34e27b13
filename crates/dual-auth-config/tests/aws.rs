//! The aws backend against a real moto server (AWS Secrets Manager's API), over TLS with
//! a private CA. Needs `cargo xtask setup` (moto under `target/it/servers`).
#![cfg(feature = "aws")]
// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_secretsmanager::primitives::Blob;
use dual_auth_config::{AwsSource, ConfigError, ConfigReader, EnvSource};
use dual_auth_core::SecretSource;
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_test_support::https::TestCa;
use dual_auth_test_support::servers::Moto;

#[tokio::test]
#[ignore = "needs moto: run `cargo xtask test`"]
async fn string_and_binary_secrets_missing_ones_and_the_wrong_region_or_prefix() {
    let ca = TestCa::new();
    let moto = Moto::start(&ca);
    let source = AwsSource::from_env(&EnvSource::from_pairs(moto.env_pairs(&ca, &[]))).await.unwrap();
    let sdk = source.sdk_client();
    sdk.create_secret()
        .name("dual-auth/AGENT_CLIENT_SECRET")
        .secret_string("  aws-held-secret-0123456789abcdefgh \n")
        .send()
        .await
        .unwrap();
    sdk.create_secret().name("dual-auth/AGENT_CLIENT_ID").secret_binary(Blob::new("finance-agent".as_bytes())).send().await.unwrap();
    sdk.create_secret().name("dual-auth/NOT_UTF8").secret_binary(Blob::new(vec![0xff, 0xfe])).send().await.unwrap();

    assert_eq!(
        source.fetch("AGENT_CLIENT_SECRET").await.unwrap().unwrap().expose_secret(),
        "aws-held-secret-0123456789abcdefgh",
        "SecretString, trimmed"
    );
    assert_eq!(source.fetch("AGENT_CLIENT_ID").await.unwrap().unwrap().expose_secret(), "finance-agent", "SecretBinary as UTF-8");
    assert!(source.fetch("NOT_UTF8").await.unwrap_err().to_string().contains("SecretBinary is not UTF-8"));
    assert!(source.fetch("KEYCLOAK_TOKEN_URL").await.unwrap().is_none());
    let err = ConfigReader::new(&source).text("KEYCLOAK_TOKEN_URL").await.unwrap_err();
    assert!(matches!(&err, ConfigError::Missing { key, .. } if key == "KEYCLOAK_TOKEN_URL"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "KEYCLOAK_TOKEN_URL is missing: set the secret dual-auth/KEYCLOAK_TOKEN_URL in AWS Secrets Manager (region us-east-1)"
    );

    let elsewhere =
        AwsSource::from_env(&EnvSource::from_pairs(moto.env_pairs(&ca, &[("DUAL_AUTH_AWS_REGION", "eu-west-1")]))).await.unwrap();
    assert!(elsewhere.fetch("AGENT_CLIENT_SECRET").await.unwrap().is_none(), "secrets live in their region");
    let other_prefix =
        AwsSource::from_env(&EnvSource::from_pairs(moto.env_pairs(&ca, &[("DUAL_AUTH_AWS_SECRET_PREFIX", "team-b/")]))).await.unwrap();
    assert!(other_prefix.fetch("AGENT_CLIENT_SECRET").await.unwrap().is_none());
    assert!(other_prefix.location_of("AGENT_CLIENT_SECRET").contains("team-b/AGENT_CLIENT_SECRET"));
}

#[tokio::test]
#[ignore = "needs moto: run `cargo xtask test`"]
async fn an_untrusted_endpoint_is_an_error_not_a_silent_fallback() {
    let ca = TestCa::new();
    let moto = Moto::start(&ca);
    // No DUAL_AUTH_CA_BUNDLE: the test CA is not trusted.
    let pairs: Vec<(String, String)> = moto.env_pairs(&ca, &[]).into_iter().filter(|(k, _)| k != "DUAL_AUTH_CA_BUNDLE").collect();
    let source = AwsSource::from_env(&EnvSource::from_pairs(pairs)).await.unwrap();
    let err = source.fetch("AGENT_CLIENT_SECRET").await.unwrap_err();
    assert!(err.to_string().contains("cannot reach AWS Secrets Manager"), "{err}");
}
