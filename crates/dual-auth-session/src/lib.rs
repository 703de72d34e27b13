//! # dual-auth-session
//!
//! The two flows of the guide, over any [`dual_auth_core::IamAdapter`], and a token cache:
//!
//! - [`HybridSender`]: the application side. The human's identity from a session or OIDC
//!   claims; in memory for an in-session agent, or a signed act JWT for a remote one.
//! - [`InSessionTokenRequest`] and [`OutOfSessionTokenRequest`]: the agent side. The
//!   out-of-session handler verifies the act JWT (with replay protection) before it asks
//!   for a token, and its errors keep "the JWT was refused" apart from "the identity
//!   provider failed".
//! - [`CachingAdapter`]: a single-flight, bounded token cache in front of any adapter,
//!   keyed so that two humans never share a token.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod error;
mod flows;
mod sender;

pub use cache::{CacheKey, CachingAdapter, SharedTokenStore, TokenCacheSettings};
pub use error::SessionError;
pub use flows::{InSessionTokenRequest, OutOfSessionTokenRequest};
pub use sender::HybridSender;
