//! Client assertions (RFC 7523) and act assertions: short-lived JWTs an agent signs to
//! authenticate to an identity provider, or to carry the human beside a token.

use std::fmt;
use std::time::{Duration, SystemTime};

use openssl::sha::Sha256;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::act_jwt::new_jti;
use super::compact::{self, JwsSign};
use super::keys::SigningKey;
use crate::act::Act;
use crate::clock::unix_seconds;
use crate::error::KeyError;

/// RFC 7523's `client_assertion_type` for JWT client authentication.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `typ` of an Entra ID act assertion. Act JWTs (application to agent) are `JWT`, as
/// upstream writes them: with distinct types, neither verifier accepts the other's token,
/// even where one key signs both.
pub const ACT_ASSERTION_TYPE: &str = "act-assertion+jwt";

/// How long client and act assertions live: 300 s, as upstream.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The shortest client secret accepted for HS256: RFC 7518 §3.2 wants a key at least as
/// long as the hash (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// SHA-256's block size: HMAC pads (or hashes) the key to it (RFC 2104).
const SHA256_BLOCK: usize = 64;

/// An HMAC-SHA-256 key made from a client secret (`client_secret_jwt`).
///
/// Held as the two padded key blocks of RFC 2104 (`K ^ ipad`, `K ^ opad`), wiped when the
/// key is dropped, and computed on OpenSSL's SHA-256 directly: an HMAC through OpenSSL's
/// `EVP_PKEY` interface sets up a MAC context per signature, costing more than the hashing.
pub struct HmacKey {
    pads: Zeroizing<[[u8; SHA256_BLOCK]; 2]>,
}

impl HmacKey {
    /// An HS256 key from the client secret.
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] when the secret is shorter than 32 bytes.
    pub fn hs256(secret: &SecretString) -> Result<Self, KeyError> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::InvalidKey {
                reason: format!(
                    "the client secret is {} bytes; HS256 needs at least {MIN_HS256_SECRET_BYTES} (RFC 7518 §3.2): \
                     use the secret your identity provider generated, or private_key_jwt",
                    bytes.len()
                ),
            });
        }
        Ok(Self::from_key_bytes(bytes))
    }

    /// RFC 2104: a key longer than the block is hashed first; then it is padded with zeros.
    fn from_key_bytes(key: &[u8]) -> Self {
        let mut block = Zeroizing::new([0u8; SHA256_BLOCK]);
        if key.len() > SHA256_BLOCK {
            let mut hasher = Sha256::new();
            hasher.update(key);
            block[..32].copy_from_slice(Zeroizing::new(hasher.finish()).as_slice());
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut pads = Zeroizing::new([[0x36u8; SHA256_BLOCK], [0x5cu8; SHA256_BLOCK]]);
        for pad in pads.iter_mut() {
            for (byte, key) in pad.iter_mut().zip(block.iter()) {
                *byte ^= key;
            }
        }
        Self { pads }
    }

    /// HMAC-SHA-256 of `message`: `H((K ^ opad) || H((K ^ ipad) || message))`.
    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let [inner_pad, outer_pad] = &*self.pads;
        let mut inner = Sha256::new();
        inner.update(inner_pad);
        inner.update(message);
        let inner = inner.finish();
        let mut outer = Sha256::new();
        outer.update(outer_pad);
        outer.update(&inner);
        outer.finish()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(HS256, [REDACTED])")
    }
}

impl JwsSign for HmacKey {
    fn alg(&self) -> &str {
        "HS256"
    }
    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.mac(message).to_vec())
    }
}

/// How an agent proves who it is to an identity provider with a signed JWT.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// `client_secret_jwt`: HS256 with the client secret (the upstream default). The
    /// secret itself is never sent.
    ClientSecretJwt(HmacKey),
    /// `private_key_jwt`: the agent's own key (RS256, PS256, ES256, ...), with `kid`.
    PrivateKeyJwt(SigningKey),
}

impl ClientAuthentication {
    /// `client_secret_jwt` with this client secret.
    ///
    /// # Errors
    /// As [`HmacKey::hs256`].
    pub fn client_secret_jwt(secret: &SecretString) -> Result<Self, KeyError> {
        HmacKey::hs256(secret).map(Self::ClientSecretJwt)
    }

    /// `private_key_jwt` with this key. Assertions always carry a `kid`: the key's own,
    /// else its RFC 7638 thumbprint, which identity providers can match against the key
    /// registered for the client.
    pub fn private_key_jwt(key: SigningKey) -> Self {
        Self::PrivateKeyJwt(key.with_thumbprint_key_id_if_unset())
    }

    /// The RFC 7591 name: `client_secret_jwt` or `private_key_jwt`.
    pub fn method_name(&self) -> &'static str {
        match self {
            Self::ClientSecretJwt(_) => "client_secret_jwt",
            Self::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }

    fn signer(&self) -> &dyn JwsSign {
        match self {
            Self::ClientSecretJwt(key) => key,
            Self::PrivateKeyJwt(key) => key,
        }
    }

    /// Signs a fresh client assertion (new `jti`, `iat` = `now`).
    ///
    /// # Errors
    /// [`KeyError::Signing`].
    pub fn sign(&self, claims: &AssertionClaims<'_>, now: SystemTime) -> Result<SecretString, KeyError> {
        sign_assertion(self.signer(), claims, now)
    }
}

/// Signs an assertion with an asymmetric key (Entra ID's act assertion and certificate
/// credential).
///
/// # Errors
/// [`KeyError::Signing`].
pub fn sign_assertion_with_key(key: &SigningKey, claims: &AssertionClaims<'_>, now: SystemTime) -> Result<SecretString, KeyError> {
    sign_assertion(key, claims, now)
}

/// Signs an Entra ID act assertion: as [`sign_assertion_with_key`], with `typ`
/// [`ACT_ASSERTION_TYPE`] so that it cannot pass for an act JWT.
///
/// # Errors
/// [`KeyError::Signing`].
pub fn sign_act_assertion_with_key(key: &SigningKey, claims: &AssertionClaims<'_>, now: SystemTime) -> Result<SecretString, KeyError> {
    let (wire, jti) = wire_claims(claims, now)?;
    compact::sign_typed(key, ACT_ASSERTION_TYPE, &WireClaims { jti: &jti, ..wire }).map(SecretString::from)
}

/// What goes into an assertion besides the times and `jti`, which are made fresh per call.
#[derive(Debug, Clone, Copy)]
pub struct AssertionClaims<'a> {
    /// `iss` (and `sub`): the client id, or the app id for Entra ID's act assertion.
    pub issuer: &'a str,
    /// `aud`: whom the assertion is for.
    pub audience: &'a str,
    /// How long it lives ([`ASSERTION_LIFETIME`] upstream).
    pub lifetime: Duration,
    /// The human, as the top-level `act` claim.
    pub act: Option<&'a Act>,
    /// `azp`: the agent's client id, binding an Entra ID act assertion to the agent.
    pub authorized_party: Option<&'a str>,
    /// Whether to write `nbf` = `iat` (Microsoft requires it in client assertions).
    pub not_before: bool,
}

#[derive(Serialize)]
struct WireClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Act>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
}

fn sign_assertion(signer: &dyn JwsSign, claims: &AssertionClaims<'_>, now: SystemTime) -> Result<SecretString, KeyError> {
    let (wire, jti) = wire_claims(claims, now)?;
    compact::sign(signer, &WireClaims { jti: &jti, ..wire }).map(SecretString::from)
}

/// The claims on the wire (with an empty `jti`, filled in by the caller) and a fresh `jti`.
fn wire_claims<'a>(claims: &AssertionClaims<'a>, now: SystemTime) -> Result<(WireClaims<'a>, String), KeyError> {
    let iat = unix_seconds(now);
    let wire = WireClaims {
        iss: claims.issuer,
        sub: claims.issuer,
        aud: claims.audience,
        exp: iat.saturating_add(claims.lifetime.as_secs()),
        iat,
        nbf: claims.not_before.then_some(iat),
        jti: "",
        act: claims.act,
        azp: claims.authorized_party,
    };
    Ok((wire, new_jti()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::{HS256, JwsSigner};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test cases 1, 2, 6 and 7 (the key shorter than, and longer than, the block).
        let cases: [(&[u8], &[u8], &str); 4] = [
            (&[0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, mac) in cases {
            assert_eq!(hex(&HmacKey::from_key_bytes(key).mac(data)), mac);
        }
    }

    #[test]
    fn hs256_signatures_are_josekits() {
        for len in [32, 63, 64, 65, 200] {
            let secret: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let ours = HmacKey::hs256(&SecretString::from(secret.clone())).unwrap();
            let theirs = HS256.signer_from_bytes(secret.as_bytes()).unwrap();
            for message in [&b""[..], b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", &[7u8; 1000]] {
                assert_eq!(ours.sign_bytes(message).unwrap(), theirs.sign(message).unwrap(), "{len}");
            }
        }
        assert!(HmacKey::hs256(&SecretString::from("x".repeat(31))).is_err());
        assert_eq!(format!("{:?}", HmacKey::hs256(&SecretString::from("s".repeat(32))).unwrap()), "HmacKey(HS256, [REDACTED])");
    }
}
