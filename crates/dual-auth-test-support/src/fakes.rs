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

/// The tenant the Azure fake's authority knows.
pub const AZURE_TENANT: &str = "00000000-0000-0000-0000-0000000000a1";
/// The client id the Azure fake's authority knows.
pub const AZURE_CLIENT_ID: &str = "11111111-2222-3333-4444-5555555555b2";
/// That client's secret.
pub const AZURE_CLIENT_SECRET: &str = "azure~test~client~secret";
/// A secret name the Azure fake's vault refuses (403).
pub const AZURE_FORBIDDEN_SECRET: &str = "dual-auth-forbidden";

#[derive(Default)]
struct AzureState {
    secrets: HashMap<String, String>,
    tokens: std::collections::HashSet<String>,
}

/// Azure Key Vault and its Entra ID authority, as the official clients see them: the vault
/// answers a request without a token with `401` and
/// `WWW-Authenticate: Bearer authorization="{authority}/{tenant}", resource="https://vault.azure.net"`;
/// the authority issues client-credentials tokens for `https://vault.azure.net/.default`;
/// the vault then answers `GET /secrets/{name}?api-version=...` with a secret bundle, or
/// `SecretNotFound`, or `Forbidden`, in the real JSON shapes.
pub struct AzureKeyVaultFake {
    authority: TestHttpsServer,
    vault: TestHttpsServer,
    state: Arc<Mutex<AzureState>>,
}

impl AzureKeyVaultFake {
    /// Starts the authority and the vault on free ports, with the CA's certificate.
    pub async fn start(ca: &crate::https::TestCa) -> Self {
        let authority = TestHttpsServer::start(ca).await;
        let vault = TestHttpsServer::start(ca).await;
        let state: Arc<Mutex<AzureState>> = Arc::default();
        let tokens = Arc::clone(&state);
        let (authority_url, vault_url) = (authority.url(""), vault.url(""));
        let base = authority_url.clone();
        authority.set_handler(move |request| {
            azure_authority(request, &mut tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner), &base)
        });
        let vault_state = Arc::clone(&state);
        vault.set_handler(move |request| {
            azure_vault(request, &vault_state.lock().unwrap_or_else(std::sync::PoisonError::into_inner), &authority_url, &vault_url)
        });
        Self { authority, vault, state }
    }

    /// The authority host (`AZURE_AUTHORITY_HOST`).
    pub fn authority_host(&self) -> String {
        self.authority.url("")
    }

    /// The vault URL (`DUAL_AUTH_AZURE_VAULT_URL`).
    pub fn vault_url(&self) -> String {
        self.vault.url("")
    }

    /// Stores a secret.
    pub fn put(&self, name: &str, value: &str) {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).secrets.insert(name.to_owned(), value.to_owned());
    }

    /// Requests the vault saw.
    pub fn vault_requests(&self) -> Vec<RecordedRequest> {
        self.vault.requests()
    }

    /// Requests the authority saw.
    pub fn authority_requests(&self) -> Vec<RecordedRequest> {
        self.authority.requests()
    }
}

/// The authority: its OpenID configuration (which MSAL-based clients read first) and its
/// token endpoint.
fn azure_authority(request: &RecordedRequest, state: &mut AzureState, base: &str) -> CannedResponse {
    if request.method == "GET" && request.target == format!("/{AZURE_TENANT}/v2.0/.well-known/openid-configuration") {
        let issuer = format!("{base}/{AZURE_TENANT}/v2.0");
        return CannedResponse::json(
            200,
            &json!({
                "token_endpoint": format!("{base}/{AZURE_TENANT}/oauth2/v2.0/token"),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": format!("{base}/{AZURE_TENANT}/discovery/v2.0/keys"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": issuer,
                "authorization_endpoint": format!("{base}/{AZURE_TENANT}/oauth2/v2.0/authorize"),
                "device_authorization_endpoint": format!("{base}/{AZURE_TENANT}/oauth2/v2.0/devicecode"),
                "end_session_endpoint": format!("{base}/{AZURE_TENANT}/oauth2/v2.0/logout"),
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com"
            })
            .to_string(),
        );
    }
    azure_token(request, state)
}

fn azure_token(request: &RecordedRequest, state: &mut AzureState) -> CannedResponse {
    let aad_error = |status: u16, error: &str, code: u32, description: &str| {
        CannedResponse::json(
            status,
            &json!({"error": error, "error_description": format!("AADSTS{code}: {description}"), "error_codes": [code], "timestamp": "2026-11-30 00:00:00Z",
                "trace_id": "00000000-0000-0000-0000-000000000000", "correlation_id": "00000000-0000-0000-0000-000000000000"})
            .to_string(),
        )
    };
    if request.method != "POST" || request.target.split('?').next() != Some(&format!("/{AZURE_TENANT}/oauth2/v2.0/token")) {
        return aad_error(400, "invalid_request", 90002, "Tenant not found.");
    }
    if request.form_value("grant_type").as_deref() != Some("client_credentials") {
        return aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
    }
    if request.form_value("client_id").as_deref() != Some(AZURE_CLIENT_ID)
        || request.form_value("client_secret").as_deref() != Some(AZURE_CLIENT_SECRET)
    {
        return aad_error(401, "invalid_client", 7_000_215, "Invalid client secret provided.");
    }
    if request.form_value("scope").as_deref() != Some("https://vault.azure.net/.default") {
        return aad_error(400, "invalid_scope", 1_002_012, "The provided value for scope is not valid.");
    }
    let token = format!("fake-vault-token-{}", state.tokens.len() + 1);
    state.tokens.insert(token.clone());
    CannedResponse::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}).to_string(),
    )
}

fn azure_vault(request: &RecordedRequest, state: &AzureState, authority_url: &str, vault_url: &str) -> CannedResponse {
    let vault_error = |status: u16, code: &str, message: String| {
        CannedResponse::json(status, &json!({"error": {"code": code, "message": message}}).to_string())
    };
    let challenge = format!("Bearer authorization=\"{authority_url}/{AZURE_TENANT}\", resource=\"https://vault.azure.net\"");
    let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
    if !query.split('&').any(|pair| pair.starts_with("api-version=")) {
        return vault_error(400, "BadParameter", "The request URI contains an invalid API version.".into());
    }
    let token = request.header("authorization").and_then(|v| v.strip_prefix("Bearer "));
    match token {
        None => {
            return vault_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.".into())
                .with_header("WWW-Authenticate", &challenge);
        }
        Some(token) if !state.tokens.contains(token) => {
            return vault_error(401, "Unauthorized", "AKV10032: Invalid issuer.".into()).with_header("WWW-Authenticate", &challenge);
        }
        Some(_) => {}
    }
    let Some(rest) = path.strip_prefix("/secrets/") else { return vault_error(404, "NotFound", "Not Found".into()) };
    let name = rest.split('/').next().unwrap_or_default();
    if name == AZURE_FORBIDDEN_SECRET {
        return CannedResponse::json(
            403,
            &json!({"error": {"code": "Forbidden", "message": "Caller is not authorized to perform action on resource.", "innererror": {"code": "ForbiddenByRbac"}}}).to_string(),
        );
    }
    match state.secrets.get(name) {
        Some(value) => CannedResponse::json(
            200,
            &json!({
                "value": value,
                "id": format!("{vault_url}/secrets/{name}/0123456789abcdef0123456789abcdef"),
                "attributes": {"enabled": true, "created": 1_764_460_800, "updated": 1_764_460_800, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
                "tags": {}
            })
            .to_string(),
        ),
        None => vault_error(404, "SecretNotFound", format!("A secret with (name/id) {name} was not found in this key vault.")),
    }
}

/// An API handler that checks both headers, as an API receiving Entra ID tokens does: a
/// Bearer token is required, and an `X-Act-Assertion` that verifies with `app_public_pem`
/// and names `agent` (`azp`) and `api_audience` (`aud`). Answers `{"agent", "human"}` (the
/// human from the assertion), or 401 saying what failed.
pub fn checking_api(
    app_public_pem: Vec<u8>,
    agent: &'static str,
    api_audience: &'static str,
) -> impl Fn(&RecordedRequest) -> CannedResponse + Send + Sync + 'static {
    move |request| {
        let unauthorized = |why: &str| CannedResponse::json(401, &json!({"error": why}).to_string());
        if request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).is_none() {
            return unauthorized("no bearer token");
        }
        let Some(assertion) = request.header("x-act-assertion") else { return unauthorized("no act assertion") };
        let assertion = crate::jwt::decode(assertion);
        if !assertion.verifies_with_public_key(&app_public_pem) {
            return unauthorized("act assertion signature");
        }
        if assertion.claims["azp"] != agent || assertion.claims["aud"] != api_audience {
            return unauthorized("act assertion not for this agent or API");
        }
        let human = assertion.claims["act"]["sub"].as_str().unwrap_or_default();
        CannedResponse::json(200, &json!({"agent": agent, "human": human}).to_string())
    }
}
