//! What a handler can ask for in its signature: the signed-in user of a workspace page (with
//! the form it posted, once its CSRF token is checked) and the caller of the organizer API.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, CookieJar, SameSite};
use actix_web::{web, FromRequest, HttpRequest};

use super::errors::ApiError;
use super::http::{form_body_up_to, MAX_BODY_BYTES};
use super::AppState;
use crate::core::clock::now;
use crate::core::form::FormFields;
use crate::core::tokens::hash_token;
use crate::db;
use crate::error::AppError;
use crate::organizers::accounts::User;
use crate::organizers::{api_tokens, csrf, sessions};

pub const SESSION_COOKIE: &str = "undersign_session";

/// An encrypted cookie named `name` holding `value`.
pub fn private_cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(state.secure_cookies);
    cookie.set_path("/");
    let mut jar = CookieJar::new();
    jar.private_mut(&state.cookie_key).add(cookie);
    jar.get(name).cloned().expect("the cookie was just added")
}

/// A cookie that makes the browser forget `name`.
pub fn removal_cookie(name: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, "");
    cookie.set_path("/");
    cookie.make_removal();
    cookie
}

/// The decrypted value of the private cookie `name`, if present and authentic.
pub fn read_private_cookie(request: &HttpRequest, state: &AppState, name: &str) -> Option<String> {
    let cookie = request.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie.into_owned());
    jar.private(&state.cookie_key)
        .get(name)
        .map(|cookie| cookie.value().to_owned())
}

/// The signed-in user of a private page, with the session's CSRF token. Extracting it ends an
/// expired session and asks for sign-in (a redirect to `/login`).
pub struct SignedIn {
    pub user: User,
    pub csrf_token: String,
    pub token_hash: String,
}

impl SignedIn {
    /// The form this user posted, once its `csrf_token` matches the session's. Every private
    /// POST reads its form through here, so none can take a form without the check.
    pub async fn posted_form(
        &self,
        request: &HttpRequest,
        payload: web::Payload,
    ) -> Result<FormFields, AppError> {
        self.posted_form_up_to(request, payload, MAX_BODY_BYTES)
            .await
    }

    /// [`SignedIn::posted_form`] for the few forms that carry long texts.
    pub async fn posted_form_up_to(
        &self,
        request: &HttpRequest,
        payload: web::Payload,
        limit: usize,
    ) -> Result<FormFields, AppError> {
        let form = form_body_up_to(request, payload, limit).await?;
        csrf::check(&self.csrf_token, form.get("csrf_token"))?;
        Ok(form)
    }

    pub fn is_admin(&self) -> bool {
        self.user.is_admin()
    }

    /// Admin-only pages answer "not found" to everyone else.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::NotFound(
                "There is nothing at this address.".to_owned(),
            ))
        }
    }
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = state
            .as_ref()
            .and_then(|state| read_private_cookie(request, state, SESSION_COOKIE));
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token) else {
                return Err(AppError::SignInRequired);
            };
            let idle = state.session_idle;
            let max = state.session_max;
            let token_hash = hash_token(&token);
            let session = db::run(&state.pool, move |conn| {
                sessions::load(conn, &token_hash, now(), idle, max)?.ok_or(AppError::SignInRequired)
            })
            .await?;
            Ok(SignedIn {
                user: session.user,
                csrf_token: session.csrf_token,
                token_hash: session.token_hash,
            })
        })
    }
}

/// The caller of the organizer API, identified by a bearer token; 401 otherwise.
pub struct ApiCaller {
    pub user: User,
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let secret = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|secret| secret.trim().to_owned());
        Box::pin(async move {
            let unauthorized = || {
                ApiError(AppError::Unauthorized(
                    "Send a valid API token as `Authorization: Bearer TOKEN`.".to_owned(),
                ))
            };
            let (Some(state), Some(secret)) = (state, secret) else {
                return Err(unauthorized());
            };
            if secret.is_empty() || secret.len() > 200 {
                return Err(unauthorized());
            }
            let user = db::run(&state.pool, move |conn| {
                Ok(api_tokens::authenticate(conn, &secret, now())?)
            })
            .await?;
            user.map(|user| ApiCaller { user }).ok_or_else(unauthorized)
        })
    }
}
