//! # dual-auth-okta
//!
//! The Okta adapter: an [`dual_auth_core::IamAdapter`] for an Okta authorization server.
//!
//! **Status: not built yet (issue 3).** No adapter is exported today.
#![forbid(unsafe_code)]
