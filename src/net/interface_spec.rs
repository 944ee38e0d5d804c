//! What `--interface` names: an IPv4 address, an interface's name or a network, parsed and
//! matched against a list of this host's addresses. Pure: listing the addresses is `interface`'s.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::interface::LinkAddress;
use crate::config::{self, ConfigError};

/// The longest interface name Linux takes: `IFNAMSIZ` (16) less the terminating NUL.
pub const MAX_NAME_LEN: usize = 15;

/// Which interface to announce on, as `--interface` gives it. A service definition (Swarm,
/// Kubernetes) gives every replica the same arguments, so only a name or a network can point
/// each at its own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// An address of this host, used as given: the agent opens its socket there, and retries
    /// while the address is not there yet.
    Address(Ipv4Addr),
    /// An interface's name (`eth0`): its first IPv4 address, once it is up with one.
    Name(String),
    /// A network (`10.0.0.0/8`): the first interface, in the kernel's order, that is up with an
    /// IPv4 address in it.
    Network(Network),
}

/// An IPv4 network in CIDR notation; the bits past the prefix are cleared, so `10.1.2.3/8`
/// is `10.0.0.0/8`, as `ip route` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: Ipv4Addr,
    prefix: u8,
}

impl Network {
    /// `None` if `prefix` is above 32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Network> {
        let mask = Network::mask(prefix)?;
        Some(Network {
            base: Ipv4Addr::from(u32::from(address) & mask),
            prefix,
        })
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = Network::mask(self.prefix).expect("the prefix was checked on creation");
        u32::from(address) & mask == u32::from(self.base)
    }

    fn mask(prefix: u8) -> Option<u32> {
        match prefix {
            0 => Some(0),
            1..=32 => Some(u32::MAX << (32 - prefix)),
            _ => None,
        }
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
    /// Text before the `/` that is not an IPv4 address.
    NetworkAddress(String),
    /// A prefix length that is not a number from 0 to 32.
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
                "{text:?} is not an IPv4 address: a network is ADDRESS/PREFIX, e.g. 10.0.0.0/8"
            ),
            InvalidInterfaceSpec::Prefix(text) => write!(
                f,
                "/{text} is not a prefix length: a network's is 0 to 32, e.g. 10.0.0.0/8"
            ),
            InvalidInterfaceSpec::EmptyName => write!(
                f,
                "empty: give an IPv4 address, an interface name (eth0) or a network (10.0.0.0/8)"
            ),
            InvalidInterfaceSpec::NameTooLong(len) => write!(
                f,
                "an interface name is at most {MAX_NAME_LEN} bytes, this one has {len}"
            ),
            InvalidInterfaceSpec::Name(name) => write!(
                f,
                "{name:?} is neither an IPv4 address, an interface name (eth0) nor a network (10.0.0.0/8)"
            ),
        }
    }
}

impl std::error::Error for InvalidInterfaceSpec {}

impl FromStr for InterfaceSpec {
    type Err = InvalidInterfaceSpec;

    fn from_str(text: &str) -> Result<InterfaceSpec, InvalidInterfaceSpec> {
        if let Some((address, prefix)) = text.split_once('/') {
            let address = address
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
        if let Ok(address) = text.parse::<Ipv4Addr>() {
            config::validate_interface(address).map_err(InvalidInterfaceSpec::Address)?;
            return Ok(InterfaceSpec::Address(address));
        }
        if text.is_empty() {
            return Err(InvalidInterfaceSpec::EmptyName);
        }
        if text.len() > MAX_NAME_LEN {
            return Err(InvalidInterfaceSpec::NameTooLong(text.len()));
        }
        // Linux refuses `.`, `..` and names with whitespace (dev_valid_name). Digits and dots
        // alone are a mistyped address (`10.0.0.256`): taken for a name, the agent would wait
        // for it forever.
        let refused = text == "."
            || text == ".."
            || text.chars().any(char::is_whitespace)
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
        }
    }
}

impl InterfaceSpec {
    /// The address this names among `addresses` (in the kernel's order), and why it is the
    /// one. An address is found wherever it is; a name or a network only on an interface that
    /// is up, so one still being set up is waited for. Loopback counts: it was asked for.
    pub fn find<'a>(&self, addresses: &'a [LinkAddress]) -> Option<(&'a LinkAddress, String)> {
        match self {
            InterfaceSpec::Address(address) => Some((
                addresses.iter().find(|a| a.address == *address)?,
                "the address given".to_owned(),
            )),
            InterfaceSpec::Name(name) => Some((
                addresses
                    .iter()
                    .find(|a| a.link.up && a.link.name == *name)?,
                format!("named by --interface {name}"),
            )),
            InterfaceSpec::Network(network) => Some((
                addresses
                    .iter()
                    .find(|a| a.link.up && network.contains(a.address))?,
                format!("the first that is up with an address in {network}"),
            )),
        }
    }

    /// What is missing while [`find`](InterfaceSpec::find) finds nothing, for the log line.
    pub fn missing(&self) -> String {
        match self {
            InterfaceSpec::Address(address) => format!("no interface has {address}"),
            InterfaceSpec::Name(name) => {
                format!("no interface named {name} is up with an IPv4 address")
            }
            InterfaceSpec::Network(network) => {
                format!("no interface is up with an IPv4 address in {network}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::interface::Link;

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

    fn held(name: &str, address: [u8; 4], up: bool) -> LinkAddress {
        LinkAddress {
            address: Ipv4Addr::from(address),
            link: Link {
                name: name.into(),
                up,
                running: up,
                multicast: name != "lo",
                loopback: name == "lo",
            },
        }
    }

    #[test]
    fn an_address_a_name_or_a_network() {
        assert_eq!(
            parse("10.0.1.3"),
            Ok(InterfaceSpec::Address(Ipv4Addr::new(10, 0, 1, 3)))
        );
        assert_eq!(parse("eth0"), Ok(InterfaceSpec::Name("eth0".into())));
        assert_eq!(
            parse("br-0123456789ab"),
            Ok(InterfaceSpec::Name("br-0123456789ab".into()))
        );
        assert_eq!(network("10.0.0.0/8").to_string(), "10.0.0.0/8");
        // Host bits are cleared, as `ip route` does.
        assert_eq!(network("10.1.2.3/16").to_string(), "10.1.0.0/16");
        assert_eq!(network("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(network("10.0.1.3/32").to_string(), "10.0.1.3/32");
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
    }

    #[test]
    fn values_no_interface_can_match_are_refused_with_the_reason() {
        for (text, expected) in [
            ("10.0.0.0/33", "/33 is not a prefix length"),
            ("10.0.0.0/", "/ is not a prefix length"),
            ("10.0.0.0/+8", "/+8 is not a prefix length"),
            ("10.0.0/8", "\"10.0.0\" is not an IPv4 address"),
            ("eth0/24", "\"eth0\" is not an IPv4 address"),
            ("", "empty: give an IPv4 address"),
            ("a-name-of-16-byt", "at most 15 bytes, this one has 16"),
            ("10.0.0.256", "\"10.0.0.256\" is neither an IPv4 address"),
            ("eth 0", "is neither"),
            ("..", "is neither"),
            ("0.0.0.0", "(any address)"),
            ("239.255.49.1", "(a multicast address)"),
            ("255.255.255.255", "(the broadcast address)"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        assert!(parse("a-name-of-15-by").is_ok());
    }

    #[test]
    fn a_name_or_a_network_matches_an_interface_that_is_up() {
        let all = [
            held("lo", [127, 0, 0, 1], true),
            held("eth0", [10, 0, 1, 3], false),
            held("eth1", [172, 22, 0, 3], true),
            held("eth2", [10, 0, 2, 3], true),
            held("eth2", [10, 0, 3, 3], true),
        ];
        let found = |text: &str| {
            let spec: InterfaceSpec = text.parse().expect("valid");
            spec.find(&all)
                .map(|(a, _)| (a.link.name.clone(), a.address.to_string()))
        };
        let pair = |name: &str, address: &str| Some((name.to_owned(), address.to_owned()));
        // eth0 is down: waited for, not taken.
        assert_eq!(found("eth0"), None);
        assert_eq!(found("10.0.0.0/8"), pair("eth2", "10.0.2.3"));
        assert_eq!(found("eth2"), pair("eth2", "10.0.2.3"), "its first address");
        assert_eq!(found("lo"), pair("lo", "127.0.0.1"));
        assert_eq!(found("10.0.3.0/24"), pair("eth2", "10.0.3.3"));
        assert_eq!(found("192.168.0.0/16"), None);
        assert_eq!(found("wlan0"), None);
        // An address is the caller's to use as given; it is found when it is there.
        assert_eq!(found("10.0.1.3"), pair("eth0", "10.0.1.3"));
        let why = "10.0.0.0/8"
            .parse::<InterfaceSpec>()
            .expect("valid")
            .find(&all);
        assert_eq!(
            why.map(|(_, why)| why).as_deref(),
            Some("the first that is up with an address in 10.0.0.0/8")
        );
    }
}
