//! The session crate's error: which side failed is always clear.

use dual_auth_core::{ActError, ActJwtError, IamError, KeyError};

/// A flow failed. A refused act JWT ([`SessionError::ActJwt`]) never looks like an
/// identity-provider failure ([`SessionError::IdentityProvider`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session or act is unusable.
    #[error(transparent)]
    Act(#[from] ActError),
    /// The act JWT was refused (or could not be signed).
    #[error(transparent)]
    ActJwt(#[from] ActJwtError),
    /// The identity provider did not issue a token.
    #[error(transparent)]
    IdentityProvider(#[from] IamError),
    /// The signing key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Out-of-session signing was asked of a sender built without a key.
    #[error(
        "HybridSender not configured for out-of-session: build it with a signing key (HybridSender::with_signer or from_private_key_file)"
    )]
    OutOfSessionNotConfigured,
}

impl SessionError {
    /// Whether an act JWT was refused (answer 401 to the caller). A replay store that is
    /// full or down refuses nothing: see [`SessionError::is_temporary`].
    pub fn is_act_jwt_rejected(&self) -> bool {
        matches!(self, Self::ActJwt(e) if !e.is_temporary())
    }

    /// Whether the act JWT could not be checked right now (its replay store is full or
    /// unreachable): answer 503 with `Retry-After`, so the caller backs off and retries.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::ActJwt(e) if e.is_temporary())
    }

    /// Whether the identity provider failed (answer 502/503, or retry later).
    pub fn is_identity_provider_failure(&self) -> bool {
        matches!(self, Self::IdentityProvider(_))
    }
}
