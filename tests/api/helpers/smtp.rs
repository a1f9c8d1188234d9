//! A small, real SMTP server for integration tests.
//!
//! It listens on `127.0.0.1` over plain TCP, speaks just enough ESMTP for
//! lettre's `AsyncSmtpTransport` (pooled connections, no TLS, no AUTH) and
//! records every message it accepts. It can be stopped (closing the listener
//! and every open connection) and restarted on the same port to simulate a
//! mail server outage.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Upper bound for a single command or data line; longer lines are cut off
/// by closing the connection (protects tests against a runaway client).
const MAX_LINE: usize = 1024 * 1024;
/// Upper bound for a whole message.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// One message accepted by the receiver, with its SMTP envelope.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub raw: Vec<u8>,
}

/// Connection tasks of the currently running server instance.
type ConnectionHandles = Arc<Mutex<Vec<JoinHandle<()>>>>;

struct Running {
    accept_task: JoinHandle<()>,
    connections: ConnectionHandles,
}

/// An in-process SMTP server recording everything it receives.
pub struct SmtpReceiver {
    addr: SocketAddr,
    /// All messages received so far; receivers are notified on every push.
    mailbox: watch::Sender<Vec<ReceivedMail>>,
    running: Option<Running>,
}

impl SmtpReceiver {
    /// Binds 127.0.0.1:0 and starts accepting.
    pub async fn start() -> SmtpReceiver {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("SmtpReceiver: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("SmtpReceiver: cannot read the bound address");
        let (mailbox, _) = watch::channel(Vec::new());
        let mut receiver = SmtpReceiver {
            addr,
            mailbox,
            running: None,
        };
        receiver.run(listener);
        receiver
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port())
    }

    /// Stops listening and drops every open connection, so the port refuses
    /// connections. Messages received so far are kept. When this returns the
    /// listening socket and all accepted sockets have been closed.
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.accept_task.abort();
        // Awaiting an aborted task resolves only after its future (and with it
        // the listener) has been dropped.
        let _ = running.accept_task.await;
        // The accept task is gone, so nobody adds handles any more.
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&running.connections));
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            let _ = handle.await;
        }
    }

    /// Listens again on the same port, retrying the bind for up to ~2 s if the
    /// port is briefly busy. Does nothing if the receiver is already running.
    pub async fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) => {
                    if tokio::time::Instant::now() >= deadline {
                        panic!("SmtpReceiver: cannot re-bind {}: {err}", self.addr);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.run(listener);
    }

    /// How many messages have arrived so far; cheap, unlike [`SmtpReceiver::messages`], which
    /// copies them all.
    pub fn count(&self) -> usize {
        self.mailbox.borrow().len()
    }

    /// All messages received so far, in order of arrival.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.mailbox.borrow().clone()
    }

    /// Messages whose envelope recipients include `address` (case-insensitive).
    pub fn messages_to(&self, address: &str) -> Vec<ReceivedMail> {
        filter_to(&self.mailbox.borrow(), address)
    }

    /// Waits until at least `count` messages have arrived in total and returns
    /// all of them; panics after `timeout`.
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        self.wait_until(count, timeout, None).await
    }

    /// Waits until at least `count` messages to `address` have arrived and
    /// returns all messages to `address`; panics after `timeout`.
    pub async fn wait_for_messages_to(
        &self,
        address: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedMail> {
        self.wait_until(count, timeout, Some(address)).await
    }

    async fn wait_until(
        &self,
        count: usize,
        timeout: Duration,
        address: Option<&str>,
    ) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.mailbox.subscribe();
        loop {
            let matching = {
                let all = rx.borrow_and_update();
                match address {
                    Some(address) => filter_to(&all, address),
                    None => all.clone(),
                }
            };
            if matching.len() >= count {
                return matching;
            }
            // The sender lives in `self`, so `changed()` cannot fail here.
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let total = self.mailbox.borrow().len();
                match address {
                    Some(address) => panic!(
                        "SmtpReceiver: timed out after {timeout:?} waiting for {count} message(s) \
                         to {address}; {} arrived for that address ({total} in total)",
                        matching.len()
                    ),
                    None => panic!(
                        "SmtpReceiver: timed out after {timeout:?} waiting for {count} \
                         message(s); {total} arrived"
                    ),
                }
            }
        }
    }

    fn run(&mut self, listener: TcpListener) {
        let connections: ConnectionHandles = Arc::new(Mutex::new(Vec::new()));
        let mailbox = self.mailbox.clone();
        let conns = connections.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Transient errors (e.g. too many open files): back off briefly.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handle = tokio::spawn(serve_connection(stream, mailbox.clone()));
                let mut conns = lock(&conns);
                conns.retain(|h| !h.is_finished());
                conns.push(handle);
            }
        });
        self.running = Some(Running {
            accept_task,
            connections,
        });
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.accept_task.abort();
            for handle in lock(&running.connections).drain(..) {
                handle.abort();
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn filter_to(messages: &[ReceivedMail], address: &str) -> Vec<ReceivedMail> {
    messages
        .iter()
        .filter(|m| {
            m.envelope_to
                .iter()
                .any(|to| to.eq_ignore_ascii_case(address))
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------
// SMTP session
// ---------------------------------------------------------------------------

/// Serves one client connection until QUIT, disconnect or an I/O error.
async fn serve_connection(mut stream: TcpStream, mailbox: watch::Sender<Vec<ReceivedMail>>) {
    let (read_half, mut writer) = stream.split();
    let mut reader = BufReader::new(read_half);
    let _ = session(&mut reader, &mut writer, &mailbox).await;
    let _ = writer.shutdown().await;
}

async fn reply<W: AsyncWriteExt + Unpin>(writer: &mut W, text: &str) -> std::io::Result<()> {
    writer.write_all(text.as_bytes()).await?;
    writer.flush().await
}

/// Reads one line including its terminator. `Ok(None)` on EOF.
async fn read_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<()>> {
    buf.clear();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\n") && buf.len() >= MAX_LINE {
        return Err(std::io::Error::other("line too long"));
    }
    Ok(Some(()))
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Extracts the mailbox from `<addr> PARAMS...` (or a bare `addr PARAMS...`).
fn parse_path(arg: &str) -> String {
    let arg = arg.trim_start();
    if let Some(rest) = arg.strip_prefix('<') {
        match rest.find('>') {
            Some(end) => rest[..end].to_string(),
            None => rest.trim().to_string(),
        }
    } else {
        arg.split_whitespace().next().unwrap_or("").to_string()
    }
}

/// Strips a case-insensitive ASCII prefix.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

async fn session<R, W>(
    reader: &mut R,
    writer: &mut W,
    mailbox: &watch::Sender<Vec<ReceivedMail>>,
) -> std::io::Result<()>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    reply(writer, "220 localhost ESMTP test\r\n").await?;

    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();

    loop {
        if read_line(reader, &mut line).await?.is_none() {
            return Ok(());
        }
        let command = String::from_utf8_lossy(strip_eol(&line)).trim().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();

        match verb.as_str() {
            "EHLO" => {
                from = None;
                rcpts.clear();
                reply(
                    writer,
                    "250-localhost greets you\r\n\
                     250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n\
                     250 PIPELINING\r\n",
                )
                .await?;
            }
            "HELO" => {
                from = None;
                rcpts.clear();
                reply(writer, "250 localhost\r\n").await?;
            }
            "MAIL" => match strip_prefix_ci(&command, "MAIL FROM:") {
                Some(arg) => {
                    from = Some(parse_path(arg));
                    rcpts.clear();
                    reply(writer, "250 2.1.0 OK\r\n").await?;
                }
                None => reply(writer, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n").await?,
            },
            "RCPT" => match strip_prefix_ci(&command, "RCPT TO:") {
                Some(_) if from.is_none() => {
                    reply(writer, "503 5.5.1 Error: need MAIL command\r\n").await?
                }
                Some(arg) => {
                    rcpts.push(parse_path(arg));
                    reply(writer, "250 2.1.5 OK\r\n").await?;
                }
                None => reply(writer, "501 5.5.4 Syntax: RCPT TO:<address>\r\n").await?,
            },
            "DATA" => {
                if from.is_none() || rcpts.is_empty() {
                    reply(writer, "503 5.5.1 Error: need MAIL and RCPT commands\r\n").await?;
                    continue;
                }
                reply(writer, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut raw = Vec::new();
                loop {
                    if read_line(reader, &mut line).await?.is_none() {
                        // Disconnected in the middle of DATA: the message is lost.
                        return Ok(());
                    }
                    if strip_eol(&line) == b"." {
                        break;
                    }
                    // Undo dot-stuffing.
                    let content = if line.starts_with(b".") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    if raw.len() + content.len() > MAX_MESSAGE {
                        return Err(std::io::Error::other("message too large"));
                    }
                    raw.extend_from_slice(content);
                }
                let mail = ReceivedMail {
                    envelope_from: from.take().unwrap_or_default(),
                    envelope_to: std::mem::take(&mut rcpts),
                    raw,
                };
                mailbox.send_modify(|all| all.push(mail));
                reply(writer, "250 2.0.0 OK: queued\r\n").await?;
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                reply(writer, "250 2.0.0 OK\r\n").await?;
            }
            "NOOP" => reply(writer, "250 2.0.0 OK\r\n").await?,
            "QUIT" => {
                reply(writer, "221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => reply(writer, "502 5.5.2 Error: command not recognized\r\n").await?,
        }
    }
}

// ---------------------------------------------------------------------------
// Message inspection
// ---------------------------------------------------------------------------

impl ReceivedMail {
    fn parsed(&self) -> Message<'_> {
        MessageParser::default()
            .default_header_text()
            .parse(&self.raw)
            .unwrap_or_else(|| {
                panic!(
                    "SmtpReceiver: cannot parse message:\n{}",
                    String::from_utf8_lossy(&self.raw)
                )
            })
    }

    /// The decoded (RFC 2047) subject, or "" if there is none.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    /// The decoded value of the first header called `name` (case-insensitive).
    /// Address headers (From, To, Cc, Bcc, Reply-To, Sender) are rendered as
    /// `Name <addr>` / `addr`, comma-separated.
    pub fn header(&self, name: &str) -> Option<String> {
        let message = self.parsed();
        let is_address_header = [
            "from",
            "to",
            "cc",
            "bcc",
            "reply-to",
            "sender",
            "resent-from",
            "resent-to",
            "resent-cc",
            "resent-bcc",
            "resent-sender",
        ]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name));

        let header = message
            .headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))?;

        if is_address_header {
            if let HeaderValue::Address(address) = header.value() {
                return Some(format_address(address));
            }
        }

        // Everything else: the unfolded, RFC 2047-decoded raw value.
        let raw = message
            .raw_message
            .get(header.offset_start() as usize..header.offset_end() as usize)
            .unwrap_or_default();
        let value = match mail_parser::parsers::MessageStream::new(raw).parse_unstructured() {
            HeaderValue::Text(text) => text.into_owned(),
            HeaderValue::TextList(list) => list.join(" "),
            _ => String::new(),
        };
        Some(value.trim().to_string())
    }

    /// The decoded text/plain part, or "" if there is none. Line endings are
    /// normalised to `\n`.
    pub fn text_body(&self) -> String {
        let message = self.parsed();
        let text = message.text_bodies().find_map(|part| match &part.body {
            PartType::Text(text) if is_plain(part) => Some(text.replace("\r\n", "\n")),
            _ => None,
        });
        text.unwrap_or_default()
    }

    /// The decoded text/html part, or "" if there is none. Line endings are
    /// normalised to `\n`.
    pub fn html_body(&self) -> String {
        let message = self.parsed();
        let html = message.html_bodies().find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.replace("\r\n", "\n")),
            _ => None,
        });
        html.unwrap_or_default()
    }

    /// True if the message contains both a text/plain and a text/html part.
    pub fn has_text_and_html_parts(&self) -> bool {
        let message = self.parsed();
        let has_text = message
            .parts
            .iter()
            .any(|part| matches!(part.body, PartType::Text(_)) && is_plain(part));
        let has_html = message
            .parts
            .iter()
            .any(|part| matches!(part.body, PartType::Html(_)));
        has_text && has_html
    }

    /// Every http(s) URL in the decoded text body, in order.
    pub fn links(&self) -> Vec<String> {
        extract_links(&self.text_body())
    }
}

fn is_plain(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_type().is_none() || part.is_content_type("text", "plain")
}

fn format_address(address: &Address<'_>) -> String {
    address
        .iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(name), Some(email)) if !name.is_empty() => format!("{name} <{email}>"),
            (_, Some(email)) => email.to_string(),
            (Some(name), None) => name.to_string(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds `http://` and `https://` URLs; a URL ends at whitespace, `<`, `>`,
/// `"` or `)`. Trailing sentence punctuation (`.,;:!?'`) is dropped.
fn extract_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("http") {
        let candidate = &rest[pos..];
        let scheme_len = if candidate.starts_with("https://") {
            8
        } else if candidate.starts_with("http://") {
            7
        } else {
            rest = &rest[pos + 4..];
            continue;
        };
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ')'))
            .unwrap_or(candidate.len());
        let url = candidate[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', '\'']);
        if url.len() > scheme_len {
            links.push(url.to_string());
        }
        rest = &candidate[end.max(scheme_len)..];
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_extracted() {
        let text = "Confirm: https://example.org/c/abc?x=1&y=2.\n\
                    (see http://example.org/a) <https://x.y/z> \"https://q.r/s\" httpfoo";
        assert_eq!(
            extract_links(text),
            vec![
                "https://example.org/c/abc?x=1&y=2",
                "http://example.org/a",
                "https://x.y/z",
                "https://q.r/s",
            ]
        );
    }

    #[test]
    fn parses_multipart_message() {
        let raw = "From: =?utf-8?q?P=C3=A9tition?= <noreply@example.org>\r\n\
                   To: someone@example.org\r\n\
                   Subject: =?utf-8?b?w4ljaGFudGlsbG9u?=\r\n\
                   MIME-Version: 1.0\r\n\
                   Content-Type: multipart/alternative; boundary=\"XX\"\r\n\
                   \r\n\
                   --XX\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\
                   \r\n\
                   Hello =C3=A9, click https://example.org/confirm/=\r\n\
                   token123 now\r\n\
                   --XX\r\n\
                   Content-Type: text/html; charset=utf-8\r\n\
                   \r\n\
                   <p>Hello</p>\r\n\
                   --XX--\r\n";
        let mail = ReceivedMail {
            envelope_from: "noreply@example.org".into(),
            envelope_to: vec!["someone@example.org".into()],
            raw: raw.as_bytes().to_vec(),
        };
        assert_eq!(mail.subject(), "Échantillon");
        assert_eq!(
            mail.header("from").unwrap(),
            "Pétition <noreply@example.org>"
        );
        assert_eq!(mail.header("To").unwrap(), "someone@example.org");
        assert_eq!(mail.header("mime-version").unwrap(), "1.0");
        assert!(mail.header("X-Missing").is_none());
        assert!(mail.text_body().contains("Hello é"));
        assert_eq!(mail.html_body().trim(), "<p>Hello</p>");
        assert!(mail.has_text_and_html_parts());
        assert_eq!(mail.links(), vec!["https://example.org/confirm/token123"]);
    }

    async fn expect_reply(stream: &mut BufReader<TcpStream>, code: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            stream.read_line(&mut line).await.unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }

    #[tokio::test]
    async fn session_stop_and_restart() {
        let mut receiver = SmtpReceiver::start().await;
        let port = receiver.port();
        let mut client = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        expect_reply(&mut client, "220").await;
        for (cmd, code) in [
            ("EHLO test\r\n", "250"),
            ("NOOP\r\n", "250"),
            (
                "MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8\r\n",
                "250",
            ),
            ("RCPT TO:<B@Example.org>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: hi\r\n\r\n..dotted\r\n.\r\n", "250"),
            ("VRFY x\r\n", "502"),
        ] {
            client.get_mut().write_all(cmd.as_bytes()).await.unwrap();
            expect_reply(&mut client, code).await;
        }
        let got = receiver
            .wait_for_messages_to("b@example.org", 1, Duration::from_secs(2))
            .await;
        assert_eq!(got[0].envelope_from, "a@example.org");
        assert_eq!(got[0].raw, b"Subject: hi\r\n\r\n.dotted\r\n");
        assert_eq!(receiver.messages().len(), 1);
        assert!(receiver.messages_to("nobody@example.org").is_empty());

        receiver.stop().await;
        // The open connection has been closed by the server...
        let mut buf = [0u8; 16];
        let n = client.get_mut().read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
        // ...and the port refuses new ones.
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
        assert_eq!(receiver.messages().len(), 1);

        receiver.restart().await;
        assert_eq!(receiver.port(), port);
        let mut client = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        expect_reply(&mut client, "220").await;
        client.get_mut().write_all(b"QUIT\r\n").await.unwrap();
        expect_reply(&mut client, "221").await;
    }
}
