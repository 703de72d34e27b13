//! RS256/RS384/RS512 and ES256 on OpenSSL's `EVP_PKEY` operations, set up once per key.
//!
//! Every `EVP_DigestVerifyInit` / `EVP_DigestSignInit` (what josekit calls per token) looks
//! the signature and digest algorithms up in OpenSSL's provider store again; for an RSA-2048
//! verification that lookup costs about a tenth of the RSA operation itself. Here a key keeps
//! a few contexts on which `EVP_PKEY_verify_init` (or `_sign_init`), the padding and the digest
//! were set once, and each signature is made or checked over a SHA-2 digest computed
//! directly. The checks are OpenSSL's own, the same as through josekit: PKCS #1 v1.5
//! encode-and-compare for RSA (digest algorithm pinned to the key's), range checks and the
//! curve equation for ECDSA.

use std::sync::{Mutex, PoisonError};

use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::md::{Md, MdRef};
use openssl::pkey::{HasPublic, Id, PKey, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sha::{Sha256, Sha384, Sha512};

use super::keys::SigningAlgorithm;

/// Contexts kept per key for reuse: as many as verifications usually run at once. Beyond
/// it, more are made (and dropped after use) when needed.
const IDLE_CONTEXTS: usize = 16;

/// The bytes of an ES256 signature: `r` and `s`, 32 bytes each (RFC 7518 §3.4).
const ES256_SIGNATURE_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    RsaPkcs1,
    EcdsaP256,
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// A SHA-2 digest, up to 64 bytes.
struct Digest {
    bytes: [u8; 64],
    len: usize,
}

impl Digest {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Hash {
    fn md(self) -> &'static MdRef {
        match self {
            Hash::Sha256 => Md::sha256(),
            Hash::Sha384 => Md::sha384(),
            Hash::Sha512 => Md::sha512(),
        }
    }

    /// OpenSSL's direct SHA-2 (no provider lookup per call).
    fn digest(self, message: &[u8]) -> Digest {
        let mut bytes = [0u8; 64];
        let len = match self {
            Hash::Sha256 => {
                let mut hasher = Sha256::new();
                hasher.update(message);
                bytes[..32].copy_from_slice(&hasher.finish());
                32
            }
            Hash::Sha384 => {
                let mut hasher = Sha384::new();
                hasher.update(message);
                bytes[..48].copy_from_slice(&hasher.finish());
                48
            }
            Hash::Sha512 => {
                let mut hasher = Sha512::new();
                hasher.update(message);
                bytes = hasher.finish();
                64
            }
        };
        Digest { bytes, len }
    }
}

/// The scheme and digest of the algorithms done here; `None` for the others (PS*, EdDSA).
fn scheme_of(algorithm: SigningAlgorithm) -> Option<(Scheme, Hash)> {
    match algorithm {
        SigningAlgorithm::Rs256 => Some((Scheme::RsaPkcs1, Hash::Sha256)),
        SigningAlgorithm::Rs384 => Some((Scheme::RsaPkcs1, Hash::Sha384)),
        SigningAlgorithm::Rs512 => Some((Scheme::RsaPkcs1, Hash::Sha512)),
        SigningAlgorithm::Es256 => Some((Scheme::EcdsaP256, Hash::Sha256)),
        _ => None,
    }
}

/// Whether `key` is of the kind `scheme` needs (an RSA key, or an EC key on P-256).
fn fits<T: HasPublic>(scheme: Scheme, key: &PKey<T>) -> bool {
    match scheme {
        Scheme::RsaPkcs1 => key.id() == Id::RSA,
        Scheme::EcdsaP256 => {
            key.id() == Id::EC && key.ec_key().is_ok_and(|ec| ec.group().curve_name() == Some(openssl::nid::Nid::X9_62_PRIME256V1))
        }
    }
}

/// Contexts for one key and operation, ready for use.
struct Contexts<T> {
    key: PKey<T>,
    scheme: Scheme,
    hash: Hash,
    /// `EVP_PKEY_verify_init` or `EVP_PKEY_sign_init`.
    init: fn(&mut PkeyCtx<T>) -> Result<(), ErrorStack>,
    idle: Mutex<Vec<PkeyCtx<T>>>,
}

impl<T> Contexts<T> {
    fn new(key: PKey<T>, scheme: Scheme, hash: Hash, init: fn(&mut PkeyCtx<T>) -> Result<(), ErrorStack>) -> Result<Self, ErrorStack> {
        let contexts = Self { key, scheme, hash, init, idle: Mutex::new(Vec::new()) };
        // One made now: a key that loads can always be used.
        let first = contexts.prepare()?;
        contexts.give_back(first);
        Ok(contexts)
    }

    fn prepare(&self) -> Result<PkeyCtx<T>, ErrorStack> {
        let mut ctx = PkeyCtx::new(&self.key)?;
        (self.init)(&mut ctx)?;
        if self.scheme == Scheme::RsaPkcs1 {
            ctx.set_rsa_padding(Padding::PKCS1)?;
        }
        // Pins the digest: a digest of another length is refused.
        ctx.set_signature_md(self.hash.md())?;
        Ok(ctx)
    }

    fn take(&self) -> Result<PkeyCtx<T>, ErrorStack> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(ctx) => Ok(ctx),
            None => self.prepare(),
        }
    }

    /// Keeps `ctx` for the next operation. An operation, failed or not, leaves the
    /// context as it was set up (OpenSSL keeps no per-signature state in it).
    fn give_back(&self, ctx: PkeyCtx<T>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CONTEXTS {
            idle.push(ctx);
        }
    }
}

/// Checks RS256/RS384/RS512 or ES256 signatures with one public key.
pub(crate) struct PreparedVerifier {
    contexts: Contexts<Public>,
}

impl PreparedVerifier {
    /// A verifier for `algorithm` with `key`, or `None` when the algorithm is not done here
    /// or the key does not suit it (the caller then keeps josekit's verifier).
    pub(crate) fn new(algorithm: SigningAlgorithm, key: PKey<Public>) -> Option<Self> {
        let (scheme, hash) = scheme_of(algorithm)?;
        if !fits(scheme, &key) {
            return None;
        }
        Contexts::new(key, scheme, hash, |ctx| ctx.verify_init()).ok().map(|contexts| Self { contexts })
    }

    /// Whether `signature` (in JWS form: raw `r || s` for ES256) over `message` verifies.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let der;
        let signature = match self.contexts.scheme {
            Scheme::RsaPkcs1 => signature,
            Scheme::EcdsaP256 => match ecdsa_der(signature) {
                Some(encoded) => {
                    der = encoded;
                    der.as_slice()
                }
                None => return false,
            },
        };
        let digest = self.contexts.hash.digest(message);
        let Ok(mut ctx) = self.contexts.take() else {
            return false;
        };
        // Err: OpenSSL refused the signature and said why (its error queue, now emptied).
        let valid = matches!(ctx.verify(digest.as_slice(), signature), Ok(true));
        self.contexts.give_back(ctx);
        valid
    }
}

/// Signs ES256 with one private key.
pub(crate) struct PreparedEs256Signer {
    contexts: Contexts<Private>,
}

impl PreparedEs256Signer {
    /// A signer with `key`, or `None` when it is not an EC P-256 key.
    pub(crate) fn new(key: PKey<Private>) -> Option<Self> {
        if !fits(Scheme::EcdsaP256, &key) {
            return None;
        }
        Contexts::new(key, Scheme::EcdsaP256, Hash::Sha256, |ctx| ctx.sign_init()).ok().map(|contexts| Self { contexts })
    }

    /// The JWS signature over `message`: `r || s`, 32 bytes each.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let digest = self.contexts.hash.digest(message);
        let mut ctx = self.contexts.take()?;
        let mut der = Vec::new();
        let signed = ctx.sign_to_vec(digest.as_slice(), &mut der);
        self.contexts.give_back(ctx);
        signed?;
        let signature = EcdsaSig::from_der(&der)?;
        let mut raw = signature.r().to_vec_padded(32)?;
        raw.extend_from_slice(&signature.s().to_vec_padded(32)?);
        Ok(raw)
    }
}

/// A DER `ECDSA-Sig-Value` holding a JWS ES256 signature's `r` and `s`.
struct EcdsaDer {
    bytes: [u8; 72],
    len: usize,
}

impl EcdsaDer {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `SEQUENCE { INTEGER r, INTEGER s }` for a raw 64-byte ES256 signature (as josekit
/// builds it); `None` for any other length.
fn ecdsa_der(raw: &[u8]) -> Option<EcdsaDer> {
    if raw.len() != ES256_SIGNATURE_LEN {
        return None;
    }
    let mut bytes = [0u8; 72];
    bytes[0] = 0x30;
    let mut len = 2;
    for half in raw.chunks_exact(ES256_SIGNATURE_LEN / 2) {
        // Minimal encoding: no leading zero bytes (one kept for zero), one added before a
        // high bit so that the integer stays positive.
        let start = half.iter().position(|b| *b != 0).unwrap_or(half.len() - 1);
        let digits = &half[start..];
        let pad = digits[0] & 0x80 != 0;
        bytes[len] = 0x02;
        bytes[len + 1] = u8::try_from(digits.len() + usize::from(pad)).ok()?;
        len += 2;
        if pad {
            len += 1;
        }
        bytes[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    }
    bytes[1] = u8::try_from(len - 2).ok()?;
    Some(EcdsaDer { bytes, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SigningKey, VerifyingKey};
    use josekit::jws::{ES256, JwsSigner, JwsVerifier, RS256, RS384, RS512};

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(dual_auth_test_support::key_fixture(name)).unwrap()
    }

    fn josekit_verifier(algorithm: SigningAlgorithm, public_pem: &str) -> Box<dyn JwsVerifier> {
        match algorithm {
            SigningAlgorithm::Rs256 => Box::new(RS256.verifier_from_pem(public_pem).unwrap()),
            SigningAlgorithm::Rs384 => Box::new(RS384.verifier_from_pem(public_pem).unwrap()),
            SigningAlgorithm::Rs512 => Box::new(RS512.verifier_from_pem(public_pem).unwrap()),
            _ => Box::new(ES256.verifier_from_pem(public_pem).unwrap()),
        }
    }

    fn josekit_signer(algorithm: SigningAlgorithm, private_pem: &str) -> Box<dyn JwsSigner> {
        match algorithm {
            SigningAlgorithm::Rs256 => Box::new(RS256.signer_from_pem(private_pem).unwrap()),
            SigningAlgorithm::Rs384 => Box::new(RS384.signer_from_pem(private_pem).unwrap()),
            SigningAlgorithm::Rs512 => Box::new(RS512.signer_from_pem(private_pem).unwrap()),
            _ => Box::new(ES256.signer_from_pem(private_pem).unwrap()),
        }
    }

    /// Every way of loading a key gets the prepared path, which agrees with josekit both
    /// ways and refuses what josekit refuses, and keeps working after refusals.
    #[test]
    fn prepared_signatures_agree_with_josekit_and_refuse_tampering() {
        let cases = [
            (SigningAlgorithm::Rs256, "rsa2048-pkcs8.pem", "rsa2048-spki.pub.pem"),
            (SigningAlgorithm::Rs384, "rsa2048-pkcs1.pem", "rsa2048-pkcs1.pub.pem"),
            (SigningAlgorithm::Rs512, "rsa2048-pkcs8.pem", "rsa2048-spki.pub.pem"),
            (SigningAlgorithm::Es256, "ec-p256-pkcs8.pem", "ec-p256.pub.pem"),
            (SigningAlgorithm::Es256, "ec-p256-sec1.pem", "ec-p256.pub.pem"),
        ];
        let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
        for (algorithm, private, public) in cases {
            let signing = SigningKey::from_pem_with_algorithm(fixture(private), algorithm).unwrap();
            assert_eq!(signing.is_prepared(), algorithm == SigningAlgorithm::Es256, "{algorithm:?} {private}");
            let jwk = signing.public_jwk();
            let verifying = [
                signing.verifying_key(),
                VerifyingKey::from_pem_with_algorithm(fixture(public), algorithm).unwrap(),
                VerifyingKey::from_jwk(jwk.as_object().unwrap()).unwrap(),
            ];
            let theirs = josekit_verifier(algorithm, &fixture(public));
            let their_signature = josekit_signer(algorithm, &fixture(private)).sign(message).unwrap();
            for _ in 0..3 {
                let ours = signing.sign_bytes(message).unwrap();
                assert!(theirs.verify(message, &ours).is_ok(), "josekit verifies ours: {algorithm:?} {private}");
                for key in &verifying {
                    assert!(key.is_prepared(), "{algorithm:?} {public}");
                    assert!(key.verify_bytes(message, &ours) && key.verify_bytes(message, &their_signature));
                    let mut flipped = ours.clone();
                    flipped[ours.len() / 2] ^= 1;
                    assert!(!key.verify_bytes(message, &flipped));
                    assert!(!key.verify_bytes(b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ5In0", &ours));
                    assert!(!key.verify_bytes(message, &ours[..ours.len() - 1]));
                    assert!(!key.verify_bytes(message, &[ours.as_slice(), &[0]].concat()));
                    assert!(!key.verify_bytes(message, &[]));
                    assert!(key.verify_bytes(message, &ours), "still verifies after refusals");
                }
            }
        }
        // Another key's signature, and another hash's, are refused.
        let other = SigningKey::from_pem(fixture("rsa2048-other.pem")).unwrap();
        let rsa = SigningKey::from_pem(fixture("rsa2048-pkcs8.pem")).unwrap();
        assert!(!rsa.verifying_key().verify_bytes(message, &other.sign_bytes(message).unwrap()));
        let rs512 = SigningKey::from_pem_with_algorithm(fixture("rsa2048-pkcs8.pem"), SigningAlgorithm::Rs512).unwrap();
        assert!(!rsa.verifying_key().verify_bytes(message, &rs512.sign_bytes(message).unwrap()));
        assert!(!rs512.verifying_key().verify_bytes(message, &rsa.sign_bytes(message).unwrap()));
    }

    #[test]
    fn es256_signatures_out_of_range_are_refused() {
        let key = SigningKey::from_pem(fixture("ec-p256-pkcs8.pem")).unwrap();
        let verifying = key.verifying_key();
        let message = b"m";
        let good = key.sign_bytes(message).unwrap();
        // The group order n of P-256: r or s equal to it (or zero) is refused.
        let n = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        for (r, s) in [(&[0u8; 32][..], &good[32..]), (&good[..32], &[0u8; 32][..]), (&n[..], &good[32..]), (&good[..32], &n[..])] {
            assert!(!verifying.verify_bytes(message, &[r, s].concat()));
        }
        // r and s swapped.
        assert!(!verifying.verify_bytes(message, &[&good[32..], &good[..32]].concat()));
        assert!(verifying.verify_bytes(message, &good));
    }

    fn hex_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn prepared_keys_verify_from_many_threads_at_once() {
        let rsa = SigningKey::from_pem(fixture("rsa2048-pkcs8.pem")).unwrap();
        let ec = SigningKey::from_pem(fixture("ec-p256-pkcs8.pem")).unwrap();
        std::thread::scope(|scope| {
            for t in 0..(2 * IDLE_CONTEXTS) {
                let (rsa, ec) = (&rsa, &ec);
                scope.spawn(move || {
                    for i in 0..20 {
                        let message = format!("message-{t}-{i}");
                        for key in [rsa, ec] {
                            let signature = key.sign_bytes(message.as_bytes()).unwrap();
                            assert!(key.verifying_key().verify_bytes(message.as_bytes(), &signature));
                            assert!(!key.verifying_key().verify_bytes(b"other", &signature));
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn ecdsa_signatures_become_minimal_der() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // high bit: a zero byte goes first
        raw[31] = 1;
        raw[34] = 0x7f; // two leading zero bytes dropped
        raw[63] = 2;
        let der = ecdsa_der(&raw).unwrap();
        let decoded = EcdsaSig::from_der(der.as_slice()).unwrap();
        assert_eq!(decoded.r().to_vec_padded(32).unwrap(), raw[..32]);
        assert_eq!(decoded.s().to_vec_padded(32).unwrap(), raw[32..]);
        assert_eq!(&der.as_slice()[..5], [0x30, 33 + 30 + 4, 0x02, 33, 0x00]);
        // Zero halves encode as INTEGER 0 (and then fail the range check).
        let zero = ecdsa_der(&[0u8; 64]).unwrap();
        assert_eq!(zero.as_slice(), [0x30, 6, 0x02, 1, 0, 0x02, 1, 0]);
        assert!(ecdsa_der(&raw[..63]).is_none() && ecdsa_der(&[0u8; 65]).is_none());
    }
}
