//! DPoP (RFC 9449) on the agent's side: the key a token is bound to, and the proofs that
//! show possession of it, one per HTTP request.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::error::KeyError;
use crate::jose::keys::{SigningAlgorithm, SigningKey, generate_key_pair};

/// The request header that carries a proof, and the `Authorization` scheme of a bound token.
pub const DPOP_HEADER: &str = "DPoP";
/// The response header in which a server hands out the nonce to put into the next proof.
pub const DPOP_NONCE_HEADER: &str = "DPoP-Nonce";
/// A proof's `typ` header (RFC 9449 §4.2).
pub const DPOP_PROOF_TYPE: &str = "dpop+jwt";
/// The OAuth error a server answers when it wants a (new) nonce in the proof (RFC 9449 §8).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// The key DPoP-bound tokens are bound to (ES256 or EdDSA).
///
/// By default one is generated per process ([`DpopKey::generate`]); replicas that share
/// tokens through a cache load the same key from PEM ([`DpopKey::from_pem`]). The private
/// key never leaves it; proofs carry the public key as `jwk`.
///
/// ```
/// use dual_auth_core::{DpopKey, SigningAlgorithm};
///
/// let key = DpopKey::generate(SigningAlgorithm::Es256)?;
/// let url = url::Url::parse("https://api.example.com/reports?q=1").unwrap();
/// let proof = key.proof("GET", &url, Some("access-token"), None, std::time::SystemTime::now())?;
/// # use secrecy::ExposeSecret;
/// assert_eq!(proof.expose_secret().split('.').count(), 3);
/// assert_eq!(key.thumbprint().len(), 43);
/// # Ok::<(), dual_auth_core::KeyError>(())
/// ```
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<Inner>,
}

struct Inner {
    key: SigningKey,
    jwk: Map<String, Value>,
    thumbprint: String,
}

impl DpopKey {
    /// A new key pair for `algorithm` (ES256 or EdDSA).
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] for another algorithm.
    pub fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        check_algorithm(algorithm)?;
        let pair = generate_key_pair(algorithm, 2048)?;
        use secrecy::ExposeSecret;
        Self::from_signing_key(SigningKey::from_pem(pair.private_key_pem.expose_secret())?)
    }

    /// A key from PEM (an EC P-256 or Ed25519 private key), for replicas sharing one.
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] for another kind of key.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        Self::from_signing_key(SigningKey::from_pem(pem)?)
    }

    /// A key from a signing key (ES256 or EdDSA); its key id is not used.
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] for another algorithm.
    pub fn from_signing_key(key: SigningKey) -> Result<Self, KeyError> {
        check_algorithm(key.algorithm())?;
        let jwk = key.public_jwk_members().clone();
        let thumbprint = key.jwk_thumbprint();
        Ok(Self { inner: Arc::new(Inner { key, jwk, thumbprint }) })
    }

    /// The algorithm proofs are signed with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.inner.key.algorithm()
    }

    /// The RFC 7638 thumbprint of the public key: a bound token's `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// The public key as a JWK (its key members only), as proofs carry it.
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.inner.jwk.clone())
    }

    /// A proof for one request: header `typ` `dpop+jwt`, `alg`, `jwk`; claims `jti` (new),
    /// `htm`, `htu` (the URL without query and fragment), `iat`, and `ath` (the access
    /// token's hash, for resource requests) and `nonce` when given.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when signing fails.
    pub fn proof(
        &self,
        method: &str,
        url: &url::Url,
        access_token: Option<&str>,
        nonce: Option<&str>,
        now: SystemTime,
    ) -> Result<SecretString, KeyError> {
        let iat = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let jti = crate::new_jti().map_err(|e| KeyError::Signing { algorithm: self.algorithm().as_str().into(), reason: e.to_string() })?;
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(jti));
        claims.insert("htm".into(), Value::String(method.to_ascii_uppercase()));
        claims.insert("htu".into(), Value::String(dpop_htu(url)));
        claims.insert("iat".into(), Value::from(iat));
        if let Some(token) = access_token {
            claims.insert("ath".into(), Value::String(access_token_hash(token)));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), Value::String(nonce.into()));
        }
        let mut header = Map::new();
        header.insert("jwk".into(), Value::Object(self.inner.jwk.clone()));
        // The proof's key is its own `jwk`: no `kid`, whatever the signing key carries.
        let unnamed = NoKid(&self.inner.key);
        crate::jose::compact::sign_with_header(&unnamed, DPOP_PROOF_TYPE, header, &Value::Object(claims)).map(SecretString::from)
    }
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey").field("algorithm", &self.algorithm()).field("thumbprint", &self.thumbprint()).finish_non_exhaustive()
    }
}

/// The signing key without its key id or certificate, for proofs.
struct NoKid<'a>(&'a SigningKey);

impl crate::jose::compact::JwsSign for NoKid<'_> {
    fn alg(&self) -> &str {
        self.0.algorithm().as_str()
    }
    fn kid(&self) -> Option<&str> {
        None
    }
    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.0.sign_bytes(message)
    }
}

fn check_algorithm(algorithm: SigningAlgorithm) -> Result<(), KeyError> {
    match algorithm {
        SigningAlgorithm::Es256 | SigningAlgorithm::EdDsa => Ok(()),
        other => Err(KeyError::InvalidKey { reason: format!("a DPoP key must be ES256 or EdDSA, not {}", other.as_str()) }),
    }
}

/// A proof's `htu`: the URL without query and fragment (RFC 9449 §4.2).
pub fn dpop_htu(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    // Never credentials inside a signed proof that servers and proxies may log.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// A proof's `ath`: base64url (no padding) of the access token's SHA-256 (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(access_token.as_bytes()))
}

/// The PKCE `S256` code challenge for `verifier` (RFC 7636 §4.2): the same base64url
/// SHA-256 as [`access_token_hash`], under the name a login uses.
///
/// ```
/// // RFC 7636 Appendix B.
/// let challenge = dual_auth_core::pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// ```
pub fn pkce_s256_challenge(verifier: &str) -> String {
    access_token_hash(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_proof_has_rfc_9449_header_and_claims() {
        for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
            let key = DpopKey::generate(algorithm).unwrap();
            let url = url::Url::parse("https://api.example.com:8443/finance/report?q=1#frag").unwrap();
            let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
            let proof = key.proof("get", &url, Some("the-access-token"), Some("n-1"), now).unwrap();
            let jwt = crate::dangerous::UnverifiedJwt::parse(proof.expose_secret()).unwrap();
            let header: Vec<&str> = jwt.header().keys().map(String::as_str).collect();
            assert_eq!(header, ["alg", "typ", "jwk"], "{algorithm:?}");
            assert_eq!(jwt.header()["typ"], DPOP_PROOF_TYPE);
            assert_eq!(jwt.header()["alg"], algorithm.as_str());
            let jwk = jwt.header()["jwk"].as_object().unwrap();
            assert!(!jwk.contains_key("d"), "no private member");
            assert_eq!(crate::jwk_thumbprint(jwk), key.thumbprint());
            let claims = jwt.claims();
            let names: Vec<&str> = claims.keys().map(String::as_str).collect();
            assert_eq!(names, ["jti", "htm", "htu", "iat", "ath", "nonce"]);
            assert_eq!(claims["htm"], "GET");
            assert_eq!(claims["htu"], "https://api.example.com:8443/finance/report");
            assert_eq!(claims["iat"], 1_800_000_000_u64);
            assert_eq!(claims["ath"], access_token_hash("the-access-token"));
            assert_eq!(claims["nonce"], "n-1");
            // Verifies with the key it carries.
            let public = crate::VerifyingKey::from_jwk(jwk).unwrap();
            assert!(public.verifies(&jwt));
            // No credentials in htu.
            let with_user = url::Url::parse("https://user:secret@api.example.com/x?q").unwrap();
            assert_eq!(dpop_htu(&with_user), "https://api.example.com/x");
            // A new jti every time.
            let again = key.proof("GET", &url, None, None, now).unwrap();
            let again = crate::dangerous::UnverifiedJwt::parse(again.expose_secret()).unwrap();
            assert_ne!(again.claims()["jti"], claims["jti"]);
            assert!(!again.claims().contains_key("ath") && !again.claims().contains_key("nonce"));
        }
    }

    #[test]
    fn ath_is_the_rfc_example_and_rsa_keys_are_refused() {
        // RFC 9449 §7.1: the access token "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU" has
        // ath "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo".
        assert_eq!(access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
        assert!(DpopKey::generate(SigningAlgorithm::Rs256).is_err());
        let debug = format!("{:?}", DpopKey::generate(SigningAlgorithm::Es256).unwrap());
        assert!(debug.contains("thumbprint") && !debug.contains("BEGIN"), "{debug}");
    }
}
