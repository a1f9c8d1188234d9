//! The application's one error type. Domain code returns it; `web::errors` maps it to HTTP, in
//! one place.

use std::collections::BTreeMap;

/// Messages per form field, e.g. `{"email": ["Please enter a valid email address."]}`.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    /// The private workspace needs a signed-in user: pages redirect to the sign-in form.
    #[error("Please sign in.")]
    SignInRequired,
    /// The API needs a valid token.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The client sent its request too slowly.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("the database is busy or unreachable")]
    Unavailable(#[source] anyhow::Error),
    /// More work is queued than the server takes on: try again after `RETRY_AFTER_SECONDS`.
    #[error("{0}")]
    Overloaded(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// What the client is told. Internal causes are logged, never shown.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Unavailable(_) => {
                "The service is busy right now. Please try again in a moment.".to_owned()
            }
            AppError::Internal(_) => {
                "Something went wrong on our side. Please try again in a moment.".to_owned()
            }
            AppError::Validation(_) => "Some fields need your attention.".to_owned(),
            other => other.to_string(),
        }
    }

    /// Logs an internal cause with the id of the request it failed (called by
    /// [`crate::web::hardening`] for every error response, so each line can be traced).
    pub fn log(&self, request_id: &str) {
        match self {
            // `{:#}` prints the cause chain: database and mail errors, never request data.
            AppError::Internal(cause) => {
                log::error!("request {request_id}: internal error: {cause:#}")
            }
            AppError::Unavailable(cause) => {
                log::warn!("request {request_id}: unavailable: {cause:#}")
            }
            _ => {}
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        AppError::Internal(error.into())
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        AppError::Unavailable(error.into())
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(error: tokio::task::JoinError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {error}"))
    }
}

impl From<askama::Error> for AppError {
    fn from(error: askama::Error) -> Self {
        AppError::Internal(anyhow::anyhow!("template rendering failed: {error}"))
    }
}
