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

/// The short email a signer gets once their signature is confirmed: the receipt, and where
/// to check it after the delivery. It names neither the signer nor their details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptEmail {
    pub petition_title: String,
    pub petition_url: String,
    /// The signature's commitment, 64 hex digits.
    pub receipt: String,
    /// The receipt checker with this receipt filled in.
    pub check_url: String,
}

#[derive(Debug, Clone)]
pub enum OutgoingEmail {
    Confirmation(ConfirmationEmail),
    Receipt(ReceiptEmail),
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

#[derive(Template)]
#[template(path = "mail/receipt.txt")]
struct ReceiptText<'a> {
    email: &'a ReceiptEmail,
}

#[derive(Template)]
#[template(path = "mail/receipt.html")]
struct ReceiptHtml<'a> {
    email: &'a ReceiptEmail,
}

impl OutgoingEmail {
    /// The outbox `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            OutgoingEmail::Confirmation(_) => "confirmation",
            OutgoingEmail::Receipt(_) => "receipt",
        }
    }

    /// The outbox `payload` column.
    pub fn payload(&self) -> String {
        let json = match self {
            OutgoingEmail::Confirmation(email) => serde_json::to_string(email),
            OutgoingEmail::Receipt(email) => serde_json::to_string(email),
        };
        json.expect("email payloads are plain data and always serialise")
    }

    pub fn from_stored(kind: &str, payload: &str) -> anyhow::Result<Self> {
        match kind {
            "confirmation" => Ok(OutgoingEmail::Confirmation(serde_json::from_str(payload)?)),
            "receipt" => Ok(OutgoingEmail::Receipt(serde_json::from_str(payload)?)),
            other => anyhow::bail!("unknown email kind {other:?}"),
        }
    }

    /// The link worth printing when emails go to files instead of an SMTP server.
    pub fn action_link(&self) -> &str {
        match self {
            OutgoingEmail::Confirmation(email) => &email.confirm_url,
            OutgoingEmail::Receipt(email) => &email.check_url,
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
            OutgoingEmail::Receipt(email) => (
                format!("Your receipt: {}", email.petition_title),
                ReceiptText { email }.render()?,
                ReceiptHtml { email }.render()?,
            ),
        };
        Ok(Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))?)
    }
}
