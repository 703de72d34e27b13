//! The CLI's delegation contract, on the wire for all four vendors: `dual-auth token
//! --scope S --subject-token-file F [--subject-token-type T] [--actor-token-file F]
//! [--audience A] [--resource R]` sends the vendor's delegation grant (Keycloak, Auth0,
//! Okta: RFC 8693 token exchange; Entra ID: on-behalf-of) field by field, prints the token
//! response with its `issued_token_type`, and never prints the evidence.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use dual_auth_test_support::https::{CannedResponse, RecordedRequest, TestCa, TestHttpsServer};
use dual_auth_test_support::jwt;
use serde_json::{Value, json};

const AGENT: &str = "finance-agent";
const SECRET: &str = "cli-delegation-secret-0123456789abcdef";
const EVIDENCE: &str = "eyJhbGciOiJSUzI1NiJ9.HUMAN-EVIDENCE-alice.c2lnbmF0dXJl";
const ACTOR: &str = "eyJhbGciOiJSUzI1NiJ9.AGENT-ACTOR-token.c2lnbmF0dXJl";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const KEYCLOAK_PATH: &str = "/realms/corp/protocol/openid-connect/token";
const AUTH0_PATH: &str = "/oauth/token";
const OKTA_PATH: &str = "/oauth2/default/v1/token";
const ENTRA_PATH: &str = "/tenant-1/oauth2/v2.0/token";
const API_AUDIENCE: &str = "https://api.dual-auth.example/finance";

fn run(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dual-auth"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The configuration of `vendor` pointed at `server`.
fn vendor_env(vendor: &str, server: &TestHttpsServer, ca: &Path) -> Vec<(String, String)> {
    let ca = ca.display().to_string();
    let mut env =
        pairs(&[("DUAL_AUTH_VENDOR", vendor), ("AGENT_CLIENT_ID", AGENT), ("AGENT_CLIENT_SECRET", SECRET), ("DUAL_AUTH_CA_BUNDLE", &ca)]);
    match vendor {
        "keycloak" => env.extend(pairs(&[("KEYCLOAK_TOKEN_URL", &server.url(KEYCLOAK_PATH))])),
        "auth0" => env.extend(pairs(&[("AUTH0_TOKEN_URL", &server.url(AUTH0_PATH)), ("API_AUDIENCE", API_AUDIENCE)])),
        "okta" => env.extend(pairs(&[("OKTA_TOKEN_URL", &server.url(OKTA_PATH))])),
        // On-behalf-of alone: no application key needed (none configured here).
        _ => env.extend(pairs(&[
            ("ENTRAID_TOKEN_URL", &server.url(ENTRA_PATH)),
            ("API_SCOPE", "api://finance-api/.default"),
            ("DUAL_AUTH_DELEGATION", "on-behalf-of"),
        ])),
    }
    env
}

fn exchanged(issued_token_type: Option<&str>) -> CannedResponse {
    let mut body = json!({"access_token": "exchanged-access-token", "token_type": "Bearer", "expires_in": 300, "scope": "finance.read"});
    if let Some(issued) = issued_token_type {
        body["issued_token_type"] = json!(issued);
    }
    CannedResponse::json(200, &body.to_string())
}

/// The form's names in order, with the client assertion's value left out (checked apart).
fn form_without_assertion(request: &RecordedRequest) -> Vec<(String, String)> {
    request.form().into_iter().map(|(k, v)| if k == "client_assertion" { (k, "<assertion>".to_owned()) } else { (k, v) }).collect()
}

/// The client assertion: the agent's own, with no `act` (the evidence names the human).
fn assert_plain_client_assertion(request: &RecordedRequest, audience: &str) {
    let assertion = jwt::decode(&request.form_value("client_assertion").unwrap());
    assert!(assertion.verifies_hs256(SECRET.as_bytes()));
    assert_eq!((assertion.claims["iss"].as_str(), assertion.claims["sub"].as_str()), (Some(AGENT), Some(AGENT)));
    assert_eq!(assertion.claims["aud"], audience);
    assert!(assertion.claims.get("act").is_none(), "no act in a verified mode: {:?}", assertion.claims);
}

fn printed(out: &Output) -> Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(out.status.success(), "failed: {stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains("HUMAN-EVIDENCE") && !text.contains("AGENT-ACTOR"), "evidence printed: {text}");
    }
    serde_json::from_str(&stdout).unwrap()
}

struct Setup {
    ca: TestCa,
    server: TestHttpsServer,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Self {
        let ca = TestCa::new();
        let server = TestHttpsServer::start(&ca).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.ca_pem()).unwrap();
        // As a shell writes it: with a trailing newline, which the CLI trims.
        std::fs::write(dir.path().join("evidence.jwt"), format!("{EVIDENCE}\n")).unwrap();
        std::fs::write(dir.path().join("actor.jwt"), format!("  {ACTOR}\n")).unwrap();
        Self { ca, server, dir }
    }

    fn env(&self, vendor: &str) -> Vec<(String, String)> {
        vendor_env(vendor, &self.server, &self.dir.path().join("ca.pem"))
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_token_exchange_on_the_wire() {
    let setup = Setup::new().await;
    setup.server.push(exchanged(Some(ACCESS_TOKEN_TYPE)));
    let evidence = setup.file("evidence.jwt");
    let args = ["token", "--scope", "finance.read", "--subject-token-file", &evidence, "--audience", "finance-api"];
    let out = printed(&run(&args, &setup.env("keycloak")));
    assert_eq!(out["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!((out["token_type"].as_str(), out["expires_in"].as_u64()), (Some("Bearer"), Some(300)));
    assert_eq!(out["delegation"], "token-exchange");
    assert!(out["vouched_by"].as_str().unwrap().starts_with("the identity provider"), "{out}");
    assert!(out.get("access_token").is_none());

    let requests = setup.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].target, KEYCLOAK_PATH);
    let expected = pairs(&[
        ("grant_type", EXCHANGE),
        ("subject_token", EVIDENCE),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "finance-api"),
        ("scope", "finance.read"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", "<assertion>"),
    ]);
    assert_eq!(form_without_assertion(&requests[0]), expected);
    assert_plain_client_assertion(&requests[0], &setup.server.url("/realms/corp"));

    // What Keycloak 26.7 would ignore is refused before any request, not sent in vain.
    let actor = setup.file("actor.jwt");
    for (extra, needle) in [
        (["--actor-token-file", actor.as_str()], "reads no actor_token"),
        (["--resource", "https://api.example.com/"], "no resource parameter"),
    ] {
        let mut args = vec!["token", "--scope", "finance.read", "--subject-token-file", &evidence];
        args.extend(extra);
        let out = run(&args, &setup.env("keycloak"));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{out:?}");
    }
    assert_eq!(setup.server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_token_exchange_on_the_wire() {
    let setup = Setup::new().await;
    setup.server.push(exchanged(Some(ACCESS_TOKEN_TYPE)));
    let evidence = setup.file("evidence.jwt");
    let out = printed(&run(&["token", "--scope", "finance.read", "--subject-token-file", &evidence], &setup.env("auth0")));
    assert_eq!(out["issued_token_type"], ACCESS_TOKEN_TYPE);
    let requests = setup.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].target, AUTH0_PATH);
    let expected = pairs(&[
        ("grant_type", EXCHANGE),
        ("subject_token", EVIDENCE),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        // On-Behalf-Of names the access token it wants.
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        // Auth0 requires the audience: API_AUDIENCE when --audience is not given.
        ("audience", API_AUDIENCE),
        ("client_id", AGENT),
        ("scope", "finance.read"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", "<assertion>"),
    ]);
    assert_eq!(form_without_assertion(&requests[0]), expected);
    assert_plain_client_assertion(&requests[0], &format!("{}/", setup.server.url("")));

    // Auth0 reserves the IETF ID-token type: refused before any request.
    let out = run(
        &["token", "--scope", "finance.read", "--subject-token-file", &evidence, "--subject-token-type", "id_token"],
        &setup.env("auth0"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Auth0 token exchange takes an access token"), "{out:?}");
    assert_eq!(setup.server.requests().len(), 1);

    // Custom Token Exchange: the profile's own subject type, an actor token of the type
    // Auth0 validates (its ID token), no requested_token_type added.
    setup.server.push(exchanged(Some(ACCESS_TOKEN_TYPE)));
    let actor = setup.file("actor.jwt");
    let args = [
        "token",
        "--scope",
        "finance.read",
        "--subject-token-file",
        &evidence,
        "--subject-token-type",
        "urn:example:finance-web-token",
        "--actor-token-file",
        &actor,
        "--actor-token-type",
        "id_token",
    ];
    printed(&run(&args, &setup.env("auth0")));
    let requests = setup.server.requests();
    let expected = pairs(&[
        ("grant_type", EXCHANGE),
        ("subject_token", EVIDENCE),
        ("subject_token_type", "urn:example:finance-web-token"),
        ("actor_token", ACTOR),
        ("actor_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        ("audience", API_AUDIENCE),
        ("client_id", AGENT),
        ("scope", "finance.read"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", "<assertion>"),
    ]);
    assert_eq!(form_without_assertion(&requests[1]), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_token_exchange_on_the_wire() {
    let setup = Setup::new().await;
    setup.server.push(exchanged(Some(ACCESS_TOKEN_TYPE)));
    let evidence = setup.file("evidence.jwt");
    let args = [
        "token",
        "--scope",
        "finance.read",
        "--subject-token-file",
        &evidence,
        "--subject-token-type",
        "access_token",
        "--audience",
        "api://default",
        "--resource",
        "https://api.dual-auth.example/finance",
    ];
    let out = printed(&run(&args, &setup.env("okta")));
    assert_eq!(out["issued_token_type"], ACCESS_TOKEN_TYPE);
    let requests = setup.server.requests();
    assert_eq!(requests[0].target, OKTA_PATH);
    let expected = pairs(&[
        ("grant_type", EXCHANGE),
        ("subject_token", EVIDENCE),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "api://default"),
        ("resource", "https://api.dual-auth.example/finance"),
        ("scope", "finance.read"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", "<assertion>"),
    ]);
    assert_eq!(form_without_assertion(&requests[0]), expected);
    // Okta: the assertion's aud is the token endpoint itself.
    assert_plain_client_assertion(&requests[0], &setup.server.url(OKTA_PATH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_id_on_behalf_of_on_the_wire() {
    let setup = Setup::new().await;
    // Microsoft sends no issued_token_type (on-behalf-of is not RFC 8693).
    setup.server.push(exchanged(None));
    let evidence = setup.file("evidence.jwt");
    let out = printed(&run(&["token", "--scope", "api://finance-api/.default", "--subject-token-file", &evidence], &setup.env("entraid")));
    assert_eq!(out["issued_token_type"], Value::Null);
    assert_eq!(out["delegation"], "on-behalf-of");
    assert_eq!(out["has_act_assertion"], false, "the human is in Microsoft's token: no act assertion");
    let requests = setup.server.requests();
    assert_eq!(requests[0].target, ENTRA_PATH);
    let expected = pairs(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_id", AGENT),
        ("client_secret", SECRET),
        ("assertion", EVIDENCE),
        ("scope", "api://finance-api/.default"),
        ("requested_token_use", "on_behalf_of"),
    ]);
    assert_eq!(requests[0].form(), expected);

    // What on-behalf-of cannot carry is refused before any request, by name.
    let out = run(
        &["token", "--scope", "api://finance-api/.default", "--subject-token-file", &evidence, "--audience", "x"],
        &setup.env("entraid"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("on-behalf-of takes no audience or resource"), "{out:?}");
    // With on-behalf-of configured, the guide's self-asserted act is refused.
    let out = run(&["token", "--scope", "api://finance-api/.default", "--sub", "user_12345"], &setup.env("entraid"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused because DUAL_AUTH_DELEGATION=on-behalf-of"), "{out:?}");
    assert_eq!(setup.server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_empty_evidence_is_refused_before_any_request() {
    let setup = Setup::new().await;
    std::fs::write(setup.dir.path().join("empty.jwt"), " \n").unwrap();
    let env = setup.env("keycloak");
    let missing = setup.file("missing.jwt");
    let out = run(&["token", "--scope", "finance.read", "--subject-token-file", &missing], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--subject-token-file") && stderr.contains("cannot read it"), "{stderr}");
    let empty = setup.file("empty.jwt");
    let out = run(&["token", "--scope", "finance.read", "--subject-token-file", &empty], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the subject token is empty"), "{out:?}");
    std::fs::write(setup.dir.path().join("huge.jwt"), "a".repeat(70 * 1024)).unwrap();
    let huge = setup.file("huge.jwt");
    let out = run(&["token", "--scope", "finance.read", "--subject-token-file", &huge], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 65536 bytes: not a token"), "{out:?}");
    // Not both kinds of human, and evidence options need evidence: usage errors.
    let evidence = setup.file("evidence.jwt");
    let out = run(&["token", "--scope", "s", "--subject-token-file", &evidence, "--sub", "u"], &env);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["token", "--scope", "s", "--sub", "u", "--audience", "a"], &env);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["token", "--scope", "s", "--subject-token-file", &evidence, "--subject-token-type", "token"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--subject-token-type"), "{out:?}");
    assert!(setup.server.requests().is_empty(), "no request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_keep_the_oauth_error_and_never_the_evidence_and_non_access_tokens_are_refused() {
    let setup = Setup::new().await;
    let env = setup.env("keycloak");
    let evidence = setup.file("evidence.jwt");
    let args = ["token", "--scope", "finance.read", "--subject-token-file", &evidence];
    setup
        .server
        .push(CannedResponse::json(403, r#"{"error":"access_denied","error_description":"Client is not within the token audience"}"#));
    let out = run(&args, &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "dual-auth: keycloak token endpoint answered HTTP 403: access_denied (Client is not within the token audience)"
    );
    // An ID token (token_type N_A) is never used as a bearer token.
    setup.server.push(CannedResponse::json(
        200,
        r#"{"access_token":"an-id-token","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:id_token"}"#,
    ));
    let out = run(&args, &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(stderr.contains("issued issued_token_type urn:ietf:params:oauth:token-type:id_token, not an access token"), "{stderr}");
    assert!(!stderr.contains("an-id-token") && !stderr.contains("HUMAN-EVIDENCE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_takes_the_same_options_and_sends_the_exchanged_token() {
    let setup = Setup::new().await;
    setup.server.set_handler(|request| {
        if request.target == KEYCLOAK_PATH {
            return exchanged(Some(ACCESS_TOKEN_TYPE));
        }
        let authorization = request.header("authorization").unwrap_or_default().to_owned();
        CannedResponse::json(200, &json!({"authorization": authorization, "act_assertion": request.header("x-act-assertion")}).to_string())
    });
    let evidence = setup.file("evidence.jwt");
    let url = setup.server.url("/finance/report");
    let out = run(&["call", "--url", &url, "--scope", "finance.read", "--subject-token-file", &evidence], &setup.env("keycloak"));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("HTTP 200\n"), "{stdout}");
    let body: Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(body, json!({"authorization": "Bearer exchanged-access-token", "act_assertion": null}));
    let requests = setup.server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].form_value("subject_token").as_deref(), Some(EVIDENCE));
    let _ = &setup.ca;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_jwt_authorization_grant_on_the_wire_and_modes_a_vendor_cannot_do() {
    let setup = Setup::new().await;
    setup.server.push(exchanged(None));
    let evidence = setup.file("evidence.jwt");
    let mut env = setup.env("keycloak");
    env.push(("DUAL_AUTH_DELEGATION".into(), "jwt-authorization-grant".into()));
    let args = ["token", "--scope", "finance.read", "--subject-token-file", &evidence, "--subject-token-type", "jwt"];
    let out = printed(&run(&args, &env));
    assert_eq!(out["delegation"], "jwt-authorization-grant");
    let requests = setup.server.requests();
    let expected = pairs(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", EVIDENCE),
        ("scope", "finance.read"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", "<assertion>"),
    ]);
    assert_eq!(form_without_assertion(&requests[0]), expected);
    assert_plain_client_assertion(&requests[0], &setup.server.url("/realms/corp"));

    // Okta has no JWT authorization grant here: the setting is refused by name.
    let mut env = setup.env("okta");
    env.push(("DUAL_AUTH_DELEGATION".into(), "jwt-authorization-grant".into()));
    let out = run(&args, &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DUAL_AUTH_DELEGATION=jwt-authorization-grant: okta cannot do it; use one of token-exchange, self-asserted"),
        "{stderr}"
    );
    let mut env = setup.env("keycloak");
    env.push(("DUAL_AUTH_DELEGATION".into(), "impersonate".into()));
    let out = run(&args, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be one of token-exchange"), "{out:?}");
    assert_eq!(setup.server.requests().len(), 1);
}
