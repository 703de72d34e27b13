//! `api_peers serve MODE ALG KEY_DIR PORT` serves `GET /report` on 127.0.0.1:PORT:
//! - `bare`: no authentication (the floor of the HTTP stack);
//! - `dual-auth`: behind `DualAuthLayer` (dual-auth-verify, the delegated layout, a static
//!   key);
//! - `axum-jwt-auth`: behind axum-jwt-auth 0.7.0's `Claims` extractor with a `LocalDecoder`
//!   (jsonwebtoken 10), checking the same `iss`, `aud`, `exp` and signature.
//!
//! `api_peers token ALG KEY_DIR` prints a token both accept, signed with
//! `KEY_DIR/{rs256,es256}-private.pem` (valid for an hour).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use axum_jwt_auth::{Claims, Decoder, LocalDecoder};
use dual_auth_core::{SigningAlgorithm, VerifyingKey};
use dual_auth_verify::{DualAuthLayer, DualSubject, IssuerPolicy, Layout, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "https://idp.bench.example/realms/bench";
const AUDIENCE: &str = "https://api.bench.example/finance";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenClaims {
    iss: String,
    sub: String,
    aud: String,
    azp: String,
    scope: String,
    iat: u64,
    exp: u64,
}

#[derive(Clone, FromRef)]
struct PeerState {
    decoder: Decoder<TokenClaims>,
}

async fn bare() -> &'static str {
    "{\"report\":\"Q4-2025\"}"
}

async fn with_dual_auth(subject: DualSubject) -> String {
    format!("{{\"report\":\"Q4-2025\",\"agent\":\"{}\",\"human\":\"{}\"}}", subject.agent.id(), subject.human.sub())
}

async fn with_peer(claims: Claims<TokenClaims>) -> String {
    format!("{{\"report\":\"Q4-2025\",\"agent\":\"{}\",\"human\":\"{}\"}}", claims.claims.azp, claims.claims.sub)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn algorithm(name: &str) -> Result<(Algorithm, SigningAlgorithm, &'static str), String> {
    match name {
        "rs256" => Ok((Algorithm::RS256, SigningAlgorithm::Rs256, "rs256")),
        "es256" => Ok((Algorithm::ES256, SigningAlgorithm::Es256, "es256")),
        other => Err(format!("algorithm {other:?}: rs256 or es256")),
    }
}

fn router(mode: &str, alg: &str, keys: &Path) -> Result<Router, String> {
    let (peer_alg, our_alg, file) = algorithm(alg)?;
    let public = read(&keys.join(format!("{file}-public.pem")))?;
    Ok(match mode {
        "bare" => Router::new().route("/report", get(bare)),
        "dual-auth" => {
            let key = VerifyingKey::from_pem_with_algorithm(&public, our_alg).map_err(|e| e.to_string())?;
            let policy = IssuerPolicy::new(ISSUER, AUDIENCE).static_keys([key]).layout(Layout::Delegated);
            let verifier = Verifier::builder().issuer(policy).build().map_err(|e| e.to_string())?;
            Router::new().route("/report", get(with_dual_auth)).layer(DualAuthLayer::new(verifier))
        }
        "axum-jwt-auth" => {
            let key = match peer_alg {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(&public),
                _ => DecodingKey::from_ec_pem(&public),
            }
            .map_err(|e| e.to_string())?;
            let mut validation = Validation::new(peer_alg);
            validation.set_audience(&[AUDIENCE]);
            validation.set_issuer(&[ISSUER]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            let decoder = LocalDecoder::builder().keys(vec![key]).validation(validation).build().map_err(|e| e.to_string())?;
            let state = PeerState { decoder: Arc::new(decoder) };
            Router::new().route("/report", get(with_peer)).with_state(state)
        }
        other => return Err(format!("mode {other:?}: bare, dual-auth or axum-jwt-auth")),
    })
}

fn token(alg: &str, keys: &Path) -> Result<String, String> {
    let (peer_alg, _, file) = algorithm(alg)?;
    let private = read(&keys.join(format!("{file}-private.pem")))?;
    let key = match peer_alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&private),
        _ => EncodingKey::from_ec_pem(&private),
    }
    .map_err(|e| e.to_string())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = TokenClaims {
        iss: ISSUER.into(),
        sub: "5f1c7a4e-9d2b-4c1e-8a3f-a11ce0000001".into(),
        aud: AUDIENCE.into(),
        azp: "finance-agent".into(),
        scope: "finance.read".into(),
        iat: now,
        exp: now + 3600,
    };
    jsonwebtoken::encode(&Header::new(peer_alg), &claims, &key).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match words.as_slice() {
        ["serve", mode, alg, keys, port] => match (router(mode, alg, Path::new(keys)), port.parse::<u16>()) {
            (Ok(app), Ok(port)) => match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => {
                    println!("listening on 127.0.0.1:{port}");
                    axum::serve(listener, app).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("bind: {e}")),
            },
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(format!("port: {e}")),
        },
        ["token", alg, keys] => token(alg, Path::new(keys)).map(|t| println!("{t}")),
        _ => Err("usage: api_peers serve MODE ALG KEY_DIR PORT | api_peers token ALG KEY_DIR".into()),
    };
    if let Err(message) = outcome {
        eprintln!("api_peers: {message}");
        std::process::exit(1);
    }
}
