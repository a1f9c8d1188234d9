//! How an [`AppError`] becomes a response: an HTML page for the site, a JSON body for the API
//! (`ApiError`). The status code is decided in one place ([`status_of`]).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::error::AppError;

/// The status code of each error: decided here and nowhere else.
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        status_of(self)
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::SignInRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/login"))
                .finish();
        }
        let status = status_of(self);
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
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        let body = match &self.0 {
            AppError::Validation(fields) => serde_json::json!({ "errors": fields }),
            other => serde_json::json!({ "error": other.public_message() }),
        };
        retry_after(&self.0, HttpResponse::build(status_of(&self.0)).json(body))
    }
}

/// Renders a page template into a response with the given status.
pub fn render_page(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {error}"))
    }
}
