//! Pages of the signing loop: "check your inbox", the confirm button, the outcome.

use askama::Template;

#[derive(Template)]
#[template(path = "signatures/check_inbox.html")]
pub struct CheckInboxPage {
    pub slug: String,
    pub title: String,
}

/// Shown on `GET /confirm/{token}`: one button, because mail scanners fetch links but do not
/// submit forms.
#[derive(Template)]
#[template(path = "signatures/confirm.html")]
pub struct ConfirmPage {
    pub token: String,
    pub slug: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "signatures/confirmed.html")]
pub struct ConfirmedPage {
    pub slug: String,
    pub title: String,
    pub count: String,
    /// The count as a number, for the plural in the template.
    pub signature_count: i64,
    pub goal: Option<String>,
    /// The petition's absolute address, to copy into a message (a relative one is no use there).
    pub share_url: String,
    pub already: bool,
    /// The signer's receipt: the commitment of their signature (64 hex digits).
    pub receipt: Option<String>,
}

/// An unusable confirmation link, with a way to sign again.
#[derive(Template)]
#[template(path = "signatures/link_problem.html")]
pub struct LinkProblemPage {
    pub heading: &'static str,
    pub message: &'static str,
    /// The petition to sign again, when the link was ours.
    pub slug: Option<String>,
    pub title: Option<String>,
}
