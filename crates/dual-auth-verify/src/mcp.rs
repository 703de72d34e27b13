//! An MCP server as an OAuth protected resource (the MCP authorization specification,
//! RFC 9728, RFC 8707): [`ProtectedResource`] describes it, [`McpAuthLayer`] guards it.
//!
//! The layer, put around the whole router:
//! - answers `GET` on the resource's well-known metadata path with its RFC 9728 document,
//!   without a token;
//! - verifies every other request with the [`Verifier`], whose issuers must all take the
//!   resource's canonical URI as the audience, so a token for another resource is refused;
//! - answers a refusal as [`crate::DualAuthLayer`] does, each `WWW-Authenticate` challenge
//!   carrying `resource_metadata` (RFC 9728 §5.1), and, without a token, the scopes every
//!   call needs;
//! - reads each JSON-RPC `tools/call` and answers 403 `insufficient_scope`, naming the
//!   missing scopes, when the token lacks a scope that tool needs
//!   ([`ProtectedResource::tool_scopes`]): the client steps up and calls again;
//! - gives the inner service the verified [`DualSubject`] and the [`PresentedToken`] in the
//!   request extensions. rmcp hands a tool the request's `http::request::Parts`, whose
//!   extensions hold both: the tool authorises on the agent and the human, and exchanges
//!   the presented token for an upstream API's (never forwarding it).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use dual_auth_core::http::HttpsUrl;
use dual_auth_core::protected_resource::{self, ProtectedResourceMetadata};
use dual_auth_core::{SubjectToken, SubjectTokenType};
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::VerifyError;
use crate::subject::DualSubject;
use crate::verifier::Verifier;

/// The largest JSON-RPC request body read to find the tool called: 4 MiB. Larger ones get
/// 413, since their tool cannot be known.
pub const MAX_MCP_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// What an MCP server publishes about itself: its canonical URI, the authorization servers
/// that issue its tokens, and the scopes its calls and tools need.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    resource: HttpsUrl,
    metadata: ProtectedResourceMetadata,
    required_scopes: Vec<String>,
    tool_scopes: BTreeMap<String, Vec<String>>,
    realm: Option<String>,
}

impl ProtectedResource {
    /// The resource at `canonical_uri`, the URL clients call (`https://mcp.example.com/mcp`):
    /// the audience its tokens must name.
    ///
    /// # Errors
    /// [`VerifyError::Configuration`] for a URI that is not `https://`, or has a query or a
    /// fragment.
    pub fn new(canonical_uri: &str) -> Result<Self, VerifyError> {
        let resource = protected_resource::canonical_resource(canonical_uri)
            .map_err(|e| VerifyError::Configuration { setting: "ProtectedResource", reason: e.to_string() })?;
        let metadata = ProtectedResourceMetadata::new(&resource);
        Ok(Self { resource, metadata, required_scopes: Vec::new(), tool_scopes: BTreeMap::new(), realm: None })
    }

    /// Names an authorization server (its issuer identifier) in the metadata. Without one,
    /// [`McpAuthLayer::new`] names the verifier's issuers.
    #[must_use]
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        push_new(&mut self.metadata.authorization_servers, issuer.into());
        self
    }

    /// Scopes every call needs: a token without them gets 403, and a request without a
    /// token is told them in its challenge. Listed in `scopes_supported`.
    #[must_use]
    pub fn require_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        for scope in scopes {
            let scope = scope.into();
            push_new(&mut self.metadata.scopes_supported, scope.clone());
            push_new(&mut self.required_scopes, scope);
        }
        self
    }

    /// Scopes a call of `tool` needs besides [`ProtectedResource::require_scopes`]: a call
    /// without them gets 403 `insufficient_scope` naming them, for the client to step up.
    /// Listed in `scopes_supported`.
    #[must_use]
    pub fn tool_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tool: impl Into<String>, scopes: I) -> Self {
        let needed = self.tool_scopes.entry(tool.into()).or_default();
        for scope in scopes {
            let scope = scope.into();
            push_new(&mut self.metadata.scopes_supported, scope.clone());
            push_new(needed, scope);
        }
        self
    }

    /// Lists scopes in `scopes_supported` that no call requires.
    #[must_use]
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        for scope in scopes {
            push_new(&mut self.metadata.scopes_supported, scope.into());
        }
        self
    }

    /// Names the protection space in `WWW-Authenticate` (`realm="..."`).
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// A name for people (`resource_name`).
    #[must_use]
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.resource_name = Some(name.into());
        self
    }

    /// The canonical URI.
    pub fn resource(&self) -> &HttpsUrl {
        &self.resource
    }

    /// The RFC 9728 document as served.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.metadata
    }

    /// Where the document is served (RFC 9728 §3.1).
    pub fn metadata_url(&self) -> HttpsUrl {
        protected_resource::metadata_url(&self.resource)
    }

    /// Every scope a call of `tools` needs.
    fn needed_for(&self, tools: &[String]) -> Vec<String> {
        let mut needed = Vec::new();
        for scope in self.required_scopes.iter().chain(tools.iter().filter_map(|t| self.tool_scopes.get(t)).flatten()) {
            push_new(&mut needed, scope.clone());
        }
        needed
    }
}

fn push_new(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// The token the request presented, verified: for a tool to exchange for an upstream API's
/// token (RFC 8693, the token as `subject_token`), never to forward. `Debug` shows no token.
#[derive(Clone)]
pub struct PresentedToken(SubjectToken);

impl PresentedToken {
    /// The token as the `subject_token` of a token exchange.
    pub fn subject_token(&self) -> &SubjectToken {
        &self.0
    }
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedToken([redacted])")
    }
}

/// Guards an MCP server (see the [module](self) documentation).
///
/// ```no_run
/// # #[cfg(feature = "mcp")] {
/// use dual_auth_verify::mcp::{McpAuthLayer, ProtectedResource};
/// use dual_auth_verify::{IssuerPolicy, Verifier};
///
/// # fn layer() -> Result<McpAuthLayer, dual_auth_verify::VerifyError> {
/// let uri = "https://mcp.example.com/mcp";
/// let verifier = Verifier::builder().issuer(IssuerPolicy::new("https://idp.example.com/", uri).discovery()).build()?;
/// let resource = ProtectedResource::new(uri)?.require_scopes(["tools.read"]).tool_scopes("approve_payment", ["payments.write"]);
/// McpAuthLayer::new(verifier, resource)
/// # }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct McpAuthLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    verifier: Verifier,
    resource: ProtectedResource,
    metadata_path: String,
    metadata_json: String,
    resource_metadata_param: String,
    sessions: Sessions,
}

/// The most MCP sessions remembered with their callers; the oldest is forgotten first
/// (a forgotten session's next request is refused, and the client starts a new one).
pub const MAX_MCP_SESSIONS: usize = 10_000;

/// The `Mcp-Session-Id` header of streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";

/// Who a session belongs to: the issuer, the agent and the human of the request that
/// opened it. A request in a session must come from the same three.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Caller {
    issuer: String,
    agent: String,
    human: String,
}

impl Caller {
    fn of(subject: &DualSubject) -> Self {
        Self { issuer: subject.issuer.clone(), agent: subject.agent.id().to_owned(), human: subject.human.sub().to_owned() }
    }
}

/// Sessions by id, bounded, oldest first.
#[derive(Debug, Default)]
struct Sessions {
    table: std::sync::Mutex<(std::collections::HashMap<String, Caller>, std::collections::VecDeque<String>)>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, (std::collections::HashMap<String, Caller>, std::collections::VecDeque<String>)> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `caller` may use session `id`: a session opened by another caller, or one
    /// this layer never saw opened, is refused.
    fn admits(&self, id: &str, caller: &Caller) -> bool {
        self.lock().0.get(id) == Some(caller)
    }

    fn open(&self, id: String, caller: Caller) {
        let mut table = self.lock();
        let (by_id, order) = &mut *table;
        if by_id.insert(id.clone(), caller).is_none() {
            order.push_back(id);
        }
        while order.len() > MAX_MCP_SESSIONS {
            if let Some(oldest) = order.pop_front() {
                by_id.remove(&oldest);
            }
        }
    }

    fn close(&self, id: &str) {
        let mut table = self.lock();
        let (by_id, order) = &mut *table;
        if by_id.remove(id).is_some() {
            order.retain(|known| known != id);
        }
    }
}

impl McpAuthLayer {
    /// A layer verifying with `verifier` for `resource`.
    ///
    /// # Errors
    /// [`VerifyError::Configuration`] when an issuer's audience is not exactly the
    /// resource's canonical URI (RFC 8707: a token names the resource it is for).
    pub fn new(verifier: Verifier, mut resource: ProtectedResource) -> Result<Self, VerifyError> {
        let canonical = protected_resource::resource_identifier(&resource.resource);
        let configuration = |setting: &'static str, reason: String| VerifyError::Configuration { setting, reason };
        for (issuer, audiences) in verifier.issuer_audiences() {
            if audiences.iter().any(|a| a != canonical) {
                return Err(VerifyError::Configuration {
                    setting: "IssuerPolicy::audience",
                    reason: format!(
                        "an MCP server's tokens must name its canonical URI {canonical} as their audience, and only that; \
                         the policy for issuer {issuer} takes {audiences:?}: use IssuerPolicy::new(issuer, {canonical:?})"
                    ),
                });
            }
        }
        let issuers: Vec<String> = verifier.issuer_audiences().map(|(issuer, _)| issuer.to_owned()).collect();
        if let Some(unknown) = resource.metadata.authorization_servers.iter().find(|a| !issuers.contains(a)) {
            return Err(configuration(
                "ProtectedResource::authorization_server",
                format!("{unknown:?} is not an issuer the verifier trusts: a client would get tokens this server refuses"),
            ));
        }
        if resource.metadata.authorization_servers.is_empty() {
            resource.metadata.authorization_servers = issuers;
        }
        if let Some(bad) = resource.metadata.scopes_supported.iter().find(|s| !is_scope_token(s)) {
            return Err(configuration(
                "ProtectedResource scopes",
                format!("{bad:?} is not a scope (RFC 6749 §3.3: printable ASCII without space, `\"` or `\\`)"),
            ));
        }
        resource.metadata.dpop_signing_alg_values_supported = crate::DPOP_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect();
        resource.metadata.dpop_bound_access_tokens_required = verifier.all_issuers_require_dpop();
        let metadata_json = serde_json::to_string(&resource.metadata)
            .map_err(|e| VerifyError::Configuration { setting: "ProtectedResource", reason: e.to_string() })?;
        let metadata_url = resource.metadata_url();
        let shared = Shared {
            metadata_path: protected_resource::metadata_path(&resource.resource),
            resource_metadata_param: format!("resource_metadata=\"{}\"", metadata_url.as_str()),
            metadata_json,
            verifier,
            resource,
            sessions: Sessions::default(),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The resource guarded.
    pub fn resource(&self) -> &ProtectedResource {
        &self.shared.resource
    }
}

impl<S> Layer<S> for McpAuthLayer {
    type Service = McpAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpAuthService { inner, shared: self.shared.clone() }
    }
}

/// The service [`McpAuthLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct McpAuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for McpAuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: http_body::Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<String> + Send,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let shared = self.shared.clone();
        Box::pin(async move {
            if request.method() == http::Method::GET && request.uri().path() == shared.metadata_path {
                return Ok(metadata_response(&shared.metadata_json));
            }
            let (request, caller) = match shared.admit(request).await {
                Ok(admitted) => admitted,
                Err(refusal) => return Ok(refusal),
            };
            let closing = (request.method() == http::Method::DELETE).then(|| session_id(request.headers())).flatten();
            let response = inner.call(request).await?;
            // The session the server opened belongs to the caller who opened it.
            if let Some(id) = session_id(response.headers()) {
                shared.sessions.open(id, caller);
            }
            if let Some(id) = closing.filter(|_| response.status().is_success()) {
                shared.sessions.close(&id);
            }
            Ok(response)
        })
    }
}

impl Shared {
    /// The request, verified and with the subject in its extensions, or the answer.
    async fn admit<B, R>(&self, request: http::Request<B>) -> Result<(http::Request<B>, Caller), http::Response<R>>
    where
        B: http_body::Body + From<Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        R: From<String>,
    {
        let dpop_scheme = crate::dpop::uses_dpop_scheme(request.headers());
        let subject = match self.verifier.verify_headers(request.method(), request.uri(), request.headers()).await {
            Ok(subject) => subject,
            Err(error) => return Err(self.refuse(&error, dpop_scheme)),
        };
        // verify_headers read this token: it is there, one word, not empty.
        let token = crate::verifier::presented_token(request.headers()).map(|t| SubjectToken::new(t, SubjectTokenType::AccessToken));
        let Some(Ok(token)) = token else {
            return Err(plain(http::StatusCode::INTERNAL_SERVER_ERROR, "The verified token could not be kept"));
        };
        let caller = Caller::of(&subject);
        if let Some(id) = session_id(request.headers())
            && !self.sessions.admits(&id, &caller)
        {
            // As for an ended session (the client starts a new one); another caller's
            // session is never joined.
            return Err(plain(http::StatusCode::NOT_FOUND, "No such session for this caller"));
        }
        let (mut parts, body) = request.into_parts();
        let (body, tools) = if parts.method == http::Method::POST && !self.resource.tool_scopes.is_empty() {
            // The tool called must be known for sure: what the layer cannot read, it refuses.
            if parts.headers.get(http::header::CONTENT_ENCODING).is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity")) {
                return Err(plain(http::StatusCode::UNSUPPORTED_MEDIA_TYPE, "The request body must not be content-encoded"));
            }
            let bytes = match http_body_util::Limited::new(body, MAX_MCP_REQUEST_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Err(plain(http::StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large"));
                }
                Err(_) => return Err(plain(http::StatusCode::BAD_REQUEST, "The request body could not be read")),
            };
            let Some(tools) = tools_called(&bytes) else {
                return Err(plain(http::StatusCode::BAD_REQUEST, "The request body is not a JSON-RPC message"));
            };
            (B::from(bytes), tools)
        } else {
            (body, Vec::new())
        };
        let needed = self.resource.needed_for(&tools);
        if needed.iter().any(|scope| !subject.has_scope(scope)) {
            // The challenge names every scope the call needs (RFC 6750 §3), not only
            // those missing: a client that replaces its scopes gets them all.
            return Err(self.refuse(&VerifyError::InsufficientScope { missing: needed }, dpop_scheme));
        }
        parts.extensions.insert(subject);
        parts.extensions.insert(PresentedToken(token));
        Ok((http::Request::from_parts(parts, body), caller))
    }

    fn refuse<R: From<String>>(&self, error: &VerifyError, dpop_scheme: bool) -> http::Response<R> {
        // Every 401 names the scopes every call needs, so a client asks for those and no more.
        let scope = match error {
            VerifyError::InsufficientScope { .. } => None,
            _ if self.resource.required_scopes.is_empty() => None,
            _ => Some(format!("scope=\"{}\"", self.resource.required_scopes.join(" "))),
        };
        let challenges: Vec<String> = self
            .verifier
            .challenges(error, self.resource.realm.as_deref(), dpop_scheme)
            .into_iter()
            .map(|challenge| {
                let mut params: Vec<&str> = scope.iter().map(String::as_str).collect();
                params.push(&self.resource_metadata_param);
                match challenge.split_once(' ') {
                    Some(_) => format!("{challenge}, {}", params.join(", ")),
                    None => format!("{challenge} {}", params.join(", ")),
                }
            })
            .collect();
        crate::layer::rejection(error, &challenges)
    }
}

/// The tools a JSON-RPC message (or batch) calls; `None` for a body that is not a JSON
/// object or array of objects, or a `tools/call` without a string `params.name`.
fn tools_called(body: &[u8]) -> Option<Vec<String>> {
    let value = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let messages: Vec<&serde_json::Value> = match &value {
        serde_json::Value::Array(batch) => batch.iter().collect(),
        single => vec![single],
    };
    let mut tools = Vec::new();
    for message in messages {
        let message = message.as_object()?;
        if message.get("method").and_then(serde_json::Value::as_str) == Some("tools/call") {
            tools.push(message.get("params")?.get("name")?.as_str()?.to_owned());
        }
    }
    Some(tools)
}

/// A request's or response's `Mcp-Session-Id`.
fn session_id(headers: &http::HeaderMap) -> Option<String> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// An RFC 6749 §3.3 scope token: `%x21 / %x23-5B / %x5D-7E`, at least one.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn metadata_response<B: From<String>>(json: &str) -> http::Response<B> {
    let mut response = http::Response::new(B::from(json.to_owned()));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("max-age=300"));
    response
}

fn plain<B: From<String>>(status: http::StatusCode, description: &str) -> http::Response<B> {
    let body = serde_json::json!({"error": "invalid_request", "error_description": description}).to_string();
    let mut response = http::Response::new(B::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_called_are_read_from_single_and_batched_messages() {
        let single = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"approve"}}"#;
        assert_eq!(tools_called(single), Some(vec!["approve".to_owned()]));
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"a"}}]"#;
        assert_eq!(tools_called(batch), Some(vec!["a".to_owned()]));
        // What cannot be read for sure is refused, never waved through.
        assert_eq!(tools_called(b"not json"), None);
        assert_eq!(tools_called(br#"[{"method":"tools/call","params":{}}]"#), None);
        assert_eq!(tools_called(br#"{"method":"tools/call","params":{"name":7}}"#), None);
        assert_eq!(tools_called(br#"[1]"#), None);
        assert_eq!(tools_called(br#"{"method":"tools/list"}"#), Some(vec![]));
        assert!(is_scope_token("finance.read") && !is_scope_token("a b") && !is_scope_token("a\"b") && !is_scope_token(""));
    }

    #[test]
    fn a_resource_lists_every_scope_once() {
        let resource = ProtectedResource::new("https://mcp.example.com/mcp")
            .unwrap_or_else(|e| unreachable!("{e}"))
            .require_scopes(["a"])
            .tool_scopes("t", ["b", "a"])
            .scopes_supported(["c", "b"]);
        assert_eq!(resource.metadata().scopes_supported, vec!["a", "b", "c"]);
        assert_eq!(resource.metadata_url().as_str(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
        assert!(matches!(ProtectedResource::new("https://mcp.example.com/mcp#f"), Err(VerifyError::Configuration { .. })));
    }
}
