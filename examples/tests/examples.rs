//! The example programs run as a user runs them, against the development provider (its
//! strict token endpoint, and its demo API that verifies the token), all over HTTPS with
//! throw-away CAs.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use dual_auth::prelude::*;
use dual_auth_devidp::{DevIdp, DevIdpConfig};
use dual_auth_test_support::agent::trusting;
use dual_auth_test_support::https::{TestCa, closed_port};
use dual_auth_test_support::key_fixture;
use dual_auth_test_support::process::ServerProcess;
use serde_json::{Value, json};

const SECRET: &str = "examples-client-secret-0123456789abcdefg";
const AGENT: &str = "finance-agent";

/// The development provider (token endpoint and demo API), and a CA for the programs'
/// own listeners.
struct Stack {
    ca: TestCa,
    idp: DevIdp,
    tls_dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        let ca = TestCa::new();
        let idp = DevIdp::start(DevIdpConfig::with_client(AGENT, SECRET), ([127, 0, 0, 1], 0).into()).await.unwrap();
        let tls_dir = tempfile::tempdir().unwrap();
        ca.write_server_files(tls_dir.path());
        std::fs::write(tls_dir.path().join("bundle.pem"), format!("{}\n{}", idp.ca_pem(), ca.ca_pem())).unwrap();
        Self { ca, idp, tls_dir }
    }

    /// The vendor settings, as a user would export them; the CA bundle trusts the provider
    /// and the programs' listeners.
    fn vendor_env(&self, command: &mut Command) {
        command
            .env("DUAL_AUTH_VENDOR", "keycloak")
            .env("KEYCLOAK_TOKEN_URL", self.idp.keycloak_token_url())
            .env("AGENT_CLIENT_ID", AGENT)
            .env("AGENT_CLIENT_SECRET", SECRET)
            .env("API_URL", self.idp.api_url())
            .env("DUAL_AUTH_CA_BUNDLE", self.tls("bundle.pem"))
            .env("DUAL_AUTH_LOG", "warn");
    }

    fn tls(&self, file: &str) -> PathBuf {
        self.tls_dir.path().join(file)
    }

    fn client(&self) -> reqwest::Client {
        trusting(self.ca.ca_pem()).build_client().unwrap()
    }

    /// The token requests the provider answered, as (grant type, status).
    fn token_requests(&self) -> Vec<(String, u16)> {
        self.idp.token_requests().into_iter().map(|r| (r.grant_type, r.status)).collect()
    }
}

/// What the demo API answers for a Keycloak token of `AGENT` for the human of `session`.
fn api_saw(session: &UserSession) -> Value {
    let act = HybridSender::in_session().extract_act_from_session(session).unwrap();
    json!({"vendor": "keycloak", "agent": AGENT, "human": act.sub(), "act": act.to_value(), "chain": [], "dpop_jkt": null})
}

fn alice_session() -> UserSession {
    UserSession::new("alice@corp.example.com").with_user_name("Alice Smith").with_user_id("user_12345")
}

fn start_agent(stack: &Stack) -> (ServerProcess, String) {
    let port = closed_port();
    let endpoint = format!("https://localhost:{port}/invoke");
    let command = agent_command(stack, port, &endpoint);
    (ServerProcess::start(command, "listening on", Duration::from_secs(60)), endpoint)
}

/// The agent on `port`, accepting act JWTs for `endpoint`.
fn agent_command(stack: &Stack, port: u16, endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_out_of_session_agent"));
    stack.vendor_env(&mut command);
    command
        .env("APP_PUBLIC_KEY_PATH", key_fixture("rsa2048-other.pub.pem"))
        .env("AGENT_ENDPOINT", endpoint)
        .env("AGENT_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENT_TLS_CERT", stack.tls("server.pem"))
        .env("AGENT_TLS_KEY", stack.tls("server-key.pem"));
    command
}

// deploy/kubernetes/agent.yaml runs three replicas behind one endpoint, sharing Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn agent_replicas_sharing_redis_accept_an_act_jwt_once_and_share_tokens() {
    let stack = Stack::start().await;
    let mut redis = dual_auth_test_support::servers::Redis::start();
    let endpoint = "https://agent.example.com/invoke"; // the one audience of every replica
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let port = closed_port();
        let mut command = agent_command(&stack, port, endpoint);
        command.env("DUAL_AUTH_REDIS_URL", redis.url()).env("DUAL_AUTH_REDIS_CACHE_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        replicas.push((ServerProcess::start(command, "listening on", Duration::from_secs(60)), format!("https://localhost:{port}/invoke")));
    }
    let client = stack.client();
    let sender = HybridSender::from_private_key_file(key_fixture("rsa2048-other.pem")).unwrap();
    let sign = || sender.prepare_out_of_session_act(&Act::new("user_777").unwrap(), endpoint, Duration::from_secs(60)).unwrap();
    let invoke = |url: &str, jwt: &SecretString| client.post(url).json(&json!({"act_jwt": jwt.expose_secret()})).send();

    // One act JWT, sent to each replica: accepted by the first, a replay for the others.
    let jwt = sign();
    assert_eq!(invoke(&replicas[0].1, &jwt).await.unwrap().status(), 200);
    for (_, url) in &replicas[1..] {
        let again = invoke(url, &jwt).await.unwrap();
        assert_eq!(again.status(), 401);
        assert!(again.text().await.unwrap().contains("replay"), "replay refused by another replica");
    }

    // A new act JWT for the same human at another replica: the token comes from Redis.
    assert_eq!(invoke(&replicas[1].1, &sign()).await.unwrap().status(), 200);
    assert_eq!(stack.token_requests(), [("client_credentials".to_owned(), 200)], "one token request for the human across the replicas");

    // Redis down: act JWTs are refused (fail closed), not accepted unchecked; as a passing
    // outage (503), not as a bad JWT, so that the application retries later.
    redis.stop();
    let refused = invoke(&replicas[2].1, &sign()).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.text().await.unwrap().contains("replay"), "the outage is named");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_out_of_session_pair_works_and_the_agent_refuses_what_it_should() {
    let stack = Stack::start().await;
    let (_agent, endpoint) = start_agent(&stack);

    // The app program signs for the user and POSTs to the agent.
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_out_of_session_app"))
            .args(["alice@corp.example.com", "Alice Smith", "user_12345"])
            .env("APP_PRIVATE_KEY_PATH", key_fixture("rsa2048-other.pem"))
            .env("AGENT_ENDPOINT", &endpoint)
            .env("DUAL_AUTH_CA_BUNDLE", stack.ca.ca_path())
            .env("DUAL_AUTH_LOG", "warn")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_str(stdout.trim().split_once(": ").unwrap().1).unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["human_id"], "user_12345");
    assert_eq!(body["api_status"], 200);
    assert_eq!(body["api"], api_saw(&alice_session()), "the API verified the agent's token for Alice");
    assert_eq!(stack.token_requests(), [("client_credentials".to_owned(), 200)]);

    let client = stack.client();
    let base = endpoint.trim_end_matches("/invoke");
    assert_eq!(client.get(format!("{base}/health")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(format!("{base}/ready")).send().await.unwrap().status(), 200);
    let missing = client.post(&endpoint).json(&json!({})).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let bad = client.post(&endpoint).json(&json!({"act_jwt": "not.a.jwt"})).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.text().await.unwrap().contains("JWT verification failed"));

    // The same act JWT twice: the second is a replay.
    let sender = HybridSender::from_private_key_file(key_fixture("rsa2048-other.pem")).unwrap();
    let jwt = sender.prepare_out_of_session_act(&Act::new("user_777").unwrap(), &endpoint, Duration::from_secs(60)).unwrap();
    let first = client.post(&endpoint).json(&json!({"act_jwt": jwt.expose_secret()})).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let again = client.post(&endpoint).json(&json!({"act_jwt": jwt.expose_secret()})).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(again.text().await.unwrap().contains("replay"), "replay refused");

    // A JWT for another agent's endpoint.
    let other = sender
        .prepare_out_of_session_act(&Act::new("user_777").unwrap(), "https://other-agent.example.com/invoke", Duration::from_secs(60))
        .unwrap();
    assert_eq!(client.post(&endpoint).json(&json!({"act_jwt": other.expose_secret()})).send().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_session_web_app_gets_a_token_for_the_logged_in_user() {
    let stack = Stack::start().await;
    let port = closed_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_in_session_app"));
    stack.vendor_env(&mut command);
    command
        .env("WEBAPP_LISTEN", format!("127.0.0.1:{port}"))
        .env("WEBAPP_TLS_CERT", stack.tls("server.pem"))
        .env("WEBAPP_TLS_KEY", stack.tls("server-key.pem"));
    let _app = ServerProcess::start(command, "listening on", Duration::from_secs(60));

    let client = stack.client();
    let dashboard = format!("https://localhost:{port}/dashboard");
    let response = client
        .get(&dashboard)
        .header("X-Demo-User-Email", "alice@corp.example.com")
        .header("X-Demo-User-Name", "Alice Smith")
        .header("X-Demo-User-Id", "user_12345")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"user": "user_12345", "api_status": 200, "api": api_saw(&alice_session())}));
    assert_eq!(stack.token_requests(), [("client_credentials".to_owned(), 200)]);
    assert_eq!(client.get(&dashboard).send().await.unwrap().status(), 401, "no session, no token");
}

#[tokio::test]
async fn the_web_demo_prints_its_url_and_users_and_serves_the_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let mut command = Command::new(env!("CARGO_BIN_EXE_web_demo"));
    command.env("WEB_DEMO_CA_FILE", &ca_file).env("DUAL_AUTH_LOG", "warn");
    let (_demo, line) = ServerProcess::start_reporting(command, "open https://", Duration::from_secs(60));
    let url = line.split_whitespace().find(|w| w.starts_with("https://127.0.0.1:")).unwrap().trim_end_matches('/').to_owned();
    let client = trusting(&std::fs::read_to_string(&ca_file).unwrap()).build_client().unwrap();
    let home = client.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let headers = home.headers().clone();
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(home.text().await.unwrap().contains("id=\"login\""));

    let login = client.get(format!("{url}/login?return_to=/")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-dual-auth-login=") && cookie.contains("; Secure; HttpOnly; SameSite=Lax"), "{cookie}");
    let location = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.path().ends_with("/realms/demo/protocol/openid-connect/auth"), "{location}");
    let query: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "dual-auth-web");
    assert_eq!(query["redirect_uri"], format!("{url}/callback"));
    assert_eq!(query["scope"], "openid profile email");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!((query["state"].len(), query["nonce"].len(), query["code_challenge"].len()), (43, 43, 43));
    // The provider's page for it, with the demo users to sign in as.
    let page = client.get(location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"kc-form-login\"") && page.contains("alice"), "{page}");

    let evil = client.get(format!("{url}/login?return_to=https://evil.example/")).send().await.unwrap();
    assert_eq!(evil.status(), 400);
    assert!(evil.text().await.unwrap().contains("must be a path on this site"));
}

#[test]
fn a_misconfigured_agent_says_what_is_missing_and_exits() {
    let out = Command::new(env!("CARGO_BIN_EXE_out_of_session_agent"))
        .env_remove("KEYCLOAK_TOKEN_URL")
        .env("DUAL_AUTH_VENDOR", "keycloak")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEYCLOAK_TOKEN_URL is missing: set the environment variable KEYCLOAK_TOKEN_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_session_app_calls_the_protected_api_which_verifies_both_identities() {
    // A real token issuer (the development provider) and the two example programs.
    let stack = Stack::start().await;
    let (idp, bundle) = (&stack.idp, stack.tls("bundle.pem"));
    let issuer = idp.keycloak_token_url().replace("/protocol/openid-connect/token", "");

    let api_port = closed_port();
    let mut api = Command::new(env!("CARGO_BIN_EXE_protected_api"));
    api.env("PROTECTED_API_ISSUER", &issuer)
        .env("PROTECTED_API_AUDIENCE", &idp.config().api_audience)
        .env("PROTECTED_API_SCOPES", "finance.read")
        .env("PROTECTED_API_LISTEN", format!("127.0.0.1:{api_port}"))
        .env("PROTECTED_API_TLS_CERT", stack.tls("server.pem"))
        .env("PROTECTED_API_TLS_KEY", stack.tls("server-key.pem"))
        .env("DUAL_AUTH_CA_BUNDLE", &bundle)
        .env("DUAL_AUTH_LOG", "warn");
    let _api = ServerProcess::start(api, "listening on", Duration::from_secs(60));

    let app_port = closed_port();
    let mut app = Command::new(env!("CARGO_BIN_EXE_in_session_app"));
    app.env("DUAL_AUTH_VENDOR", "keycloak")
        .env("KEYCLOAK_TOKEN_URL", idp.keycloak_token_url())
        .env("AGENT_CLIENT_ID", AGENT)
        .env("AGENT_CLIENT_SECRET", SECRET)
        .env("API_URL", format!("https://localhost:{api_port}"))
        .env("DUAL_AUTH_CA_BUNDLE", &bundle)
        .env("DUAL_AUTH_LOG", "warn")
        .env("WEBAPP_LISTEN", format!("127.0.0.1:{app_port}"))
        .env("WEBAPP_TLS_CERT", stack.tls("server.pem"))
        .env("WEBAPP_TLS_KEY", stack.tls("server-key.pem"));
    let _app = ServerProcess::start(app, "listening on", Duration::from_secs(60));

    let client = stack.client();
    let body: Value = client
        .get(format!("https://localhost:{app_port}/dashboard"))
        .header("X-Demo-User-Email", "alice@corp.example.com")
        .header("X-Demo-User-Id", "user_12345")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"user": "user_12345", "api_status": 200, "api": {"report": "Q4-2025", "agent": AGENT, "human": "user_12345", "chain": []}})
    );

    // Straight at the API: no token, and a token it cannot verify.
    let report = format!("https://localhost:{api_port}/finance/report/Q4-2025");
    let bare = client.get(&report).send().await.unwrap();
    assert_eq!((bare.status().as_u16(), bare.headers()["www-authenticate"].to_str().unwrap()), (401, r#"Bearer realm="finance""#));
    let forged = client.get(&report).bearer_auth("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    assert!(forged.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
}
