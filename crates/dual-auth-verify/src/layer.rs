//! A tower [`Layer`] that verifies every request before the inner service sees it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::error::VerifyError;
use crate::verifier::Verifier;

/// Verifies each request's `Authorization: Bearer` token (and `X-Act-Assertion` for Entra
/// ID). A verified request reaches the inner service with its [`crate::DualSubject`] in
/// the request extensions; any other is answered here: 400, 401 or 403 with an RFC 6750
/// `WWW-Authenticate` header, or 503 with `Retry-After` when the issuer's keys or the replay store are unavailable. The body is
/// a small JSON object with a fixed description; the token is never echoed.
///
/// ```no_run
/// # #[cfg(feature = "axum")] {
/// use axum::{Router, routing::get};
/// use dual_auth_verify::{DualAuthLayer, DualSubject, IssuerPolicy, Verifier};
///
/// async fn report(subject: DualSubject) -> String {
///     format!("{} for {}", subject.agent.id(), subject.human.sub())
/// }
///
/// # fn app() -> Result<Router, dual_auth_verify::VerifyError> {
/// let verifier = Verifier::builder().issuer(IssuerPolicy::new("https://idp.example.com", "https://api.example.com")).build()?;
/// Ok(Router::new().route("/report", get(report)).layer(DualAuthLayer::new(verifier).realm("finance")))
/// # }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DualAuthLayer {
    verifier: Verifier,
    realm: Option<Arc<str>>,
}

impl DualAuthLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier, realm: None }
    }

    /// Names the protection space in `WWW-Authenticate` (`realm="..."`).
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(Arc::from(realm.into()));
        self
    }
}

impl<S> Layer<S> for DualAuthLayer {
    type Service = DualAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DualAuthService { inner, verifier: self.verifier.clone(), realm: self.realm.clone() }
    }
}

/// The service [`DualAuthLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct DualAuthService<S> {
    inner: S,
    verifier: Verifier,
    realm: Option<Arc<str>>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DualAuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual hand-over).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let verifier = self.verifier.clone();
        let realm = self.realm.clone();
        Box::pin(async move {
            match verifier.verify_headers(request.headers()).await {
                Ok(subject) => {
                    request.extensions_mut().insert(subject);
                    inner.call(request).await
                }
                Err(error) => Ok(rejection(&error, realm.as_deref())),
            }
        })
    }
}

/// The response for a refused request.
pub(crate) fn rejection<B: From<String>>(error: &VerifyError, realm: Option<&str>) -> http::Response<B> {
    let code = error.bearer_error().as_str().unwrap_or(if error.is_temporary() { "temporarily_unavailable" } else { "unauthorized" });
    let body = serde_json::json!({"error": code, "error_description": error.public_description()}).to_string();
    let mut response = http::Response::new(B::from(body));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    if let Some(challenge) = error.www_authenticate(realm)
        && let Ok(value) = http::HeaderValue::from_str(&challenge)
    {
        headers.insert(http::header::WWW_AUTHENTICATE, value);
    }
    if error.is_temporary() {
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("30"));
    }
    response
}
