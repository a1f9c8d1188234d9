//! The middleware every request passes through: it gives the request an id, puts security
//! headers on every response (pages, JSON, errors, 404s, the stylesheet), forbids caching of
//! every response to a signed-in request and of the sign-in page, and writes the request's
//! log lines (the access line and any internal error) with that id and without personal
//! data.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use rand::Rng;

use crate::error::AppError;
use crate::web::errors::ApiError;
use crate::web::AppState;

/// Everything is served by the instance itself: no inline styles or scripts, no third-party
/// content. The dashboard's chart is inline SVG markup, which needs no source. `data:`
/// images stay allowed so the stylesheet can embed small icons without another request; an
/// image cannot run script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// No page needs any powerful browser feature.
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=()";

/// Sent only when the public origin is https: on plain http it would be ignored anyway, and
/// on a local run it must not pin a developer's browser to https.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served, in the request's extensions for handlers that log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of `request`, for a handler's own log lines ("-" outside the middleware).
pub fn id_of(request: &actix_web::HttpRequest) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| "-".to_owned(), |id| id.0.clone())
}

/// The middleware, for `App::wrap(actix_web::middleware::from_fn(hardening::middleware))`.
pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let id = request_id(&request, state.as_ref().map(|data| data.get_ref()));
    request.extensions_mut().insert(RequestId(id.clone()));
    let https = state
        .as_ref()
        .is_some_and(|state| state.base_url.starts_with("https://"));
    let private = is_private(&request);

    // A NUL in the path or query would reach the database through a path parameter or a
    // query field, and PostgreSQL cannot hold one in text: no route takes it, so it is
    // refused here for all of them.
    if request.path().contains("%00") || request.query_string().contains("%00") {
        let refused = AppError::BadRequest(
            "The address contains a NUL character, which no page accepts.".to_owned(),
        );
        return Ok(finish(
            request.error_response(refused),
            &id,
            https,
            private,
            started,
        ));
    }
    // Handlers and extractors turn their errors into responses, which get headers below. An
    // error that escapes every service (none is known) is turned into a response by the
    // server itself, after this middleware: it is at least logged with the id.
    let response = next.call(request).await.inspect_err(|error| {
        log_error(&id, error);
        log::info!(
            "request {id}: failed before a response: {}",
            error.as_response_error().status_code().as_u16()
        );
    })?;

    Ok(finish(
        response.map_into_boxed_body(),
        &id,
        https,
        private,
        started,
    ))
}

/// A request whose response must never be stored by a browser or a proxy: one that carries a
/// session cookie or an API token (whatever page it asks for, and whether or not the session
/// is still valid), and the sign-in page with its CSRF cookie. Decided here, once, so that
/// no handler can forget it. The stylesheet is the same for everyone and stays cacheable.
pub fn is_private(request: &ServiceRequest) -> bool {
    let path = request.path();
    if path.starts_with("/static/") {
        return false;
    }
    path == "/login"
        || path == "/logout"
        || request
            .cookie(crate::web::extract::SESSION_COOKIE)
            .is_some()
        || request.headers().contains_key(AUTHORIZATION)
}

/// Logs the response's error and access line and adds the headers.
fn finish(
    mut response: ServiceResponse<BoxBody>,
    id: &str,
    https: bool,
    private: bool,
    started: Instant,
) -> ServiceResponse<BoxBody> {
    if let Some(error) = response.response().error() {
        log_error(id, error);
    }
    add_headers(response.headers_mut(), id, https);
    if private {
        // Replaces whatever the handler chose: a public page seen while signed in may differ.
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // The route pattern, never the concrete path: paths carry confirmation tokens. No client
    // address either: it is personal data.
    log::info!(
        "request {id}: {} {} {} {}ms",
        response.request().method(),
        response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "(no route)".to_owned()),
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

fn add_headers(headers: &mut actix_web::http::header::HeaderMap, id: &str, https: bool) {
    let fixed: [(&str, &'static str); 5] = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("permissions-policy", PERMISSIONS_POLICY),
    ];
    for (name, value) in fixed {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if https {
        headers.insert(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
}

/// A fresh random id, or the one a trusted proxy already gave the request, so that the
/// proxy's log and ours can be matched. Anyone else's `X-Request-Id` is ignored: it would let
/// a client write into our logs.
fn request_id(request: &ServiceRequest, state: Option<&AppState>) -> String {
    let from_trusted_proxy = match (state, request.peer_addr()) {
        (Some(state), Some(peer)) => state.trusted_proxies.contains(peer.ip()),
        _ => false,
    };
    if from_trusted_proxy {
        let given = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|value| well_formed_request_id(value));
        if let Some(given) = given {
            return given.to_owned();
        }
    }
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    crate::core::hex::to_hex(&bytes)
}

/// Up to 64 letters, digits, `-`, `_` and `.`: enough for UUIDs and the usual proxy formats,
/// and nothing that could break a log line or a header.
pub fn well_formed_request_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Internal causes are logged here, once, with the request's id; the client only ever sees
/// the public message. Client errors (4xx) are not logged: they are the access line's status.
fn log_error(id: &str, error: &actix_web::Error) {
    let app_error = error
        .as_error::<AppError>()
        .or_else(|| error.as_error::<ApiError>().map(|api| &api.0));
    match app_error {
        Some(error) => error.log(id),
        None if error.as_response_error().status_code().is_server_error() => {
            // Errors of the framework itself: their messages describe the failure, not the
            // request's content.
            log::error!("request {id}: {error}");
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_plain_request_ids() {
        assert!(well_formed_request_id("3f1c2a9b0d7e4f55"));
        assert!(well_formed_request_id(
            "123e4567-e89b-12d3-a456-426614174000"
        ));
        for bad in ["", "a b", "id\r\nSet-Cookie: x=1", "ü", &"a".repeat(65)] {
            assert!(!well_formed_request_id(bad), "{bad:?}");
        }
    }
}
