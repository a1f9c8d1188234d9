//! The people who run petitions: accounts, passwords, sign-in sessions, CSRF, the sign-in
//! throttle, who may run which petition (`access`) and API tokens. Their pages are in
//! `web::admin`, the organizer API in `web::api`.

pub mod access;
pub mod accounts;
pub mod api_tokens;
pub mod csrf;
pub mod passwords;
pub mod sessions;
pub mod throttle;
