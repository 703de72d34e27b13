//! Settings shared by the configuration tests.
#![allow(dead_code, clippy::unwrap_used)]

use dual_auth::Vendor;
use dual_auth_test_support::key_fixture;

pub(crate) const SECRET: &str = "env-client-secret-0123456789abcdefghijk";

/// A complete configuration for `vendor`, as (key, value) pairs, `DUAL_AUTH_VENDOR` last.
pub(crate) fn base(vendor: Vendor) -> Vec<(String, String)> {
    let app_key = key_fixture("rsa2048-other.pem").display().to_string();
    let pairs: Vec<(&str, String)> = match vendor {
        Vendor::Keycloak => vec![
            ("KEYCLOAK_TOKEN_URL", "https://kc.example.com/realms/corp/protocol/openid-connect/token".into()),
            ("AGENT_CLIENT_ID", "finance-agent".into()),
            ("AGENT_CLIENT_SECRET", SECRET.into()),
        ],
        Vendor::Auth0 => vec![
            ("AUTH0_TOKEN_URL", "https://corp.auth0.com/oauth/token".into()),
            ("AGENT_CLIENT_ID", "m2m-agent".into()),
            ("AGENT_CLIENT_SECRET", SECRET.into()),
            ("API_AUDIENCE", "https://api.example.com/finance".into()),
        ],
        Vendor::Okta => vec![
            ("OKTA_TOKEN_URL", "https://corp.okta.com/oauth2/default/v1/token".into()),
            ("AGENT_CLIENT_ID", "0oa-agent".into()),
            ("AGENT_CLIENT_SECRET", SECRET.into()),
        ],
        _ => vec![
            ("ENTRAID_TOKEN_URL", "https://login.microsoftonline.com/tenant/oauth2/v2.0/token".into()),
            ("AGENT_CLIENT_ID", "11111111-2222-3333-4444-555555555555".into()),
            ("AGENT_CLIENT_SECRET", "entra~secret".into()),
            ("API_SCOPE", "api://finance-api/.default".into()),
            ("APP_PRIVATE_KEY_PATH", app_key),
            ("APP_ID", "web-app".into()),
            ("API_AUDIENCE", "api://finance-api".into()),
        ],
    };
    let mut pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    pairs.push(("DUAL_AUTH_VENDOR".into(), format!("  {}  ", vendor.as_str().to_uppercase())));
    pairs
}
