//! `smtp-sink PORT COUNT_FILE [URL_FILE]`: the local SMTP receiver of bench/run.sh. Accepts
//! every message on 127.0.0.1:PORT, keeps none, counts them.
//!
//! It replaces a Python asyncio sink that parsed each message with the `email` package: that
//! took ~8 ms a message here, so the sink, not undersign, capped the outbox at ~120 emails/s.
//! This one uses the standard library only: a thread per connection (undersign opens a
//! handful of pooled connections) and a byte scan for the links.
//!
//! Speaks just enough SMTP for lettre without TLS or authentication: greeting 220, EHLO/HELO
//! 250, MAIL/RCPT/RSET/NOOP 250, DATA 354 then everything up to a lone "." 250, QUIT 221,
//! anything else 502. Every 100 ms (and never half-written: a temporary file is renamed) it
//! writes the number of messages received to COUNT_FILE, and to COUNT_FILE.last the Unix time
//! (seconds, with fractions) when the last one arrived, so the drain time is not rounded to the
//! poll interval of bench/run.sh. With URL_FILE, the path of every confirmation link found in a
//! message ("/confirm/TOKEN" in a text part: 7bit, quoted-printable or base64) is appended to
//! it, one a line, each token once, for the confirmation benchmark.
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Sink {
    count: AtomicU64,
    /// Microseconds since the Unix epoch when the last message arrived.
    last_micros: AtomicU64,
    urls: Option<Mutex<Links>>,
}

/// The file of confirmation links, and the tokens already written to it.
type Links = (BufWriter<File>, HashSet<Vec<u8>>);

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: smtp-sink PORT COUNT_FILE [URL_FILE]";
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect(usage);
    let count_file = args.next().expect(usage);
    let urls = args.next().map(|path| {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .expect("cannot open URL_FILE");
        Mutex::new((BufWriter::new(file), HashSet::new()))
    });
    let sink = Arc::new(Sink {
        count: AtomicU64::new(0),
        last_micros: AtomicU64::new(0),
        urls,
    });
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("cannot listen");

    let writer = sink.clone();
    std::thread::spawn(move || loop {
        writer.write_files(&count_file);
        std::thread::sleep(Duration::from_millis(100));
    });

    for stream in listener.incoming().flatten() {
        let sink = sink.clone();
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let _ = sink.session(stream);
        });
    }
}

impl Sink {
    fn write_files(&self, count_file: &str) {
        let count = self.count.load(Ordering::SeqCst);
        let last = self.last_micros.load(Ordering::SeqCst);
        if let Some(urls) = &self.urls {
            let _ = urls.lock().unwrap().0.flush();
        }
        let write = |path: String, text: String| {
            let tmp = format!("{path}.tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        };
        write(
            format!("{count_file}.last"),
            format!("{}.{:06}\n", last / 1_000_000, last % 1_000_000),
        );
        write(count_file.to_owned(), format!("{count}\n"));
    }

    fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut out = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        out.write_all(b"220 bench-sink ESMTP\r\n")?;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
            match verb.as_slice() {
                b"EHLO" => out.write_all(
                    b"250-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 33554432\r\n",
                )?,
                b"HELO" => out.write_all(b"250 bench-sink\r\n")?,
                b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => out.write_all(b"250 OK\r\n")?,
                b"DATA" => {
                    out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                    let mut message = Vec::new();
                    loop {
                        line.clear();
                        if reader.read_until(b'\n', &mut line)? == 0 {
                            return Ok(());
                        }
                        if line == b".\r\n" || line == b".\n" {
                            break;
                        }
                        let unstuffed = if line.starts_with(b"..") {
                            &line[1..]
                        } else {
                            &line[..]
                        };
                        message.extend_from_slice(unstuffed);
                    }
                    self.received(&message);
                    out.write_all(b"250 OK queued\r\n")?;
                }
                b"QUIT" => {
                    out.write_all(b"221 bye\r\n")?;
                    return Ok(());
                }
                _ => out.write_all(b"502 command not implemented\r\n")?,
            }
        }
    }

    fn received(&self, message: &[u8]) {
        if let Some(urls) = &self.urls {
            let tokens = confirm_tokens(message);
            let mut urls = urls.lock().unwrap();
            let (file, seen) = &mut *urls;
            for token in tokens {
                if seen.insert(token.clone()) {
                    let _ = file.write_all(b"/confirm/");
                    let _ = file.write_all(&token);
                    let _ = file.write_all(b"\n");
                }
            }
        }
        // Counted after the links are saved, so a reader that sees the count sees the links
        // (at the next write of the files).
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.last_micros.store(micros, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// The tokens of "/confirm/TOKEN" links (TOKEN: 16 or more of A-Z a-z 0-9 _ -) in the message:
/// in its raw text with quoted-printable soft line breaks removed, and in every base64 part.
fn confirm_tokens(message: &[u8]) -> Vec<Vec<u8>> {
    let mut texts = vec![remove_soft_breaks(message)];
    // Base64 parts: the lines after the blank line that ends a part's headers naming base64.
    let mut lines = message.split(|&b| b == b'\n').map(|l| l.trim_ascii_end());
    while let Some(line) = lines.next() {
        if !line
            .to_ascii_lowercase()
            .starts_with(b"content-transfer-encoding: base64")
        {
            continue;
        }
        for header in lines.by_ref() {
            if header.is_empty() {
                break;
            }
        }
        let mut encoded = Vec::new();
        for body in lines.by_ref() {
            if body.is_empty() || body.starts_with(b"--") {
                break;
            }
            encoded.extend_from_slice(body);
        }
        texts.push(decode_base64(&encoded));
    }
    let mut tokens = Vec::new();
    let needle = b"/confirm/";
    for text in texts {
        let mut at = 0;
        while let Some(found) = find(&text[at..], needle) {
            let start = at + found + needle.len();
            let len = text[start..]
                .iter()
                .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                .count();
            if len >= 16 {
                tokens.push(text[start..start + len].to_vec());
            }
            at = start;
        }
    }
    tokens
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn remove_soft_breaks(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'=' && text[i + 1..].starts_with(b"\r\n") {
            i += 3;
        } else if text[i] == b'=' && text[i + 1..].starts_with(b"\n") {
            i += 2;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

fn decode_base64(encoded: &[u8]) -> Vec<u8> {
    let value = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(encoded.len() * 3 / 4);
    let (mut bits, mut n) = (0_u32, 0);
    for sextet in encoded.iter().filter_map(|&b| value(b)) {
        bits = (bits << 6) | u32::from(sextet);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}
