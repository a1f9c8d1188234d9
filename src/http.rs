//! Request bodies read by hand, so that every kind of bad input gets a clear 4xx from
//! [`AppError`]: too large, wrong content type, invalid UTF-8, malformed JSON.

use std::net::IpAddr;

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::AppState;

/// The largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The largest petition form (a text of up to 100 kB, percent-encoded, and its other fields).
pub const MAX_PETITION_FORM_BYTES: usize = 512 * 1024;

/// How long a whole request body may take to arrive: enough for the largest petition form
/// over a slow connection (Tor included).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, AppError> {
    read_body_up_to(payload, MAX_BODY_BYTES).await
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body_up_to(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, AppError> {
    let too_large =
        || AppError::PayloadTooLarge(format!("The request is larger than {} KiB.", limit / 1024));
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                AppError::BadRequest(format!("The request body could not be read: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    // The server's request timeout covers only the headers: a client trickling its body
    // byte by byte would otherwise hold a worker's connection open for as long as it likes.
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(AppError::RequestTimeout(
                "The request body arrived too slowly.".to_owned(),
            ))
        })
}

fn require_content_type(request: &HttpRequest, expected: &str) -> Result<(), AppError> {
    let actual = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = actual.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "Send the request as {expected}."
        )))
    }
}

/// Reads a JSON body into `T`. Type errors name the offending field and position.
pub async fn json_body<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<T, AppError> {
    require_content_type(request, "application/json")?;
    let body = read_body(payload).await?;
    if json_has_nul(&body) {
        return Err(nul_refused());
    }
    serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("The JSON body is not valid: {e}.")))
}

/// No field takes a NUL character, and PostgreSQL cannot store one in text: it is refused at
/// the edge, like invalid UTF-8, rather than failing deep in a query.
fn nul_refused() -> AppError {
    AppError::BadRequest("The request contains a NUL character, which no field accepts.".to_owned())
}

/// Whether a JSON text holds a NUL, raw or as a `\u0000` escape (not a literal `\\u0000`).
fn json_has_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            0 => return true,
            b'\\' => {
                if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                // Skip the escaped character, so `\\` cannot start another escape.
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// The client's IP address: the socket's peer, or, when that peer is a trusted proxy, the
/// address the proxies recorded in `X-Forwarded-For` (see [`TrustedProxies::client_address`]).
pub fn client_ip(request: &HttpRequest) -> String {
    let Some(peer) = request.peer_addr().map(|address| address.ip()) else {
        return String::new();
    };
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| &state.trusted_proxies);
    let address = match trusted {
        Some(trusted) if !trusted.is_empty() => {
            let forwarded: Option<Vec<&str>> = request
                .headers()
                .get_all(X_FORWARDED_FOR)
                .map(|value| value.to_str().ok())
                .collect();
            match forwarded {
                Some(lines) => trusted.client_address(peer, &lines),
                None => canonical(peer),
            }
        }
        _ => canonical(peer),
    };
    address.to_string()
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// An IPv4 or IPv6 network: an address and the length of its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u32,
}

impl IpNetwork {
    /// `192.0.2.7`, `10.0.0.0/8`, `2001:db8::1` or `2001:db8::/32`. A network whose address
    /// has bits set beyond its prefix (`10.0.0.1/8`) is refused: it is usually a typo that
    /// would trust more, or fewer, machines than meant.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let width = bit_width(address);
        let prefix = match prefix {
            None => width,
            Some(prefix) => prefix
                .parse::<u32>()
                .ok()
                .filter(|&prefix| prefix <= width)
                .ok_or_else(|| format!("{text:?} has a bad prefix length (0 to {width})"))?,
        };
        let network = IpNetwork { address, prefix };
        if bits(address) & !network.mask() != 0 {
            return Err(format!(
                "{text:?} has bits set after the first {prefix}; write the network's first address"
            ));
        }
        Ok(network)
    }

    fn mask(&self) -> u128 {
        let width = bit_width(self.address);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        if self.prefix == 0 {
            0
        } else {
            (all << (width - self.prefix)) & all
        }
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.address.is_ipv4()
            && bits(address) & self.mask() == bits(self.address)
    }

    /// The network's first address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn prefix(&self) -> u32 {
        self.prefix
    }
}

/// The canonical text: `192.0.2.7` for a single address, `10.0.0.0/8` for a network.
impl std::fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix == bit_width(self.address) {
            write!(f, "{}", self.address)
        } else {
            write!(f, "{}/{}", self.address, self.prefix)
        }
    }
}

fn bit_width(address: IpAddr) -> u32 {
    if address.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// IPv4 clients reaching a dual-stack socket appear as `::ffff:a.b.c.d`; they are the same
/// client as `a.b.c.d`, for trust as for rate limits.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The proxies (`UNDERSIGN_TRUSTED_PROXIES`) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    /// A comma-separated list of addresses and networks; an empty list trusts nobody.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(IpNetwork::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` header lines in order.
    ///
    /// Only a trusted peer's header is read. Each proxy appends the address it received the
    /// request from, so the list is walked from the right, skipping trusted proxies: the
    /// first untrusted address is the client, and anything to its left was written by the
    /// client itself and may be forged. A header that cannot be parsed completely is
    /// ignored, and so is one naming only trusted proxies: the socket's peer is then all
    /// that is known.
    pub fn client_address(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for line in forwarded {
            for hop in line.split(',') {
                match parse_hop(hop) {
                    Some(address) => hops.push(address),
                    None => return peer,
                }
            }
        }
        hops.into_iter()
            .rev()
            .find(|&address| !self.contains(address))
            .unwrap_or(peer)
    }
}

/// One `X-Forwarded-For` entry: a bare address; some proxies add a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|socket| canonical(socket.ip()))
}

/// A decoded `application/x-www-form-urlencoded` body. Fields are looked up by name; a field
/// sent twice keeps its first value.
#[derive(Debug, Default)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated field, e.g. ticked checkboxes named `id`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// A checkbox counts as ticked when it is present with any value but "" or "false".
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), Some(value) if !value.is_empty() && value != "false")
    }
}

pub async fn form_body(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<FormFields, AppError> {
    form_body_up_to(request, payload, MAX_BODY_BYTES).await
}

/// A form body of up to `limit` bytes, for the few forms that carry long texts.
pub async fn form_body_up_to(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<FormFields, AppError> {
    require_content_type(request, "application/x-www-form-urlencoded")?;
    let body = read_body_up_to(payload, limit).await?;
    parse_urlencoded(&body)
}

/// Strict urlencoded parsing: unlike the usual lossy decoders, invalid UTF-8 (raw or
/// percent-encoded) is an error instead of being replaced silently.
pub fn parse_urlencoded(body: &[u8]) -> Result<FormFields, AppError> {
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = decode_component(parts.next().unwrap_or_default())?;
        let value = decode_component(parts.next().unwrap_or_default())?;
        fields.push((key, value));
    }
    Ok(FormFields(fields))
}

fn decode_component(raw: &[u8]) -> Result<String, AppError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        bytes.push(byte);
                        i += 2;
                    }
                    None => {
                        return Err(AppError::BadRequest(
                            "The form contains a malformed percent-escape.".to_owned(),
                        ))
                    }
                }
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    if bytes.contains(&0) {
        return Err(nul_refused());
    }
    String::from_utf8(bytes).map_err(|_| {
        AppError::BadRequest("The form contains text that is not valid UTF-8.".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields_and_checkboxes() {
        let form = parse_urlencoded(b"name=Ana+Mar%C3%ADa&public=on&consent=&x").unwrap();
        assert_eq!(form.get("name"), Some("Ana María"));
        assert!(form.checked("public"));
        assert!(!form.checked("consent"));
        assert_eq!(form.get("x"), Some(""));
        assert_eq!(form.get("missing"), None);
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    #[test]
    fn parses_addresses_and_networks() {
        let trusted = proxies("10.0.0.0/8, 192.0.2.7,2001:db8::/32 , ::1");
        assert!(trusted.contains(ip("10.255.0.1")));
        assert!(trusted.contains(ip("192.0.2.7")));
        assert!(!trusted.contains(ip("192.0.2.8")));
        assert!(trusted.contains(ip("2001:db8:ffff::1")));
        assert!(!trusted.contains(ip("2001:db9::1")));
        assert!(trusted.contains(ip("::1")));
        assert!(!trusted.contains(ip("127.0.0.1")));
        // An IPv4 peer seen through a dual-stack socket is the same peer.
        assert!(trusted.contains(ip("::ffff:10.1.1.1")));
        assert!(proxies("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!proxies("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(proxies("").is_empty());
        for bad in [
            "proxy.local",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0",
            "1.2.3.4:80",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn believes_forwarded_for_only_from_trusted_proxies() {
        let trusted = proxies("10.0.0.0/8, 2001:db8::/32");
        let client = |peer: &str, lines: &[&str]| trusted.client_address(ip(peer), lines);
        // An untrusted peer's header is ignored, whatever it says.
        assert_eq!(client("203.0.113.5", &["198.51.100.1"]), ip("203.0.113.5"));
        // A trusted proxy's header names the client.
        assert_eq!(client("10.0.0.2", &["198.51.100.1"]), ip("198.51.100.1"));
        // A client that writes its own header gets it appended to by the proxy: only the
        // rightmost untrusted hop counts.
        assert_eq!(
            client("10.0.0.2", &["1.1.1.1, 198.51.100.1"]),
            ip("198.51.100.1")
        );
        // Several proxies: trusted hops are skipped from the right.
        assert_eq!(
            client("10.0.0.2", &["198.51.100.1, 10.0.0.9", "10.0.0.3"]),
            ip("198.51.100.1")
        );
        // IPv6, with and without a port.
        assert_eq!(client("2001:db8::2", &["2001:db9::7"]), ip("2001:db9::7"));
        assert_eq!(
            client("10.0.0.2", &["[2001:db9::7]:4711"]),
            ip("2001:db9::7")
        );
        assert_eq!(client("10.0.0.2", &["198.51.100.1:80"]), ip("198.51.100.1"));
        // Garbage anywhere, or no header at all: the socket is all we know.
        for lines in [
            &["unknown"][..],
            &["198.51.100.1, evil"],
            &["198.51.100.1,"],
            &[""],
            &["198.51.100.1", "<script>"],
            &[],
            &["10.0.0.5"],
        ] {
            assert_eq!(client("10.0.0.2", lines), ip("10.0.0.2"), "{lines:?}");
        }
        // A mapped IPv4 peer is reported as plain IPv4.
        assert_eq!(
            client("::ffff:203.0.113.5", &["1.1.1.1"]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn refuses_invalid_utf8_and_bad_escapes() {
        assert!(parse_urlencoded(b"name=%FF%FE").is_err());
        assert!(parse_urlencoded(b"name=\xff").is_err());
        assert!(parse_urlencoded(b"name=%G1").is_err());
        assert!(parse_urlencoded(b"name=%4").is_err());
        assert!(parse_urlencoded(b"name=a%00b").is_err());
        assert!(parse_urlencoded(b"na%00me=a").is_err());
    }

    #[test]
    fn finds_nul_in_json_text() {
        assert!(json_has_nul(br#"{"name": "a\u0000b"}"#));
        assert!(json_has_nul(b"{\"name\": \"a\0b\"}"));
        assert!(!json_has_nul(br#"{"name": "a\\u0000b"}"#));
        assert!(json_has_nul(br#"{"name": "a\\\u0000b"}"#));
        assert!(json_has_nul(br#"{"name": "\u00000"}"#));
        assert!(!json_has_nul(br#"{"name": "a\u0001b \"0000\""}"#));
    }
}
