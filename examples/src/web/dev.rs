//! The demo on the development provider: its Keycloak dialect signs people in, checks the
//! agent's token exchange, and issues the tokens the finance API verifies.

use std::sync::Arc;

use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::prelude::*;
use dual_auth_devidp::{DevIdp, DevIdpConfig};

use super::{AgentSettings, LoginProvider, WebDemo, WebDemoConfig};

/// The agent's client id at the development provider.
pub const DEV_AGENT: &str = "finance-agent";

/// The development provider and the demo signed in through it; both stop when dropped.
pub struct DevWebDemo {
    /// The provider (Keycloak dialect for the sign-in and the agent).
    pub idp: DevIdp,
    /// The web application, the finance API and the remote agent.
    pub demo: WebDemo,
}

impl DevWebDemo {
    /// Starts the provider on a free loopback port with fresh secrets, then the demo, and
    /// registers the demo's redirect URI.
    ///
    /// # Errors
    /// A message naming what failed.
    pub async fn start() -> Result<Self, String> {
        let agent_secret = dual_auth::new_jti().map_err(|e| e.to_string())?;
        let web_secret = dual_auth::new_jti().map_err(|e| e.to_string())?;
        let mut config = DevIdpConfig::with_client(DEV_AGENT, &agent_secret);
        config.web_client_secret = Some(web_secret.clone());
        let idp = DevIdp::start(config, ([127, 0, 0, 1], 0).into()).await.map_err(|e| e.to_string())?;
        let http = HttpSettings { extra_root_certificates_pem: Some(idp.ca_pem().as_bytes().to_vec()), ..HttpSettings::default() };
        let auth = ClientAuthentication::client_secret_jwt(&SecretString::from(agent_secret)).map_err(|e| e.to_string())?;
        let adapter =
            KeycloakAdapter::new(KeycloakConfig::new(idp.keycloak_token_url(), DEV_AGENT, auth), AdapterOptions::with_http(http.clone()))
                .map_err(|e| e.to_string())?;
        let login = LoginProvider {
            issuer: idp.issuer("keycloak").map_err(|e| e.to_string())?,
            client_id: idp.config().web_client_id.clone(),
            client_secret: SecretString::from(web_secret),
            display_name: "the development provider".into(),
        };
        let agent = AgentSettings {
            agent_id: DEV_AGENT.into(),
            adapter: Arc::new(adapter),
            scopes: vec!["finance.read".into()],
            guide_unavailable: None,
        };
        let api_audience = idp.config().api_audience.clone();
        let demo = WebDemo::start(WebDemoConfig { login, agent, api_audience, http }).await?;
        idp.allow_redirect_uri(&demo.redirect_uri());
        Ok(Self { idp, demo })
    }
}
