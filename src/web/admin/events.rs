//! The signing events of a petition (`safety::events`):
//! `GET /admin/petitions/{slug}/events` (the list and the form),
//! `POST /admin/petitions/{slug}/events` (vouch for a new one) and
//! `POST /admin/petitions/{slug}/events/{id}/remove`.
//!
//! Each POST checks the CSRF token, then the caller's right to run the petition (404
//! otherwise), then its input: a wrong field is a 422 with the form shown again and nothing
//! stored.

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDateTime;

use crate::core::form::parse_urlencoded;
use crate::db;
use crate::error::{AppError, FieldErrors};
use crate::organizers::access;
use crate::petitions::Petition;
use crate::safety::events::{
    self, EventForm, ListedEvent, NewSigningEvent, DEFAULT_MAX_SIGNATURES, MAX_WINDOW_DAYS,
};
use crate::web::admin::workspace::Nav;
use crate::web::errors::render_page;
use crate::web::extract::{ManagedForm, SignedIn};
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(remove);
}

/// One event as the page shows it.
pub struct EventRow {
    pub id: i64,
    pub label: String,
    pub network: String,
    pub starts_at: String,
    pub ends_at: String,
    /// upcoming / active / ended / removed
    pub state: &'static str,
    pub vouched: i64,
    pub max_signatures: i64,
    pub created: String,
    pub removed: Option<String>,
}

fn minute(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

impl EventRow {
    fn new(listed: ListedEvent, now: NaiveDateTime) -> Self {
        let event = listed.event;
        let state = if event.removed_at.is_some() {
            "removed"
        } else if event.ends_at <= now {
            "ended"
        } else if event.starts_at > now {
            "upcoming"
        } else {
            "active"
        };
        let by = |who: Option<String>| who.unwrap_or_else(|| "a removed account".to_owned());
        Self {
            id: event.id,
            label: event.label,
            network: event.network,
            starts_at: minute(event.starts_at),
            ends_at: minute(event.ends_at),
            state,
            vouched: listed.vouched,
            max_signatures: event.max_signatures,
            created: format!("{} by {}", minute(event.created_at), by(listed.created_by)),
            removed: event
                .removed_at
                .map(|at| format!("{} by {}", minute(at), by(listed.removed_by))),
        }
    }
}

#[derive(Template)]
#[template(path = "organizers/events.html")]
struct EventsPage {
    nav: Nav,
    slug: String,
    title: String,
    events: Vec<EventRow>,
    form: EventForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
    max_days: i64,
    default_max: i64,
}

impl EventsPage {
    /// The messages for one field of the form.
    fn messages(&self, field: &str) -> &[String] {
        self.errors.get(field).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Renders the page for a petition the user runs (checked by the caller).
async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    petition: Petition,
    status: StatusCode,
    form: EventForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let petition_id = petition.id;
    let listed = db::run(&state.pool, move |conn| {
        Ok(events::list(conn, petition_id)?)
    })
    .await?;
    let now = now();
    render_page(
        status,
        &EventsPage {
            nav: Nav::new(signed_in),
            slug: petition.slug,
            title: petition.title,
            events: listed
                .into_iter()
                .map(|listed| EventRow::new(listed, now))
                .collect(),
            form,
            errors,
            notice,
            max_days: MAX_WINDOW_DAYS,
            default_max: DEFAULT_MAX_SIGNATURES,
        },
    )
}

fn events_path(slug: &str) -> String {
    format!("/admin/petitions/{slug}/events")
}

#[get("/admin/petitions/{slug}/events")]
async fn list(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    // `?done=` only chooses a sentence; anything else in it is ignored.
    let query = parse_urlencoded(request.query_string().as_bytes())?;
    let notice = match query.get("done") {
        Some("created") => Some("The signing event was saved."),
        Some("removed") => Some("The signing event was removed: it vouches for nothing more."),
        _ => None,
    };
    // Not `ManagedPetition`: this page reads its query first, so a malformed one is 400 even
    // on a petition the user may not run, and stays so.
    let user = signed_in.user.clone();
    let slug = slug.into_inner();
    let petition = db::run(&state.pool, move |conn| {
        access::petition_for(conn, &user, &slug)
    })
    .await?;
    page(
        &state,
        &signed_in,
        petition,
        StatusCode::OK,
        EventForm::default(),
        FieldErrors::new(),
        notice,
    )
    .await
}

#[post("/admin/petitions/{slug}/events")]
async fn create(state: web::Data<AppState>, posted: ManagedForm) -> Result<HttpResponse, AppError> {
    let ManagedForm {
        signed_in,
        petition,
        fields,
    } = posted;
    let typed = |name: &str| fields.get(name).unwrap_or_default().to_owned();
    let form = EventForm {
        label: typed("label"),
        network: typed("network"),
        starts_at: typed("starts_at"),
        ends_at: typed("ends_at"),
        max_signatures: typed("max_signatures"),
    };
    let now = now();
    let event = match NewSigningEvent::parse(&form, now) {
        Ok(event) => event,
        Err(errors) => {
            return page(
                &state,
                &signed_in,
                petition,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
                None,
            )
            .await
        }
    };
    let (petition_id, user_id) = (petition.id, signed_in.user.id);
    db::run(&state.pool, move |conn| {
        events::create(conn, petition_id, user_id, &event, now)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            LOCATION,
            format!("{}?done=created", events_path(&petition.slug)),
        ))
        .finish())
}

#[post("/admin/petitions/{slug}/events/{id}/remove")]
async fn remove(
    state: web::Data<AppState>,
    // The form carries nothing but its CSRF token, which the extractor checked.
    posted: ManagedForm,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (_, id) = path.into_inner();
    let no_such_event = || AppError::NotFound("This petition has no such signing event.".into());
    let id: i64 = id.parse().map_err(|_| no_such_event())?;
    let (petition_id, user_id) = (posted.petition.id, posted.signed_in.user.id);
    let removed = db::run(&state.pool, move |conn| {
        Ok(events::remove(conn, petition_id, id, user_id, now())?)
    })
    .await?;
    if !removed {
        return Err(no_such_event());
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((
            LOCATION,
            format!("{}?done=removed", events_path(&posted.petition.slug)),
        ))
        .finish())
}
