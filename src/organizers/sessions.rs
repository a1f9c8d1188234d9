//! Sign-in sessions. The browser holds a random token in an encrypted, signed cookie
//! (HttpOnly, SameSite=Lax, Secure on https); the database holds its SHA-256, the user, the
//! CSRF token and the times that decide idle and absolute expiry.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, CookieJar, SameSite};
use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::Rng;

use super::accounts::User;
use super::csrf;
use crate::db::schema::{user_sessions, users};
use crate::db::{self, AnyConnection};
use crate::error::AppError;
use crate::http::{form_body_up_to, FormFields, MAX_BODY_BYTES};
use crate::signatures::tokens::hash_token;
use crate::{now, AppState};

pub const SESSION_COOKIE: &str = "undersign_session";

/// Only refresh `last_seen_at` this often, so reading pages does not write on every request.
const TOUCH_EVERY_SECONDS: i64 = 60;

pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a session for `user_id`, returning the token for the cookie.
pub fn start(conn: &mut AnyConnection, user_id: i64, now: NaiveDateTime) -> QueryResult<String> {
    let token = random_token();
    diesel::insert_into(user_sessions::table)
        .values((
            user_sessions::token_hash.eq(hash_token(&token)),
            user_sessions::user_id.eq(user_id),
            user_sessions::csrf_token.eq(random_token()),
            user_sessions::created_at.eq(now),
            user_sessions::last_seen_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

pub fn end(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<()> {
    diesel::delete(user_sessions::table.find(token_hash)).execute(conn)?;
    Ok(())
}

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
            db::run(&state.pool, move |conn| {
                load(conn, &token_hash, now(), idle, max)?.ok_or(AppError::SignInRequired)
            })
            .await
        })
    }
}

/// Finds a live session, ending it if it has expired.
fn load(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: NaiveDateTime,
    idle: chrono::Duration,
    max: chrono::Duration,
) -> QueryResult<Option<SignedIn>> {
    let found: Option<(String, NaiveDateTime, NaiveDateTime, User)> = user_sessions::table
        .inner_join(users::table)
        .filter(user_sessions::token_hash.eq(token_hash))
        .select((
            user_sessions::csrf_token,
            user_sessions::created_at,
            user_sessions::last_seen_at,
            User::as_select(),
        ))
        .first(conn)
        .optional()?;
    let Some((csrf_token, created_at, last_seen_at, user)) = found else {
        return Ok(None);
    };
    if created_at + max <= now || last_seen_at + idle <= now {
        end(conn, token_hash)?;
        return Ok(None);
    }
    if (now - last_seen_at).num_seconds() >= TOUCH_EVERY_SECONDS {
        diesel::update(user_sessions::table.find(token_hash))
            .set(user_sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some(SignedIn {
        user,
        csrf_token,
        token_hash: token_hash.to_owned(),
    }))
}
