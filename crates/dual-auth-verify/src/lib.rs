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
//! - DPoP (RFC 9449): `Authorization: DPoP <token>` with a `DPoP` proof is checked against
//!   the request's method and URL ([`VerifierBuilder::public_origin`]), the token's hash,
//!   a short `iat` window, and the token's `cnf.jkt`; each proof is accepted once (a
//!   [`dual_auth_core::ReplayGuard`]: in memory, or Redis for replicas). A bound token is
//!   never accepted as a bearer token, and [`IssuerPolicy::require_dpop`] refuses bearer
//!   tokens from an issuer altogether; [`DualSubject::dpop_jkt`] names the key. Server
//!   nonces (`DPoP-Nonce`, `use_dpop_nonce`) are not supported.
//! - Features: `tower` (a [`DualAuthLayer`]), `axum` (the [`DualSubject`] extractor);
//!   rejections answer 401/403 with an RFC 6750 `WWW-Authenticate` (the RFC 9449 `DPoP`
//!   challenge, with `algs`, for DPoP requests and refusals) and never echo the token.
//!
//! ```no_run
//! use dual_auth_verify::{IssuerPolicy, Layout, Verifier};
//!
//! # async fn run(request: http::Request<()>) -> Result<(), dual_auth_verify::VerifyError> {
//! let verifier = Verifier::builder()
//!     .issuer(
//!         IssuerPolicy::new("https://idp.example.com/realms/corp", "https://api.example.com/finance")
//!             .jwks_url("https://idp.example.com/realms/corp/protocol/openid-connect/certs")
//!             .require_scopes(["finance.read"]),
//!     )
//!     .issuer(IssuerPolicy::new("https://sts.example.com", "https://api.example.com/finance").layout(Layout::Rfc8693).require_dpop())
//!     .public_origin("https://api.example.com")
//!     .build()?;
//! let subject = verifier.verify_headers(request.method(), request.uri(), request.headers()).await?;
//! tracing::info!(agent = subject.agent.id(), human = subject.human.sub(), "authorised");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod dpop;
mod error;
mod jwks;
mod policy;
mod subject;
mod verifier;

#[cfg(feature = "tower")]
mod layer;

#[cfg(feature = "axum")]
mod extract;

#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp;

pub use dpop::{DEFAULT_DPOP_PROOF_WINDOW, DPOP_ALGORITHMS, MAX_DPOP_PROOF_BYTES, MAX_DPOP_PROOF_WINDOW};
pub use error::{BearerError, DpopCheck, VerifyError};
pub use jwks::{JwksCachePolicy, MAX_CACHE_DURATION};
pub use policy::{ActAssertionPolicy, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, IssuerPolicy, Layout, MAX_LIFETIME_LIMIT};
pub use subject::{Actor, DualSubject, IdToken, VouchedBy};
pub use verifier::{DEFAULT_MAX_TOKEN_BYTES, MAX_CHAIN_DEPTH, Verifier, VerifierBuilder};

#[cfg(feature = "tower")]
pub use layer::{DualAuthLayer, DualAuthService};

#[cfg(feature = "axum")]
pub use extract::Rejection;

/// Re-exported so users name one version.
pub use dual_auth_core;
