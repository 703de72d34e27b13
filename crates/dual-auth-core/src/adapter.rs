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
///
/// The four built in have their own variants; an adapter from outside this workspace
/// names itself with [`Vendor::Named`], without a change here. Two vendors are equal when
/// their names are.
#[derive(Debug, Clone, Copy)]
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
    /// Any other identity provider, by the name its adapter gives (lower case, as in
    /// `DUAL_AUTH_VENDOR`).
    Named(&'static str),
}

impl Vendor {
    /// The vendors built into this workspace, in documentation order.
    pub const ALL: [Vendor; 4] = [Vendor::Keycloak, Vendor::Auth0, Vendor::Okta, Vendor::EntraId];

    /// The name used in `DUAL_AUTH_VENDOR`: `keycloak`, `auth0`, `okta`, `entraid`, or the
    /// name of a [`Vendor::Named`].
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Keycloak => "keycloak",
            Vendor::Auth0 => "auth0",
            Vendor::Okta => "okta",
            Vendor::EntraId => "entraid",
            Vendor::Named(name) => name,
        }
    }

    /// The vendor among `known` that `name` names, case-insensitive and trimmed, as
    /// upstream.
    ///
    /// # Errors
    /// [`UnknownVendor`] listing the names of `known`.
    pub fn parse_among(name: &str, known: &[Vendor]) -> Result<Vendor, UnknownVendor> {
        let wanted = name.trim();
        known
            .iter()
            .copied()
            .find(|v| v.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownVendor { name: wanted.to_owned(), known: known.iter().map(|v| v.as_str()).collect() })
    }
}

impl PartialEq for Vendor {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Vendor {}

impl std::hash::Hash for Vendor {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vendor name that is not among the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vendor {name:?}: DUAL_AUTH_VENDOR must be one of {}", known.join(", "))]
pub struct UnknownVendor {
    name: String,
    known: Vec<&'static str>,
}

impl UnknownVendor {
    /// The name given, trimmed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names that would have been accepted.
    pub fn known(&self) -> &[&'static str] {
        &self.known
    }
}

impl FromStr for Vendor {
    type Err = UnknownVendor;

    /// One of [`Vendor::ALL`], case-insensitive and trimmed, as upstream.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::parse_among(s, &Vendor::ALL)
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
    /// token endpoint, the client id, the audience and the DPoP key. Token caches put it
    /// into their keys so that two adapters never share a token; required, because a scope
    /// too coarse would let two tenants share tokens ([`crate::provider::cache_scope`]
    /// builds the usual one).
    fn cache_scope(&self) -> String;

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
        crate::delegation::effective_mode(self.configured_delegation(), self.delegation_modes())
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
        assert_eq!(err.name(), "azuread");
    }

    #[test]
    fn a_named_vendor_is_its_name() {
        let acme = Vendor::Named("acme");
        assert_eq!(acme.to_string(), "acme");
        assert_eq!(Vendor::Named("okta"), Vendor::Okta, "equal by name");
        use std::hash::BuildHasher;
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(Vendor::Named("okta")), state.hash_one(Vendor::Okta));
        let known = [Vendor::Keycloak, acme];
        assert_eq!(Vendor::parse_among(" ACME ", &known).unwrap(), acme);
        let err = Vendor::parse_among("okta", &known).unwrap_err();
        assert_eq!(err.to_string(), "unknown vendor \"okta\": DUAL_AUTH_VENDOR must be one of keycloak, acme");
        assert_eq!(err.known(), ["keycloak", "acme"]);
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
