//! `GET /`, `GET /p/{slug}`, `GET /api/v1/petitions`, `GET /api/v1/petitions/{slug}`.
//!
//! The two API answers are public and read-only, and partner sites show the counts from their
//! own pages' scripts: they may be read from any origin (CORS), without credentials.

use actix_web::http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
};
use actix_web::http::StatusCode;
use actix_web::{get, route, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDateTime;

use crate::core::format::rfc3339;
use serde::Serialize;

use crate::db;
use crate::error::AppError;
use crate::petitions::cache::View;
use crate::petitions::model::Petition;
use crate::petitions::queries;
use crate::web::errors::{render_page, ApiError};
use crate::web::public::pages::{DeliveryLine, IndexPage, PetitionCard, PetitionPage};
use crate::web::public::sign_form::SignatureForm;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(show)
        .service(api_list)
        .service(api_show)
        .service(api_list_preflight)
        .service(api_show_preflight);
}

/// Lets any origin's scripts read `response`. With `*` browsers send no cookies and accept
/// no credentials, so only answers that are the same for everyone may carry it.
fn readable_from_any_origin(response: Result<HttpResponse, ApiError>) -> HttpResponse {
    // `from_error` keeps the error on the response, for the access log.
    let mut response = response.unwrap_or_else(HttpResponse::from_error);
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// The preflight a browser sends before a cross-origin read with headers of its own (e.g.
/// `If-None-Match`). `*` for headers holds without credentials only, which is the point.
fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"))
        .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, "*"))
        .insert_header((ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

#[route("/api/v1/petitions", method = "OPTIONS")]
async fn api_list_preflight() -> HttpResponse {
    preflight()
}

#[route("/api/v1/petitions/{slug}", method = "OPTIONS")]
async fn api_show_preflight() -> HttpResponse {
    preflight()
}

#[get("/")]
async fn index(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let petitions = db::run(&state.pool, |conn| Ok(queries::list_public(conn)?)).await?;
    let now = now();
    let cards = petitions
        .iter()
        .filter(|petition| petition.accepts_signatures(now))
        .map(PetitionCard::new)
        .collect();
    render_page(StatusCode::OK, &IndexPage { petitions: cards })
}

/// Served from memory (`cache`): the page is the same for every reader for up to a second.
#[get("/p/{slug}")]
async fn show(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let page = state
        .public_views
        .get(View::Page, &slug, || async {
            let page = load_page(&state, slug.clone(), SignatureForm::default()).await?;
            Ok::<_, AppError>(page.render()?.into_bytes())
        })
        .await?;
    Ok(super::respond(&page, &request, "text/html; charset=utf-8"))
}

/// The petition page with the given state of the signing form (empty, or re-shown with errors).
pub async fn load_page(
    state: &AppState,
    slug: String,
    form: SignatureForm,
) -> Result<PetitionPage, AppError> {
    let key = state.data_key.clone();
    let (petition, targets, version, history, deliveries, recent) =
        db::run(&state.pool, move |conn| {
            let petition =
                queries::find_public(conn, &slug)?.ok_or_else(crate::petitions::not_found)?;
            let targets = queries::targets(conn, petition.id)?;
            let version = queries::current_version(conn, petition.id)?;
            let history = queries::version_history(conn, petition.id)?;
            let deliveries = crate::delivery::record::for_petition(conn, petition.id)?;
            let recent = crate::web::public::pages::RecentSigners::load(conn, &key, petition.id)?;
            Ok((petition, targets, version, history, deliveries, recent))
        })
        .await?;
    let mut page = PetitionPage::new(&petition, targets, &version, &history, form, now());
    page.deliveries = deliveries.iter().map(DeliveryLine::new).collect();
    page.recent_signers = recent;
    Ok(page)
}

#[derive(Serialize)]
struct PetitionJson {
    slug: String,
    title: String,
    summary: String,
    status: &'static str,
    signature_count: i64,
    goal: Option<i64>,
    created_at: String,
    closes_at: Option<String>,
    url: String,
}

impl PetitionJson {
    fn new(petition: &Petition, base_url: &str, now: NaiveDateTime) -> Self {
        Self {
            slug: petition.slug.clone(),
            title: petition.title.clone(),
            summary: petition.summary.clone(),
            status: petition.status_at(now).as_str(),
            signature_count: petition.signature_count,
            goal: petition.goal,
            created_at: rfc3339(petition.created_at),
            closes_at: petition.closes_at.map(rfc3339),
            url: format!("{base_url}/p/{}", petition.slug),
        }
    }
}

#[get("/api/v1/petitions")]
async fn api_list(state: web::Data<AppState>) -> HttpResponse {
    readable_from_any_origin(list_json(&state).await)
}

async fn list_json(state: &AppState) -> Result<HttpResponse, ApiError> {
    let petitions = db::run(&state.pool, |conn| Ok(queries::list_public(conn)?)).await?;
    let now = now();
    let body: Vec<PetitionJson> = petitions
        .iter()
        .map(|petition| PetitionJson::new(petition, &state.base_url, now))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "petitions": body })))
}

/// Served from memory (`cache`), like the page.
#[get("/api/v1/petitions/{slug}")]
async fn api_show(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    readable_from_any_origin(show_json(&state, slug.into_inner(), &request).await)
}

async fn show_json(
    state: &AppState,
    slug: String,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let json = state
        .public_views
        .get(View::Json, &slug, || async {
            let slug = slug.clone();
            let petition = db::run(&state.pool, move |conn| {
                queries::find_public(conn, &slug)?.ok_or_else(crate::petitions::not_found)
            })
            .await?;
            let json = PetitionJson::new(&petition, &state.base_url, now());
            serde_json::to_vec(&json).map_err(|e| ApiError(AppError::Internal(e.into())))
        })
        .await?;
    Ok(super::respond(&json, request, "application/json"))
}
