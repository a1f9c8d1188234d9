//! Signature moderation pages of the workspace:
//! `GET /admin/petitions/{slug}/signatures` (search, 50 per page, newest first),
//! `POST /admin/petitions/{slug}/signatures/invalidate` (ticked `id`s, with a `reason`),
//! `POST /admin/petitions/{slug}/signatures/restore` (undo) and
//! `POST /admin/petitions/{slug}/signatures/{id}/resend` (a new confirmation email),
//! `POST /admin/petitions/{slug}/signatures/accept` (count suspect signatures),
//! `GET`/`POST /admin/petitions/{slug}/signatures/bulk` (bulk invalidation: preview, apply)
//! and `POST /admin/petitions/{slug}/signatures/bulk/{batch}/revert`.
//!
//! Each POST checks the CSRF token, then the caller's right to run the petition (404
//! otherwise), then its input, and answers 303 back to the list it came from.

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::core::countries::{country_name, COUNTRIES};
use crate::core::form::{parse_urlencoded, FormFields};
use crate::core::format::format_count;
use crate::core::status::SignatureStatus;
use crate::db;
use crate::error::AppError;
use crate::safety::reason;
use crate::signatures::bulk::{self, Criteria};
use crate::signatures::moderation::{
    self, parse_id, parse_ids, parse_page, EmailState, EmailSummary, Reason, ResendContext,
    SignatureFilter, SignatureRow, PAGE_SIZE,
};
use crate::web::admin::workspace::Nav;
use crate::web::errors::render_page;
use crate::web::extract::{ManagedForm, ManagedPetition, SignedIn};
use crate::web::public::sign_form::CountryOption;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(invalidate)
        .service(restore)
        .service(accept)
        .service(bulk_page)
        .service(bulk_submit)
        .service(bulk_revert)
        .service(resend);
}

/// The search fields as typed, to show them again.
pub struct FilterForm {
    pub name: String,
    pub email: String,
    pub from: String,
    pub to: String,
}

pub struct StatusOption {
    pub value: &'static str,
    pub selected: bool,
}

pub struct ModerationRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub country: String,
    pub status: String,
    pub signed_at: String,
    pub confirmed_at: Option<String>,
    /// "on 2026-11-28 14:02: duplicate entry" for invalidated signatures.
    pub invalidation: Option<String>,
    /// sent / queued / failed / none
    pub email_state: &'static str,
    /// "sent 2026-11-28 14:02", "queued", "failed"… in words.
    pub email_text: String,
    pub email_error: Option<String>,
    pub emails: i64,
    pub can_resend: bool,
    /// Why an abuse check held it back, in words.
    pub suspect_reason: Option<&'static str>,
}

/// A held-back signature's reason in words.
pub fn reason_label(reason: &str) -> &'static str {
    match reason {
        reason::LIMITED => "over a rate limit",
        reason::HONEYPOT => "hidden field filled in",
        reason::TOO_FAST => "form sent too fast",
        reason::DISPOSABLE => "disposable email domain",
        _ => "held back",
    }
}

impl ModerationRow {
    fn new(row: SignatureRow, email: EmailSummary) -> Self {
        let (email_state, email_text, email_error) = match email.latest {
            EmailState::None => ("none", "none sent".to_owned(), None),
            EmailState::Queued { last_error } => ("queued", "queued".to_owned(), last_error),
            EmailState::Sent { at } => (
                "sent",
                format!("sent {}", at.format("%Y-%m-%d %H:%M")),
                None,
            ),
            EmailState::Failed { error } => ("failed", "failed".to_owned(), Some(error)),
        };
        let invalidation = if row.status == SignatureStatus::Invalidated.as_str() {
            Some(match (row.invalidated_at, &row.invalidation_reason) {
                (Some(at), Some(reason)) => format!("on {}: {reason}", at.format("%Y-%m-%d %H:%M")),
                (Some(at), None) => format!("on {}", at.format("%Y-%m-%d %H:%M")),
                (None, Some(reason)) => reason.clone(),
                (None, None) => String::new(),
            })
        } else {
            None
        };
        Self {
            id: row.id,
            country: country_name(&row.country),
            signed_at: row.created_at.format("%Y-%m-%d %H:%M").to_string(),
            confirmed_at: row
                .confirmed_at
                .map(|at| at.format("%Y-%m-%d %H:%M").to_string()),
            invalidation,
            can_resend: row.status == SignatureStatus::Pending.as_str() && email_state != "queued",
            suspect_reason: row.suspect_reason.as_deref().map(reason_label),
            email_state,
            email_text,
            email_error,
            emails: email.emails,
            name: row.name,
            email: row.email,
            status: row.status,
        }
    }
}

#[derive(Template)]
#[template(path = "organizers/signatures.html")]
struct SignaturesPage {
    nav: Nav,
    slug: String,
    title: String,
    confirmed: String,
    form: FilterForm,
    countries: Vec<CountryOption>,
    statuses: Vec<StatusOption>,
    rows: Vec<ModerationRow>,
    total: String,
    page: i64,
    pages: i64,
    previous: Option<String>,
    next: Option<String>,
    /// This view's filter and page as a query string, sent back by the forms.
    back: String,
    notice: Option<String>,
}

/// The message for `?done=…&n=…`, set by the redirects after each action. Anything else in
/// those fields is ignored: they only choose a sentence.
fn notice(query: &FormFields) -> Option<String> {
    const INVALIDATED: &str = SignatureStatus::Invalidated.as_str();
    let n: i64 = query.get("n")?.parse().ok()?;
    let signatures = if n == 1 { "signature" } else { "signatures" };
    match query.get("done")? {
        INVALIDATED => Some(format!("{n} {signatures} invalidated.")),
        "restored" => Some(format!("{n} {signatures} restored.")),
        "accepted" => Some(format!("{n} {signatures} accepted.")),
        "resent" => Some("A new confirmation email is on its way.".to_owned()),
        _ => None,
    }
}

fn list_path(slug: &str, back: &str) -> String {
    if back.is_empty() {
        format!("/admin/petitions/{slug}/signatures")
    } else {
        format!("/admin/petitions/{slug}/signatures?{back}")
    }
}

/// 303 to the list the form came from, with a notice.
fn back_to_list(slug: &str, back: &str, done: &str, n: usize) -> HttpResponse {
    let separator = if back.is_empty() { "" } else { "&" };
    let location = format!("/admin/petitions/{slug}/signatures?{back}{separator}done={done}&n={n}");
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

/// The `back` field of a moderation form: the list's filter and page, checked and written
/// out again (never copied into the redirect as sent).
fn back_query(raw: Option<&str>) -> Result<String, AppError> {
    let fields = parse_urlencoded(raw.unwrap_or_default().as_bytes())?;
    let filter = SignatureFilter::parse(&fields).map_err(AppError::BadRequest)?;
    let page = parse_page(fields.get("page")).map_err(AppError::BadRequest)?;
    Ok(filter.to_query(page))
}

#[get("/admin/petitions/{slug}/signatures")]
async fn list(
    state: web::Data<AppState>,
    managed: ManagedPetition,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let ManagedPetition {
        signed_in,
        petition,
    } = managed;
    // The extractor decided who may see the petition, so bad input on someone else's
    // petition is still "not found".
    let query = parse_urlencoded(request.query_string().as_bytes())?;
    let filter = SignatureFilter::parse(&query).map_err(AppError::BadRequest)?;
    let page = parse_page(query.get("page")).map_err(AppError::BadRequest)?;
    let key = state.data_key.clone();
    let petition_id = petition.id;
    let search = filter.clone();
    let (rows, total, emails) = db::run(&state.pool, move |conn| {
        let (rows, total) = moderation::search(conn, &key, petition_id, &search, page, PAGE_SIZE)?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let emails = moderation::email_summaries(conn, &ids)?;
        Ok((rows, total, emails))
    })
    .await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let previous = (page > 1).then(|| list_path(&petition.slug, &filter.to_query(page - 1)));
    let next = (page < pages).then(|| list_path(&petition.slug, &filter.to_query(page + 1)));
    let typed = |name: &str| query.get(name).unwrap_or_default().trim().to_owned();
    let page_view = SignaturesPage {
        nav: Nav::new(&signed_in),
        confirmed: format_count(petition.signature_count),
        form: FilterForm {
            name: typed("name"),
            email: typed("email"),
            from: filter.from.map(|day| day.to_string()).unwrap_or_default(),
            to: filter.to.map(|day| day.to_string()).unwrap_or_default(),
        },
        countries: COUNTRIES
            .iter()
            .map(|&(code, name)| CountryOption {
                code,
                name,
                selected: filter.country == Some(code),
            })
            .collect(),
        statuses: SignatureStatus::ALL
            .iter()
            .map(|status| status.as_str())
            .map(|value| StatusOption {
                value,
                selected: filter.status == Some(value),
            })
            .collect(),
        rows: rows
            .into_iter()
            .map(|row| {
                let email = emails.get(&row.id).cloned().unwrap_or_default();
                ModerationRow::new(row, email)
            })
            .collect(),
        total: format_count(total),
        page,
        pages,
        previous,
        next,
        back: filter.to_query(page),
        notice: notice(&query),
        slug: petition.slug,
        title: petition.title,
    };
    // Signers' names and addresses: `web::hardening` makes it `no-store`, as every signed-in
    // response.
    render_page(StatusCode::OK, &page_view)
}

/// The ticked signatures of a moderation form.
fn ticked_ids(form: &FormFields) -> Result<Vec<i64>, AppError> {
    let ids = parse_ids(form.all("id")).map_err(AppError::BadRequest)?;
    if ids.is_empty() {
        return Err(AppError::BadRequest(
            "Tick at least one signature first.".to_owned(),
        ));
    }
    Ok(ids)
}

#[post("/admin/petitions/{slug}/signatures/invalidate")]
async fn invalidate(
    state: web::Data<AppState>,
    posted: ManagedForm,
) -> Result<HttpResponse, AppError> {
    let form = &posted.fields;
    let ids = ticked_ids(form)?;
    let reason =
        Reason::parse(form.get("reason").unwrap_or_default()).map_err(AppError::BadRequest)?;
    let back = back_query(form.get("back"))?;
    let (petition_id, user_id) = (posted.petition.id, posted.signed_in.user.id);
    let changed = db::run(&state.pool, move |conn| {
        Ok(moderation::invalidate(
            conn,
            petition_id,
            user_id,
            &ids,
            &reason,
            now(),
        )?)
    })
    .await?;
    let slug = &posted.petition.slug;
    state.public_views.forget(slug);
    Ok(back_to_list(
        slug,
        &back,
        SignatureStatus::Invalidated.as_str(),
        changed.ids.len(),
    ))
}

#[post("/admin/petitions/{slug}/signatures/restore")]
async fn restore(
    state: web::Data<AppState>,
    posted: ManagedForm,
) -> Result<HttpResponse, AppError> {
    apply_to_ticked(&state, &posted, "restored", moderation::restore).await
}

/// The bulk actions without a reason (restore, accept): applies `action` to the ticked
/// signatures of a petition the user runs, and returns to the list.
async fn apply_to_ticked(
    state: &AppState,
    posted: &ManagedForm,
    done: &'static str,
    action: fn(
        &mut db::AnyConnection,
        i64,
        i64,
        &[i64],
        chrono::NaiveDateTime,
    ) -> diesel::QueryResult<moderation::Changed>,
) -> Result<HttpResponse, AppError> {
    let ids = ticked_ids(&posted.fields)?;
    let back = back_query(posted.fields.get("back"))?;
    let (petition_id, user_id) = (posted.petition.id, posted.signed_in.user.id);
    let changed = db::run(&state.pool, move |conn| {
        Ok(action(conn, petition_id, user_id, &ids, now())?)
    })
    .await?;
    let slug = &posted.petition.slug;
    state.public_views.forget(slug);
    Ok(back_to_list(slug, &back, done, changed.ids.len()))
}

#[post("/admin/petitions/{slug}/signatures/{id}/resend")]
async fn resend(
    state: web::Data<AppState>,
    posted: ManagedForm,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (_, raw_id) = path.into_inner();
    let id = parse_id(&raw_id).map_err(AppError::BadRequest)?;
    let back = back_query(posted.fields.get("back"))?;
    let user_id = posted.signed_in.user.id;
    let base_url = state.base_url.clone();
    let token_ttl = state.token_ttl;
    let key = state.data_key.clone();
    let petition = posted.petition;
    let slug = db::run(&state.pool, move |conn| {
        let context = ResendContext {
            petition: &petition,
            user_id,
            base_url: &base_url,
            token_ttl,
            now: now(),
            data_key: &key,
        };
        moderation::resend_confirmation(conn, &context, id)?;
        Ok(petition.slug)
    })
    .await?;
    state.outbox_wake.notify_one();
    Ok(back_to_list(&slug, &back, "resent", 1))
}

#[post("/admin/petitions/{slug}/signatures/accept")]
async fn accept(state: web::Data<AppState>, posted: ManagedForm) -> Result<HttpResponse, AppError> {
    apply_to_ticked(&state, &posted, "accepted", moderation::accept).await
}

/// The bulk form's fields as typed, to show them again.
#[derive(Default)]
pub struct BulkForm {
    pub domain: String,
    pub network_of: String,
    pub from: String,
    pub to: String,
    pub country: String,
    pub name: String,
    pub reason: String,
}

impl BulkForm {
    fn from_fields(fields: &FormFields) -> Self {
        let text = |name: &str| fields.get(name).unwrap_or_default().trim().to_owned();
        Self {
            domain: text("domain"),
            network_of: text("network_of"),
            from: text("from"),
            to: text("to"),
            country: text("country").to_ascii_uppercase(),
            name: text("name"),
            reason: text("reason"),
        }
    }
}

pub struct SampleLine {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub country: String,
    pub status: String,
    pub signed_at: String,
}

pub struct BatchLine {
    pub id: i64,
    pub criteria: String,
    pub reason: String,
    pub affected: String,
    pub created_at: String,
    pub by: String,
    pub reverted_at: Option<String>,
}

/// What a preview found.
pub struct Preview {
    pub criteria: String,
    pub count: String,
    pub sample: Vec<SampleLine>,
}

#[derive(Template)]
#[template(path = "organizers/bulk.html")]
struct BulkPage {
    nav: Nav,
    slug: String,
    title: String,
    form: BulkForm,
    countries: Vec<CountryOption>,
    preview: Option<Preview>,
    error: Option<String>,
    notice: Option<String>,
    batches: Vec<BatchLine>,
}

fn bulk_notice(query: &FormFields) -> Option<String> {
    let n: i64 = query.get("n")?.parse().ok()?;
    let signatures = if n == 1 { "signature" } else { "signatures" };
    match query.get("done")? {
        "applied" => Some(format!("{n} {signatures} invalidated in one batch.")),
        "reverted" => Some(format!("Batch reverted: {n} {signatures} restored.")),
        _ => None,
    }
}

/// Renders the bulk page for a petition the caller runs (checked by the caller).
async fn render_bulk(
    state: &AppState,
    signed_in: &SignedIn,
    petition: crate::petitions::Petition,
    form: BulkForm,
    preview: Option<Preview>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<HttpResponse, AppError> {
    let petition_id = petition.id;
    let batches = db::run(&state.pool, move |conn| {
        Ok(bulk::batches(conn, petition_id)?)
    })
    .await?;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = BulkPage {
        nav: Nav::new(signed_in),
        countries: COUNTRIES
            .iter()
            .map(|&(code, name)| CountryOption {
                code,
                name,
                selected: form.country == code,
            })
            .collect(),
        form,
        preview,
        error,
        notice,
        batches: batches
            .into_iter()
            .map(|batch| BatchLine {
                id: batch.id,
                criteria: batch.criteria,
                reason: batch.reason,
                affected: format_count(batch.affected),
                created_at: batch.created_at.format("%Y-%m-%d %H:%M").to_string(),
                by: batch
                    .user_email
                    .unwrap_or_else(|| "a removed account".to_owned()),
                reverted_at: batch
                    .reverted_at
                    .map(|at| at.format("%Y-%m-%d %H:%M").to_string()),
            })
            .collect(),
        slug: petition.slug,
        title: petition.title,
    };
    render_page(status, &page)
}

#[get("/admin/petitions/{slug}/signatures/bulk")]
async fn bulk_page(
    state: web::Data<AppState>,
    managed: ManagedPetition,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let ManagedPetition {
        signed_in,
        petition,
    } = managed;
    let query = parse_urlencoded(request.query_string().as_bytes()).unwrap_or_default();
    let form = BulkForm::from_fields(&query);
    render_bulk(
        &state,
        &signed_in,
        petition,
        form,
        None,
        None,
        bulk_notice(&query),
    )
    .await
}

#[post("/admin/petitions/{slug}/signatures/bulk")]
async fn bulk_submit(
    state: web::Data<AppState>,
    posted: ManagedForm,
) -> Result<HttpResponse, AppError> {
    let ManagedForm {
        signed_in,
        petition,
        fields,
    } = posted;
    let form = BulkForm::from_fields(&fields);
    let slug = petition.slug.clone();
    // Every refusal of the criteria or the reason shows the form again with its message.
    match bulk_action(&state, signed_in.user.id, petition.id, &fields).await {
        Ok(BulkOutcome::Previewed(preview)) => {
            render_bulk(
                &state,
                &signed_in,
                petition,
                form,
                Some(preview),
                None,
                None,
            )
            .await
        }
        Ok(BulkOutcome::Applied(affected)) => {
            state.public_views.forget(&slug);
            Ok(bulk_done(&slug, "applied", affected))
        }
        Err(AppError::BadRequest(message)) => {
            render_bulk(
                &state,
                &signed_in,
                petition,
                form,
                None,
                Some(message),
                None,
            )
            .await
        }
        Err(other) => Err(other),
    }
}

enum BulkOutcome {
    Previewed(Preview),
    Applied(i64),
}

/// Previews or applies a bulk invalidation as the form asks.
async fn bulk_action(
    state: &AppState,
    user_id: i64,
    petition_id: i64,
    fields: &FormFields,
) -> Result<BulkOutcome, AppError> {
    let action = fields.get("action").unwrap_or_default();
    if action != "preview" && action != "apply" {
        return Err(AppError::BadRequest("Choose preview or apply.".to_owned()));
    }
    let criteria = Criteria::parse(fields).map_err(AppError::BadRequest)?;
    let key = state.data_key.clone();
    if action == "preview" {
        let described = criteria.describe();
        let (count, sample) = db::run(&state.pool, move |conn| {
            bulk::preview(conn, &key, petition_id, &criteria)
        })
        .await?;
        return Ok(BulkOutcome::Previewed(Preview {
            criteria: described,
            count: format_count(count),
            sample: sample
                .into_iter()
                .map(|row| SampleLine {
                    id: row.id,
                    country: country_name(&row.country),
                    signed_at: row.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    name: row.name,
                    email: row.email,
                    status: row.status,
                })
                .collect(),
        }));
    }
    let reason =
        Reason::parse(fields.get("reason").unwrap_or_default()).map_err(AppError::BadRequest)?;
    let (_, affected) = db::run(&state.pool, move |conn| {
        bulk::apply(conn, &key, petition_id, user_id, &criteria, &reason, now())
    })
    .await?;
    Ok(BulkOutcome::Applied(affected))
}

fn bulk_done(slug: &str, done: &str, n: i64) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            LOCATION,
            format!("/admin/petitions/{slug}/signatures/bulk?done={done}&n={n}"),
        ))
        .finish()
}

#[post("/admin/petitions/{slug}/signatures/bulk/{batch}/revert")]
async fn bulk_revert(
    state: web::Data<AppState>,
    // The form carries nothing but its CSRF token, which the extractor checked.
    posted: ManagedForm,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (_, raw_batch) = path.into_inner();
    let batch = parse_id(&raw_batch)
        .map_err(|_| AppError::NotFound("This petition has no such batch.".to_owned()))?;
    let (petition_id, user_id) = (posted.petition.id, posted.signed_in.user.id);
    let restored = db::run(&state.pool, move |conn| {
        bulk::revert(conn, petition_id, user_id, batch, now())
    })
    .await?;
    let slug = &posted.petition.slug;
    state.public_views.forget(slug);
    Ok(bulk_done(slug, "reverted", restored))
}
