//! The shared vocabulary every domain module speaks: statuses and disclosure choices with their
//! one string form each, countries, email addresses, hex digests, tokens, time and number
//! formats, the audit log, the clock and
//! the withdrawal link every email carries. Nothing here knows HTTP or any one domain.

pub mod audit;
pub mod clock;
pub mod countries;
pub mod email;
pub mod form;
pub mod format;
pub mod hex;
pub mod status;
pub mod text;
pub mod tokens;
pub mod withdrawal_link;
