//! Signatures: signing (form and JSON), confirming by emailed link, and the rules that make
//! counts exact. Domain types (`domain`), tokens, queries, pages and routes.

pub mod countries;
pub mod domain;
pub mod form;
pub mod moderation;
pub mod pages;
pub mod queries;
pub mod routes;
pub mod stats;
pub mod tokens;
pub mod withdrawal;
pub mod writer;
