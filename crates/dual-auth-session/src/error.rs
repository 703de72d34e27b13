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
    /// No token was issued: the adapter refused the request
    /// ([`SessionError::is_caller_error`]) or the identity provider failed
    /// ([`SessionError::is_identity_provider_failure`]).
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

    /// Whether the identity provider refused, failed or could not be reached (answer 502 or
    /// 503, or retry later): [`IamError::is_identity_provider_failure`]. A request the
    /// adapter refused before sending it is not: see [`SessionError::is_caller_error`].
    pub fn is_identity_provider_failure(&self) -> bool {
        matches!(self, Self::IdentityProvider(e) if e.is_identity_provider_failure())
    }

    /// Whether the caller's input is at fault (answer 400): a session or act that cannot
    /// be used, or a token request the adapter refuses before sending it (a blank scope,
    /// another agent, a delegation mode the configuration does not allow:
    /// [`IamError::is_caller_error`]).
    pub fn is_caller_error(&self) -> bool {
        match self {
            Self::Act(_) => true,
            Self::IdentityProvider(e) => e.is_caller_error(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use dual_auth_core::{ReplayError, Vendor};

    use super::*;

    #[test]
    fn a_caller_mistake_is_not_an_identity_provider_failure() {
        let blank_scope = SessionError::from(IamError::InvalidRequest { reason: "scope required".into() });
        assert!(blank_scope.is_caller_error() && !blank_scope.is_identity_provider_failure());
        let mismatch =
            SessionError::from(IamError::AgentMismatch { vendor: Vendor::Okta, configured: "agent".into(), requested: "other".into() });
        assert!(mismatch.is_caller_error() && !mismatch.is_identity_provider_failure());
        let no_email = SessionError::from(ActError::MissingEmail);
        assert!(no_email.is_caller_error() && !no_email.is_identity_provider_failure());

        let refused =
            SessionError::from(IamError::OAuth { vendor: Vendor::Okta, status: 401, error: "invalid_client".into(), description: None });
        assert!(refused.is_identity_provider_failure() && !refused.is_caller_error() && !refused.is_act_jwt_rejected());
        let exhausted = SessionError::from(IamError::RetriesExhausted {
            vendor: Vendor::Okta,
            attempts: 3,
            last: Box::new(IamError::HttpStatus { vendor: Vendor::Okta, status: 503 }),
        });
        assert!(exhausted.is_identity_provider_failure() && !exhausted.is_caller_error());

        let replayed = SessionError::from(ActJwtError::Replayed);
        assert!(replayed.is_act_jwt_rejected() && !replayed.is_caller_error() && !replayed.is_identity_provider_failure());
        let store_down = SessionError::from(ActJwtError::ReplayCheckFailed(ReplayError::CapacityExceeded { capacity: 1 }));
        assert!(store_down.is_temporary() && !store_down.is_caller_error() && !store_down.is_identity_provider_failure());
        assert!(!SessionError::OutOfSessionNotConfigured.is_caller_error());
    }
}
