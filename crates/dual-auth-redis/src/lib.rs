//! # dual-auth-redis
//!
//! For agents with several replicas behind one endpoint:
//!
//! - [`RedisReplayGuard`]: each act JWT `jti` is accepted by exactly one replica. One round
//!   trip (`SET key 1 NX PX ttl`); when Redis cannot answer, the JWT is refused (fail closed).
//! - [`RedisTokenStore`]: a second token-cache tier behind each replica's in-process cache
//!   ([`dual_auth_session::CachingAdapter::with_shared_store`]), so one replica's token
//!   serves the others. Entries expire before their token does, and are encrypted
//!   (AES-256-GCM, a key from configuration, the cache key as associated data): reading
//!   Redis gives no usable token. When Redis is down the cache asks the identity provider.
//!
//! The connection reconnects on its own; every command has a bounded timeout.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dual_auth_config::{ConfigError, ConfigReader};
use dual_auth_core::secrecy::zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};
use dual_auth_core::secrecy::{ExposeSecret, SecretString};
use dual_auth_core::{BoxError, Clock, ReplayError, ReplayGuard, SystemClock, TokenResponse};
use dual_auth_session::{CacheKey, SharedTokenStore};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};

/// A Redis setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The settings are unusable.
    #[error("redis setting {setting}: {reason}")]
    Setting {
        /// The setting.
        setting: &'static str,
        /// What is wrong (never the URL's password).
        reason: String,
    },
    /// The first connection failed.
    #[error("cannot connect to Redis: {reason}")]
    Connect {
        /// What went wrong.
        reason: String,
    },
}

/// Where Redis is and how long to wait for it.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` (TLS) URL, with the password if any: a secret.
    pub url: SecretString,
    /// Extra trusted roots for `rediss://` (PEM), added to the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Whether plain `redis://` may reach a host other than this machine's loopback
    /// (`DUAL_AUTH_REDIS_ALLOW_PLAINTEXT=true`). Off: the password would cross the network
    /// in clear, and anyone on the path could answer `OK` to every replay check.
    pub allow_plaintext: bool,
    /// The longest wait for an answer.
    pub response_timeout: Duration,
    /// The longest wait to connect.
    pub connection_timeout: Duration,
    /// Prefix of every key written.
    pub key_prefix: String,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"[REDACTED]")
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("key_prefix", &self.key_prefix)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// Settings for `url`, 1 s to answer, 2 s to connect, keys under `dual-auth:`.
    pub fn new(url: SecretString) -> Self {
        Self {
            url,
            ca_pem: None,
            allow_plaintext: false,
            response_timeout: Duration::from_secs(1),
            connection_timeout: Duration::from_secs(2),
            key_prefix: "dual-auth:".into(),
        }
    }

    /// `DUAL_AUTH_REDIS_URL` (required; `redis://` or `rediss://`, password in the URL),
    /// `DUAL_AUTH_CA_BUNDLE` and `DUAL_AUTH_REDIS_ALLOW_PLAINTEXT` (`false`), from any
    /// configuration source.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting.
    pub async fn load(reader: &ConfigReader<'_>) -> Result<Self, ConfigError> {
        let url = reader.secret("DUAL_AUTH_REDIS_URL").await?;
        let mut settings = Self::new(url);
        settings.ca_pem = reader.http_settings().await?.extra_root_certificates_pem;
        settings.allow_plaintext = reader.choice("DUAL_AUTH_REDIS_ALLOW_PLAINTEXT", &["false", "true"], "false").await? == "true";
        Ok(settings)
    }

    /// Connects (and keeps reconnecting as needed).
    ///
    /// # Errors
    /// [`RedisError`] when the URL is unusable or the first connection fails.
    pub async fn connect(&self) -> Result<ConnectionManager, RedisError> {
        let url = self.url.expose_secret();
        let scheme = url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "redis" | "rediss") {
            return Err(RedisError::Setting {
                setting: "DUAL_AUTH_REDIS_URL",
                reason: format!("scheme {scheme:?}: use redis:// or rediss://"),
            });
        }
        if scheme == "redis" && !self.allow_plaintext && !is_loopback(url) {
            return Err(RedisError::Setting {
                setting: "DUAL_AUTH_REDIS_URL",
                reason: "redis:// to another machine sends the password in clear and lets anyone on the path answer every replay \
                         check: use rediss://, or set DUAL_AUTH_REDIS_ALLOW_PLAINTEXT=true on a network you trust"
                    .into(),
            });
        }
        let client = match (&self.ca_pem, scheme) {
            (Some(ca), "rediss") => {
                redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls: None, root_cert: Some(system_roots_and(ca)) })
            }
            _ => redis::Client::open(url),
        }
        .map_err(|e| RedisError::Setting {
            setting: "DUAL_AUTH_REDIS_URL",
            reason: format!("not a usable Redis URL ({})", e.kind_name()),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        ConnectionManager::new_with_config(client, config).await.map_err(|e| RedisError::Connect { reason: e.kind_name().to_owned() })
    }
}

/// Whether the URL's host is this machine: `localhost`, 127.0.0.0/8 or `::1`. A URL that
/// does not parse is not (the Redis client then says what is wrong with it).
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        // For redis:// (not a "special" scheme) the url crate leaves IPv4 hosts as names.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The system's trusted roots (PEM) followed by `extra`: the Redis client trusts only the
/// roots it is given, and the extra bundle is meant to add to the system's, not replace them.
fn system_roots_and(extra: &[u8]) -> Vec<u8> {
    let mut pem = Vec::new();
    for certificate in rustls_native_certs::load_native_certs().certs {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in STANDARD.encode(certificate.as_ref()).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem.extend_from_slice(extra);
    pem
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for redis::RedisError {
    /// The error's category, which never carries the URL or its password.
    fn kind_name(&self) -> &'static str {
        if self.is_timeout() {
            "timed out"
        } else if self.is_io_error() || self.is_connection_dropped() || self.is_connection_refusal() {
            "connection failed"
        } else {
            "Redis error"
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A [`ReplayGuard`] shared by every replica through Redis.
#[derive(Clone)]
pub struct RedisReplayGuard {
    connection: ConnectionManager,
    prefix: String,
    clock: std::sync::Arc<dyn Clock>,
}

impl fmt::Debug for RedisReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayGuard").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisReplayGuard {
    /// A guard over this connection, keys under the settings' prefix.
    pub fn new(connection: ConnectionManager, settings: &RedisSettings) -> Self {
        Self { connection, prefix: format!("{}jti:", settings.key_prefix), clock: std::sync::Arc::new(SystemClock) }
    }
}

#[async_trait]
impl ReplayGuard for RedisReplayGuard {
    async fn check_and_record(&self, jti: &str, expires_at: SystemTime) -> Result<(), ReplayError> {
        // Hashed: a jti is not secret, but keys stay short and uniform.
        let key = format!("{}{}", self.prefix, hex(&openssl::sha::sha256(jti.as_bytes())));
        let ttl_ms = expires_at.duration_since(self.clock.now()).map_or(1_000, |d| d.as_millis().max(1_000));
        let mut connection = self.connection.clone();
        let answer: Result<Option<String>, redis::RedisError> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl_ms).unwrap_or(u64::MAX))
            .query_async(&mut connection)
            .await;
        match answer {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ReplayError::Replayed),
            Err(e) => Err(ReplayError::Unavailable { reason: format!("Redis: {}", e.kind_name()), source: None }),
        }
    }
}

/// The key that encrypts tokens in Redis: 32 bytes, from `DUAL_AUTH_REDIS_CACHE_KEY`
/// (base64). Every replica needs the same one. Wiped from memory when dropped.
pub struct TokenEncryptionKey([u8; 32]);

impl Drop for TokenEncryptionKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for TokenEncryptionKey {}

impl fmt::Debug for TokenEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenEncryptionKey([REDACTED])")
    }
}

impl TokenEncryptionKey {
    /// `DUAL_AUTH_REDIS_CACHE_KEY` from any configuration source (a secret store, typically).
    ///
    /// # Errors
    /// [`ConfigError`] when it is missing or not 32 bytes of base64.
    pub async fn load(reader: &ConfigReader<'_>) -> Result<Self, ConfigError> {
        let value = reader.secret("DUAL_AUTH_REDIS_CACHE_KEY").await?;
        Self::from_base64(&value).map_err(|e| ConfigError::InvalidValue {
            key: "DUAL_AUTH_REDIS_CACHE_KEY".into(),
            backend: reader.source().backend(),
            reason: e.to_string(),
        })
    }

    /// From 32 bytes, base64.
    ///
    /// # Errors
    /// [`RedisError::Setting`] when it is not 32 bytes of base64.
    pub fn from_base64(value: &SecretString) -> Result<Self, RedisError> {
        let bytes = STANDARD
            .decode(value.expose_secret().trim())
            .map(Zeroizing::new)
            .map_err(|_| RedisError::Setting { setting: "DUAL_AUTH_REDIS_CACHE_KEY", reason: "is not base64".into() })?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| RedisError::Setting {
            setting: "DUAL_AUTH_REDIS_CACHE_KEY",
            reason: "must be 32 bytes (base64 of `openssl rand 32`)".into(),
        })?;
        Ok(Self(key))
    }
}

/// The shared, encrypted token-cache tier.
pub struct RedisTokenStore {
    connection: ConnectionManager,
    prefix: String,
    key: TokenEncryptionKey,
    clock: std::sync::Arc<dyn Clock>,
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

impl RedisTokenStore {
    /// A store over this connection, encrypting with `key`.
    pub fn new(connection: ConnectionManager, settings: &RedisSettings, key: TokenEncryptionKey) -> Self {
        Self { connection, prefix: format!("{}token:", settings.key_prefix), key, clock: std::sync::Arc::new(SystemClock) }
    }

    fn redis_key(&self, key: &CacheKey) -> String {
        format!("{}{}", self.prefix, hex(key.as_bytes()))
    }

    fn seal(&self, key: &CacheKey, plain: &[u8]) -> Result<String, BoxError> {
        let mut nonce = [0u8; NONCE_LEN];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG_LEN];
        let sealed = encrypt_aead(Cipher::aes_256_gcm(), &self.key.0, Some(&nonce), key.as_bytes(), plain, &mut tag)?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed, &tag].concat()))
    }

    fn open(&self, key: &CacheKey, stored: &str) -> Result<Zeroizing<Vec<u8>>, BoxError> {
        let bytes = STANDARD.decode(stored)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err("stored token too short".into());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let (sealed, tag) = rest.split_at(rest.len() - TAG_LEN);
        Ok(Zeroizing::new(decrypt_aead(Cipher::aes_256_gcm(), &self.key.0, Some(nonce), key.as_bytes(), sealed, tag)?))
    }
}

#[async_trait]
impl SharedTokenStore for RedisTokenStore {
    async fn load(&self, key: &CacheKey) -> Result<Option<TokenResponse>, BoxError> {
        let mut connection = self.connection.clone();
        let stored: Option<String> =
            redis::cmd("GET").arg(self.redis_key(key)).query_async(&mut connection).await.map_err(|e| e.kind_name())?;
        let Some(stored) = stored else { return Ok(None) };
        let plain = self.open(key, &stored).map_err(|_| "a stored token does not decrypt: another DUAL_AUTH_REDIS_CACHE_KEY?")?;
        let mut value: Value = serde_json::from_slice(&plain)?;
        let expires_at = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_nanos(value["expires_at_ns"].as_u64().ok_or("expires_at_ns")?))
            .ok_or("expires_at_ns out of range")?;
        let expires_in = Duration::from_secs(value["expires_in"].as_u64().ok_or("expires_in")?);
        let issued_at = expires_at.checked_sub(expires_in).ok_or("expiry before issue")?;
        // An act assertion is never stored (older entries may hold one: it is ignored); the
        // caching adapter re-attaches the adapter's assertion source.
        let access_token = match value.get_mut("access_token").map(Value::take) {
            Some(Value::String(token)) => Zeroizing::new(token),
            _ => return Err("access_token".into()),
        };
        let token = TokenResponse::new(access_token.as_str(), value["token_type"].as_str().unwrap_or("Bearer"), expires_in, issued_at)
            .with_scopes(
                value["scopes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        Ok(Some(token))
    }

    async fn store(&self, key: &CacheKey, token: &TokenResponse, keep_until: SystemTime) -> Result<(), BoxError> {
        let Ok(ttl) = keep_until.duration_since(self.clock.now()) else { return Ok(()) };
        let expires_at_ns = token.expires_at().duration_since(SystemTime::UNIX_EPOCH)?.as_nanos();
        let plain = json!({
            "access_token": token.access_token().expose_secret(),
            "token_type": token.token_type(),
            "expires_in": token.expires_in().as_secs(),
            "expires_at_ns": u64::try_from(expires_at_ns)?,
            "scopes": token.scopes(),
        });
        let mut plain = plain;
        let text = Zeroizing::new(plain.to_string());
        if let Some(Value::String(copy)) = plain.get_mut("access_token") {
            copy.zeroize();
        }
        let sealed = self.seal(key, text.as_bytes())?;
        let mut connection = self.connection.clone();
        let ttl_ms = u64::try_from(ttl.as_millis().max(1)).unwrap_or(u64::MAX);
        let _: () = redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(sealed)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut connection)
            .await
            .map_err(|e| e.kind_name())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_count_as_this_machine() {
        for url in ["redis://127.0.0.1:6379", "redis://:pw@127.1.2.3/0", "redis://localhost", "redis://[::1]:6379"] {
            assert!(is_loopback(url), "{url}");
        }
        for url in ["redis://redis.example.com", "redis://10.0.0.5:6379", "redis://localhost.evil.example", "not a url"] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[tokio::test]
    async fn plain_redis_to_another_machine_is_refused_unless_allowed() {
        let settings = RedisSettings::new(SecretString::from("redis://:hunter2@redis.example.com:6379"));
        let err = settings.connect().await.unwrap_err();
        assert!(matches!(&err, RedisError::Setting { setting: "DUAL_AUTH_REDIS_URL", reason } if reason.contains("rediss://")), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        // Allowed: the check passes and the client is built (the connection then fails or not).
        let allowed = RedisSettings { allow_plaintext: true, connection_timeout: Duration::from_millis(1), ..settings };
        assert!(!matches!(allowed.connect().await, Err(RedisError::Setting { .. })));
    }

    #[test]
    fn the_token_encryption_key_is_wiped_on_drop() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<TokenEncryptionKey>();
    }

    #[test]
    fn a_ca_bundle_adds_to_the_system_roots() {
        let extra = b"-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n";
        let system = rustls_native_certs::load_native_certs().certs.len();
        let combined = String::from_utf8(system_roots_and(extra)).unwrap();
        assert!(combined.ends_with(std::str::from_utf8(extra).unwrap()));
        assert_eq!(combined.matches("-----BEGIN CERTIFICATE-----").count(), system + 1);
    }
}
