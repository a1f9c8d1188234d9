//! The private workspace of organizers and admins: accounts, passwords, sign-in sessions,
//! CSRF, throttling, access rules, the audit log, API tokens, the dashboard and the organizer
//! API.

pub mod access;
pub mod accounts;
pub mod api;
pub mod api_tokens;
pub mod audit;
pub mod csrf;
pub mod dashboard;
pub mod events;
pub mod login;
pub mod moderation_routes;
pub mod passwords;
pub mod sessions;
pub mod throttle;
pub mod workspace;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    login::configure(cfg);
    workspace::configure(cfg);
    dashboard::configure(cfg);
    events::configure(cfg);
    api::configure(cfg);
}
