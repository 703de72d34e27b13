//! The verifier against a local HTTPS issuer: a valid token field by field, then a hostile
//! corpus, each case refused with the error that names it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{API, APP_ID, ENTRA_API, Issuer, KID, Key, b64, hmac_sha256};
use dual_auth_core::provider::{sign_act_assertion_with_key, sign_assertion_with_key};
use dual_auth_core::secrecy::ExposeSecret;
use dual_auth_core::{Act, ActJwtError, AssertionClaims, InMemoryReplayGuard, ManualClock, SigningKey, VerifyingKey};
use dual_auth_verify::{ActAssertionPolicy, Actor, IssuerPolicy, Layout, Verifier, VerifyError, VouchedBy};
use serde_json::{Value, json};

fn human() -> Act {
    Act::new("user_12345").unwrap().with_email("alice@corp.example.com").with_name("Alice Smith")
}

#[tokio::test]
async fn a_valid_dual_auth_token_gives_the_agent_and_the_human() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy().require_type("at+jwt").require_scopes(["finance.read"]));
    let subject = verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(subject.issuer, issuer.issuer());
    assert_eq!(subject.agent, Actor::new("agent-007", Some("agent-007".into())));
    assert_eq!(subject.human, human());
    assert!(subject.chain.is_empty());
    assert_eq!(subject.scopes, ["finance.read", "openid"]);
    assert_eq!(common::unix(subject.expires_at), issuer.now() + 600);
    let debug = format!("{subject:?}");
    assert!(!debug.contains("alice@corp.example.com") && !debug.contains("Alice Smith"), "{debug}");
}

#[tokio::test]
async fn an_rfc8693_token_with_a_delegation_chain_gives_the_same_dual_subject() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy().layout(Layout::Rfc8693));
    let token = issuer.token_with(|c| {
        c["sub"] = json!("user_12345");
        c["email"] = json!("alice@corp.example.com");
        c["name"] = json!("Alice Smith");
        c["client_id"] = json!("sub-agent");
        c["act"] = json!({"sub": "sub-agent", "act": {"sub": "planner", "client_id": "planner-app", "act": {"sub": "root-agent"}}});
    });
    let subject = verifier.verify(&token, None).await.unwrap();
    assert_eq!(subject.agent, Actor::new("sub-agent", Some("sub-agent".into())));
    assert_eq!(subject.human, human());
    assert_eq!(subject.chain, [Actor::new("planner", Some("planner-app".into())), Actor::new("root-agent", None)]);

    let mut nested = json!({"sub": "actor-9"});
    for depth in (0..9).rev() {
        nested = json!({"sub": format!("actor-{depth}"), "act": nested});
    }
    let token = issuer.token_with(|c| {
        c["sub"] = json!("user_12345");
        c["client_id"] = json!("actor-0");
        c["act"] = nested;
    });
    let err = verifier.verify(&token, None).await.unwrap_err();
    assert!(err.to_string().contains("deeper than 8"), "{err}");
}

#[tokio::test]
async fn delegated_tokens_of_each_vendor_give_the_human_as_subject_and_the_agent_as_client() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy().layout(Layout::Delegated));
    // Keycloak standard token exchange: sub = the user, azp = the agent, no act.
    let keycloak = issuer.token_with(|c| {
        c["sub"] = json!("user_12345");
        c["email"] = json!("alice@corp.example.com");
        c["name"] = json!("Alice Smith");
        c["azp"] = json!("finance-agent");
        c.as_object_mut().unwrap().remove("act");
        c.as_object_mut().unwrap().remove("client_id");
    });
    let subject = verifier.verify(&keycloak, None).await.unwrap();
    assert_eq!(subject.agent, Actor::new("finance-agent", Some("finance-agent".into())));
    assert_eq!(subject.human, human());
    assert!(subject.chain.is_empty());
    assert_eq!(subject.vouched_by, VouchedBy::IdentityProvider);
    assert_eq!(serde_json::to_value(&subject).unwrap()["vouched_by"], "identity-provider");
    // Auth0 on-behalf-of: act.sub = the agent (the client holding the token), earlier actors inside.
    let auth0 = issuer.token_with(|c| {
        c["sub"] = json!("auth0|alice");
        c["azp"] = json!("finance-agent");
        c.as_object_mut().unwrap().remove("client_id");
        c["act"] = json!({"sub": "finance-agent", "act": {"sub": "planner"}});
    });
    let subject = verifier.verify(&auth0, None).await.unwrap();
    assert_eq!((subject.human.sub(), subject.agent.id()), ("auth0|alice", "finance-agent"));
    assert_eq!(subject.chain, [Actor::new("planner", None)]);
    // Okta: sub is the login, uid the user id, cid the agent.
    let okta = issuer.token_with(|c| {
        c["sub"] = json!("alice@corp.example.com");
        c["uid"] = json!("00u1a2b3c4");
        c["cid"] = json!("0oa-agent");
        c.as_object_mut().unwrap().remove("act");
        c.as_object_mut().unwrap().remove("client_id");
    });
    let subject = verifier.verify(&okta, None).await.unwrap();
    assert_eq!((subject.human.sub(), subject.agent.id()), ("00u1a2b3c4", "0oa-agent"));
    // A uid elsewhere (an editable attribute, say) never replaces sub.
    let not_okta = issuer.token_with(|c| {
        c["sub"] = json!("user_12345");
        c["uid"] = json!("someone-else");
        c["azp"] = json!("finance-agent");
        c.as_object_mut().unwrap().remove("act");
        c.as_object_mut().unwrap().remove("client_id");
    });
    assert_eq!(verifier.verify(&not_okta, None).await.unwrap().human.sub(), "user_12345");
    // Entra ID v1 on-behalf-of: appid names the agent, oid the user.
    let entra = issuer.token_with(|c| {
        c["sub"] = json!("pairwise-sub");
        c["oid"] = json!("oid-alice");
        c["appid"] = json!("agent-app-id");
        c.as_object_mut().unwrap().remove("act");
        c.as_object_mut().unwrap().remove("client_id");
    });
    let subject = verifier.verify(&entra, None).await.unwrap();
    assert_eq!((subject.human.sub(), subject.human.oid(), subject.agent.id()), ("pairwise-sub", Some("oid-alice"), "agent-app-id"));
}

#[tokio::test]
async fn the_delegated_layout_refuses_agent_own_tokens_and_a_foreign_actor() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy().layout(Layout::Delegated));
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 8] = [
        ("the agent's own (client credentials)", |c| {
            // Keycloak's service-account token: sub is the service-account user's id.
            c["sub"] = json!("0b1c2d3e-service-account-user-id");
            c["azp"] = json!("finance-agent");
            c["preferred_username"] = json!("service-account-finance-agent");
            c.as_object_mut().unwrap().remove("client_id");
            c.as_object_mut().unwrap().remove("act");
        }),
        ("the agent's own (client credentials)", |c| {
            // Entra ID app-only: roles, no scp.
            c["sub"] = json!("sp-object-id");
            c["oid"] = json!("sp-object-id-2");
            c["tid"] = json!("tenant");
            c["azp"] = json!("agent-app-id");
            c["roles"] = json!(["Finance.Read"]);
            c.as_object_mut().unwrap().remove("scope");
            c.as_object_mut().unwrap().remove("client_id");
            c.as_object_mut().unwrap().remove("act");
        }),
        ("the agent's own (client credentials)", |c| {
            // Entra ID app-only with a scp somehow: sub = oid gives it away.
            c["sub"] = json!("sp-object-id");
            c["oid"] = json!("sp-object-id");
            c["tid"] = json!("tenant");
            c["scp"] = json!("access_as_user");
            c["azp"] = json!("agent-app-id");
            c.as_object_mut().unwrap().remove("client_id");
            c.as_object_mut().unwrap().remove("act");
        }),
        ("the agent's own (client credentials)", |c| {
            c["sub"] = json!("finance-agent");
            c["client_id"] = json!("finance-agent");
            c.as_object_mut().unwrap().remove("act");
        }),
        ("the agent's own (client credentials)", |c| {
            c["sub"] = json!("finance-agent@clients");
            c["azp"] = json!("finance-agent");
            c["gty"] = json!("client-credentials");
            c.as_object_mut().unwrap().remove("client_id");
            c.as_object_mut().unwrap().remove("act");
        }),
        ("the agent's own (client credentials)", |c| {
            c["sub"] = json!("app-object-id");
            c["azp"] = json!("agent-app-id");
            c["idtyp"] = json!("app");
            c.as_object_mut().unwrap().remove("client_id");
            c.as_object_mut().unwrap().remove("act");
        }),
        ("the outermost act.sub is not the client", |c| {
            c["sub"] = json!("user_12345");
            c["client_id"] = json!("finance-agent");
            c["act"] = json!({"sub": "someone-else"});
        }),
        ("names no agent", |c| {
            c["sub"] = json!("user_12345");
            c.as_object_mut().unwrap().remove("client_id");
            c.as_object_mut().unwrap().remove("act");
        }),
    ];
    for (needle, edit) in cases {
        let err = verifier.verify(&issuer.token_with(edit), None).await.unwrap_err();
        assert!(matches!(err, VerifyError::InvalidDelegation { layout: "delegated", .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err} should say {needle:?}");
    }
    // The guide's layout says the agent vouched: the token's human came from the agent.
    let guide = issuer.verifier(issuer.policy());
    assert_eq!(guide.verify(&issuer.token(), None).await.unwrap().vouched_by, VouchedBy::Agent);
}

/// Signs `claims` under `header` with `key`, as an attacker holding `key` would.
fn forge(key: &Key, header: Value, claims: &Value) -> String {
    key.sign(&header, claims)
}

#[tokio::test]
async fn the_hostile_corpus_is_refused_each_with_its_error() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy());
    let claims = issuer.claims();
    let attacker = Key::other("attacker-key");
    let refuse = |token: String| {
        let verifier = verifier.clone();
        async move { verifier.verify(&token, None).await.unwrap_err() }
    };
    let encode = |header: &Value, claims: &Value| format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));

    // alg none, with and without a signature part.
    let unsigned = format!("{}.", encode(&json!({"alg": "none", "kid": KID}), &claims));
    let err = refuse(unsigned).await;
    assert!(matches!(&err, VerifyError::AlgorithmNotAllowed { found, .. } if found == "none"), "{err}");
    let err = refuse(format!("{}.", encode(&json!({"alg": "None"}), &claims))).await;
    assert!(matches!(&err, VerifyError::AlgorithmNotAllowed { .. }), "{err}");

    // HS256 "signed" with the issuer's public key as the HMAC secret.
    let input = encode(&json!({"alg": "HS256", "typ": "JWT", "kid": KID}), &claims);
    let confused = format!("{input}.{}", b64(&hmac_sha256(issuer.key.public_pem().as_bytes(), input.as_bytes())));
    let err = refuse(confused).await;
    assert!(matches!(&err, VerifyError::AlgorithmNotAllowed { found, .. } if found == "HS256"), "{err}");

    // An asymmetric algorithm the key is not pinned to (the JWK says RS256).
    let err = refuse(forge(&issuer.key, json!({"alg": "PS256", "kid": KID}), &claims)).await;
    assert!(matches!(&err, VerifyError::AlgorithmNotAllowed { found, reason } if found == "PS256" && reason.contains("RS256")), "{err}");

    // Headers pointing at the attacker's key: embedded, by URL, by certificate URL or chain.
    for (name, value) in [
        ("jwk", attacker.jwk()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIB..."])),
    ] {
        let mut header = json!({"alg": "RS256", "kid": "attacker-key"});
        header[name] = value;
        let err = refuse(forge(&attacker, header, &claims)).await;
        assert!(matches!(&err, VerifyError::UnsupportedHeader { name: found, .. } if found == name), "{name}: {err}");
    }

    // An unknown critical extension.
    let err = refuse(forge(&issuer.key, json!({"alg": "RS256", "kid": KID, "crit": ["exp"], "exp": 1}), &claims)).await;
    assert!(matches!(&err, VerifyError::UnsupportedHeader { name, .. } if name == "crit"), "{err}");

    // exp as a string, and no exp at all.
    let err = refuse(issuer.token_with(|c| c["exp"] = json!((issuer.now() + 600).to_string()))).await;
    assert!(matches!(&err, VerifyError::InvalidClaim { claim: "exp", .. }), "{err}");
    let err = refuse(issuer.token_with(|c| drop(c.as_object_mut().unwrap().remove("exp")))).await;
    assert!(matches!(&err, VerifyError::MissingClaim { claim: "exp" }), "{err}");

    // Wrong issuer (a different string, or none), wrong audience (string, array, absent).
    let err = refuse(issuer.token_with(|c| c["iss"] = json!("https://evil.example"))).await;
    assert!(matches!(&err, VerifyError::UnknownIssuer { found, .. } if found == "\"https://evil.example\""), "{err}");
    // Claim values in messages are escaped: a token cannot write a line of its own into logs.
    let err = refuse(issuer.token_with(|c| c["iss"] = json!("https://evil.example\nINFO forged log line"))).await;
    assert!(!err.to_string().contains('\n') && err.to_string().contains(r"evil.example\nINFO"), "{err}");
    let err = refuse(issuer.token_with(|c| drop(c.as_object_mut().unwrap().remove("iss")))).await;
    assert!(matches!(&err, VerifyError::UnknownIssuer { .. }), "{err}");
    let err = refuse(issuer.token_with(|c| c["aud"] = json!("https://api.example.com/finance/"))).await;
    assert!(matches!(&err, VerifyError::WrongAudience { .. }), "exact match only, no normalising: {err}");
    let err = refuse(issuer.token_with(|c| c["aud"] = json!(["https://other.example", "https://userinfo.example"]))).await;
    assert!(matches!(&err, VerifyError::WrongAudience { .. }), "{err}");
    let err = refuse(issuer.token_with(|c| drop(c.as_object_mut().unwrap().remove("aud")))).await;
    assert!(matches!(&err, VerifyError::WrongAudience { found, .. } if found == "no aud claim"), "{err}");

    // Expired beyond the leeway; not yet valid (nbf, iat) beyond it; lifetime too long.
    let now = issuer.now();
    let expired_at = |exp: u64| {
        issuer.token_with(|c| {
            c["exp"] = json!(exp);
            c["iat"] = json!(now - 600);
        })
    };
    let err = refuse(expired_at(now - 6)).await;
    assert!(err.is_expired() && matches!(err, VerifyError::Expired { ago_secs: 6, leeway_secs: 5 }), "{err}");
    verifier.verify(&expired_at(now - 4), None).await.expect("within the 5 s leeway");
    let err = refuse(issuer.token_with(|c| c["nbf"] = json!(now + 60))).await;
    assert!(matches!(err, VerifyError::NotYetValid { claim: "nbf", ahead_secs: 60, .. }), "{err}");
    let err = refuse(issuer.token_with(|c| c["iat"] = json!(now + 60))).await;
    assert!(matches!(err, VerifyError::NotYetValid { claim: "iat", .. }), "{err}");
    let err = refuse(issuer.token_with(|c| c["exp"] = json!(now + 2 * 86_400))).await;
    assert!(matches!(err, VerifyError::LifetimeTooLong { max_secs: 86_400, .. }), "{err}");

    // Another issuer's token, same kid: signed by its key, claiming ours as iss.
    let impostor = Key::other(KID);
    let err = refuse(impostor.token(&claims)).await;
    assert!(matches!(&err, VerifyError::SignatureInvalid { kid, .. } if kid.contains(KID)), "{err}");
    // A tampered payload under a genuine signature.
    let genuine = issuer.token();
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut tampered = claims.clone();
    tampered["act"]["sub"] = json!("admin");
    parts[1] = b64(tampered.to_string().as_bytes());
    let err = refuse(parts.join(".")).await;
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err}");
    // A kid the issuer never published.
    let err = refuse(Key::main().sign(&json!({"alg": "RS256", "kid": "no-such-key"}), &claims)).await;
    assert!(matches!(&err, VerifyError::UnknownKey { kid, .. } if kid == "no-such-key"), "{err}");

    // Oversized.
    let err = refuse(issuer.token_with(|c| c["padding"] = json!("x".repeat(20_000)))).await;
    assert!(matches!(err, VerifyError::TooLarge { max: 16_384, .. }), "{err}");

    // Broken encodings.
    let header = b64(br#"{"alg":"RS256","kid":"issuer-key-1"}"#);
    let body = b64(claims.to_string().as_bytes());
    for (case, token) in [
        ("two parts", format!("{header}.{body}")),
        ("four parts", format!("{header}.{body}.c2ln.c2ln")),
        ("padding in base64url", format!("{header}=.{body}.c2ln")),
        ("standard base64 alphabet", format!("{header}.{body}.c2l+Zw/=")),
        ("header not JSON", format!("{}.{body}.c2ln", b64(b"alg: RS256"))),
        ("claims a JSON array", format!("{header}.{}.c2ln", b64(b"[1,2]"))),
        ("claims not UTF-8", format!("{header}.{}.c2ln", b64(&[0xff, 0xfe, 0x7b]))),
        ("empty", String::new()),
        ("spaces inside", format!("{header}. {body}.c2ln")),
    ] {
        let err = refuse(token).await;
        assert!(matches!(err, VerifyError::Malformed { .. }), "{case}: {err}");
        assert_eq!(err.status(), 401, "{case}");
    }
    // An alg starting with a multi-byte character (the fuzzer's first find: it panicked).
    let err = refuse(format!("{}.{body}.c2ln", b64("{\"alg\": \"o\u{66e}e\"}".as_bytes()))).await;
    assert!(matches!(&err, VerifyError::AlgorithmNotAllowed { .. }), "{err}");
    let err = refuse(format!("{}.{body}.c2ln", b64(br#"{"alg":7}"#))).await;
    assert!(matches!(&err, VerifyError::Malformed { reason } if reason.contains("alg")), "{err}");

    // No dual subject: no act, an act without sub, act not an object.
    let err = refuse(issuer.token_with(|c| drop(c.as_object_mut().unwrap().remove("act")))).await;
    assert!(matches!(&err, VerifyError::InvalidDelegation { layout: "dual-auth", reason } if reason.contains("no act claim")), "{err}");
    let err = refuse(issuer.token_with(|c| c["act"] = json!({"email": "alice@corp.example.com"}))).await;
    assert!(matches!(err, VerifyError::InvalidDelegation { .. }), "{err}");
    let err = refuse(issuer.token_with(|c| c["act"] = json!("user_12345"))).await;
    assert!(matches!(err, VerifyError::InvalidDelegation { .. }), "{err}");

    // None of these errors repeats the token or its signature.
    let token = expired_at(now - 100);
    let err = refuse(token.clone()).await;
    let signature = token.rsplit('.').next().unwrap();
    assert!(!err.to_string().contains(signature) && !format!("{err:?}").contains(signature));
}

#[tokio::test]
async fn type_scope_and_role_requirements() {
    let issuer = Issuer::start().await;
    let typed = issuer.verifier(issuer.policy().require_type("at+jwt"));
    let jwt_typed = issuer.key.sign(&json!({"alg": "RS256", "typ": "JWT", "kid": KID}), &issuer.claims());
    let err = typed.verify(&jwt_typed, None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::WrongType { found, .. } if found == "\"JWT\""), "{err}");
    let media_typed = issuer.key.sign(&json!({"alg": "RS256", "typ": "application/at+jwt", "kid": KID}), &issuer.claims());
    typed.verify(&media_typed, None).await.expect("application/at+jwt is at+jwt");

    let scoped = issuer.verifier(issuer.policy().require_scopes(["finance.read", "finance.write"]));
    let err = scoped.verify(&issuer.token(), None).await.unwrap_err();
    assert!(err.is_insufficient_scope() && err.status() == 403, "{err}");
    assert_eq!(err.missing_scopes().unwrap(), ["finance.write"]);
    // Okta's scp array counts as well.
    let okta = issuer.token_with(|c| c["scp"] = json!(["finance.write"]));
    scoped.verify(&okta, None).await.unwrap();

    let roles = issuer.verifier(issuer.policy().require_roles(["Reports.Read"]));
    let err = roles.verify(&issuer.token(), None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::InsufficientRole { missing } if missing == &["Reports.Read"]), "{err}");
    roles.verify(&issuer.token_with(|c| c["roles"] = json!(["Reports.Read"])), None).await.unwrap();

    // Keycloak keeps realm roles in an object: a dotted path reaches them.
    let keycloak = issuer.verifier(issuer.policy().roles_claim("realm_access.roles").require_roles(["finance-reader"]));
    let with_realm_roles = issuer.token_with(|c| c["realm_access"] = json!({"roles": ["offline_access", "finance-reader"]}));
    keycloak.verify(&with_realm_roles, None).await.unwrap();
    let err = keycloak.verify(&issuer.token_with(|c| c["roles"] = json!(["finance-reader"])), None).await.unwrap_err();
    assert!(matches!(err, VerifyError::InsufficientRole { .. }), "top-level roles are not realm roles: {err}");
    let err = Verifier::builder().issuer(issuer.policy().roles_claim("realm_access.")).build().unwrap_err();
    assert!(matches!(err, VerifyError::Configuration { setting: "roles_claim", .. }), "{err}");
}

/// An Entra ID-shaped token for `agent` and an act assertion for `assertion_agent`.
fn entra_pair(issuer: &Issuer, app_key: &SigningKey, agent: &str, assertion_agent: Option<&str>) -> (String, String) {
    let token = issuer.entra_token_with(agent, |c| c["roles"] = json!(["Reports.Read"]));
    let human = human();
    let assertion = sign_act_assertion_with_key(app_key, &entra_claims(&human, assertion_agent), dual_auth_core::Clock::now(&issuer.clock));
    (token, assertion.unwrap().expose_secret().to_owned())
}

/// The application's act assertion claims for `human`, made for `agent`.
fn entra_claims<'a>(human: &'a Act, agent: Option<&'a str>) -> AssertionClaims<'a> {
    AssertionClaims {
        issuer: APP_ID,
        audience: ENTRA_API,
        lifetime: Duration::from_secs(300),
        act: Some(human),
        authorized_party: agent,
        not_before: false,
    }
}

#[tokio::test]
async fn entra_id_tokens_are_bound_to_their_act_assertion() {
    let issuer = Issuer::start().await;
    let app_key = SigningKey::from_pem(Key::other("app").pem).unwrap();
    let guard = Arc::new(InMemoryReplayGuard::with_clock(1000, Arc::new(issuer.clock.clone())));
    let assertion_policy = ActAssertionPolicy::with_key(app_key.verifying_key(), ENTRA_API).app_id(APP_ID).replay_guard(guard);
    let policy = IssuerPolicy::new(issuer.issuer(), ENTRA_API).jwks_url(issuer.server.url("/jwks")).act_assertion(assertion_policy);
    let verifier = issuer.verifier(policy);

    let (token, assertion) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-007"));
    let subject = verifier.verify(&token, Some(&assertion)).await.unwrap();
    assert_eq!(subject.agent, Actor::new("sp-object-id", Some("agent-007".into())));
    assert_eq!(subject.human, human());

    // Replayed: the same assertion a second time.
    let err = verifier.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(err.is_replay(), "{err}");
    assert_eq!(err.public_description(), "The act assertion was already used");

    // An assertion made for another agent, shown with this agent's token: refused before
    // its jti is recorded, so the rightful agent can still use it.
    let (other_token, other_assertion) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-evil"));
    let err = verifier.verify(&other_token, Some(&other_assertion)).await.unwrap_err();
    assert!(
        matches!(&err, VerifyError::AgentMismatch { token_agent, assertion_agent } if token_agent == "agent-007" && assertion_agent == "\"agent-evil\""),
        "{err}"
    );
    let (evil_token, _) = entra_pair(&issuer, &app_key, "agent-evil", None);
    verifier.verify(&evil_token, Some(&other_assertion)).await.expect("the assertion's own agent can still use it");

    // An upstream 1.0.1 assertion (no azp) cannot be bound.
    let (token, unbound) = entra_pair(&issuer, &app_key, "agent-007", None);
    let err = verifier.verify(&token, Some(&unbound)).await.unwrap_err();
    assert!(matches!(&err, VerifyError::AgentMismatch { assertion_agent, .. } if assertion_agent.contains("no azp")), "{err}");

    // No assertion; an assertion signed by another key; an assertion for another API.
    let (token, _) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-007"));
    let err = verifier.verify(&token, None).await.unwrap_err();
    assert!(matches!(err, VerifyError::MissingActAssertion { .. }), "{err}");
    let stranger = SigningKey::from_pem(Key::main().pem).unwrap();
    let (_, forged) = entra_pair(&issuer, &stranger, "agent-007", Some("agent-007"));
    let err = verifier.verify(&token, Some(&forged)).await.unwrap_err();
    assert!(matches!(err, VerifyError::ActAssertion(ActJwtError::SignatureInvalid)), "{err}");

    // A JWT of another purpose (typ JWT, as act JWTs and upstream's assertions), signed by
    // the application's key with every claim right: not an act assertion.
    let human = human();
    let act_jwt =
        sign_assertion_with_key(&app_key, &entra_claims(&human, Some("agent-007")), dual_auth_core::Clock::now(&issuer.clock)).unwrap();
    let err = verifier.verify(&token, Some(act_jwt.expose_secret())).await.unwrap_err();
    assert!(matches!(&err, VerifyError::ActAssertion(ActJwtError::UnsupportedHeader { name, .. }) if name == "typ"), "{err}");

    // An expired assertion: the clock moves past its 300 s (the token lives 600 s).
    let (token, assertion) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-007"));
    issuer.clock.advance(Duration::from_secs(306));
    let err = verifier.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(err.is_expired() && matches!(err, VerifyError::ActAssertion(_)), "{err}");
}

#[tokio::test]
async fn settings_are_checked_when_the_verifier_is_built() {
    let key = VerifyingKey::from_pem(Key::main().public_pem()).unwrap();
    let cases: Vec<(IssuerPolicy, &str)> = vec![
        (IssuerPolicy::new("https://idp.example", " ").static_keys([key.clone()]), "audience"),
        (IssuerPolicy::new("https://idp.example", API).jwks_url("http://idp.example/jwks"), "jwks_url"),
        (IssuerPolicy::new("http://idp.example", API), "issuer"),
        (IssuerPolicy::new("https://idp.example", API).static_keys([key.clone()]).leeway(Duration::from_secs(301)), "leeway"),
        (IssuerPolicy::new("https://idp.example", API).static_keys([key.clone()]).layout(Layout::ActAssertion), "layout"),
        (IssuerPolicy::new("https://idp.example", API).static_keys(Vec::new()), "static_keys"),
    ];
    for (policy, setting) in cases {
        let err = Verifier::builder().issuer(policy).build().unwrap_err();
        assert!(matches!(&err, VerifyError::Configuration { setting: found, .. } if *found == setting), "{setting}: {err}");
    }
    let err = Verifier::builder().build().unwrap_err();
    assert!(matches!(err, VerifyError::Configuration { setting: "issuer", .. }), "{err}");
    let twice = || IssuerPolicy::new("https://idp.example", API).static_keys([key.clone()]);
    let err = Verifier::builder().issuer(twice()).issuer(twice()).build().unwrap_err();
    assert!(err.to_string().contains("configured twice"), "{err}");

    // Static keys: no network, and a clock far from the token's times is honoured.
    let clock = ManualClock::new(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    let verifier = Verifier::builder()
        .issuer(IssuerPolicy::new("https://idp.example", API).static_keys([key]))
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    let token = Key::main().token(&json!({
        "iss": "https://idp.example", "sub": "agent", "aud": API, "exp": 1_000_600, "iat": 1_000_000, "act": {"sub": "user_1"},
    }));
    assert_eq!(verifier.verify(&token, None).await.unwrap().human.sub(), "user_1");
}

#[tokio::test]
async fn entra_act_assertion_keys_can_come_from_the_applications_jwks() {
    let issuer = Issuer::start().await;
    let app = Key::other("app-key-1");
    // The application publishes its key beside the issuer's (one JWKS server for the test).
    issuer.publish(vec![issuer.key.jwk(), app.jwk()]);
    let app_key = SigningKey::from_pem(&app.pem).unwrap().with_key_id("app-key-1");
    let assertion_policy = ActAssertionPolicy::with_jwks_url(issuer.server.url("/jwks"), ENTRA_API).app_id(APP_ID);
    let policy = IssuerPolicy::new(issuer.issuer(), ENTRA_API).jwks_url(issuer.server.url("/jwks")).act_assertion(assertion_policy);
    let verifier = issuer.verifier(policy);

    let (token, assertion) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-007"));
    let subject = verifier.verify(&token, Some(&assertion)).await.unwrap();
    assert_eq!(subject.human, human());

    // An assertion whose kid the application never published.
    let unknown = SigningKey::from_pem(Key::main().pem).unwrap().with_key_id("app-key-9");
    let (token, assertion) = entra_pair(&issuer, &unknown, "agent-007", Some("agent-007"));
    let err = verifier.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(matches!(&err, VerifyError::ActAssertion(ActJwtError::UnknownKeyId { kid }) if kid == "app-key-9"), "{err}");
}

#[tokio::test]
async fn a_replay_store_that_fails_or_one_agent_filling_it_is_503_for_that_agent_only() {
    let issuer = Issuer::start().await;
    let app_key = SigningKey::from_pem(Key::other("app").pem).unwrap();
    let verifier_with = |guard: Arc<dyn dual_auth_core::ReplayGuard>| {
        let assertion_policy = ActAssertionPolicy::with_key(app_key.verifying_key(), ENTRA_API).app_id(APP_ID).replay_guard(guard);
        issuer.verifier(IssuerPolicy::new(issuer.issuer(), ENTRA_API).jwks_url(issuer.server.url("/jwks")).act_assertion(assertion_policy))
    };

    // Store down: the client is told to back off, not that its token is invalid.
    let verifier = verifier_with(Arc::new(dual_auth_test_support::agent::UnavailableReplayStore));
    let (token, assertion) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-007"));
    let err = verifier.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(matches!(&err, VerifyError::ActAssertion(ActJwtError::ReplayCheckFailed(_))), "{err}");
    assert_eq!((err.status().as_u16(), err.is_temporary(), err.www_authenticate(None)), (503, true, None));
    assert_eq!(err.public_description(), "The act assertion cannot be checked right now");

    // A store with room for two per agent: a third from one agent is 503, others pass.
    let verifier = verifier_with(Arc::new(InMemoryReplayGuard::with_clock(2, Arc::new(issuer.clock.clone()))));
    for _ in 0..2 {
        let (token, assertion) = entra_pair(&issuer, &app_key, "agent-noisy", Some("agent-noisy"));
        verifier.verify(&token, Some(&assertion)).await.unwrap();
    }
    let (token, assertion) = entra_pair(&issuer, &app_key, "agent-noisy", Some("agent-noisy"));
    let err = verifier.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(matches!(&err, VerifyError::ActAssertion(ActJwtError::ReplayCheckFailed(_))), "{err}");
    assert_eq!(err.status().as_u16(), 503);
    let (token, assertion) = entra_pair(&issuer, &app_key, "agent-007", Some("agent-007"));
    assert_eq!(verifier.verify(&token, Some(&assertion)).await.unwrap().human, human());
}

#[tokio::test]
async fn agent_names_from_tokens_are_escaped_in_messages() {
    let issuer = Issuer::start().await;
    let app_key = SigningKey::from_pem(Key::other("app").pem).unwrap();
    let assertion_policy = ActAssertionPolicy::with_key(app_key.verifying_key(), ENTRA_API).app_id(APP_ID);
    let verifier =
        issuer.verifier(IssuerPolicy::new(issuer.issuer(), ENTRA_API).jwks_url(issuer.server.url("/jwks")).act_assertion(assertion_policy));
    let (token, assertion) = entra_pair(&issuer, &app_key, "agent\nINFO forged\u{1b}[2J", Some("agent\u{9b}evil"));
    let err = verifier.verify(&token, Some(&assertion)).await.unwrap_err();
    assert!(matches!(&err, VerifyError::AgentMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(text.contains(r#""agent\nINFO forged\u{1b}[2J""#) && text.contains(r#""agent\u{9b}evil""#), "{text}");
}

#[tokio::test]
async fn kid_less_act_assertions_are_tried_against_every_application_key() {
    // The application rotates its key without kids: assertions from either key pass.
    let issuer = Issuer::start().await;
    let old = SigningKey::from_pem(Key::other("old").pem).unwrap();
    let new = SigningKey::from_pem(Key::main().pem).unwrap();
    let assertion_policy = ActAssertionPolicy::with_key(old.verifying_key(), ENTRA_API).add_key(new.verifying_key()).app_id(APP_ID);
    let verifier =
        issuer.verifier(IssuerPolicy::new(issuer.issuer(), ENTRA_API).jwks_url(issuer.server.url("/jwks")).act_assertion(assertion_policy));
    for key in [&old, &new] {
        let (token, assertion) = entra_pair(&issuer, key, "agent-007", Some("agent-007"));
        assert_eq!(verifier.verify(&token, Some(&assertion)).await.unwrap().human, human());
    }
}
