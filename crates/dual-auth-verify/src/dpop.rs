//! DPoP (RFC 9449) on the API side: the proof that comes beside a DPoP-bound token,
//! checked against the request it came with and the key the token is bound to.
//!
//! The proof is parsed with core's strict compact framing ([`UnverifiedJwt`]: its key is
//! its own, so not through the engine that checks tokens against configured keys) and its own
//! `jwk` ([`VerifyingKey::from_jwk`]: public keys only, no weak ones); nothing is looked up
//! by `kid`. Recording the proof's `jti` is left to the verifier, after every other check.

use std::time::{Duration, SystemTime};

use dual_auth_core::dangerous::UnverifiedJwt;
use dual_auth_core::jwt::{numeric_date, same_type};
use dual_auth_core::{ActJwtError, DPOP_PROOF_TYPE, VerifyingKey, access_token_hash, dpop_htu, jwk_thumbprint};
use serde_json::{Map, Value};

use crate::error::{DpopCheck, VerifyError};

/// The algorithms a DPoP proof may be signed with, as the `algs` of the `DPoP` challenge
/// says (RFC 9449 §7.1). `none` and HMAC never are.
pub const DPOP_ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];
/// The largest `DPoP` header accepted (a proof with an RSA 4096 key is under 3 KiB).
pub const MAX_DPOP_PROOF_BYTES: usize = 8 * 1024;
/// How far a proof's `iat` may lie from now, either side, before the issuer's leeway is
/// added (RFC 9449 §11.1: proofs are short-lived).
pub const DEFAULT_DPOP_PROOF_WINDOW: Duration = Duration::from_secs(60);
/// The widest proof window a verifier may be given.
pub const MAX_DPOP_PROOF_WINDOW: Duration = Duration::from_secs(300);

/// What a proof showed, once every check of its own passed.
#[derive(Debug)]
pub(crate) struct VerifiedProof {
    /// The RFC 7638 thumbprint of its `jwk`.
    pub(crate) jkt: String,
    pub(crate) jti: String,
    pub(crate) iat: u64,
}

fn refuse(check: DpopCheck, reason: impl Into<String>) -> VerifyError {
    VerifyError::InvalidDpopProof { check, reason: reason.into() }
}

/// Checks `proof` for a request with `method` to `url`, carrying `access_token`, at `now`,
/// with `iat` allowed `window_secs` either side (RFC 9449 §4.3, and §7 for `ath`).
pub(crate) fn verify_proof(
    proof: &str,
    method: &str,
    url: &url::Url,
    access_token: &str,
    now: SystemTime,
    window_secs: u64,
) -> Result<VerifiedProof, VerifyError> {
    if proof.len() > MAX_DPOP_PROOF_BYTES {
        return Err(refuse(
            DpopCheck::Request,
            format!("the proof is {} bytes, more than the {MAX_DPOP_PROOF_BYTES} accepted", proof.len()),
        ));
    }
    let jwt = UnverifiedJwt::parse(proof).map_err(|e| match e {
        ActJwtError::Malformed { reason } => refuse(DpopCheck::Syntax, reason),
        other => refuse(DpopCheck::Syntax, other.to_string()),
    })?;
    let header = jwt.header();
    let text = |name: &'static str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.as_str())),
        Some(_) => Err(refuse(DpopCheck::Syntax, format!("header {name:?} is not a string"))),
    };
    match text("typ")? {
        Some(typ) if same_type(typ, DPOP_PROOF_TYPE) => {}
        Some(typ) => return Err(refuse(DpopCheck::Type, format!("typ {typ:?} is not \"{DPOP_PROOF_TYPE}\""))),
        None => return Err(refuse(DpopCheck::Type, format!("no typ header: a proof's typ is \"{DPOP_PROOF_TYPE}\""))),
    }
    let alg = text("alg")?.ok_or_else(|| refuse(DpopCheck::Algorithm, "header has no \"alg\""))?;
    if !DPOP_ALGORITHMS.contains(&alg) {
        let why = if alg.eq_ignore_ascii_case("none") {
            "unsigned proofs prove nothing"
        } else if alg.get(..2).is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS")) {
            "a proof is signed with the private key of its jwk, never a shared secret"
        } else {
            "not an accepted algorithm"
        };
        return Err(refuse(DpopCheck::Algorithm, format!("alg {alg:?}: {why}; accepted are {}", DPOP_ALGORITHMS.join(", "))));
    }
    if header.contains_key("crit") {
        return Err(refuse(DpopCheck::Syntax, "header \"crit\": no critical extensions are understood"));
    }
    if let Some(name) = ["jku", "x5u", "x5c"].into_iter().find(|h| header.contains_key(*h)) {
        return Err(refuse(DpopCheck::Key, format!("header {name:?}: a proof's key is its jwk, named no other way")));
    }
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        Some(_) => return Err(refuse(DpopCheck::Key, "header \"jwk\" is not a JSON object")),
        None => return Err(refuse(DpopCheck::Key, "no jwk header: a proof carries its public key")),
    };
    let key = proof_key(jwk, alg)?;
    if !key.verifies(&jwt) {
        return Err(refuse(DpopCheck::Signature, "the signature does not verify with the proof's jwk"));
    }
    let jkt = thumbprint(jwk)?;

    let claims = jwt.claims();
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.trim().is_empty() => jti.clone(),
        Some(Value::String(_)) => return Err(refuse(DpopCheck::Jti, "jti is empty")),
        Some(_) => return Err(refuse(DpopCheck::Jti, "jti is not a string")),
        None => return Err(refuse(DpopCheck::Jti, "no jti claim: each proof needs a unique one")),
    };
    match claims.get("htm") {
        Some(Value::String(htm)) if htm == method => {}
        Some(Value::String(htm)) => return Err(refuse(DpopCheck::Method, format!("htm {htm:?} is not the request's method {method:?}"))),
        Some(_) => return Err(refuse(DpopCheck::Method, "htm is not a string")),
        None => return Err(refuse(DpopCheck::Method, "no htm claim")),
    }
    let expected = dpop_htu(url);
    match claims.get("htu") {
        Some(Value::String(htu)) => match url::Url::parse(htu) {
            Ok(found) if dpop_htu(&found) == expected => {}
            Ok(found) => {
                return Err(refuse(DpopCheck::Url, format!("htu {:?} is not this request's URL {expected:?}", dpop_htu(&found))));
            }
            Err(_) => return Err(refuse(DpopCheck::Url, format!("htu {htu:?} is not an absolute URL"))),
        },
        Some(_) => return Err(refuse(DpopCheck::Url, "htu is not a string")),
        None => return Err(refuse(DpopCheck::Url, "no htu claim")),
    }
    let iat = claims
        .get("iat")
        .map(|iat| numeric_date("iat", iat))
        .transpose()
        .map_err(|e| refuse(DpopCheck::IssuedAt, e.to_string()))?
        .ok_or_else(|| refuse(DpopCheck::IssuedAt, "no iat claim"))?;
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if iat > now && iat - now > window_secs {
        return Err(refuse(DpopCheck::IssuedAt, format!("iat is {} s ahead (window {window_secs} s): check the clocks", iat - now)));
    }
    if now > iat && now - iat > window_secs {
        return Err(refuse(DpopCheck::IssuedAt, format!("iat is {} s old (window {window_secs} s): make a new proof", now - iat)));
    }
    match claims.get("ath") {
        Some(Value::String(ath)) if *ath == access_token_hash(access_token) => {}
        Some(Value::String(_)) => return Err(refuse(DpopCheck::TokenHash, "ath is the hash of another access token")),
        Some(_) => return Err(refuse(DpopCheck::TokenHash, "ath is not a string")),
        None => return Err(refuse(DpopCheck::TokenHash, "no ath claim: a proof sent with an access token carries its hash")),
    }
    Ok(VerifiedProof { jkt, jti, iat })
}

/// The proof's public key, pinned to the header's `alg` (an RSA `jwk` without `alg` would
/// otherwise default to RS256 and refuse a PS256 proof).
/// The longest base64url RSA modulus accepted in a proof: 4096 bits (512 bytes, 683 chars).
const MAX_RSA_MODULUS_B64: usize = 683;

fn proof_key(jwk: &Map<String, Value>, alg: &str) -> Result<VerifyingKey, VerifyError> {
    let mut pinned = jwk.clone();
    match jwk.get("alg") {
        None => {
            pinned.insert("alg".into(), Value::String(alg.to_owned()));
        }
        Some(Value::String(own)) if own == alg => {}
        Some(own) => return Err(refuse(DpopCheck::Algorithm, format!("the jwk is for {own}, the proof says alg {alg:?}"))),
    }
    if jwk.get("kty").and_then(Value::as_str) == Some("RSA") {
        // The key is the client's choice and is checked before the token: a huge exponent
        // or modulus would buy an attacker a costly verification per request.
        if jwk.get("e").and_then(Value::as_str) != Some("AQAB") {
            return Err(refuse(DpopCheck::Key, "an RSA proof key must have the exponent 65537 (AQAB)"));
        }
        if jwk.get("n").and_then(Value::as_str).is_none_or(|n| n.len() > MAX_RSA_MODULUS_B64) {
            return Err(refuse(DpopCheck::Key, "an RSA proof key's modulus must be at most 4096 bits"));
        }
    }
    let key = VerifyingKey::from_jwk(&pinned).map_err(|e| refuse(DpopCheck::Key, e.to_string()))?;
    if key.algorithm().as_str() != alg {
        return Err(refuse(DpopCheck::Algorithm, format!("the jwk verifies {}, the proof says alg {alg:?}", key.algorithm().as_str())));
    }
    Ok(key)
}

/// The RFC 7638 thumbprint of a public JWK: its required members only.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Result<String, VerifyError> {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => return Err(refuse(DpopCheck::Key, "the jwk's kty is not RSA, EC or OKP")),
    };
    let mut required = Map::new();
    for member in members {
        match jwk.get(*member) {
            Some(Value::String(value)) => {
                required.insert((*member).to_owned(), Value::String(value.clone()));
            }
            _ => return Err(refuse(DpopCheck::Key, format!("the jwk has no string member {member:?}"))),
        }
    }
    Ok(jwk_thumbprint(&required))
}

/// The token's `cnf.jkt` (RFC 9449 §6), if it is bound to a DPoP key.
pub(crate) fn token_jkt(claims: &Map<String, Value>) -> Result<Option<&str>, VerifyError> {
    let invalid = |reason: &str| Err(VerifyError::InvalidClaim { claim: "cnf", reason: reason.into() });
    match claims.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => {
            // Another confirmation method (mTLS `x5t#S256`, RFC 7800 `jwk`, ...) is a sender
            // constraint this verifier does not enforce: refused rather than taken as Bearer.
            // `kc-jkt-type` is Keycloak's companion to `jkt`.
            if let Some(other) = cnf.keys().find(|k| !matches!(k.as_str(), "jkt" | "kc-jkt-type")) {
                return Err(VerifyError::InvalidClaim {
                    claim: "cnf",
                    reason: format!(
                        "confirmation method {:?} is not supported: only DPoP's jkt is",
                        dual_auth_core::truncate_untrusted(other, 40)
                    ),
                });
            }
            match cnf.get("jkt") {
                None => Ok(None),
                Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt.as_str())),
                Some(_) => invalid("cnf.jkt must be a non-empty string"),
            }
        }
        Some(_) => invalid("must be an object"),
    }
}

/// The URL a proof's `htu` must name: `public_origin` and the request's path. Without a
/// configured origin DPoP is refused: the request's own authority (`Host`, an absolute
/// URI) is the client's to choose, and would let a proof made for one API pass at another
/// (RFC 9449 §4.3, the `htu` check). Query and fragment never count; a path that is not in
/// normal form (`..`, `%2e`) is refused, so the URL compared is the one routed.
pub(crate) fn request_url(public_origin: Option<&str>, uri: &http::Uri) -> Result<url::Url, VerifyError> {
    let bad = |reason: &'static str| VerifyError::InvalidRequest { reason };
    let Some(origin) = public_origin else {
        return Err(VerifyError::Configuration {
            setting: "public_origin",
            reason: "DPoP needs the API's public origin (VerifierBuilder::public_origin): a proof's htu is not checked against a URL the client chose".into(),
        });
    };
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(bad("The request target is not a path: a DPoP proof cannot name it"));
    }
    let mut url = url::Url::parse(&format!("{origin}{path}")).map_err(|_| bad("The request URL cannot be read for the DPoP proof"))?;
    if url.path() != path {
        return Err(bad("The request path is not in normal form (dot segments or encoded dots): refused for DPoP"));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Checks a `public_origin` setting and returns it in normal form (`https://host[:port]`).
pub(crate) fn check_public_origin(origin: &str) -> Result<String, String> {
    // An API on this machine may be served without TLS (behind a local proxy, in tests).
    let url = dual_auth_core::http::HttpsUrl::parse_allowing_loopback_http(origin).map_err(|e| e.to_string())?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{origin:?} must be an origin only (scheme, host, port), without path, query or fragment"));
    }
    Ok(url.origin().ascii_serialization())
}

/// Whether the request's `Authorization` uses the `DPoP` scheme.
#[cfg(feature = "tower")]
pub(crate) fn uses_dpop_scheme(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().split(' ').next().unwrap_or_default())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(dual_auth_core::DPOP_HEADER))
}

/// The one `DPoP` header of a request.
pub(crate) fn proof_header(headers: &http::HeaderMap) -> Result<&str, VerifyError> {
    let mut values = headers.get_all(dual_auth_core::DPOP_HEADER).iter();
    match (values.next(), values.next()) {
        (None, _) => Err(VerifyError::MissingDpopProof),
        (Some(_), Some(_)) => Err(refuse(DpopCheck::Request, "more than one DPoP header")),
        (Some(value), None) => Ok(value.to_str().map_err(|_| refuse(DpopCheck::Request, "the DPoP header is not ASCII"))?.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_url_is_the_public_origin_and_the_path_in_normal_form_only() {
        let uri: http::Uri = "/finance/report?q=1".parse().unwrap();
        assert_eq!(request_url(Some("https://public.example.com"), &uri).unwrap().as_str(), "https://public.example.com/finance/report");
        // Without an origin, nothing the client sent (Host, an absolute URI) is trusted.
        let absolute: http::Uri = "https://api.example.com/x".parse().unwrap();
        assert!(matches!(request_url(None, &absolute), Err(VerifyError::Configuration { setting: "public_origin", .. })));
        // Dot segments would make the proof's URL another path than the one routed.
        for odd in ["/a/../b", "/a/%2e%2e/b", "/a/./b"] {
            let uri: http::Uri = odd.parse().unwrap();
            assert!(matches!(request_url(Some("https://api.example.com"), &uri), Err(VerifyError::InvalidRequest { .. })), "{odd}");
        }
    }

    #[test]
    fn other_confirmation_methods_are_refused_and_rsa_proof_keys_are_bounded() {
        let claims = |cnf: Value| serde_json::from_value::<Map<String, Value>>(serde_json::json!({"cnf": cnf})).unwrap();
        assert_eq!(token_jkt(&claims(serde_json::json!({"jkt": "abc", "kc-jkt-type": "DPoP"}))).unwrap(), Some("abc"));
        let err = token_jkt(&claims(serde_json::json!({"x5t#S256": "thumb"}))).unwrap_err();
        assert!(err.to_string().contains("confirmation method \"x5t#S256\" is not supported"), "{err}");
        let rsa = |e: &str, n_len: usize| {
            serde_json::from_value::<Map<String, Value>>(serde_json::json!({"kty": "RSA", "e": e, "n": "A".repeat(n_len)})).unwrap()
        };
        assert!(proof_key(&rsa("AQAB", 700), "RS256").unwrap_err().to_string().contains("at most 4096 bits"));
        assert!(proof_key(&rsa("AQAAAQ", 342), "RS256").unwrap_err().to_string().contains("exponent 65537"));
    }

    #[test]
    fn a_public_origin_is_an_https_origin() {
        assert_eq!(check_public_origin("https://API.example.com:443/").unwrap(), "https://api.example.com");
        assert_eq!(check_public_origin("http://localhost:8080").unwrap(), "http://localhost:8080");
        for bad in [
            "http://api.example.com",
            "https://api.example.com/finance",
            "https://u@api.example.com",
            "api.example.com",
            "https://a.example?x",
        ] {
            assert!(check_public_origin(bad).is_err(), "{bad}");
        }
    }
}
