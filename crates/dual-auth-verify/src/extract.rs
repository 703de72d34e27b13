//! The axum extractor for the [`DualSubject`] a [`crate::DualAuthLayer`] verified.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::error::VerifyError;
use crate::subject::DualSubject;

/// Why an extractor refused: answers as [`crate::DualAuthLayer`] does (RFC 6750).
#[derive(Debug)]
pub struct Rejection {
    error: VerifyError,
    realm: Option<String>,
}

impl Rejection {
    /// A rejection for `error`, with an optional `realm` for `WWW-Authenticate`.
    pub fn new(error: VerifyError, realm: Option<String>) -> Self {
        Self { error, realm }
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
        crate::layer::rejection(&self.error, self.realm.as_deref())
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
