//! How upstream names keys in GCP, Azure and Vault: lower-cased, `_` to `-`, the prefix
//! added unless already present (`AGENT_CLIENT_SECRET` → `dual-auth-agent-client-secret`).

/// The store's name for `key` with `prefix`.
pub fn store_name(key: &str, prefix: &str) -> String {
    let name = key.to_ascii_lowercase().replace('_', "-");
    if name.starts_with(prefix) { name } else { format!("{prefix}{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(store_name("AGENT_CLIENT_SECRET", "dual-auth-"), "dual-auth-agent-client-secret");
        assert_eq!(store_name("AGENT_CLIENT_SECRET", "dual-auth/"), "dual-auth/agent-client-secret");
        assert_eq!(store_name("DUAL_AUTH_VENDOR", "dual-auth-"), "dual-auth-vendor", "prefix not doubled");
    }
}
