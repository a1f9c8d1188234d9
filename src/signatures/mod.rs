//! Signatures: signing, confirming by emailed link, withdrawing, moderating, and the rules that
//! make counts exact. Domain types (`domain`), confirmation tokens, the commitment a signer
//! gets as a receipt, queries, the group-commit writer and the dashboard's statistics. Their
//! pages are in `web::public` and `web::admin::signatures`.

pub mod bulk;
pub mod commitment;
pub mod counting;
pub mod domain;
pub mod moderation;
pub mod queries;
pub mod stats;
pub mod tokens;
pub mod withdrawal;
pub mod writer;
