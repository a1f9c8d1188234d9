//! Site-wide routes: the stylesheet, health checks and the 404 page.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{get, web, HttpResponse};
use diesel::connection::SimpleConnection;

use crate::db;
use crate::error::AppError;
use crate::web::AppState;

const STYLESHEET: &str = include_str!("../../templates/static/style.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet)
        .service(healthz)
        .service(readyz)
        .default_service(web::to(not_found));
}

#[get("/static/style.css")]
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

/// The process is up.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers.
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ping = db::run(&state.pool, |conn| Ok(conn.batch_execute("SELECT 1")?)).await;
    match ping {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unavailable", "reason": "database unreachable" })),
    }
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(
        "There is nothing at this address.".to_owned(),
    ))
}
