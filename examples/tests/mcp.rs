//! MCP with both identities, on loopback over HTTPS against the development provider's
//! Auth0 dialect: the demo MCP server (`dual_auth_devidp::mcp`: rmcp, streamable HTTP,
//! behind `McpAuthLayer`) and
//! an rmcp agent whose tokens come from Auth0's token exchange with RFC 8707 `resource`.
//!
//! - the agent starts without a token: the 401 points it at the metadata, which names the
//!   resource, and it gets a token for it;
//! - the tool sees the agent and the human; a tool only approvers may call refuses Bob;
//! - a tool needing `finance.write` makes the agent step up once, with the union of scopes;
//! - a token for another resource is refused, and the agent does not loop on it;
//! - the tool calling the upstream API exchanges its token; the MCP token forwarded upstream
//!   is refused there.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use dual_auth::ErrorChain;
use dual_auth::api::mcp::rmcp::ServiceExt;
use dual_auth::api::mcp::rmcp::model::{CallToolRequestParams, CallToolResult};
use dual_auth::api::mcp::rmcp::service::{RoleClient, RunningService};
use dual_auth::api::mcp::{DelegatedTokens, McpHttpClient, McpTokenSource, ResourceParameter, TokenTarget};
use dual_auth::api::{ApiClient, ApiRequest};
use dual_auth::auth0::{Auth0Adapter, Auth0Config};
use dual_auth::prelude::*;
use dual_auth::protected_resource::canonical_resource;
use dual_auth::verify::mcp::ProtectedResource;
use dual_auth::verify::{IssuerPolicy, Layout, Verifier};
use dual_auth_devidp::mcp::{FinanceTools, MCP_PATH, Upstream, router};
use dual_auth_devidp::{DevIdp, DevIdpConfig, RegisteredClient, ServedBeside};
use dual_auth_test_support::agent::{secret_auth, trusting};
use serde_json::{Value, json};

const AGENT: &str = "finance-agent";
const AGENT_SECRET: &str = "mcp-agent-secret-0123456789abcdefghij";
const MCP_CLIENT: &str = "finance-mcp";
const MCP_SECRET: &str = "mcp-server-secret-0123456789abcdefghij";

struct Stack {
    idp: DevIdp,
    /// The MCP server's canonical URI.
    mcp_uri: String,
    /// Trusts the provider's CA (the MCP server is served with its certificate).
    http: HttpSettings,
    _server: ServedBeside,
}

fn auth0(idp: &DevIdp, client: &str, secret: &str, http: &HttpSettings) -> Arc<dyn IamAdapter> {
    let config = Auth0Config::new(idp.auth0_token_url(), client, secret_auth(secret), idp.config().api_audience.clone());
    Arc::new(Auth0Adapter::new(config, AdapterOptions::with_http(http.clone())).unwrap())
}

impl Stack {
    async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mcp_uri = format!("https://localhost:{}{MCP_PATH}", listener.local_addr().unwrap().port());
        let mut config = DevIdpConfig::with_client(AGENT, AGENT_SECRET);
        config.clients.push(RegisteredClient { client_id: MCP_CLIENT.into(), secret: Some(MCP_SECRET.into()), public_key: None });
        config.extra_apis.push(mcp_uri.clone());
        let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap();

        let http = trusting(idp.ca_pem());
        let issuer = idp.issuer("auth0").unwrap();
        let policy = IssuerPolicy::new(issuer, &mcp_uri)
            .jwks_url(format!("{}/.well-known/jwks.json", idp.base_url()))
            .require_type("at+jwt")
            .layout(Layout::Delegated);
        let verifier = Verifier::builder().http(http.clone()).issuer(policy).build().unwrap();
        let alice = idp.config().users.iter().find(|u| u.username == "alice").unwrap().id.clone();
        let tools = FinanceTools {
            approvers: vec![alice],
            approving_agents: vec![AGENT.into()],
            upstream: Some(Upstream {
                adapter: auth0(&idp, MCP_CLIENT, MCP_SECRET, &http),
                client_id: MCP_CLIENT.into(),
                scopes: vec!["finance.read".into()],
                api: ApiClient::new(http.clone()).unwrap(),
                report_url: format!("{}/finance/report/Q4-2025", idp.delegated_api_url()),
            }),
        };
        let app = router(verifier, ProtectedResource::new(&mcp_uri).unwrap().resource_name("Finance tools"), tools).unwrap();
        let server = idp.serve_beside(listener, app).await.unwrap();
        Self { idp, mcp_uri, http, _server: server }
    }

    /// `username`'s access token, issued for the agent (`may_act`).
    fn evidence(&self, username: &str) -> SubjectToken {
        let login = self.idp.login("auth0", username, AGENT, None).unwrap();
        SubjectToken::new(login.access_token, SubjectTokenType::AccessToken).unwrap()
    }

    fn tokens(&self, username: &str) -> DelegatedTokens {
        DelegatedTokens::new(auth0(&self.idp, AGENT, AGENT_SECRET, &self.http), AGENT, self.evidence(username), ResourceParameter::Resource)
    }

    async fn connect(&self, source: Arc<dyn McpTokenSource>) -> (McpHttpClient, Result<RunningService<RoleClient, ()>, String>) {
        let client = McpHttpClient::new(&self.mcp_uri, source, self.http.clone()).unwrap();
        let service = ().serve(client.clone().transport()).await.map_err(|e| ErrorChain(&e).to_string());
        (client, service)
    }
}

async fn call(mcp: &RunningService<RoleClient, ()>, tool: &'static str) -> CallToolResult {
    mcp.call_tool(CallToolRequestParams::new(tool)).await.unwrap()
}

fn structured(result: &CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_sees_the_agent_and_the_human_and_the_agent_steps_up_once() {
    let stack = Stack::start().await;
    let alice = stack.idp.config().users.iter().find(|u| u.username == "alice").unwrap().id.clone();
    let (client, mcp) = stack.connect(Arc::new(stack.tokens("alice"))).await;
    let mcp = mcp.unwrap();
    // No token at first: the 401's metadata named the resource and the scope every call needs.
    assert_eq!(client.tokens_issued().await, 1);
    assert_eq!(client.scopes().await, ["finance.read"]);

    let tools: Vec<String> = mcp.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert_eq!(tools, ["whoami", "approve_payment", "read_ledger"]);

    let seen = structured(&call(&mcp, "whoami").await);
    assert_eq!(seen, json!({"agent": AGENT, "human": alice, "chain": [], "vouched_by": "identity-provider", "scopes": ["finance.read"]}));

    // finance.write is missing: one step-up, to the union of the scopes.
    let approved = call(&mcp, "approve_payment").await;
    assert_eq!(approved.is_error, Some(false), "{approved:?}");
    assert_eq!(structured(&approved)["approved"], true);
    assert_eq!(client.tokens_issued().await, 2);
    assert_eq!(client.scopes().await, ["finance.read", "finance.write"]);
    // The stepped-up token serves the next calls: no new token.
    assert_eq!(structured(&call(&mcp, "approve_payment").await)["human"], alice.as_str());
    assert_eq!(structured(&call(&mcp, "whoami").await)["scopes"], json!(["finance.read", "finance.write"]));
    assert_eq!(client.tokens_issued().await, 2);
    mcp.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refusals_share_one_step_up() {
    let stack = Stack::start().await;
    let (client, mcp) = stack.connect(Arc::new(stack.tokens("alice"))).await;
    let mcp = mcp.unwrap();
    // Both calls go out with the first token and are refused; one new token serves both.
    let (first, second) = tokio::join!(call(&mcp, "approve_payment"), call(&mcp, "approve_payment"));
    assert_eq!((first.is_error, second.is_error), (Some(false), Some(false)), "{first:?} {second:?}");
    assert_eq!(client.tokens_issued().await, 2);
    assert_eq!(client.scopes().await, ["finance.read", "finance.write"]);
    mcp.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_authorises_on_the_human_as_well_as_the_agent() {
    let stack = Stack::start().await;
    let (_, mcp) = stack.connect(Arc::new(stack.tokens("bob"))).await;
    let mcp = mcp.unwrap();
    let refused = call(&mcp, "approve_payment").await;
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(structured(&refused), json!({"approved": false, "reason": "this human may not approve payments through this agent"}));
    mcp.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_call_exchanges_the_token_and_a_forwarded_token_is_refused() {
    let stack = Stack::start().await;
    let alice = stack.idp.config().users.iter().find(|u| u.username == "alice").unwrap().id.clone();
    let tokens = stack.tokens("alice");
    let (_, mcp) = stack.connect(Arc::new(tokens.clone())).await;
    let mcp = mcp.unwrap();
    let ledger = call(&mcp, "read_ledger").await;
    assert_eq!(ledger.is_error, Some(false), "{ledger:?}");
    let upstream = &structured(&ledger)["upstream"];
    // The finance API saw Alice, the MCP server as the agent, and the agent before it.
    assert_eq!(upstream["human"], alice.as_str());
    assert_eq!(upstream["agent"], MCP_CLIENT);
    assert_eq!(upstream["chain"], json!([{"sub": AGENT}]));
    mcp.cancel().await.unwrap();

    // The token the MCP server receives, forwarded as is, is refused by the finance API.
    let target_scopes = ["finance.read".to_owned()];
    let target = TokenTarget::new(canonical_resource(&stack.mcp_uri).unwrap(), target_scopes);
    let mcp_token = tokens.token(&target).await.unwrap();
    let api = ApiClient::new(stack.http.clone()).unwrap();
    let forwarded =
        api.call_api(&mcp_token, ApiRequest::get(format!("{}/finance/report/Q4-2025", stack.idp.delegated_api_url()))).await.unwrap();
    assert_eq!(forwarded.status(), 401);
    let challenge = forwarded.headers().get("www-authenticate").unwrap().to_str().unwrap();
    assert!(challenge.contains(r#"error_description="The token is not for this API""#), "{challenge}");
}

/// A token for another resource, whatever is asked; `.2`: whether it says its tokens name
/// the resource (so the client checks their `aud`).
#[derive(Debug)]
struct WrongResource(DelegatedTokens, Arc<std::sync::atomic::AtomicU32>, bool);

#[async_trait::async_trait]
impl McpTokenSource for WrongResource {
    async fn token(&self, target: &TokenTarget) -> Result<TokenResponse, IamError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let elsewhere = TokenTarget::new(canonical_resource("https://api.dual-auth.example/finance").unwrap(), target.scopes().to_vec());
        self.0.token(&elsewhere).await
    }

    fn names_resource(&self) -> bool {
        self.2
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_resource_is_refused_and_not_asked_for_again_and_again() {
    let stack = Stack::start().await;
    // The agent itself sees that the token is for another audience, and does not send it.
    let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (client, mcp) = stack.connect(Arc::new(WrongResource(stack.tokens("alice"), asked.clone(), true))).await;
    let err = mcp.err().unwrap();
    assert!(
        err.contains(&format!("the token issued is not for {} (its aud names another audience): it is not sent", stack.mcp_uri)),
        "{err}"
    );
    assert_eq!((asked.load(std::sync::atomic::Ordering::SeqCst), client.tokens_issued().await), (1, 0));
    // A source whose tokens cannot be checked so: the server refuses the token, once.
    let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (client, mcp) = stack.connect(Arc::new(WrongResource(stack.tokens("alice"), asked.clone(), false))).await;
    let err = mcp.err().unwrap();
    assert!(err.contains("Auth required"), "{err}");
    // One token for the first 401; its refusal ends the attempt.
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(client.tokens_issued().await, 1);

    // The server's answer, as any client sees it.
    let token = stack
        .tokens("alice")
        .token(&TokenTarget::new(canonical_resource("https://api.dual-auth.example/finance").unwrap(), ["finance.read"]))
        .await
        .unwrap();
    let answer = stack
        .http
        .build_client()
        .unwrap()
        .post(&stack.mcp_uri)
        .bearer_auth(token.access_token().expose_secret())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let metadata_url = stack.mcp_uri.replace(MCP_PATH, &format!("/.well-known/oauth-protected-resource{MCP_PATH}"));
    assert_eq!(
        answer.headers().get("www-authenticate").unwrap().to_str().unwrap(),
        format!(
            r#"Bearer error="invalid_token", error_description="The token is not for this API", scope="finance.read", resource_metadata="{metadata_url}""#
        )
    );
    let metadata: Value = stack.http.build_client().unwrap().get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], stack.mcp_uri.as_str());
    assert_eq!(metadata["authorization_servers"], json!([stack.idp.issuer("auth0").unwrap()]));
    assert_eq!(metadata["scopes_supported"], json!(["finance.read", "finance.write"]));
    assert_eq!(metadata["resource_name"], "Finance tools");
}

/// Never asked: the metadata is refused first.
#[derive(Debug)]
struct Unreachable;

#[async_trait::async_trait]
impl McpTokenSource for Unreachable {
    async fn token(&self, _target: &TokenTarget) -> Result<TokenResponse, IamError> {
        panic!("no token may be asked for another resource's metadata")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_about_another_resource_is_refused_before_any_token_is_asked_for() {
    let idp = DevIdp::start(DevIdpConfig::with_client(AGENT, AGENT_SECRET), ([127, 0, 0, 1], 0).into()).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let challenge = format!(r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#);
    let document = json!({"resource": "https://elsewhere.example/mcp", "authorization_servers": [idp.issuer("auth0").unwrap()]});
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(move || {
                let challenge = challenge.clone();
                async move { (axum::http::StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]) }
            }),
        )
        .route("/.well-known/oauth-protected-resource/mcp", axum::routing::get(move || async move { axum::Json(document.clone()) }));
    let _server = idp.serve_beside(listener, app).await.unwrap();
    let client = McpHttpClient::new(&format!("{base}/mcp"), Arc::new(Unreachable), trusting(idp.ca_pem())).unwrap();
    let err = ().serve(client.clone().transport()).await.unwrap_err();
    let chain = ErrorChain(&err).to_string();
    assert!(chain.contains("the protected resource metadata is refused"), "{chain}");
    assert!(chain.contains(&format!(r#"is for "https://elsewhere.example/mcp", not "{base}/mcp""#)), "{chain}");
    assert_eq!(client.tokens_issued().await, 0);
    // Plain HTTP is refused before anything is sent.
    assert!(McpHttpClient::new("http://localhost:1/mcp", Arc::new(Unreachable), trusting(idp.ca_pem())).is_err());
}
