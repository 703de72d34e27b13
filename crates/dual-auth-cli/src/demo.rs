//! `dual-auth demo`: the guide's story on the embedded development identity provider, for
//! each vendor and flow, checked step by step.

use std::sync::Arc;
use std::time::Duration;

use dual_auth::api::mcp::rmcp::ServiceExt;
use dual_auth::api::mcp::rmcp::model::{CallToolRequestParams, CallToolResult};
use dual_auth::api::mcp::{DelegatedTokens, McpHttpClient, ResourceParameter};
use dual_auth::entraid::{EntraClientAuthentication, EntraIdConfig};
use dual_auth::prelude::*;
use dual_auth::session::TokenCacheSettings;
use dual_auth::verify::mcp::ProtectedResource;
use dual_auth::verify::{IssuerPolicy, Layout, Verifier};
use dual_auth::{ErrorChain, SigningAlgorithm, auth0, generate_key_pair, keycloak, okta};
use dual_auth_devidp::{DevIdp, DevIdpConfig, RegisteredClient, mcp};
use serde_json::Value;

/// The agent's client id at the development provider.
pub(crate) const DEMO_AGENT: &str = "demo-agent";
/// The application's id (Entra ID act assertions).
pub(crate) const DEMO_APP_ID: &str = "dual-auth-demo-app";
const AGENT_ENDPOINT: &str = "https://agent.dual-auth.example/invoke";

/// The demo MCP server's own client at the provider (it exchanges tokens for upstream calls).
const DEMO_MCP_CLIENT: &str = "demo-mcp-server";

/// Everything the demo runs against.
pub(crate) struct DemoEnv {
    pub(crate) idp: DevIdp,
    /// The demo MCP server's listener (taken by the MCP leg) and canonical URI, registered
    /// at the provider as an Auth0 API.
    mcp: std::sync::Mutex<Option<std::net::TcpListener>>,
    mcp_uri: String,
    mcp_secret: String,
    pub(crate) secret: String,
    pub(crate) app_key: SigningKey,
    pub(crate) app_key_pair: dual_auth::GeneratedKeyPair,
    pub(crate) http: HttpSettings,
}

/// Starts the provider with one agent client and a fresh application key.
pub(crate) async fn start(addr: std::net::SocketAddr) -> Result<DemoEnv, String> {
    let pair = generate_key_pair(SigningAlgorithm::Rs256, 2048).map_err(crate::error_chain)?;
    let app_key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).map_err(crate::error_chain)?;
    // 32 random bytes from the OS, base64url: a throw-away client secret.
    let secret = dual_auth::new_jti().map_err(crate::error_chain)?;
    let mut config = DevIdpConfig::with_client(DEMO_AGENT, &secret);
    config.app_public_key_pem = Some(pair.public_key_pem.clone().into_bytes());
    config.app_id = Some(DEMO_APP_ID.into());
    // The MCP server's URL is its token audience: known before the provider starts.
    let mcp = std::net::TcpListener::bind((addr.ip(), 0)).map_err(|e| format!("MCP listener: {e}"))?;
    let mcp_uri = format!("https://localhost:{}{}", mcp.local_addr().map_err(|e| format!("MCP listener: {e}"))?.port(), mcp::MCP_PATH);
    let mcp_secret = dual_auth::new_jti().map_err(crate::error_chain)?;
    config.extra_apis.push(mcp_uri.clone());
    config.clients.push(RegisteredClient { client_id: DEMO_MCP_CLIENT.into(), secret: Some(mcp_secret.clone()), public_key: None });
    let idp = DevIdp::start(config, addr).await.map_err(crate::error_chain)?;
    let http = HttpSettings { extra_root_certificates_pem: Some(idp.ca_pem().as_bytes().to_vec()), ..HttpSettings::default() };
    Ok(DemoEnv { idp, mcp: std::sync::Mutex::new(Some(mcp)), mcp_uri, mcp_secret, secret, app_key, app_key_pair: pair, http })
}

impl DemoEnv {
    /// The vendor's configuration, pointing at the provider.
    pub(crate) fn vendor_config(&self, vendor: Vendor) -> Result<(VendorConfig, Vec<String>), String> {
        let secret = || ClientAuthentication::client_secret_jwt(&SecretString::from(self.secret.clone())).map_err(crate::error_chain);
        let api = self.idp.config().api_audience.clone();
        Ok(match vendor {
            Vendor::Keycloak => (
                VendorConfig::Keycloak(keycloak::KeycloakConfig::new(self.idp.keycloak_token_url(), DEMO_AGENT, secret()?)),
                vec!["finance.read".into()],
            ),
            Vendor::Auth0 => (
                VendorConfig::Auth0(auth0::Auth0Config::new(self.idp.auth0_token_url(), DEMO_AGENT, secret()?, api)),
                vec!["read:reports".into()],
            ),
            Vendor::Okta => {
                (VendorConfig::Okta(okta::OktaConfig::new(self.idp.okta_token_url(), DEMO_AGENT, secret()?)), vec!["finance.read".into()])
            }
            _ => {
                let entra_api = self.idp.config().entra_api.clone();
                let scope = format!("{entra_api}/.default");
                let config = EntraIdConfig {
                    token_url: self.idp.entra_token_url(),
                    client_id: DEMO_AGENT.into(),
                    client_auth: EntraClientAuthentication::ClientSecret(SecretString::from(self.secret.clone())),
                    app_id: DEMO_APP_ID.into(),
                    app_key: Some(self.app_key.clone()),
                    api_audience: entra_api,
                    api_scope: scope.clone(),
                    delegation: None,
                };
                (VendorConfig::EntraId(config), vec![scope])
            }
        })
    }
}

/// Which flows to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    InSession,
    OutOfSession,
    /// The verified mode: the human's own token, exchanged by the agent.
    Verified,
    /// An MCP server's tools, called by an rmcp agent with a token exchanged for the server.
    Mcp,
}

impl Flow {
    fn title(self) -> &'static str {
        match self {
            Flow::InSession => "In-Session",
            Flow::OutOfSession => "Out-of-Session",
            Flow::Verified => "Verified Delegation",
            Flow::Mcp => "MCP Tools",
        }
    }
}

/// Prints as the guide's test scripts do.
struct Steps {
    n: usize,
}

impl Steps {
    #[allow(clippy::print_stdout)]
    fn step(&mut self, text: &str) {
        self.n += 1;
        println!("{}. {}", self.n, dual_auth::escape_untrusted(text, false));
    }
    #[allow(clippy::print_stdout)]
    fn ok(&self, text: &str) {
        println!("   ✓ {}", dual_auth::escape_untrusted(text, false));
    }
}

/// Runs one vendor and flow; returns an error naming the step that failed.
#[allow(clippy::print_stdout)]
pub(crate) async fn run(env: &DemoEnv, vendor: Vendor, flow: Flow) -> Result<(), String> {
    let line = "=".repeat(60);
    println!("\n{line}\ndual-auth {} Flow: {vendor}\n{line}", flow.title());
    let mut steps = Steps { n: 0 };

    let (config, scopes) = env.vendor_config(vendor)?;
    let adapter = build_adapter(config, AdapterOptions::with_http(env.http.clone()), TokenCacheSettings::default())
        .map_err(|e| format!("adapter: {}", ErrorChain(&e)))?;
    let api = ApiClient::new(env.http.clone()).map_err(crate::error_chain)?;

    if flow == Flow::Verified {
        return run_verified(env, vendor, &adapter, &api, &scopes, &mut steps, &line).await;
    }
    if flow == Flow::Mcp {
        return run_mcp(env, vendor, adapter, &mut steps, &line).await;
    }
    steps.step("Simulating authenticated user...");
    let session = UserSession::new("alice@corp.example.com").with_user_name("Alice Smith").with_user_id("user_12345");
    steps.ok("User: user_12345 (e-mail and name stay out of the output, as out of logs)");
    let (act, token) = match flow {
        Flow::InSession => {
            steps.step("Extracting human identity (act)...");
            let sender = HybridSender::in_session();
            let act = sender.prepare_in_session_act(sender.extract_act_from_session(&session).map_err(crate::error_chain)?);
            steps.ok(&format!(
                "Act extracted with fields: {:?}",
                act.to_value().as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
            ));
            steps.step(&format!("Requesting dual-subject token from {vendor}..."));
            let token = InSessionTokenRequest::new(Arc::clone(&adapter))
                .request_token(DEMO_AGENT, &act, scopes.clone())
                .await
                .map_err(|e| format!("token request: {}", ErrorChain(&e)))?;
            (act, token)
        }
        Flow::OutOfSession => {
            println!("\n[APPLICATION SIDE]");
            steps.step("Creating signed act JWT...");
            let sender = HybridSender::with_signer(ActJwtSigner::new(env.app_key.clone()));
            let act = sender.extract_act_from_session(&session).map_err(crate::error_chain)?;
            let act_jwt = sender.prepare_out_of_session_act(&act, AGENT_ENDPOINT, Duration::from_secs(60)).map_err(crate::error_chain)?;
            steps.ok("Act JWT created (RS256, expires in 60 seconds)");
            println!("\n[AGENT SIDE]");
            steps.step("Verifying act JWT (signature, audience, expiry, lifetime, issuer, replay)...");
            let verifier = ActJwtVerifier::builder(env.app_key.verifying_key(), AGENT_ENDPOINT).build().map_err(crate::error_chain)?;
            let agent = OutOfSessionTokenRequest::new(Arc::clone(&adapter), verifier);
            let verified =
                agent.receive_and_verify_act_jwt(act_jwt.expose_secret()).await.map_err(|e| format!("verification: {}", ErrorChain(&e)))?;
            steps.ok(&format!("JWT verified; act.sub = {}", verified.log_id()));
            let replay = agent.receive_and_verify_act_jwt(act_jwt.expose_secret()).await;
            if !replay.as_ref().is_err_and(SessionError::is_act_jwt_rejected) {
                return Err("a replayed act JWT was accepted".into());
            }
            steps.ok("The same act JWT again is refused: Act JWT replay detected");
            steps.step(&format!("Requesting dual-subject token from {vendor}..."));
            let token = agent
                .request_token(DEMO_AGENT, &verified, scopes.clone())
                .await
                .map_err(|e| format!("token request: {}", ErrorChain(&e)))?;
            (verified, token)
        }
        Flow::Verified | Flow::Mcp => return Err("unreachable: the verified and MCP flows ran above".into()),
    };
    steps.ok(&format!(
        "Token received: {} expiring in {} s, scopes {:?}",
        token.token_type(),
        token.expires_in().as_secs(),
        token.scopes()
    ));
    if token.has_act_assertion() {
        steps.ok("Act assertion signed for each API call (sent as X-Act-Assertion)");
    }

    steps.step("Calling the protected API...");
    let response = api
        .call_api(&token, ApiRequest::get(format!("{}/finance/report/Q4-2025", env.idp.api_url())))
        .await
        .map_err(|e| format!("API call: {}", ErrorChain(&e)))?;
    let seen: Value = response.json().unwrap_or(Value::Null);
    if response.status() != 200 {
        return Err(format!("the API answered {}: {seen}", response.status()));
    }
    steps.step("What the API saw:");
    steps.ok(&format!("agent: {}", seen["agent"].as_str().unwrap_or("?")));
    steps.ok(&format!("human: {}", seen["human"].as_str().unwrap_or("?")));
    steps.ok(&format!("vouched for by: {}", DelegationMode::SelfAsserted.vouched_by()));
    if seen["agent"] != DEMO_AGENT || seen["human"] != act.sub() || seen["vendor"] != vendor.as_str() {
        return Err(format!("the API saw {seen}, expected agent {DEMO_AGENT} and human {}", act.sub()));
    }
    println!("\n{line}\n✓ {} FLOW PASSED: {vendor}\n{line}", flow.title().to_uppercase());
    Ok(())
}

/// The verified mode: alice logs in at the provider (her web session's token), the agent
/// sends that token with the vendor's delegation grant, and the API sees the human as the
/// token's own subject, vouched for by the identity provider.
#[allow(clippy::print_stdout)]
async fn run_verified(
    env: &DemoEnv,
    vendor: Vendor,
    adapter: &Arc<dyn IamAdapter>,
    api: &ApiClient,
    scopes: &[String],
    steps: &mut Steps,
    line: &str,
) -> Result<(), String> {
    let mode = adapter.delegation_mode().ok_or("the adapter has no verified mode")?;
    println!("\n[APPLICATION SIDE]");
    steps.step("alice logs in; the web session holds her token, issued for this agent...");
    let login = env.idp.login(vendor.as_str(), "alice", DEMO_AGENT, None).map_err(|e| format!("login: {e}"))?;
    let evidence = SubjectToken::new(login.access_token, SubjectTokenType::AccessToken).map_err(crate::error_chain)?;
    steps.ok("The session's access token is the evidence (a secret: never printed or logged)");
    println!("\n[AGENT SIDE]");
    steps.step(&format!("Sending the evidence to {vendor} ({mode})..."));
    let token = InSessionTokenRequest::new(Arc::clone(adapter))
        .request_delegated_token(DEMO_AGENT, &evidence, scopes.iter().cloned())
        .await
        .map_err(|e| format!("delegation grant: {}", ErrorChain(&e)))?;
    steps.ok(&format!(
        "Token received: {} expiring in {} s{}",
        token.token_type(),
        token.expires_in().as_secs(),
        token.issued_token_type().map(|t| format!(", issued_token_type {t}")).unwrap_or_default()
    ));
    steps.step("Calling the protected API (it verifies the delegated layout)...");
    let response = api
        .call_api(&token, ApiRequest::get(format!("{}/finance/report/Q4-2025", env.idp.delegated_api_url())))
        .await
        .map_err(|e| format!("API call: {}", ErrorChain(&e)))?;
    let seen: Value = response.json().unwrap_or(Value::Null);
    if response.status() != 200 {
        return Err(format!("the API answered {}: {seen}", response.status()));
    }
    let alice = env.idp.config().users.iter().find(|u| u.username == "alice").ok_or("no demo user alice")?;
    steps.step("What the API saw:");
    steps.ok(&format!("agent: {}", seen["agent"].as_str().unwrap_or("?")));
    steps.ok(&format!("human: {}", seen["human"].as_str().unwrap_or("?")));
    steps.ok(&format!("vouched for by: {}", mode.vouched_by()));
    // Entra ID names the user by a pairwise sub, and by oid across applications.
    let human_id = if vendor == Vendor::EntraId { &seen["act"]["oid"] } else { &seen["human"] };
    if seen["agent"] != DEMO_AGENT || human_id != alice.id.as_str() || seen["vouched_by"] != "identity-provider" {
        return Err(format!("the API saw {seen}, expected agent {DEMO_AGENT}, human {}, vouched for by the identity provider", alice.id));
    }
    println!("\n{line}\n✓ {} FLOW PASSED: {vendor}\n{line}", Flow::Verified.title().to_uppercase());
    Ok(())
}

/// The MCP leg (Auth0's dialect, which takes RFC 8707 `resource`): the demo MCP server runs
/// behind `McpAuthLayer`; the agent connects with no token, reads the server's metadata
/// from the 401, gets a token for that resource by token exchange, calls the tools, steps
/// up once for `approve_payment`; `read_ledger` exchanges its token for the finance API's.
#[allow(clippy::print_stdout)]
async fn run_mcp(env: &DemoEnv, vendor: Vendor, adapter: Arc<dyn IamAdapter>, steps: &mut Steps, line: &str) -> Result<(), String> {
    let listener = env.mcp.lock().map_err(|_| "MCP listener lock")?.take().ok_or("the MCP leg runs once per demo")?;
    let alice = env.idp.config().users.iter().find(|u| u.username == "alice").ok_or("no demo user alice")?.id.clone();
    println!("\n[MCP SERVER SIDE]");
    steps.step(&format!("Starting the MCP server at {} (its tokens' audience)...", env.mcp_uri));
    let issuer = env.idp.issuer(vendor.as_str()).map_err(crate::error_chain)?;
    let policy = IssuerPolicy::new(issuer, &env.mcp_uri)
        .jwks_url(format!("{}/.well-known/jwks.json", env.idp.base_url()))
        .require_type("at+jwt")
        .layout(Layout::Delegated);
    let verifier = Verifier::builder().http(env.http.clone()).issuer(policy).build().map_err(crate::error_chain)?;
    let (config, _) = env.vendor_config(vendor)?;
    let VendorConfig::Auth0(mut upstream_config) = config else {
        return Err(format!("the MCP leg speaks Auth0's dialect, not {vendor}'s"));
    };
    upstream_config.client_id = DEMO_MCP_CLIENT.into();
    upstream_config.client_auth =
        ClientAuthentication::client_secret_jwt(&SecretString::from(env.mcp_secret.clone())).map_err(crate::error_chain)?;
    let upstream_adapter =
        build_adapter(VendorConfig::Auth0(upstream_config), AdapterOptions::with_http(env.http.clone()), TokenCacheSettings::default())
            .map_err(|e| format!("MCP server adapter: {}", ErrorChain(&e)))?;
    let tools = mcp::FinanceTools {
        approvers: vec![alice.clone()],
        approving_agents: vec![DEMO_AGENT.into()],
        upstream: Some(mcp::Upstream {
            adapter: upstream_adapter,
            client_id: DEMO_MCP_CLIENT.into(),
            scopes: vec!["finance.read".into()],
            api: ApiClient::new(env.http.clone()).map_err(crate::error_chain)?,
            report_url: format!("{}/finance/report/Q4-2025", env.idp.delegated_api_url()),
        }),
    };
    let resource = ProtectedResource::new(&env.mcp_uri).map_err(crate::error_chain)?.resource_name("dual-auth demo finance tools");
    let app = mcp::router(verifier, resource, tools).map_err(crate::error_chain)?;
    let _server = env.idp.serve_beside(listener, app).await.map_err(crate::error_chain)?;
    steps.ok("Every call is verified: audience = this URI, scope finance.read; approve_payment also needs finance.write");

    println!("\n[AGENT SIDE]");
    steps.step("alice logs in; the web session holds her token, issued for this agent...");
    let login = env.idp.login(vendor.as_str(), "alice", DEMO_AGENT, None).map_err(|e| format!("login: {e}"))?;
    let evidence = SubjectToken::new(login.access_token, SubjectTokenType::AccessToken).map_err(crate::error_chain)?;
    steps.step("Connecting with rmcp and no token: the 401 names the server's RFC 9728 metadata...");
    let tokens = DelegatedTokens::new(adapter, DEMO_AGENT, evidence, ResourceParameter::Resource);
    let client = McpHttpClient::new(&env.mcp_uri, Arc::new(tokens), env.http.clone()).map_err(crate::error_chain)?;
    let session = ().serve(client.clone().transport()).await.map_err(|e| format!("MCP connect: {}", ErrorChain(&e)))?;
    steps.ok(&format!("Token for {} (token exchange with RFC 8707 resource), scopes: {}", env.mcp_uri, client.scopes().await.join(" ")));
    let call = |tool: &'static str| {
        let session = &session;
        async move {
            let result: CallToolResult =
                session.call_tool(CallToolRequestParams::new(tool)).await.map_err(|e| format!("{tool}: {}", ErrorChain(&e)))?;
            match (result.is_error, result.structured_content) {
                (Some(true), seen) => Err(format!("{tool} refused: {}", seen.unwrap_or_default())),
                (_, seen) => Ok(seen.unwrap_or_default()),
            }
        }
    };
    steps.step("Calling the tool whoami...");
    let seen = call("whoami").await?;
    steps.ok(&format!(
        "the tool saw the agent {} and the human {}",
        seen["agent"].as_str().unwrap_or("?"),
        seen["human"].as_str().unwrap_or("?")
    ));
    if seen["agent"] != DEMO_AGENT || seen["human"] != alice.as_str() {
        return Err(format!("the MCP tool saw {seen}, expected agent {DEMO_AGENT} and human {alice}"));
    }
    steps.step("Calling approve_payment (403 insufficient_scope: one step-up to the union of scopes)...");
    let approved = call("approve_payment").await?;
    let scopes = client.scopes().await.join(" ");
    steps.ok(&format!("approved: {}; scopes now: {scopes}; tokens issued: {}", approved["approved"], client.tokens_issued().await));
    if approved["approved"] != true || scopes != "finance.read finance.write" || client.tokens_issued().await != 2 {
        return Err(format!("approve_payment gave {approved} with scopes {scopes}"));
    }
    steps.step("Calling read_ledger (the tool exchanges its token for the finance API's; it never forwards it)...");
    let ledger = call("read_ledger").await?;
    let upstream = &ledger["upstream"];
    steps.ok(&format!(
        "the finance API saw the agent {} and the human {}, delegated through {}",
        upstream["agent"].as_str().unwrap_or("?"),
        upstream["human"].as_str().unwrap_or("?"),
        upstream["chain"][0]["sub"].as_str().unwrap_or("?")
    ));
    if upstream["agent"] != DEMO_MCP_CLIENT || upstream["human"] != alice.as_str() || upstream["chain"][0]["sub"] != DEMO_AGENT {
        return Err(format!("the finance API saw {upstream}"));
    }
    session.cancel().await.map_err(|e| format!("MCP close: {e}"))?;
    println!("\n{line}\n✓ {} FLOW PASSED: {vendor}\n{line}", Flow::Mcp.title().to_uppercase());
    Ok(())
}
