//! The emails undersign sends: what is stored in the outbox, and how it becomes a message
//! with a plain-text and an HTML part.
//!
//! Two things are decided when an email is sent rather than when it was queued ([`SendTime`]):
//! the signer's withdrawal link, and the petition's discreet settings (a neutral subject and
//! sender name, and no petition title in the body). So emails queued before an organizer
//! chose discretion are sent discreetly too, and the stored payloads need no new fields.

use askama::Template;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use serde::{Deserialize, Serialize};

use crate::db::schema::{outbox, petitions, signatures};
use crate::db::AnyConnection;
use crate::secrets::Secrets;

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

/// What an email gets when it is sent: the withdrawal link and the petition's discretion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendTime {
    /// `/withdraw/{token}` for the signature the email is about.
    pub withdraw_url: Option<String>,
    /// The petition's neutral subject, replacing the usual one.
    pub subject: Option<String>,
    /// The petition's sender display name, with the address of `UNDERSIGN_MAIL_FROM`.
    pub sender_name: Option<String>,
}

impl SendTime {
    /// A discreet email leaves the petition's title out of the subject and the body.
    pub fn discreet(&self) -> bool {
        self.subject.is_some() || self.sender_name.is_some()
    }

    /// Finds the signature an outbox row is about (a confirmation carries its id; a receipt is
    /// found by its commitment, unique to one signature), its withdrawal link and its
    /// petition's discreet settings. An email about no signature gets nothing.
    pub fn look_up(
        conn: &mut AnyConnection,
        outbox_id: i64,
        email: &OutgoingEmail,
        secrets: &Secrets,
        base_url: &str,
    ) -> QueryResult<Self> {
        let mut found = Self::look_up_batch(conn, &[(outbox_id, email)], secrets, base_url)?;
        Ok(found.pop().unwrap_or_default())
    }

    /// [`SendTime::look_up`] for a claimed batch, in the same order: three queries for the
    /// whole batch instead of two per email, which kept the outbox worker waiting on the
    /// database. Batches are at most 1000 emails, well within both backends' bind limits.
    pub fn look_up_batch(
        conn: &mut AnyConnection,
        emails: &[(i64, &OutgoingEmail)],
        secrets: &Secrets,
        base_url: &str,
    ) -> QueryResult<Vec<Self>> {
        use std::collections::HashMap;

        let confirmations: Vec<i64> = emails
            .iter()
            .filter(|(_, email)| matches!(email, OutgoingEmail::Confirmation(_)))
            .map(|(id, _)| *id)
            .collect();
        let receipts: Vec<&str> = emails
            .iter()
            .filter_map(|(_, email)| match email {
                OutgoingEmail::Receipt(receipt) => Some(receipt.receipt.as_str()),
                OutgoingEmail::Confirmation(_) => None,
            })
            .collect();
        let by_outbox_id: HashMap<i64, i64> = if confirmations.is_empty() {
            HashMap::new()
        } else {
            outbox::table
                .filter(outbox::id.eq_any(&confirmations))
                .select((outbox::id, outbox::signature_id))
                .load::<(i64, Option<i64>)>(conn)?
                .into_iter()
                .filter_map(|(id, signature)| Some((id, signature?)))
                .collect()
        };
        let by_commitment: HashMap<String, i64> = if receipts.is_empty() {
            HashMap::new()
        } else {
            signatures::table
                .filter(signatures::commitment.eq_any(&receipts))
                .select((signatures::commitment, signatures::id))
                .load::<(Option<String>, i64)>(conn)?
                .into_iter()
                .filter_map(|(commitment, id)| Some((commitment?, id)))
                .collect()
        };
        let signature_of = |(id, email): &(i64, &OutgoingEmail)| match email {
            OutgoingEmail::Confirmation(_) => by_outbox_id.get(id).copied(),
            OutgoingEmail::Receipt(receipt) => by_commitment.get(&receipt.receipt).copied(),
        };
        let signature_ids: Vec<i64> = emails.iter().filter_map(signature_of).collect();
        let settings: HashMap<i64, (Option<String>, Option<String>)> = if signature_ids.is_empty() {
            HashMap::new()
        } else {
            signatures::table
                .inner_join(petitions::table)
                .filter(signatures::id.eq_any(&signature_ids))
                .select((
                    signatures::id,
                    petitions::email_subject,
                    petitions::email_sender_name,
                ))
                .load::<(i64, Option<String>, Option<String>)>(conn)?
                .into_iter()
                .map(|(id, subject, sender)| (id, (subject, sender)))
                .collect()
        };
        let present = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        Ok(emails
            .iter()
            .map(|row| {
                let Some(signature_id) = signature_of(row) else {
                    return Self::default();
                };
                let Some((subject, sender_name)) = settings.get(&signature_id) else {
                    return Self::default();
                };
                Self {
                    withdraw_url: Some(crate::core::withdrawal_link::url_for(
                        base_url,
                        secrets,
                        signature_id,
                    )),
                    subject: present(subject),
                    sender_name: present(sender_name),
                }
            })
            .collect())
    }
}

#[derive(Template)]
#[template(path = "mail/confirmation.txt")]
struct ConfirmationText<'a> {
    email: &'a ConfirmationEmail,
    expires_on: String,
    discreet: bool,
    withdraw_url: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/confirmation.html")]
struct ConfirmationHtml<'a> {
    email: &'a ConfirmationEmail,
    expires_on: String,
    discreet: bool,
    withdraw_url: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/receipt.txt")]
struct ReceiptText<'a> {
    email: &'a ReceiptEmail,
    discreet: bool,
    withdraw_url: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/receipt.html")]
struct ReceiptHtml<'a> {
    email: &'a ReceiptEmail,
    discreet: bool,
    withdraw_url: Option<&'a str>,
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
        self.build_with(from, to, &SendTime::default())
    }

    /// The message, with what was decided at send time.
    pub fn build_with(
        &self,
        from: &Mailbox,
        to: &str,
        send_time: &SendTime,
    ) -> anyhow::Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient address is not usable: {e}"))?;
        let discreet = send_time.discreet();
        let withdraw_url = send_time.withdraw_url.as_deref();
        let (subject, text, html) = match self {
            OutgoingEmail::Confirmation(email) => {
                let expires_on = email.expires_at.format("%-d %B %Y, %H:%M UTC").to_string();
                let text = ConfirmationText {
                    email,
                    expires_on: expires_on.clone(),
                    discreet,
                    withdraw_url,
                }
                .render()?;
                let html = ConfirmationHtml {
                    email,
                    expires_on,
                    discreet,
                    withdraw_url,
                }
                .render()?;
                let subject = if discreet {
                    "Please confirm".to_owned()
                } else {
                    format!("Please confirm your signature: {}", email.petition_title)
                };
                (subject, text, html)
            }
            OutgoingEmail::Receipt(email) => {
                let subject = if discreet {
                    "Your receipt".to_owned()
                } else {
                    format!("Your receipt: {}", email.petition_title)
                };
                (
                    subject,
                    ReceiptText {
                        email,
                        discreet,
                        withdraw_url,
                    }
                    .render()?,
                    ReceiptHtml {
                        email,
                        discreet,
                        withdraw_url,
                    }
                    .render()?,
                )
            }
        };
        let subject = send_time.subject.clone().unwrap_or(subject);
        let from = match &send_time.sender_name {
            Some(name) => Mailbox::new(Some(name.clone()), from.email.clone()),
            None => from.clone(),
        };
        Ok(Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))?)
    }
}
