//! # dual-auth-api
//!
//! Calling APIs with a [`dual_auth_core::TokenResponse`]: `Authorization: Bearer`, plus
//! `X-Act-Assertion` for Entra ID, HTTPS only, retries for idempotent requests.
//!
//! **Status: not built yet (issue 5).** No client is exported today.
#![forbid(unsafe_code)]
