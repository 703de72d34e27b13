//! # dual-auth-keycloak
//!
//! The Keycloak adapter: an [`dual_auth_core::IamAdapter`] that asks a Keycloak realm for a
//! dual-subject token with a client assertion carrying `act`.
//!
//! **Status: not built yet (issue 3).** No adapter is exported today.
#![forbid(unsafe_code)]
