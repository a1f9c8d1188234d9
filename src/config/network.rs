//! IP addresses and networks as settings name them: the trusted proxies, and the networks of
//! signing events.

use std::net::IpAddr;

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
pub fn canonical(address: IpAddr) -> IpAddr {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
