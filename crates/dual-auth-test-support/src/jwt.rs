//! Checking JWTs in tests with OpenSSL directly, independently of the code under test
//! (which signs through josekit): a mistake there cannot hide here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::{Signer, Verifier};
use serde_json::{Map, Value};

/// A JWT's header and claims as JSON maps (key order kept), and its signing input and signature.
pub struct DecodedJwt {
    /// The header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Decodes a compact JWT; panics with the reason when it is not one.
pub fn decode(token: &str) -> DecodedJwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWT has three parts");
    let object = |part: &str| -> Map<String, Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url without padding");
        match serde_json::from_slice(&bytes).expect("JSON") {
            Value::Object(map) => map,
            other => panic!("expected a JSON object, got {other}"),
        }
    };
    DecodedJwt {
        header: object(parts[0]),
        claims: object(parts[1]),
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: URL_SAFE_NO_PAD.decode(parts[2]).expect("signature base64url"),
    }
}

impl DecodedJwt {
    /// The claim names in order.
    pub fn claim_names(&self) -> Vec<&str> {
        self.claims.keys().map(String::as_str).collect()
    }

    /// Whether an HS256 signature verifies with `secret`.
    pub fn verifies_hs256(&self, secret: &[u8]) -> bool {
        let key = PKey::hmac(secret).expect("hmac key");
        let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("signer");
        signer.update(self.signing_input.as_bytes()).expect("update");
        let mac = signer.sign_to_vec().expect("mac");
        openssl::memcmp::eq(&mac, &self.signature) && mac.len() == self.signature.len()
    }

    /// Whether an RS256, PS256 or ES256 signature verifies with the PEM public key.
    pub fn verifies_with_public_key(&self, public_pem: &[u8]) -> bool {
        let key = PKey::public_key_from_pem(public_pem).expect("public key PEM");
        let alg = self.header.get("alg").and_then(Value::as_str).unwrap_or_default();
        let mut signature = self.signature.clone();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key).expect("verifier");
        match alg {
            "RS256" => {}
            "PS256" => {
                verifier.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS).expect("pss");
                verifier.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH).expect("salt");
            }
            "ES256" => {
                // JWS carries r||s; OpenSSL wants DER.
                if signature.len() != 64 {
                    return false;
                }
                let r = BigNum::from_slice(&signature[..32]).expect("r");
                let s = BigNum::from_slice(&signature[32..]).expect("s");
                signature = EcdsaSig::from_private_components(r, s).expect("sig").to_der().expect("der");
            }
            other => panic!("verifies_with_public_key does not handle {other}"),
        }
        verifier.update(self.signing_input.as_bytes()).expect("update");
        verifier.verify(&signature).unwrap_or(false)
    }
}

/// The `x5t#S256` of a PEM certificate: base64url(SHA-256(DER)), computed with OpenSSL.
pub fn x5t_s256(certificate_pem: &[u8]) -> String {
    let certificate = openssl::x509::X509::from_pem(certificate_pem).expect("certificate PEM");
    let digest = certificate.digest(MessageDigest::sha256()).expect("digest");
    URL_SAFE_NO_PAD.encode(digest)
}

impl DecodedJwt {
    /// Whether an RS256 signature verifies with an RSA JWK (`n`, `e` base64url).
    pub fn verifies_with_rsa_jwk(&self, jwk: &Value) -> bool {
        let component = |name: &str| {
            let text = jwk.get(name).and_then(Value::as_str).expect("RSA JWK component");
            BigNum::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("bignum")
        };
        let rsa = openssl::rsa::Rsa::from_public_components(component("n"), component("e")).expect("rsa");
        let key = PKey::from_rsa(rsa).expect("pkey");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key).expect("verifier");
        verifier.update(self.signing_input.as_bytes()).expect("update");
        verifier.verify(&self.signature).unwrap_or(false)
    }
}
