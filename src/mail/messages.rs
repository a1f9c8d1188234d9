//! The emails undersign sends: what is stored in the outbox, and how it becomes a message
//! with a plain-text and an HTML part.

use askama::Template;
use chrono::NaiveDateTime;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use serde::{Deserialize, Serialize};

/// The email asking a signer to confirm their signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmationEmail {
    pub petition_title: String,
    pub petition_url: String,
    pub signer_name: String,
    pub confirm_url: String,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub enum OutgoingEmail {
    Confirmation(ConfirmationEmail),
}

#[derive(Template)]
#[template(path = "mail/confirmation.txt")]
struct ConfirmationText<'a> {
    email: &'a ConfirmationEmail,
    expires_on: String,
}

#[derive(Template)]
#[template(path = "mail/confirmation.html")]
struct ConfirmationHtml<'a> {
    email: &'a ConfirmationEmail,
    expires_on: String,
}

impl OutgoingEmail {
    /// The outbox `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            OutgoingEmail::Confirmation(_) => "confirmation",
        }
    }

    /// The outbox `payload` column.
    pub fn payload(&self) -> String {
        let json = match self {
            OutgoingEmail::Confirmation(email) => serde_json::to_string(email),
        };
        json.expect("email payloads are plain data and always serialise")
    }

    pub fn from_stored(kind: &str, payload: &str) -> anyhow::Result<Self> {
        match kind {
            "confirmation" => Ok(OutgoingEmail::Confirmation(serde_json::from_str(payload)?)),
            other => anyhow::bail!("unknown email kind {other:?}"),
        }
    }

    /// The link worth printing when emails go to files instead of an SMTP server.
    pub fn action_link(&self) -> &str {
        match self {
            OutgoingEmail::Confirmation(email) => &email.confirm_url,
        }
    }

    pub fn build(&self, from: &Mailbox, to: &str) -> anyhow::Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient address is not usable: {e}"))?;
        let (subject, text, html) = match self {
            OutgoingEmail::Confirmation(email) => {
                let expires_on = email.expires_at.format("%-d %B %Y, %H:%M UTC").to_string();
                let text = ConfirmationText {
                    email,
                    expires_on: expires_on.clone(),
                }
                .render()?;
                let html = ConfirmationHtml { email, expires_on }.render()?;
                (
                    format!("Please confirm your signature: {}", email.petition_title),
                    text,
                    html,
                )
            }
        };
        Ok(Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))?)
    }
}
