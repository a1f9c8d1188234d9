//! The application's one error type and its mapping to HTTP: an HTML page for the site,
//! a JSON body for the API (`ApiError`). The status code is decided in one place.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

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
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::SignInRequired | AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable(_) | AppError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

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
    /// [`crate::hardening`] for every error response, so each line can be traced).
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

/// The `Retry-After` of an [`AppError::Overloaded`] response.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// Adds `Retry-After` to the response of an error that asks the client to come back.
fn retry_after(error: &AppError, mut response: HttpResponse) -> HttpResponse {
    if let AppError::Overloaded(_) = error {
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(RETRY_AFTER_SECONDS),
        );
    }
    response
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

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {error}"))
    }
}

impl From<askama::Error> for AppError {
    fn from(error: askama::Error) -> Self {
        AppError::Internal(anyhow::anyhow!("template rendering failed: {error}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::SignInRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/login"))
                .finish();
        }
        let status = self.status();
        let message = self.public_message();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: &message,
        };
        let response = match page.render() {
            Ok(body) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(_) => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(message),
        };
        retry_after(self, response)
    }
}

/// An [`AppError`] rendered as JSON: `{"error": "…"}`, or `{"errors": {field: [messages]}}`
/// for validation failures.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        ApiError(error.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status()
    }

    fn error_response(&self) -> HttpResponse {
        let body = match &self.0 {
            AppError::Validation(fields) => serde_json::json!({ "errors": fields }),
            other => serde_json::json!({ "error": other.public_message() }),
        };
        retry_after(&self.0, HttpResponse::build(self.0.status()).json(body))
    }
}

/// Renders a page template into a response with the given status.
pub fn render_page(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}
