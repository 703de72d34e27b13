//! The seam to secret stores: one [`SecretSource`] per backend.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::SecretError;

/// Where configuration values come from, chosen by `DUAL_AUTH_SECRETS_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretBackend {
    /// Environment variables (`env`, alias `environment`).
    Env,
    /// AWS Secrets Manager (`aws`).
    Aws,
    /// GCP Secret Manager (`gcp`).
    Gcp,
    /// Azure Key Vault (`azure`).
    Azure,
    /// HashiCorp Vault or OpenBao (`vault`, alias `hashicorp`).
    Vault,
}

impl SecretBackend {
    /// Every backend.
    pub const ALL: [SecretBackend; 5] = [Self::Env, Self::Aws, Self::Gcp, Self::Azure, Self::Vault];

    /// The canonical name used in `DUAL_AUTH_SECRETS_BACKEND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Azure => "azure",
            Self::Vault => "vault",
        }
    }
}

impl fmt::Display for SecretBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown secrets backend {0:?}: DUAL_AUTH_SECRETS_BACKEND must be one of env, aws, gcp, azure, vault")]
pub struct UnknownSecretBackend(pub String);

impl FromStr for SecretBackend {
    type Err = UnknownSecretBackend;

    /// Case-insensitive and trimmed; `environment` and `hashicorp` are accepted aliases.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "env" | "environment" => Ok(Self::Env),
            "aws" => Ok(Self::Aws),
            "gcp" => Ok(Self::Gcp),
            "azure" => Ok(Self::Azure),
            "vault" | "hashicorp" => Ok(Self::Vault),
            _ => Err(UnknownSecretBackend(s.trim().to_owned())),
        }
    }
}

/// A place that holds named configuration values and secrets.
///
/// Keys are the upstream names (`AGENT_CLIENT_SECRET`, `KEYCLOAK_TOKEN_URL`, ...); each
/// backend maps them to its own naming. Implemented in `dual-auth-config`.
#[async_trait]
pub trait SecretSource: Send + Sync + fmt::Debug {
    /// Which backend this is, for error messages.
    fn backend(&self) -> SecretBackend;

    /// Where this source looks for `key`, in words a user can act on (for example
    /// "the environment variable AGENT_CLIENT_SECRET", or "the secret
    /// dual-auth/AGENT_CLIENT_SECRET in AWS Secrets Manager (us-east-1)").
    fn location_of(&self, key: &str) -> String {
        format!("{key:?} in the {} backend", self.backend())
    }

    /// The value of `key`, or `None` when the store has no such key. Values are trimmed;
    /// an empty value counts as absent.
    ///
    /// # Errors
    /// A [`SecretError`] naming the backend and the key, never the value.
    async fn fetch(&self, key: &str) -> Result<Option<SecretString>, SecretError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_and_aliases() {
        assert_eq!("Environment".parse::<SecretBackend>().unwrap(), SecretBackend::Env);
        assert_eq!(" hashicorp".parse::<SecretBackend>().unwrap(), SecretBackend::Vault);
        for b in SecretBackend::ALL {
            assert_eq!(b.as_str().parse::<SecretBackend>().unwrap(), b);
        }
        assert!("s3".parse::<SecretBackend>().unwrap_err().to_string().contains("must be one of env, aws, gcp, azure, vault"));
    }
}
