//! # dual-auth-verify
//!
//! The API side of dual-auth: turns an incoming request into a verified [`DualSubject`]
//! (the agent, the human, and any earlier actors) or a precise [`VerifyError`].
//!
//! - Keys come from each trusted issuer's JWKS (or OIDC discovery), cached as
//!   `Cache-Control` says, refreshed once on an unknown `kid` (rate limited), fetched
//!   one at a time, and kept while the issuer is briefly unreachable ([`JwksCachePolicy`]).
//! - Tokens are checked for signature (the algorithm pinned by the key), issuer,
//!   audience, `exp`/`nbf`/`iat` with leeway, lifetime, `typ`, scopes and roles
//!   ([`IssuerPolicy`]).
//! - Two claim layouts per issuer give the same [`DualSubject`]: dual-auth's (`sub` =
//!   agent, `act` = human) and RFC 8693's (`sub` = human, `act.sub` = agent, nested for
//!   delegation chains); Entra ID's token plus `X-Act-Assertion` is a third
//!   ([`ActAssertionPolicy`]), bound to the same agent and single-use.
//! - Features: `tower` (a [`DualAuthLayer`]), `axum` (the [`DualSubject`] extractor);
//!   rejections answer 401/403 with an RFC 6750 `WWW-Authenticate` and never echo the token.
//!
//! ```no_run
//! use dual_auth_verify::{IssuerPolicy, Layout, Verifier};
//!
//! # async fn run(headers: http::HeaderMap) -> Result<(), dual_auth_verify::VerifyError> {
//! let verifier = Verifier::builder()
//!     .issuer(
//!         IssuerPolicy::new("https://idp.example.com/realms/corp", "https://api.example.com/finance")
//!             .jwks_url("https://idp.example.com/realms/corp/protocol/openid-connect/certs")
//!             .require_scopes(["finance.read"]),
//!     )
//!     .issuer(IssuerPolicy::new("https://sts.example.com", "https://api.example.com/finance").layout(Layout::Rfc8693))
//!     .build()?;
//! let subject = verifier.verify_headers(&headers).await?;
//! tracing::info!(agent = subject.agent.id(), human = subject.human.sub(), "authorised");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod error;
mod jwks;
mod policy;
mod subject;
mod verifier;

#[cfg(feature = "tower")]
mod layer;

#[cfg(feature = "axum")]
mod extract;

pub use error::{BearerError, VerifyError};
pub use jwks::{JwksCachePolicy, MAX_CACHE_DURATION};
pub use policy::{ActAssertionPolicy, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, IssuerPolicy, Layout, MAX_LIFETIME_LIMIT};
pub use subject::{Actor, DualSubject, VouchedBy};
pub use verifier::{DEFAULT_MAX_TOKEN_BYTES, MAX_CHAIN_DEPTH, Verifier, VerifierBuilder};

#[cfg(feature = "tower")]
pub use layer::{DualAuthLayer, DualAuthService};

#[cfg(feature = "axum")]
pub use extract::Rejection;

/// Re-exported so users name one version.
pub use dual_auth_core;
