//! The axum extractor for the [`DualSubject`] a [`crate::DualAuthLayer`] verified.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::error::VerifyError;
use crate::subject::DualSubject;

/// Why an extractor refused: answers as [`crate::DualAuthLayer`] does (RFC 6750, and the
/// RFC 9449 `DPoP` challenge for DPoP refusals, or for any refusal once
/// [`Rejection::dpop_challenge`] is set).
#[derive(Debug)]
pub struct Rejection {
    error: VerifyError,
    realm: Option<String>,
    dpop: bool,
}

impl Rejection {
    /// A rejection for `error`, with an optional `realm` for `WWW-Authenticate`.
    pub fn new(error: VerifyError, realm: Option<String>) -> Self {
        Self { error, realm, dpop: false }
    }

    /// Answers with the `DPoP` challenge whatever the error: for a token that came with the
    /// `DPoP` scheme.
    #[must_use]
    pub fn dpop_challenge(mut self) -> Self {
        self.dpop = true;
        self
    }

    /// The reason.
    pub fn error(&self) -> &VerifyError {
        &self.error
    }
}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        Self::new(error, None)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let realm = self.realm.as_deref();
        let challenge = if self.dpop { self.error.dpop_www_authenticate(realm) } else { self.error.www_authenticate(realm) };
        crate::layer::rejection(&self.error, &challenge.into_iter().collect::<Vec<_>>())
    }
}

/// Takes the [`DualSubject`] the [`crate::DualAuthLayer`] put in the request. A route
/// without the layer answers 500: a wiring mistake must not look like an anonymous call.
impl<S: Send + Sync> FromRequestParts<S> for DualSubject {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<DualSubject>().cloned().ok_or_else(|| {
            Rejection::from(VerifyError::Configuration {
                setting: "DualAuthLayer",
                reason: "this route is not behind DualAuthLayer: add .layer(DualAuthLayer::new(verifier))".into(),
            })
        })
    }
}
