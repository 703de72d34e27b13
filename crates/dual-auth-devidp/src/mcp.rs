//! The demo MCP server (`rmcp`, streamable HTTP), whose tools know both identities: each tool call
//! arrives with the [`DualSubject`] that `McpAuthLayer` verified, so a tool authorises on the
//! agent *and* the human, and a tool that calls an upstream API on the human's behalf
//! exchanges the token it received for one for that API (RFC 8693), never forwarding it.
//!
//! Tools:
//! - `whoami`: the agent, the human, the chain and who vouched, as the server saw them;
//! - `approve_payment`: needs the scope `finance.write` (the layer asks for a step-up) and
//!   is allowed only to the approvers among humans, through the allowed agents;
//! - `read_ledger`: reads a report from the upstream finance API with an exchanged token.

use std::sync::Arc;

use dual_auth_api::{ApiClient, ApiRequest};
use dual_auth_core::{DelegationRequest, ErrorChain, IamAdapter};
use dual_auth_verify::mcp::{McpAuthLayer, PresentedToken, ProtectedResource};
use dual_auth_verify::{DualSubject, Verifier, VerifyError};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// The scope every call needs.
pub const READ_SCOPE: &str = "finance.read";

/// The scope `approve_payment` needs besides.
pub const WRITE_SCOPE: &str = "finance.write";

/// How `read_ledger` reaches the upstream API: the MCP server's own client at the identity
/// provider exchanges the presented token for one for the API.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The MCP server's adapter (its own client id and credentials).
    pub adapter: Arc<dyn IamAdapter>,
    /// The MCP server's client id.
    pub client_id: String,
    /// The scopes asked for the upstream API.
    pub scopes: Vec<String>,
    /// The API client.
    pub api: ApiClient,
    /// The report's URL at the upstream API.
    pub report_url: String,
}

/// The tools, and who may approve payments.
#[derive(Clone, Debug)]
pub struct FinanceTools {
    /// Humans (`sub`) who may approve payments.
    pub approvers: Vec<String>,
    /// Agents (client ids) through which they may.
    pub approving_agents: Vec<String>,
    /// The upstream API, for `read_ledger`.
    pub upstream: Option<Upstream>,
}

/// The MCP router: the rmcp service at [`MCP_PATH`], behind the layer that verifies each
/// request for `resource` (its metadata document served at the well-known path).
///
/// # Errors
/// [`VerifyError::Configuration`] when the verifier's audience is not the resource's URI.
pub fn router(verifier: Verifier, resource: ProtectedResource, tools: FinanceTools) -> Result<axum::Router, VerifyError> {
    let resource = resource.require_scopes([READ_SCOPE]).tool_scopes("approve_payment", [WRITE_SCOPE]);
    let layer = McpAuthLayer::new(verifier, resource)?;
    let service: StreamableHttpService<FinanceTools, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(tools.clone()), Arc::default(), StreamableHttpServerConfig::default());
    Ok(axum::Router::new().nest_service(MCP_PATH, service).layer(layer))
}

/// The verified subject and token of the HTTP request a tool call came in.
fn caller(context: &RequestContext<RoleServer>) -> Result<(DualSubject, Option<PresentedToken>), ErrorData> {
    let parts = context.extensions.get::<http::request::Parts>();
    let subject = parts.and_then(|p| p.extensions.get::<DualSubject>()).cloned();
    let token = parts.and_then(|p| p.extensions.get::<PresentedToken>()).cloned();
    // Without the layer there is no subject: a wiring mistake, never an anonymous call.
    subject.map(|s| (s, token)).ok_or_else(|| ErrorData::internal_error("the MCP server is not behind McpAuthLayer", None))
}

fn object_schema() -> Arc<serde_json::Map<String, Value>> {
    let schema = json!({"type": "object", "properties": {"amount": {"type": "number"}}});
    Arc::new(schema.as_object().cloned().unwrap_or_default())
}

impl FinanceTools {
    fn whoami(subject: &DualSubject) -> CallToolResult {
        CallToolResult::structured(json!({
            "agent": subject.agent.id(),
            "human": subject.human.sub(),
            "chain": subject.chain.iter().map(|a| a.id()).collect::<Vec<_>>(),
            "vouched_by": subject.vouched_by,
            "scopes": subject.scopes,
        }))
    }

    fn approve_payment(&self, subject: &DualSubject, amount: Option<f64>) -> CallToolResult {
        let human = subject.human.sub();
        let agent = subject.agent.id();
        if !self.approvers.iter().any(|a| a == human) || !self.approving_agents.iter().any(|a| a == agent) {
            tracing::info!(agent, human = %subject.human.log_id(), "payment approval refused");
            return CallToolResult::structured_error(
                json!({"approved": false, "reason": "this human may not approve payments through this agent"}),
            );
        }
        CallToolResult::structured(json!({"approved": true, "amount": amount, "human": human, "agent": agent}))
    }

    async fn read_ledger(&self, token: Option<PresentedToken>) -> CallToolResult {
        let failed = |reason: String| CallToolResult::structured_error(json!({"error": reason}));
        let Some(upstream) = &self.upstream else { return failed("no upstream API is configured".into()) };
        let Some(token) = token else { return failed("the request's token is not at hand to exchange".into()) };
        // The token for this MCP server is evidence for an exchange; it never goes upstream.
        let request =
            match DelegationRequest::new(upstream.client_id.as_str(), token.subject_token().clone(), upstream.scopes.iter().cloned()) {
                Ok(request) => request,
                Err(e) => return failed(ErrorChain(&e).to_string()),
            };
        let exchanged = match upstream.adapter.request_delegated_token(&request).await {
            Ok(token) => token,
            Err(e) => return failed(format!("token exchange: {}", ErrorChain(&e))),
        };
        match upstream.api.call_api(&exchanged, ApiRequest::get(upstream.report_url.as_str())).await {
            Ok(response) if response.is_success() => {
                // Who the API saw, and nothing else of its answer (no e-mail, no name).
                let seen = response.json::<Value>().unwrap_or(Value::Null);
                let pick = |name: &str| seen.get(name).cloned().unwrap_or(Value::Null);
                CallToolResult::structured(json!({"upstream": {
                    "agent": pick("agent"), "human": pick("human"), "chain": pick("chain"), "vouched_by": pick("vouched_by"),
                }}))
            }
            Ok(response) => failed(format!("the upstream API answered {}", response.status())),
            Err(e) => failed(format!("upstream: {}", ErrorChain(&e))),
        }
    }
}

impl ServerHandler for FinanceTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("whoami", "The agent and the human this call is made by", object_schema()),
            Tool::new("approve_payment", "Approves a payment (approvers only; needs finance.write)", object_schema()),
            Tool::new("read_ledger", "Reads the Q4 report from the finance API on the human's behalf", object_schema()),
        ]))
    }

    async fn call_tool(&self, request: CallToolRequestParams, context: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let (subject, token) = caller(&context)?;
        let result = match &*request.name {
            "whoami" => Self::whoami(&subject),
            "approve_payment" => {
                let amount = request.arguments.as_ref().and_then(|a| a.get("amount")).and_then(Value::as_f64);
                self.approve_payment(&subject, amount)
            }
            "read_ledger" => self.read_ledger(token).await,
            _ => return Err(ErrorData::invalid_params("no such tool", None)),
        };
        Ok(result.into())
    }
}

/// The text of a tool result's first content block, for printing.
pub fn first_text(result: &CallToolResult) -> Option<String> {
    result.content.iter().find_map(|c| match c {
        ContentBlock::Text(text) => Some(text.text.clone()),
        _ => None,
    })
}
