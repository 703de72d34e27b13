//! ID tokens (OIDC Core §3.1.3.7) through the same engine as access tokens: a valid one
//! field by field, then each refusal with the check that names it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Issuer, KID, Key};
use dual_auth_verify::{IssuerPolicy, VerifyError};
use serde_json::{Value, json};

const WEB_CLIENT: &str = "finance-web";
const NONCE: &str = "n-0S6_WzA2Mj";

fn policy(issuer: &Issuer) -> IssuerPolicy {
    IssuerPolicy::new(issuer.issuer(), WEB_CLIENT).jwks_url(issuer.server.url("/jwks"))
}

fn id_token(issuer: &Issuer, change: impl FnOnce(&mut Value)) -> String {
    let now = issuer.now();
    let mut claims = json!({
        "iss": issuer.issuer(), "sub": "f1234567-89ab", "aud": WEB_CLIENT, "azp": WEB_CLIENT, "exp": now + 300, "iat": now,
        "nonce": NONCE, "email": "alice@corp.example.com", "name": "Alice Smith", "preferred_username": "alice",
    });
    change(&mut claims);
    issuer.key.token(&claims)
}

#[tokio::test]
async fn a_valid_id_token_gives_the_user_and_its_claims() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(policy(&issuer));
    let login = verifier.verify_id_token(&id_token(&issuer, |_| {}), NONCE).await.unwrap();
    assert_eq!(login.issuer, issuer.issuer());
    assert_eq!(login.subject, "f1234567-89ab");
    assert_eq!(common::unix(login.expires_at), issuer.now() + 300);
    assert_eq!(login.claims["email"], "alice@corp.example.com");
    assert_eq!(login.claims["name"], "Alice Smith");
    assert_eq!(login.claims["preferred_username"], "alice");
    let debug = format!("{login:?}");
    assert!(debug.contains("f1234567-89ab") && !debug.contains("alice@corp") && !debug.contains("Alice Smith"), "{debug}");
    // An array audience naming the client, with azp, is fine too.
    let token = id_token(&issuer, |c| c["aud"] = json!([WEB_CLIENT, "account"]));
    assert_eq!(verifier.verify_id_token(&token, NONCE).await.unwrap().subject, "f1234567-89ab");
}

#[tokio::test]
async fn each_id_token_defect_is_refused_with_the_check_that_names_it() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(policy(&issuer));
    let refuse = |change: fn(&mut Value)| id_token(&issuer, change);

    let err = verifier.verify_id_token(&id_token(&issuer, |_| {}), "another-nonce").await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidClaim { claim: "nonce", .. }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| drop(c.as_object_mut().unwrap().remove("nonce"))), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::MissingClaim { claim: "nonce" }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| c["azp"] = json!("finance-agent")), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidClaim { claim: "azp", .. }), "{err:?}");
    assert!(err.to_string().contains("finance-agent"), "{err}");
    let err = verifier.verify_id_token(&refuse(|c| c["aud"] = json!("finance-agent")), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::WrongAudience { .. }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| c["sub"] = json!("")), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidClaim { claim: "sub", .. }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| drop(c.as_object_mut().unwrap().remove("sub"))), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::MissingClaim { claim: "sub" }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| c["exp"] = json!(1)), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::Expired { .. }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| drop(c.as_object_mut().unwrap().remove("exp"))), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::MissingClaim { claim: "exp" }), "{err:?}");
    let err = verifier.verify_id_token(&refuse(|c| c["iss"] = json!("https://evil.example")), NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::UnknownIssuer { .. }), "{err:?}");

    // Signed by another key under the issuer's kid.
    let now = issuer.now();
    let forged = Key::other(KID).token(&json!({
        "iss": issuer.issuer(), "sub": "f1234567-89ab", "aud": WEB_CLIENT, "exp": now + 300, "iat": now, "nonce": NONCE,
    }));
    let err = verifier.verify_id_token(&forged, NONCE).await.unwrap_err();
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err:?}");

    let err = verifier.verify_id_token(&id_token(&issuer, |_| {}), "").await.unwrap_err();
    assert!(matches!(err, VerifyError::Configuration { setting: "nonce", .. }), "{err:?}");
}
