//! `dual-auth` against a real Keycloak, configured by exactly what `cargo xtask keycloak`
//! prints. One server for this test binary. `#[ignore]`d: `cargo xtask test` runs them.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::process::{Command, Output};
use std::sync::OnceLock;

use dual_auth_test_support::keycloak::{ALICE, API_AUDIENCE, Keycloak};
use serde_json::Value;

static KEYCLOAK: OnceLock<Result<Keycloak, String>> = OnceLock::new();

fn server() -> &'static Keycloak {
    KEYCLOAK.get_or_init(Keycloak::start).as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// The `export NAME='value'` lines of `cargo xtask keycloak`'s output, and those a person
/// would copy from its `#   export ...` comment for `private_key_jwt`.
fn exported(text: &str, commented: bool) -> Vec<(String, String)> {
    let prefix = if commented { "#   export " } else { "export " };
    let mut pairs = Vec::new();
    for line in text.lines().filter_map(|line| line.strip_prefix(prefix)) {
        // NAME='value' NAME='value' ...: values hold no quote here (checked below).
        for assignment in line.split("' ").map(|a| a.trim_end_matches('\'')) {
            let (name, value) = assignment.split_once("='").unwrap_or_else(|| panic!("not NAME='value': {assignment}"));
            assert!(!value.contains('\''), "{value}");
            pairs.push((name.to_owned(), value.to_owned()));
        }
    }
    pairs
}

fn dual_auth(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(args)
        .env_remove("DUAL_AUTH_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        // No .env of the developer's may change what this test configures.
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

fn token_json(out: &Output) -> Value {
    assert!(out.status.success(), "dual-auth token failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
fn the_variables_cargo_xtask_keycloak_prints_get_a_token_with_dual_auth_token() {
    let kc = server();
    let env = exported(&kc.exports(), false);
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["DUAL_AUTH_VENDOR", "KEYCLOAK_TOKEN_URL", "AGENT_CLIENT_ID", "AGENT_CLIENT_SECRET", "API_AUDIENCE", "DUAL_AUTH_CA_BUNDLE"]
    );

    let out = dual_auth(&["token", "--scope", "finance.read", "--sub", ALICE.id, "--show-token"], &env);
    let token = token_json(&out);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 300);
    assert_eq!(token["scopes"], serde_json::json!(["finance.read"]));
    assert_eq!(token["has_act_assertion"], false);
    let access = token["access_token"].as_str().unwrap();
    let claims = dual_auth_test_support::jwt::decode(access).claims;
    assert_eq!(claims["iss"], kc.issuer());
    assert_eq!(claims["azp"], "finance-agent");
    assert_eq!(claims["aud"], API_AUDIENCE);

    // `dual-auth verify` checks it through Keycloak's discovery and JWKS, and says that
    // the token names no human (stock Keycloak does not copy the guide's act).
    let issuer = kc.issuer();
    let out = dual_auth(&["verify", "--issuer", &issuer, "--audience", API_AUDIENCE, access], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no dual subject in the dual-auth layout: no act claim"), "{stderr}");
    assert!(!stderr.contains(access), "the token is never echoed");
}

#[test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
fn the_private_key_jwt_agent_it_prints_gets_a_token_too() {
    let kc = server();
    let text = kc.exports();
    let mut env = exported(&text, false);
    env.extend(exported(&text, true));
    let out = dual_auth(&["token", "--scope", "finance.read", "--scope", "finance.write", "--sub", ALICE.id], &env);
    let token = token_json(&out);
    assert_eq!(token["token_type"], "Bearer");
    // Keycloak lists granted scopes in no fixed order.
    let mut scopes: Vec<&str> = token["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["finance.read", "finance.write"]);
    assert!(token.get("access_token").is_none(), "the token is printed only with --show-token");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("readable by others"), "the agent key is kept private: {stderr}");
}

#[test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
fn a_wrong_secret_is_reported_with_keycloaks_error() {
    let kc = server();
    let mut env = exported(&kc.exports(), false);
    for (name, value) in &mut env {
        if name == "AGENT_CLIENT_SECRET" {
            *value = "a-wrong-secret-that-is-long-enough-0123456789".into();
        }
    }
    let out = dual_auth(&["token", "--scope", "finance.read", "--sub", ALICE.id], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("HTTP 400: unauthorized_client"), "{stderr}");
    assert!(!stderr.contains("a-wrong-secret"), "no secret in the message: {stderr}");
}

#[test]
#[ignore = "starts a real Keycloak: cargo xtask test"]
fn a_users_token_exchanged_with_dual_auth_token_verifies_as_delegated_to_the_agent() {
    let kc = server();
    let env = exported(&kc.exports(), false);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // alice logs in at the web application; its session holds her access token.
    let alice_token = runtime.block_on(kc.user_access_token(dual_auth_test_support::keycloak::LOGIN_CLIENT, ALICE.username));
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("alice.token");
    std::fs::write(&evidence, format!("{alice_token}\n")).unwrap();
    let evidence = evidence.display().to_string();

    let out = dual_auth(&["token", "--scope", "finance.read", "--subject-token-file", &evidence, "--show-token"], &env);
    let printed = token_json(&out);
    assert_eq!(printed["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(printed["delegation"], "token-exchange");
    assert_eq!(printed["token_type"], "Bearer");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains(&alice_token), "the evidence is never printed");

    // The API side: Keycloak's JWKS, the delegated layout: alice as the human, the agent as azp.
    let access = printed["access_token"].as_str().unwrap();
    let issuer = kc.issuer();
    let out = dual_auth(&["verify", "--issuer", &issuer, "--audience", API_AUDIENCE, "--layout", "delegated", access], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let subject: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(subject["human"]["sub"], ALICE.id);
    assert_eq!(subject["agent"]["client_id"], "finance-agent");
    assert_eq!(subject["vouched_by"], "identity-provider");
    assert_eq!(subject["chain"], serde_json::json!([]));

    // Evidence for another audience: Keycloak's refusal, one line, no evidence in it.
    let other = runtime.block_on(kc.user_access_token(dual_auth_test_support::keycloak::LOGIN_CLIENT_OTHER_AUDIENCE, ALICE.username));
    std::fs::write(dir.path().join("other.token"), &other).unwrap();
    let other_file = dir.path().join("other.token").display().to_string();
    let out = dual_auth(&["token", "--scope", "finance.read", "--subject-token-file", &other_file], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "dual-auth: keycloak token endpoint answered HTTP 403: access_denied (Client is not within the token audience)"
    );
}
