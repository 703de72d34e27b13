//! The identity provider's own JWT handling, with OpenSSL directly: it checks what the
//! library sends without the library's code, so a mistake there cannot hide here. That
//! includes DPoP proofs (RFC 9449): their `jwk` is read into an OpenSSL key here
//! ([`proof_key`]), verified here (ES256, EdDSA, RS256, PS256), and thumbprinted here
//! (RFC 7638, [`jwk_thumbprint`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use serde_json::{Map, Value};

/// A compact JWT, decoded but not yet trusted.
pub(crate) struct Jwt {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

pub(crate) fn decode(token: &str) -> Result<Jwt, &'static str> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else { return Err("not a compact JWT") };
    let object = |part: &str| -> Result<Map<String, Value>, &'static str> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "not base64url")?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("not a JSON object"),
        }
    };
    Ok(Jwt {
        header: object(header)?,
        claims: object(claims)?,
        signing_input: format!("{header}.{claims}"),
        signature: URL_SAFE_NO_PAD.decode(signature).map_err(|_| "signature not base64url")?,
    })
}

impl Jwt {
    pub(crate) fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or_default()
    }

    pub(crate) fn verifies_hs256(&self, secret: &[u8]) -> bool {
        let (Ok(key), true) = (PKey::hmac(secret), self.alg() == "HS256") else { return false };
        let Ok(mut signer) = Signer::new(MessageDigest::sha256(), &key) else { return false };
        signer.update(self.signing_input.as_bytes()).is_ok()
            && signer.sign_to_vec().is_ok_and(|mac| mac.len() == self.signature.len() && openssl::memcmp::eq(&mac, &self.signature))
    }

    /// RS256, PS256, ES256 or EdDSA (Ed25519) with a registered public key; the algorithm
    /// is the one the key was registered for, never the header's alone.
    pub(crate) fn verifies_with(&self, key: &PKey<Public>, registered_alg: &str) -> bool {
        if self.alg() != registered_alg {
            return false;
        }
        if registered_alg == "EdDSA" {
            // RFC 8037: the raw 64-byte Ed25519 signature over the signing input, no digest.
            let Ok(mut verifier) = Verifier::new_without_digest(key) else { return false };
            return key.id() == Id::ED25519
                && self.signature.len() == 64
                && verifier.verify_oneshot(&self.signature, self.signing_input.as_bytes()).unwrap_or(false);
        }
        let mut signature = self.signature.clone();
        let Ok(mut verifier) = Verifier::new(MessageDigest::sha256(), key) else { return false };
        match registered_alg {
            "RS256" => {}
            "PS256" => {
                if verifier.set_rsa_padding(Padding::PKCS1_PSS).is_err()
                    || verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).is_err()
                {
                    return false;
                }
            }
            "ES256" => {
                if signature.len() != 64 {
                    return false;
                }
                let (Ok(r), Ok(s)) = (BigNum::from_slice(&signature[..32]), BigNum::from_slice(&signature[32..])) else { return false };
                let Some(der) = EcdsaSig::from_private_components(r, s).ok().and_then(|sig| sig.to_der().ok()) else { return false };
                signature = der;
            }
            _ => return false,
        }
        verifier.update(self.signing_input.as_bytes()).is_ok() && verifier.verify(&signature).unwrap_or(false)
    }

    pub(crate) fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub(crate) fn u64_claim(&self, name: &str) -> Option<u64> {
        self.claims.get(name).and_then(Value::as_u64)
    }
}

/// The members of a JWK that belong to a private (or symmetric) key.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a DPoP proof's `jwk` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwkProblem {
    /// `kty` (or `crv`) is not one the proof's `alg` takes.
    UnsupportedKeyType,
    /// The public key members are missing or are not a valid key.
    NoPublicKey,
    /// Private key members are present.
    Private,
}

/// A base64url JWK member, decoded.
fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JwkProblem> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or(JwkProblem::NoPublicKey)?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| JwkProblem::NoPublicKey)
}

/// A DPoP proof's public key from its `jwk`, of the kind `alg` needs: EC P-256 for ES256,
/// OKP Ed25519 for EdDSA, RSA (2048 bits or more) for RS256 and PS256. A `jwk` with any
/// private member is refused, and so is one whose own `alg` is another.
pub(crate) fn proof_key(jwk: &Map<String, Value>, alg: &str) -> Result<PKey<Public>, JwkProblem> {
    if PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(JwkProblem::Private);
    }
    if jwk.get("alg").is_some_and(|own| own.as_str() != Some(alg)) {
        return Err(JwkProblem::UnsupportedKeyType);
    }
    let kty = jwk.get("kty").and_then(Value::as_str);
    let crv = jwk.get("crv").and_then(Value::as_str);
    let no_key = |_| JwkProblem::NoPublicKey;
    match (alg, kty, crv) {
        ("ES256", Some("EC"), Some("P-256")) => {
            let (x, y) = (member(jwk, "x")?, member(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(JwkProblem::NoPublicKey);
            }
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(no_key)?;
            let (x, y) = (BigNum::from_slice(&x).map_err(no_key)?, BigNum::from_slice(&y).map_err(no_key)?);
            // Refuses a point that is not on the curve.
            let key = EcKey::from_public_key_affine_coordinates(&group, &x, &y).map_err(no_key)?;
            let mut context = BigNumContext::new().map_err(no_key)?;
            if key.public_key().is_infinity(&group) || !key.public_key().is_on_curve(&group, &mut context).unwrap_or(false) {
                return Err(JwkProblem::NoPublicKey);
            }
            PKey::from_ec_key(key).map_err(no_key)
        }
        ("EdDSA", Some("OKP"), Some("Ed25519")) => {
            let x = member(jwk, "x")?;
            if x.len() != 32 {
                return Err(JwkProblem::NoPublicKey);
            }
            PKey::public_key_from_raw_bytes(&x, Id::ED25519).map_err(no_key)
        }
        ("RS256" | "PS256", Some("RSA"), _) => {
            let (n, e) = (member(jwk, "n")?, member(jwk, "e")?);
            let rsa = Rsa::from_public_components(BigNum::from_slice(&n).map_err(no_key)?, BigNum::from_slice(&e).map_err(no_key)?)
                .map_err(no_key)?;
            if rsa.size() < 256 {
                return Err(JwkProblem::NoPublicKey);
            }
            PKey::from_rsa(rsa).map_err(no_key)
        }
        _ => Err(JwkProblem::UnsupportedKeyType),
    }
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (base64url): the hash of its required
/// members only, in lexicographic order, without white space. `None` for a `kty` other
/// than EC, OKP and RSA, or a required member missing.
pub(crate) fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str)? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (n, name) in members.iter().enumerate() {
        let value = jwk.get(*name).and_then(Value::as_str)?;
        if n > 0 {
            canonical.push(',');
        }
        // serde_json writes a JSON string with the escaping RFC 7638 §3 asks for.
        canonical.push_str(&format!("\"{name}\":{}", Value::String(value.to_owned())));
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes())))
}

/// The algorithm the identity provider signs its tokens with.
pub(crate) const SIGNING_ALGORITHM: &str = "RS256";

/// The identity provider's RS256 signing key.
pub(crate) struct TokenSigner {
    key: PKey<Private>,
    public: PKey<Public>,
    pub(crate) kid: String,
}

impl TokenSigner {
    pub(crate) fn generate() -> Result<Self, openssl::error::ErrorStack> {
        let rsa = Rsa::generate(2048)?;
        let key = PKey::from_rsa(rsa)?;
        let der = key.public_key_to_der()?;
        let digest = openssl::sha::sha256(&der);
        let public = PKey::public_key_from_der(&der)?;
        Ok(Self { key, public, kid: URL_SAFE_NO_PAD.encode(&digest[..12]) })
    }

    /// An access token: header `typ` = `at+jwt` (RFC 9068).
    pub(crate) fn sign(&self, claims: &Value) -> Result<String, openssl::error::ErrorStack> {
        self.sign_typed(claims, "at+jwt")
    }

    /// A JWT with this header `typ` (`JWT` for ID tokens).
    pub(crate) fn sign_typed(&self, claims: &Value, typ: &str) -> Result<String, openssl::error::ErrorStack> {
        let header = serde_json::json!({"alg": SIGNING_ALGORITHM, "typ": typ, "kid": self.kid});
        sign_rs256(&self.key, &header, claims)
    }

    /// Whether `token` carries this key's RS256 signature (and names its `kid`).
    pub(crate) fn signed(&self, token: &Jwt) -> bool {
        token.header.get("kid").and_then(Value::as_str) == Some(self.kid.as_str()) && token.verifies_with(&self.public, SIGNING_ALGORITHM)
    }

    pub(crate) fn jwk(&self) -> Result<Value, openssl::error::ErrorStack> {
        let rsa = self.key.rsa()?;
        Ok(serde_json::json!({
            "kty": "RSA", "use": "sig", "alg": SIGNING_ALGORITHM, "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        }))
    }
}

/// An RS256 compact JWS of `claims` with `header`.
pub(crate) fn sign_rs256(key: &PKey<Private>, header: &Value, claims: &Value) -> Result<String, openssl::error::ErrorStack> {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.update(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signer.sign_to_vec()?)))
}
