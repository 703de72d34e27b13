//! DPoP (RFC 9449) on the API side: a bound token with a proof of its key gives the
//! `DualSubject` with the key's thumbprint; each hostile proof, and each bound token used
//! another way, is refused with the error that names it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Issuer, b64, hmac_sha256};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{DpopKey, InMemoryReplayGuard, SigningAlgorithm, SigningKey, access_token_hash, jwk_thumbprint};
use dual_auth_verify::{DpopCheck, DualSubject, IssuerPolicy, Verifier, VerifierBuilder as Builder, VerifyError};
use openssl::pkey::{PKey, Private};
use serde_json::{Value, json};

const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/finance/report";

fn verifier_with(issuer: &Issuer, policy: IssuerPolicy, change: impl FnOnce(Builder) -> Builder) -> Verifier {
    let builder = Verifier::builder().issuer(policy).http(issuer.http()).clock(Arc::new(issuer.clock.clone())).public_origin(ORIGIN);
    change(builder).build().unwrap()
}

fn verifier(issuer: &Issuer) -> Verifier {
    verifier_with(issuer, issuer.policy(), |b| b)
}

/// A token bound to `jkt` (RFC 9449 §6).
fn bound_token(issuer: &Issuer, jkt: &str) -> String {
    issuer.token_with(|c| c["cnf"] = json!({"jkt": jkt}))
}

fn now(issuer: &Issuer) -> SystemTime {
    dual_auth_core::Clock::now(&issuer.clock)
}

/// A proof made by the agent side's own code.
fn proof(issuer: &Issuer, key: &DpopKey, method: &str, url: &str, token: Option<&str>) -> String {
    key.proof(method, &url::Url::parse(url).unwrap(), token, None, now(issuer)).unwrap().expose_secret().to_owned()
}

fn headers(token: &str, proofs: &[&str]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, format!("DPoP {token}").parse().unwrap());
    for proof in proofs {
        headers.append("DPoP", proof.parse().unwrap());
    }
    headers
}

async fn call(verifier: &Verifier, method: &str, uri: &str, token: &str, proof: &str) -> Result<DualSubject, VerifyError> {
    verifier.verify_headers(&method.parse().unwrap(), &uri.parse().unwrap(), &headers(token, &[proof])).await
}

fn proof_check(err: &VerifyError) -> DpopCheck {
    match err {
        VerifyError::InvalidDpopProof { check, .. } => *check,
        other => panic!("expected a DPoP proof refusal, got {other:?}: {other}"),
    }
}

/// An Ed25519 key for forging proofs by hand (OpenSSL, not the code under test).
struct Forger {
    key: PKey<Private>,
}

impl Forger {
    fn new() -> Self {
        Self { key: PKey::generate_ed25519().unwrap() }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&self.key.raw_public_key().unwrap())})
    }

    fn thumbprint(&self) -> String {
        jwk_thumbprint(self.jwk().as_object().unwrap())
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut signer = openssl::sign::Signer::new_without_digest(&self.key).unwrap();
        format!("{input}.{}", b64(&signer.sign_oneshot_to_vec(input.as_bytes()).unwrap()))
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk()})
    }

    fn claims(&self, issuer: &Issuer, token: &str) -> Value {
        json!({"jti": format!("j-{}", rand_suffix()), "htm": "GET", "htu": URL, "iat": issuer.now(), "ath": access_token_hash(token)})
    }
}

fn rand_suffix() -> String {
    dual_auth_core::new_jti().unwrap()
}

#[tokio::test]
async fn a_valid_dpop_request_gives_the_dual_subject_with_its_key() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
        let key = DpopKey::generate(algorithm).unwrap();
        let token = bound_token(&issuer, key.thumbprint());
        // The query is no part of htu (RFC 9449 §4.2); the scheme is case-insensitive.
        let proof = proof(&issuer, &key, "GET", URL, Some(&token));
        let mut headers = headers(&token, &[&proof]);
        headers.insert(http::header::AUTHORIZATION, format!("dpop {token}").parse().unwrap());
        let subject = verifier.verify_headers(&http::Method::GET, &"/finance/report?q=1".parse().unwrap(), &headers).await.unwrap();
        assert_eq!(subject.dpop_jkt.as_deref(), Some(key.thumbprint()), "{algorithm:?}");
        assert!(subject.is_dpop_bound());
        assert_eq!((subject.agent.id(), subject.human.sub()), ("agent-007", "user_12345"));
        assert_eq!(serde_json::to_value(&subject).unwrap()["dpop_jkt"], key.thumbprint());
    }
    // A bearer token is not DPoP-bound, and says so.
    let subject = verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(subject.dpop_jkt, None);
    assert!(serde_json::to_value(&subject).unwrap().get("dpop_jkt").is_none());
}

#[tokio::test]
async fn without_a_public_origin_dpop_is_refused_whatever_the_client_names() {
    let issuer = Issuer::start().await;
    let verifier = Verifier::builder().issuer(issuer.policy()).http(issuer.http()).clock(Arc::new(issuer.clock.clone())).build().unwrap();
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = bound_token(&issuer, key.thumbprint());
    let proof_for = |url: &str| proof(&issuer, &key, "POST", url, Some(&token));
    // An absolute URI, or a Host header: both the client's, neither trusted.
    let p = proof_for("http://internal:8080/finance/report");
    let err = call(&verifier, "POST", "http://internal:8080/finance/report", &token, &p).await.unwrap_err();
    assert!(matches!(err, VerifyError::Configuration { setting: "public_origin", .. }), "{err}");
    let p = proof_for(URL);
    let mut h = headers(&token, &[&p]);
    h.insert(http::header::HOST, "api.example.com".parse().unwrap());
    let uri: http::Uri = "/finance/report".parse().unwrap();
    let err = verifier.verify_headers(&http::Method::POST, &uri, &h).await.unwrap_err();
    assert!(matches!(err, VerifyError::Configuration { setting: "public_origin", .. }), "{err}");
}

#[tokio::test]
async fn a_proof_for_another_request_or_token_is_refused() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = bound_token(&issuer, key.thumbprint());

    let other_method = proof(&issuer, &key, "POST", URL, Some(&token));
    let err = call(&verifier, "GET", URL, &token, &other_method).await.unwrap_err();
    assert_eq!(proof_check(&err), DpopCheck::Method, "{err}");
    assert_eq!(err.public_description(), "The DPoP proof is for another HTTP method");

    for url in ["https://api.example.com/finance/other", "https://evil.example.com/finance/report", "http://api.example.com/finance/report"]
    {
        let other_url = proof(&issuer, &key, "GET", url, Some(&token));
        let err = call(&verifier, "GET", "/finance/report", &token, &other_url).await.unwrap_err();
        assert_eq!(proof_check(&err), DpopCheck::Url, "{url}: {err}");
    }

    let no_ath = proof(&issuer, &key, "GET", URL, None);
    let err = call(&verifier, "GET", "/finance/report", &token, &no_ath).await.unwrap_err();
    assert_eq!(proof_check(&err), DpopCheck::TokenHash, "{err}");
    let other_token = proof(&issuer, &key, "GET", URL, Some("another-access-token"));
    let err = call(&verifier, "GET", "/finance/report", &token, &other_token).await.unwrap_err();
    assert_eq!(proof_check(&err), DpopCheck::TokenHash, "{err}");
    assert!(err.to_string().contains("another access token"), "{err}");
}

#[tokio::test]
async fn a_stale_or_future_iat_is_refused_within_the_window_plus_leeway() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    let key = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
    let token = bound_token(&issuer, key.thumbprint());
    let url = url::Url::parse(URL).unwrap();
    let at = |offset: i64| {
        let now = now(&issuer);
        let at =
            if offset >= 0 { now + Duration::from_secs(offset.unsigned_abs()) } else { now - Duration::from_secs(offset.unsigned_abs()) };
        key.proof("GET", &url, Some(&token), None, at).unwrap().expose_secret().to_owned()
    };
    // 60 s window plus the issuer's default 5 s leeway, either side.
    for offset in [-65, 65, 0] {
        call(&verifier, "GET", URL, &token, &at(offset)).await.unwrap_or_else(|e| panic!("{offset}: {e}"));
    }
    for offset in [-66, 66, -100_000, 100_000] {
        let err = call(&verifier, "GET", URL, &token, &at(offset)).await.unwrap_err();
        assert_eq!(proof_check(&err), DpopCheck::IssuedAt, "{offset}: {err}");
    }
    // An absurd iat is refused, never an overflow.
    let forger = Forger::new();
    let token = bound_token(&issuer, &forger.thumbprint());
    for iat in [json!(u64::MAX), json!(-1), json!("now"), json!(1e300)] {
        let mut claims = forger.claims(&issuer, &token);
        claims["iat"] = iat.clone();
        let err = call(&verifier, "GET", URL, &token, &forger.sign(&forger.header(), &claims)).await.unwrap_err();
        assert_eq!(proof_check(&err), DpopCheck::IssuedAt, "{iat}: {err}");
    }
    // A narrower window is honoured.
    let narrow = verifier_with(&issuer, issuer.policy().leeway(Duration::ZERO), |b| b.dpop_proof_window(Duration::from_secs(10)));
    let token = bound_token(&issuer, key.thumbprint());
    let err = call(&narrow, "GET", URL, &token, &at(-11)).await.unwrap_err();
    assert_eq!(proof_check(&err), DpopCheck::IssuedAt, "{err}");
}

#[tokio::test]
async fn the_hostile_proof_corpus_is_refused_each_with_its_check() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    let forger = Forger::new();
    let other = Forger::new();
    let token = bound_token(&issuer, &forger.thumbprint());
    let claims = || forger.claims(&issuer, &token);
    let header = || forger.header();

    // The forger's own well-formed proof passes: each case below changes one thing.
    call(&verifier, "GET", URL, &token, &forger.sign(&header(), &claims())).await.unwrap();

    let with_header = |change: &dyn Fn(&mut Value)| {
        let mut h = header();
        change(&mut h);
        forger.sign(&h, &claims())
    };
    let with_claims = |change: &dyn Fn(&mut Value)| {
        let mut c = claims();
        change(&mut c);
        forger.sign(&header(), &c)
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": forger.jwk()}).to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let hs256 = {
        let input = format!(
            "{}.{}",
            b64(json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": forger.jwk()}).to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        format!("{input}.{}", b64(&hmac_sha256(b"a-shared-secret-of-enough-length!", input.as_bytes())))
    };
    let mut private_jwk = forger.jwk();
    private_jwk["d"] = json!(b64(&[7; 32]));
    let oversized = with_claims(&|c| c["pad"] = json!("x".repeat(9000)));
    let cases: Vec<(&str, String, DpopCheck)> = vec![
        ("alg none", unsigned, DpopCheck::Algorithm),
        ("alg HS256", hs256, DpopCheck::Algorithm),
        ("alg RS512", with_header(&|h| h["alg"] = json!("RS512")), DpopCheck::Algorithm),
        ("no alg", with_header(&|h| drop(h.as_object_mut().unwrap().remove("alg"))), DpopCheck::Algorithm),
        ("typ JWT", with_header(&|h| h["typ"] = json!("JWT")), DpopCheck::Type),
        ("no typ", with_header(&|h| drop(h.as_object_mut().unwrap().remove("typ"))), DpopCheck::Type),
        ("typ at+jwt", with_header(&|h| h["typ"] = json!("at+jwt")), DpopCheck::Type),
        ("jwk with a private member", with_header(&|h| h["jwk"] = private_jwk.clone()), DpopCheck::Key),
        ("a symmetric jwk", with_header(&|h| h["jwk"] = json!({"kty": "oct", "k": b64(b"secret")})), DpopCheck::Key),
        ("no jwk", with_header(&|h| drop(h.as_object_mut().unwrap().remove("jwk"))), DpopCheck::Key),
        ("jwk not an object", with_header(&|h| h["jwk"] = json!("key")), DpopCheck::Key),
        ("a jku instead", with_header(&|h| h["jku"] = json!("https://evil.example/jwks")), DpopCheck::Key),
        ("a small-order Ed25519 key", with_header(&|h| h["jwk"]["x"] = json!(b64(&[0; 32]))), DpopCheck::Key),
        ("crit", with_header(&|h| h["crit"] = json!(["exp"])), DpopCheck::Syntax),
        ("the jwk of another key", with_header(&|h| h["jwk"] = other.jwk()), DpopCheck::Signature),
        ("jwk alg other than the header's", with_header(&|h| h["jwk"]["alg"] = json!("ES256")), DpopCheck::Algorithm),
        ("no jti", with_claims(&|c| drop(c.as_object_mut().unwrap().remove("jti"))), DpopCheck::Jti),
        ("empty jti", with_claims(&|c| c["jti"] = json!(" ")), DpopCheck::Jti),
        ("jti a number", with_claims(&|c| c["jti"] = json!(7)), DpopCheck::Jti),
        ("no htm", with_claims(&|c| drop(c.as_object_mut().unwrap().remove("htm"))), DpopCheck::Method),
        ("htm lower case", with_claims(&|c| c["htm"] = json!("get")), DpopCheck::Method),
        ("no htu", with_claims(&|c| drop(c.as_object_mut().unwrap().remove("htu"))), DpopCheck::Url),
        ("htu relative", with_claims(&|c| c["htu"] = json!("/finance/report")), DpopCheck::Url),
        ("no iat", with_claims(&|c| drop(c.as_object_mut().unwrap().remove("iat"))), DpopCheck::IssuedAt),
        ("ath a number", with_claims(&|c| c["ath"] = json!(1)), DpopCheck::TokenHash),
        ("two parts", "a.b".into(), DpopCheck::Syntax),
        ("claims not JSON", format!("{}.{}.AA", b64(header().to_string().as_bytes()), b64(b"not json")), DpopCheck::Syntax),
        ("larger than 8 KiB", oversized, DpopCheck::Request),
    ];
    for (name, proof, expected) in cases {
        let err = call(&verifier, "GET", URL, &token, &proof).await.unwrap_err();
        assert_eq!(proof_check(&err), expected, "{name}: {err}");
        assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED, "{name}");
        assert!(err.is_dpop(), "{name}");
    }
    // Normalised URLs still match: default port, host case.
    let equivalent = with_claims(&|c| c["htu"] = json!("HTTPS://API.example.com:443/finance/report"));
    call(&verifier, "GET", URL, &token, &equivalent).await.unwrap();
    // Untrusted text is escaped in messages.
    let forged_line = with_claims(&|c| c["htm"] = json!("GET\nINFO forged\u{1b}[2J"));
    let err = call(&verifier, "GET", URL, &token, &forged_line).await.unwrap_err();
    let message = err.to_string();
    assert!(!message.contains('\n') && !message.contains('\u{1b}'), "{message}");
}

#[tokio::test]
async fn rs256_and_ps256_proofs_verify_with_the_rsa_jwk_they_carry() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    let pem = std::fs::read(dual_auth_test_support::key_fixture("rsa2048-other.pem")).unwrap();
    let mut jwk = SigningKey::from_pem(&pem).unwrap().public_jwk();
    for member in ["alg", "use", "kid"] {
        jwk.as_object_mut().unwrap().remove(member);
    }
    let jkt = jwk_thumbprint(jwk.as_object().unwrap());
    let token = bound_token(&issuer, &jkt);
    let pkey = PKey::private_key_from_pem(&pem).unwrap();
    let sign = |alg: &str, jwk: &Value| {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let claims = json!({"jti": rand_suffix(), "htm": "GET", "htu": URL, "iat": issuer.now(), "ath": access_token_hash(&token)});
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        if alg == "PS256" {
            signer.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS).unwrap();
            signer.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH).unwrap();
        }
        signer.update(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
    };
    for alg in ["RS256", "PS256"] {
        let subject = call(&verifier, "GET", URL, &token, &sign(alg, &jwk)).await.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(subject.dpop_jkt.as_deref(), Some(jkt.as_str()));
    }
    // A jwk pinned to RS256 does not verify a PS256 proof.
    let mut pinned = jwk.clone();
    pinned["alg"] = json!("RS256");
    let err = call(&verifier, "GET", URL, &token, &sign("PS256", &pinned)).await.unwrap_err();
    assert_eq!(proof_check(&err), DpopCheck::Algorithm, "{err}");
}

#[tokio::test]
async fn a_token_replayed_with_another_key_or_a_proof_used_twice_is_refused() {
    let issuer = Issuer::start().await;
    let guard = Arc::new(InMemoryReplayGuard::new(100));
    let verifier = verifier_with(&issuer, issuer.policy(), |b| b.dpop_replay_guard(guard.clone()));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let thief = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = bound_token(&issuer, key.thumbprint());

    // The thief's own, valid proof for the stolen token.
    let stolen = proof(&issuer, &thief, "GET", URL, Some(&token));
    let err = call(&verifier, "GET", URL, &token, &stolen).await.unwrap_err();
    match &err {
        VerifyError::DpopKeyMismatch { token_jkt, proof_jkt } => {
            assert_eq!((token_jkt.as_deref(), proof_jkt.as_str()), (Some(key.thumbprint()), thief.thumbprint()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.public_description(), "Invalid DPoP key binding");
    // A token bound to no key, with a proof.
    let unbound = issuer.token();
    let err = call(&verifier, "GET", URL, &unbound, &proof(&issuer, &key, "GET", URL, Some(&unbound))).await.unwrap_err();
    assert!(matches!(&err, VerifyError::DpopKeyMismatch { token_jkt: None, .. }), "{err}");

    // The same proof twice: the second is a replay.
    let once = proof(&issuer, &key, "GET", URL, Some(&token));
    call(&verifier, "GET", URL, &token, &once).await.unwrap();
    let err = call(&verifier, "GET", URL, &token, &once).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopReplayed) && err.is_replay(), "{err}");
    assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);

    // A request refused for another reason does not use its proof up.
    let strict = verifier_with(&issuer, issuer.policy().require_scopes(["finance.write"]), |b| b.dpop_replay_guard(guard.clone()));
    let fresh = proof(&issuer, &key, "GET", URL, Some(&token));
    let err = call(&strict, "GET", URL, &token, &fresh).await.unwrap_err();
    assert!(err.is_insufficient_scope(), "{err}");
    call(&verifier, "GET", URL, &token, &fresh).await.unwrap();
}

#[tokio::test]
async fn a_bound_token_as_bearer_and_bearer_where_dpop_is_required_are_refused() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = bound_token(&issuer, key.thumbprint());
    let err = verifier.verify(&token, None).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopBoundTokenAsBearer), "{err}");
    let mut bearer = http::HeaderMap::new();
    bearer.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    // Even with a valid proof beside it.
    bearer.insert("DPoP", proof(&issuer, &key, "GET", URL, Some(&token)).parse().unwrap());
    let err = verifier.verify_headers(&http::Method::GET, &URL.parse().unwrap(), &bearer).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopBoundTokenAsBearer), "{err}");
    assert_eq!(
        err.www_authenticate(None).unwrap(),
        "DPoP error=\"invalid_token\", error_description=\"The token is DPoP-bound: send it with the DPoP scheme and a proof\", algs=\"ES256 EdDSA RS256 PS256\""
    );

    let required = verifier_with(&issuer, issuer.policy().require_dpop(), |b| b);
    let err = required.verify(&issuer.token(), None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::DpopRequired { issuer: i } if *i == issuer.issuer()), "{err}");
    assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
    let subject = call(&required, "GET", URL, &token, &proof(&issuer, &key, "GET", URL, Some(&token))).await.unwrap();
    assert_eq!(subject.dpop_jkt.as_deref(), Some(key.thumbprint()));
}

#[tokio::test]
async fn the_dpop_header_must_come_once() {
    let issuer = Issuer::start().await;
    let verifier = verifier(&issuer);
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = bound_token(&issuer, key.thumbprint());
    let uri: http::Uri = URL.parse().unwrap();
    let err = verifier.verify_headers(&http::Method::GET, &uri, &headers(&token, &[])).await.unwrap_err();
    assert!(matches!(err, VerifyError::MissingDpopProof), "{err}");
    let (a, b) = (proof(&issuer, &key, "GET", URL, Some(&token)), proof(&issuer, &key, "GET", URL, Some(&token)));
    let err = verifier.verify_headers(&http::Method::GET, &uri, &headers(&token, &[&a, &b])).await.unwrap_err();
    assert_eq!(proof_check(&err), DpopCheck::Request, "{err}");
    let mut empty = http::HeaderMap::new();
    empty.insert(http::header::AUTHORIZATION, "DPoP ".parse().unwrap());
    let err = verifier.verify_headers(&http::Method::GET, &uri, &empty).await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidRequest { .. }), "{err}");
}

#[tokio::test]
async fn a_replay_store_that_cannot_answer_fails_closed_with_503() {
    let issuer = Issuer::start().await;
    let verifier =
        verifier_with(&issuer, issuer.policy(), |b| b.dpop_replay_guard(Arc::new(dual_auth_test_support::agent::UnavailableReplayStore)));
    let key = DpopKey::generate(SigningAlgorithm::Es256).unwrap();
    let token = bound_token(&issuer, key.thumbprint());
    let err = call(&verifier, "GET", URL, &token, &proof(&issuer, &key, "GET", URL, Some(&token))).await.unwrap_err();
    assert!(matches!(err, VerifyError::DpopReplayCheckFailed(_)), "{err}");
    assert!(err.is_temporary());
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.www_authenticate(None), None);
    // Display names the refusal; the cause is the source, not repeated.
    assert!(!err.to_string().contains("connection refused"), "{err}");
    assert!(std::error::Error::source(&err).unwrap().to_string().contains("connection refused"));
}

#[tokio::test]
async fn dpop_settings_are_checked_when_the_verifier_is_built() {
    let issuer = Issuer::start().await;
    let build = |change: fn(Builder) -> Builder| change(Verifier::builder().issuer(issuer.policy())).build();
    for (name, change) in [
        ("http", (|b: Builder| b.public_origin("http://api.example.com")) as fn(Builder) -> Builder),
        ("path", |b| b.public_origin("https://api.example.com/finance")),
        ("not a URL", |b| b.public_origin("api.example.com")),
    ] {
        let err = build(change).unwrap_err();
        assert!(matches!(&err, VerifyError::Configuration { setting: "public_origin", .. }), "{name}: {err}");
    }
    for window in [Duration::ZERO, Duration::from_secs(301)] {
        let err = Verifier::builder().issuer(issuer.policy()).dpop_proof_window(window).build().unwrap_err();
        assert!(matches!(&err, VerifyError::Configuration { setting: "dpop_proof_window", .. }), "{err}");
    }
    assert!(build(|b| b.public_origin("https://api.example.com/").dpop_proof_window(Duration::from_secs(300))).is_ok());
}
