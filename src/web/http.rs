//! Request bodies read by hand, so that every kind of bad input gets a clear 4xx from
//! [`AppError`]: too large, wrong content type, invalid UTF-8, malformed JSON.

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::config::network::canonical;
use crate::core::form::{nul_refused, parse_urlencoded, FormFields};
use crate::error::AppError;
use crate::web::AppState;

/// The largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The largest petition form (a text of up to 100 kB, percent-encoded, and its other fields).
pub const MAX_PETITION_FORM_BYTES: usize = 512 * 1024;

/// How long a whole request body may take to arrive: enough for the largest petition form
/// over a slow connection (Tor included).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, AppError> {
    read_body_up_to(payload, MAX_BODY_BYTES).await
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body_up_to(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, AppError> {
    let too_large =
        || AppError::PayloadTooLarge(format!("The request is larger than {} KiB.", limit / 1024));
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                AppError::BadRequest(format!("The request body could not be read: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    // The server's request timeout covers only the headers: a client trickling its body
    // byte by byte would otherwise hold a worker's connection open for as long as it likes.
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(AppError::RequestTimeout(
                "The request body arrived too slowly.".to_owned(),
            ))
        })
}

fn require_content_type(request: &HttpRequest, expected: &str) -> Result<(), AppError> {
    let actual = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = actual.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "Send the request as {expected}."
        )))
    }
}

/// Reads a JSON body into `T`. Type errors name the offending field and position.
pub async fn json_body<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<T, AppError> {
    require_content_type(request, "application/json")?;
    let body = read_body(payload).await?;
    if json_has_nul(&body) {
        return Err(nul_refused());
    }
    serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("The JSON body is not valid: {e}.")))
}

/// Whether a JSON text holds a NUL, raw or as a `\u0000` escape (not a literal `\\u0000`).
fn json_has_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            0 => return true,
            b'\\' => {
                if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                // Skip the escaped character, so `\\` cannot start another escape.
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// The client's IP address: the socket's peer, or, when that peer is a trusted proxy, the
/// address the proxies recorded in `X-Forwarded-For` (see
/// [`TrustedProxies::client_address`](crate::config::network::TrustedProxies::client_address)).
pub fn client_ip(request: &HttpRequest) -> String {
    let Some(peer) = request.peer_addr().map(|address| address.ip()) else {
        return String::new();
    };
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| &state.trusted_proxies);
    let address = match trusted {
        Some(trusted) if !trusted.is_empty() => {
            let forwarded: Option<Vec<&str>> = request
                .headers()
                .get_all(X_FORWARDED_FOR)
                .map(|value| value.to_str().ok())
                .collect();
            match forwarded {
                Some(lines) => trusted.client_address(peer, &lines),
                None => canonical(peer),
            }
        }
        _ => canonical(peer),
    };
    address.to_string()
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

pub async fn form_body(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<FormFields, AppError> {
    form_body_up_to(request, payload, MAX_BODY_BYTES).await
}

/// A form body of up to `limit` bytes, for the few forms that carry long texts.
pub async fn form_body_up_to(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<FormFields, AppError> {
    require_content_type(request, "application/x-www-form-urlencoded")?;
    let body = read_body_up_to(payload, limit).await?;
    parse_urlencoded(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_json_text() {
        assert!(json_has_nul(br#"{"name": "a\u0000b"}"#));
        assert!(json_has_nul(b"{\"name\": \"a\0b\"}"));
        assert!(!json_has_nul(br#"{"name": "a\\u0000b"}"#));
        assert!(json_has_nul(br#"{"name": "a\\\u0000b"}"#));
        assert!(json_has_nul(br#"{"name": "\u00000"}"#));
        assert!(!json_has_nul(br#"{"name": "a\u0001b \"0000\""}"#));
    }
}
