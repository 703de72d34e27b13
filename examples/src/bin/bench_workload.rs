//! One benchmark workload, timed from inside, printed as one JSON line: the Rust side of
//! `cargo xtask bench` (the Python side is `bench/python_workload.py`).
//!
//! ```sh
//! bench_workload sign N PRIVATE_KEY AUDIENCE
//! bench_workload verify N PRIVATE_KEY PUBLIC_KEY AUDIENCE
//! bench_workload flows N CONCURRENCY on|off      # configuration from the environment
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dual_auth::ErrorChain;
use dual_auth::prelude::*;
use dual_auth::session::TokenCacheSettings;
use serde_json::json;

fn parse<T: std::str::FromStr>(value: Option<&String>, what: &str) -> Result<T, String> {
    value.and_then(|v| v.parse().ok()).ok_or_else(|| format!("{what} missing or invalid"))
}

fn summary(op: &str, latencies: &mut [Duration], total: Duration) -> serde_json::Value {
    latencies.sort_unstable();
    let at = |q: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    json!({
        "op": op, "n": latencies.len(), "median_us": at(0.5), "p90_us": at(0.9),
        "total_s": total.as_secs_f64(), "peak_rss_kb": peak_rss_kb(),
    })
}

/// The process's peak resident set size (Linux `VmHWM`).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(result) => println!("{result}"),
        Err(message) => {
            eprintln!("bench_workload: {message}");
            std::process::exit(1);
        }
    }
}

async fn run(args: &[String]) -> Result<serde_json::Value, String> {
    let act = UserSession::new("alice@corp.example.com")
        .with_user_name("Alice Smith")
        .with_user_id("user_12345")
        .to_act()
        .map_err(|e| ErrorChain(&e).to_string())?;
    match args.first().map(String::as_str) {
        Some("sign") => {
            let n: usize = parse(args.get(1), "N")?;
            let signer = ActJwtSigner::new(SigningKey::from_pem_file(&args[2]).map_err(|e| ErrorChain(&e).to_string())?);
            let audience = &args[3];
            let mut latencies = Vec::with_capacity(n);
            let started = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                let jwt = signer.sign(&act, audience, Duration::from_secs(60)).map_err(|e| ErrorChain(&e).to_string())?;
                latencies.push(t.elapsed());
                std::hint::black_box(jwt);
            }
            Ok(summary("sign", &mut latencies, started.elapsed()))
        }
        Some("verify") => {
            let n: usize = parse(args.get(1), "N")?;
            let signer = ActJwtSigner::new(SigningKey::from_pem_file(&args[2]).map_err(|e| ErrorChain(&e).to_string())?);
            let key = VerifyingKey::from_pem_file(&args[3]).map_err(|e| ErrorChain(&e).to_string())?;
            let audience = &args[4];
            let verifier = ActJwtVerifier::builder(key, audience).build().map_err(|e| ErrorChain(&e).to_string())?;
            // Signed beforehand: only verification (replay check included) is timed.
            let tokens: Vec<SecretString> = (0..n)
                .map(|_| signer.sign(&act, audience, Duration::from_secs(300)))
                .collect::<Result<_, _>>()
                .map_err(|e| ErrorChain(&e).to_string())?;
            let mut latencies = Vec::with_capacity(n);
            let started = Instant::now();
            for token in &tokens {
                let t = Instant::now();
                verifier.verify(token.expose_secret()).await.map_err(|e| ErrorChain(&e).to_string())?;
                latencies.push(t.elapsed());
            }
            Ok(summary("verify", &mut latencies, started.elapsed()))
        }
        Some("flows") => {
            let n: usize = parse(args.get(1), "N")?;
            let concurrency: usize = parse(args.get(2), "CONCURRENCY")?;
            let cache = args.get(3).map(String::as_str) == Some("on");
            let loaded = dual_auth::load_config(None, None).await.map_err(|e| ErrorChain(&e).to_string())?;
            let api = ApiClient::new(loaded.http.clone()).map_err(|e| ErrorChain(&e).to_string())?;
            let agent = loaded.vendor_config.client_id().to_owned();
            let settings = TokenCacheSettings { enabled: cache, ..TokenCacheSettings::default() };
            let adapter = build_adapter(loaded.vendor_config, AdapterOptions::with_http(loaded.http), settings)
                .map_err(|e| ErrorChain(&e).to_string())?;
            let url = format!("{}/finance/report", std::env::var("API_URL").map_err(|_| "API_URL missing")?);
            let shared = Arc::new((InSessionTokenRequest::new(adapter), api, url, agent, act));
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let started = Instant::now();
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                let (shared, next) = (Arc::clone(&shared), Arc::clone(&next));
                workers.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                        let (tokens, api, url, agent, act) = &*shared;
                        let t = Instant::now();
                        let token = tokens.request_token(agent, act, ["finance.read"]).await.map_err(|e| ErrorChain(&e).to_string())?;
                        let response = api.call_api(&token, ApiRequest::get(url.as_str())).await.map_err(|e| ErrorChain(&e).to_string())?;
                        if response.status() != 200 {
                            return Err(format!("API answered {}", response.status()));
                        }
                        latencies.push(t.elapsed());
                    }
                    Ok::<_, String>(latencies)
                }));
            }
            let mut latencies = Vec::with_capacity(n);
            for worker in workers {
                latencies.extend(worker.await.map_err(|e| ErrorChain(&e).to_string())??);
            }
            let op = format!("flows c{concurrency} cache {}", if cache { "on" } else { "off" });
            Ok(summary(&op, &mut latencies, started.elapsed()))
        }
        _ => Err("usage: bench_workload sign|verify|flows ...".into()),
    }
}
