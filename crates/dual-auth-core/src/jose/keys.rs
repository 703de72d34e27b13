//! Keys for signing and verifying JWTs, from PEM (PKCS#8, PKCS#1, SEC1, SPKI), and key
//! generation. josekit does the cryptography; this module decides which key is which.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwk::KeyPair;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{self, JwsSigner, JwsVerifier};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use super::prepared::{PreparedEs256Signer, PreparedVerifier};
use crate::error::KeyError;

/// The JWS algorithms dual-auth signs and verifies with asymmetric keys.
///
/// A key's algorithm is fixed when the key is loaded, and verification accepts only that
/// algorithm: a token's `alg` header never chooses how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the upstream default, needed to talk to the Python package.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA, 2048 bits or more.
    Rsa,
    /// EC on curve P-256.
    EcP256,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::EcP256 => "EC P-256",
            KeyType::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm used for this kind of key unless another is asked for.
    pub fn default_algorithm(self) -> SigningAlgorithm {
        match self {
            KeyType::Rsa => SigningAlgorithm::Rs256,
            KeyType::EcP256 => SigningAlgorithm::Es256,
            KeyType::Ed25519 => SigningAlgorithm::EdDsa,
        }
    }
}

impl SigningAlgorithm {
    /// The JOSE name, as in the `alg` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The kind of key this algorithm needs.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => KeyType::Rsa,
            Self::Es256 => KeyType::EcP256,
            Self::EdDsa => KeyType::Ed25519,
        }
    }

    fn signer_from_pem(self, pem: &[u8]) -> Result<Box<dyn JwsSigner>, josekit::JoseError> {
        Ok(match self {
            Self::Rs256 => Box::new(jws::RS256.signer_from_pem(pem)?),
            Self::Rs384 => Box::new(jws::RS384.signer_from_pem(pem)?),
            Self::Rs512 => Box::new(jws::RS512.signer_from_pem(pem)?),
            // josekit's PSS PEM loader wants RSA-PSS-labelled PKCS#8; plain RSA keys go via DER.
            // The private DER is wiped once the signer holds the key.
            Self::Ps256 => {
                Box::new(jws::PS256.signer_from_der(Zeroizing::new(RsaKeyPair::from_pem(pem)?.to_der_private_key()).as_slice())?)
            }
            Self::Ps384 => {
                Box::new(jws::PS384.signer_from_der(Zeroizing::new(RsaKeyPair::from_pem(pem)?.to_der_private_key()).as_slice())?)
            }
            Self::Ps512 => {
                Box::new(jws::PS512.signer_from_der(Zeroizing::new(RsaKeyPair::from_pem(pem)?.to_der_private_key()).as_slice())?)
            }
            Self::Es256 => Box::new(jws::ES256.signer_from_pem(pem)?),
            Self::EdDsa => Box::new(jws::EdDSA.signer_from_pem(pem)?),
        })
    }

    fn verifier_from_der(self, spki_der: &[u8]) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        Ok(match self {
            Self::Rs256 => Box::new(jws::RS256.verifier_from_der(spki_der)?),
            Self::Rs384 => Box::new(jws::RS384.verifier_from_der(spki_der)?),
            Self::Rs512 => Box::new(jws::RS512.verifier_from_der(spki_der)?),
            Self::Ps256 => Box::new(jws::PS256.verifier_from_der(spki_der)?),
            Self::Ps384 => Box::new(jws::PS384.verifier_from_der(spki_der)?),
            Self::Ps512 => Box::new(jws::PS512.verifier_from_der(spki_der)?),
            Self::Es256 => Box::new(jws::ES256.verifier_from_der(spki_der)?),
            Self::EdDsa => Box::new(jws::EdDSA.verifier_from_der(spki_der)?),
        })
    }

    fn verifier_from_jwk(self, jwk: &josekit::jwk::Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        Ok(match self {
            Self::Rs256 => Box::new(jws::RS256.verifier_from_jwk(jwk)?),
            Self::Rs384 => Box::new(jws::RS384.verifier_from_jwk(jwk)?),
            Self::Rs512 => Box::new(jws::RS512.verifier_from_jwk(jwk)?),
            Self::Ps256 => Box::new(jws::PS256.verifier_from_jwk(jwk)?),
            Self::Ps384 => Box::new(jws::PS384.verifier_from_jwk(jwk)?),
            Self::Ps512 => Box::new(jws::PS512.verifier_from_jwk(jwk)?),
            Self::Es256 => Box::new(jws::ES256.verifier_from_jwk(jwk)?),
            Self::EdDsa => Box::new(jws::EdDSA.verifier_from_jwk(jwk)?),
        })
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [SigningAlgorithm; 8] = [
            SigningAlgorithm::Rs256,
            SigningAlgorithm::Rs384,
            SigningAlgorithm::Rs512,
            SigningAlgorithm::Ps256,
            SigningAlgorithm::Ps384,
            SigningAlgorithm::Ps512,
            SigningAlgorithm::Es256,
            SigningAlgorithm::EdDsa,
        ];
        ALL.into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| KeyError::UnsupportedAlgorithm { name: s.trim().to_owned() })
    }
}

// DER encodings of the algorithm identifiers we recognise inside PKCS#8, SEC1 and SPKI.
const OID_RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_RSASSA_PSS: &[u8] = &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
/// The algorithm identifier sits within the first bytes of every structure we parse.
const OID_WINDOW: usize = 64;

pub(crate) struct Pem {
    pub(crate) label: String,
    /// Wiped when dropped: it may be a private key.
    pub(crate) der: Zeroizing<Vec<u8>>,
}

pub(crate) fn parse_pem(bytes: &[u8]) -> Result<Pem, KeyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| KeyError::InvalidKey { reason: "not PEM text (not UTF-8)".into() })?;
    let invalid = |reason: &str| KeyError::InvalidKey { reason: reason.into() };
    let start = text.find("-----BEGIN ").ok_or_else(|| invalid("no \"-----BEGIN ...-----\" line: expected a PEM key"))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(|| invalid("unterminated PEM BEGIN line"))?;
    let label = rest[..label_end].to_owned();
    let body_and_end = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end =
        body_and_end.find(&end_marker).ok_or_else(|| KeyError::InvalidKey { reason: format!("no matching {end_marker:?} line") })?;
    let body: Zeroizing<String> = Zeroizing::new(body_and_end[..body_end].chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = Zeroizing::new(STANDARD.decode(body.as_bytes()).map_err(|_| invalid("PEM body is not valid base64"))?);
    Ok(Pem { label, der })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Which kind of key a PKCS#8 or SPKI structure holds, from its algorithm identifier.
fn key_type_of_der(der: &[u8]) -> Result<KeyType, KeyError> {
    let head = &der[..der.len().min(OID_WINDOW)];
    if contains(head, OID_RSA_ENCRYPTION) {
        Ok(KeyType::Rsa)
    } else if contains(head, OID_EC_PUBLIC_KEY) {
        if contains(head, OID_P256) {
            Ok(KeyType::EcP256)
        } else {
            Err(KeyError::InvalidKey { reason: "EC key on a curve other than P-256: only P-256 (ES256) is supported".into() })
        }
    } else if contains(head, OID_ED25519) {
        Ok(KeyType::Ed25519)
    } else if contains(head, OID_RSASSA_PSS) {
        Err(KeyError::InvalidKey { reason: "RSASSA-PSS-only keys are not supported: use a plain RSA key (it can sign PS256 too)".into() })
    } else {
        Err(KeyError::InvalidKey { reason: "unknown key algorithm: use an RSA, EC P-256 or Ed25519 key".into() })
    }
}

fn private_key_type(pem: &Pem) -> Result<KeyType, KeyError> {
    match pem.label.as_str() {
        "PRIVATE KEY" => key_type_of_der(&pem.der),
        "RSA PRIVATE KEY" => Ok(KeyType::Rsa),
        "EC PRIVATE KEY" if contains(&pem.der, OID_P256) => Ok(KeyType::EcP256),
        "EC PRIVATE KEY" => {
            Err(KeyError::InvalidKey { reason: "EC key on a curve other than P-256: only P-256 (ES256) is supported".into() })
        }
        "ENCRYPTED PRIVATE KEY" => Err(KeyError::InvalidKey {
            reason: "encrypted private keys are not supported: decrypt it first (openssl pkcs8 -in KEY -out PLAIN)".into(),
        }),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {
            Err(KeyError::InvalidKey { reason: "this is a public key: signing needs the private key".into() })
        }
        other => Err(KeyError::InvalidKey { reason: format!("PEM label {other:?} is not a private key") }),
    }
}

/// The algorithm asked for, if it fits the key; else the one the key's kind implies.
fn pick_algorithm(key_type: KeyType, wanted: Option<SigningAlgorithm>) -> Result<SigningAlgorithm, KeyError> {
    match wanted {
        None => Ok(key_type.default_algorithm()),
        Some(algorithm) if algorithm.key_type() == key_type => Ok(algorithm),
        Some(algorithm) => Err(KeyError::AlgorithmMismatch { algorithm: algorithm.as_str().into(), key_type: key_type.name() }),
    }
}

fn josekit_reason(err: &josekit::JoseError) -> String {
    // josekit's messages describe formats and sizes, never key material.
    let text = err.to_string();
    text.split_once(": ").map(|(_, r)| r.to_owned()).unwrap_or(text)
}

/// The public half as SPKI DER and as the JWK members RFC 7638 hashes.
fn public_parts(
    key_type: KeyType,
    private_pem: &[u8],
) -> Result<(Vec<u8>, serde_json::Map<String, serde_json::Value>), josekit::JoseError> {
    let (der, jwk) = match key_type {
        KeyType::Rsa => {
            let pair = RsaKeyPair::from_pem(private_pem)?;
            (pair.to_der_public_key(), pair.to_jwk_public_key())
        }
        KeyType::EcP256 => {
            let pair = EcKeyPair::from_pem(private_pem, Some(EcCurve::P256))?;
            (pair.to_der_public_key(), pair.to_jwk_public_key())
        }
        KeyType::Ed25519 => {
            let pair = EdKeyPair::from_pem(private_pem)?;
            (pair.to_der_public_key(), pair.to_jwk_public_key())
        }
    };
    let members: &[&str] = match key_type {
        KeyType::Rsa => &["e", "kty", "n"],
        KeyType::EcP256 => &["crv", "kty", "x", "y"],
        KeyType::Ed25519 => &["crv", "kty", "x"],
    };
    let mut map = serde_json::Map::new();
    for member in members {
        let value =
            if *member == "kty" { Some(serde_json::Value::String(jwk.key_type().to_owned())) } else { jwk.parameter(member).cloned() };
        if let Some(value) = value {
            map.insert((*member).to_owned(), value);
        }
    }
    Ok((der, map))
}

/// The RFC 7638 JWK thumbprint: base64url(SHA-256) of the required members, in
/// lexicographic order, without white space.
pub fn jwk_thumbprint(required_members: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut sorted: Vec<(&String, &serde_json::Value)> = required_members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let canonical: serde_json::Map<String, serde_json::Value> = sorted.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let json = serde_json::Value::Object(canonical).to_string();
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(json.as_bytes()))
}

/// A private key with its algorithm, for signing JWTs.
///
/// `Debug` shows the algorithm and key id, never key material.
///
/// ```no_run
/// use dual_auth_core::SigningKey;
///
/// let key = SigningKey::from_pem_file("app-private-key.pem")?.with_key_id("app-2026-11");
/// assert_eq!(key.algorithm().as_str(), "RS256"); // for an RSA key
/// # Ok::<(), dual_auth_core::KeyError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    algorithm: SigningAlgorithm,
    key_id: Option<String>,
    signer: Signer,
    public_spki_der: Arc<[u8]>,
    verifying_key: VerifyingKey,
    certificate_thumbprint: Option<String>,
    public_jwk_members: Arc<serde_json::Map<String, serde_json::Value>>,
}

impl SigningKey {
    /// Loads a PEM private key (PKCS#8, PKCS#1 or SEC1), with the algorithm its kind implies:
    /// RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA.
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] for anything else, including RSA keys under 2048 bits.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        Self::load(pem.as_ref(), None)
    }

    /// Loads a PEM private key for a chosen algorithm (for example PS256 with an RSA key).
    ///
    /// # Errors
    /// [`KeyError::AlgorithmMismatch`] when the key is of another kind.
    pub fn from_pem_with_algorithm(pem: impl AsRef<[u8]>, algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        Self::load(pem.as_ref(), Some(algorithm))
    }

    fn load(pem: &[u8], algorithm: Option<SigningAlgorithm>) -> Result<Self, KeyError> {
        let parsed = parse_pem(pem)?;
        let key_type = private_key_type(&parsed)?;
        Self::build(pem, &parsed.der, key_type, pick_algorithm(key_type, algorithm)?)
    }

    /// Reads and loads a PEM private key file; warns when others can read it.
    ///
    /// # Errors
    /// [`KeyError::Io`] naming the file, or as [`SigningKey::from_pem`].
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let key = Self::from_pem(read_private_key_file(path.as_ref())?.expose_secret())?;
        warn_if_readable_by_others(path.as_ref());
        Ok(key)
    }

    /// Reads a PEM private key file for a chosen algorithm.
    ///
    /// # Errors
    /// As [`SigningKey::from_pem_file`] and [`SigningKey::from_pem_with_algorithm`].
    pub fn from_pem_file_with_algorithm(path: impl AsRef<Path>, algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        let key = Self::from_pem_with_algorithm(read_private_key_file(path.as_ref())?.expose_secret(), algorithm)?;
        warn_if_readable_by_others(path.as_ref());
        Ok(key)
    }

    /// `der` is the DER inside `pem`.
    fn build(pem: &[u8], der: &[u8], key_type: KeyType, algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        let invalid =
            |e: josekit::JoseError| KeyError::InvalidKey { reason: format!("{} private key: {}", key_type.name(), josekit_reason(&e)) };
        // josekit loads (and so checks) every key; ES256 then signs on a prepared context,
        // with the key read from the same DER (checked to be the same key).
        let josekit_signer = algorithm.signer_from_pem(pem).map_err(invalid)?;
        let (public, jwk_members) = public_parts(key_type, pem).map_err(invalid)?;
        let signer = match algorithm {
            SigningAlgorithm::Es256 => openssl::pkey::PKey::private_key_from_der(der)
                .ok()
                .filter(|key| key.public_key_to_der().is_ok_and(|spki| spki == public))
                .and_then(PreparedEs256Signer::new)
                .map(|prepared| Signer::Prepared(Arc::new(prepared))),
            _ => None,
        }
        .unwrap_or_else(|| Signer::Josekit(Arc::from(josekit_signer)));
        check_strength(key_type, &PublicMaterial::from_spki(&public)?)?;
        let verifier = algorithm.verifier_from_der(&public).map_err(invalid)?;
        let prepared = openssl::pkey::PKey::public_key_from_der(&public).ok();
        let verifying_key = VerifyingKey { algorithm, key_id: None, verifier: Verifier::new(algorithm, verifier, prepared) };
        Ok(Self {
            algorithm,
            key_id: None,
            signer,
            public_spki_der: public.into(),
            verifying_key,
            certificate_thumbprint: None,
            public_jwk_members: Arc::new(jwk_members),
        })
    }

    /// Sets the key id written as `kid` in every JWT this key signs.
    #[must_use]
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        let key_id = key_id.into();
        self.verifying_key.key_id = Some(key_id.clone());
        self.key_id = Some(key_id);
        self
    }

    /// Attaches the certificate issued for this key: every JWT signed then carries the
    /// certificate's SHA-256 thumbprint as `x5t#S256` (how Microsoft Entra ID identifies a
    /// certificate credential).
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] when `certificate_pem` is not a certificate, or is a
    /// certificate for another key.
    pub fn with_certificate(mut self, certificate_pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let pem = parse_pem(certificate_pem.as_ref())?;
        if pem.label != "CERTIFICATE" {
            return Err(KeyError::InvalidKey { reason: format!("expected a PEM CERTIFICATE, found {:?}", pem.label) });
        }
        let invalid = |reason: String| KeyError::InvalidKey { reason };
        let certificate = openssl::x509::X509::from_der(&pem.der).map_err(|_| invalid("the certificate is not valid DER".into()))?;
        let certificate_key = certificate
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .map_err(|_| invalid("cannot read the certificate's public key".into()))?;
        if certificate_key.as_slice() != &*self.public_spki_der {
            return Err(invalid("the certificate was issued for another key".into()));
        }
        let digest = openssl::sha::sha256(&pem.der);
        self.certificate_thumbprint = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest));
        Ok(self)
    }

    /// The public key as a JWK (`kty` and its key members, plus `alg`, `use` and `kid` when
    /// set), for registering the key with an identity provider.
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut jwk = (*self.public_jwk_members).clone();
        jwk.insert("alg".into(), self.algorithm.as_str().into());
        jwk.insert("use".into(), "sig".into());
        if let Some(kid) = &self.key_id {
            jwk.insert("kid".into(), kid.clone().into());
        }
        serde_json::Value::Object(jwk)
    }

    /// The public key's JWK members alone (`kty` and its key members: no `alg`, `use`,
    /// `kid`), as RFC 7638 and DPoP's `jwk` header want them.
    pub(crate) fn public_jwk_members(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.public_jwk_members
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn jwk_thumbprint(&self) -> String {
        jwk_thumbprint(&self.public_jwk_members)
    }

    /// Sets the key id to the RFC 7638 thumbprint, unless a key id is set already.
    #[must_use]
    pub fn with_thumbprint_key_id_if_unset(self) -> Self {
        if self.key_id.is_some() {
            self
        } else {
            let kid = self.jwk_thumbprint();
            self.with_key_id(kid)
        }
    }

    /// The certificate's `x5t#S256` thumbprint, if a certificate is attached.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.certificate_thumbprint.as_deref()
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The key id, if set.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The matching public key, with the same algorithm and key id.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key.clone()
    }

    /// The public key as PEM (SPKI).
    pub fn public_key_pem(&self) -> String {
        der_to_pem("PUBLIC KEY", &self.public_spki_der)
    }

    /// Signs a JWT: header `{"alg", "typ":"JWT", "kid" when set}`, then `claims` as given.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when the claims do not serialize or the signature fails.
    pub fn sign_jwt<T: serde::Serialize + ?Sized>(&self, claims: &T) -> Result<String, KeyError> {
        crate::jose::compact::sign(self, claims)
    }

    /// Whether signing happens on prepared OpenSSL contexts (not through josekit).
    #[cfg(test)]
    pub(crate) fn is_prepared(&self) -> bool {
        matches!(self.signer, Signer::Prepared(_))
    }

    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |reason: String| KeyError::Signing { algorithm: self.algorithm.as_str().into(), reason };
        match &self.signer {
            Signer::Josekit(signer) => signer.sign(message).map_err(|e| failed(josekit_reason(&e))),
            // OpenSSL's reasons name operations and formats, never key material.
            Signer::Prepared(signer) => signer.sign(message).map_err(|e| failed(e.to_string())),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("algorithm", &self.algorithm).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// What signs for a [`SigningKey`].
#[derive(Clone)]
enum Signer {
    Josekit(Arc<dyn JwsSigner>),
    /// ES256 on OpenSSL contexts set up once.
    Prepared(Arc<PreparedEs256Signer>),
}

/// What checks signatures for a [`VerifyingKey`].
#[derive(Clone)]
enum Verifier {
    Josekit(Arc<dyn JwsVerifier>),
    /// RS256, RS384, RS512 and ES256 on OpenSSL contexts set up once.
    Prepared(Arc<PreparedVerifier>),
}

impl Verifier {
    /// The prepared verifier for `algorithm` with `public` (the same key josekit loaded) when
    /// there is one, else josekit's.
    fn new(algorithm: SigningAlgorithm, josekit: Box<dyn JwsVerifier>, public: Option<openssl::pkey::PKey<openssl::pkey::Public>>) -> Self {
        match public.and_then(|key| PreparedVerifier::new(algorithm, key)) {
            Some(prepared) => Verifier::Prepared(Arc::new(prepared)),
            None => Verifier::Josekit(Arc::from(josekit)),
        }
    }
}

/// A public key with its algorithm, for verifying JWTs.
#[derive(Clone)]
pub struct VerifyingKey {
    algorithm: SigningAlgorithm,
    key_id: Option<String>,
    verifier: Verifier,
}

impl VerifyingKey {
    /// Loads a PEM public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`) with the
    /// algorithm its kind implies: RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA.
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] for anything else.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        Self::load(pem.as_ref(), None)
    }

    /// Loads a PEM public key for a chosen algorithm (for example PS256 with an RSA key).
    ///
    /// # Errors
    /// [`KeyError::AlgorithmMismatch`] when the key is of another kind.
    pub fn from_pem_with_algorithm(pem: impl AsRef<[u8]>, algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        Self::load(pem.as_ref(), Some(algorithm))
    }

    fn load(pem: &[u8], algorithm: Option<SigningAlgorithm>) -> Result<Self, KeyError> {
        let parsed = parse_pem(pem)?;
        let key_type = public_key_type(&parsed)?;
        Self::build(&parsed, key_type, pick_algorithm(key_type, algorithm)?)
    }

    /// Reads and loads a PEM public key file.
    ///
    /// # Errors
    /// [`KeyError::Io`] naming the file, or as [`VerifyingKey::from_pem`].
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
        Self::from_pem(bytes)
    }

    fn build(pem: &Pem, key_type: KeyType, algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        let material =
            if pem.label == "RSA PUBLIC KEY" { PublicMaterial::from_pkcs1(&pem.der)? } else { PublicMaterial::from_spki(&pem.der)? };
        check_strength(key_type, &material)?;
        // PKCS#1 RSA public keys reach josekit as DER; it wraps them into SPKI itself.
        let verifier = algorithm
            .verifier_from_der(&pem.der)
            .map_err(|e| KeyError::InvalidKey { reason: format!("{} public key: {}", key_type.name(), josekit_reason(&e)) })?;
        let public = if pem.label == "RSA PUBLIC KEY" {
            openssl::rsa::Rsa::public_key_from_der_pkcs1(&pem.der).and_then(openssl::pkey::PKey::from_rsa).ok()
        } else {
            openssl::pkey::PKey::public_key_from_der(&pem.der).ok()
        };
        Ok(Self { algorithm, key_id: None, verifier: Verifier::new(algorithm, verifier, public) })
    }

    /// Loads a public key from a JWK, as published in an issuer's JWKS.
    ///
    /// The algorithm is the JWK's `alg` when present (it must suit the key), else the one
    /// the key's kind implies (RSA → RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA); the key
    /// then verifies that algorithm only. `kid` becomes the key id.
    ///
    /// ```
    /// use dual_auth_core::VerifyingKey;
    ///
    /// let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "k1",
    ///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    /// let key = VerifyingKey::from_jwk(jwk.as_object().unwrap())?;
    /// assert_eq!((key.algorithm().as_str(), key.key_id()), ("EdDSA", Some("k1")));
    /// # Ok::<(), dual_auth_core::KeyError>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] for symmetric (`oct`) keys, keys carrying private members,
    /// keys whose `use` is not `sig` or whose `key_ops` exclude `verify`, unsupported curves
    /// and algorithms, RSA keys under 2048 bits, and malformed members.
    pub fn from_jwk(jwk: &serde_json::Map<String, serde_json::Value>) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::InvalidKey { reason };
        let text = |name: &str| match jwk.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(invalid(format!("JWK member {name:?} must be a string"))),
        };
        let key_type = match (text("kty")?, text("crv")?) {
            (Some("RSA"), _) => KeyType::Rsa,
            (Some("EC"), Some("P-256")) => KeyType::EcP256,
            (Some("OKP"), Some("Ed25519")) => KeyType::Ed25519,
            (Some("oct"), _) => return Err(invalid("a symmetric (oct) JWK cannot verify: only public keys are trusted".into())),
            (Some(kty @ ("EC" | "OKP")), crv) => {
                return Err(invalid(format!("JWK {kty} curve {crv:?} is not supported: use P-256 or Ed25519")));
            }
            (Some(kty), _) => return Err(invalid(format!("JWK kty {kty:?} is not supported"))),
            (None, _) => return Err(invalid("JWK has no \"kty\"".into())),
        };
        if let Some(member) = ["d", "p", "q", "dp", "dq", "qi", "k"].into_iter().find(|m| jwk.contains_key(*m)) {
            return Err(invalid(format!("JWK carries the private member {member:?}: publish public keys only")));
        }
        let algorithm = match text("alg")? {
            Some(name) => pick_algorithm(key_type, Some(name.parse()?))?,
            None => key_type.default_algorithm(),
        };
        check_strength(key_type, &PublicMaterial::from_jwk(key_type, |name| text(name))?)?;
        let parsed = josekit::jwk::Jwk::from_map(jwk.clone()).map_err(|e| invalid(format!("JWK: {}", josekit_reason(&e))))?;
        let verifier =
            algorithm.verifier_from_jwk(&parsed).map_err(|e| invalid(format!("{} JWK: {}", key_type.name(), josekit_reason(&e))))?;
        let public = public_key_of_jwk(key_type, |name| text(name).ok().flatten());
        Ok(Self { algorithm, key_id: text("kid")?.map(str::to_owned), verifier: Verifier::new(algorithm, verifier, public) })
    }

    /// Whether `jwt`'s signature verifies with this key. The token's `alg` header must name
    /// this key's algorithm: the token never chooses how it is checked.
    pub fn verifies(&self, jwt: &crate::dangerous::UnverifiedJwt) -> bool {
        jwt.header().get("alg").and_then(serde_json::Value::as_str) == Some(self.algorithm.as_str())
            && self.verify_bytes(jwt.signing_input().as_bytes(), jwt.signature())
    }

    /// Sets the key id; a token whose `kid` names another key is then refused by it.
    #[must_use]
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// The only algorithm this key verifies.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The key id, if set.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// Whether signatures are checked on prepared OpenSSL contexts (not through josekit).
    #[cfg(test)]
    pub(crate) fn is_prepared(&self) -> bool {
        matches!(self.verifier, Verifier::Prepared(_))
    }

    /// Whether `signature` over `message` verifies with this key.
    pub(crate) fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Josekit(verifier) => verifier.verify(message, signature).is_ok(),
            Verifier::Prepared(verifier) => verifier.verify(message, signature),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey").field("algorithm", &self.algorithm).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The OpenSSL public key of an RSA or EC P-256 JWK that josekit accepted (the same numbers),
/// for the prepared verifier; `None` for other kinds, or when it cannot be made.
fn public_key_of_jwk<'a>(key_type: KeyType, text: impl Fn(&str) -> Option<&'a str>) -> Option<openssl::pkey::PKey<openssl::pkey::Public>> {
    let number = |name: &str| openssl::bn::BigNum::from_slice(&URL_SAFE_NO_PAD.decode(text(name)?).ok()?).ok();
    match key_type {
        KeyType::Rsa => {
            let rsa = openssl::rsa::Rsa::from_public_components(number("n")?, number("e")?).ok()?;
            openssl::pkey::PKey::from_rsa(rsa).ok()
        }
        KeyType::EcP256 => {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).ok()?;
            // Checks that the point is on the curve.
            let (x, y) = (number("x")?, number("y")?);
            let ec = openssl::ec::EcKey::from_public_key_affine_coordinates(&group, &x, &y).ok()?;
            openssl::pkey::PKey::from_ec_key(ec).ok()
        }
        KeyType::Ed25519 => None,
    }
}

/// The smallest RSA modulus accepted, in bits (counted exactly, not in bytes).
const MIN_RSA_BITS: i32 = 2048;
/// The smallest RSA public exponent accepted (NIST SP 800-56B): with e = 1 a "signature"
/// needs no private key, and e = 3 invites padding attacks.
const MIN_RSA_EXPONENT: u32 = 65_537;
/// Ed25519 public keys of small order, as y with the sign bit cleared (libsodium's block
/// list): any signature made for them says nothing about who signed.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 7] = {
    let mut list = [[0u8; 32]; 7];
    // 0 (order 4), 1 (order 1)
    list[1][0] = 1;
    // The two y of the points of order 8.
    list[2] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
        0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ];
    list[3] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
        0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ];
    // p - 1 (order 2), and the non-canonical p (= 0) and p + 1 (= 1).
    let mut i = 4;
    while i < 7 {
        let mut j = 1;
        while j < 31 {
            list[i][j] = 0xff;
            j += 1;
        }
        list[i][31] = 0x7f;
        i += 1;
    }
    list[4][0] = 0xec;
    list[5][0] = 0xed;
    list[6][0] = 0xee;
    list
};

/// The public numbers a strength check needs.
enum PublicMaterial {
    Rsa { n: openssl::bn::BigNum, e: openssl::bn::BigNum },
    Ed25519([u8; 32]),
    Other,
}

impl PublicMaterial {
    fn unreadable() -> KeyError {
        KeyError::InvalidKey { reason: "the public key cannot be read".into() }
    }

    fn from_rsa(rsa: &openssl::rsa::RsaRef<openssl::pkey::Public>) -> Result<Self, KeyError> {
        let copy = |b: &openssl::bn::BigNumRef| b.to_owned().map_err(|_| Self::unreadable());
        Ok(Self::Rsa { n: copy(rsa.n())?, e: copy(rsa.e())? })
    }

    fn from_spki(der: &[u8]) -> Result<Self, KeyError> {
        let key = openssl::pkey::PKey::public_key_from_der(der).map_err(|_| Self::unreadable())?;
        match key.id() {
            openssl::pkey::Id::RSA => Self::from_rsa(&*key.rsa().map_err(|_| Self::unreadable())?),
            openssl::pkey::Id::ED25519 => {
                let raw = key.raw_public_key().map_err(|_| Self::unreadable())?;
                Ok(Self::Ed25519(raw.try_into().map_err(|_| Self::unreadable())?))
            }
            _ => Ok(Self::Other),
        }
    }

    fn from_pkcs1(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_rsa(&*openssl::rsa::Rsa::public_key_from_der_pkcs1(der).map_err(|_| Self::unreadable())?)
    }

    fn from_jwk<'a>(key_type: KeyType, text: impl Fn(&str) -> Result<Option<&'a str>, KeyError>) -> Result<Self, KeyError> {
        let bytes = |name: &str| -> Result<Vec<u8>, KeyError> {
            let value = text(name)?.ok_or_else(|| KeyError::InvalidKey { reason: format!("JWK has no {name:?}") })?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| KeyError::InvalidKey { reason: format!("JWK member {name:?} is not base64url without padding") })
        };
        let number = |name: &str| openssl::bn::BigNum::from_slice(&bytes(name)?).map_err(|_| Self::unreadable());
        match key_type {
            KeyType::Rsa => Ok(Self::Rsa { n: number("n")?, e: number("e")? }),
            KeyType::Ed25519 => Ok(Self::Ed25519(
                bytes("x")?.try_into().map_err(|_| KeyError::InvalidKey { reason: "JWK member \"x\" is not 32 bytes".into() })?,
            )),
            KeyType::EcP256 => Ok(Self::Other),
        }
    }
}

/// Refuses keys that verify signatures anyone could make: short or odd-sized RSA moduli,
/// weak RSA exponents, small-order Ed25519 points. (P-256 points are checked on the curve
/// by the library that loads them.)
fn check_strength(key_type: KeyType, material: &PublicMaterial) -> Result<(), KeyError> {
    let weak = |reason: String| Err(KeyError::InvalidKey { reason });
    match (key_type, material) {
        (KeyType::Rsa, PublicMaterial::Rsa { n, e }) => {
            let bits = n.num_bits();
            if bits < MIN_RSA_BITS {
                return weak(format!("the RSA modulus has {bits} bits: at least {MIN_RSA_BITS} are needed"));
            }
            let minimum = openssl::bn::BigNum::from_u32(MIN_RSA_EXPONENT).map_err(|_| PublicMaterial::unreadable())?;
            if !e.is_bit_set(0) || e.as_ref() < minimum.as_ref() {
                // e is public; a large one is summarised rather than printed.
                let shown = if e.num_bits() <= 32 {
                    e.to_dec_str().map(|s| s.to_string()).unwrap_or_default()
                } else {
                    "a large even number".into()
                };
                return weak(format!(
                    "the RSA public exponent e = {shown} is weak: it must be odd and at least {MIN_RSA_EXPONENT} (keys use 65537)"
                ));
            }
            Ok(())
        }
        (KeyType::Ed25519, PublicMaterial::Ed25519(point)) => {
            let mut y = *point;
            y[31] &= 0x7f;
            if ED25519_SMALL_ORDER_Y.contains(&y) {
                return weak("the Ed25519 public key is a small-order point: signatures for it prove nothing".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn public_key_type(pem: &Pem) -> Result<KeyType, KeyError> {
    match pem.label.as_str() {
        "PUBLIC KEY" => key_type_of_der(&pem.der),
        "RSA PUBLIC KEY" => Ok(KeyType::Rsa),
        "CERTIFICATE" => Err(KeyError::InvalidKey {
            reason: "this is a certificate: extract its public key (openssl x509 -in CERT -pubkey -noout)".into(),
        }),
        label if label.contains("PRIVATE KEY") => Err(KeyError::InvalidKey {
            reason: "this is a private key: verification takes the public key (openssl pkey -in KEY -pubout)".into(),
        }),
        other => Err(KeyError::InvalidKey { reason: format!("PEM label {other:?} is not a public key") }),
    }
}

fn der_to_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Reads a private key file into a secret (the caller warns about its permissions once it
/// knows the file holds a private key).
pub(crate) fn read_private_key_file(path: &Path) -> Result<SecretString, KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    Ok(SecretString::from(text))
}

/// Logs a warning when a private key file is readable by group or others (Unix).
pub fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    event = "private_key_permissions",
                    path = %path.display(),
                    mode = format_args!("{:o}", mode & 0o777),
                    "private key file is readable by others: chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A freshly generated key pair, as PEM. The private half is a secret.
pub struct GeneratedKeyPair {
    /// The algorithm the pair is for.
    pub algorithm: SigningAlgorithm,
    /// PKCS#8 private key.
    pub private_key_pem: SecretString,
    /// SPKI public key.
    pub public_key_pem: String,
}

impl fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeyPair")
            .field("algorithm", &self.algorithm)
            .field("private_key_pem", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// The smallest and largest RSA sizes [`generate_key_pair`] makes.
pub const RSA_BITS_RANGE: std::ops::RangeInclusive<u32> = 2048..=8192;

/// Generates a key pair for `algorithm`; `rsa_bits` applies to RSA algorithms only.
///
/// # Errors
/// [`KeyError::InvalidKey`] for an RSA size outside [`RSA_BITS_RANGE`] or not a multiple of 8.
pub fn generate_key_pair(algorithm: SigningAlgorithm, rsa_bits: u32) -> Result<GeneratedKeyPair, KeyError> {
    let fail = |e: josekit::JoseError| KeyError::InvalidKey { reason: format!("key generation failed: {}", josekit_reason(&e)) };
    let (private, public) = match algorithm.key_type() {
        KeyType::Rsa => {
            if !RSA_BITS_RANGE.contains(&rsa_bits) || !rsa_bits.is_multiple_of(8) {
                return Err(KeyError::InvalidKey { reason: format!("RSA key size {rsa_bits}: use 2048, 3072 or 4096 bits") });
            }
            let pair = RsaKeyPair::generate(rsa_bits).map_err(fail)?;
            (pair.to_pem_private_key(), pair.to_pem_public_key())
        }
        KeyType::EcP256 => {
            let pair = EcKeyPair::generate(EcCurve::P256).map_err(fail)?;
            (pair.to_pem_private_key(), pair.to_pem_public_key())
        }
        KeyType::Ed25519 => {
            let pair = EdKeyPair::generate(EdCurve::Ed25519).map_err(fail)?;
            (pair.to_pem_private_key(), pair.to_pem_public_key())
        }
    };
    Ok(GeneratedKeyPair {
        algorithm,
        private_key_pem: SecretString::from(String::from_utf8_lossy(&private).into_owned()),
        public_key_pem: String::from_utf8_lossy(&public).into_owned(),
    })
}

/// File names [`GeneratedKeyPair::write_to_dir`] uses, as in the guide.
pub const PRIVATE_KEY_FILE: &str = "app-private-key.pem";
/// See [`PRIVATE_KEY_FILE`].
pub const PUBLIC_KEY_FILE: &str = "app-public-key.pem";

impl GeneratedKeyPair {
    /// Writes `app-private-key.pem` (mode 0600) and `app-public-key.pem` (0644) into `dir`,
    /// creating `dir` if needed. Existing files are never overwritten.
    ///
    /// # Errors
    /// [`KeyError::AlreadyExists`] or [`KeyError::Io`].
    pub fn write_to_dir(&self, dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        fs::create_dir_all(dir).map_err(|source| KeyError::Io { path: dir.to_owned(), source })?;
        let private_path = dir.join(PRIVATE_KEY_FILE);
        let public_path = dir.join(PUBLIC_KEY_FILE);
        for path in [&private_path, &public_path] {
            if path.exists() {
                return Err(KeyError::AlreadyExists { path: path.clone() });
            }
        }
        write_new_file(&private_path, self.private_key_pem.expose_secret().as_bytes(), 0o600)?;
        write_new_file(&public_path, self.public_key_pem.as_bytes(), 0o644)?;
        Ok((private_path, public_path))
    }
}

fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation, so the private key is never readable by others, even briefly.
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists { KeyError::AlreadyExists { path: path.to_owned() } } else { io(e) }
    })?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}
