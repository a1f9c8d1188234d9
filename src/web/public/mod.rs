//! The public site: `/` and `/p/{slug}` (with their JSON under `/api/v1/petitions`), signing,
//! confirming, withdrawing, receipts and the published signing key.

pub mod pages;
pub mod petitions;
pub mod receipts;
pub mod sign_form;
pub mod signing;
pub mod signing_key;
pub mod signing_pages;
pub mod withdraw;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::petitions::cache::{Cached, CACHE_CONTROL};

/// A view from the public cache: 304 without a body when the request's `If-None-Match` names
/// it, otherwise 200 with it; both carry the ETag and [`CACHE_CONTROL`].
pub fn respond(cached: &Cached, request: &HttpRequest, content_type: &'static str) -> HttpResponse {
    let not_modified = matches(cached.etag(), request);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, cached.etag()))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ));
    if not_modified {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(cached.body())
}

/// `If-None-Match` uses the weak comparison (RFC 9110 13.1.2): `W/"x"` matches `"x"`.
fn matches(etag: &str, request: &HttpRequest) -> bool {
    let ours = etag.as_bytes();
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
}
