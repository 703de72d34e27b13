//! The agent side: asking for a token in-session, or after verifying an act JWT.

use std::sync::Arc;

use dual_auth_core::{Act, ActJwtVerifier, DelegationRequest, IamAdapter, SubjectToken, TokenRequest, TokenResponse};

use crate::error::SessionError;

/// Token requests for an agent running in the application's process: the act is passed in
/// memory.
#[derive(Debug, Clone)]
pub struct InSessionTokenRequest {
    adapter: Arc<dyn IamAdapter>,
}

impl InSessionTokenRequest {
    /// A handler over any adapter (a vendor adapter, or a cache in front of one).
    pub fn new(adapter: Arc<dyn IamAdapter>) -> Self {
        Self { adapter }
    }

    /// A dual-subject token for `agent_id` acting for `act`.
    ///
    /// # Errors
    /// [`SessionError::IdentityProvider`], including the upstream "Invalid inputs" checks.
    pub async fn request_token<S: Into<String>>(
        &self,
        agent_id: &str,
        act: &Act,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<TokenResponse, SessionError> {
        let request = TokenRequest::new(agent_id, act.clone(), scopes)?;
        Ok(self.adapter.request_token(&request).await?)
    }

    /// A verified mode: a token for `agent_id` acting for the human `evidence` proves (the
    /// web session's token, or one the application exchanged for this agent), through the
    /// vendor's delegation grant. The identity provider verifies the evidence.
    ///
    /// # Errors
    /// [`SessionError::IdentityProvider`]: the provider's refusal keeps status, `error`
    /// and description; the evidence is never in it.
    pub async fn request_delegated_token<S: Into<String>>(
        &self,
        agent_id: &str,
        evidence: &SubjectToken,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<TokenResponse, SessionError> {
        let request = DelegationRequest::new(agent_id, evidence.clone(), scopes)?;
        Ok(self.adapter.request_delegated_token(&request).await?)
    }
}

/// Token requests for a remote agent: the act arrives as a signed act JWT, which is
/// verified (signature, audience, expiry, lifetime, issuer, replay) before it is used.
#[derive(Debug, Clone)]
pub struct OutOfSessionTokenRequest {
    // Once the act is verified, asking for the token is the in-session step.
    tokens: InSessionTokenRequest,
    verifier: ActJwtVerifier,
}

impl OutOfSessionTokenRequest {
    /// A handler over any adapter, verifying act JWTs with `verifier` (which holds the
    /// application's public key, this agent's endpoint as audience, and the replay guard).
    pub fn new(adapter: Arc<dyn IamAdapter>, verifier: ActJwtVerifier) -> Self {
        Self { tokens: InSessionTokenRequest::new(adapter), verifier }
    }

    /// Verifies an act JWT and returns the act.
    ///
    /// # Errors
    /// [`SessionError::ActJwt`], saying which check failed.
    pub async fn receive_and_verify_act_jwt(&self, act_jwt: &str) -> Result<Act, SessionError> {
        Ok(self.verifier.verify(act_jwt).await?.into_act())
    }

    /// A dual-subject token for `agent_id` acting for an already verified `act`.
    ///
    /// # Errors
    /// [`SessionError::IdentityProvider`].
    pub async fn request_token<S: Into<String>>(
        &self,
        agent_id: &str,
        act: &Act,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<TokenResponse, SessionError> {
        self.tokens.request_token(agent_id, act, scopes).await
    }

    /// Verifies `act_jwt`, then asks for a token: the whole agent step in one call.
    ///
    /// # Errors
    /// [`SessionError::ActJwt`] when the JWT is refused (no token is requested then), or
    /// [`SessionError::IdentityProvider`].
    pub async fn verify_and_request_token<S: Into<String>>(
        &self,
        act_jwt: &str,
        agent_id: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<(Act, TokenResponse), SessionError> {
        let act = self.receive_and_verify_act_jwt(act_jwt).await?;
        let token = self.request_token(agent_id, &act, scopes).await?;
        Ok((act, token))
    }
}
