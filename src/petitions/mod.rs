//! Petitions: what people sign. Rows and rules (`model`), queries, public pages and JSON,
//! the public views held in memory (`cache`), the workspace's petition forms (`admin`) and the
//! task that closes them on time (`maintenance`).

pub mod admin;
pub mod cache;
pub mod demo;
pub mod maintenance;
pub mod markdown;
pub mod model;
pub mod pages;
pub mod queries;
pub mod routes;

pub use model::{Petition, PetitionStatus};
