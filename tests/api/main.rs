//! One integration-test binary: every story runs against the real server over HTTP, a real
//! SMTP receiver over TCP, and a real database: SQLite, and PostgreSQL (the local server, or
//! `UNDERSIGN_TEST_POSTGRES_URL`; `UNDERSIGN_TEST_POSTGRES=skip` marks those tests ignored).

// Shared by every story; not every helper is used by each build of the suite.
#[allow(dead_code)]
mod helpers;

mod access;
mod accounts;
mod bad_input;
mod caching;
mod command_line;
mod confirming;
mod delivery;
mod encryption;
mod events;
mod exports;
mod file_modes;
mod fraud;
mod group_commit;
mod hardening;
mod instances;
mod lifecycle;
mod mail;
mod moderation;
mod naughty;
mod organizer_api;
mod page_fixes;
mod pages;
mod privacy;
mod receipts;
mod second_reader;
mod signing;
mod startup;
mod stress;
