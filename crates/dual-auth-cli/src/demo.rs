//! `dual-auth demo`: the guide's story on the embedded development identity provider, for
//! each vendor and flow, checked step by step.

use std::sync::Arc;
use std::time::Duration;

use dual_auth::entraid::{EntraClientAuthentication, EntraIdConfig};
use dual_auth::prelude::*;
use dual_auth::session::TokenCacheSettings;
use dual_auth::{ErrorChain, SigningAlgorithm, auth0, generate_key_pair, keycloak, okta};
use dual_auth_devidp::{DevIdp, DevIdpConfig};
use serde_json::Value;

/// The agent's client id at the development provider.
pub(crate) const DEMO_AGENT: &str = "demo-agent";
/// The application's id (Entra ID act assertions).
pub(crate) const DEMO_APP_ID: &str = "dual-auth-demo-app";
const AGENT_ENDPOINT: &str = "https://agent.dual-auth.example/invoke";

/// Everything the demo runs against.
pub(crate) struct DemoEnv {
    pub(crate) idp: DevIdp,
    pub(crate) secret: String,
    pub(crate) app_key: SigningKey,
    pub(crate) app_key_pair: dual_auth::GeneratedKeyPair,
    pub(crate) http: HttpSettings,
}

/// Starts the provider with one agent client and a fresh application key.
pub(crate) async fn start(addr: std::net::SocketAddr) -> Result<DemoEnv, String> {
    let pair = generate_key_pair(SigningAlgorithm::Rs256, 2048).map_err(crate::error_chain)?;
    let app_key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).map_err(crate::error_chain)?;
    // 32 random bytes from the OS, base64url: a throw-away client secret.
    let secret = dual_auth::new_jti().map_err(crate::error_chain)?;
    let mut config = DevIdpConfig::with_client(DEMO_AGENT, &secret);
    config.app_public_key_pem = Some(pair.public_key_pem.clone().into_bytes());
    config.app_id = Some(DEMO_APP_ID.into());
    let idp = DevIdp::start(config, addr).await.map_err(crate::error_chain)?;
    let http = HttpSettings { extra_root_certificates_pem: Some(idp.ca_pem().as_bytes().to_vec()), ..HttpSettings::default() };
    Ok(DemoEnv { idp, secret, app_key, app_key_pair: pair, http })
}

impl DemoEnv {
    /// The vendor's configuration, pointing at the provider.
    pub(crate) fn vendor_config(&self, vendor: Vendor) -> Result<(VendorConfig, Vec<String>), String> {
        let secret = || ClientAuthentication::client_secret_jwt(&SecretString::from(self.secret.clone())).map_err(crate::error_chain);
        let api = self.idp.config().api_audience.clone();
        Ok(match vendor {
            Vendor::Keycloak => (
                VendorConfig::Keycloak(keycloak::KeycloakConfig::new(self.idp.keycloak_token_url(), DEMO_AGENT, secret()?)),
                vec!["finance.read".into()],
            ),
            Vendor::Auth0 => (
                VendorConfig::Auth0(auth0::Auth0Config::new(self.idp.auth0_token_url(), DEMO_AGENT, secret()?, api)),
                vec!["read:reports".into()],
            ),
            Vendor::Okta => {
                (VendorConfig::Okta(okta::OktaConfig::new(self.idp.okta_token_url(), DEMO_AGENT, secret()?)), vec!["finance.read".into()])
            }
            _ => {
                let entra_api = self.idp.config().entra_api.clone();
                let scope = format!("{entra_api}/.default");
                let config = EntraIdConfig {
                    token_url: self.idp.entra_token_url(),
                    client_id: DEMO_AGENT.into(),
                    client_auth: EntraClientAuthentication::ClientSecret(SecretString::from(self.secret.clone())),
                    app_id: DEMO_APP_ID.into(),
                    app_key: Some(self.app_key.clone()),
                    api_audience: entra_api,
                    api_scope: scope.clone(),
                    delegation: None,
                };
                (VendorConfig::EntraId(config), vec![scope])
            }
        })
    }
}

/// Which flows to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    InSession,
    OutOfSession,
    /// The verified mode: the human's own token, exchanged by the agent.
    Verified,
}

impl Flow {
    fn title(self) -> &'static str {
        match self {
            Flow::InSession => "In-Session",
            Flow::OutOfSession => "Out-of-Session",
            Flow::Verified => "Verified Delegation",
        }
    }
}

/// Prints as the guide's test scripts do.
struct Steps {
    n: usize,
}

impl Steps {
    #[allow(clippy::print_stdout)]
    fn step(&mut self, text: &str) {
        self.n += 1;
        println!("{}. {}", self.n, dual_auth::escape_untrusted(text, false));
    }
    #[allow(clippy::print_stdout)]
    fn ok(&self, text: &str) {
        println!("   ✓ {}", dual_auth::escape_untrusted(text, false));
    }
}

/// Runs one vendor and flow; returns an error naming the step that failed.
#[allow(clippy::print_stdout)]
pub(crate) async fn run(env: &DemoEnv, vendor: Vendor, flow: Flow) -> Result<(), String> {
    let line = "=".repeat(60);
    println!("\n{line}\ndual-auth {} Flow: {vendor}\n{line}", flow.title());
    let mut steps = Steps { n: 0 };

    let (config, scopes) = env.vendor_config(vendor)?;
    let adapter = build_adapter(config, AdapterOptions::with_http(env.http.clone()), TokenCacheSettings::default())
        .map_err(|e| format!("adapter: {}", ErrorChain(&e)))?;
    let api = ApiClient::new(env.http.clone()).map_err(crate::error_chain)?;

    if flow == Flow::Verified {
        return run_verified(env, vendor, &adapter, &api, &scopes, &mut steps, &line).await;
    }
    steps.step("Simulating authenticated user...");
    let session = UserSession::new("alice@corp.example.com").with_user_name("Alice Smith").with_user_id("user_12345");
    steps.ok("User: user_12345 (e-mail and name stay out of the output, as out of logs)");
    let (act, token) = match flow {
        Flow::InSession => {
            steps.step("Extracting human identity (act)...");
            let sender = HybridSender::in_session();
            let act = sender.prepare_in_session_act(sender.extract_act_from_session(&session).map_err(crate::error_chain)?);
            steps.ok(&format!(
                "Act extracted with fields: {:?}",
                act.to_value().as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
            ));
            steps.step(&format!("Requesting dual-subject token from {vendor}..."));
            let token = InSessionTokenRequest::new(Arc::clone(&adapter))
                .request_token(DEMO_AGENT, &act, scopes.clone())
                .await
                .map_err(|e| format!("token request: {}", ErrorChain(&e)))?;
            (act, token)
        }
        Flow::OutOfSession => {
            println!("\n[APPLICATION SIDE]");
            steps.step("Creating signed act JWT...");
            let sender = HybridSender::with_signer(ActJwtSigner::new(env.app_key.clone()));
            let act = sender.extract_act_from_session(&session).map_err(crate::error_chain)?;
            let act_jwt = sender.prepare_out_of_session_act(&act, AGENT_ENDPOINT, Duration::from_secs(60)).map_err(crate::error_chain)?;
            steps.ok("Act JWT created (RS256, expires in 60 seconds)");
            println!("\n[AGENT SIDE]");
            steps.step("Verifying act JWT (signature, audience, expiry, lifetime, issuer, replay)...");
            let verifier = ActJwtVerifier::builder(env.app_key.verifying_key(), AGENT_ENDPOINT).build().map_err(crate::error_chain)?;
            let agent = OutOfSessionTokenRequest::new(Arc::clone(&adapter), verifier);
            let verified =
                agent.receive_and_verify_act_jwt(act_jwt.expose_secret()).await.map_err(|e| format!("verification: {}", ErrorChain(&e)))?;
            steps.ok(&format!("JWT verified; act.sub = {}", verified.log_id()));
            let replay = agent.receive_and_verify_act_jwt(act_jwt.expose_secret()).await;
            if !replay.as_ref().is_err_and(SessionError::is_act_jwt_rejected) {
                return Err("a replayed act JWT was accepted".into());
            }
            steps.ok("The same act JWT again is refused: Act JWT replay detected");
            steps.step(&format!("Requesting dual-subject token from {vendor}..."));
            let token = agent
                .request_token(DEMO_AGENT, &verified, scopes.clone())
                .await
                .map_err(|e| format!("token request: {}", ErrorChain(&e)))?;
            (verified, token)
        }
        Flow::Verified => return Err("unreachable: the verified flow ran above".into()),
    };
    steps.ok(&format!(
        "Token received: {} expiring in {} s, scopes {:?}",
        token.token_type(),
        token.expires_in().as_secs(),
        token.scopes()
    ));
    if token.has_act_assertion() {
        steps.ok("Act assertion signed for each API call (sent as X-Act-Assertion)");
    }

    steps.step("Calling the protected API...");
    let response = api
        .call_api(&token, ApiRequest::get(format!("{}/finance/report/Q4-2025", env.idp.api_url())))
        .await
        .map_err(|e| format!("API call: {}", ErrorChain(&e)))?;
    let seen: Value = response.json().unwrap_or(Value::Null);
    if response.status() != 200 {
        return Err(format!("the API answered {}: {seen}", response.status()));
    }
    steps.step("What the API saw:");
    steps.ok(&format!("agent: {}", seen["agent"].as_str().unwrap_or("?")));
    steps.ok(&format!("human: {}", seen["human"].as_str().unwrap_or("?")));
    steps.ok(&format!("vouched for by: {}", DelegationMode::SelfAsserted.vouched_by()));
    if seen["agent"] != DEMO_AGENT || seen["human"] != act.sub() || seen["vendor"] != vendor.as_str() {
        return Err(format!("the API saw {seen}, expected agent {DEMO_AGENT} and human {}", act.sub()));
    }
    println!("\n{line}\n✓ {} FLOW PASSED: {vendor}\n{line}", flow.title().to_uppercase());
    Ok(())
}

/// The verified mode: alice logs in at the provider (her web session's token), the agent
/// sends that token with the vendor's delegation grant, and the API sees the human as the
/// token's own subject, vouched for by the identity provider.
#[allow(clippy::print_stdout)]
async fn run_verified(
    env: &DemoEnv,
    vendor: Vendor,
    adapter: &Arc<dyn IamAdapter>,
    api: &ApiClient,
    scopes: &[String],
    steps: &mut Steps,
    line: &str,
) -> Result<(), String> {
    let mode = adapter.delegation_mode().ok_or("the adapter has no verified mode")?;
    println!("\n[APPLICATION SIDE]");
    steps.step("alice logs in; the web session holds her token, issued for this agent...");
    let login = env.idp.login(vendor.as_str(), "alice", DEMO_AGENT, None).map_err(|e| format!("login: {e}"))?;
    let evidence = SubjectToken::new(login.access_token, SubjectTokenType::AccessToken).map_err(crate::error_chain)?;
    steps.ok("The session's access token is the evidence (a secret: never printed or logged)");
    println!("\n[AGENT SIDE]");
    steps.step(&format!("Sending the evidence to {vendor} ({mode})..."));
    let token = InSessionTokenRequest::new(Arc::clone(adapter))
        .request_delegated_token(DEMO_AGENT, &evidence, scopes.iter().cloned())
        .await
        .map_err(|e| format!("delegation grant: {}", ErrorChain(&e)))?;
    steps.ok(&format!(
        "Token received: {} expiring in {} s{}",
        token.token_type(),
        token.expires_in().as_secs(),
        token.issued_token_type().map(|t| format!(", issued_token_type {t}")).unwrap_or_default()
    ));
    steps.step("Calling the protected API (it verifies the delegated layout)...");
    let response = api
        .call_api(&token, ApiRequest::get(format!("{}/finance/report/Q4-2025", env.idp.delegated_api_url())))
        .await
        .map_err(|e| format!("API call: {}", ErrorChain(&e)))?;
    let seen: Value = response.json().unwrap_or(Value::Null);
    if response.status() != 200 {
        return Err(format!("the API answered {}: {seen}", response.status()));
    }
    let alice = env.idp.config().users.iter().find(|u| u.username == "alice").ok_or("no demo user alice")?;
    steps.step("What the API saw:");
    steps.ok(&format!("agent: {}", seen["agent"].as_str().unwrap_or("?")));
    steps.ok(&format!("human: {}", seen["human"].as_str().unwrap_or("?")));
    steps.ok(&format!("vouched for by: {}", mode.vouched_by()));
    // Entra ID names the user by a pairwise sub, and by oid across applications.
    let human_id = if vendor == Vendor::EntraId { &seen["act"]["oid"] } else { &seen["human"] };
    if seen["agent"] != DEMO_AGENT || human_id != alice.id.as_str() || seen["vouched_by"] != "identity-provider" {
        return Err(format!("the API saw {seen}, expected agent {DEMO_AGENT}, human {}, vouched for by the identity provider", alice.id));
    }
    println!("\n{line}\n✓ {} FLOW PASSED: {vendor}\n{line}", Flow::Verified.title().to_uppercase());
    Ok(())
}
