//! OAuth 2.0 Protected Resource Metadata (RFC 9728) and the `WWW-Authenticate` challenges
//! that point at it: one definition for the API that writes them (`dual-auth-verify`'s MCP
//! layer) and the agent that reads them (`dual-auth-api`'s MCP client).
//!
//! ```
//! use dual_auth_core::protected_resource::{canonical_resource, metadata_url, parse_challenges};
//!
//! let resource = canonical_resource("https://MCP.example.com/mcp")?;
//! assert_eq!(resource.as_str(), "https://mcp.example.com/mcp");
//! assert_eq!(metadata_url(&resource).as_str(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
//!
//! let challenges = parse_challenges(r#"Bearer error="insufficient_scope", scope="files.read files.write""#);
//! assert_eq!(challenges[0].param("scope"), Some("files.read files.write"));
//! # Ok::<(), dual_auth_core::protected_resource::ProtectedResourceError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::http::{HttpsUrl, HttpsUrlError};
use crate::text::truncate_untrusted;

/// The well-known path prefix of RFC 9728 §3: the metadata of `https://host/path` is at
/// `https://host/.well-known/oauth-protected-resource/path`.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The largest metadata document an agent reads.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// The longest `WWW-Authenticate` value parsed; a longer one yields no challenge.
pub const MAX_CHALLENGE_BYTES: usize = 8 * 1024;

/// Why a resource identifier, a metadata document or a challenge is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectedResourceError {
    /// The resource identifier is not an absolute `https://` URL.
    #[error("the resource identifier is not an https URL")]
    NotHttps(#[source] HttpsUrlError),
    /// The resource identifier has a query or a fragment (RFC 8707 §2: a fragment must not
    /// be there; a query makes the identifier ambiguous, so it is refused too).
    #[error("the resource identifier {value:?} has a query or a fragment: give the server's URL without them")]
    NotCanonical {
        /// The identifier, cut and escaped, without its query and fragment.
        value: String,
    },
    /// The metadata document is not the JSON object RFC 9728 §2 describes.
    #[error("the protected resource metadata is invalid: {reason}")]
    InvalidMetadata {
        /// What is wrong.
        reason: String,
    },
    /// The metadata names another resource than the one asked about (RFC 9728 §3.3: the
    /// client must not use it).
    #[error("the protected resource metadata is for {advertised:?}, not {expected:?}")]
    ResourceMismatch {
        /// The resource the client asked about.
        expected: String,
        /// The resource the document names, cut and escaped.
        advertised: String,
    },
}

/// The canonical identifier of a protected resource (RFC 8707 §2, and the MCP
/// authorization specification's "canonical server URI"): an `https://` URL with a host,
/// scheme and host lower-cased, no credentials, query or fragment.
///
/// # Errors
/// [`ProtectedResourceError::NotHttps`] or [`ProtectedResourceError::NotCanonical`].
pub fn canonical_resource(value: &str) -> Result<HttpsUrl, ProtectedResourceError> {
    let url = HttpsUrl::parse(value).map_err(ProtectedResourceError::NotHttps)?;
    canonical(url)
}

/// As [`canonical_resource`], for a URL already checked.
///
/// # Errors
/// [`ProtectedResourceError::NotCanonical`] for a query or a fragment.
pub fn canonical(url: HttpsUrl) -> Result<HttpsUrl, ProtectedResourceError> {
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ProtectedResourceError::NotCanonical { value: url.for_logs() });
    }
    Ok(url)
}

/// The identifier of `resource` as written in tokens (`aud`), requests (RFC 8707
/// `resource`) and metadata: the URL, except that a resource at a host's root has no
/// trailing `/` (`https://mcp.example.com`), the form the MCP specification recommends.
pub fn resource_identifier(resource: &HttpsUrl) -> &str {
    let text = resource.as_str();
    if resource.path() == "/" { text.strip_suffix('/').unwrap_or(text) } else { text }
}

/// Where the metadata of `resource` is served (RFC 9728 §3.1): the well-known path
/// inserted between the host and the resource's path, a lone `/` path dropped.
pub fn metadata_url(resource: &HttpsUrl) -> HttpsUrl {
    let mut url = resource.as_url().clone();
    url.set_path(&metadata_path(resource));
    // Only the path changed: the scheme, host and absence of credentials still hold.
    HttpsUrl::from_url(url).unwrap_or_else(|_| resource.clone())
}

/// The path part of [`metadata_url`], which the resource server routes.
pub fn metadata_path(resource: &HttpsUrl) -> String {
    match resource.path() {
        "" | "/" => WELL_KNOWN_PATH.to_owned(),
        path => format!("{WELL_KNOWN_PATH}{path}"),
    }
}

/// An RFC 9728 §2 metadata document. Members this workspace does not use are ignored when
/// read and not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// `resource`: the resource's identifier (required).
    pub resource: String,
    /// `authorization_servers`: issuer identifiers of the authorization servers that issue
    /// tokens for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// `scopes_supported`: the scopes a client may ask for to reach it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// `bearer_methods_supported`: how it takes a token (`header` only, here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// `resource_name`: a name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// `resource_documentation`: a page for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// `dpop_signing_alg_values_supported`: the DPoP proof algorithms it accepts (RFC 9449).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// `dpop_bound_access_tokens_required`: whether it takes DPoP-bound tokens only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens_required: bool,
}

impl ProtectedResourceMetadata {
    /// A document for `resource`, taking tokens in the `Authorization` header.
    pub fn new(resource: &HttpsUrl) -> Self {
        Self {
            resource: resource_identifier(resource).to_owned(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: None,
            resource_documentation: None,
            dpop_signing_alg_values_supported: Vec::new(),
            dpop_bound_access_tokens_required: false,
        }
    }

    /// Reads a document an agent fetched for `expected` and checks that it is about it
    /// (RFC 9728 §3.3) and names at least one authorization server.
    ///
    /// # Errors
    /// [`ProtectedResourceError::InvalidMetadata`] for a body that is too large, not a JSON
    /// object with `resource`, or without authorization servers;
    /// [`ProtectedResourceError::ResourceMismatch`] for another resource's document.
    pub fn parse_for(body: &[u8], expected: &HttpsUrl) -> Result<Self, ProtectedResourceError> {
        let invalid = |reason: String| ProtectedResourceError::InvalidMetadata { reason };
        if body.len() > MAX_METADATA_BYTES {
            return Err(invalid(format!("it is larger than {MAX_METADATA_BYTES} bytes")));
        }
        let metadata: Self = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("not the JSON object of RFC 9728 §2 ({})", truncate_untrusted(&e.to_string(), 200))))?;
        let advertised = canonical_resource(&metadata.resource).map_err(|e| invalid(format!("its resource: {e}")))?;
        if advertised != *expected {
            return Err(ProtectedResourceError::ResourceMismatch {
                expected: resource_identifier(expected).to_owned(),
                advertised: truncate_untrusted(&metadata.resource, 200),
            });
        }
        if metadata.authorization_servers.is_empty() {
            return Err(invalid("it names no authorization server".into()));
        }
        Ok(metadata)
    }
}

/// One challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1): a scheme and its
/// parameters, names lower-cased, values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The scheme as sent (`Bearer`, `DPoP`); compare with [`Challenge::is`].
    pub scheme: String,
    /// The parameters in order; a token68 is kept with an empty name.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether the scheme is `scheme` (case-insensitive, as RFC 9110 §11.1 says).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `scope`, split on spaces (RFC 6750 §3).
    pub fn scopes(&self) -> Vec<String> {
        self.param("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
    }
}

/// Parses a `WWW-Authenticate` value into its challenges. Malformed input yields what could
/// be read up to the fault, and a value over [`MAX_CHALLENGE_BYTES`] yields none: a
/// challenge is advice, and an agent that finds none stops as if there were none.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    if value.len() > MAX_CHALLENGE_BYTES {
        return Vec::new();
    }
    let mut lexer = Lexer { rest: value };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        lexer.skip_separators();
        let Some(word) = lexer.token() else { break };
        lexer.skip_spaces();
        if lexer.peek() == Some('=') && !challenges.is_empty() {
            // `name=value` of the current challenge.
            lexer.bump();
            lexer.skip_spaces();
            let Some(value) = lexer.value() else { break };
            if let Some(current) = challenges.last_mut() {
                current.params.push((word.to_ascii_lowercase(), value));
            }
        } else {
            challenges.push(Challenge { scheme: word.to_owned(), params: Vec::new() });
        }
    }
    challenges
}

/// The first challenge with `scheme`, from every `WWW-Authenticate` value given.
pub fn find_challenge<'a>(values: impl IntoIterator<Item = &'a str>, scheme: &str) -> Option<Challenge> {
    values.into_iter().flat_map(parse_challenges).find(|c| c.is(scheme))
}

struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) {
        let mut chars = self.rest.chars();
        chars.next();
        self.rest = chars.as_str();
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn skip_separators(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', ',']);
    }

    /// An RFC 9110 token, or a token68 (which may end in `=` padding, taken when no value
    /// follows).
    fn token(&mut self) -> Option<&'a str> {
        let end = self.rest.find(|c: char| !is_token_char(c)).unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(token)
    }

    fn value(&mut self) -> Option<String> {
        if self.peek() != Some('"') {
            return self.token().map(str::to_owned);
        }
        self.bump();
        let mut value = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Some(value);
                }
                '\\' => value.push(chars.next()?.1),
                c => value.push(c),
            }
        }
        None
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(value: &str) -> HttpsUrl {
        canonical_resource(value).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn the_canonical_identifier_has_no_query_or_fragment() {
        assert_eq!(url("HTTPS://Mcp.Example.COM:443/mcp").as_str(), "https://mcp.example.com/mcp");
        assert!(matches!(canonical_resource("https://mcp.example.com/mcp#x"), Err(ProtectedResourceError::NotCanonical { .. })));
        let err = canonical_resource("https://mcp.example.com/mcp?token=s3cret").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(matches!(canonical_resource("http://mcp.example.com/mcp"), Err(ProtectedResourceError::NotHttps(_))));
    }

    #[test]
    fn a_root_resource_is_named_without_its_trailing_slash() {
        assert_eq!(resource_identifier(&url("https://mcp.example.com")), "https://mcp.example.com");
        assert_eq!(resource_identifier(&url("https://mcp.example.com/")), "https://mcp.example.com");
        assert_eq!(resource_identifier(&url("https://mcp.example.com/mcp/")), "https://mcp.example.com/mcp/");
        let root = url("https://mcp.example.com");
        assert_eq!(ProtectedResourceMetadata::new(&root).resource, "https://mcp.example.com");
        let body = br#"{"resource":"https://mcp.example.com","authorization_servers":["https://idp.example.com/"]}"#;
        assert!(ProtectedResourceMetadata::parse_for(body, &root).is_ok());
    }

    #[test]
    fn metadata_sits_between_the_host_and_the_path() {
        assert_eq!(metadata_url(&url("https://a.example/")).as_str(), "https://a.example/.well-known/oauth-protected-resource");
        assert_eq!(
            metadata_url(&url("https://a.example:8443/t/mcp")).as_str(),
            "https://a.example:8443/.well-known/oauth-protected-resource/t/mcp"
        );
        assert_eq!(metadata_path(&url("https://a.example/mcp")), "/.well-known/oauth-protected-resource/mcp");
    }

    #[test]
    fn a_document_is_written_and_read_member_by_member() {
        let resource = url("https://mcp.example.com/mcp");
        let mut metadata = ProtectedResourceMetadata::new(&resource);
        metadata.authorization_servers = vec!["https://idp.example.com/".into()];
        metadata.scopes_supported = vec!["tools.read".into()];
        let json = serde_json::to_value(&metadata).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://idp.example.com/"],
                "scopes_supported": ["tools.read"],
                "bearer_methods_supported": ["header"],
            })
        );
        let read = ProtectedResourceMetadata::parse_for(json.to_string().as_bytes(), &resource);
        assert_eq!(read, Ok(metadata));
    }

    #[test]
    fn another_resources_document_is_refused() {
        let body = br#"{"resource":"https://evil.example/mcp","authorization_servers":["https://idp.example.com/"]}"#;
        let err = ProtectedResourceMetadata::parse_for(body, &url("https://mcp.example.com/mcp")).unwrap_err();
        assert_eq!(
            err,
            ProtectedResourceError::ResourceMismatch {
                expected: "https://mcp.example.com/mcp".into(),
                advertised: "https://evil.example/mcp".into()
            }
        );
        let none = br#"{"resource":"https://mcp.example.com/mcp"}"#;
        let err = ProtectedResourceMetadata::parse_for(none, &url("https://mcp.example.com/mcp")).unwrap_err();
        assert_eq!(err.to_string(), "the protected resource metadata is invalid: it names no authorization server");
        let err = ProtectedResourceMetadata::parse_for(b"[1]", &url("https://mcp.example.com/mcp")).unwrap_err();
        assert!(matches!(err, ProtectedResourceError::InvalidMetadata { .. }), "{err:?}");
    }

    #[test]
    fn challenges_are_read_with_their_parameters() {
        let value = r#"DPoP algs="ES256 RS256", Bearer realm="mcp", error="insufficient_scope", scope="a b", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp""#;
        let challenges = parse_challenges(value);
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].is("dpop"));
        assert_eq!(challenges[0].param("ALGS"), Some("ES256 RS256"));
        let bearer = find_challenge([value], "bearer").unwrap_or_else(|| unreachable!());
        assert_eq!(bearer.param("realm"), Some("mcp"));
        assert_eq!(bearer.param("error"), Some("insufficient_scope"));
        assert_eq!(bearer.scopes(), vec!["a", "b"]);
        assert_eq!(bearer.param("resource_metadata"), Some("https://h/.well-known/oauth-protected-resource/mcp"));
    }

    #[test]
    fn odd_challenges_yield_what_could_be_read() {
        assert_eq!(parse_challenges("Bearer"), vec![Challenge { scheme: "Bearer".into(), params: vec![] }]);
        assert_eq!(
            parse_challenges(r#"Bearer error=invalid_token, x="a\"b""#)[0].params,
            vec![("error".into(), "invalid_token".into()), ("x".into(), "a\"b".into())]
        );
        assert_eq!(parse_challenges(r#"Bearer scope="unterminated"#)[0].params, vec![]);
        assert!(parse_challenges("=x, \"").is_empty());
        assert!(parse_challenges(&"a".repeat(MAX_CHALLENGE_BYTES + 1)).is_empty());
    }
}
