//! What an identity provider hands back.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

/// The header that carries an act assertion (Entra ID) beside the access token.
pub const ACT_ASSERTION_HEADER: &str = "X-Act-Assertion";

/// A dual-subject access token and what is known about it.
///
/// The access token and the Entra ID act assertion are secrets: `Debug` never shows them,
/// and reading them takes an explicit [`ExposeSecret::expose_secret`].
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
#[derive(Clone)]
pub struct TokenResponse {
    access_token: SecretString,
    token_type: String,
    expires_in: Duration,
    expires_at: SystemTime,
    scopes: Vec<String>,
    act_assertion: Option<SecretString>,
}

impl TokenResponse {
    /// A token of `token_type` (usually `Bearer`) valid for `expires_in` from `issued_at`.
    pub fn new(access_token: impl Into<String>, token_type: impl Into<String>, expires_in: Duration, issued_at: SystemTime) -> Self {
        Self {
            access_token: SecretString::from(access_token.into()),
            token_type: token_type.into(),
            expires_in,
            expires_at: issued_at + expires_in,
            scopes: Vec::new(),
            act_assertion: None,
        }
    }

    /// Sets the granted scopes.
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Attaches an act assertion (Entra ID), sent as `X-Act-Assertion` beside the token.
    #[must_use]
    pub fn with_act_assertion(mut self, assertion: impl Into<String>) -> Self {
        self.act_assertion = Some(SecretString::from(assertion.into()));
        self
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

    /// The act assertion that travels beside the token (Entra ID), if any.
    pub fn act_assertion(&self) -> Option<&SecretString> {
        self.act_assertion.as_ref()
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
            .field("act_assertion", &self.act_assertion.as_ref().map(|_| "[REDACTED]"))
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
            && self.act_assertion.as_ref().map(ExposeSecret::expose_secret) == other.act_assertion.as_ref().map(ExposeSecret::expose_secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_token_and_assertion() {
        let t = TokenResponse::new("tok-SECRET", "Bearer", Duration::from_secs(60), SystemTime::UNIX_EPOCH)
            .with_act_assertion("assert-SECRET")
            .with_scopes(["a"]);
        let debug = format!("{t:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("[REDACTED]") && debug.contains("Bearer"), "{debug}");
        assert_eq!(t.act_assertion().unwrap().expose_secret(), "assert-SECRET");
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
