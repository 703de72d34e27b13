//! Calling an MCP server's tools with a dual-subject token, through the official SDK
//! (`rmcp`): [`McpHttpClient`] is an `rmcp` streamable-HTTP client that gets its tokens
//! from one of our grants ([`McpTokenSource`]).
//!
//! What it does, as the MCP authorization specification asks of a client:
//! - on `401`, reads the challenge's `resource_metadata` (or the well-known URL of the
//!   server, RFC 9728 §3.1), fetches the document over HTTPS, checks that it is about the
//!   server called (§3.3), and asks the token source for a token for that resource
//!   (RFC 8707 `resource`, where the grant takes it) with the challenge's scopes, or the
//!   document's `scopes_supported`; then sends the request again, once;
//! - on `403 insufficient_scope`, asks once for a token with the union of the scopes it
//!   holds and those the challenge names, and sends the request again;
//! - signs a fresh `X-Act-Assertion` for each request when the token has an act assertion
//!   source (Entra ID's hybrid mode).
//!
//! HTTPS only, with the client [`HttpSettings`] build (no redirects, timeouts). A DPoP-bound
//! token is refused: `rmcp` sends `Bearer` only, so DPoP is not supported here.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dual_auth_api::mcp::{DelegatedTokens, McpHttpClient, ResourceParameter};
//! use dual_auth_api::mcp::rmcp::ServiceExt;
//!
//! # async fn run(adapter: Arc<dyn dual_auth_core::IamAdapter>, evidence: dual_auth_core::SubjectToken) -> Result<(), Box<dyn std::error::Error>> {
//! let tokens = DelegatedTokens::new(adapter, "finance-agent", evidence, ResourceParameter::Resource);
//! let client = McpHttpClient::new("https://mcp.example.com/mcp", Arc::new(tokens), dual_auth_api::default_api_settings())?;
//! let mcp = ().serve(client.transport()).await?;
//! let tools = mcp.list_all_tools().await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use dual_auth_core::http::{BodyError, HttpsUrl, read_body};
use dual_auth_core::protected_resource::{self, MAX_METADATA_BYTES, ProtectedResourceError, ProtectedResourceMetadata};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::token_endpoint::{HttpSettings, HttpSetupError};
use dual_auth_core::{Act, DelegationRequest, IamAdapter, IamError, SubjectToken, TokenRequest, TokenResponse};
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;
use tokio::sync::Mutex;

/// Re-exported so users name the `rmcp` version this client implements.
pub use rmcp;

/// What a token is asked for: the resource (the MCP server's canonical URI), the scopes,
/// and the authorization servers the resource's metadata names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTarget {
    resource: HttpsUrl,
    scopes: Vec<String>,
    authorization_servers: Vec<String>,
}

impl TokenTarget {
    /// A target of `scopes` at `resource`, naming no authorization server (for a token
    /// asked for before any challenge, or by a custom [`McpTokenSource`]).
    pub fn new<S: Into<String>>(resource: HttpsUrl, scopes: impl IntoIterator<Item = S>) -> Self {
        Self { resource, scopes: scopes.into_iter().map(Into::into).collect(), authorization_servers: Vec::new() }
    }

    /// The resource the token is for (RFC 8707).
    pub fn resource(&self) -> &HttpsUrl {
        &self.resource
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The issuers the resource trusts (RFC 9728 `authorization_servers`).
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }
}

/// Where an [`McpHttpClient`] gets its tokens: one of the workspace's grants.
#[async_trait]
pub trait McpTokenSource: Send + Sync + fmt::Debug {
    /// A dual-subject token for `target`.
    ///
    /// # Errors
    /// The grant's [`IamError`].
    async fn token(&self, target: &TokenTarget) -> Result<TokenResponse, IamError>;

    /// Whether this source's tokens name the resource in `aud` (RFC 8707): then a JWT whose
    /// `aud` does not is refused before it is sent, so a server cannot obtain, through its
    /// challenge, a token meant for another API. `false` where the scopes name the API
    /// (Entra ID), whose tokens carry the API's client id.
    fn names_resource(&self) -> bool {
        true
    }
}

/// How a delegation grant names the resource a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceParameter {
    /// RFC 8707 `resource` (Auth0 with its Resource Parameter Compatibility Profile, and
    /// any RFC 8693 server that reads it).
    Resource,
    /// RFC 8693 `audience` = the resource's URI (Keycloak, whose audience is a client id:
    /// give the MCP server's client that id; Okta).
    Audience,
    /// Neither: the scopes name it (Entra ID on-behalf-of, `api://mcp-server/.default`).
    /// Only scopes starting with this prefix (`api://mcp-server/`) are asked for: a server
    /// naming another API's scopes in its challenge gets no token for that API.
    ScopesOf(String),
}

/// A verified mode: the human's evidence exchanged with the vendor's delegation grant
/// (RFC 8693 token exchange, Entra ID on-behalf-of, the JWT authorization grant).
#[derive(Debug, Clone)]
pub struct DelegatedTokens {
    adapter: Arc<dyn IamAdapter>,
    agent_id: String,
    evidence: SubjectToken,
    parameter: ResourceParameter,
}

impl DelegatedTokens {
    /// Tokens for `agent_id` acting for the human `evidence` proves, the resource named by
    /// `parameter`.
    pub fn new(adapter: Arc<dyn IamAdapter>, agent_id: impl Into<String>, evidence: SubjectToken, parameter: ResourceParameter) -> Self {
        Self { adapter, agent_id: agent_id.into(), evidence, parameter }
    }
}

#[async_trait]
impl McpTokenSource for DelegatedTokens {
    async fn token(&self, target: &TokenTarget) -> Result<TokenResponse, IamError> {
        let request = DelegationRequest::new(self.agent_id.as_str(), self.evidence.clone(), target.scopes.iter().cloned())?;
        let resource = protected_resource::resource_identifier(&target.resource);
        let request = match &self.parameter {
            ResourceParameter::Resource => request.with_resource(resource),
            ResourceParameter::Audience => request.with_audience(resource),
            ResourceParameter::ScopesOf(prefix) => {
                if let Some(other) = target.scopes.iter().find(|s| !s.starts_with(prefix.as_str())) {
                    return Err(IamError::InvalidRequest {
                        reason: format!(
                            "the MCP server asked for the scope {}, which is not of {prefix}: no token for another API",
                            dual_auth_core::truncate_untrusted(other, 100)
                        ),
                    });
                }
                request
            }
        };
        self.adapter.request_delegated_token(&request).await
    }

    fn names_resource(&self) -> bool {
        !matches!(self.parameter, ResourceParameter::ScopesOf(_))
    }
}

/// The guide's self-asserted mode: the agent writes the act into its own client assertion.
/// It names no resource, so the vendor's configured audience must be the MCP server's URI;
/// prefer [`DelegatedTokens`].
#[derive(Debug, Clone)]
pub struct SelfAssertedTokens {
    adapter: Arc<dyn IamAdapter>,
    agent_id: String,
    act: Act,
}

impl SelfAssertedTokens {
    /// Tokens for `agent_id` acting for `act`.
    pub fn new(adapter: Arc<dyn IamAdapter>, agent_id: impl Into<String>, act: Act) -> Self {
        Self { adapter, agent_id: agent_id.into(), act }
    }
}

#[async_trait]
impl McpTokenSource for SelfAssertedTokens {
    async fn token(&self, target: &TokenTarget) -> Result<TokenResponse, IamError> {
        let request = TokenRequest::new(self.agent_id.as_str(), self.act.clone(), target.scopes.iter().cloned())?;
        self.adapter.request_token(&request).await
    }
}

/// Why an MCP request could not get or use a token. It reaches the caller inside rmcp's
/// errors (`StreamableHttpError::Client`), which print it but do not chain its `source()`:
/// so, unlike the workspace's other errors, each message here is whole, its cause included.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpClientError {
    /// The HTTP request failed.
    #[error("the MCP request failed: {}", dual_auth_core::ErrorChain(.0))]
    Http(reqwest::Error),
    /// The client's HTTP settings are unusable.
    #[error("the MCP client's HTTP settings are unusable: {}", dual_auth_core::ErrorChain(.0))]
    Setup(HttpSetupError),
    /// The server's URL is not an `https://` canonical resource identifier, or the
    /// transport was pointed at another URL than the client's.
    #[error("the MCP server URL is refused: {}", dual_auth_core::ErrorChain(.0))]
    ServerUrl(ProtectedResourceError),
    /// The metadata document could not be fetched.
    #[error(
        "the protected resource metadata at {url} could not be fetched{}{}",
        status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
    )]
    MetadataUnavailable {
        /// Where it was looked for, without query.
        url: String,
        /// The status answered, if any.
        status: Option<u16>,
        /// Why no answer came, if none did.
        reason: Option<String>,
    },
    /// The metadata document is unusable or about another resource.
    #[error("the protected resource metadata is refused: {}", dual_auth_core::ErrorChain(.0))]
    Metadata(ProtectedResourceError),
    /// The challenge names no scope and the metadata lists none.
    #[error("the MCP server named no scope to ask for: neither its challenge nor its metadata lists one")]
    NoScopes,
    /// The grant gave no token.
    #[error("no token for {resource}: {}", dual_auth_core::ErrorChain(error))]
    Token {
        /// The resource the token was for.
        resource: String,
        /// The grant's error.
        error: IamError,
    },
    /// The act assertion for a request could not be signed (Entra ID's hybrid mode).
    #[error("the act assertion for the MCP request could not be signed: {}", dual_auth_core::ErrorChain(.0))]
    ActAssertion(IamError),
    /// The token the grant gave is for another audience than the resource: it is not sent.
    #[error("the token issued is not for {resource} (its aud names another audience): it is not sent")]
    WrongAudience {
        /// The resource asked for.
        resource: String,
    },
    /// What is not supported here.
    #[error("not supported: {what}")]
    NotSupported {
        /// What.
        what: &'static str,
    },
}

/// An `rmcp` streamable-HTTP client for one MCP server, getting and stepping up its tokens
/// from a [`McpTokenSource`] (see the [module](self) documentation). Clones share the token.
#[derive(Clone)]
pub struct McpHttpClient {
    http: reqwest::Client,
    resource: HttpsUrl,
    uri: Arc<str>,
    source: Arc<dyn McpTokenSource>,
    held: Arc<Mutex<Held>>,
}

/// The token held and what it was asked for.
#[derive(Default)]
struct Held {
    token: Option<TokenResponse>,
    target: Option<TokenTarget>,
    /// How many tokens the source gave: what tests and logs count step-ups by.
    issued: u64,
}

impl fmt::Debug for McpHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpHttpClient").field("resource", &self.resource.as_str()).field("source", &self.source).finish_non_exhaustive()
    }
}

type McpResult<T> = Result<T, StreamableHttpError<McpClientError>>;

impl McpHttpClient {
    /// A client for the MCP server at `server_url` (its canonical URI), with tokens from
    /// `source` and one HTTP client built from `settings`.
    ///
    /// # Errors
    /// [`McpClientError::ServerUrl`] for a URL that is not `https://` or has a query or a
    /// fragment; [`McpClientError::Setup`] for unusable settings.
    pub fn new(server_url: &str, source: Arc<dyn McpTokenSource>, settings: HttpSettings) -> Result<Self, McpClientError> {
        let resource = protected_resource::canonical_resource(server_url).map_err(McpClientError::ServerUrl)?;
        let http = settings.build_client().map_err(McpClientError::Setup)?;
        Ok(Self { http, uri: Arc::from(resource.as_str()), resource, source, held: Arc::default() })
    }

    /// The rmcp transport to `serve` with: this client, at the server's URL.
    pub fn transport(self) -> StreamableHttpClientTransport<Self> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.uri.clone());
        StreamableHttpClientTransport::with_client(self, config)
    }

    /// How many tokens the source has given this client (and its clones) so far.
    pub async fn tokens_issued(&self) -> u64 {
        self.held.lock().await.issued
    }

    /// The scopes of the token held, as asked for.
    pub async fn scopes(&self) -> Vec<String> {
        self.held.lock().await.target.as_ref().map(|t| t.scopes.clone()).unwrap_or_default()
    }

    /// The token to send: the one held, renewed for the same target when it expired.
    async fn current(&self) -> Result<Option<TokenResponse>, McpClientError> {
        let mut held = self.held.lock().await;
        match (&held.token, held.target.clone()) {
            (Some(token), Some(target)) if token.is_expired(SystemTime::now()) => self.fetch(&mut held, target).await.map(Some),
            (token, _) => Ok(token.clone()),
        }
    }

    async fn fetch(&self, held: &mut Held, target: TokenTarget) -> Result<TokenResponse, McpClientError> {
        let token = self
            .source
            .token(&target)
            .await
            .map_err(|error| McpClientError::Token { resource: target.resource.as_str().to_owned(), error })?;
        if token.is_dpop_bound() {
            return Err(McpClientError::NotSupported { what: "DPoP-bound tokens for MCP (rmcp sends Bearer only)" });
        }
        let resource = protected_resource::resource_identifier(&target.resource);
        if self.source.names_resource() && !audience_names(&token, resource) {
            return Err(McpClientError::WrongAudience { resource: resource.to_owned() });
        }
        tracing::debug!(resource = %target.resource.for_logs(), scopes = %target.scopes.join(" "), "MCP token issued");
        held.token = Some(token.clone());
        held.target = Some(target);
        held.issued = held.issued.saturating_add(1);
        Ok(token)
    }

    /// After a 401: the token for the resource the server's metadata describes, unless
    /// another request already got a new one.
    async fn authorize(&self, sent: Option<&TokenResponse>, challenge: &str) -> Result<TokenResponse, McpClientError> {
        // `Bearer` or `DPoP` alike: the parameters matter, not the scheme.
        let challenges = protected_resource::parse_challenges(challenge);
        let param = |name: &str| challenges.iter().find_map(|c| c.param(name));
        let candidates = match param("resource_metadata") {
            Some(url) => vec![HttpsUrl::parse(url).map_err(|e| McpClientError::Metadata(ProtectedResourceError::NotHttps(e)))?],
            // RFC 9728 §3.1's URL for the resource, then the host's root one.
            None => {
                let mut urls = vec![protected_resource::metadata_url(&self.resource)];
                let mut root = self.resource.as_url().clone();
                root.set_path(protected_resource::WELL_KNOWN_PATH);
                if let Ok(root) = HttpsUrl::from_url(root) {
                    push_unique(&mut urls, root);
                }
                urls
            }
        };
        let mut held = self.held.lock().await;
        if let Some(newer) = newer_than(&held, sent) {
            return Ok(newer);
        }
        let mut found = Err(McpClientError::NoScopes);
        for url in &candidates {
            found = self.metadata(url).await;
            if !matches!(found, Err(McpClientError::MetadataUnavailable { status: Some(404), .. })) {
                break;
            }
        }
        let metadata = found?;
        let mut scopes: Vec<String> = param("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        if scopes.is_empty() {
            scopes.clone_from(&metadata.scopes_supported);
        }
        if scopes.is_empty() {
            return Err(McpClientError::NoScopes);
        }
        let target = TokenTarget { resource: self.resource.clone(), scopes, authorization_servers: metadata.authorization_servers };
        self.fetch(&mut held, target).await
    }

    /// After a 403 `insufficient_scope`: a token with the union of the scopes held and
    /// those the challenge names, or `None` when that adds none (asking again would not help).
    async fn step_up(&self, sent: Option<&TokenResponse>, challenge: &str) -> Result<Option<TokenResponse>, McpClientError> {
        let challenges = protected_resource::parse_challenges(challenge);
        // rmcp reports any challenged 403 so; only `insufficient_scope` asks for a step-up.
        let Some(challenge) = challenges.iter().find(|c| c.param("error") == Some("insufficient_scope")) else { return Ok(None) };
        let wanted = challenge.scopes();
        let mut held = self.held.lock().await;
        let Some(mut target) = held.target.clone() else { return Ok(None) };
        let holds_all = wanted.iter().all(|s| target.scopes.contains(s));
        match newer_than(&held, sent) {
            // Another request stepped up meanwhile, to all that is wanted here: its token.
            Some(newer) if holds_all => return Ok(Some(newer)),
            // The token refused already had them all: asking again would not help.
            None if holds_all => return Ok(None),
            _ => {}
        }
        for scope in wanted {
            push_unique(&mut target.scopes, scope);
        }
        self.fetch(&mut held, target).await.map(Some)
    }

    async fn metadata(&self, url: &HttpsUrl) -> Result<ProtectedResourceMetadata, McpClientError> {
        let unavailable = |status| McpClientError::MetadataUnavailable { url: url.for_logs(), status, reason: None };
        let response = self.http.get(url.as_str()).header(http::header::ACCEPT, "application/json").send().await.map_err(|e| {
            let reason = Some(dual_auth_core::ErrorChain(&e.without_url()).to_string());
            McpClientError::MetadataUnavailable { url: url.for_logs(), status: None, reason }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(Some(status.as_u16())));
        }
        let body = read_body(response, MAX_METADATA_BYTES).await.map_err(|e| match e {
            BodyError::TooLarge { max } => {
                McpClientError::Metadata(ProtectedResourceError::InvalidMetadata { reason: format!("it is larger than {max} bytes") })
            }
            _ => unavailable(Some(status.as_u16())),
        })?;
        ProtectedResourceMetadata::parse_for(&body, &self.resource).map_err(McpClientError::Metadata)
    }

    /// The headers for one request with `token`: the caller's, plus a fresh act assertion.
    fn headers_for(
        token: Option<&TokenResponse>,
        mut headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<HashMap<HeaderName, HeaderValue>, McpClientError> {
        if let Some(token) = token
            && let Some(assertion) = token.new_act_assertion().map_err(McpClientError::ActAssertion)?
        {
            let mut value = HeaderValue::from_str(assertion.expose_secret())
                .map_err(|_| McpClientError::NotSupported { what: "an act assertion that is not a valid header value" })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(ACT_ASSERTION_HEADER_NAME), value);
        }
        Ok(headers)
    }

    /// Sends with the token held; on 401 authorizes, on 403 steps up, and sends again once.
    async fn send<T, F, Fut>(&self, uri: &Arc<str>, headers: HashMap<HeaderName, HeaderValue>, call: F) -> McpResult<T>
    where
        F: Fn(Option<String>, HashMap<HeaderName, HeaderValue>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<reqwest::Error>>>,
    {
        if **uri != *self.uri {
            let mismatch = ProtectedResourceError::ResourceMismatch {
                expected: self.uri.to_string(),
                advertised: dual_auth_core::truncate_untrusted(uri, 200),
            };
            return Err(StreamableHttpError::Client(McpClientError::ServerUrl(mismatch)));
        }
        let client = |e| StreamableHttpError::Client(e);
        let token = self.current().await.map_err(client)?;
        let secret = |t: Option<&TokenResponse>| t.map(|t| t.access_token().expose_secret().to_owned());
        let first = call(secret(token.as_ref()), Self::headers_for(token.as_ref(), headers.clone()).map_err(client)?).await;
        let renewed = match first {
            Err(StreamableHttpError::AuthRequired(challenge)) => self.authorize(token.as_ref(), &challenge.www_authenticate_header).await,
            Err(StreamableHttpError::InsufficientScope(challenge)) => {
                match self.step_up(token.as_ref(), &challenge.www_authenticate_header).await {
                    Ok(Some(token)) => Ok(token),
                    Ok(None) => return Err(StreamableHttpError::InsufficientScope(challenge)),
                    Err(e) => Err(e),
                }
            }
            other => return other.map_err(converted),
        }
        .map_err(client)?;
        call(secret(Some(&renewed)), Self::headers_for(Some(&renewed), headers).map_err(client)?).await.map_err(converted)
    }
}

/// [`dual_auth_core::ACT_ASSERTION_HEADER`] lower-cased, as `http` wants header names.
const ACT_ASSERTION_HEADER_NAME: &str = "x-act-assertion";

/// Whether the token's `aud` names `resource`; an opaque token (not a JWT) cannot be read and
/// passes.
fn audience_names(token: &TokenResponse, resource: &str) -> bool {
    let Ok(jwt) = dual_auth_core::dangerous::UnverifiedJwt::parse(token.access_token().expose_secret()) else { return true };
    match jwt.claims().get("aud") {
        Some(serde_json::Value::String(aud)) => aud == resource,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(resource)),
        _ => false,
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, value: T) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// The token held when it is not the one `sent` (another request renewed it meanwhile).
fn newer_than(held: &Held, sent: Option<&TokenResponse>) -> Option<TokenResponse> {
    let held_token = held.token.as_ref()?;
    let same = sent.is_some_and(|s| s.access_token().expose_secret() == held_token.access_token().expose_secret());
    (!same && !held_token.is_expired(SystemTime::now())).then(|| held_token.clone())
}

/// rmcp's error for the reqwest client, as this client's.
fn converted(error: StreamableHttpError<reqwest::Error>) -> StreamableHttpError<McpClientError> {
    use StreamableHttpError as E;
    match error {
        E::Client(e) => E::Client(McpClientError::Http(e.without_url())),
        E::Sse(e) => E::Sse(e),
        E::Io(e) => E::Io(e),
        E::HttpStatus(e) => E::HttpStatus(e),
        E::UnexpectedEndOfStream => E::UnexpectedEndOfStream,
        E::UnexpectedServerResponse(e) => E::UnexpectedServerResponse(e),
        E::ResponseBodyTooLarge { max_size } => E::ResponseBodyTooLarge { max_size },
        E::UnexpectedContentType(e) => E::UnexpectedContentType(e),
        E::ServerDoesNotSupportSse => E::ServerDoesNotSupportSse,
        E::ServerDoesNotSupportDeleteSession => E::ServerDoesNotSupportDeleteSession,
        E::TokioJoinError(e) => E::TokioJoinError(e),
        E::Deserialize(e) => E::Deserialize(e),
        E::TransportChannelClosed => E::TransportChannelClosed,
        E::MissingSessionIdInResponse => E::MissingSessionIdInResponse,
        E::AuthRequired(e) => E::AuthRequired(e),
        E::InsufficientScope(e) => E::InsufficientScope(e),
        E::ReservedHeaderConflict(e) => E::ReservedHeaderConflict(e),
        E::SessionExpired => E::SessionExpired,
        E::SessionRecoveryTimeout => E::SessionRecoveryTimeout,
        E::ReinitializationFailed(e) => E::ReinitializationFailed(e),
        E::ControlRequestTimeout => E::ControlRequestTimeout,
        // A variant a later rmcp adds: kept as its message.
        other => E::UnexpectedServerResponse(other.to_string().into()),
    }
}

impl StreamableHttpClient for McpHttpClient {
    type Error = McpClientError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> McpResult<StreamableHttpPostResponse> {
        self.post_message_with_response_limits(uri, message, session_id, None, custom_headers, StreamableHttpResponseLimits::default())
            .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> McpResult<StreamableHttpPostResponse> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(uri, message, session_id, None, custom_headers, limits).await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> McpResult<StreamableHttpPostResponse> {
        self.send(&uri, custom_headers, |token, headers| {
            self.http.post_message_with_response_limits(uri.clone(), message.clone(), session_id.clone(), token, headers, limits)
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> McpResult<()> {
        self.send(&uri, custom_headers, |token, headers| self.http.delete_session(uri.clone(), session_id.clone(), token, headers)).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> McpResult<BoxStream<'static, Result<Sse, SseError>>> {
        self.send(&uri, custom_headers, |token, headers| {
            self.http.get_stream(uri.clone(), session_id.clone(), last_event_id.clone(), token, headers)
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> McpResult<BoxStream<'static, Result<Sse, SseError>>> {
        self.send(&uri, custom_headers, |token, headers| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}
