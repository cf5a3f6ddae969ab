//! The outbound rules as data: which addresses a request that an admin
//! aimed (a health check, a channel delivery) may reach.
//!
//! Pure: no I/O. The connector (`net::client`) applies them to every
//! address a name resolves to, at every connection and redirect hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// `network.outbound_deny` by default: link-local (where cloud metadata
/// services answer: 169.254.169.254, fd00:ec2::254 aside), the metadata
/// addresses that are not link-local, and "this network".
pub const DEFAULT_DENY: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "0.0.0.0/8",
    "100.100.100.200/32",
    "192.0.0.192/32",
    "fd00:ec2::254/128",
];

/// Host names of metadata services, refused whatever they resolve to.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Loopback, RFC 1918, shared address space (RFC 6598) and unique local
/// IPv6: refused only when `network.outbound_allow_private` is false.
const PRIVATE: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
];

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The address is in a `network.outbound_deny` network.
    Denied { addr: IpAddr, network: IpNet },
    /// A private or loopback address while `outbound_allow_private` is off.
    Private { addr: IpAddr },
    /// `0.0.0.0` or `::`: "any address" reaches the host itself.
    Unspecified { addr: IpAddr },
    /// A metadata service's host name.
    MetadataHost { host: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Denied { addr, network } => write!(
                f,
                "the outbound rules refuse {addr}: it is in network.outbound_deny ({network})"
            ),
            Refusal::Private { addr } => write!(
                f,
                "the outbound rules refuse {addr}: private and loopback addresses are refused \
                 (network.outbound_allow_private = false)"
            ),
            Refusal::Unspecified { addr } => write!(
                f,
                "the outbound rules refuse {addr}: the unspecified address is never a destination"
            ),
            Refusal::MetadataHost { host } => write!(
                f,
                "the outbound rules refuse {host}: it names a cloud metadata service"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// The rules, parsed once from the configuration.
#[derive(Debug, Clone)]
pub struct OutboundRules {
    deny: Vec<IpNet>,
    allow_private: bool,
    private: Vec<IpNet>,
}

impl Default for OutboundRules {
    fn default() -> Self {
        OutboundRules::new(&parse_all(DEFAULT_DENY), true)
    }
}

fn parse_all(nets: &[&str]) -> Vec<IpNet> {
    nets.iter()
        .map(|n| n.parse().expect("a built-in network parses"))
        .collect()
}

/// One network of a list in the configuration (`network.outbound_deny`,
/// `trusted_proxies`): a CIDR network or an address (a network of one).
pub fn parse_network(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    entry
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| format!("{entry:?} is not an IP address or a CIDR network (10.0.0.0/8)"))
}

/// A list of networks already validated by [`parse_network`] (at
/// configuration load), parsed.
pub fn parse_networks(entries: &[String]) -> Vec<IpNet> {
    entries
        .iter()
        .filter_map(|e| parse_network(e).ok())
        .collect()
}

/// The IPv4 address an IPv6 address stands for, when it embeds one that a
/// connection would reach: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`, deprecated but still routed by some stacks) and the NAT64
/// well-known prefix (`64:ff9b::a.b.c.d`).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(tail)
}

impl OutboundRules {
    pub fn new(deny: &[IpNet], allow_private: bool) -> OutboundRules {
        OutboundRules {
            deny: deny.to_vec(),
            allow_private,
            private: parse_all(PRIVATE),
        }
    }

    /// May a connection go to `addr`? IPv6 forms of an IPv4 address are
    /// judged as that IPv4 address too.
    pub fn check_ip(&self, addr: IpAddr) -> Result<(), Refusal> {
        let mut forms = vec![addr];
        if let IpAddr::V6(v6) = addr {
            if let Some(v4) = embedded_v4(v6) {
                forms.push(IpAddr::V4(v4));
            }
        }
        for ip in forms {
            if ip.is_unspecified() {
                return Err(Refusal::Unspecified { addr });
            }
            if let Some(network) = self.deny.iter().find(|n| n.contains(&ip)) {
                return Err(Refusal::Denied {
                    addr,
                    network: *network,
                });
            }
            if !self.allow_private && self.private.iter().any(|n| n.contains(&ip)) {
                return Err(Refusal::Private { addr });
            }
        }
        Ok(())
    }

    /// Checks what can be judged from a URL's host without resolving it:
    /// an address literal (every spelling the URL parser accepts: dotted,
    /// decimal, hex, octal, bracketed IPv6) and metadata host names.
    pub fn check_host(&self, host: &url::Host<&str>) -> Result<(), Refusal> {
        match host {
            url::Host::Ipv4(v4) => self.check_ip(IpAddr::V4(*v4)),
            url::Host::Ipv6(v6) => self.check_ip(IpAddr::V6(*v6)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_HOSTS.contains(&name.as_str()) {
                    Err(Refusal::MetadataHost { host: name })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// [`Self::check_host`] for a URL.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refusal> {
        match url.host() {
            Some(h) => self.check_host(&h),
            None => Ok(()),
        }
    }

    /// [`Self::check_host`] for a bare host (an SMTP server): parsed as a
    /// URL host would be, so `2852039166` is 169.254.169.254 here too.
    pub fn check_host_str(&self, host: &str) -> Result<(), Refusal> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            // A bare IPv6 address, which a URL would bracket.
            return self.check_ip(ip);
        }
        match url::Url::parse(&format!("http://{host}/")) {
            Ok(u) => self.check_url(&u),
            // Not a valid host at all: the caller's own validation says so.
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(rules: &OutboundRules, url: &str) -> bool {
        rules.check_url(&url::Url::parse(url).unwrap()).is_err()
    }

    #[test]
    fn every_spelling_of_the_metadata_address_is_refused() {
        let r = OutboundRules::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0xA9.0xFE.0xA9.0xFE/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::169.254.169.254]/",
            "http://[64:ff9b::169.254.169.254]/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0:8080/",
            "http://0/",
            "http://[::]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL./",
            "http://100.100.100.200/",
        ] {
            assert!(refused(&r, url), "{url} must be refused");
        }
    }

    #[test]
    fn loopback_private_and_public_addresses_pass_by_default() {
        let r = OutboundRules::default();
        for url in [
            "http://127.0.0.1:9000/health",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://192.168.1.10/",
            "http://[::1]:8080/",
            "http://[fd12::1]/",
            "https://hooks.slack.com/services/x",
            "http://[::ffff:10.0.0.1]/",
            "http://[2001:db8::1]/",
        ] {
            assert!(!refused(&r, url), "{url} must pass");
        }
    }

    #[test]
    fn private_addresses_are_refused_when_the_switch_is_off() {
        let r = OutboundRules::new(&parse_all(DEFAULT_DENY), false);
        for url in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://172.20.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd12::1]/",
        ] {
            assert!(refused(&r, url), "{url} must be refused");
        }
        assert!(!refused(&r, "http://93.184.216.34/"));
    }

    #[test]
    fn an_empty_deny_list_still_refuses_the_unspecified_address() {
        let r = OutboundRules::new(&[], true);
        assert!(!refused(&r, "http://169.254.169.254/"));
        assert!(refused(&r, "http://0.0.0.0/"));
        assert!(refused(&r, "http://[::]/"));
    }

    #[test]
    fn refusals_name_the_rule() {
        let r = OutboundRules::default();
        let e = r
            .check_ip("169.254.169.254".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("network.outbound_deny") && e.contains("169.254.0.0/16"),
            "{e}"
        );
        let e = r.check_host_str("2852039166").unwrap_err().to_string();
        assert!(e.contains("169.254.169.254"), "{e}");
        assert!(r.check_host_str("::ffff:169.254.169.254").is_err());
        assert!(r.check_host_str("[fe80::1]").is_err());
        assert!(r.check_host_str("smtp.example.com").is_ok());
    }

    #[test]
    fn deny_entries_parse_or_say_why() {
        assert_eq!(
            parse_network("10.0.0.1").unwrap(),
            "10.0.0.1/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert!(parse_network("nope").unwrap_err().contains("CIDR"));
    }
}
