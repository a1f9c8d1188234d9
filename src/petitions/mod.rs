//! Petitions: what people sign. Rows and rules (`model`), queries, public pages and JSON.

pub mod admin;
pub mod demo;
pub mod markdown;
pub mod model;
pub mod pages;
pub mod queries;
pub mod routes;

pub use model::{Petition, PetitionStatus};
