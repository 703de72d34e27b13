//! Real servers started for a test and stopped with it.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::https::closed_port;
use crate::process::{ServerProcess, server_tool};

/// An OpenBao dev server (the Vault API) over TLS with root token `root`.
pub struct Bao {
    _process: ServerProcess,
    _dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    pub address: String,
    /// Its CA certificate file.
    pub ca_path: String,
    http: reqwest::Client,
}

impl Bao {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = closed_port();
        let mut command = Command::new(server_tool("bao"));
        command
            // Dev mode writes ~/.vault-token: a home of its own keeps parallel servers from
            // racing on that file, and keeps the user's real home untouched.
            .env("HOME", dir.path())
            .args(["server", "-dev", "-dev-root-token-id=root", "-dev-tls"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        let process = ServerProcess::start(command, "Development mode", Duration::from_secs(30));
        let ca_path = dir.path().join("vault-ca.pem");
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).expect("CA")).expect("CA PEM");
        let http = reqwest::Client::builder().tls_certs_merge([ca]).build().expect("client");
        Self { _process: process, ca_path: ca_path.display().to_string(), _dir: dir, address: format!("https://127.0.0.1:{port}"), http }
    }

    /// Calls the Vault API as root; panics unless it succeeds.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        for attempt in 0..50 {
            let mut request = self.http.request(method.clone(), format!("{}/v1/{path}", self.address)).header("X-Vault-Token", "root");
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.expect("body");
                    assert!(status.is_success(), "{method} {path}: {status} {text}");
                    return if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") };
                }
                Err(_) if attempt < 49 => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("OpenBao not reachable: {e}"),
            }
        }
        unreachable!()
    }

    /// Writes `{"value": value}` at `secret/data/{path}` (KV v2).
    pub async fn put_kv2(&self, path: &str, value: &str) {
        self.api(reqwest::Method::POST, &format!("secret/data/{path}"), Some(serde_json::json!({"data": {"value": value}}))).await;
    }

    /// `VAULT_ADDR` and `VAULT_CACERT` for this server, plus `extra`.
    pub fn env_pairs(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs = vec![("VAULT_ADDR".to_owned(), self.address.clone()), ("VAULT_CACERT".to_owned(), self.ca_path.clone())];
        pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        pairs
    }
}

/// A moto server (AWS APIs, Secrets Manager among them) over TLS with the test CA.
pub struct Moto {
    _process: ServerProcess,
    _dir: tempfile::TempDir,
    /// `https://localhost:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts one on a free port, serving the CA's `localhost` certificate.
    pub fn start(ca: &crate::https::TestCa) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = ca.write_server_files(dir.path());
        let port = closed_port();
        let mut command = Command::new(server_tool("moto_server"));
        command.args(["-H", "127.0.0.1", "-p", &port.to_string(), "-c"]).arg(cert).arg("-k").arg(key);
        let process = ServerProcess::start(command, "Running on", Duration::from_secs(60));
        Self { _process: process, _dir: dir, endpoint: format!("https://localhost:{port}") }
    }

    /// Creates the secret `name` with `value` through moto's Secrets Manager API (AWS JSON
    /// 1.1). The signature is not checked, but a SigV4-shaped `Authorization` header is what
    /// routes the call to Secrets Manager.
    pub async fn create_secret(&self, ca: &crate::https::TestCa, name: &str, value: &str) {
        let http = reqwest::Client::builder()
            .tls_certs_merge([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).expect("CA PEM")])
            .build()
            .expect("client");
        let response = http
            .post(format!("{}/", self.endpoint))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", "secretsmanager.CreateSecret")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00",
            )
            .body(serde_json::json!({"Name": name, "SecretString": value}).to_string())
            .send()
            .await
            .expect("moto CreateSecret");
        let status = response.status();
        assert!(status.is_success(), "CreateSecret {name}: {status} {}", response.text().await.unwrap_or_default());
    }

    /// The settings that point the aws backend at this server (dummy credentials, the CA).
    pub fn env_pairs(&self, ca: &crate::https::TestCa, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("AWS_ENDPOINT_URL".to_owned(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
            ("DUAL_AUTH_CA_BUNDLE".to_owned(), ca.ca_path().display().to_string()),
        ];
        pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        pairs
    }
}

/// A `redis-server` on loopback that a test can stop and start again on the same port.
pub struct Redis {
    process: Option<ServerProcess>,
    /// Its port.
    pub port: u16,
    password: Option<String>,
}

impl Redis {
    /// Starts one on a free port (`redis-server` from the PATH; `.ci/run` installs it).
    pub fn start() -> Self {
        let port = closed_port();
        Self { process: Some(Self::spawn(port, None)), port, password: None }
    }

    /// Starts one that requires `password`.
    pub fn start_with_password(password: &str) -> Self {
        let port = closed_port();
        Self { process: Some(Self::spawn(port, Some(password))), port, password: Some(password.to_owned()) }
    }

    fn spawn(port: u16, password: Option<&str>) -> ServerProcess {
        let mut command = Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        ServerProcess::start(command, "Ready to accept connections", Duration::from_secs(30))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (its data is gone).
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.process = Some(Self::spawn(self.port, self.password.as_deref()));
    }
}
