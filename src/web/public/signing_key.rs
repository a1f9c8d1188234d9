//! `GET /.well-known/undersign/signing-key`: the public key that verifies this instance's
//! bundles (JSON), for recipients to pin (`undersign verify --key-url`).

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{get, web, HttpResponse};

use crate::delivery::signing_key::ALGORITHM;
use crate::error::AppError;
use crate::web::admin::deliveries::load_key;
use crate::web::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(signing_key);
}

#[get("/.well-known/undersign/signing-key")]
async fn signing_key(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let key = load_key(&state).await?.public_key();
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .json(serde_json::json!({
            "algorithm": ALGORITHM,
            "public_key": key.to_base64(),
            "fingerprint": key.fingerprint(),
            "public_key_pem": key.to_pem(),
        })))
}
