//! `/withdraw/{token}`: `GET` says what will happen and shows one button (mail scanners fetch
//! links but do not submit forms); `POST` withdraws. The rules are in `signatures::withdrawal`.

use actix_web::http::header::{HeaderValue, CACHE_CONTROL};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;

use crate::core::clock::now;
use crate::core::withdrawal_link::parse_token;
use crate::db;
use crate::error::AppError;
use crate::signatures::withdrawal::{look_up, withdraw, Found};
use crate::web::errors::render_page;
use crate::web::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(withdraw_page).service(withdraw_submit);
}

#[derive(Template)]
#[template(path = "signatures/withdraw.html")]
struct WithdrawPage {
    token: String,
    slug: String,
    title: String,
    counted: bool,
}

#[derive(Template)]
#[template(path = "signatures/withdrawn.html")]
struct WithdrawnPage {
    slug: String,
    title: String,
    already: bool,
}

fn link_not_found() -> AppError {
    AppError::NotFound(
        "This withdrawal link is not valid, or the signature it was for is no longer stored."
            .to_owned(),
    )
}

fn no_store(response: Result<HttpResponse, AppError>) -> Result<HttpResponse, AppError> {
    response.map(|mut response| {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    })
}

#[get("/withdraw/{token}")]
async fn withdraw_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let id = parse_token(&state.secrets, &token).ok_or_else(link_not_found)?;
    let found = db::run(&state.pool, move |conn| Ok(look_up(conn, id)?))
        .await?
        .ok_or_else(link_not_found)?;
    no_store(match found {
        Found::Active {
            slug,
            title,
            counted,
        } => render_page(
            StatusCode::OK,
            &WithdrawPage {
                token,
                slug,
                title,
                counted,
            },
        ),
        Found::AlreadyWithdrawn { slug, title } => render_page(
            StatusCode::OK,
            &WithdrawnPage {
                slug,
                title,
                already: true,
            },
        ),
    })
}

#[post("/withdraw/{token}")]
async fn withdraw_submit(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_token(&state.secrets, &token).ok_or_else(link_not_found)?;
    let found = db::run(&state.pool, move |conn| Ok(withdraw(conn, id, now())?))
        .await?
        .ok_or_else(link_not_found)?;
    let (slug, title, already) = match found {
        Found::Active { slug, title, .. } => (slug, title, false),
        Found::AlreadyWithdrawn { slug, title } => (slug, title, true),
    };
    state.public_views.forget(&slug);
    no_store(render_page(
        StatusCode::OK,
        &WithdrawnPage {
            slug,
            title,
            already,
        },
    ))
}
