//! The single-vendor program, built with `dual-auth-keycloak` as its only dual-auth
//! dependency, gets tokens from the development provider in both flows.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use dual_auth_devidp::{DevIdp, DevIdpConfig};
use dual_auth_test_support::{jwt, key_fixture};
use serde_json::Value;

const AGENT: &str = "single-vendor-agent";
const SECRET: &str = "single-vendor-client-secret-0123456789abcdef";

#[test]
fn a_program_with_only_dual_auth_keycloak_gets_tokens_in_session_and_from_a_verified_act_jwt() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let idp = runtime.block_on(DevIdp::start(DevIdpConfig::with_client(AGENT, SECRET), ([127, 0, 0, 1], 0).into())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, idp.ca_pem()).unwrap();
    // The web session's token of a logged-in user, issued for this agent.
    let login = idp.login("keycloak", "alice", AGENT, None).unwrap();
    let human_token = dir.path().join("human-token");
    std::fs::write(&human_token, format!("{}\n", login.access_token)).unwrap();
    let alice = idp.config().users.iter().find(|u| u.username == "alice").unwrap().id.clone();

    let out = Command::new(env!("CARGO_BIN_EXE_keycloak-alone"))
        .args(["--show-token", "user_12345", "alice@corp.example.com"])
        .env("KEYCLOAK_TOKEN_URL", idp.keycloak_token_url())
        .env("AGENT_CLIENT_ID", AGENT)
        .env("AGENT_CLIENT_SECRET", SECRET)
        .env("DUAL_AUTH_CA_BUNDLE", &ca)
        .env("APP_PRIVATE_KEY_PATH", key_fixture("rsa2048-pkcs8.pem"))
        .env("APP_PUBLIC_KEY_PATH", key_fixture("rsa2048-spki.pub.pem"))
        .env("HUMAN_TOKEN_FILE", &human_token)
        .env_remove("DUAL_AUTH_SECRETS_BACKEND")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (line, flow) in lines.iter().zip(["in-session", "out-of-session"]) {
        assert_eq!(line["flow"], flow);
        assert_eq!(line["token_type"], "Bearer");
        assert_eq!(line["scopes"], serde_json::json!(["finance.read"]));
        // The provider's Keycloak dialect: sub = the agent, act = the human the agent sent.
        let claims = jwt::decode(line["access_token"].as_str().unwrap()).claims;
        assert_eq!(claims["sub"], AGENT, "{flow}");
        assert_eq!(claims["act"]["sub"], "user_12345", "{flow}");
        assert_eq!(claims["act"]["email"], "alice@corp.example.com", "{flow}");
        assert_eq!(claims["aud"], idp.config().api_audience.as_str(), "{flow}");
    }
    // The verified mode: the provider checked alice's token; sub = alice, the agent as azp.
    let verified = &lines[2];
    assert_eq!(verified["flow"], "verified");
    assert_eq!(verified["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    let claims = jwt::decode(verified["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["azp"], AGENT);
    assert!(claims.get("act").is_none(), "Keycloak's dialect: no act");
}

#[test]
fn the_program_names_what_is_missing_from_its_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_keycloak-alone"))
        .args(["user_12345", "alice@corp.example.com"])
        .env_remove("KEYCLOAK_TOKEN_URL")
        .env_remove("DUAL_AUTH_SECRETS_BACKEND")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("KEYCLOAK_TOKEN_URL"), "{stderr}");
}
