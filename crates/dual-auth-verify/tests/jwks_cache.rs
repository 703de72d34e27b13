//! The JWKS cache against a local HTTPS issuer that counts its requests: `Cache-Control`
//! (or `Expires`) honoured and bounded, one refresh per unknown `kid` (rate limited), one fetch for many
//! concurrent requests, the last good keys kept through an outage, discovery checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{API, Issuer, Key};
use dual_auth_verify::{IssuerPolicy, JwksCachePolicy, VerifyError};

#[tokio::test]
async fn cache_control_max_age_decides_when_keys_are_fetched_again() {
    let issuer = Issuer::start().await;
    issuer.set(|p| p.cache_control = Some("public, max-age=600".into()));
    let verifier = issuer.verifier(issuer.policy());
    verifier.verify(&issuer.token(), None).await.unwrap();
    issuer.clock.advance(Duration::from_secs(590));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1, "fresh for 600 s");
    issuer.clock.advance(Duration::from_secs(11));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "fetched again after max-age");

    // No Cache-Control: the default 300 s.
    issuer.set(|p| p.cache_control = None);
    issuer.clock.advance(Duration::from_secs(601));
    verifier.verify(&issuer.token(), None).await.unwrap();
    issuer.clock.advance(Duration::from_secs(299));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 3);
    issuer.clock.advance(Duration::from_secs(2));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 4);

    // Expires, counted from the server's Date (whatever our clock says), less Age.
    issuer.set(|p| {
        p.headers = vec![
            ("date".into(), "Mon, 30 Nov 2026 06:00:00 GMT".into()),
            ("expires".into(), "Mon, 30 Nov 2026 06:15:00 GMT".into()),
            ("age".into(), "100".into()),
        ];
    });
    issuer.clock.advance(Duration::from_secs(301));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 5);
    issuer.clock.advance(Duration::from_secs(799));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 5, "fresh for 900 - 100 s");
    issuer.clock.advance(Duration::from_secs(2));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 6);
    issuer.set(|p| p.headers.clear());

    // no-cache is held to the 60 s floor, so the issuer is not fetched per request.
    issuer.set(|p| p.cache_control = Some("no-cache".into()));
    issuer.clock.advance(Duration::from_secs(801));
    verifier.verify(&issuer.token(), None).await.unwrap();
    issuer.clock.advance(Duration::from_secs(59));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 7);
}

#[tokio::test]
async fn an_unknown_kid_refreshes_once_and_no_more_than_the_cooldown_allows() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(issuer.policy());
    verifier.verify(&issuer.token(), None).await.unwrap();

    // Rotation: the issuer now also publishes key-2 and signs with it.
    let rotated = Key::other("issuer-key-2");
    issuer.publish(vec![rotated.jwk(), issuer.key.jwk()]);
    issuer.clock.advance(Duration::from_secs(1));
    let subject = verifier.verify(&rotated.token(&issuer.claims()), None).await.unwrap();
    assert_eq!(subject.human.sub(), "user_12345");
    assert_eq!(issuer.jwks_requests(), 2, "one refresh for the new kid");

    // Made-up kids: one refresh, then none within the 30 s cooldown.
    issuer.clock.advance(Duration::from_secs(1));
    let made_up = |kid: &str| Key::other(kid).token(&issuer.claims());
    let err = verifier.verify(&made_up("bogus-1"), None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::UnknownKey { kid, .. } if kid == "bogus-1"), "{err}");
    assert!(err.to_string().contains("has no key \"bogus-1\" (not refreshed: an unknown kid refreshed them moments ago)"), "{err}");
    assert_eq!(issuer.jwks_requests(), 2, "within the cooldown of the last unknown-kid refresh");
    issuer.clock.advance(Duration::from_secs(30));
    let err = verifier.verify(&made_up("bogus-2"), None).await.unwrap_err();
    assert!(err.to_string().contains("(its keys were refreshed for it)"), "{err}");
    assert_eq!(issuer.jwks_requests(), 3);
    for n in 0..20 {
        verifier.verify(&made_up(&format!("flood-{n}")), None).await.unwrap_err();
    }
    assert_eq!(issuer.jwks_requests(), 3, "a flood of made-up kids causes no fetch");
}

#[tokio::test]
async fn concurrent_requests_on_a_cold_cache_share_one_fetch() {
    let issuer = Issuer::start().await;
    issuer.set(|p| p.delay = Duration::from_millis(200));
    let verifier = issuer.verifier(issuer.policy());
    let token = issuer.token();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let verifier = verifier.clone();
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token, None).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test]
async fn the_last_good_keys_serve_through_an_outage_until_the_stale_limit() {
    let issuer = Issuer::start().await;
    let cache = JwksCachePolicy::default().with_max_stale(Duration::from_secs(900));
    let verifier = issuer.verifier_with_cache(issuer.policy(), cache);
    verifier.verify(&issuer.token(), None).await.unwrap();

    issuer.set(|p| p.up = false);
    issuer.clock.advance(Duration::from_secs(301));
    verifier.verify(&issuer.token(), None).await.expect("stale keys serve while the issuer is down");
    assert_eq!(issuer.jwks_requests(), 2, "a refresh was tried");
    verifier.verify(&issuer.token(), None).await.unwrap();
    issuer.clock.advance(Duration::from_secs(9));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "no new attempt within the 10 s failure backoff");
    issuer.clock.advance(Duration::from_secs(1));
    verifier.verify(&issuer.token(), None).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 3, "tried again after the backoff");
    // Fresh until 300 s, then stale-served up to 900 s more: until 1200 s.
    issuer.clock.advance(Duration::from_secs(879));
    verifier.verify(&issuer.token(), None).await.expect("still within 900 s of staleness");

    issuer.clock.advance(Duration::from_secs(20));
    let err = verifier.verify(&issuer.token(), None).await.unwrap_err();
    assert!(err.is_temporary() && err.status() == 503, "{err}");
    assert!(err.to_string().contains("answered HTTP 503") && err.to_string().contains("older than the 900 s"), "{err}");

    // Back up: the next request after the backoff fetches and succeeds.
    issuer.set(|p| p.up = true);
    issuer.clock.advance(Duration::from_secs(10));
    verifier.verify(&issuer.token(), None).await.unwrap();
}

#[tokio::test]
async fn requests_waiting_on_a_failed_refresh_never_get_keys_past_the_stale_limit() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier_with_cache(issuer.policy(), JwksCachePolicy::default().with_max_stale(Duration::from_secs(60)));
    verifier.verify(&issuer.token(), None).await.unwrap();
    // Down, slow to say so, and the cached keys past freshness plus the stale limit.
    issuer.set(|p| {
        p.up = false;
        p.delay = Duration::from_millis(200);
    });
    issuer.clock.advance(Duration::from_secs(361));
    let token = issuer.token();
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let verifier = verifier.clone();
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token, None).await })
        })
        .collect();
    for task in waiting {
        let err = task.await.unwrap().unwrap_err();
        assert!(err.is_temporary(), "every request is refused as unavailable: {err}");
    }
    assert_eq!(issuer.jwks_requests(), 2, "one refresh attempt; the others waited for it, then the backoff held");
}

#[tokio::test]
async fn a_cold_cache_with_the_issuer_down_is_unavailable_not_invalid() {
    let issuer = Issuer::start().await;
    issuer.set(|p| p.up = false);
    let verifier = issuer.verifier(issuer.policy());
    let err = verifier.verify(&issuer.token(), None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::KeysUnavailable { reason, .. } if reason.ends_with("/jwks answered HTTP 503")), "{err}");
    assert_eq!(err.www_authenticate(None), None, "not the client's fault: no Bearer challenge");
    let again = verifier.verify(&issuer.token(), None).await.unwrap_err();
    assert!(again.to_string().contains("retrying shortly"), "{again}");
    assert_eq!(issuer.jwks_requests(), 1, "within the backoff the failure is repeated, not the fetch");
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer_it_names() {
    let issuer = Issuer::start().await;
    let verifier = issuer.verifier(IssuerPolicy::new(issuer.issuer(), API));
    verifier.verify(&issuer.token(), None).await.unwrap();
    let paths: Vec<String> = issuer.server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths, ["/.well-known/openid-configuration", "/jwks"]);

    // A discovery document naming another issuer is not trusted.
    let impostor = Issuer::start().await;
    let other_name = format!("{}/tenant-b", impostor.issuer());
    let verifier = impostor.verifier(IssuerPolicy::new(other_name.clone(), API));
    let token = impostor.token_with(|c| c["iss"] = serde_json::json!(other_name));
    let err = verifier.verify(&token, None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::KeysUnavailable { reason, .. } if reason.contains("\"issuer\" is not")), "{err}");
}

#[tokio::test]
async fn unusable_keys_in_a_jwks_are_skipped_and_a_jwks_of_none_is_refused() {
    let issuer = Issuer::start().await;
    let mut private = issuer.key.jwk();
    private["kid"] = serde_json::json!("leaked");
    private["d"] = serde_json::json!("AQAB");
    issuer.publish(vec![
        serde_json::json!({"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}),
        serde_json::json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AQ", "y": "AQ"}),
        private,
        issuer.key.jwk(),
    ]);
    let verifier = issuer.verifier(issuer.policy());
    verifier.verify(&issuer.token(), None).await.expect("the good key is used");
    let err = verifier
        .verify(&Key::main().sign(&serde_json::json!({"alg": "RS256", "kid": "leaked"}), &issuer.claims()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "a JWK with private members is never trusted: {err}");

    let issuer = Issuer::start().await;
    issuer.publish(vec![serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})]);
    let err = issuer.verifier(issuer.policy()).verify(&issuer.token(), None).await.unwrap_err();
    assert!(matches!(&err, VerifyError::KeysUnavailable { reason, .. } if reason.contains("no usable signing key")), "{err}");
}
