//! `undersign verify --key-url`: fetch an instance's published signing key over HTTPS.
//!
//! A blocking HTTP/1.1 GET over rustls (already in the build through lettre), checked against
//! the usual web roots and optionally one extra CA. Only https, no redirects, a small answer:
//! the key is only as trustworthy as the address the recipient typed, so nothing here guesses.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::signing_key::{PublicKey, ALGORITHM};

const TIMEOUT: Duration = Duration::from_secs(15);
/// The published key is a few hundred bytes; anything much larger is not it.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The parts of an `https://` address that the request needs.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// `host` or `host:port` as written, for the `Host` header.
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some((scheme, _)) => bail!(
            "it must be an https:// address, not {scheme}://: over plain HTTP anybody on the \
             way could hand you their own key"
        ),
        None => bail!(
            "it must be an https:// address, e.g. \
             https://petitions.example.org/.well-known/undersign/signing-key"
        ),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    // The fragment is the browser's, never sent.
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if authority.is_empty() || authority.contains('@') {
        bail!("give an address like https://petitions.example.org/…, without a user name");
    }
    if path.chars().any(|c| c.is_control() || c == ' ') {
        bail!("the address contains spaces or control characters");
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| anyhow!("an IPv6 address lacks its closing ]"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 443,
        Some(port) => port
            .parse()
            .map_err(|_| anyhow!("{port:?} is not a port number"))?,
    };
    if host.is_empty() {
        bail!("the address has no host name");
    }
    Ok(Target {
        host: host.to_owned(),
        port,
        authority: authority.to_owned(),
        path,
    })
}

fn tls_config(extra_ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let mut added = 0;
        for certificate in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read the CA file {}", path.display()))?
        {
            let certificate = certificate
                .with_context(|| format!("the CA file {} is not PEM", path.display()))?;
            roots.add(certificate).with_context(|| {
                format!("the CA file {} holds a bad certificate", path.display())
            })?;
            added += 1;
        }
        if added == 0 {
            bail!("the CA file {} holds no certificate", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The status line and headers of an answer, once they have all arrived.
struct Head {
    status: u16,
    length: Option<usize>,
    chunked: bool,
    /// Where the body starts in the buffer.
    body_at: usize,
}

fn parse_head(buffer: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..end]).context("the answer's headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP answer: {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("a bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    Ok(Some(Head {
        status,
        length,
        chunked,
        body_at: end + 4,
    }))
}

/// The status and body of a complete answer in `buffer`, `None` while more is to come (an
/// answer without a length or chunks is complete only when the connection closes).
fn complete_body(buffer: &[u8]) -> anyhow::Result<Option<(u16, Vec<u8>)>> {
    let Some(head) = parse_head(buffer)? else {
        return Ok(None);
    };
    let body = &buffer[head.body_at..];
    if head.chunked {
        return Ok(dechunk(body)?.map(|body| (head.status, body)));
    }
    Ok(match head.length {
        Some(length) if body.len() >= length => Some((head.status, body[..length].to_vec())),
        _ => None,
    })
}

/// A chunked body, once its last (empty) chunk has arrived.
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..line_end]).context("a bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("a bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn get(url: &str, extra_ca: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let target = parse_url(url)?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| anyhow!("{:?} is not a host name", target.host))?;
    let connection = rustls::ClientConnection::new(Arc::new(tls_config(extra_ca)?), name)
        .context("TLS set-up")?;
    let addresses: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.host))?
        .collect();
    let mut last_error = None;
    let mut socket = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, TIMEOUT) {
            Ok(stream) => {
                socket = Some(stream);
                break;
            }
            Err(error) => last_error = Some(error),
        }
    }
    let socket = match (socket, last_error) {
        (Some(socket), _) => socket,
        (None, Some(error)) => {
            return Err(error).with_context(|| format!("cannot connect to {}", target.authority))
        }
        (None, None) => bail!("{} has no address", target.host),
    };
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.set_write_timeout(Some(TIMEOUT))?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: undersign-verify\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .with_context(|| format!("no secure connection to {}", target.authority))?;

    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 8192];
    let (status, body) = loop {
        if let Some(answer) = complete_body(&buffer)? {
            break answer;
        }
        let read = match stream.read(&mut chunk) {
            Ok(read) => read,
            // The server closed without TLS's close_notify: only a length or the last chunk
            // tells a whole answer from a cut one, and neither came.
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                bail!("the answer from {} was cut off", target.authority)
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading from {}", target.authority))
            }
        };
        if read == 0 {
            // A clean TLS close ends a body sent without a length, and only such a body.
            match parse_head(&buffer)? {
                Some(head) if head.length.is_none() && !head.chunked => {
                    break (head.status, buffer[head.body_at..].to_vec())
                }
                _ => bail!("the answer from {} was cut off", target.authority),
            }
        }
        buffer.extend_from_slice(&chunk[..read]);
        if buffer.len() > MAX_RESPONSE_BYTES {
            bail!(
                "the answer from {} is larger than a published key",
                target.authority
            );
        }
    };
    match status {
        200 => Ok(body),
        300..=399 => bail!(
            "it answered {status}, a redirect; undersign does not follow redirects: give the \
             final address of the key"
        ),
        _ => bail!("it answered {status}, not the key"),
    }
}

/// The key published at `url` (`GET /.well-known/undersign/signing-key` of an instance).
pub fn fetch(url: &str, extra_ca: Option<&Path>) -> anyhow::Result<PublicKey> {
    let body = get(url, extra_ca).with_context(|| format!("--key-url {url}"))?;
    let published: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("--key-url {url}: the answer is not JSON"))?;
    if let Some(algorithm) = published.get("algorithm").and_then(|a| a.as_str()) {
        if algorithm != ALGORITHM {
            bail!("--key-url {url}: the key is {algorithm}, not {ALGORITHM}");
        }
    }
    let key = published
        .get("public_key")
        .and_then(|key| key.as_str())
        .ok_or_else(|| anyhow!("--key-url {url}: the answer has no \"public_key\""))?;
    PublicKey::parse(key).with_context(|| format!("--key-url {url}: the published key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_https_addresses_and_refuses_others() {
        let target =
            parse_url("https://petitions.example.org/.well-known/undersign/signing-key").unwrap();
        assert_eq!(
            target,
            Target {
                host: "petitions.example.org".into(),
                port: 443,
                authority: "petitions.example.org".into(),
                path: "/.well-known/undersign/signing-key".into(),
            }
        );
        let target = parse_url("HTTPS://[::1]:8443").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 8443));
        assert_eq!(target.path, "/");
        assert!(parse_url("http://petitions.example.org/")
            .unwrap_err()
            .to_string()
            .contains("https://"));
        assert!(parse_url("petitions.example.org").is_err());
        assert!(parse_url("https://user@petitions.example.org/").is_err());
        assert!(parse_url("https://petitions.example.org:https/").is_err());
    }

    #[test]
    fn tells_whole_answers_from_partial_ones() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(complete_body(whole).unwrap(), Some((200, b"{}".to_vec())));
        assert_eq!(complete_body(&whole[..whole.len() - 1]).unwrap(), None);
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(complete_body(chunked).unwrap(), Some((200, b"{}".to_vec())));
        assert_eq!(complete_body(&chunked[..chunked.len() - 5]).unwrap(), None);
        assert!(complete_body(b"SSH-2.0\r\n\r\n").is_err());
    }
}
