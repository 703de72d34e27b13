//! The environment as a [`SecretSource`], with an optional `.env` file beneath it.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use dual_auth_core::secrecy::SecretString;
use dual_auth_core::secrecy::zeroize::Zeroize;
use dual_auth_core::{SecretBackend, SecretError, SecretSource};

use crate::error::ConfigError;

/// The variable that lets `./.env` set everything (`DUAL_AUTH_DOTENV=trusted`): it is read
/// from the process environment only, never from the file.
pub const DOTENV_TRUST_VARIABLE: &str = "DUAL_AUTH_DOTENV";

/// Whether `key` decides where credentials go: a URL, address, endpoint or host (token
/// endpoints, secret stores, Redis, APIs), a CA bundle, or the secrets backend. A `.env` in
/// the working directory may not set these unless trusted: anyone who can write one could
/// otherwise send the real client secret from the environment to their own server.
pub fn decides_where_credentials_go(key: &str) -> bool {
    ["_URL", "_ADDR", "_ENDPOINT", "_HOST", "_CA_BUNDLE", "_CACERT"].iter().any(|end| key.ends_with(end))
        || key == "DUAL_AUTH_SECRETS_BACKEND"
}

/// Environment variables; values from a `.env` file fill in what the environment lacks,
/// never override it. The process environment itself is never modified.
///
/// An untrusted `.env` ([`EnvSource::with_dotenv`], the default) may not set what
/// [`decides_where_credentials_go`]; a trusted one ([`EnvSource::with_trusted_dotenv`])
/// may.
#[derive(Clone)]
pub struct EnvSource {
    dotenv: HashMap<String, String>,
    process_env: bool,
}

impl Drop for EnvSource {
    /// A `.env` may hold the client secret: its values are wiped with the source.
    fn drop(&mut self) {
        for value in self.dotenv.values_mut() {
            value.zeroize();
        }
    }
}

impl Default for EnvSource {
    fn default() -> Self {
        Self { dotenv: HashMap::new(), process_env: true }
    }
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.dotenv.keys().collect();
        keys.sort();
        f.debug_struct("EnvSource").field("dotenv_keys", &keys).finish()
    }
}

impl EnvSource {
    /// The process environment only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process environment over the `.env` file at `path`, which may not set (where
    /// the environment does not) a key that [`decides_where_credentials_go`].
    ///
    /// # Errors
    /// [`ConfigError::File`] when the file cannot be read or a line cannot be parsed (the
    /// error names the line number, not its content); [`ConfigError::NotFromDotenv`] when
    /// it sets such a key.
    pub fn with_dotenv(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let source = Self::with_trusted_dotenv(path.as_ref())?;
        let mut refused: Vec<&String> =
            source.dotenv.keys().filter(|key| decides_where_credentials_go(key) && std::env::var_os(key.as_str()).is_none()).collect();
        refused.sort();
        if let Some(key) = refused.first() {
            return Err(ConfigError::NotFromDotenv { key: (*key).clone(), path: path.as_ref().to_owned() });
        }
        Ok(source)
    }

    /// The process environment over the `.env` file at `path`, trusted to set any key.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the file cannot be read or a line cannot be parsed.
    pub fn with_trusted_dotenv(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            key: ".env".into(),
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let dotenv = parse_dotenv(&text).map_err(|line| ConfigError::File {
            key: ".env".into(),
            path: path.to_owned(),
            reason: format!("line {line} is not KEY=VALUE"),
        })?;
        Ok(Self { dotenv, process_env: true })
    }

    /// Exactly these variables, ignoring the process environment (for tests, and for
    /// programs that take their settings from elsewhere).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { dotenv: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), process_env: false }
    }

    /// The process environment over `./.env` when that file exists: untrusted
    /// ([`EnvSource::with_dotenv`]) unless the environment says `DUAL_AUTH_DOTENV=trusted`.
    ///
    /// # Errors
    /// As [`EnvSource::with_dotenv`], for a `.env` that exists but cannot be used.
    pub fn with_dotenv_if_present() -> Result<Self, ConfigError> {
        let path = Path::new(".env");
        if !path.is_file() {
            return Ok(Self::new());
        }
        let trusted = std::env::var(DOTENV_TRUST_VARIABLE).is_ok_and(|v| v.trim().eq_ignore_ascii_case("trusted"));
        if trusted { Self::with_trusted_dotenv(path) } else { Self::with_dotenv(path) }
    }

    /// A variable's trimmed value; empty counts as absent.
    pub fn get(&self, key: &str) -> Option<String> {
        let from_process = if self.process_env { std::env::var(key).ok() } else { None };
        let value = from_process.or_else(|| self.dotenv.get(key).cloned())?;
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }
}

/// Parses `KEY=VALUE` lines: `#` comments, blank lines, an optional `export ` prefix, and
/// values in single or double quotes. Returns the first bad line's number on error.
fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, usize> {
    let mut values = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=').ok_or(index + 1)?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(index + 1);
        }
        let value = value.trim();
        let value = match (value.chars().next(), value.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(end)) if value.len() >= 2 && end == q => &value[1..value.len() - 1],
            _ => value.split(" #").next().unwrap_or(value).trim_end(),
        };
        values.insert(key.to_owned(), value.to_owned());
    }
    Ok(values)
}

#[async_trait]
impl SecretSource for EnvSource {
    fn backend(&self) -> SecretBackend {
        SecretBackend::Env
    }

    fn location_of(&self, key: &str) -> String {
        format!("the environment variable {key} (or a line {key}=... in .env)")
    }

    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(self.get(key).map(SecretString::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_parse() {
        let parsed = parse_dotenv(
            "# comment\n\nexport A=1\nB = two words \nC=\"quoted # not a comment\"\nD='single'\nE=value # trailing comment\nF=\n",
        )
        .unwrap();
        assert_eq!(parsed["A"], "1");
        assert_eq!(parsed["B"], "two words");
        assert_eq!(parsed["C"], "quoted # not a comment");
        assert_eq!(parsed["D"], "single");
        assert_eq!(parsed["E"], "value");
        assert_eq!(parsed["F"], "");
        assert_eq!(parse_dotenv("GOOD=1\nno equals sign\n").unwrap_err(), 2);
        assert_eq!(parse_dotenv("BAD KEY=1\n").unwrap_err(), 1);
    }
}
