//! This host's interfaces with both address families, as the agent picks and joins them: each
//! one's name, index, state, IPv4 addresses and IPv6 addresses with their duplicate-address
//! detection state. Reads getifaddrs and `/proc/net/if_inet6`; it never opens a socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Context;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// An IPv6 address still being checked for duplicates (DAD): the kernel sends nothing from it.
pub const IFA_F_TENTATIVE: u32 = 0x40;
/// An IPv6 address DAD found on another host: it is never used.
pub const IFA_F_DADFAILED: u32 = 0x08;

/// One interface of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    pub name: String,
    /// The kernel's index: what an IPv6 group is joined and sent on by.
    pub index: u32,
    pub up: bool,
    /// Carrier (`IFF_RUNNING`): an interface up without it sends nowhere.
    pub running: bool,
    pub multicast: bool,
    pub loopback: bool,
    /// Its IPv4 addresses, in the kernel's order.
    pub v4: Vec<Inet4>,
    /// Its IPv6 addresses, in the kernel's order.
    pub v6: Vec<Inet6>,
}

/// One IPv4 address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inet4 {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

/// One IPv6 address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inet6 {
    pub address: Ipv6Addr,
    pub prefix: u8,
    /// `IFA_F_*` as `/proc/net/if_inet6` prints them.
    pub flags: u32,
}

impl Inet6 {
    /// Past duplicate-address detection: beacons can go out from it.
    pub fn usable(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }

    /// Still being checked: tentative, and not yet failed (the kernel leaves the tentative
    /// flag on an address whose check failed).
    pub fn tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0 && !self.dad_failed()
    }

    /// Another host on the link has it: it is never used.
    pub fn dad_failed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }
}

impl HostInterface {
    /// The IPv6 address beacons go out from, if one is past DAD: a link-local one first, which
    /// every IPv6 interface has and which never changes with a prefix the network hands out.
    pub fn usable_v6(&self) -> Option<Ipv6Addr> {
        let usable = || self.v6.iter().filter(|a| a.usable());
        usable()
            .find(|a| a.address.is_unicast_link_local())
            .or_else(|| usable().next())
            .map(|a| a.address)
    }

    /// Could carry beacons: up, multicast-capable (loopback, which multicasts without the flag,
    /// counts too, for the agent that is given it) and with an address of either family.
    pub fn could_carry(&self) -> bool {
        self.up
            && (self.multicast || self.loopback)
            && (!self.v4.is_empty() || self.usable_v6().is_some())
    }

    /// Holds `address`, in either family.
    pub fn holds(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(v4) => self.v4.iter().any(|a| a.address == v4),
            IpAddr::V6(v6) => self.v6.iter().any(|a| a.address == v6),
        }
    }

    /// The first IPv4 address.
    pub fn first_v4(&self) -> Option<Ipv4Addr> {
        self.v4.first().map(|a| a.address)
    }

    /// Every address with its prefix length, as a network of either family.
    pub fn networks(&self) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        let v4 = self.v4.iter().map(|a| (IpAddr::V4(a.address), a.prefix));
        v4.chain(self.v6.iter().map(|a| (IpAddr::V6(a.address), a.prefix)))
    }

    /// Every address, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.networks().map(|(address, _)| address)
    }
}

/// Every interface of this host that has an address, in the kernel's order.
pub fn list() -> anyhow::Result<Vec<HostInterface>> {
    let mut interfaces: Vec<HostInterface> = Vec::new();
    for ifaddr in getifaddrs().context("listing network interfaces")? {
        let name = ifaddr.interface_name;
        let flags = ifaddr.flags;
        let v4 = ifaddr
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|a| Inet4 {
                address: a.ip(),
                prefix: ifaddr
                    .netmask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in())
                    .and_then(|m| u8::try_from(u32::from(m.ip()).leading_ones()).ok())
                    .unwrap_or(32),
            });
        // The link's own entry (AF_PACKET) carries the index: no call per interface for it.
        let link_index = ifaddr
            .address
            .as_ref()
            .and_then(|a| a.as_link_addr())
            .and_then(|link| u32::try_from(link.ifindex()).ok());
        let at = match interfaces.iter().position(|i| i.name == name) {
            Some(at) => at,
            None => {
                interfaces.push(HostInterface {
                    name,
                    index: 0,
                    up: flags.contains(InterfaceFlags::IFF_UP),
                    running: flags.contains(InterfaceFlags::IFF_RUNNING),
                    multicast: flags.contains(InterfaceFlags::IFF_MULTICAST),
                    loopback: flags.contains(InterfaceFlags::IFF_LOOPBACK),
                    v4: Vec::new(),
                    v6: Vec::new(),
                });
                interfaces.len() - 1
            }
        };
        if let Some(index) = link_index {
            interfaces[at].index = index;
        }
        if let Some(v4) = v4 {
            interfaces[at].v4.push(v4);
        }
    }
    // A kernel that lists no link entry for an interface: ask for its index by name.
    for interface in interfaces.iter_mut().filter(|i| i.index == 0) {
        interface.index = nix::net::if_::if_nametoindex(interface.name.as_str()).unwrap_or(0);
    }
    // getifaddrs has no DAD state: the kernel's own list of IPv6 addresses does. Without IPv6
    // in the kernel the file is missing, and the host has no IPv6 addresses; any other failure
    // to read it is an error, not a host that lost its IPv6.
    let inet6 = match std::fs::read_to_string("/proc/net/if_inet6") {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        read => read.context("reading /proc/net/if_inet6")?,
    };
    for (index, name, address) in parse_if_inet6(&inet6) {
        if let Some(interface) = interfaces.iter_mut().find(|i| i.name == name) {
            interface.index = index;
            interface.v6.push(address);
        }
    }
    interfaces.retain(|i| i.index != 0);
    Ok(interfaces)
}

/// The lines of `/proc/net/if_inet6`: the address in 32 hex digits, then the interface's index,
/// the prefix length, the scope and the flags in hex, then its name. A line that does not
/// read so is skipped.
pub fn parse_if_inet6(text: &str) -> Vec<(u32, &str, Inet6)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [address, index, prefix, _scope, flags, name] = fields[..] else {
                return None;
            };
            let address = u128::from_str_radix(address, 16)
                .ok()
                .filter(|_| address.len() == 32)?;
            let inet6 = Inet6 {
                address: Ipv6Addr::from(address),
                prefix: u8::from_str_radix(prefix, 16).ok()?,
                flags: u32::from_str_radix(flags, 16).ok()?,
            };
            Some((u32::from_str_radix(index, 16).ok()?, name, inet6))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_ipv6_addresses_with_their_dad_state() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                    fd000000000000000000000000000002 0a 40 00 c0     eth1\n\
                    garbage\n\
                    fe80 04 40 20 80 eth0\n";
        let read = parse_if_inet6(text);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].0, 1);
        assert_eq!(read[0].2.address, Ipv6Addr::LOCALHOST);
        let (index, name, eth0) = read[1];
        assert_eq!((index, name, eth0.prefix), (4, "eth0", 64));
        assert_eq!(
            eth0.address,
            "fe80::fc:ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
        assert!(eth0.usable());
        let (index, name, tentative) = read[2];
        assert_eq!((index, name), (10, "eth1"));
        assert!(tentative.tentative() && !tentative.usable());
    }

    /// eth0 (index 2), up with carrier and multicast, with the IPv6 addresses and flags given.
    pub(crate) fn interface(v6: &[(&str, u32)]) -> HostInterface {
        HostInterface {
            name: "eth0".into(),
            index: 2,
            up: true,
            running: true,
            multicast: true,
            loopback: false,
            v4: Vec::new(),
            v6: v6
                .iter()
                .map(|(a, flags)| Inet6 {
                    address: a.parse().expect("an address"),
                    prefix: 64,
                    flags: *flags,
                })
                .collect(),
        }
    }

    #[test]
    fn beacons_go_out_from_a_link_local_address_past_dad() {
        let both = interface(&[("fd00::2", 0x80), ("fe80::1", 0x80)]);
        assert_eq!(both.usable_v6(), Some("fe80::1".parse().unwrap()));
        assert!(both.could_carry());
        let tentative = interface(&[("fe80::1", 0xc0), ("fd00::2", 0x80)]);
        assert_eq!(tentative.usable_v6(), Some("fd00::2".parse().unwrap()));
        let waiting = interface(&[("fe80::1", 0xc0)]);
        assert_eq!(waiting.usable_v6(), None);
        assert!(!waiting.could_carry(), "nothing can go out from it yet");
    }
}
