//! JWS compact serialization: `base64url(header).base64url(claims).base64url(signature)`.
//! Done here rather than by josekit so that the exact bytes (claim order, header fields)
//! are ours to decide and test, and parsing is strict.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};

use super::keys::SigningKey;
use crate::error::{ActJwtError, KeyError};

/// The three parts of a compact JWS, decoded; the signature is not checked.
pub(crate) struct Parts<'a> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: Map<String, Value>,
    pub(crate) claims_bytes: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

fn malformed(reason: impl Into<String>) -> ActJwtError {
    ActJwtError::Malformed { reason: reason.into() }
}

fn decode_part(part: &str, which: &str) -> Result<Vec<u8>, ActJwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(format!("{which} is not base64url without padding")))
}

pub(crate) fn json_object(bytes: &[u8], which: &str) -> Result<Map<String, Value>, ActJwtError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(format!("{which} is not a JSON object"))),
        Err(_) => Err(malformed(format!("{which} is not valid JSON"))),
    }
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, ActJwtError> {
    let token = token.trim();
    let mut pieces = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (pieces.next(), pieces.next(), pieces.next(), pieces.next()) else {
        return Err(malformed("expected three dot-separated parts (a compact JWS)"));
    };
    if header.is_empty() || claims.is_empty() {
        return Err(malformed("empty header or claims part"));
    }
    let header_map = json_object(&decode_part(header, "header")?, "header")?;
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
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(key.alg().into()));
    header.insert("typ".into(), Value::String(typ.into()));
    if let Some(kid) = key.kid() {
        header.insert("kid".into(), Value::String(kid.into()));
    }
    if let Some(thumbprint) = key.x5t_s256() {
        header.insert("x5t#S256".into(), Value::String(thumbprint.into()));
    }
    header.extend(extra);
    let failed = |reason: String| KeyError::Signing { algorithm: key.alg().into(), reason };
    let header_json = serde_json::to_vec(&header).map_err(|e| failed(format!("header: {e}")))?;
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

/// A JWT's header and claims, decoded **without verifying anything**: for inspection and
/// debugging only.
///
/// ```
/// use dual_auth_core::UnverifiedJwt;
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
        let parts = split(token)?;
        Ok(Self {
            claims: json_object(&parts.claims_bytes, "claims")?,
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
