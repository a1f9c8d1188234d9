//! `POST /p/{slug}/sign`, `GET /p/{slug}/signed`, `POST /api/v1/petitions/{slug}/signatures`,
//! `GET /confirm/{token}` and `POST /confirm/{token}`.

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::core::format::format_count;
use crate::db;
use crate::error::AppError;
use crate::petitions::cache::View;
use crate::petitions::queries as petition_queries;
use crate::safety::{self, reason};
use crate::signatures::domain::{SignatureInput, SignatureJson};
use crate::signatures::queries::{self, TokenLookup, TokenState};
use crate::signatures::tokens::confirmation_key;
use crate::signatures::writer::SignJob;
use crate::web::errors::{render_page, ApiError};
use crate::web::http::{client_ip, form_body, json_body};
use crate::web::public::petitions::load_page;
use crate::web::public::sign_form::SignatureForm;
use crate::web::public::signing_pages::{
    CheckInboxPage, ConfirmPage, ConfirmedPage, LinkProblemPage,
};
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_form)
        .service(check_inbox)
        .service(sign_api)
        .service(confirm_page)
        .service(confirm_submit);
}

#[post("/p/{slug}/sign")]
async fn sign_form(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let fields = form_body(&request, payload).await?;
    let input = SignatureInput::from_form(&fields);
    let verdict = state.safety.screen_form(
        fields.get(safety::HONEYPOT_FIELD),
        fields.get(safety::FORM_TOKEN_FIELD),
    );
    let client = client_ip(&request);
    match submit(&state, slug.clone(), input.clone(), client, verdict).await {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header((LOCATION, format!("/p/{slug}/signed")))
            .finish()),
        Err(AppError::Validation(errors)) => {
            let form = SignatureForm::with_errors(input, errors);
            let page = load_page(&state, slug, form).await?;
            render_page(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(other) => Err(other),
    }
}

#[get("/p/{slug}/signed")]
async fn check_inbox(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    // Every signer of the form lands here: served from memory like the petition page.
    let page = state
        .public_views
        .get(View::Signed, &slug, || async {
            let slug = slug.clone();
            let petition = db::run(&state.pool, move |conn| {
                petition_queries::find_public(conn, &slug)?.ok_or_else(crate::petitions::not_found)
            })
            .await?;
            let page = CheckInboxPage {
                slug: petition.slug,
                title: petition.title,
            };
            Ok::<_, AppError>(page.render()?.into_bytes())
        })
        .await?;
    Ok(super::respond(&page, &request, "text/html; charset=utf-8"))
}

#[post("/api/v1/petitions/{slug}/signatures")]
async fn sign_api(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let json: SignatureJson = json_body(&request, payload).await?;
    // The API has no form, so no honeypot or timing: only the limits and the domain list.
    let client = client_ip(&request);
    let input = SignatureInput::from_json(json);
    submit(&state, slug.into_inner(), input, client, None).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "status": "pending_confirmation" })))
}

/// The signing path shared by the form and the API: unknown petition 404, closed 409,
/// invalid input 422, otherwise the signature is stored (as suspect when an abuse check says
/// so: `verdict` from the form's own checks, then the domain list and the rate limits) and
/// its email queued. The outcome never changes the response. The database work is done by the
/// signature writer (`writer`), which answers once it is committed.
async fn submit(
    state: &web::Data<AppState>,
    slug: String,
    input: SignatureInput,
    client: String,
    verdict: Option<&'static str>,
) -> Result<(), AppError> {
    // Parsing and the domain list need no database: done here, off the writer's thread.
    let signature = input.parse();
    let safety = &state.safety;
    let suspect = if safety.checks {
        verdict.or_else(|| {
            let signature = signature.as_ref().ok()?;
            safety
                .disposable
                .contains(signature.email.domain())
                .then_some(reason::DISPOSABLE)
        })
    } else {
        None
    };
    let job = SignJob {
        slug,
        signature,
        client,
        suspect,
    };
    state.writer.sign(job).await?;
    Ok(())
}

#[get("/confirm/{token}")]
async fn confirm_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let Some(key) = confirmation_key(&token) else {
        return link_problem(TokenState::Unknown, None);
    };
    let lookup = db::run(&state.pool, move |conn| {
        Ok(queries::look_up_token(conn, &key, now())?)
    })
    .await?;
    match (lookup.state, lookup.petition) {
        (TokenState::Confirmable, Some(petition)) => private(render_page(
            StatusCode::OK,
            &ConfirmPage {
                token,
                slug: petition.slug,
                title: petition.title,
            },
        )),
        (token_state, petition) => outcome_page(
            TokenLookup {
                state: token_state,
                signature_id: None,
                petition,
                receipt: lookup.receipt,
            },
            &state.base_url,
        ),
    }
}

#[post("/confirm/{token}")]
async fn confirm_submit(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(key) = confirmation_key(&token.into_inner()) else {
        return link_problem(TokenState::Unknown, None);
    };
    // The writer confirms, commits, and wakes the outbox worker for the receipt email.
    let outcome = state.writer.confirm(key).await?;
    if let Some(petition) = &outcome.petition {
        state.public_views.forget(&petition.slug);
    }
    outcome_page(outcome, &state.base_url)
}

fn outcome_page(lookup: TokenLookup, base_url: &str) -> Result<HttpResponse, AppError> {
    match (lookup.state, lookup.petition) {
        (state @ (TokenState::Confirmable | TokenState::AlreadyConfirmed), Some(petition)) => {
            private(render_page(
                StatusCode::OK,
                &ConfirmedPage {
                    count: format_count(petition.signature_count),
                    signature_count: petition.signature_count,
                    goal: petition.goal.map(format_count),
                    share_url: format!("{base_url}/p/{}", petition.slug),
                    slug: petition.slug,
                    title: petition.title,
                    already: state == TokenState::AlreadyConfirmed,
                    receipt: lookup.receipt,
                },
            ))
        }
        (state, petition) => link_problem(state, petition),
    }
}

fn link_problem(
    state: TokenState,
    petition: Option<crate::petitions::Petition>,
) -> Result<HttpResponse, AppError> {
    let (status, heading, message) = match state {
        TokenState::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Confirmation links stay valid for a limited time. Sign again and we will send you a new one.",
        ),
        TokenState::PetitionClosed => (
            StatusCode::CONFLICT,
            "This petition has closed",
            "The petition stopped collecting signatures before this one was confirmed.",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "We could not find a signature waiting for this link. It may have been mistyped, or \
             the signature may have been removed. You can sign again.",
        ),
    };
    let (slug, title) = match petition {
        Some(petition) if state != TokenState::Unknown => {
            (Some(petition.slug), Some(petition.title))
        }
        _ => (None, None),
    };
    private(render_page(
        status,
        &LinkProblemPage {
            heading,
            message,
            slug,
            title,
        },
    ))
}

/// Pages reached through a personal link must not be stored by shared caches.
fn private(response: Result<HttpResponse, AppError>) -> Result<HttpResponse, AppError> {
    response.map(|mut response| {
        response.headers_mut().insert(
            CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
        response
    })
}
