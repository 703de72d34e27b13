//! DPoP (RFC 9449) at the token endpoints: the proof in a request's `DPoP` header is
//! checked strictly with this provider's own OpenSSL code ([`crate::jwt`]), never the
//! library's verifier, so that the provider stays an independent oracle for what the
//! library's agents send.
//!
//! The checks are RFC 9449 §4.3's: one `DPoP` header; a compact JWS; `typ` `dpop+jwt`;
//! `alg` ES256, EdDSA, RS256 or PS256; a public `jwk` (no private members) of the kind the
//! `alg` needs, which the signature verifies with; `htm` `POST`; `htu` the token endpoint's
//! URL (query and fragment ignored); `iat` within [`PROOF_WINDOW`] seconds either side;
//! a `jti` not seen before with the same key; no `ath` (a token request carries no access
//! token); and, in the Okta dialect, the provider's current nonce. The token is then bound
//! to the RFC 7638 thumbprint of the `jwk` (`cnf.jkt`) and answered as `token_type`
//! `DPoP`.
//!
//! Refusals are answered as each vendor does: Keycloak with 400 `invalid_request` and the
//! descriptions of Keycloak 26.7.3's `DPoPUtil`; Auth0 and Okta with 400
//! `invalid_dpop_proof` (RFC 9449 §5); Okta's missing or stale nonce with 400
//! `use_dpop_nonce` and a `DPoP-Nonce` header (RFC 9449 §8). The Entra ID dialect ignores
//! the header: Entra ID does not do RFC 9449 DPoP.

use std::sync::PoisonError;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::jwt::{self, JwkProblem};
use crate::{Dialect, Inner, OAuthError, now, oauth_error};

/// How far a proof's `iat` may lie from now, either side, in seconds.
pub(crate) const PROOF_WINDOW: u64 = 60;
/// The algorithms a proof may be signed with.
pub(crate) const PROOF_ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];
/// The proof's header `typ`.
const PROOF_TYPE: &str = "dpop+jwt";
/// The largest `DPoP` header read.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` recorded.
const MAX_JTI_CHARS: usize = 256;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// More than one `DPoP` header, or one that is not ASCII.
    Header,
    /// Not a compact JWS with JSON header and claims.
    Syntax,
    Type(String),
    NoAlgorithm,
    Algorithm(String),
    NoJwk,
    Key(JwkProblem),
    Signature,
    MissingClaims,
    MalformedUrl,
    Url,
    Method,
    NotActive,
    Replayed,
    AccessTokenHash,
}

impl Refusal {
    /// Keycloak 26.7.3's `error_description` (`DPoPUtil.validateDPoP`).
    fn keycloak(&self) -> String {
        match self {
            Refusal::Header | Refusal::Syntax => "DPoP header verification failure".into(),
            Refusal::Type(typ) => format!("Invalid or missing type in DPoP header: {typ}"),
            Refusal::NoAlgorithm => "No alg in DPoP header".into(),
            Refusal::Algorithm(alg) => format!("Unsupported DPoP algorithm: {alg}"),
            Refusal::NoJwk => "No JWK in DPoP header".into(),
            Refusal::Key(JwkProblem::UnsupportedKeyType) => "Unsupported key type in DPoP header".into(),
            Refusal::Key(JwkProblem::NoPublicKey) => "No public key in DPoP header".into(),
            Refusal::Key(JwkProblem::Private) => "Private key material must not be present in DPoP JWK".into(),
            Refusal::Signature => "DPoP verification failure: Invalid token signature".into(),
            Refusal::MissingClaims => "DPoP mandatory claims are missing".into(),
            Refusal::MalformedUrl => "Malformed HTTP URL in DPoP proof".into(),
            Refusal::Url => "DPoP HTTP URL mismatch".into(),
            Refusal::Method => "DPoP HTTP method mismatch".into(),
            Refusal::NotActive => "DPoP proof is not active".into(),
            Refusal::Replayed => "DPoP proof has already been used".into(),
            // Keycloak ignores `ath` at its token endpoint; this provider is stricter.
            Refusal::AccessTokenHash => "DPoP verification failure: ath is not allowed in a proof for the token endpoint".into(),
        }
    }

    /// The description Auth0 and Okta get with `invalid_dpop_proof`.
    fn rfc(&self) -> String {
        match self {
            Refusal::Header => "The request must carry exactly one DPoP header.".into(),
            Refusal::Syntax => "The DPoP proof is not a well-formed JWT.".into(),
            Refusal::Type(typ) => format!("The DPoP proof typ must be dpop+jwt, not {typ:?}."),
            Refusal::NoAlgorithm => "The DPoP proof has no alg.".into(),
            Refusal::Algorithm(alg) => format!("The DPoP proof alg {alg:?} is not supported: use {}.", PROOF_ALGORITHMS.join(", ")),
            Refusal::NoJwk => "The DPoP proof header has no jwk.".into(),
            Refusal::Key(JwkProblem::UnsupportedKeyType) => "The DPoP proof jwk is not a key of the kind its alg needs.".into(),
            Refusal::Key(JwkProblem::NoPublicKey) => "The DPoP proof jwk is not a valid public key.".into(),
            Refusal::Key(JwkProblem::Private) => "The DPoP proof jwk must not contain a private key.".into(),
            Refusal::Signature => "The DPoP proof signature is invalid.".into(),
            Refusal::MissingClaims => "The DPoP proof must carry jti, htm, htu and iat.".into(),
            Refusal::MalformedUrl => "The DPoP proof htu is not an absolute URL.".into(),
            Refusal::Url => "The DPoP proof htu does not match the token endpoint.".into(),
            Refusal::Method => "The DPoP proof htm does not match the request method.".into(),
            Refusal::NotActive => format!("The DPoP proof iat is more than {PROOF_WINDOW} seconds from now."),
            Refusal::Replayed => "The DPoP proof jti has already been used.".into(),
            Refusal::AccessTokenHash => "The DPoP proof for a token request must not carry ath.".into(),
        }
    }
}

/// The refusal as `dialect` answers it.
fn refused(dialect: Dialect, refusal: &Refusal) -> OAuthError {
    match dialect {
        Dialect::Keycloak => oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_request", &refusal.keycloak()),
        _ => oauth_error(dialect, StatusCode::BAD_REQUEST, "invalid_dpop_proof", &refusal.rfc()),
    }
}

/// `url` without query and fragment, normalised by parsing (scheme and host case, the
/// default port).
fn without_query(url: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(url).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}

impl Inner {
    /// Checks the `DPoP` proof of a request to `dialect`'s token endpoint at `token_url`:
    /// `Ok(None)` without one (and always for Entra ID, which ignores it), `Ok(Some(jkt))`
    /// for a valid one, the vendor's error otherwise. A valid proof's `jti` is recorded.
    pub(crate) fn check_token_dpop(&self, dialect: Dialect, headers: &HeaderMap, token_url: &str) -> Result<Option<String>, OAuthError> {
        if dialect == Dialect::Entra {
            return Ok(None);
        }
        let mut values = headers.get_all("dpop").iter();
        let value = match (values.next(), values.next()) {
            (None, _) => return Ok(None),
            (Some(_), Some(_)) => return Err(refused(dialect, &Refusal::Header)),
            (Some(value), None) => value,
        };
        let proof = value.to_str().map_err(|_| refused(dialect, &Refusal::Header))?.trim();
        if proof.len() > MAX_PROOF_BYTES {
            return Err(refused(dialect, &Refusal::Syntax));
        }
        let proof = jwt::decode(proof).map_err(|_| refused(dialect, &Refusal::Syntax))?;
        let jkt = self.check_proof(&proof, token_url).map_err(|r| refused(dialect, &r))?;
        if dialect == Dialect::Okta && proof.str_claim("nonce") != Some(self.okta_nonce.as_str()) {
            // RFC 9449 §8, as Okta answers every first DPoP token request.
            let mut error =
                oauth_error(dialect, StatusCode::BAD_REQUEST, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof.");
            error.dpop_nonce = Some(self.okta_nonce.clone());
            return Err(error);
        }
        let jti = proof.str_claim("jti").unwrap_or_default();
        let now = now();
        let mut seen = self.seen_jtis.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, until| *until > now);
        // Kept until no proof with this iat could be accepted any more.
        if seen.insert(format!("dpop|{jkt}|{jti}"), now + 2 * PROOF_WINDOW + 1).is_some() {
            return Err(refused(dialect, &Refusal::Replayed));
        }
        Ok(Some(jkt))
    }

    /// The proof's own checks, the nonce and the replay aside: its thumbprint.
    fn check_proof(&self, proof: &jwt::Jwt, token_url: &str) -> Result<String, Refusal> {
        match proof.header.get("typ").and_then(Value::as_str) {
            Some(PROOF_TYPE) => {}
            other => return Err(Refusal::Type(other.unwrap_or("null").to_owned())),
        }
        let alg = proof.header.get("alg").and_then(Value::as_str).ok_or(Refusal::NoAlgorithm)?;
        if !PROOF_ALGORITHMS.contains(&alg) {
            return Err(Refusal::Algorithm(alg.to_owned()));
        }
        let Some(Value::Object(jwk)) = proof.header.get("jwk") else { return Err(Refusal::NoJwk) };
        let key = jwt::proof_key(jwk, alg).map_err(Refusal::Key)?;
        if !proof.verifies_with(&key, alg) {
            return Err(Refusal::Signature);
        }
        let jkt = jwt::jwk_thumbprint(jwk).ok_or(Refusal::Key(JwkProblem::NoPublicKey))?;
        let (Some(jti), Some(htm), Some(htu), Some(iat)) =
            (proof.str_claim("jti"), proof.str_claim("htm"), proof.str_claim("htu"), proof.u64_claim("iat"))
        else {
            return Err(Refusal::MissingClaims);
        };
        if jti.trim().is_empty() || jti.len() > MAX_JTI_CHARS {
            return Err(Refusal::MissingClaims);
        }
        let htu = without_query(htu).ok_or(Refusal::MalformedUrl)?;
        if Some(htu) != without_query(token_url) {
            return Err(Refusal::Url);
        }
        if htm != "POST" {
            return Err(Refusal::Method);
        }
        if now().abs_diff(iat) > PROOF_WINDOW {
            return Err(Refusal::NotActive);
        }
        if proof.claims.contains_key("ath") {
            return Err(Refusal::AccessTokenHash);
        }
        Ok(jkt)
    }
}

/// Binds `claims` (an access token's) to the proof's key, if there was one: `cnf.jkt`.
pub(crate) fn bind(claims: &mut Value, jkt: Option<&str>) {
    if let Some(jkt) = jkt {
        claims["cnf"] = serde_json::json!({"jkt": jkt});
    }
}

/// The response's `token_type`: `DPoP` for a bound token.
pub(crate) fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// The `cnf.jkt` of an access token's claims.
pub(crate) fn bound_jkt(claims: &serde_json::Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("jkt")?.as_str()
}
