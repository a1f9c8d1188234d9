//! The organizer API, authenticated by API tokens: the caller's petitions and their
//! signatures, and moderation.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::core::form::parse_urlencoded;
use crate::core::format::rfc3339;
use crate::db;
use crate::error::{AppError, FieldErrors};
use crate::organizers::access;
use crate::safety::events;
use crate::signatures::moderation::{
    self, parse_bounded, parse_id, parse_page, Reason, SignatureFilter, SignatureRow,
};
use crate::signatures::queries::pending_count;
use crate::web::errors::ApiError;
use crate::web::extract::{ApiCaller, ApiPetition};
use crate::web::http::json_body;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(petitions)
        .service(signatures)
        .service(invalidate)
        .service(restore)
        .service(events_list)
        .service(events_create);
}

/// Signatures per page of `GET …/signatures` unless `per_page` says otherwise.
const DEFAULT_PER_PAGE: i64 = 50;
const MAX_PER_PAGE: i64 = 500;

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

/// A signature as the organizer API shows it.
#[derive(Serialize)]
struct SignatureJson {
    id: i64,
    name: String,
    email: String,
    country: String,
    postal_code: Option<String>,
    comment: Option<String>,
    disclosure: String,
    status: String,
    version_id: i64,
    created_at: String,
    confirmed_at: Option<String>,
    invalidated_at: Option<String>,
    invalidation_reason: Option<String>,
}

impl From<SignatureRow> for SignatureJson {
    fn from(row: SignatureRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            email: row.email,
            country: row.country,
            postal_code: row.postal_code,
            comment: row.comment,
            disclosure: row.disclosure,
            status: row.status,
            version_id: row.version_id,
            created_at: rfc3339(row.created_at),
            confirmed_at: row.confirmed_at.map(rfc3339),
            invalidated_at: row.invalidated_at.map(rfc3339),
            invalidation_reason: row.invalidation_reason,
        }
    }
}

/// `GET /api/v1/admin/petitions/{slug}/signatures?page=1&per_page=50`: every signature of the
/// petition, whatever its status, newest first, with the total for paging.
#[get("/api/v1/admin/petitions/{slug}/signatures")]
async fn signatures(
    state: web::Data<AppState>,
    // Access first (the extractor): bad paging on someone else's petition is "not found".
    api: ApiPetition,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = parse_urlencoded(request.query_string().as_bytes())?;
    let page = parse_page(query.get("page")).map_err(AppError::BadRequest)?;
    let per_page = parse_bounded(
        "per_page",
        query.get("per_page"),
        DEFAULT_PER_PAGE,
        1,
        MAX_PER_PAGE,
    )
    .map_err(AppError::BadRequest)?;
    let key = state.data_key.clone();
    let petition_id = api.petition.id;
    let body = db::run(&state.pool, move |conn| {
        let (rows, total) = moderation::search(
            conn,
            &key,
            petition_id,
            &SignatureFilter::default(),
            page,
            per_page,
        )?;
        let signatures: Vec<SignatureJson> = rows.into_iter().map(SignatureJson::from).collect();
        Ok(serde_json::json!({
            "signatures": signatures,
            "page": page,
            "per_page": per_page,
            "total": total,
        }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The body of `POST …/invalidate`.
#[derive(Deserialize)]
struct InvalidateJson {
    reason: Option<String>,
}

fn signature_id(raw: &str) -> Result<i64, AppError> {
    parse_id(raw).map_err(AppError::BadRequest)
}

fn changed_json(row: SignatureRow, signature_count: i64) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "signature": SignatureJson::from(row),
        "signature_count": signature_count,
    }))
}

/// `POST /api/v1/admin/petitions/{slug}/signatures/{id}/invalidate` with `{"reason": "…"}`:
/// 200 with the signature and the petition's new confirmed count; a missing or bad reason is
/// 422, a signature that cannot be invalidated (already invalidated, withdrawn) 409.
#[post("/api/v1/admin/petitions/{slug}/signatures/{id}/invalidate")]
async fn invalidate(
    state: web::Data<AppState>,
    api: ApiPetition,
    path: web::Path<(String, String)>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, raw_id) = path.into_inner();
    let id = signature_id(&raw_id)?;
    let body = json_body::<InvalidateJson>(&request, payload).await?;
    let reason = Reason::parse(body.reason.as_deref().unwrap_or_default())
        .map_err(|m| AppError::Validation(FieldErrors::from([("reason", vec![m])])))?;
    let key = state.data_key.clone();
    let (petition_id, user_id) = (api.petition.id, api.caller.user.id);
    let (row, count) = db::run(&state.pool, move |conn| {
        moderation::invalidate_one(conn, petition_id, user_id, id, &reason, now(), &key)
    })
    .await?;
    state.public_views.forget_all();
    Ok(changed_json(row, count))
}

/// `POST /api/v1/admin/petitions/{slug}/signatures/{id}/restore`: undoes an invalidation
/// (confirmed again if it had been confirmed, pending otherwise). 409 when it is not
/// invalidated. No body is needed.
#[post("/api/v1/admin/petitions/{slug}/signatures/{id}/restore")]
async fn restore(
    state: web::Data<AppState>,
    api: ApiPetition,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, raw_id) = path.into_inner();
    let id = signature_id(&raw_id)?;
    let key = state.data_key.clone();
    let (petition_id, user_id) = (api.petition.id, api.caller.user.id);
    let (row, count) = db::run(&state.pool, move |conn| {
        moderation::restore_one(conn, petition_id, user_id, id, now(), &key)
    })
    .await?;
    state.public_views.forget_all();
    Ok(changed_json(row, count))
}

/// A signing event as the organizer API shows it (see `safety::events`).
#[derive(Serialize)]
struct SigningEventJson {
    id: i64,
    label: String,
    network: String,
    starts_at: String,
    ends_at: String,
    max_signatures: i64,
    /// Signatures it let past the per-client limit so far.
    vouched: i64,
    created_at: String,
    removed_at: Option<String>,
}

impl From<events::ListedEvent> for SigningEventJson {
    fn from(listed: events::ListedEvent) -> Self {
        let event = listed.event;
        Self {
            id: event.id,
            label: event.label,
            network: event.network,
            starts_at: rfc3339(event.starts_at),
            ends_at: rfc3339(event.ends_at),
            max_signatures: event.max_signatures,
            vouched: listed.vouched,
            created_at: rfc3339(event.created_at),
            removed_at: event.removed_at.map(rfc3339),
        }
    }
}

/// `GET /api/v1/admin/petitions/{slug}/events`: the petition's signing events, newest first.
#[get("/api/v1/admin/petitions/{slug}/events")]
async fn events_list(
    state: web::Data<AppState>,
    api: ApiPetition,
) -> Result<HttpResponse, ApiError> {
    let petition_id = api.petition.id;
    let listed = db::run(&state.pool, move |conn| {
        Ok(events::list(conn, petition_id)?)
    })
    .await?;
    let listed: Vec<SigningEventJson> = listed.into_iter().map(SigningEventJson::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": listed })))
}

/// The body of `POST …/events`: times in RFC 3339 (`2026-12-03T18:30:00Z`).
#[derive(Deserialize)]
struct NewEventJson {
    label: Option<String>,
    network: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    max_signatures: Option<i64>,
}

/// `POST /api/v1/admin/petitions/{slug}/events`: vouches for a signing event; 201 with it, or
/// 422 with a message per wrong field and nothing stored.
#[post("/api/v1/admin/petitions/{slug}/events")]
async fn events_create(
    state: web::Data<AppState>,
    api: ApiPetition,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body::<NewEventJson>(&request, payload).await?;
    let form = events::EventForm {
        label: body.label.unwrap_or_default(),
        network: body.network.unwrap_or_default(),
        starts_at: body.starts_at.unwrap_or_default(),
        ends_at: body.ends_at.unwrap_or_default(),
        max_signatures: body
            .max_signatures
            .map(|n| n.to_string())
            .unwrap_or_default(),
    };
    let now = now();
    let event = events::NewSigningEvent::parse(&form, now).map_err(AppError::Validation)?;
    let (petition_id, user_id) = (api.petition.id, api.caller.user.id);
    let created = db::run(&state.pool, move |conn| {
        let id = events::create(conn, petition_id, user_id, &event, now)?;
        events::list(conn, petition_id)?
            .into_iter()
            .find(|listed| listed.event.id == id)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a new signing event was not found")))
    })
    .await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({ "event": SigningEventJson::from(created) })))
}
