//! The `dual-auth` binary built as a user installs it (`cargo install --path
//! crates/dual-auth-cli`): the CLI package alone, so no other workspace member's features
//! leak into it. It reads its configuration from OpenBao and from moto, shares act JWT ids
//! through Redis, and a build without a store names the line that adds it.
//!
//! `#[ignore]`d (real servers, and a build of its own under `target/cli-alone*`):
//! `cargo xtask test` runs them.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use dual_auth_devidp::{DevIdp, DevIdpConfig};
use dual_auth_test_support::https::TestCa;
use dual_auth_test_support::servers::{Bao, Moto, Redis};
use dual_auth_test_support::{key_fixture, workspace_root};
use serde_json::Value;

const AGENT: &str = "alone-agent";
const SECRET: &str = "alone-agent-client-secret-0123456789abcdef";

/// Builds the CLI package on its own into `target/cli-alone` with these feature arguments,
/// and returns a copy of the binary named after `label`. One build at a time, in one
/// target directory, so that the second build reuses the first one's dependencies.
fn build_alone(label: &str, features: &[&str]) -> PathBuf {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let target = workspace_root().join("target/cli-alone");
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["build", "--locked", "--quiet", "-p", "dual-auth-cli", "--target-dir"])
        .arg(&target)
        .args(features)
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p dual-auth-cli {features:?}: {status}");
    let copy = target.join(format!("dual-auth-{label}"));
    std::fs::copy(target.join("debug/dual-auth"), &copy).unwrap();
    copy
}

/// The default build, as `cargo install --path crates/dual-auth-cli` makes it.
fn installed_cli() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_alone("default", &[]))
}

fn run(binary: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(binary)
        .args(args)
        .env_remove("DUAL_AUTH_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

fn token_succeeds(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scopes"], serde_json::json!(["finance.read"]));
}

/// The Keycloak settings of a development provider, as a store would hold them.
fn settings(idp: &DevIdp) -> Vec<(&'static str, String)> {
    vec![
        ("DUAL_AUTH_VENDOR", "keycloak".to_owned()),
        ("KEYCLOAK_TOKEN_URL", idp.keycloak_token_url()),
        ("AGENT_CLIENT_ID", AGENT.to_owned()),
        ("AGENT_CLIENT_SECRET", SECRET.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds the CLI alone and starts OpenBao and moto: cargo xtask test"]
async fn the_cli_built_alone_reads_its_configuration_from_openbao_and_from_moto() {
    let binary = tokio::task::spawn_blocking(installed_cli).await.unwrap();
    let idp = DevIdp::start(DevIdpConfig::with_client(AGENT, SECRET), ([127, 0, 0, 1], 0).into()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores_ca = TestCa::new();
    // One bundle for both private CAs: the provider's and the stores'.
    let bundle = dir.path().join("ca-bundle.pem");
    std::fs::write(&bundle, format!("{}{}", idp.ca_pem(), stores_ca.ca_pem())).unwrap();
    let bundle = bundle.display().to_string();
    let args = ["token", "--scope", "finance.read", "--sub", "user_12345"];

    let bao = Bao::start();
    for (key, value) in settings(&idp) {
        bao.put_kv2(&dual_auth::config::store_name(key, "dual-auth/"), &value).await;
    }
    let mut env = bao.env_pairs(&[("VAULT_TOKEN", "root"), ("DUAL_AUTH_SECRETS_BACKEND", "vault")]);
    env.push(("DUAL_AUTH_CA_BUNDLE".into(), bundle.clone()));
    let out = tokio::task::spawn_blocking({
        let env = env.clone();
        move || run(binary, &args, &env)
    })
    .await
    .unwrap();
    token_succeeds(&out);

    let moto = Moto::start(&stores_ca);
    for (key, value) in settings(&idp) {
        moto.create_secret(&stores_ca, &format!("dual-auth/{key}"), &value).await;
    }
    let mut env = moto.env_pairs(&stores_ca, &[("DUAL_AUTH_SECRETS_BACKEND", "aws")]);
    for (name, value) in &mut env {
        if name == "DUAL_AUTH_CA_BUNDLE" {
            value.clone_from(&bundle);
        }
    }
    let out = tokio::task::spawn_blocking(move || run(binary, &args, &env)).await.unwrap();
    token_succeeds(&out);
}

#[test]
#[ignore = "builds the CLI alone and starts redis-server: cargo xtask test"]
fn act_verify_with_redis_refuses_an_act_jwt_verified_before_by_another_run() {
    let binary = installed_cli();
    let audience = "https://agent.example.com/invoke";
    let private = key_fixture("rsa2048-pkcs8.pem").display().to_string();
    let public = key_fixture("rsa2048-spki.pub.pem").display().to_string();
    let out = run(binary, &["act", "sign", "--private-key", &private, "--audience", audience, "--sub", "user_12345"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jwt = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let verify = ["act", "verify", "--public-key", &public, "--audience", audience, &jwt];

    // Without Redis each run remembers only its own: a second run accepts the JWT again.
    for _ in 0..2 {
        assert!(run(binary, &verify, &[]).status.success());
    }
    // With Redis, the second run, like any replica, sees that it was used.
    let redis = Redis::start();
    let env = vec![("DUAL_AUTH_REDIS_URL".to_owned(), redis.url())];
    let first = run(binary, &verify, &env);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let act: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(act["sub"], "user_12345");
    let second = run(binary, &verify, &env);
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8(second.stderr).unwrap();
    assert!(stderr.ends_with("dual-auth: Act JWT replay detected\n"), "{stderr}");
}

#[test]
#[ignore = "builds the CLI alone without default features: cargo xtask test"]
fn a_build_without_a_store_names_the_cargo_install_line_that_adds_it() {
    let binary = build_alone("vault-only", &["--no-default-features", "--features", "vault"]);
    let env = vec![("DUAL_AUTH_SECRETS_BACKEND".to_owned(), "aws".to_owned())];
    let out = run(&binary, &["token", "--scope", "finance.read", "--sub", "user_12345"], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        "dual-auth: the aws secrets backend is not in this build of dual-auth: cargo install --path crates/dual-auth-cli \
         (every store, by default), or add --features aws to a --no-default-features build"
    );
    let public = key_fixture("rsa2048-spki.pub.pem").display().to_string();
    let out = run(
        &binary,
        &["act", "verify", "--public-key", &public, "--audience", "a", "x.y.z"],
        &[("DUAL_AUTH_REDIS_URL".to_owned(), "redis://127.0.0.1:1".to_owned())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("add --features redis"));
}
