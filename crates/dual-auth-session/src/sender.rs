//! The application side: shaping the human identity, and signing it for remote agents.

use std::path::Path;
use std::time::Duration;

use dual_auth_core::secrecy::SecretString;
use dual_auth_core::{Act, ActJwtSigner, SigningKey, UserSession};
use serde_json::{Map, Value};

use crate::error::SessionError;

/// Extracts the human identity from an authenticated session and prepares it for an agent:
/// in memory (in-session) or as a signed act JWT (out-of-session).
///
/// ```
/// use dual_auth_core::UserSession;
/// use dual_auth_session::HybridSender;
///
/// let sender = HybridSender::in_session();
/// let act = sender.extract_act_from_session(&UserSession::new("alice@corp.example.com").with_user_id("user_12345"))?;
/// assert_eq!(sender.prepare_in_session_act(act).sub(), "user_12345");
/// # Ok::<(), dual_auth_session::SessionError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HybridSender {
    signer: Option<ActJwtSigner>,
}

impl HybridSender {
    /// A sender for in-session agents only (no key).
    pub fn in_session() -> Self {
        Self { signer: None }
    }

    /// A sender that can also sign act JWTs for remote agents.
    pub fn with_signer(signer: ActJwtSigner) -> Self {
        Self { signer: Some(signer) }
    }

    /// A sender signing with the PEM private key at `path` (the guide's `APP_PRIVATE_KEY_PATH`).
    ///
    /// # Errors
    /// [`SessionError::Key`] when the key cannot be read or used.
    pub fn from_private_key_file(path: impl AsRef<Path>) -> Result<Self, SessionError> {
        Ok(Self::with_signer(ActJwtSigner::new(SigningKey::from_pem_file(path)?)))
    }

    /// The act for a [`UserSession`].
    ///
    /// # Errors
    /// [`SessionError::Act`] ("Session must contain email", ...).
    pub fn extract_act_from_session(&self, session: &UserSession) -> Result<Act, SessionError> {
        Ok(session.to_act()?)
    }

    /// The act for a claims map (OIDC ID token claims, a session dictionary).
    ///
    /// # Errors
    /// [`SessionError::Act`].
    pub fn extract_act_from_claims(&self, claims: &Map<String, Value>) -> Result<Act, SessionError> {
        Ok(UserSession::from_claims(claims)?.to_act()?)
    }

    /// The act for an in-session agent: passed in memory, unchanged.
    pub fn prepare_in_session_act(&self, act: Act) -> Act {
        tracing::debug!(event = "act_prepared_in_session", human_id = %act.log_id());
        act
    }

    /// A signed act JWT for the agent at `agent_endpoint` (`https://` only), valid for `ttl`.
    ///
    /// # Errors
    /// [`SessionError::OutOfSessionNotConfigured`] without a key; [`SessionError::ActJwt`]
    /// for a non-HTTPS endpoint or a TTL out of bounds.
    pub fn prepare_out_of_session_act(&self, act: &Act, agent_endpoint: &str, ttl: Duration) -> Result<SecretString, SessionError> {
        let signer = self.signer.as_ref().ok_or(SessionError::OutOfSessionNotConfigured)?;
        Ok(signer.sign(act, agent_endpoint, ttl)?)
    }
}
