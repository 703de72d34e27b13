//! JWS compact serialization: `base64url(header).base64url(claims).base64url(signature)`.
//! Done here rather than by josekit so that the exact bytes (claim order, header fields)
//! are ours to decide and test, and parsing is strict.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::keys::SigningKey;
use super::validation::JwtError;
use crate::error::{ActJwtError, KeyError};

/// The three parts of a compact JWS, decoded; the signature is not checked. The header is
/// the whole JSON object, or the members a verifier reads ([`split_picking`]).
pub(crate) struct Parts<'a, H = Map<String, Value>> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: H,
    pub(crate) claims_bytes: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

fn malformed(reason: impl Into<String>) -> JwtError {
    JwtError::Malformed { reason: reason.into() }
}

fn decode_part(part: &str, which: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(format!("{which} is not base64url without padding")))
}

pub(crate) fn json_object(bytes: &[u8], which: &str) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(format!("{which} is not a JSON object"))),
        Err(_) => Err(malformed(format!("{which} is not valid JSON"))),
    }
}

/// The members named in `names` of the JSON object `bytes`, in that order; others are
/// parsed (the whole text must be valid JSON, as for [`json_object`]) and dropped. As in a
/// [`Map`], a member given twice counts with its last value. The errors are
/// [`json_object`]'s.
pub(crate) fn pick_members<const N: usize>(
    bytes: &[u8],
    which: &str,
    names: &'static [&'static str; N],
) -> Result<[Option<Value>; N], JwtError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let picked = PickMembers(names).deserialize(&mut deserializer).and_then(|picked| deserializer.end().map(|()| picked));
    match picked {
        Ok(picked) => Ok(picked),
        // The refusal, worded as for the whole object; were the object to parse after all,
        // its members are taken from it.
        Err(_) => {
            let mut object = json_object(bytes, which)?;
            Ok(names.map(|name| object.remove(name)))
        }
    }
}

/// Reads a JSON object keeping only the members of the given names.
struct PickMembers<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for PickMembers<N> {
    type Value = [Option<Value>; N];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for PickMembers<N> {
    type Value = [Option<Value>; N];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut picked: [Option<Value>; N] = std::array::from_fn(|_| None);
        while let Some(index) = map.next_key_seed(MemberIndex(self.0))? {
            // Every value is parsed in full, kept or not.
            let value: Value = map.next_value()?;
            if let Some(slot) = index.and_then(|i| picked.get_mut(i)) {
                *slot = Some(value);
            }
        }
        Ok(picked)
    }
}

/// A member name, as its index among the names looked for (`None`: not looked for).
pub(crate) struct MemberIndex(pub(crate) &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for MemberIndex {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberIndex {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|wanted| *wanted == name))
    }
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    split_with(token, |header| json_object(header, "header"))
}

/// As [`split`], keeping only the header members named in `names`.
pub(crate) fn split_picking<'a, const N: usize>(
    token: &'a str,
    names: &'static [&'static str; N],
) -> Result<Parts<'a, [Option<Value>; N]>, JwtError> {
    split_with(token, |header| pick_members(header, "header", names))
}

fn split_with<H>(token: &str, parse_header: impl FnOnce(&[u8]) -> Result<H, JwtError>) -> Result<Parts<'_, H>, JwtError> {
    let token = token.trim();
    let mut pieces = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (pieces.next(), pieces.next(), pieces.next(), pieces.next()) else {
        return Err(malformed("expected three dot-separated parts (a compact JWS)"));
    };
    if header.is_empty() || claims.is_empty() {
        return Err(malformed("empty header or claims part"));
    }
    let header_map = parse_header(&decode_part(header, "header")?)?;
    let claims_bytes = decode_part(claims, "claims")?;
    let signature = decode_part(signature, "signature")?;
    let signing_input = &token[..header.len() + 1 + claims.len()];
    Ok(Parts { signing_input, header: header_map, claims_bytes, signature })
}

/// Whatever can sign a compact JWS: an asymmetric [`SigningKey`] or an HMAC secret.
pub(crate) trait JwsSign {
    /// The JOSE `alg` name.
    fn alg(&self) -> &str;
    /// The `kid` to write, if any.
    fn kid(&self) -> Option<&str> {
        None
    }
    /// The `x5t#S256` certificate thumbprint to write, if any.
    fn x5t_s256(&self) -> Option<&str> {
        None
    }
    /// The signature over `message`.
    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

impl JwsSign for SigningKey {
    fn alg(&self) -> &str {
        self.algorithm().as_str()
    }
    fn kid(&self) -> Option<&str> {
        self.key_id()
    }
    fn x5t_s256(&self) -> Option<&str> {
        self.certificate_thumbprint()
    }
    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        SigningKey::sign_bytes(self, message)
    }
}

/// Signs `claims` as a compact JWS: header `{"alg","typ":"JWT"[,"kid"][,"x5t#S256"]}`.
pub(crate) fn sign<T: Serialize + ?Sized>(key: &dyn JwsSign, claims: &T) -> Result<String, KeyError> {
    sign_typed(key, "JWT", claims)
}

/// Signs `claims` as a compact JWS with this `typ`.
pub(crate) fn sign_typed<T: Serialize + ?Sized>(key: &dyn JwsSign, typ: &str, claims: &T) -> Result<String, KeyError> {
    sign_with_header(key, typ, Map::new(), claims)
}

/// Signs `claims` as a compact JWS with this `typ` and `extra` header members after
/// `alg`, `typ`, `kid` and `x5t#S256` (DPoP's `jwk`).
pub(crate) fn sign_with_header<T: Serialize + ?Sized>(
    key: &dyn JwsSign,
    typ: &str,
    extra: Map<String, Value>,
    claims: &T,
) -> Result<String, KeyError> {
    let header = JwsHeader { alg: key.alg(), typ, kid: key.kid(), x5t_s256: key.x5t_s256(), extra: &extra };
    let failed = |reason: String| KeyError::Signing { algorithm: key.alg().into(), reason };
    let header_json = if HEADER_NAMES.iter().any(|name| extra.contains_key(*name)) {
        // An extra member replacing one of ours: as a JSON object merges them.
        let mut merged = Map::new();
        header.write_into(&mut merged);
        serde_json::to_vec(&merged)
    } else {
        serde_json::to_vec(&header)
    }
    .map_err(|e| failed(format!("header: {e}")))?;
    let claims_json = serde_json::to_vec(claims).map_err(|e| failed(format!("claims: {e}")))?;
    let mut token = String::with_capacity(header_json.len() * 2 + claims_json.len() * 2 + 512);
    URL_SAFE_NO_PAD.encode_string(&header_json, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
    let signature = key.sign_bytes(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// The members a signed header starts with.
const HEADER_NAMES: [&str; 4] = ["alg", "typ", "kid", "x5t#S256"];

/// A JWS header, written as the JSON object `{"alg","typ"[,"kid"][,"x5t#S256"], extra...}`
/// without building that object first.
struct JwsHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: Option<&'a str>,
    x5t_s256: Option<&'a str>,
    extra: &'a Map<String, Value>,
}

impl JwsHeader<'_> {
    fn members(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("alg", Some(self.alg)), ("typ", Some(self.typ)), ("kid", self.kid), ("x5t#S256", self.x5t_s256)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value)))
    }

    /// The header as a JSON object (extra members replacing ours in place).
    fn write_into(&self, object: &mut Map<String, Value>) {
        for (name, value) in self.members() {
            object.insert(name.into(), Value::String(value.into()));
        }
        object.extend(self.extra.iter().map(|(name, value)| (name.clone(), value.clone())));
    }
}

impl Serialize for JwsHeader<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.members() {
            map.serialize_entry(name, value)?;
        }
        for (name, value) in self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A JWT's header and claims, decoded **without verifying anything**: for inspection and
/// debugging only.
///
/// ```
/// use dual_auth_core::dangerous::UnverifiedJwt;
///
/// let jwt = UnverifiedJwt::parse("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")?;
/// assert_eq!(jwt.header()["alg"], "none");
/// assert_eq!(jwt.claims()["sub"], "x");
/// # Ok::<(), dual_auth_core::ActJwtError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UnverifiedJwt {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedJwt {
    /// Decodes a compact JWT's header and claims.
    ///
    /// # Errors
    /// [`ActJwtError::Malformed`] when it is not three base64url parts with JSON objects.
    pub fn parse(token: &str) -> Result<Self, ActJwtError> {
        let parts = split(token).map_err(ActJwtError::from)?;
        Ok(Self {
            claims: json_object(&parts.claims_bytes, "claims").map_err(ActJwtError::from)?,
            header: parts.header,
            signing_input: parts.signing_input.to_owned(),
            signature: parts.signature,
        })
    }

    /// The signed bytes: the first two parts, as they came.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The decoded signature; check it with [`crate::VerifyingKey::verifies`].
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Takes the claims.
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// The JOSE header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    /// What `pick_members` must give: the members of the whole object, or its error.
    fn through_map(bytes: &[u8]) -> Result<[Option<Value>; 3], String> {
        json_object(bytes, "claims").map(|mut object| NAMES.map(|name| object.remove(name))).map_err(|e| e.to_string())
    }

    /// Signs with a fixed "signature", to look at the header.
    struct Fixed(Option<&'static str>);

    impl JwsSign for Fixed {
        fn alg(&self) -> &str {
            "ES256"
        }
        fn kid(&self) -> Option<&str> {
            self.0
        }
        fn x5t_s256(&self) -> Option<&str> {
            self.0.map(|_| "thumb")
        }
        fn sign_bytes(&self, _: &[u8]) -> Result<Vec<u8>, KeyError> {
            Ok(vec![1, 2, 3])
        }
    }

    #[test]
    fn signed_headers_are_the_json_object_of_their_members() {
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256"});
        for key in [Fixed(None), Fixed(Some("k\"1"))] {
            for extra in [Map::new(), Map::from_iter([("jwk".to_owned(), jwk.clone())]), Map::from_iter([("typ".to_owned(), jwk.clone())])]
            {
                let token = sign_with_header(&key, "dpop+jwt", extra.clone(), &serde_json::json!({"a": 1})).unwrap();
                let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
                let mut expected = Map::new();
                expected.insert("alg".into(), "ES256".into());
                expected.insert("typ".into(), "dpop+jwt".into());
                if let Some(kid) = key.0 {
                    expected.insert("kid".into(), kid.into());
                    expected.insert("x5t#S256".into(), "thumb".into());
                }
                expected.extend(extra);
                assert_eq!(header, serde_json::to_vec(&expected).unwrap());
            }
        }
    }

    #[test]
    fn picked_members_are_those_of_the_whole_object_and_refusals_the_same() {
        let texts: &[&str] = &[
            r#"{"a":1,"b":"x","z":{"deep":[1,2,{"c":3}]},"c":null}"#,
            r#"{"a":1,"a":2,"b":{"k":"v"},"b":[3]}"#,
            r#" { "\u0061" : "escaped name" , "b\n" : 1 } "#,
            r#"{}"#,
            r#"{"z":1e400}"#,
            r#"{"z":-1e400,"a":1}"#,
            r#"{"a":1} trailing"#,
            r#"{"a":1,}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"42"#,
            "",
            "{\"z\":\"\u{0}\"}",
        ];
        let deep = format!("{{\"z\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let invalid_utf8 = b"{\"z\":\"\xff\"}".to_vec();
        let mut all: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
        all.push(deep.into_bytes());
        all.push(invalid_utf8);
        for bytes in all {
            let picked = pick_members(&bytes, "claims", &NAMES).map_err(|e| e.to_string());
            assert_eq!(picked, through_map(&bytes), "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
