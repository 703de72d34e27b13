//! What an identity provider hands back.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

use crate::error::IamError;
use crate::jose::dpop::{DPOP_HEADER, DpopKey};

/// The header that carries an act assertion (Entra ID) beside the access token.
pub const ACT_ASSERTION_HEADER: &str = "X-Act-Assertion";

/// The longest token lifetime accepted from an identity provider: one day (Auth0's
/// default, the longest of the vendors'). A longer `expires_in` is refused.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Signs the act assertion that travels beside a token (Entra ID), afresh for every use.
///
/// An API records each assertion's `jti`, so one assertion serves one API call: the API
/// client asks for a new one for every request it sends, retries and redirects included.
pub trait ActAssertionSource: Send + Sync + fmt::Debug {
    /// A newly signed assertion (new `jti`, `iat` = now).
    ///
    /// # Errors
    /// [`IamError::Assertion`] when signing fails.
    fn sign_act_assertion(&self) -> Result<SecretString, IamError>;
}

/// A dual-subject access token and what is known about it.
///
/// The access token is a secret: `Debug` never shows it, and reading it takes an explicit
/// [`ExposeSecret::expose_secret`]. An Entra ID token carries no act assertion, only the
/// [`ActAssertionSource`] that signs a fresh one per API call ([`TokenResponse::new_act_assertion`]),
/// so caching the token never re-uses an assertion. A DPoP-bound token (`token_type`
/// `DPoP`) carries the [`DpopKey`] it is bound to ([`TokenResponse::dpop_key`]), so the API
/// client can sign a proof for every request; `Debug` shows only the key's thumbprint.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dual_auth_core::TokenResponse;
/// use secrecy::ExposeSecret;
///
/// let issued = SystemTime::now();
/// let token = TokenResponse::new("eyJ.secret.token", "Bearer", Duration::from_secs(300), issued)
///     .with_scopes(["finance.read"]);
/// assert_eq!(token.expires_at(), issued + Duration::from_secs(300));
/// assert!(!format!("{token:?}").contains("secret"));
/// assert_eq!(token.access_token().expose_secret(), "eyJ.secret.token");
/// ```
///
/// Cloning is cheap (a cache hands out a clone on every hit): clones share the access token,
/// which is wiped when the last of them is dropped, and the other text.
#[derive(Clone)]
pub struct TokenResponse {
    access_token: Arc<SecretString>,
    token_type: Arc<str>,
    expires_in: Duration,
    expires_at: SystemTime,
    scopes: Arc<[String]>,
    issued_token_type: Option<Arc<str>>,
    act_assertion: Option<Arc<dyn ActAssertionSource>>,
    dpop_key: Option<DpopKey>,
}

impl TokenResponse {
    /// A token of `token_type` (usually `Bearer`) valid for `expires_in` from `issued_at`.
    ///
    /// `expires_in` is capped at [`MAX_TOKEN_LIFETIME`] (identity-provider answers above it
    /// are refused before they get here), and a time past the clock's range counts as
    /// expired at once: this never panics.
    pub fn new(access_token: impl Into<String>, token_type: impl Into<String>, expires_in: Duration, issued_at: SystemTime) -> Self {
        let expires_in = expires_in.min(MAX_TOKEN_LIFETIME);
        Self {
            access_token: Arc::new(SecretString::from(access_token.into())),
            token_type: Arc::from(token_type.into()),
            expires_in,
            expires_at: issued_at.checked_add(expires_in).unwrap_or(issued_at),
            scopes: Arc::from([]),
            issued_token_type: None,
            act_assertion: None,
            dpop_key: None,
        }
    }

    /// Sets the granted scopes.
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect::<Vec<String>>().into();
        self
    }

    /// Records the RFC 8693 `issued_token_type` the identity provider sent (always the
    /// access-token type: anything else is refused before a response is built).
    #[must_use]
    pub fn with_issued_token_type(mut self, issued_token_type: impl Into<String>) -> Self {
        self.issued_token_type = Some(Arc::from(issued_token_type.into()));
        self
    }

    /// The RFC 8693 `issued_token_type`, when the identity provider sent one.
    pub fn issued_token_type(&self) -> Option<&str> {
        self.issued_token_type.as_deref()
    }

    /// Attaches what signs the act assertion (Entra ID) sent as `X-Act-Assertion` beside
    /// the token, a new one for every API call.
    #[must_use]
    pub fn with_act_assertion_source(mut self, source: Arc<dyn ActAssertionSource>) -> Self {
        self.act_assertion = Some(source);
        self
    }

    /// The same token without its act assertion source (what a shared cache stores).
    #[must_use]
    pub fn without_act_assertion_source(mut self) -> Self {
        self.act_assertion = None;
        self
    }

    /// Attaches the key a DPoP-bound token (RFC 9449) is bound to: the API client then sends
    /// `Authorization: DPoP <token>` with a fresh proof signed by it on every request.
    #[must_use]
    pub fn with_dpop_key(mut self, key: DpopKey) -> Self {
        self.dpop_key = Some(key);
        self
    }

    /// Re-attaches `key` to a token whose `token_type` is `DPoP` (one a shared cache stored,
    /// which never holds the key); any other token is returned unchanged.
    #[must_use]
    pub fn with_restored_dpop_key(self, key: Option<&DpopKey>) -> Self {
        match key {
            Some(key) if self.token_type.eq_ignore_ascii_case(DPOP_HEADER) => self.with_dpop_key(key.clone()),
            _ => self,
        }
    }

    /// The key this token is bound to, when it is DPoP-bound.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop_key.as_ref()
    }

    /// Whether the token is DPoP-bound and holds its key (the API client then proves
    /// possession of it on every request).
    pub fn is_dpop_bound(&self) -> bool {
        self.dpop_key.is_some()
    }

    /// Whether the identity provider said the token is DPoP-bound (`token_type` `DPoP`),
    /// whether or not its key is attached.
    pub fn is_dpop_token_type(&self) -> bool {
        self.token_type.eq_ignore_ascii_case(DPOP_HEADER)
    }

    /// The access token.
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// The token type, usually `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The lifetime the identity provider granted.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// How long the token remains valid at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or(Duration::ZERO)
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether an act assertion travels beside the token (Entra ID).
    pub fn has_act_assertion(&self) -> bool {
        self.act_assertion.is_some()
    }

    /// A freshly signed act assertion for one API request, if the token has a source.
    ///
    /// # Errors
    /// The source's [`IamError`] when signing fails.
    pub fn new_act_assertion(&self) -> Result<Option<SecretString>, IamError> {
        self.act_assertion.as_ref().map(|source| source.sign_act_assertion()).transpose()
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("issued_token_type", &self.issued_token_type)
            .field("act_assertion_source", &self.act_assertion)
            .field("dpop_key", &self.dpop_key)
            .finish()
    }
}

impl PartialEq for TokenResponse {
    fn eq(&self, other: &Self) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
            && self.token_type == other.token_type
            && self.expires_in == other.expires_in
            && self.expires_at == other.expires_at
            && self.scopes == other.scopes
            && self.issued_token_type == other.issued_token_type
            && match (&self.act_assertion, &other.act_assertion) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
            && self.dpop_key.as_ref().map(DpopKey::thumbprint) == other.dpop_key.as_ref().map(DpopKey::thumbprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Signs "assertion-1", "assertion-2", ... so each use is told apart.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl ActAssertionSource for Counting {
        fn sign_act_assertion(&self) -> Result<SecretString, IamError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(SecretString::from(format!("assert-SECRET-{n}")))
        }
    }

    #[test]
    fn debug_redacts_token_and_assertion() {
        let t = TokenResponse::new("tok-SECRET", "Bearer", Duration::from_secs(60), SystemTime::UNIX_EPOCH)
            .with_act_assertion_source(Arc::new(Counting::default()))
            .with_scopes(["a"]);
        let debug = format!("{t:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("[REDACTED]") && debug.contains("Bearer"), "{debug}");
    }

    #[test]
    fn every_use_gets_a_new_act_assertion_even_from_a_clone() {
        let t = TokenResponse::new("t", "Bearer", Duration::from_secs(60), SystemTime::UNIX_EPOCH)
            .with_act_assertion_source(Arc::new(Counting::default()));
        let cached = t.clone();
        let first = t.new_act_assertion().unwrap().unwrap();
        let second = cached.new_act_assertion().unwrap().unwrap();
        assert_eq!((first.expose_secret(), second.expose_secret()), ("assert-SECRET-1", "assert-SECRET-2"));
        assert!(t.has_act_assertion() && t == cached);
        let plain = t.without_act_assertion_source();
        assert!(!plain.has_act_assertion());
        assert!(plain.new_act_assertion().unwrap().is_none());
    }

    #[test]
    fn a_dpop_key_is_attached_restored_and_redacted() {
        let key = DpopKey::generate(crate::SigningAlgorithm::Es256).unwrap();
        let bearer = TokenResponse::new("tok-SECRET", "Bearer", Duration::from_secs(60), SystemTime::UNIX_EPOCH);
        assert!(!bearer.is_dpop_bound() && bearer.dpop_key().is_none() && !bearer.is_dpop_token_type());
        assert!(!bearer.clone().with_restored_dpop_key(Some(&key)).is_dpop_bound(), "a Bearer token is never bound");
        let stored = TokenResponse::new("tok-SECRET", "dpop", Duration::from_secs(60), SystemTime::UNIX_EPOCH);
        assert!(stored.is_dpop_token_type() && !stored.is_dpop_bound());
        assert!(!stored.clone().with_restored_dpop_key(None).is_dpop_bound());
        let bound = stored.clone().with_restored_dpop_key(Some(&key));
        assert_eq!(bound.dpop_key().map(DpopKey::thumbprint), Some(key.thumbprint()));
        assert_ne!(bound, stored, "the key is part of equality");
        assert_eq!(bound, stored.with_dpop_key(key.clone()));
        let debug = format!("{bound:?}");
        assert!(!debug.contains("SECRET") && debug.contains(key.thumbprint()) && !debug.contains("BEGIN"), "{debug}");
    }

    #[test]
    fn absurd_lifetimes_never_panic_and_are_capped() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t = TokenResponse::new("t", "Bearer", Duration::from_secs(u64::MAX), issued);
        assert_eq!(t.expires_in(), MAX_TOKEN_LIFETIME);
        assert_eq!(t.expires_at(), issued + MAX_TOKEN_LIFETIME);
        // Past the clock's range: expired at once rather than a panic.
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(i64::MAX).unwrap() - 10);
        let t = TokenResponse::new("t", "Bearer", Duration::from_secs(3600), far);
        assert!(t.is_expired(far));
    }

    #[test]
    fn expiry_is_an_instant() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t = TokenResponse::new("t", "Bearer", Duration::from_secs(300), issued);
        assert_eq!(t.expires_at(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_300));
        assert_eq!(t.remaining(issued + Duration::from_secs(100)), Duration::from_secs(200));
        assert!(!t.is_expired(issued + Duration::from_secs(299)));
        assert!(t.is_expired(issued + Duration::from_secs(300)));
        assert_eq!(t.remaining(issued + Duration::from_secs(400)), Duration::ZERO);
    }
}
