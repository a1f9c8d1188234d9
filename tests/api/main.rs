//! One integration-test binary: every story runs against the real server over HTTP, a real
//! SMTP receiver over TCP, and a real database: SQLite always, PostgreSQL when
//! `UNDERSIGN_TEST_POSTGRES_URL` is set.

mod helpers;

mod bad_input;
mod confirming;
mod mail;
mod pages;
mod signing;
mod startup;
