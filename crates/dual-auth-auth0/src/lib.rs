//! # dual-auth-auth0
//!
//! The Auth0 adapter: an [`dual_auth_core::IamAdapter`] for Auth0's `/oauth/token`.
//!
//! **Status: not built yet (issue 3).** No adapter is exported today.
#![forbid(unsafe_code)]
