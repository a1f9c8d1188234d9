//! The organizer API, authenticated by API tokens: the caller's petitions and their
//! signatures, and moderation.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;

use super::access;
use super::api_tokens::ApiCaller;
use crate::db;
use crate::error::ApiError;
use crate::petitions::routes::rfc3339;
use crate::signatures::queries::pending_count;
use crate::{now, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(petitions);
}

#[derive(Serialize)]
struct AdminPetitionJson {
    slug: String,
    title: String,
    status: &'static str,
    confirmed_count: i64,
    pending_count: i64,
    goal: Option<i64>,
    created_at: String,
    closes_at: Option<String>,
}

/// `GET /api/v1/admin/petitions`: the petitions the caller runs, with confirmed and pending
/// counts.
#[get("/api/v1/admin/petitions")]
async fn petitions(
    state: web::Data<AppState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let petitions = db::run(&state.pool, move |conn| {
        let now = now();
        let mut rows = Vec::new();
        for petition in access::petitions_for(conn, &caller.user)? {
            rows.push(AdminPetitionJson {
                status: petition.status_at(now).as_str(),
                confirmed_count: petition.signature_count,
                pending_count: pending_count(conn, petition.id)?,
                goal: petition.goal,
                created_at: rfc3339(petition.created_at),
                closes_at: petition.closes_at.map(rfc3339),
                slug: petition.slug,
                title: petition.title,
            });
        }
        Ok(rows)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "petitions": petitions })))
}
