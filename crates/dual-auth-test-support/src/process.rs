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
    pub fn start(mut command: Command, ready: &str, timeout: Duration) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let watch = |stream: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<()>, ready: String| {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if line.contains(&ready) {
                        let _ = tx.send(());
                    }
                }
            });
        };
        watch(Box::new(stdout), tx.clone(), ready.to_owned());
        watch(Box::new(stderr), tx, ready.to_owned());
        let mut server = Self { child };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                return server;
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
