//! The client's address: the socket's peer, or, when that peer is a trusted
//! reverse proxy (`[server] trusted_proxies`), the right-most address in
//! `X-Forwarded-For` that is not itself a trusted proxy.

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One `trusted_proxies` entry: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ProxyNet(IpNet);

impl TryFrom<String> for ProxyNet {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        IpNet::from_str(&text)
            .or_else(|_| IpAddr::from_str(&text).map(IpNet::from))
            .map(ProxyNet)
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))
    }
}

impl ProxyNet {
    fn contains(&self, ip: &IpAddr) -> bool {
        self.0.contains(&canonical(*ip))
    }
}

/// IPv4-mapped IPv6 peers (a dual-stack listener) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of `request` (`None` when no peer is known).
pub fn client_ip(trusted: &[ProxyNet], request: &Request) -> Option<IpAddr> {
    client_ip_of(trusted, request.extensions(), request.headers())
}

/// The client address of a request with these extensions and headers.
pub fn client_ip_of(
    trusted: &[ProxyNet],
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| canonical(addr.ip()))?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is no address was written by nobody we trust: stop
        // at the last trusted proxy rather than guess.
        let Ok(ip) = IpAddr::from_str(hop) else {
            break;
        };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut builder = Request::builder();
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        let mut request = builder.body(axum::body::Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from_str(peer).unwrap()));
        request
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted = vec![
            ProxyNet::try_from("10.0.0.0/8".to_owned()).unwrap(),
            ProxyNet::try_from("127.0.0.1".to_owned()).unwrap(),
        ];
        let ip = |s: &str| IpAddr::from_str(s).unwrap();
        let cases = [
            ("192.0.2.9:1", vec!["203.0.113.5"], "192.0.2.9"),
            ("127.0.0.1:1", vec!["203.0.113.5"], "203.0.113.5"),
            (
                "127.0.0.1:1",
                vec!["1.1.1.1, 203.0.113.5, 10.1.2.3"],
                "203.0.113.5",
            ),
            ("127.0.0.1:1", vec!["1.1.1.1", "203.0.113.5"], "203.0.113.5"),
            ("127.0.0.1:1", vec!["10.0.0.1"], "10.0.0.1"),
            ("127.0.0.1:1", vec!["junk, 10.0.0.1"], "10.0.0.1"),
            ("127.0.0.1:1", vec![], "127.0.0.1"),
            ("[::ffff:127.0.0.1]:1", vec!["203.0.113.7"], "203.0.113.7"),
        ];
        for (peer, forwarded, expected) in cases {
            assert_eq!(
                client_ip(&trusted, &request(peer, &forwarded)),
                Some(ip(expected)),
                "{peer} {forwarded:?}"
            );
        }
        assert!(ProxyNet::try_from("10.0.0.0/33".to_owned()).is_err());
        assert!(ProxyNet::try_from("proxy".to_owned()).is_err());
    }
}
