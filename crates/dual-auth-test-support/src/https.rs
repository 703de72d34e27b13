//! A strict local HTTPS endpoint for tests: a throw-away CA, a server on 127.0.0.1 that
//! records every request exactly as it arrived and answers from a script.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A throw-away CA and a `localhost`/`127.0.0.1` server certificate it signed.
pub struct TestCa {
    dir: tempfile::TempDir,
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
    leaf_cert_pem: String,
    leaf_key_pem: String,
}

impl TestCa {
    /// A new CA and server certificate; the CA's PEM is also written to a file.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, "dual-auth test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("leaf params");
        leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf certificate");

        let chain = vec![CertificateDer::from(leaf_cert.der().to_vec())];
        let key = PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).expect("leaf key PEM");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_pem = ca_cert.pem();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).expect("write CA");
        Self { dir, ca_pem, server_config: Arc::new(server_config), leaf_cert_pem: leaf_cert.pem(), leaf_key_pem: leaf_key.serialize_pem() }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding the CA certificate (for `REQUESTS_CA_BUNDLE`, `DUAL_AUTH_CA_BUNDLE`, ...).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Writes the server certificate and key (for servers in other processes); returns their paths.
    pub fn write_server_files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("server.pem");
        let key = dir.join("server-key.pem");
        std::fs::write(&cert, &self.leaf_cert_pem).expect("write cert");
        std::fs::write(&key, &self.leaf_key_pem).expect("write key");
        (cert, key)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    /// One form field's value.
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct CannedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl CannedResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Self { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_owned(), delay: Duration::ZERO }
    }

    /// A plain-text (or HTML) answer.
    pub fn text(status: u16, body: &str) -> Self {
        Self { status, headers: vec![("Content-Type".into(), "text/html".into())], body: body.to_owned(), delay: Duration::ZERO }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long before answering (for timeouts).
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Computes an answer from the request (a checking API, for example).
pub type Handler = Arc<dyn Fn(&RecordedRequest) -> CannedResponse + Send + Sync>;

#[derive(Default)]
struct Script {
    queue: VecDeque<CannedResponse>,
    handler: Option<Handler>,
    fallback: Option<CannedResponse>,
    requests: Vec<RecordedRequest>,
}

/// An HTTPS server on 127.0.0.1 that records requests and answers from a script: queued
/// answers first, then the handler, then the fallback (404 if none). Stops when dropped.
/// The handler runs under the script's lock: it must not call the server's methods.
pub struct TestHttpsServer {
    addr: SocketAddr,
    scheme: &'static str,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestHttpsServer {
    /// Starts a server with the CA's certificate on a free port.
    pub async fn start(ca: &TestCa) -> Self {
        Self::spawn(Some(TlsAcceptor::from(Arc::clone(&ca.server_config)))).await
    }

    /// Starts a plain-HTTP server (a fake of a service whose client takes an `http://`
    /// emulator endpoint on loopback).
    pub async fn start_plain() -> Self {
        Self::spawn(None).await
    }

    async fn spawn(acceptor: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = Arc::clone(&script);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                let script = Arc::clone(&shared);
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                serve(tls, &script).await;
                            }
                        }
                        None => serve(stream, &script).await,
                    }
                });
            }
        });
        Self { addr, scheme, script, task }
    }

    /// `https://localhost:PORT{path}` (`http://127.0.0.1:PORT{path}` for a plain server).
    pub fn url(&self, path: &str) -> String {
        if self.scheme == "https" {
            format!("https://localhost:{}{path}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}{path}", self.addr.port())
        }
    }

    /// Queues an answer for the next request.
    pub fn push(&self, response: CannedResponse) {
        self.lock().queue.push_back(response);
    }

    /// Answers every request the queue does not by computing it from the request.
    pub fn set_handler(&self, handler: impl Fn(&RecordedRequest) -> CannedResponse + Send + Sync + 'static) {
        self.lock().handler = Some(Arc::new(handler));
    }

    /// Answers every request the queue and handler do not.
    pub fn set_fallback(&self, response: CannedResponse) {
        self.lock().fallback = Some(response);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads one request, records it, answers it.
async fn serve<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut stream: S, script: &Mutex<Script>) {
    let Some(request) = read_request(&mut stream).await else { return };
    let response = {
        let mut s = script.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let response = s
            .queue
            .pop_front()
            .or_else(|| s.handler.as_ref().map(|handler| handler(&request)))
            .or_else(|| s.fallback.clone())
            .unwrap_or_else(|| CannedResponse::text(404, "no scripted answer"));
        s.requests.push(request);
        response
    };
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    let _ = stream.write_all(&render(&response)).await;
    let _ = stream.shutdown().await;
}

impl Drop for TestHttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    let length: usize = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    if length > MAX_BODY {
        return None;
    }
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RecordedRequest { method, target, headers, body })
}

fn render(response: &CannedResponse) -> Vec<u8> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body.len()));
    out.push_str(&response.body);
    out.into_bytes()
}
