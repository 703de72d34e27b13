//! A tower [`Layer`] that verifies every request before the inner service sees it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::error::VerifyError;
use crate::verifier::Verifier;

/// Verifies each request's `Authorization: Bearer` token, or `Authorization: DPoP` token
/// and `DPoP` proof (RFC 9449, checked against the request's method and URL), and
/// `X-Act-Assertion` for Entra ID. A verified request reaches the inner service with its
/// [`crate::DualSubject`] in the request extensions; any other is answered here: 400, 401
/// or 403 with an RFC 6750 `WWW-Authenticate` header, or 503 with `Retry-After` when the
/// issuer's keys or the replay store are unavailable. The body is a small JSON object with
/// a fixed description; the token is never echoed.
///
/// DPoP refusals, and refusals of a token sent with the `DPoP` scheme, carry the RFC 9449
/// §7.1 challenge instead: `DPoP error="invalid_dpop_proof", error_description="...",
/// algs="ES256 EdDSA RS256 PS256"` for a missing or invalid proof, `DPoP
/// error="invalid_token", ...` for a bound token sent as `Bearer`, a key mismatch, or a
/// token of an issuer that requires DPoP. Without a token, the `DPoP` challenge is offered
/// when an issuer requires DPoP (and `Bearer` too unless all do). Server nonces
/// (`DPoP-Nonce`) are not issued.
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
            match verifier.verify_headers(request.method(), request.uri(), request.headers()).await {
                Ok(subject) => {
                    request.extensions_mut().insert(subject);
                    inner.call(request).await
                }
                Err(error) => {
                    let challenges = verifier.challenges(&error, realm.as_deref(), crate::dpop::uses_dpop_scheme(request.headers()));
                    Ok(rejection(&error, &challenges))
                }
            }
        })
    }
}

/// The response for a refused request, with these `WWW-Authenticate` challenges.
pub(crate) fn rejection<B: From<String>>(error: &VerifyError, challenges: &[String]) -> http::Response<B> {
    let code = error.bearer_error().as_str().unwrap_or(if error.is_temporary() { "temporarily_unavailable" } else { "unauthorized" });
    let body = serde_json::json!({"error": code, "error_description": error.public_description()}).to_string();
    let mut response = http::Response::new(B::from(body));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    for challenge in challenges {
        if let Ok(value) = http::HeaderValue::from_str(challenge) {
            headers.append(http::header::WWW_AUTHENTICATE, value);
        }
    }
    if error.is_temporary() {
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("30"));
    }
    response
}
