//! # dual-auth-session
//!
//! The two flows (`HybridSender`, `InSessionTokenRequest`, `OutOfSessionTokenRequest`)
//! and a single-flight token cache, over any [`dual_auth_core::IamAdapter`].
//!
//! **Status: not built yet (issue 5).** The act JWT signer and verifier these flows use are
//! ready in `dual-auth-core` (`ActJwtSigner`, `ActJwtVerifier`).
#![forbid(unsafe_code)]
