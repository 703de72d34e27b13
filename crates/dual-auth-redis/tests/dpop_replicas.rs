//! DPoP proofs checked by API replicas sharing one Redis replay guard: a proof is accepted
//! once across all of them (RFC 9449 §11.1), never once per replica.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::SystemTime;

use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::{DpopKey, SigningAlgorithm, SigningKey, generate_key_pair};
use dual_auth_redis::{RedisReplayGuard, RedisSettings};
use dual_auth_test_support::servers::Redis;
use dual_auth_verify::{IssuerPolicy, Layout, Verifier, VerifyError};
use serde_json::json;

const ISSUER: &str = "https://idp.dual-auth.example/realms/corp";
const API: &str = "https://api.dual-auth.example/finance";
const ORIGIN: &str = "https://api.dual-auth.example";

fn settings(redis: &Redis) -> RedisSettings {
    RedisSettings::new(SecretString::from(redis.url()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server: run `cargo xtask test`"]
async fn a_dpop_proof_is_accepted_once_across_replicas_sharing_redis() {
    let redis = Redis::start();
    let pair = generate_key_pair(SigningAlgorithm::Es256, 0).unwrap();
    let idp_key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap().with_key_id("idp-1");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        // Each replica has its own connection, as separate processes would.
        let guard = RedisReplayGuard::new(settings(&redis).connect().await.unwrap(), &settings(&redis));
        let verifier = Verifier::builder()
            .issuer(IssuerPolicy::new(ISSUER, API).static_keys([idp_key.verifying_key()]).layout(Layout::Delegated).require_dpop())
            .public_origin(ORIGIN)
            .dpop_replay_guard(Arc::new(guard))
            .build()
            .unwrap();
        replicas.push(verifier);
    }
    let agent_key = DpopKey::generate(SigningAlgorithm::EdDsa).unwrap();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let token = idp_key
        .sign_jwt(&json!({
            "iss": ISSUER, "sub": "user_12345", "aud": API, "azp": "finance-agent", "iat": now, "exp": now + 300,
            "jti": "at-1", "scope": "finance.read", "cnf": {"jkt": agent_key.thumbprint()},
        }))
        .unwrap();
    let uri: http::Uri = "/finance/report".parse().unwrap();
    let url = url::Url::parse(&format!("{ORIGIN}/finance/report")).unwrap();
    for trial in 0..50 {
        let proof = agent_key.proof("GET", &url, Some(&token), None, SystemTime::now()).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("DPoP {token}").parse().unwrap());
        headers.insert("dpop", proof.expose_secret().parse().unwrap());
        let replicas = Arc::new(replicas.clone());
        let tasks: Vec<_> = (0..3)
            .map(|replica| {
                let (replicas, headers, uri) = (Arc::clone(&replicas), headers.clone(), uri.clone());
                tokio::spawn(async move { replicas[replica].verify_headers(&http::Method::GET, &uri, &headers).await })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(subject) => {
                    assert_eq!(subject.dpop_jkt.as_deref(), Some(agent_key.thumbprint()));
                    accepted += 1;
                }
                Err(e) => assert!(matches!(e, VerifyError::DpopReplayed), "trial {trial}: {e}"),
            }
        }
        assert_eq!(accepted, 1, "trial {trial}: one replica in three takes the proof");
    }
}
