//! The guide's story in a browser, on the development provider: open the printed URL,
//! sign in as a demo user, ask the agent to read a report, and see what the finance API
//! saw: the agent and you side by side, who vouched for you, the delegation chain.
//!
//! Everything listens on 127.0.0.1 with throw-away certificates (the browser warns once:
//! they chain to CAs made for this run; `WEB_DEMO_CA_FILE=path` writes them there, for a
//! browser or `curl --cacert` to trust). Ctrl-C stops it.
//!
//! ```sh
//! cargo xtask demo --browser     # or: cargo run -p dual-auth-examples --bin web_demo
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use dual_auth_examples::init_logging;
use dual_auth_examples::web::DevWebDemo;

#[tokio::main]
async fn main() {
    init_logging();
    let running = match DevWebDemo::start().await {
        Ok(running) => running,
        Err(message) => {
            eprintln!("web_demo: {message}");
            std::process::exit(1);
        }
    };
    if let Some(path) = std::env::var_os("WEB_DEMO_CA_FILE") {
        let bundle = format!("{}\n{}", running.demo.ca_pem(), running.idp.ca_pem());
        if let Err(e) = std::fs::write(&path, bundle) {
            eprintln!("web_demo: cannot write WEB_DEMO_CA_FILE {}: {e}", std::path::Path::new(&path).display());
            std::process::exit(1);
        }
    }
    println!("dual-auth web demo: open {}/ in a browser", running.demo.url());
    println!("  (its certificates are made for this run: accept the browser's warning for 127.0.0.1 and localhost)");
    println!("Sign in at the development provider as one of:");
    for user in &running.idp.config().users {
        println!("  {:<6} password {:<18} ({}, {})", user.username, user.password, user.name, user.email);
    }
    println!("The finance API: {}  ·  the remote agent: {}", running.demo.api_url(), running.demo.agent_url());
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
}
