//! The client's address behind reverse proxies.
//!
//! `X-Forwarded-For` is believed only from a configured proxy
//! (`trusted_proxies`): anyone else could write any address into it and so
//! pick their own rate-limit bucket or the address in the audit trail. From
//! a trusted proxy the header is read from the right (each proxy appends
//! the address it received the request from), skipping trusted proxies, and
//! the first address that is not one is the client. An entry that is not an
//! address ends the walk: what lies left of it cannot be relied on.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client for a request from `peer` carrying `forwarded_for` (every
/// `X-Forwarded-For` value, in order, joined with commas).
pub fn client(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for entry in header.rsplit(',') {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(
            client(ip("198.51.100.9"), Some("203.0.113.7"), &[]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client(ip("198.51.100.9"), Some("203.0.113.7"), &trusted),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client(ip("10.0.0.2"), Some("203.0.113.7"), &trusted),
            ip("203.0.113.7")
        );
        // No header: the proxy itself.
        assert_eq!(client(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn the_rightmost_untrusted_address_wins_over_what_the_client_wrote() {
        let trusted = nets(&["10.0.0.0/8", "192.0.2.1/32"]);
        // The client sent "1.2.3.4" itself; the edge proxy 192.0.2.1 saw it
        // come from 203.0.113.7; the inner proxy 10.0.0.2 saw 192.0.2.1.
        let header = "1.2.3.4, 203.0.113.7, 192.0.2.1";
        assert_eq!(
            client(ip("10.0.0.2"), Some(header), &trusted),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn garbage_ends_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client(ip("10.0.0.2"), Some("203.0.113.7, not-an-ip"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client(
                ip("10.0.0.2"),
                Some("203.0.113.7, 10.0.0.3, unknown"),
                &trusted
            ),
            ip("10.0.0.2")
        );
        assert_eq!(
            client(ip("10.0.0.2"), Some("unknown, 203.0.113.7"), &trusted),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn all_proxies_trusted_gives_the_leftmost() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client(ip("10.0.0.2"), Some("10.1.1.1, 10.0.0.3"), &trusted),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn ipv6_and_ipv4_mapped_addresses() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        assert_eq!(
            client(ip("::ffff:10.0.0.2"), Some("2001:db8::1"), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client(ip("fd00::5"), Some("::ffff:203.0.113.7"), &trusted),
            ip("203.0.113.7")
        );
    }
}
