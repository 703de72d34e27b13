//! The HTTP toolkit every client of the workspace uses: [`HttpsUrl`], a URL checked once
//! (`https://`, a host, no credentials) and carried from then on; [`read_body`], the one
//! bounded body reader (a body over the limit is an error, never cut short); and
//! [`read_ca_bundle`], the one loader of extra trusted roots ([`CA_BUNDLE_SETTING`]).
//!
//! ```
//! use dual_auth_core::http::HttpsUrl;
//!
//! let url = HttpsUrl::parse("https://idp.example.com/token")?;
//! assert_eq!(url.host_str(), Some("idp.example.com"));
//! assert!(HttpsUrl::parse("http://idp.example.com/token").is_err());
//! assert!(HttpsUrl::parse("https://user:pw@idp.example.com/token").is_err());
//! # Ok::<(), dual_auth_core::http::HttpsUrlError>(())
//! ```

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::zeroize::Zeroize;

use crate::text::truncate_untrusted;

/// The setting naming a PEM file of extra trusted roots, added to the system's, for
/// identity providers, secret stores, JWKS and APIs.
pub const CA_BUNDLE_SETTING: &str = "DUAL_AUTH_CA_BUNDLE";

/// The longest part of a refused value shown in an [`HttpsUrlError`].
const MAX_SHOWN_VALUE_CHARS: usize = 200;

/// An absolute `https://` URL with a host and without credentials, checked when it was made.
///
/// Only [`HttpsUrl::parse_allowing_loopback_http`] also makes `http://` URLs, and only to
/// this machine (`localhost`, `127.0.0.1`, `[::1]`), for an emulator or a test fake.
/// It dereferences to [`url::Url`] (read only, so the checks stay true).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpsUrl(url::Url);

/// Why a value is not an [`HttpsUrl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsUrlError {
    /// The value does not parse as an absolute URL.
    #[error("{value:?} is not an absolute URL ({reason})")]
    NotAbsolute {
        /// The value, cut and escaped, without what precedes an `@`.
        value: String,
        /// What the URL parser said.
        reason: String,
    },
    /// The scheme is not `https` (nor `http` to loopback, where that is allowed).
    #[error("must use https://, got \"{scheme}://\"{}", if *loopback_http_allowed { " (plain http:// only on loopback)" } else { "" })]
    NotHttps {
        /// The scheme found.
        scheme: String,
        /// Whether `http://` to loopback would have been accepted.
        loopback_http_allowed: bool,
    },
    /// The URL has no host.
    #[error("has no host")]
    NoHost,
    /// The URL carries a user name or password.
    #[error("must not carry credentials")]
    Credentials,
}

impl HttpsUrl {
    /// Parses `value` (surrounding white space ignored) as an `https://` URL with a host
    /// and no credentials.
    ///
    /// # Errors
    /// [`HttpsUrlError`] saying what is wrong, for the caller to put after the setting's name.
    pub fn parse(value: &str) -> Result<Self, HttpsUrlError> {
        Self::from_url(parse_absolute(value)?)
    }

    /// As [`HttpsUrl::parse`], but plain `http://` is accepted when the host is this
    /// machine's loopback (`localhost`, `127.0.0.1`, `[::1]`): for an emulator or a fake
    /// that serves no TLS. Use it only where such a server is meant.
    ///
    /// # Errors
    /// As [`HttpsUrl::parse`].
    pub fn parse_allowing_loopback_http(value: &str) -> Result<Self, HttpsUrlError> {
        let url = parse_absolute(value)?;
        if url.scheme() == "http" && is_loopback_host(&url) {
            return check_host_and_credentials(url).map(Self);
        }
        if url.scheme() != "https" {
            return Err(HttpsUrlError::NotHttps { scheme: url.scheme().to_owned(), loopback_http_allowed: true });
        }
        check_host_and_credentials(url).map(Self)
    }

    /// Checks a parsed URL as [`HttpsUrl::parse`] does.
    ///
    /// # Errors
    /// As [`HttpsUrl::parse`].
    pub fn from_url(url: url::Url) -> Result<Self, HttpsUrlError> {
        if url.scheme() != "https" {
            return Err(HttpsUrlError::NotHttps { scheme: url.scheme().to_owned(), loopback_http_allowed: false });
        }
        check_host_and_credentials(url).map(Self)
    }

    /// The URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The URL, owned.
    pub fn into_url(self) -> url::Url {
        self.0
    }

    /// The URL as text (its normal form: `https://idp.example.com` becomes
    /// `https://idp.example.com/`).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether this is a plain `http://` URL to loopback (only
    /// [`HttpsUrl::parse_allowing_loopback_http`] makes those).
    pub fn is_loopback_http(&self) -> bool {
        self.0.scheme() == "http"
    }

    /// This URL with `pairs` appended to its query (form-encoded); scheme, host and the
    /// absence of credentials are untouched, so it stays checked. No pair: unchanged.
    #[must_use]
    pub fn with_query_pairs<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut pairs = pairs.into_iter().peekable();
        if pairs.peek().is_some() {
            self.0.query_pairs_mut().extend_pairs(pairs);
        }
        self
    }

    /// The URL without query or fragment, for logs and messages (a query may carry what
    /// logs must not).
    pub fn for_logs(&self) -> String {
        crate::token_endpoint::url_for_logs(&self.0)
    }
}

fn parse_absolute(value: &str) -> Result<url::Url, HttpsUrlError> {
    url::Url::parse(value.trim()).map_err(|e| HttpsUrlError::NotAbsolute { value: shown(value), reason: e.to_string() })
}

/// A refused value as it may appear in a message: its query and fragment (which may carry
/// a token or a code) and what precedes an `@` (a user name and password, perhaps) left
/// out, cut and escaped.
fn shown(value: &str) -> String {
    let value = value.trim();
    let value = value.split(['?', '#']).next().unwrap_or_default();
    match value.rsplit_once('@') {
        Some((_, rest)) => format!("…@{}", truncate_untrusted(rest, MAX_SHOWN_VALUE_CHARS)),
        None => truncate_untrusted(value, MAX_SHOWN_VALUE_CHARS),
    }
}

fn check_host_and_credentials(url: url::Url) -> Result<url::Url, HttpsUrlError> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err(HttpsUrlError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HttpsUrlError::Credentials);
    }
    Ok(url)
}

fn is_loopback_host(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

impl Deref for HttpsUrl {
    type Target = url::Url;

    fn deref(&self) -> &url::Url {
        &self.0
    }
}

impl AsRef<url::Url> for HttpsUrl {
    fn as_ref(&self) -> &url::Url {
        &self.0
    }
}

impl AsRef<str> for HttpsUrl {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HttpsUrl").field(&self.0.as_str()).finish()
    }
}

impl FromStr for HttpsUrl {
    type Err = HttpsUrlError;

    fn from_str(value: &str) -> Result<Self, HttpsUrlError> {
        Self::parse(value)
    }
}

impl TryFrom<&str> for HttpsUrl {
    type Error = HttpsUrlError;

    fn try_from(value: &str) -> Result<Self, HttpsUrlError> {
        Self::parse(value)
    }
}

impl TryFrom<String> for HttpsUrl {
    type Error = HttpsUrlError;

    fn try_from(value: String) -> Result<Self, HttpsUrlError> {
        Self::parse(&value)
    }
}

impl TryFrom<url::Url> for HttpsUrl {
    type Error = HttpsUrlError;

    fn try_from(url: url::Url) -> Result<Self, HttpsUrlError> {
        Self::from_url(url)
    }
}

impl From<HttpsUrl> for url::Url {
    fn from(url: HttpsUrl) -> Self {
        url.0
    }
}

impl From<HttpsUrl> for String {
    fn from(url: HttpsUrl) -> Self {
        url.0.into()
    }
}

/// What can become an [`HttpsUrl`]: text and URLs are checked, an [`HttpsUrl`] is taken
/// as it is. Lets an API take either a setting's text or a URL checked earlier.
pub trait ToHttpsUrl {
    /// The checked URL.
    ///
    /// # Errors
    /// [`HttpsUrlError`] as [`HttpsUrl::parse`] gives it.
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError>;
}

impl ToHttpsUrl for &str {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        HttpsUrl::parse(self)
    }
}

impl ToHttpsUrl for String {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        HttpsUrl::parse(&self)
    }
}

impl ToHttpsUrl for &String {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        HttpsUrl::parse(self)
    }
}

impl ToHttpsUrl for url::Url {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        HttpsUrl::from_url(self)
    }
}

impl ToHttpsUrl for &url::Url {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        HttpsUrl::from_url(self.clone())
    }
}

impl ToHttpsUrl for HttpsUrl {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        Ok(self)
    }
}

impl ToHttpsUrl for &HttpsUrl {
    fn to_https_url(self) -> Result<HttpsUrl, HttpsUrlError> {
        Ok(self.clone())
    }
}

/// A response body could not be read whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the limit (announced by `Content-Length`, or found while
    /// reading): refused, never cut short.
    #[error("the body is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The connection failed while the body was read.
    #[error("the body could not be read")]
    Read(#[source] reqwest::Error),
}

/// Reads a response body of at most `max_bytes`.
///
/// What was read before a failure is wiped (a token endpoint's body holds the token).
///
/// # Errors
/// [`BodyError::TooLarge`] past `max_bytes`; [`BodyError::Read`] when the connection fails
/// (the error carries no URL).
pub async fn read_body(mut response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|announced| announced > max_bytes as u64) {
        return Err(BodyError::TooLarge { max: max_bytes });
    }
    let mut body = Vec::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(body),
            Err(e) => {
                body.zeroize();
                return Err(BodyError::Read(e.without_url()));
            }
        };
        if body.len().saturating_add(chunk.len()) > max_bytes {
            body.zeroize();
            return Err(BodyError::TooLarge { max: max_bytes });
        }
        body.extend_from_slice(&chunk);
    }
}

/// A CA bundle cannot be used. The message says what is wrong; the caller names the
/// setting and the file ([`CaBundleError::path`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaBundleError {
    /// The file cannot be read.
    #[error("cannot be read: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The file is not PEM certificates.
    #[error("not PEM certificates: {reason}")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file holds no certificate.
    #[error("no certificate in the file")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
}

impl CaBundleError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        match self {
            Self::Unreadable { path, .. } | Self::NotPem { path, .. } | Self::NoCertificate { path } => path,
        }
    }
}

/// Reads a PEM file of one or more certificates, to add to the system's trusted roots
/// ([`crate::token_endpoint::HttpSettings::extra_root_certificates_pem`]), and checks that
/// it holds at least one certificate.
///
/// # Errors
/// [`CaBundleError`] when the file cannot be read or holds no PEM certificate.
pub fn read_ca_bundle(path: impl AsRef<Path>) -> Result<Vec<u8>, CaBundleError> {
    let path = path.as_ref();
    let pem = std::fs::read(path).map_err(|e| CaBundleError::Unreadable { path: path.to_owned(), reason: e.to_string() })?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| CaBundleError::NotPem { path: path.to_owned(), reason: e.to_string() })?;
    if certificates.is_empty() {
        return Err(CaBundleError::NoCertificate { path: path.to_owned() });
    }
    Ok(pem)
}
