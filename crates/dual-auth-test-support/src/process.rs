//! Servers in other processes (node, moto, OpenBao, redis): started on loopback, waited
//! for, and always stopped, also when a test fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::workspace_root;

/// A child process killed when dropped.
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Spawns `command` and waits until a line on its stdout or stderr contains `ready`
    /// (the lines are passed on to the test's stderr).
    ///
    /// # Panics
    /// When the process cannot start, exits, or is not ready within `timeout`.
    pub fn start(command: Command, ready: &str, timeout: Duration) -> Self {
        Self::start_reporting(command, ready, timeout).0
    }

    /// As [`ServerProcess::start`], and returns the line that said it was ready (a server
    /// that picks its own port says which there).
    ///
    /// # Panics
    /// As [`ServerProcess::start`].
    pub fn start_reporting(mut command: Command, ready: &str, timeout: Duration) -> (Self, String) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let watch = |stream: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<String>, ready: String| {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if line.contains(&ready) {
                        let _ = tx.send(line.clone());
                    }
                }
            });
        };
        watch(Box::new(stdout), tx.clone(), ready.to_owned());
        watch(Box::new(stderr), tx, ready.to_owned());
        let mut server = Self { child };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                return (server, line);
            }
            // A server that exits while starting is reported at once, not after the timeout.
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{command:?} exited while starting: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "{command:?} not ready within {timeout:?}");
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// oidc-provider's entry module, installed by `cargo xtask setup` under `target/it/node`.
///
/// # Panics
/// With instructions, when it is not installed.
pub fn oidc_provider_module() -> PathBuf {
    let path = std::env::var_os("DUAL_AUTH_TEST_OIDC_PROVIDER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/it/node/node_modules/oidc-provider/lib/index.js"));
    assert!(path.exists(), "oidc-provider is not installed at {}: run `cargo xtask setup`", path.display());
    path
}

/// A server binary installed by `cargo xtask setup` in `target/it/servers/bin` (OpenBao's
/// `bao`, moto's `moto_server`).
///
/// # Panics
/// With instructions, when it is not installed.
pub fn server_tool(name: &str) -> PathBuf {
    let path = workspace_root().join("target/it/servers/bin").join(name);
    assert!(path.exists(), "{name} is not installed at {}: run `cargo xtask setup`", path.display());
    path
}

/// The client secret of [`OidcProvider`]'s secret-based clients.
pub const OIDC_PROVIDER_SECRET: &str = "oidc-provider-client-secret-0123456789abcdef";
/// The API audience of [`OidcProvider`]'s access tokens.
pub const OIDC_PROVIDER_API: &str = "https://api.example.com/finance";

/// panva's certified `oidc-provider`, run by node with the workspace's interop script
/// (`interop/oidc_provider.mjs`): Keycloak's paths under `https://localhost:PORT/realms/corp`,
/// clients `secret-agent` (client_secret_jwt), `key-agent` (private_key_jwt with the
/// `rsa2048` fixture, kid `agent-key-1`), `exchange-agent` and `sub-agent` (RFC 8693 token
/// exchange, client_secret_basic), JWT access tokens for `api`. The application's key for
/// exchanged act JWTs is the same `rsa2048` fixture. Stops when dropped.
pub struct OidcProvider {
    /// The node process; `take()` it to stop the server mid-test.
    pub process: Option<ServerProcess>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The CA its TLS certificate chains to.
    pub ca: crate::https::TestCa,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts the server with [`OIDC_PROVIDER_SECRET`] for the secret-based clients and
    /// [`OIDC_PROVIDER_API`] as the audience of its tokens.
    ///
    /// # Panics
    /// When node or oidc-provider is missing, or the server does not start.
    pub fn start() -> Self {
        let (secret, api) = (OIDC_PROVIDER_SECRET, OIDC_PROVIDER_API);
        let ca = crate::https::TestCa::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = ca.write_server_files(dir.path());
        let script = workspace_root().join("crates/dual-auth-test-support/interop/oidc_provider.mjs");
        let public_key = crate::key_fixture("rsa2048-spki.pub.pem");
        // Two signing keys: the first signs from the start, the second after a rotation.
        let issuer_keys: Vec<String> = (1..=2)
            .map(|n| {
                let key = openssl::rsa::Rsa::generate(2048).and_then(openssl::pkey::PKey::from_rsa).expect("RSA key");
                let path = dir.path().join(format!("issuer-key-{n}.pem"));
                std::fs::write(&path, key.private_key_to_pem_pkcs8().expect("PEM")).expect("write key");
                path.display().to_string()
            })
            .collect();
        let mut command = Command::new("node");
        command
            .arg(script)
            .env("OIDC_PROVIDER_MODULE", oidc_provider_module())
            .env("TLS_CERT", cert)
            .env("TLS_KEY", key)
            .env("ISSUER_KEYS", issuer_keys.join(":"))
            .env("CLIENT_SECRET", secret)
            .env("CLIENT_PUBLIC_KEY", &public_key)
            .env("APP_PUBLIC_KEY", &public_key)
            .env("API_AUDIENCE", api);
        // The server binds a port of its own choosing and says which: no race for a free port.
        let (process, line) = ServerProcess::start_reporting(command, "READY", Duration::from_secs(60));
        let port = line.trim().rsplit(' ').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { process: Some(process), port, ca, _dir: dir }
    }

    /// `https://localhost:PORT/realms/corp{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}/realms/corp{path}", self.port)
    }
}
