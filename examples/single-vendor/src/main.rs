//! `keycloak-alone [--show-token] USER_ID EMAIL`: the program of `dual-auth-keycloak`'s crate
//! docs, with that crate as its only dual-auth dependency.
//!
//! Configured as the guide says (`KEYCLOAK_TOKEN_URL`, `AGENT_CLIENT_ID`,
//! `AGENT_CLIENT_SECRET`, optionally `DUAL_AUTH_SECRETS_BACKEND` and `DUAL_AUTH_CA_BUNDLE`),
//! plus the application's key pair (`APP_PRIVATE_KEY_PATH`, `APP_PUBLIC_KEY_PATH`) for the
//! out-of-session half, in which it plays both the application and the remote agent. With
//! `HUMAN_TOKEN_FILE` (a file holding the human's access token, issued for this agent) it
//! also runs the verified mode: Keycloak's standard token exchange, in which Keycloak
//! verifies the human rather than trusting the agent. Prints one JSON line per token; the
//! access token only with `--show-token` (it is a secret).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use dual_auth_keycloak::{
    ActJwtSigner, ActJwtVerifier, AdapterOptions, ConfigReader, DelegationRequest, EnvSource, ExposeSecret, IamAdapter, KeycloakAdapter,
    KeycloakConfig, SigningKey, SubjectToken, SubjectTokenType, TokenRequest, TokenResponse, UserSession, VerifyingKey, open_source,
    select_backend,
};

/// The audience of the act JWTs the application signs for its remote agent.
const AGENT_ENDPOINT: &str = "https://agent.example.com/invoke";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keycloak-alone: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let show_token = args.first().is_some_and(|a| a == "--show-token");
    if show_token {
        args.remove(0);
    }
    let [user_id, email] = <[String; 2]>::try_from(args).map_err(|_| "usage: keycloak-alone [--show-token] USER_ID EMAIL")?;

    // The configuration, from the environment or the store DUAL_AUTH_SECRETS_BACKEND names.
    let env = EnvSource::new();
    let source = open_source(select_backend(None, &env)?, &env).await?;
    let reader = ConfigReader::new(source.as_ref());
    let config = KeycloakConfig::load(&reader).await?;
    let agent = config.client_id.clone();
    let http = ConfigReader::new(&env).http_settings().await?;
    let adapter = KeycloakAdapter::new(config, AdapterOptions::with_http(http))?;

    // In-session: the human from the web application's own session.
    let act = UserSession::new(email).with_user_id(user_id).to_act()?;
    let token = adapter.request_token(&TokenRequest::new(&agent, act.clone(), ["finance.read"])?).await?;
    report("in-session", &token, show_token);

    // Out-of-session: the application signs an act JWT for its remote agent; the agent
    // verifies it before acting for that human.
    let signer = ActJwtSigner::new(SigningKey::from_pem_file(reader.text("APP_PRIVATE_KEY_PATH").await?)?);
    let act_jwt = signer.sign(&act, AGENT_ENDPOINT, Duration::from_secs(60))?;
    let verifier =
        ActJwtVerifier::builder(VerifyingKey::from_pem_file(reader.text("APP_PUBLIC_KEY_PATH").await?)?, AGENT_ENDPOINT).build()?;
    let verified = verifier.verify(act_jwt.expose_secret()).await?.into_act();
    let token = adapter.request_token(&TokenRequest::new(&agent, verified, ["finance.read"])?).await?;
    report("out-of-session", &token, show_token);

    // Verified: the human's own token is the evidence; Keycloak checks it (signature,
    // expiry, and that this agent is in its audience) and issues sub = the human.
    if let Some(path) = reader.optional_text("HUMAN_TOKEN_FILE").await? {
        let evidence = SubjectToken::new(std::fs::read_to_string(&path)?, SubjectTokenType::AccessToken)?;
        let token = adapter.request_delegated_token(&DelegationRequest::new(&agent, evidence, ["finance.read"])?).await?;
        report("verified", &token, show_token);
    }
    Ok(())
}

fn report(flow: &str, token: &TokenResponse, show_token: bool) {
    let mut line = serde_json::json!({
        "flow": flow,
        "token_type": token.token_type(),
        "expires_in": token.expires_in().as_secs(),
        "scopes": token.scopes(),
        "issued_token_type": token.issued_token_type(),
    });
    if show_token {
        line["access_token"] = token.access_token().expose_secret().into();
    }
    println!("{line}");
}
