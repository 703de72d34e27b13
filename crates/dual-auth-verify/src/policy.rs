//! What an API trusts: per issuer, its keys, audience, claim layout and requirements.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dual_auth_core::{InMemoryReplayGuard, ReplayGuard, VerifyingKey};

/// How a token names the agent and the human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// `sub` = the agent, `act` = the human: what the dual-auth guides configure in
    /// Keycloak, Auth0 and Okta (the identity provider copies `act` from the agent's
    /// client assertion).
    DualAuth,
    /// RFC 8693 token exchange: `sub` = the human, `act.sub` = the agent, and a nested
    /// `act` inside it for each earlier actor of a delegation chain.
    Rfc8693,
    /// Microsoft Entra ID: the token names only the agent (`azp` or `appid`); the human
    /// comes in the `X-Act-Assertion` the application signed, bound to the same agent.
    /// Set by [`IssuerPolicy::act_assertion`].
    ActAssertion,
    /// What the delegation grants give (RFC 8693 token exchange, Entra ID on-behalf-of, the
    /// RFC 7523 JWT authorization grant): `sub` = the human, the agent as the client the
    /// token was issued to (`client_id` per RFC 9068, `azp`, Okta's `cid`, Entra ID v1
    /// `appid`), and any `act` chain kept (its outermost `act.sub` must be that client).
    /// The identity provider verified the human's evidence. The agent's own
    /// (client-credentials) token is refused where the token shows it: `sub` = the client,
    /// Auth0's `gty`, Entra ID's `idtyp` / missing `scp` / `sub` = `oid`, Keycloak's
    /// `preferred_username` `service-account-…` (emit `preferred_username` in the agents'
    /// tokens, as the project's realm does: Keycloak's service-account `sub` is a user id).
    Delegated,
}

impl Layout {
    /// The name used in settings and the CLI: `dual-auth`, `rfc8693`, `act-assertion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DualAuth => "dual-auth",
            Self::Rfc8693 => "rfc8693",
            Self::ActAssertion => "act-assertion",
            Self::Delegated => "delegated",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = crate::VerifyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dual-auth" | "dualauth" => Ok(Self::DualAuth),
            "rfc8693" | "rfc-8693" => Ok(Self::Rfc8693),
            "act-assertion" | "entraid" => Ok(Self::ActAssertion),
            "delegated" => Ok(Self::Delegated),
            other => Err(crate::VerifyError::Configuration {
                setting: "layout",
                reason: format!("{other:?} is not a layout: use dual-auth, rfc8693, act-assertion or delegated"),
            }),
        }
    }
}

/// Where keys come from.
#[derive(Clone)]
pub(crate) enum KeysSetting {
    Discovery,
    JwksUrl(String),
    Static(Vec<VerifyingKey>),
}

impl fmt::Debug for KeysSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Discovery => f.write_str("Discovery"),
            Self::JwksUrl(url) => write!(f, "JwksUrl({url})"),
            Self::Static(keys) => f.debug_tuple("Static").field(keys).finish(),
        }
    }
}

/// The default leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// The default longest `exp - iat` accepted for access tokens (Auth0's longest default).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The largest `max_lifetime` an issuer may be given: 30 days (Auth0's longest).
pub const MAX_LIFETIME_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// What one trusted issuer's tokens must satisfy.
///
/// ```
/// use dual_auth_verify::{IssuerPolicy, Layout};
///
/// let keycloak = IssuerPolicy::new("https://idp.example.com/realms/corp", "https://api.example.com/finance")
///     .jwks_url("https://idp.example.com/realms/corp/protocol/openid-connect/certs")
///     .require_scopes(["finance.read"]);
/// let exchange = IssuerPolicy::new("https://sts.example.com", "https://api.example.com/finance").layout(Layout::Rfc8693);
/// # let _ = (keycloak, exchange);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct IssuerPolicy {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) keys: KeysSetting,
    pub(crate) layout: Layout,
    pub(crate) leeway: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) required_type: Option<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) required_roles: Vec<String>,
    pub(crate) roles_claim: Vec<String>,
    pub(crate) act_assertion: Option<ActAssertionPolicy>,
    pub(crate) require_dpop: bool,
}

impl IssuerPolicy {
    /// Trusts tokens whose `iss` is exactly `issuer` and whose `aud` names `audience`,
    /// with keys found by OIDC discovery, the dual-auth layout, 5 s leeway, lifetimes up
    /// to 24 h.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            keys: KeysSetting::Discovery,
            layout: Layout::DualAuth,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            required_type: None,
            required_scopes: Vec::new(),
            required_roles: Vec::new(),
            roles_claim: vec!["roles".into()],
            act_assertion: None,
            require_dpop: false,
        }
    }

    /// Accepts tokens for this audience too (an API known by two names).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Fetches keys from this JWKS URL (https) instead of discovering it.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = KeysSetting::JwksUrl(url.into());
        self
    }

    /// Finds the JWKS by OIDC discovery (`{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must equal this issuer): the default.
    pub fn discovery(mut self) -> Self {
        self.keys = KeysSetting::Discovery;
        self
    }

    /// Uses fixed keys, never the network.
    pub fn static_keys(mut self, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        self.keys = KeysSetting::Static(keys.into_iter().collect());
        self
    }

    /// How tokens name the agent and the human (default [`Layout::DualAuth`]).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The clock skew tolerated for `exp`, `nbf` and `iat` (default 5 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest `exp - iat` accepted (default 24 h, at most [`MAX_LIFETIME_LIMIT`]).
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Requires the `typ` header, compared without case and without an `application/`
    /// prefix: `at+jwt` for RFC 9068 access tokens, so that ID tokens and other JWTs
    /// from the same issuer are refused.
    pub fn require_type(mut self, typ: impl Into<String>) -> Self {
        self.required_type = Some(typ.into());
        self
    }

    /// Requires each of these scopes (from `scope` or `scp`); a token without them gets 403.
    pub fn require_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.required_scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Requires each of these roles (from `roles`, as Entra ID app roles, unless
    /// [`IssuerPolicy::roles_claim`] says otherwise); else 403.
    pub fn require_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.required_roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Where the roles are: a claim name, or a dotted path into nested objects, such as
    /// Keycloak's `realm_access.roles` (default `roles`).
    pub fn roles_claim(mut self, path: &str) -> Self {
        self.roles_claim = path.split('.').map(str::to_owned).collect();
        self
    }

    /// Entra ID: the human comes in an `X-Act-Assertion` checked by `policy`, and the
    /// layout becomes [`Layout::ActAssertion`].
    pub fn act_assertion(mut self, policy: ActAssertionPolicy) -> Self {
        self.act_assertion = Some(policy);
        self.layout = Layout::ActAssertion;
        self
    }

    /// Accepts this issuer's tokens with DPoP only (RFC 9449): `Authorization: DPoP
    /// <token>` with a proof of the key the token is bound to (`cnf.jkt`). A bearer token
    /// from it is refused ([`crate::VerifyError::DpopRequired`]), and a request without a
    /// token is offered the `DPoP` challenge. Without this setting both are accepted, but a
    /// DPoP-bound token is never accepted as a bearer token.
    pub fn require_dpop(mut self) -> Self {
        self.require_dpop = true;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// Where an act assertion's keys come from.
#[derive(Debug, Clone)]
pub(crate) enum AssertionKeys {
    Static(Vec<VerifyingKey>),
    JwksUrl(String),
}

/// How Entra ID's `X-Act-Assertion` is checked: the application's key (or JWKS), the
/// audience, the application id as issuer, expiry with leeway, a lifetime of at most
/// 300 s, and single use through a [`ReplayGuard`].
///
/// ```no_run
/// use dual_auth_core::VerifyingKey;
/// use dual_auth_verify::ActAssertionPolicy;
///
/// let app_key = VerifyingKey::from_pem_file("app-public-key.pem")?;
/// let policy = ActAssertionPolicy::with_key(app_key, "api://finance-api").app_id("8d3c-app");
/// # let _ = policy;
/// # Ok::<(), dual_auth_core::KeyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ActAssertionPolicy {
    pub(crate) keys: AssertionKeys,
    pub(crate) audience: String,
    pub(crate) app_id: Option<String>,
    pub(crate) replay_guard: Arc<dyn ReplayGuard>,
    pub(crate) leeway: Duration,
}

impl ActAssertionPolicy {
    /// Assertions signed by the application's public `key`, for `audience` (the
    /// application's `API_AUDIENCE`).
    pub fn with_key(key: VerifyingKey, audience: impl Into<String>) -> Self {
        Self::new(AssertionKeys::Static(vec![key]), audience.into())
    }

    /// Assertions signed by a key of the application's JWKS at `url` (https).
    pub fn with_jwks_url(url: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::new(AssertionKeys::JwksUrl(url.into()), audience.into())
    }

    fn new(keys: AssertionKeys, audience: String) -> Self {
        Self { keys, audience, app_id: None, replay_guard: Arc::new(InMemoryReplayGuard::default()), leeway: DEFAULT_LEEWAY }
    }

    /// Accepts this key too (rotation), with static keys.
    pub fn add_key(mut self, key: VerifyingKey) -> Self {
        match &mut self.keys {
            AssertionKeys::Static(keys) => keys.push(key),
            AssertionKeys::JwksUrl(_) => self.keys = AssertionKeys::Static(vec![key]),
        }
        self
    }

    /// Requires `iss` to be the application's id (`APP_ID`). Strongly advised: without it,
    /// any assertion the key signed is accepted whatever its issuer.
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Records assertion ids here (default: one in-memory guard per policy; use a shared
    /// store such as Redis when the API runs as several replicas).
    pub fn replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay_guard = guard;
        self
    }

    /// The clock skew tolerated (default 5 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
}
