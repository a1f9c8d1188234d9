//! What a handler can ask for in its signature: the signed-in user of a workspace page (with
//! the form it posted, once its CSRF token is checked), the petition of a workspace page that
//! this user may run ([`ManagedPetition`], [`ManagedForm`]), and the caller of the organizer
//! API (with its petition: [`ApiPetition`]).

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, CookieJar, SameSite};
use actix_web::{web, FromRequest, HttpRequest};

use serde::Deserialize;

use super::errors::ApiError;
use super::http::{form_body_up_to, MAX_BODY_BYTES};
use super::AppState;
use crate::core::clock::now;
use crate::core::form::FormFields;
use crate::core::tokens::hash_token;
use crate::db;
use crate::error::AppError;
use crate::organizers::accounts::User;
use crate::organizers::{access, api_tokens, csrf, sessions};
use crate::petitions::Petition;

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

/// The `{slug}` segment of a petition's route. Read through `web::Path` so that it is decoded
/// exactly as the handlers' own `web::Path<String>` decoded it.
#[derive(Deserialize)]
struct SlugSegment {
    slug: String,
}

/// The petition `{slug}` if `user` may run it: [`access::petition_for`], so an unknown
/// petition and one the user may not run are the same 404.
async fn petition_at(request: &HttpRequest, user: &User) -> Result<Petition, AppError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the application state is missing")))?;
    // A `String` field always deserializes; a route without `{slug}` has no petition.
    let slug = web::Path::<SlugSegment>::extract(request)
        .await
        .map_err(|_| access::not_found())?
        .into_inner()
        .slug;
    let user = user.clone();
    db::run(&state.pool, move |conn| {
        access::petition_for(conn, &user, &slug)
    })
    .await
}

/// A workspace page about the petition `{slug}`: the signed-in user and the petition they may
/// run. Sign-in is asked for first, then anything else is 404, never 403.
pub struct ManagedPetition {
    pub signed_in: SignedIn,
    pub petition: Petition,
}

impl FromRequest for ManagedPetition {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let signed_in = signed_in.await?;
            let petition = petition_at(&request, &signed_in.user).await?;
            Ok(ManagedPetition {
                signed_in,
                petition,
            })
        })
    }
}

/// A form posted to a workspace page about the petition `{slug}`, of at most `LIMIT` bytes.
/// The order is the workspace's rule: sign-in, then the CSRF token (403), then the right to
/// the petition (404); the handler checks the fields after that.
pub struct ManagedForm<const LIMIT: usize = MAX_BODY_BYTES> {
    pub signed_in: SignedIn,
    pub petition: Petition,
    pub fields: FormFields,
}

impl<const LIMIT: usize> FromRequest for ManagedForm<LIMIT> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(request, payload);
        let body = web::Payload::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let signed_in = signed_in.await?;
            // Taking the payload cannot fail; the body is read only after sign-in.
            let body = body
                .await
                .map_err(|error| AppError::Internal(anyhow::anyhow!("{error}")))?;
            let fields = signed_in.posted_form_up_to(&request, body, LIMIT).await?;
            let petition = petition_at(&request, &signed_in.user).await?;
            Ok(ManagedForm {
                signed_in,
                petition,
                fields,
            })
        })
    }
}

/// An organizer API route about the petition `{slug}`: the caller (401 without a valid
/// token) and the petition they may run (404 otherwise, as JSON).
pub struct ApiPetition {
    pub caller: ApiCaller,
    pub petition: Petition,
}

impl FromRequest for ApiPetition {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = ApiCaller::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let caller = caller.await?;
            let petition = petition_at(&request, &caller.user).await?;
            Ok(ApiPetition { caller, petition })
        })
    }
}
