//! Request bodies read by hand, so that every kind of bad input gets a clear 4xx from
//! [`AppError`]: too large, wrong content type, invalid UTF-8, malformed JSON.

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The largest petition form (a text of up to 100 kB, percent-encoded, and its other fields).
pub const MAX_PETITION_FORM_BYTES: usize = 512 * 1024;

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
    serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("The JSON body is not valid: {e}.")))
}

/// The client's IP address as seen on the socket.
pub fn client_ip(request: &HttpRequest) -> String {
    request
        .peer_addr()
        .map(|address| address.ip().to_string())
        .unwrap_or_default()
}

/// A decoded `application/x-www-form-urlencoded` body. Fields are looked up by name; a field
/// sent twice keeps its first value.
#[derive(Debug, Default)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated field, e.g. ticked checkboxes named `id`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// A checkbox counts as ticked when it is present with any value but "" or "false".
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), Some(value) if !value.is_empty() && value != "false")
    }
}

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

/// Strict urlencoded parsing: unlike the usual lossy decoders, invalid UTF-8 (raw or
/// percent-encoded) is an error instead of being replaced silently.
pub fn parse_urlencoded(body: &[u8]) -> Result<FormFields, AppError> {
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = decode_component(parts.next().unwrap_or_default())?;
        let value = decode_component(parts.next().unwrap_or_default())?;
        fields.push((key, value));
    }
    Ok(FormFields(fields))
}

fn decode_component(raw: &[u8]) -> Result<String, AppError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        bytes.push(byte);
                        i += 2;
                    }
                    None => {
                        return Err(AppError::BadRequest(
                            "The form contains a malformed percent-escape.".to_owned(),
                        ))
                    }
                }
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| {
        AppError::BadRequest("The form contains text that is not valid UTF-8.".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields_and_checkboxes() {
        let form = parse_urlencoded(b"name=Ana+Mar%C3%ADa&public=on&consent=&x").unwrap();
        assert_eq!(form.get("name"), Some("Ana María"));
        assert!(form.checked("public"));
        assert!(!form.checked("consent"));
        assert_eq!(form.get("x"), Some(""));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn refuses_invalid_utf8_and_bad_escapes() {
        assert!(parse_urlencoded(b"name=%FF%FE").is_err());
        assert!(parse_urlencoded(b"name=\xff").is_err());
        assert!(parse_urlencoded(b"name=%G1").is_err());
        assert!(parse_urlencoded(b"name=%4").is_err());
    }
}
