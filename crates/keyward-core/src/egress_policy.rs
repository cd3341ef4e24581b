//! Which network addresses Keyward may dial for a tenant's custom `base_url` (the SSRF guard's
//! policy; the router applies it to the address actually dialled, the domain to literal
//! addresses when a credential is added).
//!
//! Invariant: an address is refused when it is loopback, private, link-local (including cloud
//! metadata at 169.254.169.254), unspecified, multicast, broadcast, shared (CGNAT),
//! documentation or otherwise reserved — after unwrapping IPv4-mapped and NAT64 IPv6 forms —
//! unless a CIDR in `egress.allow_private` contains it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// The operator's allow-list (`egress.allow_private`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<IpNet>,
}

/// An entry of `egress.allow_private` is neither an IP address nor a CIDR.
#[derive(Debug, thiserror::Error)]
#[error("`{entry}` is not an IP address or CIDR such as 10.0.0.0/8 or fd00::/8")]
pub struct InvalidCidr {
    pub entry: String,
}

impl EgressPolicy {
    /// Parses a comma-separated list; a bare address means /32 or /128.
    pub fn parse_list(list: &str) -> Result<Self, InvalidCidr> {
        let mut allowed = Vec::new();
        for entry in list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let net = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| InvalidCidr {
                    entry: entry.to_owned(),
                })?;
            allowed.push(net);
        }
        Ok(Self { allowed })
    }

    pub fn allowed_networks(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether Keyward may connect to `address`.
    pub fn permits(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        !is_special(address) || self.allowed.iter().any(|net| net.contains(&address))
    }
}

/// Unwraps IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) forms, whose real
/// destination is the IPv4 address inside.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn is_special(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

fn is_special_v4(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_multicast()
        || address.is_broadcast()
        || address.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && address.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_special_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && address.segments()[1] == 0x0db8 // documentation
        || first == 0x2002 // 6to4 can reach any IPv4 address
        || (first == 0x2001 && address.segments()[1] == 0) // Teredo
        || (first == 0x64 && address.segments()[1] == 0xff9b && address.segments()[2] == 1) // local-use NAT64
        || address.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn default_policy_refuses_special_addresses() {
        let policy = EgressPolicy::default();
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused} must be refused");
        }
        for permitted in ["8.8.8.8", "104.18.6.192", "2606:4700::6810:1"] {
            assert!(
                policy.permits(ip(permitted)),
                "{permitted} must be permitted"
            );
        }
    }

    #[test]
    fn allow_list_opens_exactly_its_networks() {
        let policy = EgressPolicy::parse_list("10.0.0.0/8, 127.0.0.1,fd00::/8").unwrap();
        assert!(policy.permits(ip("10.9.8.7")));
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("169.254.169.254")));
        assert!(policy.permits(ip("fd12::1")));
    }

    #[test]
    fn bad_allow_list_entry_is_named() {
        let err = EgressPolicy::parse_list("10.0.0.0/8,intranet").unwrap_err();
        assert_eq!(err.entry, "intranet");
    }
}
