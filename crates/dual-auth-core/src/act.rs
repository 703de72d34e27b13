//! The human identity an agent acts for: the `act` object.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ActError;

/// The human on whose behalf an agent works, as carried in the `act` claim.
///
/// `sub` is the identity provider's user id and is never empty. `email`, `name` and the
/// Entra ID object id `oid` are optional; any further claims are kept as they came, so an
/// `Act` round-trips the JSON it was parsed from.
///
/// `Debug` shows `sub` only: e-mail and name are personal data and stay out of logs.
///
/// ```
/// use dual_auth_core::Act;
///
/// let act = Act::new("user_12345")?.with_email("alice@corp.example.com").with_name("Alice Smith");
/// let json = serde_json::to_string(&act).unwrap();
/// assert_eq!(json, r#"{"sub":"user_12345","email":"alice@corp.example.com","name":"Alice Smith"}"#);
/// assert_eq!(serde_json::from_str::<Act>(&json).unwrap(), act);
/// # Ok::<(), dual_auth_core::ActError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct Act {
    sub: String,
    email: Option<String>,
    name: Option<String>,
    oid: Option<String>,
    extra: Map<String, Value>,
}

const SUB: &str = "sub";
const EMAIL: &str = "email";
const NAME: &str = "name";
const OID: &str = "oid";

impl Act {
    /// An act with this `sub` (the identity provider's user id) and nothing else.
    ///
    /// # Errors
    /// [`ActError::EmptySub`] when `sub` is empty or only white space.
    pub fn new(sub: impl Into<String>) -> Result<Self, ActError> {
        let sub = sub.into();
        if sub.trim().is_empty() {
            return Err(ActError::EmptySub);
        }
        Ok(Self { sub, email: None, name: None, oid: None, extra: Map::new() })
    }

    /// Sets the e-mail address.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the Microsoft Entra ID object id.
    #[must_use]
    pub fn with_oid(mut self, oid: impl Into<String>) -> Self {
        self.oid = Some(oid.into());
        self
    }

    /// Parses an act from a JSON value; it must be an object with a non-empty string `sub`.
    ///
    /// # Errors
    /// [`ActError::NotAnObject`], [`ActError::MissingSub`], [`ActError::EmptySub`] or
    /// [`ActError::InvalidField`] (a known field that is not a string).
    pub fn from_value(value: Value) -> Result<Self, ActError> {
        match value {
            Value::Object(map) => Self::try_from(map),
            other => Err(ActError::NotAnObject { found: json_type_name(&other) }),
        }
    }

    /// The identity provider's user id.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// The e-mail address, if known.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The display name, if known.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The Microsoft Entra ID object id, if known.
    pub fn oid(&self) -> Option<&str> {
        self.oid.as_deref()
    }

    /// Claims other than `sub`, `email`, `name` and `oid`, in the order they came.
    pub fn extra_claims(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Adds or replaces a further claim. The four known claims cannot be set this way.
    ///
    /// # Errors
    /// [`ActError::InvalidField`] when `name` is `sub`, `email`, `name` or `oid`: use the
    /// typed setters for those.
    pub fn insert_claim(&mut self, name: impl Into<String>, value: Value) -> Result<(), ActError> {
        let name = name.into();
        if [SUB, EMAIL, NAME, OID].contains(&name.as_str()) {
            return Err(ActError::InvalidField { field: name, reason: "is a typed field: use Act::new or a with_* method".into() });
        }
        self.extra.insert(name, value);
        Ok(())
    }

    /// A value safe to write to logs as `human_id`: `sub`, unless `sub` looks like an
    /// e-mail address (upstream falls back to the e-mail), in which case it is withheld.
    pub fn log_id(&self) -> HumanLogId<'_> {
        HumanLogId(&self.sub)
    }

    /// The act as a JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.clone().into())
    }
}

impl fmt::Debug for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Act")
            .field("sub", &self.log_id())
            .field("email", &self.email.as_ref().map(|_| "[REDACTED]"))
            .field("name", &self.name.as_ref().map(|_| "[REDACTED]"))
            .field("oid", &self.oid)
            .field("extra_claims", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The `human_id` written to logs: an act's `sub`, withheld when it is an e-mail address.
#[derive(Clone, Copy)]
pub struct HumanLogId<'a>(&'a str);

impl HumanLogId<'_> {
    /// Whether the id is withheld because `sub` looks like an e-mail address.
    pub fn is_withheld(&self) -> bool {
        looks_like_email(self.0)
    }
}

impl fmt::Display for HumanLogId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_withheld() { f.write_str("[sub-is-email-withheld]") } else { f.write_str(self.0) }
    }
}

impl fmt::Debug for HumanLogId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether a string looks like an e-mail address (`local@domain.tld`).
pub(crate) fn looks_like_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.starts_with('.'),
        None => false,
    }
}

pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn optional_string(value: Option<Value>, field: &str) -> Result<Option<String>, ActError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => {
            Err(ActError::InvalidField { field: field.into(), reason: format!("must be a string, found {}", json_type_name(&other)) })
        }
    }
}

impl TryFrom<Map<String, Value>> for Act {
    type Error = ActError;

    fn try_from(mut map: Map<String, Value>) -> Result<Self, ActError> {
        let sub = map.shift_remove(SUB);
        let email = map.shift_remove(EMAIL);
        let name = map.shift_remove(NAME);
        let oid = map.shift_remove(OID);
        Act::from_members(sub, email, name, oid, map)
    }
}

impl Act {
    /// The checks of [`Act::from_value`], on an object's members taken apart.
    fn from_members(
        sub: Option<Value>,
        email: Option<Value>,
        name: Option<Value>,
        oid: Option<Value>,
        extra: Map<String, Value>,
    ) -> Result<Self, ActError> {
        let sub = match sub {
            None => return Err(ActError::MissingSub),
            Some(Value::String(s)) if s.trim().is_empty() => return Err(ActError::EmptySub),
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(ActError::InvalidField {
                    field: SUB.into(),
                    reason: format!("must be a string, found {}", json_type_name(&other)),
                });
            }
        };
        let email = optional_string(email, EMAIL)?;
        let name = optional_string(name, NAME)?;
        let oid = optional_string(oid, OID)?;
        Ok(Self { sub, email, name, oid, extra })
    }
}

/// An `act` claim read straight from JSON text, without a JSON object built first: its
/// members, or the type of JSON value it is when not an object. [`ParsedAct::into_act`]
/// checks it as [`Act::from_value`] does the same JSON, with the same errors.
pub(crate) enum ParsedAct {
    /// Boxed: an act's members are large beside a type name.
    Object(Box<ActMembers>),
    NotAnObject(&'static str),
}

/// An act object's members, the typed ones apart.
#[derive(Default)]
pub(crate) struct ActMembers {
    sub: Option<Value>,
    email: Option<Value>,
    name: Option<Value>,
    oid: Option<Value>,
    extra: Map<String, Value>,
}

impl ParsedAct {
    /// The act, or why it is not one.
    ///
    /// # Errors
    /// As [`Act::from_value`].
    pub(crate) fn into_act(self) -> Result<Act, ActError> {
        match self {
            ParsedAct::Object(members) => {
                let ActMembers { sub, email, name, oid, extra } = *members;
                Act::from_members(sub, email, name, oid, extra)
            }
            ParsedAct::NotAnObject(found) => Err(ActError::NotAnObject { found }),
        }
    }
}

impl<'de> Deserialize<'de> for ParsedAct {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ParsedActVisitor)
    }
}

struct ParsedActVisitor;

impl<'de> serde::de::Visitor<'de> for ParsedActVisitor {
    type Value = ParsedAct;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<ParsedAct, E> {
        Ok(ParsedAct::NotAnObject("a boolean"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<ParsedAct, E> {
        Ok(ParsedAct::NotAnObject("a number"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<ParsedAct, E> {
        Ok(ParsedAct::NotAnObject("a number"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<ParsedAct, E> {
        Ok(ParsedAct::NotAnObject("a number"))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<ParsedAct, E> {
        Ok(ParsedAct::NotAnObject("a string"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<ParsedAct, E> {
        Ok(ParsedAct::NotAnObject("null"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedAct, A::Error> {
        // Parsed in full, as a JSON value would be.
        while seq.next_element::<Value>()?.is_some() {}
        Ok(ParsedAct::NotAnObject("an array"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ParsedAct, A::Error> {
        let mut members = Box::<ActMembers>::default();
        // As in a JSON object, a member given twice counts with its last value.
        while let Some(key) = map.next_key::<ActKey>()? {
            let value: Value = map.next_value()?;
            match key {
                ActKey::Sub => members.sub = Some(value),
                ActKey::Email => members.email = Some(value),
                ActKey::Name => members.name = Some(value),
                ActKey::Oid => members.oid = Some(value),
                ActKey::Other(key) => {
                    members.extra.insert(key, value);
                }
            }
        }
        Ok(ParsedAct::Object(members))
    }
}

/// A member name of an act object.
enum ActKey {
    Sub,
    Email,
    Name,
    Oid,
    Other(String),
}

impl<'de> Deserialize<'de> for ActKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ActKeyVisitor)
    }
}

struct ActKeyVisitor;

impl serde::de::Visitor<'_> for ActKeyVisitor {
    type Value = ActKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<ActKey, E> {
        Ok(match key {
            SUB => ActKey::Sub,
            EMAIL => ActKey::Email,
            NAME => ActKey::Name,
            OID => ActKey::Oid,
            other => ActKey::Other(other.to_owned()),
        })
    }

    fn visit_string<E: serde::de::Error>(self, key: String) -> Result<ActKey, E> {
        match key.as_str() {
            SUB | EMAIL | NAME | OID => self.visit_str(&key),
            _ => Ok(ActKey::Other(key)),
        }
    }
}

/// The JSON object of [`Map::from`]: `sub`, `email`, `name`, `oid` (those set), then the
/// extra claims in order, written without copying the act into a map first.
impl Serialize for Act {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let typed = [(EMAIL, &self.email), (NAME, &self.name), (OID, &self.oid)];
        let len = 1 + typed.iter().filter(|(_, value)| value.is_some()).count() + self.extra.len();
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry(SUB, &self.sub)?;
        for (field, value) in typed {
            if let Some(value) = value {
                map.serialize_entry(field, value)?;
            }
        }
        // An act never holds the typed claims among its extra ones (it refuses them there).
        for (field, value) in &self.extra {
            map.serialize_entry(field, value)?;
        }
        map.end()
    }
}

impl From<Act> for Map<String, Value> {
    fn from(act: Act) -> Self {
        let mut map = Map::with_capacity(4 + act.extra.len());
        map.insert(SUB.into(), Value::String(act.sub));
        for (field, value) in [(EMAIL, act.email), (NAME, act.name), (OID, act.oid)] {
            if let Some(value) = value {
                map.insert(field.into(), Value::String(value));
            }
        }
        map.extend(act.extra);
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_exact_json_with_extra_claims_in_order() {
        let text = r#"{"sub":"u-1","email":"a@b.example","name":"A","oid":"o-1","tenant":"t","roles":["x","y"],"n":1}"#;
        let act: Act = serde_json::from_str(text).unwrap();
        assert_eq!(act.sub(), "u-1");
        assert_eq!(act.email(), Some("a@b.example"));
        assert_eq!(act.name(), Some("A"));
        assert_eq!(act.oid(), Some("o-1"));
        assert_eq!(act.extra_claims().keys().collect::<Vec<_>>(), ["tenant", "roles", "n"]);
        assert_eq!(serde_json::to_string(&act).unwrap(), text);
    }

    #[test]
    fn sub_is_required_non_empty_and_a_string() {
        assert!(matches!(Act::from_value(json!({"email": "a@b.c"})), Err(ActError::MissingSub)));
        assert!(matches!(Act::from_value(json!({"sub": ""})), Err(ActError::EmptySub)));
        assert!(matches!(Act::from_value(json!({"sub": "  "})), Err(ActError::EmptySub)));
        let err = Act::from_value(json!({"sub": 42})).unwrap_err();
        assert!(matches!(&err, ActError::InvalidField { field, .. } if field == "sub"), "{err}");
        assert!(matches!(Act::new(""), Err(ActError::EmptySub)));
    }

    #[test]
    fn act_must_be_an_object() {
        let err = Act::from_value(json!("user_12345")).unwrap_err();
        assert!(matches!(err, ActError::NotAnObject { found: "a string" }));
        assert_eq!(err.to_string(), "act must be a JSON object with a non-empty \"sub\", found a string");
        assert!(serde_json::from_str::<Act>("[1]").is_err());
    }

    #[test]
    fn known_fields_must_be_strings() {
        let err = Act::from_value(json!({"sub": "u", "email": ["x"]})).unwrap_err();
        assert!(matches!(&err, ActError::InvalidField { field, .. } if field == "email"));
        assert!(err.to_string().contains("found an array"), "{err}");
    }

    #[test]
    fn debug_hides_email_and_name() {
        let act = Act::new("u-1").unwrap().with_email("alice@corp.example.com").with_name("Alice Smith");
        let debug = format!("{act:?}");
        assert!(debug.contains("u-1"), "{debug}");
        assert!(!debug.contains("alice"), "{debug}");
        assert!(!debug.contains("Alice"), "{debug}");
    }

    #[test]
    fn log_id_withholds_email_subs() {
        let act = Act::new("alice@corp.example.com").unwrap();
        assert!(act.log_id().is_withheld());
        assert_eq!(act.log_id().to_string(), "[sub-is-email-withheld]");
        assert!(!format!("{act:?}").contains("alice"));
        let act = Act::new("auth0|63f1234567890abcdef12345").unwrap();
        assert!(!act.log_id().is_withheld());
        assert_eq!(act.log_id().to_string(), "auth0|63f1234567890abcdef12345");
    }

    #[test]
    fn serializes_as_its_json_object() {
        let mut act = Act::new("u \"1\"").unwrap().with_oid("o").with_email("e@x.example");
        act.insert_claim("roles", json!(["a", {"z": 1, "b": null}])).unwrap();
        act.insert_claim("n", json!(1.5)).unwrap();
        for act in [act, Act::new("s").unwrap(), Act::new("s").unwrap().with_name("N")] {
            assert_eq!(serde_json::to_string(&act).unwrap(), Value::Object(act.clone().into()).to_string());
            assert_eq!(serde_json::to_value(&act).unwrap(), act.to_value());
        }
    }

    #[test]
    fn insert_claim_refuses_typed_fields() {
        let mut act = Act::new("u").unwrap();
        assert!(act.insert_claim("sub", json!("other")).is_err());
        act.insert_claim("department", json!("finance")).unwrap();
        assert_eq!(act.to_value(), json!({"sub": "u", "department": "finance"}));
    }
}
