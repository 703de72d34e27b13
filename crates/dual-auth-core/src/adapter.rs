//! The seam to identity providers: one [`IamAdapter`] per vendor.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::act::Act;
use crate::delegation::{DelegationMode, DelegationRequest};
use crate::error::IamError;
use crate::jose::dpop::DpopKey;
use crate::token::TokenResponse;

/// The identity providers dual-auth speaks to, chosen by `DUAL_AUTH_VENDOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Vendor {
    /// Keycloak (client assertion with `act`, copied into the token by a protocol mapper).
    Keycloak,
    /// Auth0 (client assertion with `act`, copied by an Action).
    Auth0,
    /// Okta (client assertion with `act`, copied by a custom claim).
    Okta,
    /// Microsoft Entra ID (client credentials, plus an act assertion beside the token).
    EntraId,
}

impl Vendor {
    /// Every vendor, in documentation order.
    pub const ALL: [Vendor; 4] = [Vendor::Keycloak, Vendor::Auth0, Vendor::Okta, Vendor::EntraId];

    /// The name used in `DUAL_AUTH_VENDOR`: `keycloak`, `auth0`, `okta`, `entraid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Keycloak => "keycloak",
            Vendor::Auth0 => "auth0",
            Vendor::Okta => "okta",
            Vendor::EntraId => "entraid",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vendor name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vendor {0:?}: DUAL_AUTH_VENDOR must be one of keycloak, auth0, okta, entraid")]
pub struct UnknownVendor(pub String);

impl FromStr for Vendor {
    type Err = UnknownVendor;

    /// Case-insensitive and trimmed, as upstream.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Vendor::ALL.into_iter().find(|v| v.as_str() == wanted).ok_or_else(|| UnknownVendor(s.trim().to_owned()))
    }
}

/// What an agent asks an identity provider for: a token for itself (`agent_id`), acting for
/// a human (`act`), with these scopes.
///
/// ```
/// use dual_auth_core::{Act, TokenRequest};
///
/// let request = TokenRequest::new("finance-agent", Act::new("user_12345")?, ["finance.read"])?;
/// assert_eq!(request.scopes(), ["finance.read"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    agent_id: String,
    act: Act,
    scopes: Vec<String>,
}

impl TokenRequest {
    /// A request; `agent_id` and at least one non-empty scope are required (upstream's
    /// "Invalid inputs" checks).
    ///
    /// # Errors
    /// [`IamError::InvalidRequest`] naming what is missing.
    pub fn new<S: Into<String>>(agent_id: impl Into<String>, act: Act, scopes: impl IntoIterator<Item = S>) -> Result<Self, IamError> {
        let agent_id = agent_id.into();
        let scopes = checked_scopes(&agent_id, scopes)?;
        Ok(Self { agent_id, act, scopes })
    }

    /// The agent's client id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The human the agent acts for.
    pub fn act(&self) -> &Act {
        &self.act
    }

    /// The scopes asked for, in the caller's order.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The scopes joined by spaces, as OAuth's `scope` parameter wants them.
    pub fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }
}

/// The upstream "Invalid inputs" checks every request makes: an agent id and one or more
/// scopes, each non-empty and without spaces.
pub(crate) fn checked_scopes<S: Into<String>>(agent_id: &str, scopes: impl IntoIterator<Item = S>) -> Result<Vec<String>, IamError> {
    if agent_id.trim().is_empty() {
        return Err(IamError::InvalidRequest { reason: "agent_id required".into() });
    }
    let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
    if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty() || s.contains(char::is_whitespace)) {
        return Err(IamError::InvalidRequest {
            reason: "scope required: give one or more scopes, each non-empty and without spaces".into(),
        });
    }
    Ok(scopes)
}

/// An identity provider adapter: turns a [`TokenRequest`] into a dual-subject token.
///
/// Implemented by the vendor crates (`dual-auth-keycloak`, `-auth0`, `-okta`, `-entraid`);
/// used by the session crate's flows and token cache through `dyn IamAdapter`.
#[async_trait]
pub trait IamAdapter: Send + Sync + fmt::Debug {
    /// Which vendor this adapter speaks to.
    fn vendor(&self) -> Vendor;

    /// What, besides the request, decides which token this adapter gets: the vendor, the
    /// token endpoint, the client id and the audience. Token caches put it into their keys
    /// so that two adapters never share a token. Implementations should override the
    /// default (the vendor name alone).
    fn cache_scope(&self) -> String {
        self.vendor().to_string()
    }

    /// The delegation modes this adapter can do, the verified ones first.
    fn delegation_modes(&self) -> &'static [DelegationMode] {
        &[DelegationMode::SelfAsserted]
    }

    /// `DUAL_AUTH_DELEGATION` as configured (`None` when unset): token caches check it
    /// before a lookup, so that a token another replica got in another mode is never served.
    fn configured_delegation(&self) -> Option<DelegationMode> {
        None
    }

    /// The mode [`IamAdapter::request_delegated_token`] uses (`DUAL_AUTH_DELEGATION`, or
    /// the vendor's verified default), or `None` when this adapter does self-asserted only.
    fn delegation_mode(&self) -> Option<DelegationMode> {
        crate::effective_mode(self.configured_delegation(), self.delegation_modes())
    }

    /// The guide's self-asserted mode: asks the identity provider for a token for
    /// `request.agent_id()` acting for `request.act()`, which the agent alone vouches for
    /// (the act rides in its own client assertion). Refused when `DUAL_AUTH_DELEGATION`
    /// names a verified mode; prefer [`IamAdapter::request_delegated_token`].
    ///
    /// # Errors
    /// An [`IamError`] that keeps the HTTP status, OAuth error and vendor.
    async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, IamError>;

    /// A verified mode: sends the human's evidence with the vendor's delegation grant
    /// ([`IamAdapter::delegation_mode`]); the identity provider verifies it and issues a
    /// token with `sub` = the human and the agent as `azp` / `client_id`. Only an access
    /// token comes back: any other `issued_token_type` or `token_type` is refused.
    ///
    /// # Errors
    /// [`IamError::NotSupported`] from adapters without a delegation grant; otherwise as
    /// [`IamAdapter::request_token`], the refusal's status, `error` and description kept.
    async fn request_delegated_token(&self, request: &DelegationRequest) -> Result<TokenResponse, IamError> {
        let _ = request;
        Err(IamError::NotSupported { what: format!("delegation grants with the {} adapter", self.vendor()) })
    }

    /// The key this adapter's tokens are DPoP-bound to (RFC 9449), when DPoP is configured.
    /// Its thumbprint is part of [`IamAdapter::cache_scope`].
    fn dpop_key(&self) -> Option<&DpopKey> {
        None
    }

    /// Gives back a token this adapter issued for `request` and a shared cache stored, with
    /// what a store cannot hold re-attached: Entra ID's act assertion source, which signs a
    /// fresh assertion per API call, and the DPoP key of a `DPoP` token. The default
    /// re-attaches [`IamAdapter::dpop_key`] to a `DPoP` token and leaves the rest unchanged.
    fn restore_cached(&self, token: TokenResponse, request: &TokenRequest) -> TokenResponse {
        let _ = request;
        token.with_restored_dpop_key(self.dpop_key())
    }

    /// As [`IamAdapter::restore_cached`], for a token a delegation `request` got. The default
    /// re-attaches [`IamAdapter::dpop_key`] to a `DPoP` token.
    fn restore_cached_delegated(&self, token: TokenResponse, request: &DelegationRequest) -> TokenResponse {
        let _ = request;
        token.with_restored_dpop_key(self.dpop_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_parse_case_insensitively_and_trimmed() {
        assert_eq!(" KeyCloak ".parse::<Vendor>().unwrap(), Vendor::Keycloak);
        assert_eq!("ENTRAID".parse::<Vendor>().unwrap(), Vendor::EntraId);
        for v in Vendor::ALL {
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
        }
        let err = "azuread".parse::<Vendor>().unwrap_err();
        assert_eq!(err.to_string(), "unknown vendor \"azuread\": DUAL_AUTH_VENDOR must be one of keycloak, auth0, okta, entraid");
    }

    #[test]
    fn token_request_checks_inputs_like_upstream() {
        let act = Act::new("u").unwrap();
        let err = TokenRequest::new(" ", act.clone(), ["s"]).unwrap_err();
        assert_eq!(err.to_string(), "Invalid inputs: agent_id required");
        let err = TokenRequest::new("a", act.clone(), Vec::<String>::new()).unwrap_err();
        assert!(err.to_string().starts_with("Invalid inputs: scope required"));
        assert!(TokenRequest::new("a", act.clone(), ["read write"]).is_err());
        let ok = TokenRequest::new("a", act, ["read", "write"]).unwrap();
        assert_eq!(ok.scope_string(), "read write");
    }
}
