//! The private workspace's own pages: the petition list (`/admin`), accounts (`/admin/users`,
//! admins only) and API tokens (`/admin/tokens`).

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::core::audit;
use crate::core::format::format_count;
use crate::db;
use crate::error::AppError;
use crate::organizers::accounts::{self, Role, User};
use crate::organizers::passwords::{self, Password};
use crate::organizers::{access, api_tokens};
use crate::signatures::queries::pending_count;
use crate::web::errors::render_page;
use crate::web::extract::SignedIn;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(home)
        .service(users_page)
        .service(create_user)
        .service(tokens_page)
        .service(create_token)
        .service(revoke_token);
}

/// What every workspace page shows in its header.
pub struct Nav {
    pub email: String,
    pub is_admin: bool,
    pub csrf_token: String,
}

impl Nav {
    pub fn new(signed_in: &SignedIn) -> Self {
        Self {
            email: signed_in.user.email.clone(),
            is_admin: signed_in.is_admin(),
            csrf_token: signed_in.csrf_token.clone(),
        }
    }
}

pub struct PetitionRow {
    pub slug: String,
    pub title: String,
    pub status: &'static str,
    pub confirmed: String,
    pub pending: String,
}

#[derive(Template)]
#[template(path = "organizers/home.html")]
struct HomePage {
    nav: Nav,
    petitions: Vec<PetitionRow>,
}

#[get("/admin")]
async fn home(state: web::Data<AppState>, signed_in: SignedIn) -> Result<HttpResponse, AppError> {
    let user = signed_in.user.clone();
    let petitions = db::run(&state.pool, move |conn| {
        let now = now();
        let mut rows = Vec::new();
        for petition in access::petitions_for(conn, &user)? {
            rows.push(PetitionRow {
                status: petition.status_at(now).as_str(),
                confirmed: format_count(petition.signature_count),
                pending: format_count(pending_count(conn, petition.id)?),
                slug: petition.slug,
                title: petition.title,
            });
        }
        Ok(rows)
    })
    .await?;
    render_page(
        StatusCode::OK,
        &HomePage {
            nav: Nav::new(&signed_in),
            petitions,
        },
    )
}

#[derive(Template)]
#[template(path = "organizers/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<User>,
    message: Option<String>,
    error: Option<String>,
    email: String,
}

async fn users_page_with(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
    email: String,
) -> Result<HttpResponse, AppError> {
    let users = db::run(&state.pool, |conn| Ok(accounts::list(conn)?)).await?;
    render_page(
        status,
        &UsersPage {
            nav: Nav::new(signed_in),
            users,
            message,
            error,
            email,
        },
    )
}

#[get("/admin/users")]
async fn users_page(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, AppError> {
    signed_in.require_admin()?;
    users_page_with(
        &state,
        &signed_in,
        StatusCode::OK,
        None,
        None,
        String::new(),
    )
    .await
}

#[post("/admin/users")]
async fn create_user(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    signed_in.require_admin()?;
    let form = signed_in.posted_form(&request, payload).await?;
    let typed_email = form.get("email").unwrap_or_default().trim().to_owned();
    let checked = accounts::parse_account_email(&typed_email).and_then(|email| {
        let role = Role::parse(form.get("role").unwrap_or_default())?;
        let password = Password::parse(form.get("password").unwrap_or_default())?;
        Ok((email, role, password))
    });
    let (email, role, password) = match checked {
        Ok(valid) => valid,
        Err(problem) => {
            return users_page_with(
                &state,
                &signed_in,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(problem),
                typed_email,
            )
            .await
        }
    };
    let hash = web::block(move || passwords::hash(&password)).await??;
    let admin_id = signed_in.user.id;
    let created_email = email.clone();
    let created = db::run(&state.pool, move |conn| {
        let user = accounts::create(conn, &email, role, &hash, now())?;
        audit::record(
            conn,
            Some(admin_id),
            None,
            "user.create",
            &format!("{} ({})", user.email, role.as_str()),
            now(),
        )?;
        Ok(user)
    })
    .await;
    match created {
        Ok(_) => {
            users_page_with(
                &state,
                &signed_in,
                StatusCode::OK,
                Some(format!("The account {created_email} was created.")),
                None,
                String::new(),
            )
            .await
        }
        Err(AppError::Conflict(problem)) => {
            users_page_with(
                &state,
                &signed_in,
                StatusCode::CONFLICT,
                None,
                Some(problem),
                typed_email,
            )
            .await
        }
        Err(other) => Err(other),
    }
}

#[derive(Template)]
#[template(path = "organizers/tokens.html")]
struct TokensPage {
    nav: Nav,
    tokens: Vec<api_tokens::ApiToken>,
    /// A token just created: shown once, never again.
    new_secret: Option<String>,
}

async fn tokens_page_with(
    state: &AppState,
    signed_in: &SignedIn,
    new_secret: Option<String>,
) -> Result<HttpResponse, AppError> {
    let user_id = signed_in.user.id;
    let tokens = db::run(&state.pool, move |conn| {
        Ok(api_tokens::list_for_user(conn, user_id)?)
    })
    .await?;
    render_page(
        StatusCode::OK,
        &TokensPage {
            nav: Nav::new(signed_in),
            tokens,
            new_secret,
        },
    )
}

#[get("/admin/tokens")]
async fn tokens_page(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, AppError> {
    tokens_page_with(&state, &signed_in, None).await
}

#[post("/admin/tokens")]
async fn create_token(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let form = signed_in.posted_form(&request, payload).await?;
    let name = token_name(form.get("name").unwrap_or_default())?;
    let user_id = signed_in.user.id;
    let (_, secret) = db::run(&state.pool, move |conn| {
        let created = api_tokens::create(conn, user_id, &name, now())?;
        audit::record(conn, Some(user_id), None, "token.create", &name, now())?;
        Ok(created)
    })
    .await?;
    tokens_page_with(&state, &signed_in, Some(secret)).await
}

/// A token's label: trimmed, 1 to 100 characters, default "API token".
pub fn token_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "Give the token a name of at most 100 characters.".to_owned(),
        ));
    }
    Ok(if name.is_empty() { "API token" } else { name }.to_owned())
}

#[post("/admin/tokens/{id}/revoke")]
async fn revoke_token(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    token_id: web::Path<i64>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    // The form carries nothing but its CSRF token, which must check out.
    signed_in.posted_form(&request, payload).await?;
    let user_id = signed_in.user.id;
    let token_id = token_id.into_inner();
    let revoked = db::run(&state.pool, move |conn| {
        let revoked = api_tokens::revoke(conn, user_id, token_id, now())?;
        if revoked {
            audit::record(
                conn,
                Some(user_id),
                None,
                "token.revoke",
                &token_id.to_string(),
                now(),
            )?;
        }
        Ok(revoked)
    })
    .await?;
    if !revoked {
        return Err(AppError::NotFound("There is no such API token.".to_owned()));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, "/admin/tokens"))
        .finish())
}
