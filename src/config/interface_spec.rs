//! What `--interface` names: an address of either family, an interface's name, a network or
//! `all`, parsed. Matching them against this host's interfaces is `net::selection`'s.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::{ConfigError, validate_interface};

/// The longest interface name Linux takes: `IFNAMSIZ` (16) less the terminating NUL.
pub const MAX_NAME_LEN: usize = 15;

/// An interface to announce on, as `--interface` gives it (it may be given several times). A
/// service definition (Swarm, Kubernetes) gives every replica the same arguments, so only a
/// name, a network or `all` can point each at its own addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// An address of this host: the interface holding it, waited for while none does. An IPv4
    /// address is also the one the group's beacons go out from.
    Address(IpAddr),
    /// An interface's name (`eth0`), once it is up with an address.
    Name(String),
    /// A network (`10.0.0.0/8`, `fd00::/64`): the first interface, in the kernel's order, that
    /// is up with an address in it.
    Network(Network),
    /// Every interface that is up with carrier, multicast and an address, but loopback and the
    /// bridges this host's containers hang off (`docker0`, `br-*`, `virbr*`, `cni*`): the peers
    /// of a host are not behind them. Named, they are taken.
    All,
}

/// A network in CIDR notation, of either family; the bits past the prefix are cleared, so
/// `10.1.2.3/8` is `10.0.0.0/8`, as `ip route` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// `None` if `prefix` is longer than the address (32 bits for IPv4, 128 for IPv6).
    pub fn new(address: impl Into<IpAddr>, prefix: u8) -> Option<Network> {
        let address = address.into();
        let base = match address {
            IpAddr::V4(v4) => {
                IpAddr::from((u32::from(v4) & mask(prefix, 32)? as u32).to_be_bytes())
            }
            IpAddr::V6(v6) => IpAddr::from((u128::from(v6) & mask(prefix, 128)?).to_be_bytes()),
        };
        Some(Network { base, prefix })
    }

    /// Whether `address` is in this network.
    pub fn contains(&self, address: impl Into<IpAddr>) -> bool {
        Network::new(address.into(), self.prefix).is_some_and(|n| n.base == self.base)
    }
}

/// The mask of `prefix` bits of an address `bits` long, in a u128's low bits.
fn mask(prefix: u8, bits: u32) -> Option<u128> {
    let prefix = u32::from(prefix);
    let all = u128::MAX >> (128 - bits);
    match prefix {
        0 => Some(0),
        p if p <= bits => Some(all & (all << (bits - p))),
        _ => None,
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Why an `--interface` value was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum InvalidInterfaceSpec {
    /// An address, but one no interface can have (`config::validate_interface`).
    Address(ConfigError),
    /// Text before the `/` that is not an address.
    NetworkAddress(String),
    /// A prefix length that is not a number from 0 to 32 (128 for IPv6).
    Prefix(String),
    EmptyName,
    /// A name longer than [`MAX_NAME_LEN`] bytes; how long it is.
    NameTooLong(usize),
    /// A name Linux cannot give an interface, or that reads as a mistyped address.
    Name(String),
}

impl fmt::Display for InvalidInterfaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInterfaceSpec::Address(err) => write!(f, "{err}"),
            InvalidInterfaceSpec::NetworkAddress(text) => write!(
                f,
                "{text:?} is not an IP address: a network is ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/64"
            ),
            InvalidInterfaceSpec::Prefix(text) => write!(
                f,
                "/{text} is not a prefix length: a network's is 0 to 32 (128 for IPv6), e.g. 10.0.0.0/8"
            ),
            InvalidInterfaceSpec::EmptyName => write!(
                f,
                "empty: give an IP address, an interface name (eth0), a network (10.0.0.0/8) or all"
            ),
            InvalidInterfaceSpec::NameTooLong(len) => write!(
                f,
                "an interface name is at most {MAX_NAME_LEN} bytes, this one has {len}"
            ),
            InvalidInterfaceSpec::Name(name) => write!(
                f,
                "{name:?} is neither an IP address, an interface name (eth0), a network (10.0.0.0/8) nor all"
            ),
        }
    }
}

impl std::error::Error for InvalidInterfaceSpec {}

impl FromStr for InterfaceSpec {
    type Err = InvalidInterfaceSpec;

    fn from_str(text: &str) -> Result<InterfaceSpec, InvalidInterfaceSpec> {
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address
                .parse()
                .map_err(|_| InvalidInterfaceSpec::NetworkAddress(address.to_owned()))?;
            // Digits only: `u8::from_str` would take `+8`.
            let prefix = Some(prefix)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .and_then(|p| Network::new(address, p))
                .ok_or_else(|| InvalidInterfaceSpec::Prefix(prefix.to_owned()))?;
            return Ok(InterfaceSpec::Network(prefix));
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            validate_interface(address).map_err(InvalidInterfaceSpec::Address)?;
            return Ok(InterfaceSpec::Address(address));
        }
        if text == "all" {
            return Ok(InterfaceSpec::All);
        }
        if text.is_empty() {
            return Err(InvalidInterfaceSpec::EmptyName);
        }
        if text.len() > MAX_NAME_LEN {
            return Err(InvalidInterfaceSpec::NameTooLong(text.len()));
        }
        // Linux refuses `.`, `..` and names with whitespace, a `/` or a `:` (dev_valid_name).
        // Digits and dots alone are a mistyped address (`10.0.0.256`), as is anything with a
        // colon (`fe80::1::2`): taken for a name, the agent would wait for it forever.
        let refused = text == "."
            || text == ".."
            || text.chars().any(|c| c.is_whitespace() || c == ':')
            || text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if refused {
            return Err(InvalidInterfaceSpec::Name(text.to_owned()));
        }
        Ok(InterfaceSpec::Name(text.to_owned()))
    }
}

impl fmt::Display for InterfaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfaceSpec::Address(address) => write!(f, "{address}"),
            InterfaceSpec::Name(name) => write!(f, "{name}"),
            InterfaceSpec::Network(network) => write!(f, "{network}"),
            InterfaceSpec::All => write!(f, "all"),
        }
    }
}

/// The bridges a host's containers and VMs hang off, which `all` leaves out: Docker's
/// (`docker0`, `br-` and a network id, `docker_gwbridge`), libvirt's and the CNI plugins'.
pub fn is_container_bridge(name: &str) -> bool {
    [
        "docker", "br-", "virbr", "cni", "veth", "flannel", "cali", "lxcbr", "lxdbr",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

impl InterfaceSpec {
    /// What is missing while `net::selection` finds nothing for it, for the log line.
    pub fn missing(&self) -> String {
        match self {
            InterfaceSpec::Address(address) => format!("no interface has {address}"),
            InterfaceSpec::Name(name) => {
                format!("no interface named {name} is up with an address")
            }
            InterfaceSpec::Network(network) => {
                format!("no interface is up with an address in {network}")
            }
            InterfaceSpec::All => {
                "no interface but loopback and container bridges is up with carrier, multicast and an address".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn parse(text: &str) -> Result<InterfaceSpec, String> {
        text.parse()
            .map_err(|err: InvalidInterfaceSpec| err.to_string())
    }

    fn network(text: &str) -> Network {
        match parse(text) {
            Ok(InterfaceSpec::Network(network)) => network,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn an_address_a_name_a_network_or_all() {
        assert_eq!(
            parse("10.0.1.3"),
            Ok(InterfaceSpec::Address(Ipv4Addr::new(10, 0, 1, 3).into()))
        );
        assert_eq!(
            parse("fe80::1"),
            Ok(InterfaceSpec::Address(
                "fe80::1".parse::<Ipv6Addr>().expect("an address").into()
            ))
        );
        assert_eq!(parse("eth0"), Ok(InterfaceSpec::Name("eth0".into())));
        assert_eq!(parse("all"), Ok(InterfaceSpec::All));
        assert_eq!(
            parse("br-0123456789ab"),
            Ok(InterfaceSpec::Name("br-0123456789ab".into()))
        );
        assert_eq!(network("10.0.0.0/8").to_string(), "10.0.0.0/8");
        // Host bits are cleared, as `ip route` does.
        assert_eq!(network("10.1.2.3/16").to_string(), "10.1.0.0/16");
        assert_eq!(network("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(network("10.0.1.3/32").to_string(), "10.0.1.3/32");
        assert_eq!(network("fd00:1:2:3::9/64").to_string(), "fd00:1:2:3::/64");
        assert_eq!(network("fd00::1/128").to_string(), "fd00::1/128");
        assert_eq!(network("::/0").to_string(), "::/0");
    }

    #[test]
    fn a_network_holds_the_addresses_under_its_prefix() {
        let net = network("10.0.0.0/8");
        assert!(net.contains(Ipv4Addr::new(10, 255, 0, 1)));
        assert!(!net.contains(Ipv4Addr::new(11, 0, 0, 1)));
        assert!(network("0.0.0.0/0").contains(Ipv4Addr::new(192, 168, 1, 1)));
        let host = network("10.0.1.3/32");
        assert!(host.contains(Ipv4Addr::new(10, 0, 1, 3)));
        assert!(!host.contains(Ipv4Addr::new(10, 0, 1, 4)));
        let v6 = network("fd00:0:0:7::/64");
        let inside: Ipv6Addr = "fd00::7:0:0:0:1".parse().expect("an address");
        let outside: Ipv6Addr = "fd00::8:0:0:0:1".parse().expect("an address");
        assert!(v6.contains(inside) && !v6.contains(outside));
        // A network never holds an address of the other family.
        assert!(!network("::/0").contains(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!network("0.0.0.0/0").contains(inside));
    }

    #[test]
    fn values_no_interface_can_match_are_refused_with_the_reason() {
        for (text, expected) in [
            ("10.0.0.0/33", "/33 is not a prefix length"),
            ("fd00::/129", "/129 is not a prefix length"),
            ("10.0.0.0/", "/ is not a prefix length"),
            ("10.0.0.0/+8", "/+8 is not a prefix length"),
            ("10.0.0/8", "\"10.0.0\" is not an IP address"),
            ("eth0/24", "\"eth0\" is not an IP address"),
            ("", "empty: give an IP address"),
            ("a-name-of-16-byt", "at most 15 bytes, this one has 16"),
            ("10.0.0.256", "\"10.0.0.256\" is neither an IP address"),
            ("fe80::1::2", "is neither"),
            ("eth 0", "is neither"),
            ("..", "is neither"),
            ("0.0.0.0", "(any address)"),
            ("::", "(any address)"),
            ("239.255.49.1", "(a multicast address)"),
            ("ff12::2490", "(a multicast address)"),
            ("255.255.255.255", "(the broadcast address)"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        assert!(parse("a-name-of-15-by").is_ok());
    }

    #[test]
    fn all_leaves_out_the_bridges_of_containers_and_vms() {
        for bridge in [
            "docker0",
            "br-0123456789ab",
            "docker_gwbridge",
            "virbr0",
            "cni0",
            "veth12ab",
        ] {
            assert!(is_container_bridge(bridge), "{bridge}");
        }
        for link in ["eth0", "enp3s0", "wlan0", "bond0", "eth1.100"] {
            assert!(!is_container_bridge(link), "{link}");
        }
    }
}
