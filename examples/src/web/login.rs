//! The relying party: OpenID Connect authorization code flow with PKCE (S256), `state`
//! and `nonce` (OIDC Core §3.1; RFC 7636; RFC 9700 §2.1.1), against the provider's
//! discovery document. The code exchange goes through core's token endpoint (HTTPS only,
//! bounded, typed OAuth errors, no retry: a code is single use); the ID token through
//! `dual-auth-verify` ([`Verifier::verify_id_token`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dual_auth::ErrorChain;
use dual_auth::http::{HttpsUrl, read_body};
use dual_auth::prelude::*;
use dual_auth::token_endpoint::{RetryPolicy, TokenEndpoint, field};
use dual_auth::verify::{IdToken, IssuerPolicy, Verifier};
use serde_json::Value;

/// How long a started sign-in may take to come back.
const LOGIN_WINDOW: Duration = Duration::from_secs(600);
/// The most sign-ins pending at once (older ones are dropped first).
const MAX_PENDING: usize = 10_000;
/// The largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// Where the person signs in.
#[derive(Debug, Clone)]
pub struct LoginProvider {
    /// The issuer, exactly as its tokens name it (a Keycloak realm URL).
    pub issuer: String,
    /// The web application's client id there.
    pub client_id: String,
    /// Its client secret (sent as `client_secret_post`).
    pub client_secret: SecretString,
    /// The name the pages use ("Keycloak", "the development provider").
    pub display_name: String,
}

/// A sign-in this application started: what the callback must match.
struct Pending {
    nonce: String,
    verifier: SecretString,
    return_to: String,
    /// The value of the browser's sign-in cookie: the callback must come from the browser
    /// that started it (RFC 9700 §4.7, login CSRF).
    browser: String,
    started: Instant,
    used: bool,
}

/// Why a callback is refused: each with the words the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// No sign-in with this `state` was started here (a forged or mistyped link).
    UnknownState,
    /// The sign-in was started in another browser (its cookie is not this one's).
    OtherBrowser,
    /// This sign-in response was already used: a replayed code.
    Replayed,
    /// The sign-in took longer than the window.
    Expired,
    /// The response names another issuer (RFC 9207: a mix-up).
    WrongIssuer,
    /// The identity provider answered with an error instead of a code.
    ProviderError(String),
    /// The identity provider refused to exchange the code.
    ExchangeRefused(String),
    /// The ID token did not verify.
    IdToken(String),
    /// The response has no code.
    NoCode,
}

impl CallbackRefusal {
    /// The sentence the page shows (untrusted parts escaped by the page).
    pub fn message(&self) -> String {
        match self {
            Self::UnknownState => {
                "this sign-in response does not match a sign-in started in this browser (unknown state): it may be forged".into()
            }
            Self::OtherBrowser => "this sign-in was started in another browser (its state belongs to another browser's sign-in)".into(),
            Self::Replayed => "this sign-in response was already used: an authorization code is redeemed once only".into(),
            Self::Expired => "this sign-in took longer than 10 minutes".into(),
            Self::WrongIssuer => "the sign-in response names another identity provider (iss): a mix-up attack".into(),
            Self::ProviderError(text) => format!("the identity provider refused the sign-in: {text}"),
            Self::ExchangeRefused(text) => format!("the identity provider refused to redeem the code: {text}"),
            Self::IdToken(text) => format!("the ID token was refused: {text}"),
            Self::NoCode => "the sign-in response carries no authorization code".into(),
        }
    }
}

/// Who signed in, with the tokens the session keeps.
pub(crate) struct SignedIn {
    /// The verified ID token.
    pub id_token: IdToken,
    /// The access token: the evidence the agent exchanges (a secret).
    pub access_token: SecretString,
    /// Where to go next (a path on this site).
    pub return_to: String,
}

/// The relying party, once discovery is done.
pub(crate) struct RelyingParty {
    provider: LoginProvider,
    redirect_uri: String,
    authorization_endpoint: url::Url,
    token_endpoint: TokenEndpoint,
    id_tokens: Verifier,
    pending: Mutex<HashMap<String, Pending>>,
}

/// A fresh random value: 32 bytes from the OS, base64url (43 characters, so also a valid
/// PKCE verifier, RFC 7636 §4.1).
pub(crate) fn random() -> Result<String, String> {
    dual_auth::new_jti().map_err(|e| format!("randomness: {e}"))
}

impl RelyingParty {
    /// Reads the provider's discovery document (OIDC Discovery §4: its `issuer` must be the
    /// configured one) and prepares the code exchange and the ID-token verifier.
    pub(crate) async fn discover(provider: LoginProvider, redirect_uri: String, http: &HttpSettings) -> Result<Self, String> {
        let client = http.build_client().map_err(|e| e.to_string())?;
        let url = HttpsUrl::parse(&format!("{}/.well-known/openid-configuration", provider.issuer.trim_end_matches('/')))
            .map_err(|e| format!("the issuer's discovery URL {e}"))?;
        let response = client.get(url.as_url().clone()).send().await.map_err(|e| format!("discovery at {url}: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("discovery at {url}: HTTP {}", response.status()));
        }
        let body = read_body(response, MAX_DISCOVERY_BYTES).await.map_err(|e| format!("discovery at {url}: {}", ErrorChain(&e)))?;
        let document: Value = serde_json::from_slice(&body).map_err(|e| format!("discovery at {url}: not JSON: {e}"))?;
        let text = |name: &str| document[name].as_str().map(str::to_owned).ok_or_else(|| format!("discovery at {url}: no {name}"));
        if text("issuer")? != provider.issuer {
            return Err(format!("discovery at {url}: issuer {:?} is not the configured {:?}", text("issuer")?, provider.issuer));
        }
        let authorization_endpoint = HttpsUrl::parse(&text("authorization_endpoint")?)
            .map_err(|e| format!("discovery at {url}: authorization_endpoint {e}"))?
            .into_url();
        let token_endpoint =
            TokenEndpoint::new(Vendor::Keycloak, &text("token_endpoint")?, client, RetryPolicy::none()).map_err(|e| e.to_string())?;
        let policy = IssuerPolicy::new(&provider.issuer, &provider.client_id).jwks_url(text("jwks_uri")?);
        let id_tokens = Verifier::builder().issuer(policy).http(http.clone()).build().map_err(|e| e.to_string())?;
        Ok(Self { provider, redirect_uri, authorization_endpoint, token_endpoint, id_tokens, pending: Mutex::new(HashMap::new()) })
    }

    /// The provider's settings.
    pub(crate) fn provider(&self) -> &LoginProvider {
        &self.provider
    }

    /// Starts a sign-in for the browser whose sign-in cookie is `browser`: the
    /// authorization request URL (code flow, S256 challenge, fresh `state` and `nonce`).
    pub(crate) fn start(&self, browser: &str, return_to: String) -> Result<url::Url, String> {
        let (state, nonce, verifier) = (random()?, random()?, random()?);
        let challenge = dual_auth::pkce_s256_challenge(&verifier);
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.provider.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|_, p| p.started.elapsed() < LOGIN_WINDOW);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        let record = Pending {
            nonce,
            verifier: SecretString::from(verifier),
            return_to,
            browser: browser.to_owned(),
            started: Instant::now(),
            used: false,
        };
        pending.insert(state, record);
        Ok(url)
    }

    /// Finishes a sign-in from the callback's query, for the browser whose sign-in cookie
    /// is `browser` (`None`: it has none). The state is used up whatever happens next.
    pub(crate) async fn finish(&self, query: &HashMap<String, String>, browser: Option<&str>) -> Result<SignedIn, CallbackRefusal> {
        let state = query.get("state").ok_or(CallbackRefusal::UnknownState)?;
        let (nonce, verifier, return_to) = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let record = pending.get_mut(state).ok_or(CallbackRefusal::UnknownState)?;
            if record.started.elapsed() >= LOGIN_WINDOW {
                return Err(CallbackRefusal::Expired);
            }
            if !browser.is_some_and(|b| constant_time_eq(b, &record.browser)) {
                return Err(CallbackRefusal::OtherBrowser);
            }
            if record.used {
                return Err(CallbackRefusal::Replayed);
            }
            record.used = true;
            (record.nonce.clone(), record.verifier.clone(), record.return_to.clone())
        };
        // RFC 9207: when the provider names itself, it must be the one asked.
        if query.get("iss").is_some_and(|iss| *iss != self.provider.issuer) {
            return Err(CallbackRefusal::WrongIssuer);
        }
        if let Some(error) = query.get("error") {
            let description = query.get("error_description").map(|d| format!(" ({d})")).unwrap_or_default();
            return Err(CallbackRefusal::ProviderError(format!("{error}{description}")));
        }
        let code = query.get("code").filter(|c| !c.is_empty()).ok_or(CallbackRefusal::NoCode)?;
        let form = || {
            Ok(vec![
                field("grant_type", "authorization_code"),
                field("code", code.as_str()),
                field("redirect_uri", self.redirect_uri.as_str()),
                field("code_verifier", verifier.expose_secret()),
                field("client_id", self.provider.client_id.as_str()),
                ("client_secret", self.provider.client_secret.clone()),
            ])
        };
        let grant = self.token_endpoint.request_with(RetryPolicy::none(), form).await.map_err(|e| {
            CallbackRefusal::ExchangeRefused(match (e.oauth_error(), e.oauth_description()) {
                (Some(error), Some(description)) => format!("{error} ({description})"),
                (Some(error), None) => error.to_owned(),
                _ => e.to_string(),
            })
        })?;
        let id_token =
            grant.id_token.ok_or_else(|| CallbackRefusal::IdToken("the token response has no id_token (was openid asked?)".into()))?;
        let id_token =
            self.id_tokens.verify_id_token(id_token.expose_secret(), &nonce).await.map_err(|e| CallbackRefusal::IdToken(e.to_string()))?;
        Ok(SignedIn { id_token, access_token: grant.access_token, return_to })
    }
}

/// Compares two secrets in time that depends on their length only.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A return address is a path on this site: `/` then anything but a second `/` or `\`
/// (which browsers read as another host), no control characters, at most 512 bytes.
pub(crate) fn safe_return_path(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    if text.len() > 512 {
        return Err("the return address is longer than 512 characters");
    }
    if bytes.first() != Some(&b'/') || matches!(bytes.get(1), Some(b'/' | b'\\')) {
        return Err(
            "the return address must be a path on this site, such as /reports: an absolute or //host address would send you to another site",
        );
    }
    if text.chars().any(|c| c.is_control() || c == '\\') {
        return Err("the return address has control characters or backslashes");
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_return_addresses() {
        for good in ["/", "/reports", "/reports?q=1#top"] {
            assert_eq!(safe_return_path(good).as_deref(), Ok(good));
        }
        for bad in ["https://evil.example/", "//evil.example", "/\\evil.example", "evil", "", "/a\\b", "/\u{7}", "javascript:alert(1)"] {
            assert!(safe_return_path(bad).is_err(), "{bad:?}");
        }
        assert!(safe_return_path(&format!("/{}", "a".repeat(512))).is_err());
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
