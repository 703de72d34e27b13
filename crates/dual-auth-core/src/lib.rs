//! # dual-auth-core
//!
//! The vocabulary every dual-auth crate shares, and the seams they implement.
//!
//! An AI agent acts with two identities: its own (an OAuth client) and the human's on
//! whose behalf it works. This crate holds:
//!
//! - the human identity: [`Act`], shaped from a [`UserSession`] or OIDC claims;
//! - what identity providers return: [`TokenResponse`], DPoP-bound (RFC 9449) to a
//!   [`DpopKey`] when asked for ([`token_endpoint::DpopSettings`]);
//! - the out-of-session act JWT: [`ActJwtSigner`] and [`ActJwtVerifier`], wire-compatible
//!   with the Python `dual-auth` 1.0.1 package, with the upstream defects fixed;
//! - keys: [`SigningKey`], [`VerifyingKey`], [`generate_key_pair`];
//! - the one JWT validation engine every verifier uses ([`jwt`]: [`jwt::Validation`] over
//!   [`jwt::RegisteredClaims`], keys from a [`jwt::KeyResolver`]), and, to look inside a
//!   token without trusting it, [`dangerous::UnverifiedJwt`];
//! - the HTTP toolkit every client uses ([`http`]: [`http::HttpsUrl`] checked once and
//!   carried, one bounded body reader, one CA-bundle loader) and one retry policy
//!   ([`token_endpoint::RetryPolicy::run`]) for the token endpoint and the API client;
//! - the seams: [`IamAdapter`] (vendor crates, most of them an [`provider::AssertionDialect`]
//!   over [`provider::AssertionAdapter`]), [`SecretSource`] (secret stores),
//!   [`ReplayGuard`] (replay stores), [`Clock`] (time, settable in tests);
//! - one error enum per concern: [`ActError`], [`KeyError`], [`ActJwtError`],
//!   [`ReplayError`], [`IamError`], [`SecretError`]; a message never repeats its cause,
//!   [`ErrorChain`] shows both.
//!
//! ```
//! use std::time::Duration;
//! use dual_auth_core::{generate_key_pair, ActJwtSigner, ActJwtVerifier, SigningAlgorithm, SigningKey, UserSession};
//! use secrecy::ExposeSecret;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // The application: the logged-in user becomes an act, signed for the remote agent.
//! let act = UserSession::new("alice@corp.example.com").with_user_id("user_12345").to_act()?;
//! let pair = generate_key_pair(SigningAlgorithm::EdDsa, 0)?;
//! let signer = ActJwtSigner::new(SigningKey::from_pem(pair.private_key_pem.expose_secret())?);
//! let jwt = signer.sign(&act, "https://agent.example.com/invoke", Duration::from_secs(60))?;
//!
//! // The agent: verify before use; a second use of the same JWT is refused.
//! let verifier = ActJwtVerifier::builder(signer.key().verifying_key(), "https://agent.example.com/invoke").build()?;
//! assert_eq!(verifier.verify(jwt.expose_secret()).await?.act().sub(), "user_12345");
//! assert!(verifier.verify(jwt.expose_secret()).await.unwrap_err().is_replay());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod act;
mod adapter;
mod clock;
mod delegation;
mod error;
pub mod http;
mod jose;
pub mod protected_resource;
pub mod provider;
mod replay;
mod secret;
mod session;
mod text;
mod token;
pub mod token_endpoint;

pub use jose::validation as jwt;

/// What reads a JWT without verifying it: for inspection and debugging, never for a
/// decision.
pub mod dangerous {
    pub use crate::jose::compact::UnverifiedJwt;
}

pub use act::{Act, HumanLogId};
pub use adapter::{IamAdapter, TokenRequest, UnknownVendor, Vendor};
pub use clock::{Clock, ManualClock, SystemClock};
pub use delegation::{
    ACCESS_TOKEN_TYPE, DELEGATION_SETTING, DelegationMode, DelegationRequest, ID_TOKEN_TYPE, JWT_BEARER_GRANT, JWT_TOKEN_TYPE,
    SubjectToken, SubjectTokenType, TOKEN_EXCHANGE_GRANT, UnknownDelegationMode,
};
pub use error::{ActError, ActJwtError, BoxError, ErrorChain, IamError, KeyError, ReplayError, SecretError};
pub use jose::act_jwt::{
    ActJwtSigner, ActJwtVerifier, ActJwtVerifierBuilder, DEFAULT_ACT_JWT_ISSUER, DEFAULT_ACT_JWT_TTL, DEFAULT_MAX_TOKEN_BYTES,
    MAX_ACT_JWT_TTL, MIN_ACT_JWT_TTL, VerifiedActJwt, check_agent_endpoint, new_jti,
};
pub use jose::assertion::{
    ACT_ASSERTION_TYPE, ASSERTION_LIFETIME, AssertionClaims, CLIENT_ASSERTION_TYPE, ClientAuthentication, HmacKey, MIN_HS256_SECRET_BYTES,
};
pub use jose::dpop::{
    DPOP_HEADER, DPOP_NONCE_HEADER, DPOP_PROOF_TYPE, DpopKey, USE_DPOP_NONCE, access_token_hash, dpop_htu, pkce_s256_challenge,
};
pub use jose::keys::{
    GeneratedKeyPair, KeyType, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, RSA_BITS_RANGE, SigningAlgorithm, SigningKey, VerifyingKey,
    generate_key_pair, jwk_thumbprint, warn_if_readable_by_others,
};
pub use jose::validation::{DEFAULT_LEEWAY, MAX_LEEWAY};
pub use replay::{DEFAULT_REPLAY_CAPACITY, InMemoryReplayGuard, MAX_REPLAY_PARTIES, ReplayGuard};
pub use secret::{SecretBackend, SecretSource, UnknownSecretBackend};
pub use session::{UserSession, claim_lookup};
pub use text::{MAX_OAUTH_DESCRIPTION_CHARS, MAX_OAUTH_ERROR_CHARS, escape_html, escape_untrusted, truncate_untrusted};
pub use token::{ACT_ASSERTION_HEADER, ActAssertionSource, MAX_TOKEN_LIFETIME, TokenResponse};

/// Re-exported so users name one `secrecy` version: tokens and secrets are `SecretString`.
pub use secrecy;
