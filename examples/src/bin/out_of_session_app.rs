//! The application side of the guide's out-of-session flow: the logged-in user becomes an
//! act, signed as a short-lived act JWT (`APP_PRIVATE_KEY_PATH`) for the agent at
//! `AGENT_ENDPOINT`, and POSTed there as `{"act_jwt": ...}` over HTTPS.
//!
//! ```sh
//! cargo run -p dual-auth-examples --bin out_of_session_app -- alice@corp.example.com "Alice Smith" user_12345
//! ```
//! Prints the agent's answer; exits non-zero unless it is 200.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use dual_auth::ErrorChain;
use dual_auth::config::{ConfigReader, EnvSource};
use dual_auth::prelude::*;
use dual_auth_examples::{init_logging, required_env};
use serde_json::json;

#[tokio::main]
async fn main() {
    init_logging();
    match run().await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(message) => {
            eprintln!("out_of_session_app: {message}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<bool, String> {
    // In a real app this comes from the authenticated web session.
    let mut args = std::env::args().skip(1);
    let session = UserSession::new(args.next().unwrap_or_else(|| "alice@corp.example.com".into()))
        .with_user_name(args.next().unwrap_or_else(|| "Alice Smith".into()))
        .with_user_id(args.next().unwrap_or_else(|| "user_12345".into()));

    let sender = HybridSender::from_private_key_file(required_env("APP_PRIVATE_KEY_PATH")?).map_err(|e| ErrorChain(&e).to_string())?;
    let act = sender.extract_act_from_session(&session).map_err(|e| ErrorChain(&e).to_string())?;
    let agent_endpoint = required_env("AGENT_ENDPOINT")?;
    let act_jwt =
        sender.prepare_out_of_session_act(&act, &agent_endpoint, Duration::from_secs(60)).map_err(|e| ErrorChain(&e).to_string())?;

    let env = EnvSource::with_dotenv_if_present().map_err(|e| ErrorChain(&e).to_string())?;
    let http = ConfigReader::new(&env).http_settings().await.map_err(|e| ErrorChain(&e).to_string())?;
    let client = http.build_client().map_err(|e| ErrorChain(&e).to_string())?;
    let response = client
        .post(&agent_endpoint)
        .json(&json!({"act_jwt": act_jwt.expose_secret()}))
        .send()
        .await
        .map_err(|e| format!("cannot reach the agent: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("agent answered {status}: {body}");
    Ok(status.is_success())
}
