//! The workspace's petition pages: writing petitions in the browser (with a Markdown preview),
//! moving them through their states and choosing who runs them.
//!
//! | route | who |
//! | --- | --- |
//! | `GET /admin/petitions/new`, `POST /admin/petitions` (`action=preview\|save`) | any account; the creator becomes the draft's organizer |
//! | `GET`, `POST /admin/petitions/{slug}/edit` (`action=preview\|save`) | the petition's organizers and admins |
//! | `POST /admin/petitions/{slug}/status` (`to=open\|closed`, optional `closes_on`; delivered only by delivering) | the petition's organizers and admins; reopening: admins |
//! | `GET /admin/petitions/{slug}/organizers` | the petition's organizers and admins |
//! | `POST /admin/petitions/{slug}/organizers` (`action=add&email=…`, `action=remove&user_id=…`) | admins |
//!
//! Someone who may not see a petition gets 404 from each of its routes, never 403: nobody
//! learns which petitions exist. Someone who may see it but not do the thing asked (an
//! organizer reopening a petition, or changing who runs it) gets 403 with the reason.
//! Every change is one write transaction that also writes its audit entry.

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::core::audit;
use crate::core::form::FormFields;
use crate::core::status::PetitionStatus;
use crate::db::schema::petitions;
use crate::db::{self, is_unique_violation, write_transaction, AnyConnection};
use crate::error::{AppError, FieldErrors};
use crate::organizers::access;
use crate::organizers::accounts::{self, User};
use crate::petitions::lifecycle;
use crate::petitions::markdown::render_safe;
use crate::petitions::model::{last_open_day, Petition, PetitionInput, Target, Version};
use crate::petitions::queries::{self, OrganizerRow};
use crate::web::admin::workspace::Nav;
use crate::web::errors::render_page;
use crate::web::extract::{ManagedPetition, SignedIn};
use crate::web::http::MAX_PETITION_FORM_BYTES;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(new_form)
        .service(create)
        .service(edit_form)
        .service(edit)
        .service(change_status)
        .service(organizers_page)
        .service(change_organizers);
}

// ---------------------------------------------------------------------------------------------
// States

/// The status buttons `user` sees for `petition` now, as (`to`, label) pairs in the order they
/// appear (the rule is `petitions::lifecycle::allowed_transitions`). The status form posts `to`
/// to `/admin/petitions/{slug}/status`.
pub fn status_buttons(
    petition: &Petition,
    user: &User,
    now: NaiveDateTime,
) -> Vec<(&'static str, &'static str)> {
    let from = petition.status_at(now);
    lifecycle::allowed_transitions(petition, user.is_admin(), now)
        .into_iter()
        .map(|to| {
            let label = match (from, to) {
                (PetitionStatus::Draft, _) => "Open for signatures",
                (_, PetitionStatus::Closed) => "Close now",
                _ => "Reopen for signatures",
            };
            (to.as_str(), label)
        })
        .collect()
}

/// `POST /admin/petitions/{slug}/status`: `to` is the new status; `closes_on` (optional,
/// `YYYY-MM-DD`) sets a new closing date when opening.
///
/// Closing dates: closing by hand sets `closes_at` to now (if it was later or unset), so the
/// page says until when signatures were collected. Opening a draft keeps its closing date,
/// but a date that has passed is refused (edit the petition first). Reopening (admins) takes
/// `closes_on` when given; otherwise a closing date that has passed is cleared, and the
/// petition stays open until someone closes it.
#[post("/admin/petitions/{slug}/status")]
async fn change_status(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    slug: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let form = signed_in.posted_form(&request, payload).await?;
    let to = form
        .get("to")
        .and_then(PetitionStatus::parse)
        .ok_or_else(|| {
            AppError::BadRequest("Choose the new status: open, closed or delivered.".to_owned())
        })?;
    let closes_on = match form.get("closes_on").map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(parse_day(raw).map_err(AppError::BadRequest)?),
    };
    let user = signed_in.user.clone();
    let slug = slug.into_inner();
    let location = format!("/admin/petitions/{slug}");
    db::run(&state.pool, move |conn| {
        write_transaction(conn, |conn| {
            let now = now();
            let petition = access::petition_for(conn, &user, &slug)?;
            lifecycle::check_transition(&petition, user.is_admin(), to, now)?;
            // An open petition past its closing date is closed already; say so in the log
            // before saying what happened next.
            queries::close_if_expired(conn, petition.id, now)?;
            let from = petition.status_at(now);
            let closes_at = lifecycle::closing_time_for(&petition, from, to, closes_on, now)?;
            queries::set_status(conn, petition.id, to, closes_at, now)?;
            let mut details = format!("{} → {}", from.as_str(), to.as_str());
            if closes_at != petition.closes_at {
                match closes_at {
                    Some(time) => details.push_str(&format!("; closes at {time} UTC")),
                    None => details.push_str("; no closing date"),
                }
            }
            audit::record(
                conn,
                Some(user.id),
                Some(petition.id),
                "petition.status",
                &details,
                now,
            )?;
            Ok(())
        })
    })
    .await?;
    state.public_views.forget_all();
    Ok(see_other(&location))
}

// ---------------------------------------------------------------------------------------------
// The petition form

/// What the petition form holds, exactly as typed (line endings normalised), so that a form
/// shown again keeps the input.
#[derive(Debug, Clone, Default)]
pub struct PetitionFormInput {
    pub title: String,
    pub slug: String,
    pub summary: String,
    pub body: String,
    /// One "Name, Role" per line.
    pub targets: String,
    pub goal: String,
    /// `YYYY-MM-DD`, the last day signatures are collected.
    pub closes_on: String,
    /// Discreet emails: a neutral subject and sender name (edit form only; empty = usual).
    pub email_subject: String,
    pub email_sender_name: String,
}

/// Longest discreet subject and sender name, in characters.
const MAX_EMAIL_SUBJECT: usize = 150;
const MAX_SENDER_NAME: usize = 80;

/// A discreet email setting as typed: trimmed, empty means "not set", one line of at most
/// `max` characters without control characters (which could break the email's headers).
fn discreet_setting(raw: &str, max: usize) -> Result<Option<String>, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().any(char::is_control) {
        return Err("Write it on one line, without control characters.".to_owned());
    }
    if value.chars().count() > max {
        return Err(format!("Keep it to {max} characters or fewer."));
    }
    Ok(Some(value.to_owned()))
}

/// Browsers send text areas with CRLF line endings; the stored text (and its SHA-256) uses LF.
fn normalise_lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn parse_day(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "Write the date as YYYY-MM-DD, e.g. 2027-03-31.".to_owned())
}

impl PetitionFormInput {
    fn from_form(form: &FormFields) -> Self {
        let field = |name: &str| normalise_lines(form.get(name).unwrap_or_default());
        Self {
            title: field("title"),
            slug: field("slug"),
            summary: field("summary"),
            body: field("body"),
            targets: field("targets"),
            goal: field("goal"),
            closes_on: field("closes_on"),
            email_subject: field("email_subject"),
            email_sender_name: field("email_sender_name"),
        }
    }

    fn from_petition(petition: &Petition, version: &Version, targets: &[Target]) -> Self {
        Self {
            title: version.title.clone(),
            slug: petition.slug.clone(),
            summary: version.summary.clone(),
            body: version.body.clone(),
            targets: targets
                .iter()
                .map(|target| {
                    if target.role.is_empty() {
                        target.name.clone()
                    } else {
                        format!("{}, {}", target.name, target.role)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            goal: petition
                .goal
                .map(|goal| goal.to_string())
                .unwrap_or_default(),
            closes_on: petition
                .closes_at
                .map(|closes| last_open_day(closes).format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            email_subject: String::new(),
            email_sender_name: String::new(),
        }
    }

    /// The typed-in petition for [`PetitionInput::parse_fields`], and the messages for fields
    /// that are not even well-formed (a goal that is not a number, a date that is not a date).
    fn to_input(&self) -> (PetitionInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let goal_text: String = self
            .goal
            .chars()
            .filter(|c| !matches!(c, ',' | '_' | ' ' | '\u{a0}'))
            .collect();
        let goal = if goal_text.is_empty() {
            None
        } else {
            match goal_text.parse::<i64>() {
                Ok(goal) => Some(goal),
                Err(_) => {
                    errors.insert(
                        "goal",
                        vec![
                            "Write the goal as a whole number, e.g. 10000, or leave it empty."
                                .to_owned(),
                        ],
                    );
                    None
                }
            }
        };
        let closes_on = if self.closes_on.trim().is_empty() {
            None
        } else {
            match parse_day(&self.closes_on) {
                Ok(day) => Some(day),
                Err(message) => {
                    errors.insert("closes_on", vec![message]);
                    None
                }
            }
        };
        let input = PetitionInput {
            slug: self.slug.clone(),
            title: self.title.clone(),
            summary: self.summary.clone(),
            body: self.body.clone(),
            targets: self
                .targets
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            goal,
            closes_on,
        };
        (input, errors)
    }

    /// The form's text as the public page would show it.
    fn preview(&self) -> Preview {
        Preview {
            title: self.title.trim().to_owned(),
            summary: self.summary.trim().to_owned(),
            targets: self
                .targets
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| match line.split_once(',') {
                    Some((name, role)) => (name.trim().to_owned(), role.trim().to_owned()),
                    None => (line.to_owned(), String::new()),
                })
                .collect(),
            body_html: render_safe(self.body.trim()),
        }
    }
}

/// Adds `more` to `errors`, field by field.
fn merge(errors: &mut FieldErrors, more: FieldErrors) {
    for (field, messages) in more {
        errors.entry(field).or_default().extend(messages);
    }
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldErrors {
    FieldErrors::from([(field, vec![message.into()])])
}

/// The messages per field, as the templates ask for them.
#[derive(Debug, Default)]
pub struct Messages(FieldErrors);

impl Messages {
    pub fn first(&self, field: &str) -> Option<&str> {
        self.0
            .get(field)
            .and_then(|m| m.first())
            .map(String::as_str)
    }

    pub fn all(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub struct Preview {
    pub title: String,
    pub summary: String,
    pub targets: Vec<(String, String)>,
    pub body_html: String,
}

/// What the edit form shows about the petition being edited.
pub struct Editing {
    pub slug: String,
    pub status: &'static str,
    pub is_draft: bool,
    pub versions: usize,
    pub current_hash: String,
    pub transitions: Vec<StatusButton>,
}

/// One status change offered on the edit page.
pub struct StatusButton {
    pub to: &'static str,
    pub label: &'static str,
    /// Opening may set a new closing date.
    pub asks_closing_date: bool,
    /// What the change does, in a sentence.
    pub hint: &'static str,
}

#[derive(Template)]
#[template(path = "petitions/admin_form.html")]
struct PetitionFormPage {
    nav: Nav,
    /// Where the form posts.
    action: String,
    editing: Option<Editing>,
    input: PetitionFormInput,
    errors: Messages,
    preview: Option<Preview>,
}

#[derive(Clone, Copy)]
enum FormAction {
    Preview,
    Save,
}

fn form_action(form: &FormFields) -> Result<FormAction, AppError> {
    match form.get("action") {
        Some("preview") => Ok(FormAction::Preview),
        Some("save") => Ok(FormAction::Save),
        _ => Err(AppError::BadRequest(
            "Choose Preview or Save at the bottom of the form.".to_owned(),
        )),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location.to_owned()))
        .finish()
}

/// A save that could not be made: the form is shown again with these messages and status, or
/// the request fails as a whole.
enum SaveError {
    Invalid(StatusCode, FieldErrors),
    Failed(AppError),
}

impl From<AppError> for SaveError {
    fn from(error: AppError) -> Self {
        SaveError::Failed(error)
    }
}

impl From<diesel::result::Error> for SaveError {
    fn from(error: diesel::result::Error) -> Self {
        // The only unique column a save writes is the slug (another save took it meanwhile).
        if is_unique_violation(&error) {
            SaveError::Invalid(StatusCode::CONFLICT, slug_taken())
        } else {
            SaveError::Failed(error.into())
        }
    }
}

fn slug_taken() -> FieldErrors {
    field_error(
        "slug",
        "Another petition already has this address: choose another.",
    )
}

/// Runs a save in one write transaction; an invalid save writes nothing.
async fn save<T, F>(
    state: &AppState,
    f: F,
) -> Result<Result<T, (StatusCode, FieldErrors)>, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, SaveError> + Send + 'static,
{
    db::run(&state.pool, move |conn| match write_transaction(conn, f) {
        Ok(value) => Ok(Ok(value)),
        Err(SaveError::Invalid(status, errors)) => Ok(Err((status, errors))),
        Err(SaveError::Failed(error)) => Err(error),
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Creating

#[get("/admin/petitions/new")]
async fn new_form(signed_in: SignedIn) -> Result<HttpResponse, AppError> {
    render_page(
        StatusCode::OK,
        &PetitionFormPage {
            nav: Nav::new(&signed_in),
            action: "/admin/petitions".to_owned(),
            editing: None,
            input: PetitionFormInput::default(),
            errors: Messages::default(),
            preview: None,
        },
    )
}

/// `POST /admin/petitions`: `action=preview` shows the form again with the text rendered;
/// `action=save` creates the petition as a draft run by the signed-in account.
#[post("/admin/petitions")]
async fn create(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let form = signed_in
        .posted_form_up_to(&request, payload, MAX_PETITION_FORM_BYTES)
        .await?;
    let action = form_action(&form)?;
    let input = PetitionFormInput::from_form(&form);
    let page = |status: StatusCode, input: PetitionFormInput, errors: FieldErrors| {
        render_page(
            status,
            &PetitionFormPage {
                nav: Nav::new(&signed_in),
                action: "/admin/petitions".to_owned(),
                editing: None,
                preview: matches!(action, FormAction::Preview).then(|| input.preview()),
                input,
                errors: Messages(errors),
            },
        )
    };
    if let FormAction::Preview = action {
        return page(StatusCode::OK, input, FieldErrors::new());
    }
    let (raw, mut errors) = input.to_input();
    let mut petition = match raw.parse_fields(now().date()) {
        Ok(petition) if errors.is_empty() => petition,
        Ok(_) => return page(StatusCode::UNPROCESSABLE_ENTITY, input, errors),
        Err(more) => {
            merge(&mut errors, more);
            return page(StatusCode::UNPROCESSABLE_ENTITY, input, errors);
        }
    };
    petition.status = PetitionStatus::Draft;
    petition.organizer_ids = vec![signed_in.user.id];
    let user_id = signed_in.user.id;
    let saved = save(&state, move |conn| {
        if queries::slug_exists(conn, &petition.slug)? {
            return Err(SaveError::Invalid(StatusCode::CONFLICT, slug_taken()));
        }
        let now = now();
        let created = queries::insert(conn, &petition, now)?;
        audit::record(
            conn,
            Some(user_id),
            Some(created.id),
            "petition.create",
            &format!("draft {:?}", created.slug),
            now,
        )?;
        Ok(created.slug)
    })
    .await?;
    match saved {
        Ok(slug) => Ok(see_other(&format!("/admin/petitions/{slug}"))),
        Err((status, errors)) => page(status, input, errors),
    }
}

// ---------------------------------------------------------------------------------------------
// Editing

fn delivered_conflict() -> AppError {
    AppError::Conflict(
        "This petition was delivered: its text and details can no longer be changed.".to_owned(),
    )
}

/// The petition as it stands, for the edit form; delivered petitions cannot be edited.
fn load_for_edit(
    conn: &mut AnyConnection,
    user: &User,
    petition: &Petition,
) -> Result<(Editing, PetitionFormInput), AppError> {
    let now = now();
    let status = petition.status_at(now);
    if status == PetitionStatus::Delivered {
        return Err(delivered_conflict());
    }
    let version = queries::current_version(conn, petition.id)?;
    let targets = queries::targets(conn, petition.id)?;
    let versions = queries::version_history(conn, petition.id)?.len();
    let editing = Editing {
        slug: petition.slug.clone(),
        status: status.as_str(),
        is_draft: status == PetitionStatus::Draft,
        versions,
        current_hash: version.text_sha256.chars().take(12).collect(),
        transitions: status_buttons(petition, user, now)
            .into_iter()
            .map(|(to, label)| StatusButton {
                to,
                label,
                asks_closing_date: to == "open",
                hint: match (to, status) {
                    ("open", PetitionStatus::Draft) => {
                        "The public can see and sign it from now on."
                    }
                    ("open", _) => {
                        "Without a new closing date, a closing date that has passed is removed."
                    }
                    ("closed", _) => "Signatures stop now; the closing date becomes this moment.",
                    _ => "Final: a delivered petition can no longer be edited or reopened.",
                },
            })
            .collect(),
    };
    let (email_subject, email_sender_name): (Option<String>, Option<String>) = petitions::table
        .find(petition.id)
        .select((petitions::email_subject, petitions::email_sender_name))
        .first(conn)?;
    let mut input = PetitionFormInput::from_petition(petition, &version, &targets);
    input.email_subject = email_subject.unwrap_or_default();
    input.email_sender_name = email_sender_name.unwrap_or_default();
    Ok((editing, input))
}

#[get("/admin/petitions/{slug}/edit")]
async fn edit_form(
    state: web::Data<AppState>,
    managed: ManagedPetition,
) -> Result<HttpResponse, AppError> {
    let ManagedPetition {
        signed_in,
        petition,
    } = managed;
    let user = signed_in.user.clone();
    let (editing, input) = db::run(&state.pool, move |conn| {
        load_for_edit(conn, &user, &petition)
    })
    .await?;
    render_page(
        StatusCode::OK,
        &PetitionFormPage {
            nav: Nav::new(&signed_in),
            action: format!("/admin/petitions/{}/edit", editing.slug),
            editing: Some(editing),
            input,
            errors: Messages::default(),
            preview: None,
        },
    )
}

/// `POST /admin/petitions/{slug}/edit`: `action=preview` or `action=save`.
///
/// Saving replaces the targets, goal and closing date in place. A changed title, summary or
/// text becomes a new version (signatures keep pointing at the version their signers saw),
/// except in a draft, whose only version is rewritten: nobody has seen or signed it, and the
/// public page should not announce changes made before it was published. The slug can change
/// only while the petition is a draft; the closing date of a closed petition cannot change (an
/// admin reopens it with a new one); delivered petitions cannot be edited at all.
#[post("/admin/petitions/{slug}/edit")]
async fn edit(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    slug: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let form = signed_in
        .posted_form_up_to(&request, payload, MAX_PETITION_FORM_BYTES)
        .await?;
    let action = form_action(&form)?;
    let input = PetitionFormInput::from_form(&form);
    let slug = slug.into_inner();
    let user = signed_in.user.clone();

    let saved = match action {
        FormAction::Preview => None,
        FormAction::Save => {
            let (user, slug, input) = (user.clone(), slug.clone(), input.clone());
            Some(
                save(&state, move |conn| {
                    save_edit(conn, &user, &slug, &input, now())
                })
                .await?,
            )
        }
    };
    let errors = match saved {
        Some(Ok(new_slug)) => {
            state.public_views.forget_all();
            return Ok(see_other(&format!("/admin/petitions/{new_slug}")));
        }
        Some(Err(invalid)) => Some(invalid),
        None => None,
    };
    // Preview, or the form again with its messages: the petition as it stands, the input kept.
    let (editing, _) = db::run(&state.pool, move |conn| {
        let petition = access::petition_for(conn, &user, &slug)?;
        load_for_edit(conn, &user, &petition)
    })
    .await?;
    let (status, errors) = errors.unwrap_or((StatusCode::OK, FieldErrors::new()));
    render_page(
        status,
        &PetitionFormPage {
            nav: Nav::new(&signed_in),
            action: format!("/admin/petitions/{}/edit", editing.slug),
            editing: Some(editing),
            preview: matches!(action, FormAction::Preview).then(|| input.preview()),
            input,
            errors: Messages(errors),
        },
    )
}

/// Checks and saves an edit inside the caller's write transaction. Returns the (new) slug.
fn save_edit(
    conn: &mut AnyConnection,
    user: &User,
    slug: &str,
    input: &PetitionFormInput,
    now: NaiveDateTime,
) -> Result<String, SaveError> {
    let petition = access::petition_for(conn, user, slug)?;
    let status = petition.status_at(now);
    if status == PetitionStatus::Delivered {
        return Err(delivered_conflict().into());
    }
    let (mut raw, mut errors) = input.to_input();
    // An unchanged closing date stays as it is, even if it has passed.
    let keep_closing =
        !errors.contains_key("closes_on") && raw.closes_on == petition.closes_at.map(last_open_day);
    if keep_closing {
        raw.closes_on = None;
    } else if status == PetitionStatus::Closed && !errors.contains_key("closes_on") {
        errors.insert(
            "closes_on",
            vec![
                "This petition is closed, so its closing date cannot change. An administrator \
                  can reopen it with a new closing date."
                    .to_owned(),
            ],
        );
    }
    if raw.slug.trim() != petition.slug && status != PetitionStatus::Draft {
        errors.entry("slug").or_default().push(format!(
            "The address can change only while the petition is a draft: people may already \
             have shared /p/{}.",
            petition.slug
        ));
    }
    let email_subject = discreet_setting(&input.email_subject, MAX_EMAIL_SUBJECT)
        .map_err(|message| errors.insert("email_subject", vec![message]))
        .ok()
        .flatten();
    let email_sender_name = discreet_setting(&input.email_sender_name, MAX_SENDER_NAME)
        .map_err(|message| errors.insert("email_sender_name", vec![message]))
        .ok()
        .flatten();
    let mut new = match raw.parse_fields(now.date()) {
        Ok(new) if errors.is_empty() => new,
        Ok(_) => return Err(SaveError::Invalid(StatusCode::UNPROCESSABLE_ENTITY, errors)),
        Err(more) => {
            merge(&mut errors, more);
            return Err(SaveError::Invalid(StatusCode::UNPROCESSABLE_ENTITY, errors));
        }
    };
    if keep_closing {
        new.closes_at = petition.closes_at;
    }
    if new.slug != petition.slug && queries::slug_exists(conn, &new.slug)? {
        return Err(SaveError::Invalid(StatusCode::CONFLICT, slug_taken()));
    }

    let current = queries::current_version(conn, petition.id)?;
    let text_changed = (new.title.as_str(), new.summary.as_str(), new.body.as_str())
        != (
            current.title.as_str(),
            current.summary.as_str(),
            current.body.as_str(),
        );
    let mut details = Vec::new();
    if !text_changed {
        details.push("text unchanged".to_owned());
    } else if status == PetitionStatus::Draft {
        queries::rewrite_version(conn, current.id, &new.title, &new.summary, &new.body, now)?;
        details.push("draft text rewritten, no new version".to_owned());
    } else {
        queries::add_version(conn, petition.id, &new.title, &new.summary, &new.body, now)?;
        let hash = crate::petitions::model::text_sha256(&new.title, &new.summary, &new.body);
        details.push(format!("new text version {}", &hash[..12]));
    }
    if new.slug != petition.slug {
        details.push(format!("slug {} → {}", petition.slug, new.slug));
    }
    if new.goal != petition.goal {
        details.push(match new.goal {
            Some(goal) => format!("goal {goal}"),
            None => "no goal".to_owned(),
        });
    }
    if new.closes_at != petition.closes_at {
        details.push(match new.closes_at {
            Some(time) => format!("closes at {time} UTC"),
            None => "no closing date".to_owned(),
        });
    }
    let (old_subject, old_sender): (Option<String>, Option<String>) = petitions::table
        .find(petition.id)
        .select((petitions::email_subject, petitions::email_sender_name))
        .first(conn)?;
    if (old_subject.as_deref(), old_sender.as_deref())
        != (email_subject.as_deref(), email_sender_name.as_deref())
    {
        details.push(if email_subject.is_some() || email_sender_name.is_some() {
            "discreet emails set".to_owned()
        } else {
            "discreet emails off".to_owned()
        });
        diesel::update(petitions::table.find(petition.id))
            .set((
                petitions::email_subject.eq(&email_subject),
                petitions::email_sender_name.eq(&email_sender_name),
            ))
            .execute(conn)?;
    }
    queries::update_details(conn, petition.id, &new, now)?;
    queries::replace_targets(conn, petition.id, &new.targets)?;
    audit::record(
        conn,
        Some(user.id),
        Some(petition.id),
        "petition.edit",
        &details.join("; "),
        now,
    )?;
    Ok(new.slug)
}

// ---------------------------------------------------------------------------------------------
// Organizers

#[derive(Template)]
#[template(path = "petitions/admin_organizers.html")]
struct OrganizersPage {
    nav: Nav,
    slug: String,
    title: String,
    organizers: Vec<OrganizerRow>,
    /// Only admins change who runs a petition.
    can_change: bool,
    email: String,
    errors: Messages,
}

/// Renders the organizers page of a petition the user runs (checked by the caller).
async fn organizers_page_with(
    state: &AppState,
    signed_in: &SignedIn,
    petition: Petition,
    status: StatusCode,
    email: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let petition_id = petition.id;
    let organizers = db::run(&state.pool, move |conn| {
        Ok(queries::organizers(conn, petition_id)?)
    })
    .await?;
    render_page(
        status,
        &OrganizersPage {
            nav: Nav::new(signed_in),
            slug: petition.slug,
            title: petition.title,
            organizers,
            can_change: signed_in.is_admin(),
            email,
            errors: Messages(errors),
        },
    )
}

#[get("/admin/petitions/{slug}/organizers")]
async fn organizers_page(
    state: web::Data<AppState>,
    managed: ManagedPetition,
) -> Result<HttpResponse, AppError> {
    organizers_page_with(
        &state,
        &managed.signed_in,
        managed.petition,
        StatusCode::OK,
        String::new(),
        FieldErrors::new(),
    )
    .await
}

/// `POST /admin/petitions/{slug}/organizers` (admins): `action=add&email=…` makes an existing
/// account an organizer (adding someone twice changes nothing); `action=remove&user_id=…`
/// removes one, but never the last: a petition keeps at least one organizer.
#[post("/admin/petitions/{slug}/organizers")]
async fn change_organizers(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    slug: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let form = signed_in.posted_form(&request, payload).await?;
    let slug = slug.into_inner();
    let location = format!("/admin/petitions/{slug}/organizers");
    let typed_email = form.get("email").unwrap_or_default().trim().to_owned();
    let change = match form.get("action") {
        Some("add") => OrganizerChange::Add(typed_email.clone()),
        Some("remove") => OrganizerChange::Remove(
            form.get("user_id")
                .and_then(|id| id.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    AppError::BadRequest("Choose the organizer to remove.".to_owned())
                })?,
        ),
        _ => {
            return Err(AppError::BadRequest(
                "Choose whether to add or remove an organizer.".to_owned(),
            ))
        }
    };
    let user = signed_in.user.clone();
    let target_slug = slug.clone();
    let saved = save(&state, move |conn| {
        change_organizer(conn, &user, &target_slug, change, now())
    })
    .await?;
    match saved {
        Ok(()) => Ok(see_other(&location)),
        Err((status, errors)) => {
            // Shown again after the change was refused, so who may see it is asked again.
            let user = signed_in.user.clone();
            let petition = db::run(&state.pool, move |conn| {
                access::petition_for(conn, &user, &slug)
            })
            .await?;
            organizers_page_with(&state, &signed_in, petition, status, typed_email, errors).await
        }
    }
}

enum OrganizerChange {
    Add(String),
    Remove(i64),
}

fn change_organizer(
    conn: &mut AnyConnection,
    user: &User,
    slug: &str,
    change: OrganizerChange,
    now: NaiveDateTime,
) -> Result<(), SaveError> {
    let petition = access::petition_for(conn, user, slug)?;
    if !user.is_admin() {
        return Err(AppError::Forbidden(
            "Only an administrator can change who runs a petition.".to_owned(),
        )
        .into());
    }
    match change {
        OrganizerChange::Add(typed) => {
            let email = accounts::parse_account_email(&typed).map_err(|message| {
                SaveError::Invalid(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    field_error("email", message),
                )
            })?;
            let Some(account) = accounts::find_by_email(conn, &email)? else {
                return Err(SaveError::Invalid(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    field_error(
                        "email",
                        format!("There is no account for {email}. Create it under Accounts first."),
                    ),
                ));
            };
            if access::is_organizer(conn, petition.id, account.id)? {
                return Ok(());
            }
            access::add_organizer(conn, petition.id, account.id, now)?;
            audit::record(
                conn,
                Some(user.id),
                Some(petition.id),
                "petition.organizer.add",
                &account.email,
                now,
            )?;
        }
        OrganizerChange::Remove(user_id) => {
            let organizers = queries::organizers(conn, petition.id)?;
            let Some(removed) = organizers.iter().find(|o| o.user_id == user_id) else {
                return Err(AppError::NotFound(
                    "That account does not run this petition.".to_owned(),
                )
                .into());
            };
            if organizers.len() == 1 {
                return Err(AppError::Conflict(
                    "A petition keeps at least one organizer: add another one before removing \
                     the last."
                        .to_owned(),
                )
                .into());
            }
            access::remove_organizer(conn, petition.id, user_id)?;
            audit::record(
                conn,
                Some(user.id),
                Some(petition.id),
                "petition.organizer.remove",
                &removed.email,
                now,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_input_normalises_line_endings_and_reads_numbers() {
        let form = crate::core::form::parse_urlencoded(
            b"title=T&body=a%0D%0Ab&targets=A%2C+B%0D%0A%0D%0AC&goal=10%2C000&closes_on=2027-01-31",
        )
        .unwrap();
        let input = PetitionFormInput::from_form(&form);
        assert_eq!(input.body, "a\nb");
        let (raw, errors) = input.to_input();
        assert!(errors.is_empty());
        assert_eq!(raw.targets, ["A, B", "C"]);
        assert_eq!(raw.goal, Some(10_000));
        assert_eq!(raw.closes_on, NaiveDate::from_ymd_opt(2027, 1, 31));
        let form = crate::core::form::parse_urlencoded(b"goal=lots&closes_on=31.01.2027").unwrap();
        let (_, errors) = PetitionFormInput::from_form(&form).to_input();
        assert!(errors.contains_key("goal") && errors.contains_key("closes_on"));
    }
}
