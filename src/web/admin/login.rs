//! `GET /login`, `POST /login`, `POST /logout`.

use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::core::tokens::hash_token;
use crate::db;
use crate::error::AppError;
use crate::organizers::sessions;
use crate::organizers::{accounts, csrf, passwords, throttle};
use crate::web::errors::render_page;
use crate::web::extract::{
    private_cookie, read_private_cookie, removal_cookie, SignedIn, SESSION_COOKIE,
};
use crate::web::http::{client_ip, form_body};
use crate::{core::clock::now, web::AppState};

/// Before sign-in there is no session: the sign-in form's CSRF token lives in its own
/// encrypted cookie.
const LOGIN_CSRF_COOKIE: &str = "undersign_login";

/// Set at a successful sign-in, so that the owner's browser is not slowed when a guesser
/// spread over many addresses has hit the account's ceiling (see `throttle`). Encrypted; it
/// holds a keyed hash of the account's email, nothing that signs anybody in.
pub const DEVICE_COOKIE: &str = "undersign_device";
const DEVICE_COOKIE_DAYS: i64 = 180;

fn device_value(state: &AppState, email: &str) -> String {
    state.secrets.keyed_hash("login device", email)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login_form).service(login).service(logout);
}

#[derive(Template)]
#[template(path = "organizers/login.html")]
struct LoginPage {
    csrf_token: String,
    email: String,
    message: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    email: String,
    message: Option<String>,
) -> Result<HttpResponse, AppError> {
    let csrf_token = sessions::random_token();
    let mut response = render_page(
        status,
        &LoginPage {
            csrf_token: csrf_token.clone(),
            email,
            message,
        },
    )?;
    response
        .add_cookie(&private_cookie(state, LOGIN_CSRF_COOKIE, csrf_token))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(response)
}

#[get("/login")]
async fn login_form(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    login_page(&state, StatusCode::OK, String::new(), None)
}

enum Attempt {
    Throttled(chrono::Duration),
    Checked {
        user: Option<accounts::User>,
        subjects: throttle::Subjects,
    },
}

#[post("/login")]
async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let form = form_body(&request, payload).await?;
    let expected = read_private_cookie(&request, &state, LOGIN_CSRF_COOKIE);
    csrf::check(expected.as_deref().unwrap_or(""), form.get("csrf_token"))?;
    let email = form.get("email").unwrap_or_default().trim().to_lowercase();
    let password = form.get("password").unwrap_or_default().to_owned();
    let subjects = throttle::Subjects::new(&state.secrets, &email, &client_ip(&request));
    let device = device_value(&state, &email);
    let known_device =
        read_private_cookie(&request, &state, DEVICE_COOKIE).is_some_and(|value| value == device);

    let lookup_email = email.clone();
    let attempt = db::run(&state.pool, move |conn| {
        if let Some(wait) = throttle::wait_before(conn, &subjects, known_device, now())? {
            return Ok(Attempt::Throttled(wait));
        }
        let user = accounts::find_by_email(conn, &lookup_email)?;
        Ok(Attempt::Checked { user, subjects })
    })
    .await?;
    let (user, subjects) = match attempt {
        Attempt::Throttled(wait) => {
            let mut response = login_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                email,
                Some(format!(
                    "Too many failed sign-ins. For your safety, wait {} and try again.",
                    throttle::in_words(wait)
                )),
            )?;
            response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(throttle::whole_seconds(wait)),
            );
            return Ok(response);
        }
        Attempt::Checked { user, subjects } => (user, subjects),
    };

    // Deliberately slow; an unknown account is checked against a dummy hash so the response
    // time does not tell which emails have accounts.
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let valid = web::block(move || passwords::verify(&password, stored.as_deref())).await?;

    let previous_session = read_private_cookie(&request, &state, SESSION_COOKIE);
    let signed_in = db::run(&state.pool, move |conn| {
        let now = now();
        match user.filter(|_| valid) {
            Some(user) => {
                throttle::clear_pair(conn, &subjects)?;
                // A new session at every sign-in; the one the browser had, if any, ends.
                if let Some(previous) = previous_session {
                    sessions::end(conn, &hash_token(&previous))?;
                }
                Ok(Some(sessions::start(conn, user.id, now)?))
            }
            None => {
                throttle::record_failure(conn, &subjects, now)?;
                Ok(None)
            }
        }
    })
    .await?;

    match signed_in {
        Some(token) => {
            let mut device_cookie = private_cookie(&state, DEVICE_COOKIE, device);
            device_cookie.set_path("/login");
            device_cookie.set_max_age(actix_web::cookie::time::Duration::days(DEVICE_COOKIE_DAYS));
            Ok(HttpResponse::SeeOther()
                .insert_header((LOCATION, "/admin"))
                .cookie(private_cookie(&state, SESSION_COOKIE, token))
                .cookie(removal_cookie(LOGIN_CSRF_COOKIE))
                .cookie(device_cookie)
                .finish())
        }
        None => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            email,
            Some("The email address or the password is not right.".to_owned()),
        ),
    }
}

#[post("/logout")]
async fn logout(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    // The form carries nothing but its CSRF token, which must check out.
    signed_in.posted_form(&request, payload).await?;
    let token_hash = signed_in.token_hash.clone();
    db::run(&state.pool, move |conn| {
        Ok(sessions::end(conn, &token_hash)?)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, "/login"))
        .cookie(removal_cookie(SESSION_COOKIE))
        .finish())
}
