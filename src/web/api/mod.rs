//! The organizer API under `/api/v1/admin/…`, authenticated by bearer token.

pub mod admin;
