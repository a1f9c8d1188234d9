//! The workspace: sign-in (`/login`), `/admin` with users and API tokens, and one file per area
//! of `/admin/petitions/{slug}/…`.

pub mod dashboard;
pub mod deliveries;
pub mod events;
pub mod exports;
pub mod login;
pub mod petitions;
pub mod signatures;
pub mod workspace;
