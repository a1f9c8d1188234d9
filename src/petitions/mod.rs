//! Petitions: what people sign. Rows and rules (`model`), queries, the public views held in
//! memory (`cache`), the demo petition and the task that closes petitions on time
//! (`maintenance`). Their pages are in `web::public` and `web::admin::petitions`.

pub mod cache;
pub mod demo;
pub mod lifecycle;
pub mod maintenance;
pub mod markdown;
pub mod model;
pub mod queries;

pub use model::Petition;

use crate::error::AppError;

/// The answer for a slug that names no petition (or one this user may not see).
pub fn not_found() -> AppError {
    AppError::NotFound("There is no petition at this address.".to_owned())
}
