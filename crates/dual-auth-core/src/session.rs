//! The logged-in human, as a web application knows them, and how it becomes an [`Act`].

use std::fmt;

use serde_json::{Map, Value};

use crate::act::{Act, json_type_name, looks_like_email};
use crate::error::ActError;

/// Claim names looked up, in order, for each field of a [`UserSession`] built from a claims
/// map (an OIDC ID token's claims or a session dictionary), as the Python package does.
pub mod claim_lookup {
    /// Where the e-mail address is looked for.
    pub const EMAIL: &[&str] = &["email", "user_email", "userPrincipalName", "mail"];
    /// Where the identity provider's user id is looked for.
    pub const USER_ID: &[&str] = &["user_id", "sub", "oid", "uid"];
    /// Where the display name is looked for.
    pub const NAME: &[&str] = &["name", "display_name", "displayName"];
    /// Where the Microsoft Entra ID object id is looked for.
    pub const OID: &[&str] = &["oid"];
}

/// An authenticated user as the web application knows them.
///
/// `user_id` should be the identity provider's user id: it becomes `act.sub`. Without it the
/// e-mail address is used, as upstream does, and that is personal data in every token and
/// log that names the user: a warning is logged (without the address).
///
/// `Debug` shows the user id only.
///
/// ```
/// use dual_auth_core::UserSession;
///
/// let session = UserSession::new("alice@corp.example.com")
///     .with_user_name("Alice Smith")
///     .with_user_id("user_12345");
/// let act = session.to_act()?;
/// assert_eq!(act.sub(), "user_12345");
/// assert_eq!(act.email(), Some("alice@corp.example.com"));
/// assert_eq!(act.name(), Some("Alice Smith"));
/// # Ok::<(), dual_auth_core::ActError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserSession {
    /// The user's e-mail address (required).
    pub user_email: String,
    /// The user's display name.
    pub user_name: Option<String>,
    /// The identity provider's id for the user; becomes `act.sub`.
    pub user_id: Option<String>,
    /// The Microsoft Entra ID object id, for Entra ID users.
    pub user_oid: Option<String>,
}

impl UserSession {
    /// A session for this e-mail address, with no name or ids yet.
    pub fn new(user_email: impl Into<String>) -> Self {
        Self { user_email: user_email.into(), user_name: None, user_id: None, user_oid: None }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_user_name(mut self, name: impl Into<String>) -> Self {
        self.user_name = Some(name.into());
        self
    }

    /// Sets the identity provider's user id.
    #[must_use]
    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// Sets the Microsoft Entra ID object id.
    #[must_use]
    pub fn with_user_oid(mut self, oid: impl Into<String>) -> Self {
        self.user_oid = Some(oid.into());
        self
    }

    /// Builds a session from a claims map, looking each field up in the order of
    /// [`claim_lookup`]. Empty and white-space-only values count as absent.
    ///
    /// # Errors
    /// [`ActError::MissingEmail`] when no e-mail claim is present;
    /// [`ActError::InvalidField`] when a claim used is not a string.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, ActError> {
        let user_email = first_string(claims, claim_lookup::EMAIL)?.ok_or(ActError::MissingEmail)?;
        Ok(Self {
            user_email,
            user_name: first_string(claims, claim_lookup::NAME)?,
            user_id: first_string(claims, claim_lookup::USER_ID)?,
            user_oid: first_string(claims, claim_lookup::OID)?,
        })
    }

    /// The human identity for tokens: `sub` = user id (else e-mail), `email`, `name` when
    /// not empty, `oid` when known.
    ///
    /// # Errors
    /// [`ActError::MissingEmail`] when the e-mail address is empty.
    pub fn to_act(&self) -> Result<Act, ActError> {
        let email = non_empty(&self.user_email).ok_or(ActError::MissingEmail)?;
        let user_id = self.user_id.as_deref().and_then(non_empty);
        let sub = match user_id {
            Some(id) => id,
            None => {
                tracing::warn!(
                    event = "act_sub_email_fallback",
                    "session has no user id: act.sub falls back to the e-mail address; \
                     set user_id to the identity provider's user id"
                );
                email
            }
        };
        let mut act = Act::new(sub)?.with_email(email);
        if let Some(name) = self.user_name.as_deref().and_then(non_empty) {
            act = act.with_name(name);
        }
        if let Some(oid) = self.user_oid.as_deref().and_then(non_empty) {
            act = act.with_oid(oid);
        }
        if looks_like_email(act.sub()) && user_id.is_some() {
            tracing::warn!(event = "act_sub_looks_like_email", "act.sub looks like an e-mail address");
        }
        tracing::debug!(event = "act_extracted", human_id = %act.log_id(), has_name = act.name().is_some());
        Ok(act)
    }
}

impl fmt::Debug for UserSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSession")
            .field("user_email", &"[REDACTED]")
            .field("user_name", &self.user_name.as_ref().map(|_| "[REDACTED]"))
            .field("user_id", &self.user_id)
            .field("user_oid", &self.user_oid)
            .finish()
    }
}

fn non_empty(value: &str) -> Option<&str> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

fn first_string(claims: &Map<String, Value>, names: &[&str]) -> Result<Option<String>, ActError> {
    for name in names {
        match claims.get(*name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if let Some(value) = non_empty(s) {
                    return Ok(Some(value.to_owned()));
                }
            }
            Some(other) => {
                return Err(ActError::InvalidField {
                    field: (*name).to_owned(),
                    reason: format!("must be a string, found {}", json_type_name(other)),
                });
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn struct_with_id_uses_it_as_sub() {
        let act = UserSession::new("alice@corp.example.com").with_user_name("Alice Smith").with_user_id("user_12345").to_act().unwrap();
        assert_eq!(act.to_value(), json!({"sub": "user_12345", "email": "alice@corp.example.com", "name": "Alice Smith"}));
    }

    #[test]
    fn without_id_sub_falls_back_to_email_and_empty_name_is_omitted() {
        let act = UserSession::new("alice@corp.example.com").with_user_name("").to_act().unwrap();
        assert_eq!(act.to_value(), json!({"sub": "alice@corp.example.com", "email": "alice@corp.example.com"}));
        assert!(act.log_id().is_withheld());
    }

    #[test]
    fn empty_or_blank_email_is_an_error() {
        for email in ["", "   "] {
            let err = UserSession::new(email).with_user_id("u").to_act().unwrap_err();
            assert!(matches!(err, ActError::MissingEmail));
            assert_eq!(
                err.to_string(),
                "Session must contain email: set user_email (or an email, user_email, userPrincipalName or mail claim)"
            );
        }
    }

    #[test]
    fn blank_user_id_counts_as_absent() {
        let act = UserSession::new("a@b.example").with_user_id("  ").to_act().unwrap();
        assert_eq!(act.sub(), "a@b.example");
    }

    #[test]
    fn oid_is_carried_into_act() {
        let act = UserSession::new("a@b.example").with_user_id("oid-1").with_user_oid("oid-1").to_act().unwrap();
        assert_eq!(act.to_value(), json!({"sub": "oid-1", "email": "a@b.example", "oid": "oid-1"}));
    }

    #[test]
    fn claims_are_looked_up_in_upstream_order() {
        let s = UserSession::from_claims(&claims(json!({
            "mail": "m@x.example", "userPrincipalName": "upn@x.example",
            "uid": "uid-1", "oid": "oid-1", "sub": "sub-1",
            "displayName": "DN", "display_name": "dn",
        })))
        .unwrap();
        assert_eq!(s.user_email, "upn@x.example");
        assert_eq!(s.user_id.as_deref(), Some("sub-1"));
        assert_eq!(s.user_name.as_deref(), Some("dn"));
        assert_eq!(s.user_oid.as_deref(), Some("oid-1"));

        let s = UserSession::from_claims(&claims(json!({
            "email": "e@x.example", "user_email": "ue@x.example", "user_id": "id-1", "sub": "sub-1", "name": "N"
        })))
        .unwrap();
        assert_eq!((s.user_email.as_str(), s.user_id.as_deref(), s.user_name.as_deref()), ("e@x.example", Some("id-1"), Some("N")));
    }

    #[test]
    fn entra_claims_give_oid_as_sub_when_no_sub() {
        let act = UserSession::from_claims(&claims(json!({"userPrincipalName": "a@x.example", "oid": "0000-oid", "name": "A"})))
            .unwrap()
            .to_act()
            .unwrap();
        assert_eq!(act.to_value(), json!({"sub": "0000-oid", "email": "a@x.example", "name": "A", "oid": "0000-oid"}));
    }

    #[test]
    fn claims_without_email_fail_with_upstream_message() {
        let err = UserSession::from_claims(&claims(json!({"sub": "u", "email": ""}))).unwrap_err();
        assert!(matches!(err, ActError::MissingEmail));
        assert!(err.to_string().starts_with("Session must contain email"));
    }

    #[test]
    fn non_string_claims_are_errors_not_silently_skipped() {
        let err = UserSession::from_claims(&claims(json!({"email": "a@x.example", "sub": 7}))).unwrap_err();
        assert!(matches!(&err, ActError::InvalidField { field, .. } if field == "sub"), "{err}");
    }

    #[test]
    fn debug_redacts_email_and_name() {
        let s = UserSession::new("alice@corp.example.com").with_user_name("Alice").with_user_id("u-9");
        let debug = format!("{s:?}");
        assert!(!debug.contains("alice") && !debug.contains("Alice") && debug.contains("u-9"), "{debug}");
    }
}
