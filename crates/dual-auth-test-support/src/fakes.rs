//! Protocol-faithful fakes of services no emulator exists for here. Each is checked by a
//! test against the vendor's official client, so it cannot drift from the real protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::https::{CannedResponse, RecordedRequest, TestHttpsServer};

/// The project for which the GCP fake answers `PERMISSION_DENIED`.
pub const GCP_FORBIDDEN_PROJECT: &str = "forbidden-project";

/// GCP Secret Manager's REST API, `GET /v1/projects/P/secrets/S/versions/V:access`, on
/// plain HTTP (as the official clients take an emulator endpoint), with the real answers:
/// `{"name", "payload": {"data" (base64), "dataCrc32c" (decimal string)}}`, and
/// `{"error": {"code", "message", "status"}}` with `NOT_FOUND` or `PERMISSION_DENIED`.
pub struct GcpSecretManagerFake {
    server: TestHttpsServer,
    secrets: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl GcpSecretManagerFake {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        let server = TestHttpsServer::start_plain().await;
        let secrets: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let store = Arc::clone(&secrets);
        server.set_handler(move |request| gcp_answer(request, &store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)));
        Self { server, secrets }
    }

    /// The endpoint to give the client (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        self.server.url("")
    }

    /// Stores a secret's latest version.
    pub fn put(&self, project: &str, secret_id: &str, value: &[u8]) {
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("projects/{project}/secrets/{secret_id}"), value.to_vec());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }
}

fn gcp_error(code: u16, status: &str, message: String) -> CannedResponse {
    CannedResponse::json(code, &json!({"error": {"code": code, "message": message, "status": status}}).to_string())
}

fn gcp_answer(request: &RecordedRequest, secrets: &HashMap<String, Vec<u8>>) -> CannedResponse {
    let path = request.target.split('?').next().unwrap_or_default();
    let Some(version_name) = path.strip_prefix("/v1/").and_then(|p| p.strip_suffix(":access")) else {
        return gcp_error(404, "NOT_FOUND", format!("Method not found: {path}"));
    };
    if request.method != "GET" {
        return gcp_error(405, "UNIMPLEMENTED", "Method not allowed".into());
    }
    let parts: Vec<&str> = version_name.split('/').collect();
    let ["projects", project, "secrets", secret, "versions", _version] = parts.as_slice() else {
        return gcp_error(400, "INVALID_ARGUMENT", format!("Invalid resource field value in the request: {version_name}"));
    };
    if *project == GCP_FORBIDDEN_PROJECT {
        return gcp_error(
            403,
            "PERMISSION_DENIED",
            format!("Permission 'secretmanager.versions.access' denied for resource '{version_name}' (or it may not exist)."),
        );
    }
    let secret_name = format!("projects/{project}/secrets/{secret}");
    match secrets.get(&secret_name) {
        Some(data) => CannedResponse::json(
            200,
            &json!({
                "name": format!("{secret_name}/versions/1"),
                "payload": {"data": STANDARD.encode(data), "dataCrc32c": crc32c(data).to_string()},
            })
            .to_string(),
        ),
        None => gcp_error(404, "NOT_FOUND", format!("Secret [{secret_name}] not found or has no versions.")),
    }
}

/// CRC-32C (Castagnoli), as GCP checksums payloads.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }
}
