//! Where messages go: an SMTP server (pooled connections), or `.eml` files in a folder for
//! local runs without a mail server.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

#[derive(Debug)]
pub enum SendError {
    /// Worth retrying later: connection refused, time-out, 4xx replies.
    Transient(String),
    /// Retrying cannot help: the server refused the message or the recipient (5xx).
    Permanent(String),
}

impl Mailer {
    /// `smtp_url` in lettre's URL form; `None` writes files into `mail_dir`. `connections`:
    /// the SMTP connections kept open (the worker sends as many emails at once).
    pub fn new(
        smtp_url: Option<&str>,
        mail_dir: &std::path::Path,
        connections: usize,
    ) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| {
                        anyhow::anyhow!("UNDERSIGN_SMTP_URL is not a usable SMTP URL: {e}")
                    })?
                    .pool_config(
                        PoolConfig::new().max_size(u32::try_from(connections).unwrap_or(u32::MAX)),
                    )
                    .timeout(Some(Duration::from_secs(20)))
                    .build();
                Ok(Mailer::Smtp(transport))
            }
            None => {
                // The messages hold signers' addresses and links: for the owner only.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(mail_dir)
                    .with_context(|| {
                        format!("cannot create the mail folder {}", mail_dir.display())
                    })?;
                Ok(Mailer::Files(mail_dir.to_path_buf()))
            }
        }
    }

    pub fn writes_files(&self) -> bool {
        matches!(self, Mailer::Files(_))
    }

    /// Sends `message`; `outbox_id` names the file when writing to a folder.
    pub async fn send(&self, message: Message, outbox_id: i64) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| {
                let text = redact_addresses(&e.to_string());
                if e.is_permanent() {
                    SendError::Permanent(text)
                } else {
                    SendError::Transient(text)
                }
            }),
            Mailer::Files(dir) => {
                let path = dir.join(format!("{outbox_id:08}.eml"));
                let partial = dir.join(format!(".{outbox_id:08}.eml.partial"));
                let bytes = message.formatted();
                // Written aside and renamed, so a reader never sees half a message.
                tokio::task::spawn_blocking(move || {
                    // A file left by a crash keeps its old mode: the new one is created 0600.
                    let _ = std::fs::remove_file(&partial);
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&partial)?
                        .write_all(&bytes)?;
                    std::fs::rename(&partial, &path)
                })
                .await
                .map_err(|e| SendError::Transient(e.to_string()))?
                .map_err(|e| SendError::Transient(format!("cannot write the email file: {e}")))
            }
        }
    }
}

/// SMTP replies often quote the recipient; errors are logged and stored without addresses.
pub fn redact_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_addresses;

    #[test]
    fn removes_addresses_from_errors() {
        assert_eq!(
            redact_addresses("permanent error (550): <ana@example.org> unknown"),
            "permanent error (550): <address> unknown"
        );
    }
}
