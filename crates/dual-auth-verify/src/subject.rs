//! What a verified request names: the agent, the human, and any earlier actors.

use std::time::SystemTime;

use dual_auth_core::Act;
use serde::Serialize;

/// An actor: the agent presenting the token, or an earlier one in a delegation chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Actor {
    /// Its subject identifier at the issuer (`sub`, or `act.sub`).
    pub sub: String,
    /// Its OAuth client id, when the token says (`client_id`, `azp`, `cid` or `appid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Actor {
    /// An actor with a subject and, optionally, a client id.
    pub fn new(sub: impl Into<String>, client_id: Option<String>) -> Self {
        Self { sub: sub.into(), client_id }
    }

    /// The client id if known, else the subject: the name to authorise and audit by.
    pub fn id(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.sub)
    }
}

/// Who vouched for the human, as far as the token shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VouchedBy {
    /// The identity provider, which verified the human's evidence (the delegated and
    /// RFC 8693 layouts: the human is the token's own subject).
    IdentityProvider,
    /// The application, which signed the act assertion beside the token (Entra ID's
    /// act-assertion layout).
    Application,
    /// The agent alone: the guide's self-asserted `act`, which the identity provider copied
    /// from the agent's own client assertion (the dual-auth layout).
    Agent,
}

impl VouchedBy {
    /// The name written to logs and JSON: `identity-provider`, `application`, `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdentityProvider => "identity-provider",
            Self::Application => "application",
            Self::Agent => "agent",
        }
    }
}

/// A verified request's two identities, the same whichever layout the issuer uses.
///
/// `Debug` shows the human's `sub` only (no e-mail or name); `Serialize` writes
/// everything, for an API that chooses to return or store it.
///
/// ```
/// use dual_auth_verify::{Actor, DualSubject};
/// # fn check(subject: &DualSubject) {
/// // In a handler: authorise and audit against both identities.
/// let agent: &Actor = &subject.agent;
/// let human = subject.human.sub();
/// assert!(subject.chain.is_empty(), "direct delegation: no earlier actors");
/// tracing::info!(agent = agent.id(), human, "report read");
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DualSubject {
    /// The issuer that vouched for both.
    pub issuer: String,
    /// The agent (the OAuth client) presenting the token.
    pub agent: Actor,
    /// The human on whose behalf the agent acts.
    pub human: Act,
    /// Earlier actors, nearest first, when delegation went through several agents
    /// (RFC 8693 nested `act`): `chain[0]` delegated to `agent`. Empty for direct delegation.
    pub chain: Vec<Actor>,
    /// The token's scopes (`scope` and `scp`).
    pub scopes: Vec<String>,
    /// When the token expires.
    #[serde(serialize_with = "unix_seconds")]
    pub expires_at: SystemTime,
    /// Who vouched for the human (from the issuer's layout).
    pub vouched_by: VouchedBy,
    /// For a DPoP-bound request (RFC 9449), the RFC 7638 thumbprint of the key the token is
    /// bound to and the proof was signed with (the token's `cnf.jkt`); `None` for a bearer
    /// token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

impl DualSubject {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the request was DPoP-bound: the token came with a proof of its key.
    pub fn is_dpop_bound(&self) -> bool {
        self.dpop_jkt.is_some()
    }
}

/// A verified OpenID Connect ID token ([`crate::Verifier::verify_id_token`]): who logged
/// in to the relying party. `Debug` shows the issuer and `sub` only.
#[derive(Clone)]
#[non_exhaustive]
pub struct IdToken {
    /// The issuer that authenticated the user.
    pub issuer: String,
    /// The user's `sub` at that issuer.
    pub subject: String,
    /// When the ID token expires.
    pub expires_at: SystemTime,
    /// All its claims (`email`, `name`, `preferred_username`, … as the issuer wrote them).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdToken").field("issuer", &self.issuer).field("subject", &self.subject).finish_non_exhaustive()
    }
}

fn unix_seconds<S: serde::Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}
