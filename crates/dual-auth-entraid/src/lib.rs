//! # dual-auth-entraid
//!
//! The Microsoft Entra ID adapter: client credentials from Microsoft, plus an act assertion
//! signed with the application's key that travels beside the token as `X-Act-Assertion`.
//!
//! **Status: not built yet (issue 3).** No adapter is exported today.
#![forbid(unsafe_code)]
