//! What the guide's programs share: configuration from the environment (or `.env`, or the
//! secret store `DUAL_AUTH_SECRETS_BACKEND` names), an HTTPS listener, logging.
//!
//! The programs are in `src/bin/`:
//! - `in_session_app`: a web app whose agent runs in-process (the act stays in memory);
//! - `out_of_session_app`: a web app's step that signs an act JWT and hands it to a remote agent;
//! - `out_of_session_agent`: the remote agent (`/invoke`, `/health`, `/ready`);
//! - `protected_api`: the API they call, verifying each token with `dual-auth-verify`;
//! - `web_demo`: the story in a browser ([`web`]): sign in, ask the agent, see what the API saw.
#![forbid(unsafe_code)]

pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use dual_auth::ErrorChain;
use dual_auth::config::{ConfigReader, EnvSource, open_source};
use dual_auth::prelude::*;
use dual_auth::redis::{RedisReplayGuard, RedisSettings, RedisTokenStore, TokenEncryptionKey};

/// Everything an agent needs, loaded once at start.
pub struct AgentSetup {
    /// The agent's client id (`AGENT_CLIENT_ID`).
    pub agent_id: String,
    /// The scopes it asks for: `API_SCOPE` for Entra ID, else `AGENT_SCOPES` (space
    /// separated, default `finance.read`).
    pub scopes: Vec<String>,
    /// The vendor adapter behind the token cache (with Redis, the cache has a second tier
    /// shared by the replicas).
    pub adapter: Arc<dyn IamAdapter>,
    /// With `DUAL_AUTH_REDIS_URL` set: the act JWT replay guard shared by the replicas
    /// (each JWT accepted once across all of them; refused when Redis cannot answer).
    /// `None`: the verifier's in-process guard, right for a single replica only.
    pub replay_guard: Option<Arc<dyn ReplayGuard>>,
    /// The API client (HTTPS only, `DUAL_AUTH_CA_BUNDLE` honoured).
    pub api: ApiClient,
    /// The API base URL (`API_URL`).
    pub api_url: String,
}

/// A required environment variable, or a message saying how to set it.
///
/// # Errors
/// The message, when the variable is missing or empty.
pub fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is missing: set it in the environment or .env"))
}

impl AgentSetup {
    /// Loads the vendor configuration and the agent's settings, and, when
    /// `DUAL_AUTH_REDIS_URL` is set (in the environment or the secret store), connects to
    /// Redis for replicas: the shared replay guard and the encrypted shared token cache
    /// (`DUAL_AUTH_REDIS_CACHE_KEY` then required).
    ///
    /// # Errors
    /// A message naming what is missing or wrong.
    pub async fn load() -> Result<Self, String> {
        let env = EnvSource::with_dotenv_if_present().map_err(|e| ErrorChain(&e).to_string())?;
        let loaded = dual_auth::load_config_from(&env, None, None).await.map_err(|e| ErrorChain(&e).to_string())?;
        let scopes = match &loaded.vendor_config {
            VendorConfig::EntraId(config) => vec![config.api_scope.clone()],
            _ => std::env::var("AGENT_SCOPES").unwrap_or_else(|_| "finance.read".into()).split_whitespace().map(str::to_owned).collect(),
        };
        let api = ApiClient::new(loaded.http.clone()).map_err(|e| ErrorChain(&e).to_string())?;
        let api_url = required_env("API_URL")?;
        let agent_id = required_env("AGENT_CLIENT_ID")?;
        let source = open_source(loaded.backend, &env).await.map_err(|e| ErrorChain(&e).to_string())?;
        let reader = ConfigReader::new(source.as_ref());
        if reader.optional_secret("DUAL_AUTH_REDIS_URL").await.map_err(|e| ErrorChain(&e).to_string())?.is_none() {
            let adapter = loaded.into_adapter().map_err(|e| ErrorChain(&e).to_string())?;
            return Ok(Self { agent_id, scopes, adapter, replay_guard: None, api, api_url });
        }
        let redis = RedisSettings::load(&reader).await.map_err(|e| ErrorChain(&e).to_string())?;
        let key = TokenEncryptionKey::load(&reader).await.map_err(|e| ErrorChain(&e).to_string())?;
        let guard = RedisReplayGuard::new(redis.connect().await.map_err(|e| ErrorChain(&e).to_string())?, &redis);
        let store = RedisTokenStore::new(redis.connect().await.map_err(|e| ErrorChain(&e).to_string())?, &redis, key);
        let uncached = build_adapter(
            loaded.vendor_config,
            AdapterOptions::with_http(loaded.http),
            TokenCacheSettings { enabled: false, ..TokenCacheSettings::default() },
        )
        .map_err(|e| ErrorChain(&e).to_string())?;
        let adapter = Arc::new(CachingAdapter::new(uncached, TokenCacheSettings::default()).with_shared_store(Arc::new(store)));
        Ok(Self { agent_id, scopes, adapter, replay_guard: Some(Arc::new(guard)), api, api_url })
    }
}

/// TLS for a listener from the PEM files named by `{prefix}_TLS_CERT` and `{prefix}_TLS_KEY`.
///
/// # Errors
/// A message naming the missing or unreadable file.
pub async fn tls_from_env(prefix: &str) -> Result<RustlsConfig, String> {
    let cert = required_env(&format!("{prefix}_TLS_CERT"))?;
    let key = required_env(&format!("{prefix}_TLS_KEY"))?;
    RustlsConfig::from_pem_file(&cert, &key).await.map_err(|e| format!("{prefix}_TLS_CERT/{prefix}_TLS_KEY: {e}"))
}

/// The listen address from `{prefix}_LISTEN`, else `default`.
///
/// # Errors
/// A message when the address does not parse.
pub fn listen_from_env(prefix: &str, default: &str) -> Result<SocketAddr, String> {
    let text = std::env::var(format!("{prefix}_LISTEN")).unwrap_or_else(|_| default.to_owned());
    text.parse().map_err(|_| format!("{prefix}_LISTEN \"{text}\" is not an address like 127.0.0.1:8443"))
}

/// Logs to stderr at `DUAL_AUTH_LOG` (default `info`); our log lines carry ids, never
/// e-mail, names, tokens or secrets.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DUAL_AUTH_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
}
