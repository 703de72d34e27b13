//! The `dual-auth` command, run as a user runs it.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const AUD: &str = "https://agent.example.com/invoke";

fn dual_auth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dual-auth")).args(args).env_remove("DUAL_AUTH_LOG").output().unwrap()
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    with_stdin_and_env(args, input, &[])
}

fn with_stdin_and_env(args: &[&str], input: &str, env: &[(String, String)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts a failure: exit status 1 and exactly one line on stderr containing `needle`.
fn assert_fails_with(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(stderr.contains(needle), "{stderr:?} should contain {needle:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

fn keygen(dir: &Path, alg: &str) -> (String, String) {
    let out = dual_auth(&["keygen", "--alg", alg, "--out-dir", dir.to_str().unwrap()]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    (lines[0].to_owned(), lines[1].to_owned())
}

#[test]
fn keygen_sign_verify_round_trip_for_each_algorithm() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = keygen(dir.path(), alg);
        assert!(private.ends_with("app-private-key.pem") && public.ends_with("app-public-key.pem"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let jwt = stdout(&dual_auth(&[
            "act",
            "sign",
            "--private-key",
            &private,
            "--audience",
            AUD,
            "--sub",
            "user_12345",
            "--email",
            "alice@corp.example.com",
            "--name",
            "Alice Smith",
        ]));
        let jwt = jwt.trim();
        assert_eq!(jwt.split('.').count(), 3);
        let act = stdout(&dual_auth(&["act", "verify", "--public-key", &public, "--audience", AUD, jwt]));
        assert_eq!(act.trim(), r#"{"sub":"user_12345","email":"alice@corp.example.com","name":"Alice Smith"}"#, "{alg}");
        // The same token from stdin.
        let act = stdout(&with_stdin(&["act", "verify", "--public-key", &public, "--audience", AUD], &format!("{jwt}\n")));
        assert!(act.contains("user_12345"));
    }
}

#[test]
fn act_json_is_signed_verbatim_and_must_be_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "ES256");
    let act = r#"{"sub":"u-1","email":"a@b.example","department":"finance"}"#;
    let jwt = stdout(&dual_auth(&[
        "act",
        "sign",
        "--private-key",
        &private,
        "--audience",
        AUD,
        "--act-json",
        act,
        "--ttl",
        "30",
        "--key-id",
        "k1",
    ]));
    let verified = stdout(&dual_auth(&["act", "verify", "--public-key", &public, "--audience", AUD, jwt.trim()]));
    assert_eq!(verified.trim(), act);
    let inspected: serde_json::Value = serde_json::from_str(&stdout(&dual_auth(&["inspect", jwt.trim()]))).unwrap();
    assert_eq!(inspected["header"]["kid"], "k1");
    assert_eq!(inspected["claims"]["exp"].as_u64().unwrap() - inspected["claims"]["iat"].as_u64().unwrap(), 30);

    assert_fails_with(
        &dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--act-json", r#""u-1""#]),
        "act must be a JSON object",
    );
    assert_fails_with(&dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--act-json", "{"]), "not valid JSON");
    assert_fails_with(
        &dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--sub", " "]),
        "act.sub must not be empty",
    );
}

#[test]
fn sign_refuses_bad_inputs_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "EdDSA");
    assert_fails_with(
        &dual_auth(&["act", "sign", "--private-key", &private, "--audience", "http://agent.example.com", "--sub", "u"]),
        "must use HTTPS",
    );
    assert_fails_with(
        &dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--sub", "u", "--ttl", "3600"]),
        "TTL 3600 s is outside",
    );
    assert_fails_with(&dual_auth(&["act", "sign", "--private-key", &public, "--audience", AUD, "--sub", "u"]), "this is a public key");
    assert_fails_with(
        &dual_auth(&["act", "sign", "--private-key", "/nonexistent/key.pem", "--audience", AUD, "--sub", "u"]),
        "/nonexistent/key.pem",
    );
}

#[test]
fn verify_failures_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "ES256");
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = keygen(other.path(), "ES256");
    let jwt = stdout(&dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--sub", "u"]));
    let jwt = jwt.trim();
    assert_fails_with(
        &dual_auth(&["act", "verify", "--public-key", &public, "--audience", "https://x.example/", jwt]),
        "Act JWT invalid audience",
    );
    assert_fails_with(&dual_auth(&["act", "verify", "--public-key", &other_public, "--audience", AUD, jwt]), "Act JWT signature invalid");
    assert_fails_with(
        &dual_auth(&["act", "verify", "--public-key", &public, "--audience", AUD, "--issuer", "payments", jwt]),
        "Act JWT invalid issuer",
    );
    assert_fails_with(&dual_auth(&["act", "verify", "--public-key", &public, "--audience", AUD, "not.a.jwt"]), "Act JWT malformed");
    assert_fails_with(&with_stdin(&["act", "verify", "--public-key", &public, "--audience", AUD], "  \n"), "no token given");
    // RS256 key against an ES256 token: the key pins the algorithm.
    let rsa = tempfile::tempdir().unwrap();
    let (_, rsa_public) = keygen(rsa.path(), "RS256");
    assert_fails_with(
        &dual_auth(&["act", "verify", "--public-key", &rsa_public, "--audience", AUD, jwt]),
        "algorithm \"ES256\" not allowed",
    );
    // Verification with --any-issuer accepts another issuer.
    let jwt = stdout(&dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--sub", "u", "--issuer", "payments"]));
    assert!(dual_auth(&["act", "verify", "--public-key", &public, "--audience", AUD, "--any-issuer", jwt.trim()]).status.success());
}

#[test]
fn keygen_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "EdDSA");
    let before = std::fs::read(dir.path().join("app-private-key.pem")).unwrap();
    assert_fails_with(&dual_auth(&["keygen", "--alg", "EdDSA", "--out-dir", dir.path().to_str().unwrap()]), "exists already");
    assert_eq!(std::fs::read(dir.path().join("app-private-key.pem")).unwrap(), before);
    assert_fails_with(
        &dual_auth(&["keygen", "--alg", "RS256", "--bits", "1024", "--out-dir", dir.path().join("x").to_str().unwrap()]),
        "RSA key size 1024",
    );
}

#[test]
fn inspect_warns_that_nothing_is_verified() {
    let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    let out = dual_auth(&["inspect", token]);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, serde_json::json!({"header": {"alg": "none"}, "claims": {"sub": "x"}}));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("warning: NOT verified"), "{stderr}");
    assert_fails_with(&dual_auth(&["inspect", "%%%"]), "malformed");
}

#[test]
fn nothing_printed_from_a_token_or_an_error_can_drive_the_terminal() {
    use base64::Engine;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    // serde_json escapes C0 controls itself, but not DEL, C1 (\u{9b} is CSI) or overrides.
    let hostile = "x\u{9b}2J\u{7f}\u{202e}\u{1b}[31m";
    let token = format!("{}.{}.", b64(serde_json::json!({"alg": hostile})), b64(serde_json::json!({"sub": hostile})));
    let out = dual_auth(&["inspect", &token]);
    let printed = stdout(&out);
    assert!(!printed.chars().any(|c| c.is_control() && c != '\n' || c == '\u{202e}'), "{printed:?}");
    let read: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(read["header"]["alg"], hostile, "escaped as JSON reads it back");

    // An error carrying the token's alg is one escaped line.
    let jwt =
        format!("{}.{}.c2ln", b64(serde_json::json!({"alg": format!("RS256\nforged{hostile}")})), b64(serde_json::json!({"sub": "x"})));
    let public = dual_auth_test_support::key_fixture("rsa2048-spki.pub.pem").display().to_string();
    let out = with_stdin(&["act", "verify", "--public-key", &public, "--audience", AUD], &jwt);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr.trim_end_matches('\n').chars().any(|c| c.is_control() || c == '\u{202e}'), "{stderr:?}");
    assert!(stderr.contains("not allowed"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(dual_auth(&["act", "sign", "--audience", AUD]).status.code(), Some(2));
    assert_eq!(
        dual_auth(&["act", "sign", "--private-key", "k", "--audience", AUD, "--act-json", "{}", "--sub", "u"]).status.code(),
        Some(2)
    );
}

#[cfg(unix)]
#[test]
fn a_private_key_readable_by_others_still_signs_but_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = keygen(dir.path(), "EdDSA");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dual_auth(&["act", "sign", "--private-key", &private, "--audience", AUD, "--sub", "u"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("private key file is readable by others: chmod 600 it"), "{stderr}");
    assert!(stderr.contains("mode=644"), "{stderr}");
    let pem = std::fs::read_to_string(&private).unwrap();
    let body_line = pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(body_line), "no key material in the warning");
}

#[test]
fn the_demo_shows_both_subjects_arriving_at_the_api_for_every_vendor_and_flow() {
    let out = dual_auth(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for vendor in ["keycloak", "auth0", "okta", "entraid"] {
        assert!(stdout.contains(&format!("IN-SESSION FLOW PASSED: {vendor}")), "{vendor}");
        assert!(stdout.contains(&format!("OUT-OF-SESSION FLOW PASSED: {vendor}")), "{vendor}");
        assert!(stdout.contains(&format!("VERIFIED DELEGATION FLOW PASSED: {vendor}")), "{vendor}");
    }
    assert_eq!(stdout.matches("✓ agent: demo-agent").count(), 12);
    assert_eq!(stdout.matches("✓ human: user_12345").count(), 8);
    // Each run says who vouched for the human.
    assert_eq!(stdout.matches("✓ vouched for by: the agent alone (self-asserted act").count(), 8);
    assert_eq!(stdout.matches("✓ vouched for by: the identity provider, which verified the human's token").count(), 4);
    assert!(!stdout.contains("alice@corp.example.com") && !stdout.contains("alice@example.com"), "no e-mail in the output");
    assert!(!stdout.contains("eyJ"), "no token in the output");
    // The MCP leg, with Auth0 (the dialect taking RFC 8707 resource): both identities reach
    // the tool, one step-up, and the upstream API sees the chain.
    assert!(stdout.contains("MCP TOOLS FLOW PASSED: auth0"));
    assert!(!stdout.contains("MCP TOOLS FLOW PASSED: okta"));
    assert!(stdout.contains("✓ approved: true; scopes now: finance.read finance.write; tokens issued: 2"));
    assert!(stdout.contains(
        "✓ the finance API saw the agent demo-mcp-server and the human 5f1c7a4e-9d2b-4c1e-8a3f-a11ce0000001, delegated through demo-agent"
    ));
    assert!(stdout.contains("summary: 13 passed, 0 failed"));
}

#[test]
fn the_demo_logs_at_trace_level_without_any_token_evidence_or_personal_data() {
    // Every dual-auth token, assertion and piece of evidence is a JWT ("eyJ…"): at trace
    // level, with the HTTP stack's own logs, none may appear, nor the humans' e-mail or name.
    let out = Command::new(env!("CARGO_BIN_EXE_dual-auth")).arg("demo").env("DUAL_AUTH_LOG", "trace").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.matches("event=\"token_request_start\"").count() >= 12, "the logs were on");
    assert!(stderr.contains("mode=token-exchange") && stderr.contains("mode=on-behalf-of"), "verified modes logged by name");
    for text in [&stderr, &stdout] {
        for needle in ["eyJ", "alice@", "Alice Smith", "Alice Example", "client_secret="] {
            assert!(!text.contains(needle), "{needle:?} in the output");
        }
    }
}

#[test]
fn the_demo_runs_one_vendor_and_flow_when_asked() {
    let out = dual_auth(&["demo", "--vendor", "okta", "--flow", "out-of-session"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("OUT-OF-SESSION FLOW PASSED: okta"));
    assert!(!stdout.contains("keycloak"));
    assert!(stdout.contains("summary: 1 passed, 0 failed"));
}

/// A development provider in this process, and the environment pointing a command at it.
fn dev_idp(runtime: &tokio::runtime::Runtime, dir: &Path) -> (dual_auth_devidp::DevIdp, Vec<(String, String)>) {
    let secret = "cli-test-client-secret-0123456789abcdef";
    let idp = runtime
        .block_on(dual_auth_devidp::DevIdp::start(
            dual_auth_devidp::DevIdpConfig::with_client("cli-agent", secret),
            ([127, 0, 0, 1], 0).into(),
        ))
        .unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, idp.ca_pem()).unwrap();
    let env = vec![
        ("DUAL_AUTH_VENDOR".to_owned(), "keycloak".to_owned()),
        ("KEYCLOAK_TOKEN_URL".to_owned(), idp.keycloak_token_url()),
        ("AGENT_CLIENT_ID".to_owned(), "cli-agent".to_owned()),
        ("AGENT_CLIENT_SECRET".to_owned(), secret.to_owned()),
        ("DUAL_AUTH_CA_BUNDLE".to_owned(), ca.display().to_string()),
    ];
    (idp, env)
}

fn with_env(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("DUAL_AUTH_LOG")
        .output()
        .unwrap()
}

#[test]
fn token_and_call_use_the_configuration_from_the_environment() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (idp, env) = dev_idp(&runtime, dir.path());

    let out = with_env(&["token", "--scope", "finance.read", "--sub", "user_12345", "--email", "alice@corp.example.com"], &env);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed["token_type"], "Bearer");
    assert_eq!(printed["scopes"], serde_json::json!(["finance.read"]));
    assert_eq!(printed["has_act_assertion"], false);
    assert!(printed.get("access_token").is_none(), "the token only with --show-token");
    let out = with_env(&["token", "--scope", "finance.read", "--sub", "user_12345", "--show-token"], &env);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed["access_token"].as_str().unwrap().split('.').count(), 3);

    let url = format!("{}/finance/report", idp.api_url());
    let out = with_env(&["call", "--url", &url, "--scope", "finance.read", "--sub", "user_12345"], &env);
    let text = stdout(&out);
    assert!(text.starts_with("HTTP 200\n"), "{text}");
    let body: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        (body["agent"].as_str(), body["human"].as_str(), body["vendor"].as_str()),
        (Some("cli-agent"), Some("user_12345"), Some("keycloak"))
    );

    let without_url: Vec<(String, String)> = env.iter().filter(|(k, _)| k != "KEYCLOAK_TOKEN_URL").cloned().collect();
    // A .env in the working directory cannot name the token endpoint the secret goes to.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "KEYCLOAK_TOKEN_URL=https://attacker.example/token\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(["token", "--scope", "finance.read", "--sub", "u"])
        .current_dir(dir.path())
        .envs(without_url.iter().map(|(k, v)| (k, v)))
        .env_remove("KEYCLOAK_TOKEN_URL")
        .env_remove("DUAL_AUTH_DOTENV")
        .output()
        .unwrap();
    assert_fails_with(&out, "KEYCLOAK_TOKEN_URL may not come from .env");

    // A configuration error, and an identity-provider refusal: one line each, exit 1.
    let out = Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(["token", "--scope", "finance.read", "--sub", "u"])
        .envs(without_url.iter().map(|(k, v)| (k, v)))
        .env_remove("KEYCLOAK_TOKEN_URL")
        .output()
        .unwrap();
    assert_fails_with(&out, "KEYCLOAK_TOKEN_URL is missing");
    let wrong: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            if k == "AGENT_CLIENT_SECRET" {
                (k.clone(), "wrong-secret-0123456789abcdefghijklmnop".to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let out = with_env(&["token", "--scope", "finance.read", "--sub", "u"], &wrong);
    assert_fails_with(&out, "keycloak token endpoint answered HTTP 401: invalid_client");
    let out = with_env(&["call", "--url", "http://insecure.example.com/", "--scope", "finance.read", "--sub", "u"], &env);
    assert_fails_with(&out, "API URL must use HTTPS");
}

#[test]
fn verify_prints_the_dual_subject_of_a_token_or_one_line_saying_why_not() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (idp, env) = dev_idp(&runtime, dir.path());
    let out =
        with_env(&["token", "--scope", "finance.read", "--sub", "user_12345", "--email", "alice@corp.example.com", "--show-token"], &env);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let token = printed["access_token"].as_str().unwrap().to_owned();
    let issuer = idp.keycloak_token_url().replace("/protocol/openid-connect/token", "");
    let audience = idp.config().api_audience.clone();

    // Keys by OIDC discovery from the issuer; the token as an argument.
    let out = with_env(&["verify", "--issuer", &issuer, "--audience", &audience, "--type", "at+jwt", &token], &env);
    let subject: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(subject["issuer"], issuer.as_str());
    assert_eq!(subject["agent"], serde_json::json!({"sub": "cli-agent", "client_id": "cli-agent"}));
    assert_eq!(subject["human"], serde_json::json!({"sub": "user_12345", "email": "alice@corp.example.com"}));
    assert_eq!(subject["chain"], serde_json::json!([]));
    assert_eq!(subject["scopes"], serde_json::json!(["finance.read"]));
    assert!(subject["expires_at"].as_u64().unwrap() > 1_700_000_000);

    // The JWKS named; the token on stdin.
    let jwks = format!("{issuer}/protocol/openid-connect/certs");
    let out = with_stdin_and_env(&["verify", "--issuer", &issuer, "--audience", &audience, "--jwks-url", &jwks], &token, &env);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["human"]["sub"], "user_12345");

    // Refusals: one line on stderr, exit 1, nothing of the token.
    let cases: [(&[&str], &str); 5] = [
        (&["--audience", "https://other.example/api"], "audience \"https://api.dual-auth.example/finance\" does not name this API"),
        (&["--audience", &audience, "--require-scope", "finance.write"], "insufficient scope: missing finance.write"),
        (&["--audience", &audience, "--layout", "rfc8693"], "no dual subject in the rfc8693 layout"),
        (&["--audience", &audience, "--type", "JWT"], "token type \"at+jwt\" is not accepted"),
        (&["--audience", &audience, "--jwks-url", "http://localhost/jwks"], "verifier setting jwks_url is invalid: must use https://"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["verify", "--issuer", &issuer];
        args.extend_from_slice(extra);
        args.push(&token);
        let out = with_env(&args, &env);
        assert_fails_with(&out, needle);
        assert!(!String::from_utf8_lossy(&out.stderr).contains(token.rsplit('.').next().unwrap()));
    }
    let out = with_env(&["verify", "--issuer", "https://elsewhere.example", "--audience", &audience, &token], &env);
    assert_fails_with(&out, "issuer \"");
    let out = with_env(&["verify", "--issuer", &issuer, "--audience", &audience, "not.a-token"], &env);
    assert_fails_with(&out, "malformed token");
}

#[test]
fn verify_checks_an_entra_id_token_with_its_act_assertion() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = "cli-test-client-secret-0123456789abcdef";
    let app_public = dual_auth_test_support::key_fixture("rsa2048-other.pub.pem");
    let mut config = dual_auth_devidp::DevIdpConfig::with_client("cli-agent", secret);
    config.app_public_key_pem = Some(std::fs::read(&app_public).unwrap());
    let idp = runtime.block_on(dual_auth_devidp::DevIdp::start(config, ([127, 0, 0, 1], 0).into())).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, idp.ca_pem()).unwrap();
    let entra_api = idp.config().entra_api.clone();
    let env: Vec<(String, String)> = [
        ("DUAL_AUTH_VENDOR", "entraid".to_owned()),
        ("ENTRAID_TOKEN_URL", idp.entra_token_url()),
        ("AGENT_CLIENT_ID", "cli-agent".to_owned()),
        ("AGENT_CLIENT_SECRET", secret.to_owned()),
        ("APP_ID", "cli-app".to_owned()),
        ("APP_PRIVATE_KEY_PATH", dual_auth_test_support::key_fixture("rsa2048-other.pem").display().to_string()),
        ("API_AUDIENCE", entra_api.clone()),
        ("API_SCOPE", format!("{entra_api}/.default")),
        ("DUAL_AUTH_CA_BUNDLE", ca.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let scope = format!("{entra_api}/.default");
    let out = with_env(&["token", "--scope", &scope, "--sub", "user_12345", "--show-token"], &env);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (token, assertion) = (printed["access_token"].as_str().unwrap(), printed["act_assertion"].as_str().unwrap());
    let issuer = idp.entra_token_url().replace("/oauth2/v2.0/token", "/v2.0");
    let jwks = idp.entra_token_url().replace("/oauth2/v2.0/token", "/discovery/v2.0/keys");
    let public = app_public.display().to_string();
    let args = |app_id: &'static str| {
        vec![
            "verify".to_owned(),
            "--issuer".into(),
            issuer.clone(),
            "--audience".into(),
            entra_api.clone(),
            "--jwks-url".into(),
            jwks.clone(),
            "--act-assertion".into(),
            assertion.to_owned(),
            "--app-public-key".into(),
            public.clone(),
            "--app-id".into(),
            app_id.into(),
            token.to_owned(),
        ]
    };
    let run = |args: Vec<String>| with_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    let out = run(args("someone-else"));
    assert_fails_with(&out, "act assertion refused");
    let out = run(args("cli-app"));
    let subject: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(subject["agent"]["client_id"], "cli-agent");
    assert_eq!(subject["human"], serde_json::json!({"sub": "user_12345"}));
    let out = with_env(&["verify", "--issuer", &issuer, "--audience", &entra_api, "--jwks-url", &jwks, token], &env);
    assert_fails_with(&out, "no dual subject in the dual-auth layout");
}

#[test]
fn dev_idp_never_replaces_key_files_unless_forced() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join(dual_auth::PRIVATE_KEY_FILE);
    std::fs::write(&private, "someone's real key").unwrap();
    let out = dual_auth(&["dev-idp", "--port", "0", "--out-dir", &dir.path().display().to_string()]);
    assert_fails_with(&out, "exists already: remove it, choose another --out-dir, or pass --force");
    assert_eq!(std::fs::read_to_string(&private).unwrap(), "someone's real key", "untouched");

    let mut child = Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(["dev-idp", "--port", "0", "--force", "--out-dir", &dir.path().display().to_string()])
        .env_remove("DUAL_AUTH_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let printed: Vec<String> = lines.map(Result::unwrap).take_while(|l| !l.starts_with("export APP_PRIVATE_KEY_PATH")).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(printed.iter().any(|l| l.starts_with("export KEYCLOAK_TOKEN_URL")), "{printed:?}");
    assert!(std::fs::read_to_string(&private).unwrap().contains("PRIVATE KEY"), "--force replaced it with this run's key");
}
