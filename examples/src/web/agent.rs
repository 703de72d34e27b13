//! The agent: gets a dual-subject token for the signed-in user in the mode the user picked,
//! and calls the finance API with it.

use std::sync::Arc;

use dual_auth::ErrorChain;
use dual_auth::prelude::*;
use serde_json::{Value, json};

/// How the agent proves the human, as the user picks it on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In-session, verified: the agent exchanges the user's access token (RFC 8693); the
    /// identity provider checks it and vouches for the user.
    Verified,
    /// Out-of-session, verified: the application hands the user's access token to a
    /// remote agent, which exchanges it.
    Remote,
    /// In-session, the guide's compatibility mode: the agent writes the user's `act` into
    /// its own client assertion; only the agent vouches for the user.
    Guide,
}

impl Mode {
    /// The form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "token-exchange",
            Self::Remote => "out-of-session",
            Self::Guide => "self-asserted",
        }
    }

    /// The form value back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Verified, Self::Remote, Self::Guide].into_iter().find(|m| m.as_str() == text)
    }

    /// What the page says the evidence was.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Verified => "in-session token exchange (RFC 8693): the identity provider verified your sign-in",
            Self::Remote => "out-of-session: the application handed your token to a remote agent, which exchanged it (RFC 8693)",
            Self::Guide => "the guide's self-asserted act: only the agent vouches for you (compatibility mode)",
        }
    }

    /// The finance API route for the token this mode gives.
    fn api_path(self) -> &'static str {
        match self {
            Self::Guide => "guide",
            _ => "delegated",
        }
    }
}

/// What came of a task: the API's status and answer, or what stopped it first.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    /// The mode used.
    pub mode: Mode,
    /// The finance API's HTTP status, when it was reached.
    pub status: Option<u16>,
    /// What the API answered (JSON), when it was reached.
    pub seen: Option<Value>,
    /// What went wrong, if anything (already free of secrets).
    pub problem: Option<String>,
}

impl TaskOutcome {
    fn failed(mode: Mode, problem: String) -> Self {
        Self { mode, status: None, seen: None, problem: Some(problem) }
    }

    /// Whether the API served the request.
    pub fn succeeded(&self) -> bool {
        self.status == Some(200) && self.problem.is_none()
    }

    /// As the remote agent answers it.
    pub(crate) fn to_json(&self) -> Value {
        json!({"mode": self.mode.as_str(), "status": self.status, "seen": self.seen, "problem": self.problem})
    }

    /// From the remote agent's answer.
    pub(crate) fn from_json(mode: Mode, answer: &Value) -> Self {
        Self {
            mode,
            status: answer["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
            seen: answer.get("seen").filter(|v| !v.is_null()).cloned(),
            problem: answer["problem"].as_str().map(str::to_owned),
        }
    }
}

/// The agent's settings and its clients.
pub(crate) struct Agent {
    pub(crate) id: String,
    scopes: Vec<String>,
    tokens: InSessionTokenRequest,
    api: ApiClient,
    api_url: String,
}

impl Agent {
    pub(crate) fn new(id: String, scopes: Vec<String>, adapter: Arc<dyn IamAdapter>, api: ApiClient, api_url: String) -> Self {
        Self { id, scopes, tokens: InSessionTokenRequest::new(adapter), api, api_url }
    }

    /// A token for the human `evidence` proves (verified modes), then the API call.
    pub(crate) async fn act_for(&self, mode: Mode, evidence: &SubjectToken, report: &str) -> TaskOutcome {
        match self.tokens.request_delegated_token(&self.id, evidence, self.scopes.iter().cloned()).await {
            Ok(token) => self.call(mode, &token, report).await,
            Err(e) => TaskOutcome::failed(mode, format!("the identity provider refused the delegation: {}", ErrorChain(&e))),
        }
    }

    /// A token with the guide's self-asserted `act`, then the API call.
    pub(crate) async fn assert_for(&self, act: &Act, report: &str) -> TaskOutcome {
        match self.tokens.request_token(&self.id, act, self.scopes.iter().cloned()).await {
            Ok(token) => self.call(Mode::Guide, &token, report).await,
            Err(e) => TaskOutcome::failed(Mode::Guide, format!("the identity provider refused the token request: {}", ErrorChain(&e))),
        }
    }

    async fn call(&self, mode: Mode, token: &TokenResponse, report: &str) -> TaskOutcome {
        let url = format!("{}/{}/reports/{report}", self.api_url, mode.api_path());
        match self.api.call_api(token, ApiRequest::get(url)).await {
            Ok(response) if response.status() == 200 => TaskOutcome { mode, status: Some(200), seen: response.json().ok(), problem: None },
            Ok(response) => {
                let why =
                    response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map_or_else(|| response.text(), str::to_owned);
                TaskOutcome {
                    mode,
                    status: Some(response.status()),
                    seen: None,
                    problem: Some(format!("the finance API refused the token ({}): {why}", response.status())),
                }
            }
            Err(e) => TaskOutcome::failed(mode, format!("the finance API could not be called: {}", ErrorChain(&e))),
        }
    }
}
