//! The configuration error: it names the key, the backend, and how to fix it; never a value.

use std::path::PathBuf;

use dual_auth_core::{KeyError, SecretBackend, SecretError};

/// Configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required key is absent (or empty, or only white space).
    #[error("{key} is missing: set {location}")]
    Missing {
        /// The key.
        key: String,
        /// The backend asked.
        backend: SecretBackend,
        /// Where the backend looks for it.
        location: String,
    },
    /// A URL setting is not `https://` with a host.
    #[error("{key} (from {backend}) {reason}")]
    InvalidUrl {
        /// The key.
        key: String,
        /// The backend.
        backend: SecretBackend,
        /// What is wrong, for example "must use https://, got \"http://\"".
        reason: String,
    },
    /// A setting has a value that cannot be used.
    #[error("{key} (from {backend}): {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The backend.
        backend: SecretBackend,
        /// What is wrong and what is accepted (never the value of a secret).
        reason: String,
    },
    /// A file a setting names cannot be used.
    #[error("{key} names {path}: {reason}")]
    File {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An untrusted `.env` sets a key that decides where credentials go.
    #[error(
        "{key} may not come from {}: a .env may not say where credentials go (URLs, CA bundles, the secrets backend); export it, or trust the file with DUAL_AUTH_DOTENV=trusted",
        path.display()
    )]
    NotFromDotenv {
        /// The key.
        key: String,
        /// The `.env` file.
        path: PathBuf,
    },
    /// A key a setting gives (a file it names, or a secret) could not be loaded.
    #[error("{key} gives an unusable key")]
    Key {
        /// The setting that named the key.
        key: String,
        /// The cause.
        #[source]
        source: KeyError,
    },
    /// The secret store failed.
    #[error(transparent)]
    Source(#[from] SecretError),
    /// A vendor or secrets backend chosen at run time is not compiled into this build.
    #[error("the {name} {kind} is not compiled in: enable the Cargo feature {feature:?}")]
    NotCompiled {
        /// What kind of thing: `vendor` or `secrets backend`.
        kind: &'static str,
        /// Its name, as configured (`okta`, `vault`).
        name: String,
        /// The Cargo feature that adds it.
        feature: &'static str,
    },
}
